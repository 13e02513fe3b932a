//! A call going out through a trunk (issue 15, part 4): the plan's `trunk:NAME/NUMBER`
//! target becomes a [`pbx_calls::TrunkLeg`] (Request-URI, caller ID, credentials), after the
//! checks that need no packet: the trunk exists, is not marked down by its pings, and has a
//! free channel. What a trunk's final answer means for the plan is decided here too
//! ([`outcome`]): only a trunk's own failure lets an `in_order` dial try the next one.
//!
//! Caller ID (`--caller-id-mode`). The caller's number below is the calling extension's DID
//! when it has one (`pbx extension set --did`), else its extension number; on a call that
//! came in by a trunk, the number that trunk presented.
//! - `extension`: `From: "Name" <sip:CALLER@HOST>`, the caller's number; with a DID, the same
//!   identity in `P-Asserted-Identity` too (RFC 3325 §9.1: the provider's network asserts
//!   the public number, not an internal extension);
//! - `trunk`: the trunk's `--caller-id` in place of CALLER (the caller's when none is set);
//! - `anonymous`: `From: "Anonymous" <sip:anonymous@anonymous.invalid>` (RFC 3323 §4.1.1.3)
//!   with `Privacy: id` and the real identity in `P-Asserted-Identity` (RFC 3325 §9.1, §9.3):
//!   the trunk's `--caller-id` when set, else the caller's number; the network withholds it
//!   from the called party.

use super::{Channel, TrunkPeer};
use crate::peer::{Peer, TransportKind};
use pbx_calls::{DialEnd, Originator};
use pbx_dialplan::DialOutcome;
use pbx_sip::header::NameAddr;
use pbx_sip::message::HeaderName;
use pbx_sip::status::StatusCode;
use pbx_sip::uri::{Host, Uri};
use std::sync::Arc;
use std::time::Duration;

/// What a call through a trunk needs before its INVITE can be built (the PBX's address toward
/// the trunk may still have to be resolved).
#[derive(Debug)]
pub(crate) struct Attempt {
    pub trunk: Arc<TrunkPeer>,
    pub number: String,
    pub peer: Peer,
    /// The trunk's other addresses, tried in turn when `peer` does not answer or answers
    /// 503 (RFC 3263 §4.3).
    pub others: Vec<Peer>,
    pub contact: Uri,
    pub from: NameAddr,
    pub to: NameAddr,
    pub headers: Vec<(HeaderName, String)>,
    pub setup_timeout: Duration,
    /// Held while the call lives (given back when it fails or ends).
    pub channel: Channel,
}

/// Why a trunk was not even tried: each is a trunk failure (the next trunk is tried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Skipped {
    #[error("no trunk named {0}")]
    Unknown(String),
    #[error("trunk {0} is down")]
    Down(String),
    #[error("every channel of trunk {0} is in use")]
    Full(String),
    #[error("the address of trunk {0} is not known")]
    Unresolved(String),
    /// Not a trunk failure: the number is no dial string (no other trunk would take it).
    #[error("{0:?} is not a number a trunk can be sent")]
    BadNumber(String),
}

