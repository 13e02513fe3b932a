//! Property: any plan that validates routes any number to a final action, without panicking,
//! whatever the server reports back.

mod common;

use proptest::prelude::*;
use std::sync::Arc;

use pbx_dialplan::{Action, DialOutcome, HttpOutcome, Plan, StepResult};

const PATTERNS: &[&str] = &[
    "pattern = \"1000\"",
    "pattern = \"_1XXX\"",
    "pattern = \"_X.\"",
    "pattern = \"_9!\"",
    "pattern = \"*97\"",
    "regex = \"9(\\\\d+)\"",
    "regex = \"(\\\\d)(\\\\d)?\"",
    "extension = true",
    "pattern = \"_[1-5]XX\"",
    "pattern = \"_N.\"",
];

const STEPS: &[&str] = &[
    "\"answer\"",
    "\"echo\"",
    "\"hangup\"",
    "\"voicemail_menu\"",
    "{ dial = { targets = [\"${number}\", \"x${caller}\"], on_busy = [{ voicemail = \"${number}\" }] } }",
    "{ dial = { targets = \"${number:1:2}\", strategy = \"in_order\" } }",
    "{ playback = \"p-${digits}\" }",
    "{ menu = { prompt = \"m\", digits = 2, retries = 1, options = { \"1\" = [\"echo\"], \"2\" = [{ goto = \"l0\" }] }, invalid = [{ playback = \"x\" }] } }",
    "{ goto = \"l0\" }",
    "{ goto = \"l1\" }",
    "{ goto = { context = \"c1\" } }",
    "{ goto = { context = \"c0\", number = \"${number}1\" } }",
    "{ set = { v = \"${caller_name}-${v}\" } }",
    "{ if_time = { weekdays = [\"mon-fri\"], times = [\"08:00-18:00\"], then = [\"echo\"], else = [{ hangup = 486 }] } }",
    "{ http_lookup = { url = \"http://h/${v}\", set = { v = \"a.b\" }, on_failure = [\"answer\"] } }",
    "{ read = { var = \"v\", prompt = \"p\", max_digits = 3 } }",
    "{ say = { digits = \"${v}\" } }",
    "{ db_lookup = { database = \"d\", query = \"SELECT a FROM t WHERE b = $1\", params = [\"${v}\"], set = { v = \"a\" }, on_failure = [{ goto = \"l1\" }] } }",
];

fn plan_text(rules: &[(Vec<usize>, usize, Vec<usize>)]) -> String {
    let mut text = String::from("[defaults]\ncontext = \"c0\"\n[context.c0]\ninclude = [\"c1\"]\n");
    let mut in_c1 = false;
    for (i, (ctx, pattern, steps)) in rules.iter().enumerate() {
        let c = ctx.first().copied().unwrap_or(0) % 2;
        if c == 1 && !in_c1 {
            text.push_str("[context.c1]\n");
            in_c1 = true;
        }
        let steps: Vec<&str> = steps.iter().map(|s| STEPS[s % STEPS.len()]).collect();
        text.push_str(&format!(
            "[[context.c{c}.rule]]\n{}\nlabel = \"l{i}\"\nsteps = [{}]\n",
            PATTERNS[pattern % PATTERNS.len()],
            steps.join(", ")
        ));
    }
    if !in_c1 {
        text.push_str("[context.c1]\n");
    }
    text
}

fn result_for(action: &Action, n: usize) -> StepResult {
    match action {
        Action::Dial { .. } => StepResult::Dial(
            [
                DialOutcome::Busy,
                DialOutcome::NoAnswer,
                DialOutcome::Unavailable,
                DialOutcome::Answered,
            ][n % 4],
        ),
        Action::Menu { .. } => StepResult::Digits(["", "1", "2", "9"][n % 4].into()),
        Action::HttpLookup(_) => StepResult::Http(match n % 2 {
            0 => HttpOutcome::Response {
                status: 200,
                body: "{\"a\":{\"b\":\"x\"}}".into(),
            },
            _ => HttpOutcome::Failed("down".into()),
        }),
        Action::DbLookup(_) => StepResult::Db(match n % 3 {
            0 => pbx_dialplan::DbOutcome::Row(vec![("a".into(), "7".into())]),
            1 => pbx_dialplan::DbOutcome::NoRow,
            _ => pbx_dialplan::DbOutcome::Failed("x".into()),
        }),
        _ => StepResult::Done,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn valid_plans_always_reach_a_final_action(
        rules in prop::collection::vec(
            (prop::collection::vec(0usize..2, 1), 0usize..20, prop::collection::vec(0usize..40, 1..4)),
            1..6,
        ),
        numbers in prop::collection::vec("[0-9*#]{1,6}", 1..4),
        answers in prop::collection::vec(0usize..8, 40),
        hour in 0i64..(24 * 7),
    ) {
        let text = plan_text(&rules);
        // About a third of the generated plans validate (the rest shadow rules or goto labels
        // that do not exist); those are the ones under test.
        let Ok(plan) = Plan::parse("p.toml", &text) else { return Ok(()) };
        let plan = Arc::new(plan);
        for number in &numbers {
            let mut c = common::call("1000", number);
            c.now = c.now.checked_add(jiff::SignedDuration::from_hours(hour)).unwrap_or(c.now);
            let mut x = plan.route(&c);
            let mut input = None;
            // A plan may loop through a menu for as long as the caller keeps pressing keys;
            // what matters is that every call of `next` returns, and a final action repeats.
            for n in 0..200 {
                let action = x.next(&common::directory, input.take());
                if action.is_final() {
                    prop_assert_eq!(x.next(&common::directory, None), action);
                    break;
                }
                input = Some(result_for(&action, answers[n % answers.len()]));
            }
            let lines = plan.trace(&c, &common::directory, &Default::default());
            prop_assert!(lines.len() >= 2, "{:?}", lines);
        }
    }
}
