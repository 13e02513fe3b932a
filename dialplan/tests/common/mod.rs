//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use pbx_dialplan::{CallContext, Diagnostics, Plan, Timestamp};

/// Parses `text`; panics with every problem when it does not validate.
pub fn plan(text: &str) -> Arc<Plan> {
    match Plan::parse("test.toml", text) {
        Ok(p) => Arc::new(p),
        Err(e) => panic!("plan does not validate:\n{e}"),
    }
}

/// The problems of an invalid plan, one `line:col: message` per entry (the path left out).
pub fn problems(text: &str) -> Vec<String> {
    match Plan::parse("test.toml", text) {
        Ok(_) => panic!("plan validates, expected problems"),
        Err(Diagnostics(list)) => list
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.col, d.message))
            .collect(),
    }
}

pub fn demo_text() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/dialplan.toml");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn at(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

pub fn call(from: &str, to: &str) -> CallContext {
    CallContext {
        caller: from.into(),
        caller_name: format!("Ext {from}"),
        caller_context: None,
        dialed: to.into(),
        now: at("2026-03-30T08:00:00Z"),
    }
}

/// Extensions 1000-1099 and 1990-1999 exist.
pub fn directory(number: &str) -> bool {
    number.len() == 4
        && number
            .parse::<u32>()
            .is_ok_and(|n| (1000..1100).contains(&n) || (1990..2000).contains(&n))
}
