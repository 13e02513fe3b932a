//! `trunk:NAME/NUMBER` targets: parsed with the number rewritten, checked, permitted only to
//! contexts that may call the number, and failed over only on a trunk's failure.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{call, directory, plan, problems};
use pbx_dialplan::{Action, DialOutcome, Plan, StepResult, Target};

const PLAN: &str = r#"[defaults]
context = "staff"

[context.staff]
may_call = ["any"]

[[context.staff.rule]]
pattern = "_0."
steps = [{ dial = { targets = ["trunk:provider/+49${number:1}", "trunk:oldpbx/${number}"],
                    strategy = "in_order", timeout = "30s",
                    on_busy = [{ playback = "${dial_status}" }],
                    on_unavailable = [{ playback = "${dial_status}" }] } }]

[[context.staff.rule]]
pattern = "_2XXX"
steps = [{ dial = "trunk:oldpbx/${number}" }]

[context.lobby]
members = ["1990-1999"]
may_call = ["1000"]
include = ["staff"]

[context.from-oldpbx]
[[context.from-oldpbx.rule]]
pattern = "_1XXX"
steps = [{ dial = "${number}" }]
"#;

fn trunk_plan() -> Arc<Plan> {
    match Plan::parse_assigned("test.toml", PLAN, &["from-oldpbx".to_string()]) {
        Ok(p) => Arc::new(p),
        Err(e) => panic!("plan does not validate:\n{e}"),
    }
}

fn dial(trunk: &str, number: &str) -> Action {
    Action::Dial {
        targets: vec![Target::Trunk {
            trunk: trunk.into(),
            number: number.into(),
        }],
        timeout: Duration::from_secs(30),
        caller_name: "Ext 1000".into(),
    }
}

#[test]
fn the_number_is_rewritten_and_the_trunks_are_listed_with_positions() {
    let p = trunk_plan();
    let mut x = p.route(&call("1000", "0301234"));
    assert_eq!(x.next(&directory, None), dial("provider", "+49301234"));
    let named: Vec<(&str, usize, usize)> = p.trunk_targets().collect();
    assert_eq!(
        named,
        [("provider", 9, 32), ("oldpbx", 9, 65), ("oldpbx", 16, 19)]
    );
}

#[test]
fn the_next_trunk_only_when_a_trunk_failed() {
    let p = trunk_plan();
    // 408, 5xx, no answer in the setup time: the next trunk.
    let mut x = p.route(&call("1000", "0301234"));
    let _ = x.next(&directory, None);
    assert_eq!(
        x.next(&directory, Some(StepResult::Dial(DialOutcome::Unavailable))),
        dial("oldpbx", "0301234")
    );
    // The last trunk failed too: on_unavailable.
    assert_eq!(
        x.next(&directory, Some(StepResult::Dial(DialOutcome::Unavailable))),
        Action::Playback {
            prompt: "unavailable".into()
        }
    );
    // Busy (486, 600, 603) and a refused number (404...) end the dial with that outcome.
    for (outcome, heard) in [
        (DialOutcome::Busy, "busy"),
        (DialOutcome::Rejected, "rejected"),
    ] {
        let mut x = p.route(&call("1000", "0301234"));
        let _ = x.next(&directory, None);
        assert_eq!(
            x.next(&directory, Some(StepResult::Dial(outcome))),
            Action::Playback {
                prompt: heard.into()
            },
            "{outcome:?}"
        );
    }
    // No answer after the trunk rang: no other trunk, the plan ends.
    let mut x = p.route(&call("1000", "0301234"));
    let _ = x.next(&directory, None);
    assert_eq!(
        x.next(&directory, Some(StepResult::Dial(DialOutcome::NoAnswer))),
        Action::End
    );
}

#[test]
fn the_lobby_may_not_reach_a_trunk() {
    let p = trunk_plan();
    let refused = p.route(&call("1990", "0301234")).next(&directory, None);
    assert!(
        matches!(refused, Action::Refused { status: 403, .. }),
        "{refused:?}"
    );
    let refused = p.route(&call("1990", "2000")).next(&directory, None);
    assert!(matches!(refused, Action::Refused { status: 403, .. }));
}

#[test]
fn a_trunks_context_needs_no_may_call_when_the_server_assigns_it() {
    // Without the store's word, `from-oldpbx` is unreachable...
    let got = problems(PLAN);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("23:10: context `from-oldpbx` is unreachable"),
        "{got:?}"
    );
    // ...with it, the plan is valid and the trunk's callers reach extensions.
    let p = trunk_plan();
    let mut context = call("+4930555", "1001");
    context.caller_context = Some("from-oldpbx".into());
    assert_eq!(
        p.route(&context).next(&directory, None),
        Action::Dial {
            targets: vec![Target::Extension("1001".into())],
            timeout: Duration::from_secs(20),
            caller_name: "Ext +4930555".into(),
        }
    );
}

#[test]
fn malformed_trunk_targets() {
    let text = r#"[defaults]
context = "a"
[context.a]
[[context.a.rule]]
pattern = "1"
steps = [{ dial = { targets = ["trunk:provider", "trunk:${t}/1", "trunk:p/", "trunk:ok/${number}"] } }]
"#;
    assert_eq!(
        problems(text),
        [
            "6:32: `trunk:provider`: a trunk target is trunk:NAME/NUMBER",
            "6:50: `trunk:${t}/1`: the trunk name `${t}` is 1 to 32 letters, digits, - and _ (written out, no variables)",
            "6:66: `trunk:p/`: no number after the trunk name",
        ]
    );
}

#[test]
fn a_trace_names_the_trunk() {
    let p = plan(&PLAN.replace(
        "[context.from-oldpbx]",
        "[context.from-oldpbx]\nmay_call = [\"any\"]",
    ));
    let inputs = pbx_dialplan::TraceInputs {
        dial: vec![DialOutcome::Unavailable, DialOutcome::Answered],
        digits: Vec::new(),
        http: Vec::new(),
    };
    let lines = p.trace(&call("1000", "0301234"), &directory, &inputs);
    let text = lines.join("\n");
    assert!(
        text.contains("dial trunk provider number +49301234 for 30s"),
        "{text}"
    );
    assert!(text.contains("dial trunk oldpbx number 0301234"), "{text}");
}

#[test]
fn a_callers_digits_never_become_a_trunk_target() {
    let text = r#"[defaults]
context = "a"
[context.a]
[[context.a.rule]]
regex = "x(.*)"
steps = [{ dial = "${1}" }]
"#;
    let p = plan(text);
    let action = p
        .route(&call("1000", "xtrunk:provider/0900123"))
        .next(&directory, None);
    assert_eq!(
        action,
        Action::Dial {
            targets: vec![Target::External("trunk:provider/0900123".into())],
            timeout: Duration::from_secs(20),
            caller_name: "Ext 1000".into(),
        }
    );
}
