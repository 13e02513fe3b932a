//! Transaction matching: RFC 3261 §17.1.3 and §17.2.3 (with the RFC 2543 fallback).

mod transaction_support;

use pbx_sip::message::HeaderName;
use pbx_sip::method::Method;
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::{KeyError, Role, TransactionKey};
use transaction_support::*;

fn via_request(
    method: &str,
    via: &str,
    to_tag: Option<&str>,
    cseq: u32,
) -> pbx_sip::message::Request {
    let to = match to_tag {
        Some(tag) => format!("<sip:bob@example.com>;tag={tag}"),
        None => "<sip:bob@example.com>".to_owned(),
    };
    let cseq_method = if method == "ACK" { "ACK" } else { method };
    parse_request(&format!(
        "{method} sip:bob@example.com SIP/2.0
Via: {via}
From: <sip:alice@example.com>;tag=f1
To: {to}
Call-ID: legacy-1
CSeq: {cseq} {cseq_method}
Max-Forwards: 70

"
    ))
}

#[test]
fn rfc3261_server_key_is_branch_sent_by_and_method() {
    let invite = invite("z9hG4bKabc");
    let key = TransactionKey::server(&invite).unwrap();
    assert_eq!(key.role(), Role::Server);
    assert!(key.is_server());
    assert_eq!(key.branch(), Some("z9hG4bKabc"));
    assert_eq!(key.method(), &Method::INVITE);
    // A retransmission matches.
    assert_eq!(TransactionKey::server(&invite.clone()).unwrap(), key);
    // The ACK of a non-2xx (same branch) matches the INVITE transaction.
    assert_eq!(TransactionKey::server(&ack_for(&invite, "t")).unwrap(), key);
    // Another branch, another sent-by, another method: other transactions.
    assert_ne!(
        TransactionKey::server(&request("INVITE", "z9hG4bKabd", 1)).unwrap(),
        key
    );
    let other_host = via_request(
        "INVITE",
        "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKabc",
        None,
        1,
    );
    assert_ne!(TransactionKey::server(&other_host).unwrap(), key);
    let bye = request("BYE", "z9hG4bKabc", 2);
    assert_ne!(TransactionKey::server(&bye).unwrap(), key);
}

#[test]
fn sent_by_host_compares_without_case() {
    let a = via_request(
        "OPTIONS",
        "SIP/2.0/UDP Host.Example.COM:5060;branch=z9hG4bK1",
        None,
        1,
    );
    let b = via_request(
        "OPTIONS",
        "SIP/2.0/UDP host.example.com:5060;branch=z9hG4bK1",
        None,
        1,
    );
    assert_eq!(
        TransactionKey::server(&a).unwrap(),
        TransactionKey::server(&b).unwrap()
    );
}

#[test]
fn cancel_has_its_own_key_and_names_the_invite() {
    let invite = invite("z9hG4bKc");
    let cancel = request("CANCEL", "z9hG4bKc", 1);
    let invite_key = TransactionKey::server(&invite).unwrap();
    let cancel_key = TransactionKey::server(&cancel).unwrap();
    assert_ne!(cancel_key, invite_key);
    assert_eq!(cancel_key.cancelled_invite(), Some(invite_key.clone()));
    assert_eq!(invite_key.cancelled_invite(), None);
}

#[test]
fn rfc2543_requests_match_on_the_dialog_fields() {
    let via = "SIP/2.0/UDP old.example.com:5060;branch=1234";
    let invite = via_request("INVITE", via, None, 7);
    let key = TransactionKey::server(&invite).unwrap();
    assert_eq!(key.branch(), None);
    assert_eq!(TransactionKey::server(&invite.clone()).unwrap(), key);
    // The ACK carries the To tag of our response and still matches (§17.2.3).
    let ack = via_request("ACK", via, Some("ours"), 7);
    assert_eq!(TransactionKey::server(&ack).unwrap(), key);
    // CANCEL names the INVITE.
    let cancel = via_request("CANCEL", via, None, 7);
    assert_eq!(
        TransactionKey::server(&cancel).unwrap().cancelled_invite(),
        Some(key.clone())
    );
    // A new CSeq is a new transaction.
    assert_ne!(
        TransactionKey::server(&via_request("INVITE", via, None, 8)).unwrap(),
        key
    );
    // Outside the INVITE family the To tag counts.
    let bye_a = via_request("BYE", via, Some("a"), 9);
    let bye_b = via_request("BYE", via, Some("b"), 9);
    assert_ne!(
        TransactionKey::server(&bye_a).unwrap(),
        TransactionKey::server(&bye_b).unwrap()
    );
    // No branch at all is RFC 2543 too.
    let bare = via_request("OPTIONS", "SIP/2.0/UDP old.example.com", None, 1);
    assert_eq!(TransactionKey::server(&bare).unwrap().branch(), None);
}

#[test]
fn client_key_matches_responses_by_branch_and_cseq_method() {
    let invite = invite("z9hG4bKcli");
    let key = TransactionKey::client(&invite).unwrap();
    assert_eq!(key.role(), Role::Client);
    let ringing = response(&invite, 180, Some("t"));
    assert_eq!(
        TransactionKey::client_for_response(&ringing),
        Some(key.clone())
    );
    // The CANCEL's response matches the CANCEL, not the INVITE.
    let cancel = request("CANCEL", "z9hG4bKcli", 1);
    let cancel_ok = response(&cancel, 200, Some("t"));
    let cancel_key = TransactionKey::client_for_response(&cancel_ok).unwrap();
    assert_ne!(cancel_key, key);
    assert_eq!(cancel_key, TransactionKey::client(&cancel).unwrap());
    // Client and server keys never collide.
    assert_ne!(TransactionKey::server(&invite).unwrap(), key);
}

#[test]
fn unkeyable_messages_are_refused() {
    // The parser refuses these; a message built by hand may still lack them.
    let mut no_via = request("OPTIONS", "z9hG4bK1", 1);
    no_via.headers.remove_all(&HeaderName::VIA);
    let err = TransactionKey::server(&no_via).unwrap_err();
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    let no_branch = via_request("OPTIONS", "SIP/2.0/UDP 10.0.0.1", None, 1);
    assert_eq!(TransactionKey::client(&no_branch), Err(KeyError::NoBranch));
    let mut no_cseq = response(&request("OPTIONS", "z9hG4bK1", 1), 200, Some("t"));
    no_cseq.headers.remove_all(&HeaderName::CSEQ);
    assert_eq!(TransactionKey::client_for_response(&no_cseq), None);
}