impl Skipped {
    /// What the caller gets if no other target follows.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Skipped::Unknown(_) => StatusCode::NOT_FOUND,
            // RFC 3261 §21.4.22 Address Incomplete.
            Skipped::BadNumber(_) => StatusCode(484),
            Skipped::Down(_) | Skipped::Full(_) | Skipped::Unresolved(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

/// Prepares the call of `number` through trunk `name` for `caller`, whose own public number
/// is `did` (an extension's DID, checked by the store: digits and a leading `+` only).
pub(crate) fn prepare(
    trunks: &super::TrunkTable,
    name: &str,
    number: &str,
    caller: &Originator,
    did: Option<&str>,
) -> Result<Attempt, Skipped> {
    // Written into the Request-URI, To and From: dial characters only (nothing that could
    // end a URI or a header).
    let dial_string = |n: &str| {
        !n.is_empty()
            && n.len() <= 64
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+*#-._".contains(&b))
    };
    if !dial_string(number) {
        return Err(Skipped::BadNumber(number.to_string()));
    }
    let trunk = trunks
        .get(name)
        .ok_or_else(|| Skipped::Unknown(name.to_string()))?;
    if trunks.is_down(name) {
        return Err(Skipped::Down(name.to_string()));
    }
    let out = &trunk.outbound;
    let mut peers = out.targets.iter().map(|&(remote, local)| Peer {
        kind: out.transport,
        remote,
        local,
        conn: None,
    });
    let peer = peers
        .next()
        .ok_or_else(|| Skipped::Unresolved(name.to_string()))?;
    let others = peers.collect();
    let host = Host::parse(&out.host).map_err(|_| Skipped::Unresolved(name.to_string()))?;
    let channel = trunks
        .seize(&trunk)
        .ok_or_else(|| Skipped::Full(name.to_string()))?;
    let mut contact = Uri::sip(Some(number), host.clone(), out.port);
    if out.transport != TransportKind::Udp {
        contact = contact.with_param("transport", Some(out.transport.name()));
    }
    let to = NameAddr::new(Uri::sip(Some(number), host.clone(), None));
    let (from, mut headers) = caller_id(out, caller, did, &host);
    if let Some(proxy) = &out.proxy {
        // RFC 3261 §8.1.2: a pre-existing route set of one loose-routing proxy.
        headers.insert(0, (HeaderName::ROUTE, format!("<sip:{proxy};lr>")));
    }
    Ok(Attempt {
        number: number.to_string(),
        peer,
        others,
        contact,
        from,
        to,
        headers,
        setup_timeout: out.setup_timeout,
        channel,
        trunk,
    })
}

/// The From of the trunk leg and the privacy headers, per the trunk's caller-ID mode.
fn caller_id(
    out: &super::Outbound,
    caller: &Originator,
    did: Option<&str>,
    host: &Host,
) -> (NameAddr, Vec<(HeaderName, String)>) {
    let did = did.filter(|d| !d.is_empty());
    let own = did.unwrap_or(caller.number());
    let trunk_number = Some(out.caller_id.as_str()).filter(|n| !n.is_empty());
    let named = |number: &str| {
        let mut from = NameAddr::new(Uri::sip(Some(number), host.clone(), None));
        from.display_name = caller.name().map(str::to_owned);
        from
    };
    match out.caller_id_mode.as_str() {
        "anonymous" => {
            let mut from = NameAddr::new(Uri::sip(
                Some("anonymous"),
                Host::parse("anonymous.invalid").unwrap_or_else(|_| host.clone()),
                None,
            ));
            from.display_name = Some("Anonymous".to_string());
            let asserted = NameAddr::new(Uri::sip(
                Some(trunk_number.unwrap_or(own)),
                host.clone(),
                None,
            ));
            let headers = vec![
                (HeaderName::from_bytes("Privacy".into()), "id".to_string()),
                (
                    HeaderName::from_bytes("P-Asserted-Identity".into()),
                    asserted.to_string(),
                ),
            ];
            (from, headers)
        }
        "trunk" => (named(trunk_number.unwrap_or(own)), Vec::new()),
        _ => {
            let from = named(own);
            let headers = match did {
                Some(did) => vec![(
                    HeaderName::from_bytes("P-Asserted-Identity".into()),
                    NameAddr::new(Uri::sip(Some(did), host.clone(), None)).to_string(),
                )],
                None => Vec::new(),
            };
            (from, headers)
        }
    }
}

/// Whether a trunk's answer sends the call to the trunk's next address (RFC 3263 §4.3: no
/// answer at all, a transport failure, or 503), before the plan hears of it.
pub(crate) fn next_address(end: &DialEnd) -> bool {
    end.outcome != pbx_calls::DialOutcome::NoAnswer && matches!(end.status.code(), 408 | 503)
}

/// What a round through trunks ended with, for the plan. A trunk's failure (408, 5xx, no
/// answer within its setup time, credentials refused) is `Unavailable`: an `in_order` dial
/// tries its next target. Busy (486, 600, 603), no answer after ringing, and any other
/// refusal of the number (404, 484, 480...) end the dial: another trunk would reach the same
/// party.
pub(crate) fn outcome(end: &DialEnd) -> DialOutcome {
    if end.outcome == pbx_calls::DialOutcome::NoAnswer {
        return DialOutcome::NoAnswer;
    }
    match end.status.code() {
        408 | 401 | 407 | 500..=599 => DialOutcome::Unavailable,
        486 | 600 | 603 => DialOutcome::Busy,
        _ => DialOutcome::Rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trunk::{Outbound, TrunkTable};
    use pbx_calls::{Disposition, HangupSide};

    fn table(mode: &str, caller_id: &str, proxy: Option<&str>) -> TrunkTable {
        let peer = TrunkPeer {
            name: "provider".into(),
            context: "from-provider".into(),
            allowed_networks: Vec::new(),
            registered_user: None,
            addresses: Vec::new(),
            media_encryption: "off".into(),
            channels: 1,
            dtmf: Default::default(),
            outbound: Outbound {
                host: "sip.example.net".into(),
                port: Some(5080),
                targets: vec![(
                    "192.0.2.7:5080".parse().unwrap_or_else(|_| unreachable!()),
                    "192.0.2.1:5060".parse().unwrap_or_else(|_| unreachable!()),
                )],
                proxy: proxy.map(str::to_owned),
                caller_id_mode: mode.into(),
                caller_id: caller_id.into(),
                setup_timeout: Duration::from_secs(5),
                ..Outbound::default()
            },
        };
        TrunkTable::new(vec![peer])
    }

    fn alice() -> Originator {
        Originator::Extension {
            number: "1001".into(),
            name: Some("Alice".into()),
        }
    }

    #[test]
    fn the_request_uri_and_the_callers_own_number() {
        let t = table("extension", "", None);
        let a =
            prepare(&t, "provider", "+493012345", &alice(), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.contact.to_string(), "sip:+493012345@sip.example.net:5080");
        assert_eq!(a.to.to_string(), "<sip:+493012345@sip.example.net>");
        assert_eq!(a.from.to_string(), "\"Alice\" <sip:1001@sip.example.net>");
        assert!(a.headers.is_empty());
        assert_eq!(a.peer.remote.to_string(), "192.0.2.7:5080");
    }

    #[test]
    fn the_extensions_did_in_from_and_the_asserted_identity() {
        let t = table("extension", "4930999", None);
        let a = prepare(&t, "provider", "030123", &alice(), Some("+15551230001"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            a.from.to_string(),
            "\"Alice\" <sip:+15551230001@sip.example.net>"
        );
        let text: Vec<String> = a.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
        assert_eq!(
            text,
            ["P-Asserted-Identity: <sip:+15551230001@sip.example.net>"]
        );
        drop(a);
        // An empty DID is none: the extension's own number, as before.
        let a =
            prepare(&t, "provider", "030123", &alice(), Some("")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.from.uri.user(), Some("1001"));
        assert!(a.headers.is_empty());
        drop(a);
        // The trunk's own number still wins in `trunk` mode; anonymous asserts the DID when
        // the trunk has no number of its own.
        let t = table("trunk", "4930999", None);
        let a = prepare(&t, "provider", "030123", &alice(), Some("+15551230001"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.from.uri.user(), Some("4930999"));
        drop(a);
        let t = table("anonymous", "", None);
        let a = prepare(&t, "provider", "030123", &alice(), Some("+15551230001"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            a.headers
                .iter()
                .any(|(_, v)| v == "<sip:+15551230001@sip.example.net>"),
            "{:?}",
            a.headers
        );
    }

    #[test]
    fn the_trunks_number_and_an_outbound_proxy() {
        let t = table("trunk", "4930999", Some("proxy.example.net:5070"));
        let a = prepare(&t, "provider", "030123", &alice(), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.from.uri.user(), Some("4930999"));
        assert_eq!(
            a.headers,
            [(
                HeaderName::ROUTE,
                "<sip:proxy.example.net:5070;lr>".to_string()
            )]
        );
    }

    #[test]
    fn anonymous_with_privacy_and_the_asserted_identity() {
        let t = table("anonymous", "4930999", None);
        let a = prepare(&t, "provider", "030123", &alice(), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            a.from.to_string(),
            "\"Anonymous\" <sip:anonymous@anonymous.invalid>"
        );
        let text: Vec<String> = a.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
        assert_eq!(
            text,
            [
                "Privacy: id",
                "P-Asserted-Identity: <sip:4930999@sip.example.net>"
            ]
        );
    }

    #[test]
    fn skipped_when_unknown_down_or_full() {
        let t = table("extension", "", None);
        assert_eq!(
            prepare(&t, "nope", "1", &alice(), None).err(),
            Some(Skipped::Unknown("nope".into()))
        );
        let held = prepare(&t, "provider", "1", &alice(), None);
        assert!(held.is_ok());
        assert_eq!(
            prepare(&t, "provider", "1", &alice(), None).err(),
            Some(Skipped::Full("provider".into()))
        );
        drop(held);
        t.set_up("provider", false);
        assert_eq!(
            prepare(&t, "provider", "1", &alice(), None).err(),
            Some(Skipped::Down("provider".into()))
        );
        t.set_up("provider", true);
        assert!(prepare(&t, "provider", "1", &alice(), None).is_ok());
        for bad in ["", "1>;x", "1@evil", "1 2", "1\r\nVia: x"] {
            assert_eq!(
                prepare(&t, "provider", bad, &alice(), None).err(),
                Some(Skipped::BadNumber(bad.into()))
            );
        }
    }

    #[test]
    fn only_a_trunks_failure_fails_over() {
        let end = |code: u16, outcome| DialEnd {
            outcome,
            status: StatusCode(code),
            reason: String::new(),
            disposition: Disposition::Failed,
            side: HangupSide::Callee,
        };
        let failed = pbx_calls::DialOutcome::Unavailable;
        for code in [408, 500, 502, 503, 504, 401, 407] {
            assert_eq!(
                outcome(&end(code, failed)),
                DialOutcome::Unavailable,
                "{code}"
            );
        }
        for code in [486, 600, 603] {
            assert_eq!(outcome(&end(code, failed)), DialOutcome::Busy, "{code}");
        }
        for code in [404, 484, 480, 403] {
            assert_eq!(outcome(&end(code, failed)), DialOutcome::Rejected, "{code}");
        }
        let timeout = end(480, pbx_calls::DialOutcome::NoAnswer);
        assert_eq!(outcome(&timeout), DialOutcome::NoAnswer);
    }
}
