//! The shipped demo dialplan does what the contract's table says.

mod common;

use std::time::Duration;

use common::{call, demo_text, directory, plan};
use pbx_dialplan::{Action, DialOutcome, Greeting, StepResult, Target};

#[test]
fn demo_validates() {
    plan(&demo_text());
}

#[test]
fn extension_rings_then_voicemail_for_each_failure() {
    let p = plan(&demo_text());
    for (outcome, greeting) in [
        (DialOutcome::NoAnswer, Greeting::Unavailable),
        (DialOutcome::Busy, Greeting::Busy),
        (DialOutcome::Unavailable, Greeting::Unavailable),
    ] {
        let mut x = p.route(&call("1001", "1000"));
        assert_eq!(
            x.next(&directory, None),
            Action::Dial {
                targets: vec![Target::Extension("1000".into())],
                timeout: Duration::from_secs(20),
                caller_name: "Ext 1001".into(),
            }
        );
        assert_eq!(
            x.next(&directory, Some(StepResult::Dial(outcome))),
            Action::Voicemail {
                mailbox: "1000".into(),
                greeting
            }
        );
        assert_eq!(x.next(&directory, Some(StepResult::Done)), Action::End);
    }
    let mut x = p.route(&call("1001", "1000"));
    let _ = x.next(&directory, None);
    assert_eq!(
        x.next(&directory, Some(StepResult::Dial(DialOutcome::Answered))),
        Action::End
    );
}

#[test]
fn feature_codes() {
    let p = plan(&demo_text());
    let mut x = p.route(&call("1001", "*97"));
    assert_eq!(x.next(&directory, None), Action::Answer);
    assert_eq!(
        x.next(&directory, Some(StepResult::Done)),
        Action::VoicemailMenu {
            mailbox: Some("1001".into())
        }
    );
    let mut x = p.route(&call("1001", "*98"));
    assert_eq!(x.next(&directory, None), Action::Answer);
    assert_eq!(
        x.next(&directory, Some(StepResult::Done)),
        Action::VoicemailMenu { mailbox: None }
    );
    let mut x = p.route(&call("1001", "600"));
    assert_eq!(x.next(&directory, None), Action::Answer);
    assert_eq!(x.next(&directory, Some(StepResult::Done)), Action::Echo);
}

#[test]
fn ivr_menu() {
    let p = plan(&demo_text());
    let menu = Action::Menu {
        prompt: "demo-menu".into(),
        max_digits: 1,
        timeout: Duration::from_secs(5),
    };
    let mut x = p.route(&call("1001", "700"));
    assert_eq!(x.next(&directory, None), Action::Answer);
    assert_eq!(x.next(&directory, Some(StepResult::Done)), menu);
    // Anything else repeats the menu.
    assert_eq!(
        x.next(&directory, Some(StepResult::Digits("7".into()))),
        menu
    );
    assert_eq!(
        x.next(&directory, Some(StepResult::Digits(String::new()))),
        menu
    );
    assert!(matches!(
        x.next(&directory, Some(StepResult::Digits("1".into()))),
        Action::Dial { targets, .. } if targets == vec![Target::Extension("1000".into())]
    ));
    let mut x = p.route(&call("1001", "700"));
    let _ = x.next(&directory, None);
    let _ = x.next(&directory, Some(StepResult::Done));
    assert_eq!(
        x.next(&directory, Some(StepResult::Digits("2".into()))),
        Action::Playback {
            prompt: "demo-goodbye".into()
        }
    );
    assert!(matches!(
        x.next(&directory, Some(StepResult::Done)),
        Action::Hangup { .. }
    ));
}

#[test]
fn lobby_reaches_only_reception_and_emergency() {
    let p = plan(&demo_text());
    assert!(matches!(
        p.route(&call("1990", "1000")).next(&directory, None),
        Action::Dial { .. }
    ));
    assert!(matches!(
        p.route(&call("1990", "112")).next(&directory, None),
        Action::Dial { targets, .. } if targets == vec![Target::External("112".into())]
    ));
    for refused in ["1001", "600", "*97", "0301234"] {
        let action = p.route(&call("1990", refused)).next(&directory, None);
        assert_eq!(
            action,
            Action::Refused {
                status: 403,
                reason: format!("context lobby may not call {refused}")
            }
        );
    }
    // Staff reaches everything; an unknown number is not found.
    assert!(matches!(
        p.route(&call("1001", "1995")).next(&directory, None),
        Action::Dial { .. }
    ));
    assert!(matches!(
        p.route(&call("1001", "5555")).next(&directory, None),
        Action::NoRoute { status: 404, .. }
    ));
}
