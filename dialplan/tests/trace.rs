//! Golden-file tests of `Plan::trace`: `UPDATE_GOLDEN=1 cargo test --test trace` rewrites them.

mod common;

use common::{at, call, demo_text, directory, plan};
use pbx_dialplan::{CallContext, DialOutcome, HttpOutcome, TraceInputs};

fn golden(name: &str, lines: &[String]) {
    let path = format!("{}/tests/golden/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    let got = lines.join("\n") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap_or_else(|e| panic!("{path}: {e}"));
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(got, want, "trace {name} differs from {path}");
}

fn office() -> std::sync::Arc<pbx_dialplan::Plan> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/office.toml");
    plan(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}")))
}

fn inputs(dial: &[DialOutcome], digits: &[&str]) -> TraceInputs {
    TraceInputs {
        dial: dial.to_vec(),
        digits: digits.iter().map(|d| d.to_string()).collect(),
        http: Vec::new(),
    }
}

#[test]
fn demo_extension_busy() {
    let p = plan(&demo_text());
    golden(
        "demo-extension-busy",
        &p.trace(
            &call("1001", "1000"),
            &directory,
            &inputs(&[DialOutcome::Busy], &[]),
        ),
    );
}

#[test]
fn demo_ivr() {
    let p = plan(&demo_text());
    let lines = p.trace(
        &call("1001", "700"),
        &directory,
        &inputs(&[DialOutcome::Answered], &["9", "", "1"]),
    );
    golden("demo-ivr", &lines);
}

#[test]
fn demo_lobby_refused() {
    let p = plan(&demo_text());
    golden(
        "demo-lobby-refused",
        &p.trace(&call("1990", "1001"), &directory, &TraceInputs::default()),
    );
}

#[test]
fn demo_emergency_from_lobby() {
    let p = plan(&demo_text());
    let lines = p.trace(
        &call("1990", "112"),
        &directory,
        &inputs(&[DialOutcome::Unavailable], &[]),
    );
    golden("demo-emergency", &lines);
}

#[test]
fn office_http_lookup_and_open_hours() {
    let p = office();
    let mut c: CallContext = call("1001", "800");
    c.caller_name = "Anna Müller".into();
    c.now = at("2026-03-30T06:30:00Z"); // Monday 08:30 CEST
    let mut i = inputs(&[DialOutcome::NoAnswer, DialOutcome::NoAnswer], &[]);
    i.http = vec![HttpOutcome::Response {
        status: 200,
        body: r#"{"customer":{"name":"ACME GmbH","tier":"gold"}}"#.into(),
    }];
    golden("office-http-open", &p.trace(&c, &directory, &i));
}

#[test]
fn office_closed_before_dst_change_and_on_holiday() {
    let p = office();
    let mut c = call("1001", "801");
    c.now = at("2026-03-23T06:30:00Z"); // Monday 07:30 CET: closed
    let mut lines = p.trace(&c, &directory, &TraceInputs::default());
    c.now = at("2026-04-03T10:00:00Z"); // Good Friday, a holiday
    lines.extend(p.trace(&c, &directory, &TraceInputs::default()));
    golden("office-closed", &lines);
}

#[test]
fn office_outside_line_via_goto_and_captures() {
    let p = office();
    let lines = p.trace(
        &call("1001", "90301234"),
        &directory,
        &inputs(&[DialOutcome::Busy], &[]),
    );
    golden("office-outside", &lines);
}
