//! Parse any text as a dialplan; when it validates, route a few numbers through it and trace
//! them. Neither may panic, and every call must reach an action.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use pbx_dialplan::{Action, CallContext, DialOutcome, HttpOutcome, Plan, StepResult, TraceInputs};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(plan) = Plan::parse("fuzz.toml", text) else {
        return;
    };
    let plan = Arc::new(plan);
    let directory = |n: &str| n.len() == 4 && n.starts_with('1');
    for dialed in ["1000", "700", "*97", "0301234", "9", ""] {
        let call = CallContext {
            caller: "1001".into(),
            caller_name: "Fuzz".into(),
            caller_context: None,
            dialed: dialed.into(),
            now: pbx_dialplan::Timestamp::from_second(1_774_857_600).unwrap_or_default(),
        };
        let mut x = plan.route(&call);
        let mut input = None;
        for n in 0..50usize {
            let action = x.next(&directory, input.take());
            if action.is_final() {
                break;
            }
            input = Some(match action {
                Action::Dial { .. } => StepResult::Dial(
                    [
                        DialOutcome::Busy,
                        DialOutcome::NoAnswer,
                        DialOutcome::Unavailable,
                    ][n % 3],
                ),
                Action::Menu { .. } => StepResult::Digits(["1", "", "9"][n % 3].into()),
                Action::HttpLookup(_) => StepResult::Http(HttpOutcome::Response {
                    status: 200,
                    body: text.chars().take(64).collect(),
                }),
                _ => StepResult::Done,
            });
        }
        let _ = plan.trace(&call, &directory, &TraceInputs::default());
    }
});
