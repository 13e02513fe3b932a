//! RFC 3261 §10.3 registrar rules over parsed REGISTER requests.

use bytes::Bytes;
use pbx_sip::message::{HeaderName, Message, Request};
use pbx_sip::parse::parse_message;
use pbx_sip::registrar::{
    Binding, BindingChange, RegisterError, RegisterPlan, RegistrarPolicy, process_register,
    prune_expired,
};
use pbx_sip::status::StatusCode;
use pbx_sip::uri::Uri;

const NOW: u64 = 1_700_000_000;

fn policy() -> RegistrarPolicy {
    RegistrarPolicy {
        min_expires: 60,
        max_expires: 3600,
        default_expires: 1800,
        max_bindings_per_aor: 3,
    }
}

/// A REGISTER for 1001@pbx.test with the given Call-ID, CSeq and extra header lines.
fn register(call_id: &str, cseq: u32, extra: &[&str]) -> Request {
    let mut text = format!(
        "REGISTER sip:pbx.test SIP/2.0\r\n\
         Via: SIP/2.0/UDP 10.0.0.5:5062;branch=z9hG4bK{cseq}x\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:1001@pbx.test>;tag=a1\r\n\
         To: <sip:1001@pbx.test>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n"
    );
    for line in extra {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("Content-Length: 0\r\n\r\n");
    match parse_message(Bytes::from(text)) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

fn run(req: &Request, existing: &[Binding]) -> Result<RegisterPlan, RegisterError> {
    process_register(NOW, req, existing, &policy())
}

fn uri(text: &str) -> Uri {
    Uri::parse(text).unwrap()
}

fn binding(contact: &str, call_id: &str, cseq: u32, expires_at: u64) -> Binding {
    Binding {
        contact: uri(contact),
        expires_at,
        call_id: call_id.into(),
        cseq,
        q: None,
        instance: None,
        reg_id: None,
    }
}

fn upserts(plan: &RegisterPlan) -> Vec<&Binding> {
    plan.changes
        .iter()
        .filter_map(|c| match c {
            BindingChange::Upsert(b) => Some(b),
            _ => None,
        })
        .collect()
}

#[test]
fn adds_a_binding_with_the_default_expiry() {
    let plan = run(
        &register("c1", 1, &["Contact: <sip:1001@10.0.0.5:5062>"]),
        &[],
    )
    .unwrap();
    assert_eq!(plan.bindings.len(), 1);
    let b = &plan.bindings[0];
    assert_eq!(b.contact.to_string(), "sip:1001@10.0.0.5:5062");
    assert_eq!(b.expires_at, NOW + 1800);
    assert_eq!((b.call_id.as_str(), b.cseq), ("c1", 1));
    assert_eq!(plan.changes, vec![BindingChange::Upsert(b.clone())]);
    assert_eq!(
        plan.response_contacts(NOW),
        vec!["<sip:1001@10.0.0.5:5062>;expires=1800"]
    );
    assert_eq!(
        plan.response_contacts(NOW + 800),
        vec!["<sip:1001@10.0.0.5:5062>;expires=1000"]
    );
    assert!(!plan.is_query());
}

#[test]
fn contact_param_beats_expires_header_which_beats_default() {
    let req = register(
        "c1",
        1,
        &[
            "Expires: 300",
            "Contact: <sip:a@10.0.0.1>;expires=120, <sip:b@10.0.0.2>",
        ],
    );
    let plan = run(&req, &[]).unwrap();
    let at: Vec<u64> = plan.bindings.iter().map(|b| b.expires_at - NOW).collect();
    assert_eq!(at, vec![120, 300]);
}

#[test]
fn long_requests_are_capped_at_max_expires() {
    let plan = run(
        &register("c1", 1, &["Contact: <sip:a@h>;expires=86400"]),
        &[],
    )
    .unwrap();
    assert_eq!(plan.bindings[0].expires_at, NOW + 3600);
    let plan = run(
        &register("c1", 1, &["Expires: 4294967295", "Contact: <sip:a@h>"]),
        &[],
    )
    .unwrap();
    assert_eq!(plan.bindings[0].expires_at, NOW + 3600);
}

#[test]
fn malformed_expiry_counts_as_3600() {
    let plan = run(
        &register("c1", 1, &["Contact: <sip:a@h>;expires=soon"]),
        &[],
    )
    .unwrap();
    assert_eq!(plan.bindings[0].expires_at, NOW + 3600);
    let plan = run(
        &register("c1", 1, &["Expires: later", "Contact: <sip:a@h>"]),
        &[],
    )
    .unwrap();
    assert_eq!(plan.bindings[0].expires_at, NOW + 3600);
}

#[test]
fn too_brief_gets_423_with_min_expires() {
    for extra in [
        ["Contact: <sip:a@h>;expires=30", ""],
        ["Expires: 59", "Contact: <sip:a@h>"],
    ] {
        let extra: Vec<&str> = extra.into_iter().filter(|l| !l.is_empty()).collect();
        let err = run(&register("c1", 1, &extra), &[]).unwrap_err();
        assert_eq!(err, RegisterError::IntervalTooBrief { min_expires: 60 });
        assert_eq!(err.status(), StatusCode::INTERVAL_TOO_BRIEF);
        assert_eq!(err.min_expires(), Some(60));
    }
    // Exactly the minimum is fine; so is 0, which removes.
    assert!(run(&register("c1", 1, &["Contact: <sip:a@h>;expires=60"]), &[]).is_ok());
    assert!(run(&register("c1", 1, &["Contact: <sip:a@h>;expires=0"]), &[]).is_ok());
}

#[test]
fn only_intervals_under_an_hour_are_too_brief() {
    // RFC 3261 §10.3 step 7: 423 only if under an hour, even if the minimum is higher.
    let strict = RegistrarPolicy {
        min_expires: 7200,
        max_expires: 86400,
        ..policy()
    };
    let req = register("c1", 1, &["Contact: <sip:a@h>;expires=3600"]);
    let plan = process_register(NOW, &req, &[], &strict).unwrap();
    assert_eq!(plan.bindings[0].expires_at, NOW + 3600);
    let req = register("c1", 1, &["Contact: <sip:a@h>;expires=3599"]);
    assert_eq!(
        process_register(NOW, &req, &[], &strict),
        Err(RegisterError::IntervalTooBrief { min_expires: 7200 })
    );
}

#[test]
fn refresh_updates_the_equivalent_binding() {
    let existing = [binding(
        "sip:1001@10.0.0.5:5062;transport=udp",
        "c1",
        1,
        NOW + 10,
    )];
    // Same URI in different case and parameter order is the same binding (§19.1.4).
    let req = register(
        "c1",
        2,
        &["Contact: <sip:1001@10.0.0.5:5062;TRANSPORT=UDP>;expires=600"],
    );
    let plan = run(&req, &existing).unwrap();
    assert_eq!(plan.bindings.len(), 1);
    assert_eq!(plan.bindings[0].expires_at, NOW + 600);
    assert_eq!(plan.bindings[0].cseq, 2);
    // The stored text differs, so the old key is removed before the new one is written.
    assert_eq!(
        plan.changes,
        vec![
            BindingChange::Remove(existing[0].clone()),
            BindingChange::Upsert(plan.bindings[0].clone()),
        ]
    );
    // With identical text it is a plain upsert.
    let req = register(
        "c1",
        2,
        &["Contact: <sip:1001@10.0.0.5:5062;transport=udp>"],
    );
    let plan = run(&req, &existing).unwrap();
    assert_eq!(
        plan.changes,
        vec![BindingChange::Upsert(plan.bindings[0].clone())]
    );
}

#[test]
fn same_call_id_needs_a_higher_cseq() {
    let existing = [binding("sip:a@h", "c1", 5, NOW + 100)];
    for cseq in [4, 5] {
        let err = run(&register("c1", cseq, &["Contact: <sip:a@h>"]), &existing).unwrap_err();
        assert_eq!(err, RegisterError::OutOfOrder { cseq, stored: 5 });
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        // Removal is held to the same rule.
        let err = run(
            &register("c1", cseq, &["Contact: <sip:a@h>;expires=0"]),
            &existing,
        );
        assert!(matches!(err, Err(RegisterError::OutOfOrder { .. })));
    }
    assert!(run(&register("c1", 6, &["Contact: <sip:a@h>"]), &existing).is_ok());
    // A different Call-ID (the phone rebooted) may have any CSeq.
    let plan = run(&register("c2", 1, &["Contact: <sip:a@h>"]), &existing).unwrap();
    assert_eq!(
        (plan.bindings[0].call_id.as_str(), plan.bindings[0].cseq),
        ("c2", 1)
    );
}

#[test]
fn a_failing_contact_fails_the_whole_request() {
    let existing = [binding("sip:a@h", "c1", 5, NOW + 100)];
    let req = register("c1", 5, &["Contact: <sip:new@h>, <sip:a@h>"]);
    assert!(run(&req, &existing).is_err());
}

#[test]
fn the_same_contact_twice_in_one_request_is_not_out_of_order() {
    let req = register(
        "c1",
        1,
        &[
            "Contact: <sip:a@h>;expires=100",
            "Contact: <sip:a@h>;expires=200",
        ],
    );
    let plan = run(&req, &[]).unwrap();
    assert_eq!(plan.bindings.len(), 1);
    assert_eq!(plan.bindings[0].expires_at, NOW + 200);
    assert_eq!(upserts(&plan).len(), 1);
}

#[test]
fn expires_zero_removes_one_binding() {
    let existing = [
        binding("sip:a@h", "c1", 1, NOW + 100),
        binding("sip:b@h", "c9", 1, NOW + 100),
    ];
    let plan = run(
        &register("c1", 2, &["Expires: 0", "Contact: <sip:a@h>"]),
        &existing,
    )
    .unwrap();
    assert_eq!(
        plan.changes,
        vec![BindingChange::Remove(existing[0].clone())]
    );
    assert_eq!(plan.bindings, vec![existing[1].clone()]);
    assert_eq!(plan.response_contacts(NOW), vec!["<sip:b@h>;expires=100"]);
    // Removing an unknown contact changes nothing and is not an error.
    let plan = run(
        &register("c1", 2, &["Contact: <sip:zz@h>;expires=0"]),
        &existing,
    )
    .unwrap();
    assert!(plan.changes.is_empty());
    assert_eq!(plan.bindings.len(), 2);
}

#[test]
fn star_with_expires_zero_removes_all() {
    let existing = [
        binding("sip:a@h", "c1", 1, NOW + 100),
        binding("sip:b@h", "c2", 7, NOW + 100),
    ];
    let plan = run(&register("c1", 2, &["Contact: *", "Expires: 0"]), &existing).unwrap();
    assert_eq!(plan.changes, vec![BindingChange::RemoveAll]);
    assert!(plan.bindings.is_empty());
    assert!(plan.response_contacts(NOW).is_empty());
    // Same Call-ID as a binding, CSeq not higher: the whole request fails (§10.3 step 6).
    let err = run(&register("c2", 7, &["Contact: *", "Expires: 0"]), &existing).unwrap_err();
    assert_eq!(err, RegisterError::OutOfOrder { cseq: 7, stored: 7 });
}

#[test]
fn star_needs_expires_zero_and_no_other_contact() {
    for extra in [vec!["Contact: *"], vec!["Contact: *", "Expires: 60"]] {
        let err = run(&register("c1", 1, &extra), &[]).unwrap_err();
        assert_eq!(err, RegisterError::StarWithExpires, "{extra:?}");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
    // The parser refuses these already; the rules must too when handed such headers.
    for lines in [vec!["*, <sip:a@h>"], vec!["*", "<sip:a@h>"]] {
        let mut req = register("c1", 1, &["Expires: 0"]);
        for line in &lines {
            req.headers.push(HeaderName::CONTACT, line.to_string());
        }
        let err = run(&req, &[]).unwrap_err();
        assert!(
            matches!(err, RegisterError::Header(_)),
            "{lines:?}: {err:?}"
        );
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
}

#[test]
fn query_lists_live_bindings_and_changes_nothing() {
    let existing = [
        binding("sip:a@h", "c1", 1, NOW + 100),
        binding("sip:old@h", "c1", 1, NOW),
    ];
    let plan = run(&register("c1", 1, &[]), &existing).unwrap();
    assert!(plan.is_query());
    assert_eq!(plan.bindings, vec![existing[0].clone()]);
    assert_eq!(plan.response_contacts(NOW), vec!["<sip:a@h>;expires=100"]);
}

#[test]
fn lapsed_bindings_neither_count_nor_block() {
    // A lapsed binding with the same Call-ID and a higher CSeq does not make the request fail.
    let existing = [binding("sip:a@h", "c1", 9, NOW - 1)];
    let plan = run(&register("c1", 2, &["Contact: <sip:a@h>"]), &existing).unwrap();
    assert_eq!(plan.bindings.len(), 1);
    assert_eq!(plan.bindings[0].cseq, 2);
}

#[test]
fn several_devices_up_to_the_limit() {
    let existing = [
        binding("sip:a@h", "ca", 1, NOW + 100),
        binding("sip:b@h", "cb", 1, NOW + 100),
    ];
    let plan = run(&register("cc", 1, &["Contact: <sip:c@h>"]), &existing).unwrap();
    assert_eq!(plan.bindings.len(), 3);
    assert_eq!(plan.response_contacts(NOW).len(), 3);
    let err = run(
        &register("cd", 1, &["Contact: <sip:c@h>, <sip:d@h>"]),
        &existing,
    )
    .unwrap_err();
    assert_eq!(err, RegisterError::TooManyBindings { max: 3 });
    assert_eq!(err.status(), StatusCode::FORBIDDEN);
    // Replacing within the limit is fine: remove one, add one.
    let req = register(
        "ca",
        2,
        &["Contact: <sip:a@h>;expires=0, <sip:c@h>, <sip:d@h>"],
    );
    let plan = run(&req, &existing).unwrap();
    assert_eq!(plan.bindings.len(), 3);
}

#[test]
fn refreshing_when_already_over_a_lowered_limit_is_allowed() {
    let existing: Vec<Binding> = (0..5)
        .map(|i| binding(&format!("sip:{i}@h"), &format!("c{i}"), 1, NOW + 100))
        .collect();
    let plan = run(&register("c0", 2, &["Contact: <sip:0@h>"]), &existing).unwrap();
    assert_eq!(plan.bindings.len(), 5);
    assert!(run(&register("new", 1, &["Contact: <sip:9@h>"]), &existing).is_err());
}

#[test]
fn outbound_instance_and_reg_id_match_across_contact_changes() {
    let inst = "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";
    let first = register(
        "c1",
        1,
        &[&format!(
            "Contact: <sip:1001@10.0.0.5:5062>;+sip.instance=\"{inst}\";reg-id=1;q=0.5"
        )],
    );
    let plan = run(&first, &[]).unwrap();
    let stored = plan.bindings.clone();
    assert_eq!(stored[0].instance.as_deref(), Some(inst));
    assert_eq!((stored[0].reg_id, stored[0].q), (Some(1), Some(500)));
    assert_eq!(
        plan.response_contacts(NOW),
        vec![format!(
            "<sip:1001@10.0.0.5:5062>;q=0.5;expires=1800;+sip.instance=\"{inst}\";reg-id=1"
        )]
    );
    // The phone moved (new address, new Call-ID): same instance and reg-id replace the flow.
    let moved = register(
        "c2",
        1,
        &[&format!(
            "Contact: <sip:1001@192.168.1.9:5062>;+sip.instance=\"{inst}\";reg-id=1"
        )],
    );
    let plan = run(&moved, &stored).unwrap();
    assert_eq!(plan.bindings.len(), 1);
    assert_eq!(
        plan.bindings[0].contact.to_string(),
        "sip:1001@192.168.1.9:5062"
    );
    assert_eq!(
        plan.changes,
        vec![
            BindingChange::Remove(stored[0].clone()),
            BindingChange::Upsert(plan.bindings[0].clone())
        ]
    );
    // A second flow (reg-id 2) of the same instance is another binding.
    let second = register(
        "c1",
        2,
        &[&format!(
            "Contact: <sip:1001@10.0.0.5:5063>;+sip.instance=\"{inst}\";reg-id=2"
        )],
    );
    assert_eq!(run(&second, &stored).unwrap().bindings.len(), 2);
}

#[test]
fn missing_call_id_or_cseq_is_a_bad_request() {
    let mut req = register("c1", 1, &["Contact: <sip:a@h>"]);
    req.headers
        .remove_all(&pbx_sip::message::HeaderName::CALL_ID);
    let err = run(&req, &[]).unwrap_err();
    assert!(matches!(err, RegisterError::Header(_)));
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn prune_expired_drops_lapsed() {
    let mut list = vec![
        binding("sip:a@h", "c", 1, NOW),
        binding("sip:b@h", "c", 1, NOW + 1),
    ];
    assert_eq!(prune_expired(NOW, &mut list), 1);
    assert_eq!(list[0].contact.to_string(), "sip:b@h");
}

#[test]
fn instance_matching_needs_an_instance_on_both_sides() {
    let inst = "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";
    // First registered without an instance; the same URI with one now updates that binding.
    let existing = [binding("sip:1001@10.0.0.5:5062", "c1", 1, NOW + 100)];
    let req = register(
        "c1",
        2,
        &[&format!(
            "Contact: <sip:1001@10.0.0.5:5062>;+sip.instance=\"{inst}\";reg-id=1"
        )],
    );
    let plan = run(&req, &existing).unwrap();
    assert_eq!(plan.bindings.len(), 1);
    assert_eq!(plan.bindings[0].instance.as_deref(), Some(inst));
    // The key changed (now with instance), so the old row goes first.
    assert_eq!(
        plan.changes,
        vec![
            BindingChange::Remove(existing[0].clone()),
            BindingChange::Upsert(plan.bindings[0].clone())
        ]
    );
    // Two flows of one instance through the same contact URI stay two bindings.
    let stored = plan.bindings;
    let req = register(
        "c1",
        3,
        &[&format!(
            "Contact: <sip:1001@10.0.0.5:5062>;+sip.instance=\"{inst}\";reg-id=2"
        )],
    );
    let plan = run(&req, &stored).unwrap();
    assert_eq!(plan.bindings.len(), 2);
    assert_eq!(
        plan.changes.len(),
        1,
        "only the new flow is written: {:?}",
        plan.changes
    );
}
