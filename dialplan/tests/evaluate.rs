//! The evaluator step by step: variables, branches, menus, lookups, gotos and loops.

mod common;

use std::time::Duration;

use common::{call, directory, plan};
use pbx_dialplan::{
    Action, DbOutcome, DbRequest, DialOutcome, HttpMethod, HttpOutcome, HttpRequest, SayKind,
    StepResult, Target,
};

fn one_context(rules: &str) -> String {
    format!("[defaults]\ncontext = \"a\"\n[context.a]\n{rules}")
}

#[test]
fn a_goto_loop_ends_with_500_instead_of_spinning() {
    let p = plan(&one_context(
        "[[context.a.rule]]\npattern = \"1\"\nlabel = \"x\"\nsteps = [{ goto = \"y\" }]\n\
         [[context.a.rule]]\npattern = \"2\"\nlabel = \"y\"\nsteps = [{ goto = \"x\" }]\n",
    ));
    let action = p.route(&call("1000", "1")).next(&directory, None);
    assert!(
        matches!(action, Action::Failed { status: 500, .. }),
        "{action:?}"
    );
}

#[test]
fn menu_invalid_steps_then_replay_then_failure() {
    let p = plan(&one_context(
        "[[context.a.rule]]\npattern = \"1\"\nsteps = [{ menu = { prompt = \"m\", retries = 1, \
         options = { \"1\" = [\"echo\"] }, invalid = [{ playback = \"bad\" }], \
         on_failure = [{ playback = \"bye\" }] } }, { playback = \"after\" }]\n",
    ));
    let mut x = p.route(&call("1000", "1"));
    let menu = x.next(&directory, None);
    assert!(matches!(menu, Action::Menu { .. }));
    let bad = Action::Playback {
        prompt: "bad".into(),
    };
    assert_eq!(
        x.next(&directory, Some(StepResult::Digits("5".into()))),
        bad
    );
    assert_eq!(x.next(&directory, Some(StepResult::Done)), menu);
    assert_eq!(
        x.next(&directory, Some(StepResult::Digits("5".into()))),
        Action::Playback {
            prompt: "bye".into()
        }
    );
    // After on_failure, the steps after the menu go on.
    assert_eq!(
        x.next(&directory, Some(StepResult::Done)),
        Action::Playback {
            prompt: "after".into()
        }
    );
    assert_eq!(x.next(&directory, Some(StepResult::Done)), Action::End);
    assert_eq!(
        x.next(&directory, None),
        Action::End,
        "final actions repeat"
    );
}

#[test]
fn http_lookup_post_and_failures() {
    let p = plan(&one_context(
        "[[context.a.rule]]\npattern = \"1\"\nsteps = [{ http_lookup = { url = \"http://h/x\", \
         method = \"POST\", body = \"{\\\"from\\\":\\\"${caller}\\\"}\", timeout = \"1s\", \
         set = { who = \"name\" }, on_failure = [{ set = { who = \"nobody\" } }] } }, \
         { playback = \"hello-${who}\" }]\n",
    ));
    let request = Action::HttpLookup(HttpRequest {
        method: HttpMethod::Post,
        url: "http://h/x".into(),
        body: Some("{\"from\":\"1000\"}".into()),
        timeout: Duration::from_secs(1),
    });
    for (outcome, heard) in [
        (
            HttpOutcome::Response {
                status: 200,
                body: "{\"name\":\"bob\"}".into(),
            },
            "hello-bob",
        ),
        (
            HttpOutcome::Response {
                status: 200,
                body: "not json".into(),
            },
            "hello-nobody",
        ),
        (
            HttpOutcome::Response {
                status: 503,
                body: "{}".into(),
            },
            "hello-nobody",
        ),
        (HttpOutcome::Failed("timeout".into()), "hello-nobody"),
    ] {
        let mut x = p.route(&call("1000", "1"));
        assert_eq!(x.next(&directory, None), request);
        assert_eq!(
            x.next(&directory, Some(StepResult::Http(outcome))),
            Action::Playback {
                prompt: heard.into()
            }
        );
    }
}

#[test]
fn dial_in_order_and_empty_targets() {
    let p = plan(&one_context(
        "[[context.a.rule]]\npattern = \"1\"\nsteps = [{ dial = { targets = [\"1001\", \"0301\"], \
         strategy = \"in_order\", on_busy = [{ playback = \"${dial_status}\" }] } }]\n\
         [[context.a.rule]]\npattern = \"2\"\nsteps = [{ set = { t = \"\" } }, { dial = \"${t}\" }, \
         { playback = \"${dial_status}\" }]\n",
    ));
    let mut x = p.route(&call("1000", "1"));
    let dial = |t| Action::Dial {
        targets: vec![t],
        timeout: Duration::from_secs(20),
        caller_name: "Ext 1000".into(),
    };
    assert_eq!(
        x.next(&directory, None),
        dial(Target::Extension("1001".into()))
    );
    assert_eq!(
        x.next(&directory, Some(StepResult::Dial(DialOutcome::NoAnswer))),
        dial(Target::External("0301".into()))
    );
    assert_eq!(
        x.next(&directory, Some(StepResult::Dial(DialOutcome::Busy))),
        Action::Playback {
            prompt: "busy".into()
        }
    );
    let mut x = p.route(&call("1000", "2"));
    assert_eq!(
        x.next(&directory, None),
        Action::Playback {
            prompt: "unavailable".into()
        }
    );
}

#[test]
fn caller_context_override_and_unknown_context() {
    let p = plan(
        "[defaults]\ncontext = \"a\"\n[context.a]\n[[context.a.rule]]\npattern = \"1\"\nsteps = [\"echo\"]\n\
         [context.trunk]\nmay_call = [\"extensions\"]\ninclude = [\"a\"]\n",
    );
    let mut c = call("0301234", "1");
    assert_eq!(p.route(&c).next(&directory, None), Action::Echo);
    c.caller_context = Some("trunk".into());
    assert!(matches!(
        p.route(&c).next(&directory, None),
        Action::Refused { status: 403, .. }
    ));
    c.caller_context = Some("ghost".into());
    assert!(matches!(
        p.route(&c).next(&directory, None),
        Action::Refused { status: 403, .. }
    ));
}

#[test]
fn permissions_by_context_range_and_pattern() {
    let p = plan(
        "[defaults]\ncontext = \"staff\"\n\
         [context.staff]\n[[context.staff.rule]]\npattern = \"_X.\"\nsteps = [\"echo\"]\n\
         [context.boss]\nmembers = [\"1000\"]\ninclude = [\"staff\"]\n\
         [context.guest]\nmembers = [\"1050-1059\"]\nmay_call = [\"boss\", \"1060-1069\", \"_0X.\"]\ninclude = [\"staff\"]\n",
    );
    let go = |to: &str| p.route(&call("1055", to)).next(&directory, None);
    assert_eq!(go("1000"), Action::Echo, "a member of context boss");
    assert_eq!(go("1065"), Action::Echo, "in the range");
    assert_eq!(go("0301"), Action::Echo, "matches the pattern");
    assert!(
        matches!(go("1001"), Action::Refused { .. }),
        "staff, not boss"
    );
    assert!(matches!(go("1070"), Action::Refused { .. }));
}

#[test]
fn goto_context_without_match_is_no_route() {
    let p = plan(
        "[defaults]\ncontext = \"a\"\n[context.a]\n[[context.a.rule]]\npattern = \"1\"\n\
         steps = [{ goto = { context = \"b\", number = \"${number}9\" } }]\n\
         [context.b]\n[[context.b.rule]]\npattern = \"2\"\nsteps = [\"echo\"]\n",
    );
    let action = p.route(&call("1000", "1")).next(&directory, None);
    assert_eq!(
        action,
        Action::NoRoute {
            status: 404,
            reason: "no rule in context b matches 19".into()
        }
    );
}

#[test]
fn a_reloaded_plan_does_not_change_a_call_in_progress() {
    let old = plan(&one_context(
        "[[context.a.rule]]\npattern = \"1\"\nsteps = [\"answer\", { playback = \"old\" }]\n",
    ));
    let mut x = old.route(&call("1000", "1"));
    assert_eq!(x.next(&directory, None), Action::Answer);
    drop(old); // the handle now points at a new plan; the call keeps its own Arc
    assert_eq!(
        x.next(&directory, Some(StepResult::Done)),
        Action::Playback {
            prompt: "old".into()
        }
    );
}

#[test]
fn read_then_db_lookup_then_say_the_papers_ivr() {
    let p = plan(&one_context(
        "[[context.a.rule]]\npattern = \"1\"\nsteps = [\
         { read = { var = \"account\", prompt = \"enter-account\", max_digits = 6, timeout = \"4s\" } }, \
         { read = { var = \"pin\", prompt = \"enter-pin\", max_digits = 4 } }, \
         { db_lookup = { database = \"crm\", query = \"SELECT balance FROM accounts WHERE id = $1 AND pin = $2\", \
                         params = [\"${account}\", \"${pin}\"], timeout = \"2s\", set = { balance = \"BALANCE\" }, \
                         on_failure = [{ playback = \"invalid\" }, \"hangup\"] } }, \
         { say = { number = \"${balance}\" } }]\n",
    ));
    let request = Action::DbLookup(DbRequest {
        database: "crm".into(),
        query: "SELECT balance FROM accounts WHERE id = $1 AND pin = $2".into(),
        params: vec!["4711".into(), "1234".into()],
        timeout: Duration::from_secs(2),
    });
    let start = |x: &mut pbx_dialplan::Execution| {
        assert_eq!(
            x.next(&directory, None),
            Action::Menu {
                prompt: "enter-account".into(),
                max_digits: 6,
                timeout: Duration::from_secs(4)
            }
        );
        assert_eq!(
            x.next(&directory, Some(StepResult::Digits("4711".into()))),
            Action::Menu {
                prompt: "enter-pin".into(),
                max_digits: 4,
                timeout: Duration::from_secs(5)
            }
        );
        assert_eq!(
            x.next(&directory, Some(StepResult::Digits("1234".into()))),
            request
        );
        assert_eq!(x.var("account"), "4711");
    };
    // A row: its column (any case) is said as a number.
    let mut x = p.route(&call("1000", "1"));
    start(&mut x);
    let row = DbOutcome::Row(vec![("balance".into(), "250".into())]);
    assert_eq!(
        x.next(&directory, Some(StepResult::Db(row))),
        Action::Say {
            kind: SayKind::Number,
            value: "250".into()
        }
    );
    assert_eq!(x.next(&directory, Some(StepResult::Done)), Action::End);
    // No row (a wrong PIN) or a failure: on_failure.
    for outcome in [DbOutcome::NoRow, DbOutcome::Failed("timeout".into())] {
        let mut x = p.route(&call("1000", "1"));
        start(&mut x);
        assert_eq!(
            x.next(&directory, Some(StepResult::Db(outcome))),
            Action::Playback {
                prompt: "invalid".into()
            }
        );
        assert_eq!(x.var("balance"), "");
    }
    // Parameters never show in Debug output (a PIN).
    assert!(!format!("{request:?}").contains("1234"));
}
