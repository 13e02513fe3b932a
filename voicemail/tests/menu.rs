//! The voicemail menu in virtual time, every key path: login for `*97` and `*98` (wrong PINs
//! as security events, lock-out, entries ended by `#` or a pause), the count, playing with
//! envelopes, 4/5/6/7/9, folders, mailbox options (greetings with review, the temporary
//! greeting, the PIN), timeouts and hang-ups.

mod support;

use std::time::Duration;

use jiff::civil::date;
use pbx_voicemail::{
    Folder, GreetingKind, Input, Machine, MailboxInfo, MenuConfig, MessageInfo, Output, RecordEnd,
    RecordLimits, SecurityEvent, StoreAnswer, StoreRequest, VoicemailMenu,
};
use support::{Sim, t0};

const DIGIT_TIMEOUT: Duration = Duration::from_secs(5);
const MENU_TIMEOUT: Duration = Duration::from_secs(6);

fn config(mailbox: Option<&str>) -> MenuConfig {
    MenuConfig {
        mailbox: mailbox.map(str::to_string),
        max_attempts: 3,
        digit_timeout: DIGIT_TIMEOUT,
        menu_timeout: MENU_TIMEOUT,
        max_idle: 3,
        greeting_limits: RecordLimits {
            min: Duration::from_secs(1),
            max: Duration::from_secs(60),
            silence: Some(Duration::from_secs(3)),
        },
        storage: "/vm".into(),
        tag: "call7".into(),
        // Tuesday 3 March 2026.
        today: date(2026, 3, 3),
    }
}

fn message(id: i64, folder: Folder, day: i8, h: i8, m: i8, from: &str) -> MessageInfo {
    MessageInfo {
        id,
        folder,
        caller_number: from.into(),
        received: date(2026, 3, day).at(h, m, 0, 0),
        path: format!("/vm/1001/{id}.wav"),
    }
}

/// Two new (today 15:45 from 2001, yesterday 8:00 unknown) and one old (Thursday).
fn inbox() -> Vec<MessageInfo> {
    vec![
        message(11, Folder::New, 3, 15, 45, "2001"),
        message(10, Folder::New, 2, 8, 0, ""),
        message(5, Folder::Old, 1, 10, 7, "2002"),
    ]
}

fn own(now_mailbox: Option<&str>) -> Sim<VoicemailMenu> {
    let now = t0();
    Sim::new(VoicemailMenu::new(now, config(now_mailbox)), now)
}

/// `*97` as 1001 with PIN 1234, past the login, the intro playing.
fn logged_in(greetings: &[(GreetingKind, &str)], messages: Vec<MessageInfo>) -> Sim<VoicemailMenu> {
    let mut sim = own(Some("1001"));
    assert_eq!(sim.hearing(), "vm-password");
    sim.keys("1234#");
    let asked = sim.answer(StoreAnswer::Pin(true));
    assert_eq!(
        asked,
        StoreRequest::CheckPin {
            number: "1001".into(),
            pin: "1234".into()
        }
    );
    let info = MailboxInfo {
        number: "1001".into(),
        greetings: greetings.iter().map(|(k, p)| (*k, p.to_string())).collect(),
    };
    assert_eq!(
        sim.answer(StoreAnswer::Mailbox(Some(info))),
        StoreRequest::Mailbox {
            number: "1001".into()
        }
    );
    assert_eq!(
        sim.answer(StoreAnswer::Messages(messages)),
        StoreRequest::Messages {
            number: "1001".into()
        }
    );
    sim
}

fn security_events(sim: &Sim<VoicemailMenu>) -> Vec<SecurityEvent> {
    sim.log
        .iter()
        .filter_map(|o| match o {
            Output::Security(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn own_mailbox_login_and_the_count() {
    let mut sim = logged_in(&[], inbox());
    assert_eq!(
        sim.listen(),
        "vm-youhave 2 vm-INBOX vm-and 1 vm-Old vm-message \
         vm-onefor vm-INBOX vm-messages vm-opts vm-helpexit"
    );
    assert!(security_events(&sim).is_empty());
    assert_eq!(sim.m.poll_timeout(), Some(sim.now + MENU_TIMEOUT));
}

#[test]
fn an_empty_mailbox_says_no_messages() {
    let mut sim = logged_in(&[], Vec::new());
    assert_eq!(
        sim.listen(),
        "vm-youhave vm-no vm-messages vm-opts vm-helpexit"
    );
    sim.key('1');
    assert_eq!(sim.listen(), "vm-nomore");
    assert_eq!(sim.hearing(), "vm-opts vm-helpexit");
}

#[test]
fn wrong_pins_are_security_events_and_lock_out_after_three() {
    let mut sim = own(Some("1001"));
    for attempt in 1..=3 {
        sim.keys("0000#");
        let asked = sim.answer(StoreAnswer::Pin(false));
        assert!(matches!(asked, StoreRequest::CheckPin { .. }));
        assert_eq!(security_events(&sim).len(), attempt);
        if attempt < 3 {
            assert_eq!(sim.listen(), "vm-incorrect vm-password");
        }
    }
    assert_eq!(sim.listen(), "vm-incorrect vm-goodbye");
    assert!(sim.hung_up() && sim.m.is_finished());
    assert_eq!(
        security_events(&sim),
        vec![
            SecurityEvent::WrongPin {
                mailbox: "1001".into()
            };
            3
        ]
    );
}

#[test]
fn any_mailbox_asks_its_number_then_the_pin() {
    let mut sim = own(None);
    assert_eq!(sim.hearing(), "vm-login");
    // Keys interrupt the prompt.
    sim.key('1');
    assert!(sim.playing.is_none());
    sim.keys("002#");
    assert_eq!(sim.listen(), "vm-password");
    sim.keys("9999#");
    let asked = sim.answer(StoreAnswer::Pin(false));
    assert_eq!(
        asked,
        StoreRequest::CheckPin {
            number: "1002".into(),
            pin: "9999".into()
        }
    );
    // "Login incorrect. Mailbox?": both are asked again.
    assert_eq!(sim.listen(), "vm-incorrect-mailbox");
    sim.keys("1001#");
    sim.keys("1234#");
    let asked = sim.answer(StoreAnswer::Pin(true));
    assert!(matches!(asked, StoreRequest::CheckPin { number, .. } if number == "1001"));
    assert!(matches!(
        sim.answer(StoreAnswer::Mailbox(Some(MailboxInfo::default()))),
        StoreRequest::Mailbox { number } if number == "1001"
    ));
    sim.answer(StoreAnswer::Messages(Vec::new()));
    assert!(sim.hearing().starts_with("vm-youhave vm-no vm-messages"));
    assert_eq!(
        security_events(&sim),
        [SecurityEvent::WrongPin {
            mailbox: "1002".into()
        }]
    );
}

#[test]
fn an_entry_ends_after_a_pause_and_nothing_typed_is_no_guess() {
    let mut sim = own(Some("1001"));
    sim.listen();
    sim.keys("1234");
    assert_eq!(sim.m.poll_timeout(), Some(sim.now + DIGIT_TIMEOUT));
    sim.wait(DIGIT_TIMEOUT);
    assert!(
        matches!(&sim.asked, Some((_, StoreRequest::CheckPin { pin, .. })) if pin == "1234"),
        "{:?}",
        sim.asked
    );

    // Silence after "password": a failed attempt, but no security event.
    let mut sim = own(Some("1001"));
    for _ in 0..3 {
        sim.listen();
        sim.wait(DIGIT_TIMEOUT);
    }
    assert!(security_events(&sim).is_empty());
    assert!(sim.asked.is_none(), "nothing was checked");
    assert_eq!(sim.listen(), "vm-incorrect vm-goodbye");
    assert!(sim.hung_up());
}

#[test]
fn playing_messages_with_envelopes_next_previous_repeat() {
    let mut sim = logged_in(&[], inbox());
    sim.listen();
    sim.key('1');
    // The oldest new one first: yesterday, unknown caller.
    assert_eq!(
        sim.hearing(),
        "vm-first vm-message vm-received yesterday at 8 oclock a-m vm-unknown-caller </vm/1001/10.wav>"
    );
    assert_eq!(
        sim.writes,
        [StoreRequest::Move {
            id: 10,
            folder: Folder::Old
        }],
        "heard: no longer new"
    );
    assert_eq!(
        sim.listen(),
        "vm-first vm-message vm-received yesterday at 8 oclock a-m vm-unknown-caller </vm/1001/10.wav>"
    );
    assert_eq!(
        sim.hearing(),
        "vm-repeat vm-next vm-delete vm-savemessage vm-helpexit"
    );
    sim.key('6');
    assert_eq!(
        sim.listen(),
        "vm-last vm-message vm-received at 3 40 5 p-m vm-from-phonenumber 2 0 0 1 </vm/1001/11.wav>"
    );
    assert_eq!(
        sim.hearing(),
        "vm-prev vm-repeat vm-delete vm-savemessage vm-helpexit"
    );
    sim.key('6');
    assert_eq!(sim.listen(), "vm-nomore");
    sim.key('5');
    assert!(sim.hearing().starts_with("vm-last vm-message"));
    // A key during the message stops it at once.
    let (id, _) = sim.playing.clone().unwrap_or_else(|| panic!());
    sim.key('4');
    assert!(sim.log.contains(&Output::StopPlay { id }));
    assert!(sim.hearing().starts_with("vm-first vm-message"));
    // Its late end is ignored.
    sim.input(Input::PlayFinished { id });
    assert!(sim.hearing().starts_with("vm-first vm-message"));
    sim.listen();
    sim.key('4');
    assert_eq!(sim.listen(), "vm-nomore");
    // Each message was moved to old once.
    let moves = sim
        .writes
        .iter()
        .filter(|w| matches!(w, StoreRequest::Move { .. }))
        .count();
    assert_eq!(moves, 2);
}

#[test]
fn a_middle_message_says_its_number() {
    let msgs = vec![
        message(1, Folder::New, 3, 9, 0, "1"),
        message(2, Folder::New, 3, 10, 0, "2"),
        message(3, Folder::New, 3, 11, 0, "3"),
    ];
    let mut sim = logged_in(&[], msgs);
    sim.listen();
    sim.keys("16");
    assert!(
        sim.hearing()
            .starts_with("vm-message 2 vm-received at 10 oclock a-m"),
        "{}",
        sim.hearing()
    );
}

#[test]
fn delete_and_save_then_the_next_plays() {
    let mut sim = logged_in(&[], inbox());
    sim.listen();
    sim.key('1');
    sim.key('7');
    assert!(sim.writes.contains(&StoreRequest::Delete { id: 10 }));
    assert_eq!(sim.listen(), "vm-message vm-deleted");
    // The next one (now the only one) plays.
    assert!(
        sim.hearing()
            .starts_with("vm-first vm-message vm-received at 3 40 5 p-m")
    );
    sim.key('9');
    assert!(sim.writes.contains(&StoreRequest::Move {
        id: 11,
        folder: Folder::Saved
    }));
    assert_eq!(sim.listen(), "vm-message vm-saved vm-nomore");
    // Back to the main menu, the new folder empty.
    assert_eq!(sim.hearing(), "vm-opts vm-helpexit");
    sim.key('1');
    assert_eq!(sim.listen(), "vm-nomore");
}

#[test]
fn a_key_during_an_announcement_counts_in_the_menu_after_it() {
    let mut sim = logged_in(&[], inbox());
    sim.listen();
    sim.keys("17");
    sim.listen();
    sim.key('7');
    // "Message deleted, no more messages" is playing; `#` (the main menu's goodbye) ends it.
    assert_eq!(sim.hearing(), "vm-message vm-deleted vm-nomore");
    sim.key('#');
    assert_eq!(sim.listen(), "vm-goodbye");
    assert!(sim.hung_up());
    // But a key while "message deleted" leads to the next message is not taken for it.
    let mut sim = logged_in(&[], inbox());
    sim.listen();
    sim.keys("17");
    assert_eq!(sim.hearing(), "vm-message vm-deleted");
    sim.key('7');
    assert_eq!(
        sim.writes
            .iter()
            .filter(|w| matches!(w, StoreRequest::Delete { .. }))
            .count(),
        1
    );
}

#[test]
fn deleting_the_last_of_several_stays_on_the_one_before() {
    let mut sim = logged_in(&[], inbox());
    sim.listen();
    sim.keys("16");
    sim.key('7');
    assert!(sim.writes.contains(&StoreRequest::Delete { id: 11 }));
    assert_eq!(sim.listen(), "vm-message vm-deleted vm-nomore");
    assert_eq!(
        sim.hearing(),
        "vm-repeat vm-delete vm-savemessage vm-helpexit"
    );
    sim.key('5');
    assert!(sim.hearing().ends_with("</vm/1001/10.wav>"));
}

#[test]
fn changing_folders() {
    let mut sim = logged_in(&[], inbox());
    sim.listen();
    sim.key('2');
    assert_eq!(
        sim.listen(),
        "vm-changeto 0 vm-for vm-INBOX vm-messages 1 vm-for vm-Old vm-messages \
         2 vm-for vm-saved vm-messages vm-tocancel"
    );
    sim.key('1');
    assert_eq!(sim.listen(), "vm-Old vm-messages");
    assert_eq!(
        sim.hearing(),
        "vm-onefor vm-Old vm-messages vm-opts vm-helpexit"
    );
    sim.key('1');
    assert!(
        sim.hearing().starts_with(
            "vm-first vm-message vm-received day-0 at 10 oh 7 a-m vm-from-phonenumber 2 0 0 2"
        ),
        "{}",
        sim.hearing()
    );
    assert!(sim.writes.is_empty(), "an old message stays where it is");
    // # cancels, an unknown key is "sorry" and the question again.
    sim.key('2');
    sim.key('8');
    assert_eq!(sim.listen(), "vm-sorry");
    assert!(sim.hearing().starts_with("vm-changeto"));
    sim.key('#');
    assert_eq!(
        sim.hearing(),
        "vm-onefor vm-Old vm-messages vm-opts vm-helpexit"
    );
}

#[test]
fn recording_a_greeting_with_review() {
    let mut sim = logged_in(&[], inbox());
    sim.listen();
    sim.key('0');
    assert_eq!(sim.listen(), "vm-options");
    sim.key('1');
    assert_eq!(sim.listen(), "vm-rec-unv");
    assert_eq!(sim.listen(), "beep");
    let path = "/vm/1001/greeting-unavailable-call7-1.wav";
    assert!(matches!(
        sim.log.last(),
        Some(Output::Record { path: p, max, .. }) if p == path && *max == Duration::from_secs(60)
    ));
    sim.key('#');
    assert_eq!(sim.recorded(4, RecordEnd::Stopped), path);
    assert_eq!(sim.hearing(), "vm-review");
    // 2 listens to it, 3 re-records (the first take discarded), 1 accepts.
    sim.key('2');
    assert_eq!(sim.listen(), format!("<{path}>"));
    sim.listen();
    sim.key('3');
    assert!(sim.log.contains(&Output::Discard { path: path.into() }));
    sim.listen();
    sim.listen();
    let second = "/vm/1001/greeting-unavailable-call7-2.wav";
    assert_eq!(sim.recorded(6, RecordEnd::Silence), second);
    sim.key('1');
    assert_eq!(
        sim.writes,
        [StoreRequest::SetGreeting {
            number: "1001".into(),
            kind: GreetingKind::Unavailable,
            path: second.into()
        }]
    );
    assert_eq!(sim.listen(), "vm-msgsaved");
    assert_eq!(sim.hearing(), "vm-options");
}

#[test]
fn busy_and_name_greetings_too_short_and_review_timeout() {
    let mut sim = logged_in(&[], Vec::new());
    sim.listen();
    sim.key('0');
    sim.key('2');
    assert_eq!(sim.listen(), "vm-rec-busy");
    sim.listen();
    // 3 s ended by the 3 s silence: nothing said.
    let path = sim.recorded(3, RecordEnd::Silence);
    assert!(sim.log.contains(&Output::Discard { path }));
    assert_eq!(sim.listen(), "vm-tooshort");
    assert_eq!(sim.hearing(), "vm-options");
    sim.key('3');
    assert_eq!(sim.listen(), "vm-rec-name");
    sim.listen();
    let path = sim.recorded(2, RecordEnd::Stopped);
    sim.listen(); // vm-review, then nothing pressed
    sim.wait(MENU_TIMEOUT);
    assert_eq!(
        sim.writes,
        [StoreRequest::SetGreeting {
            number: "1001".into(),
            kind: GreetingKind::Name,
            path
        }],
        "kept, as Asterisk does"
    );
    assert_eq!(sim.listen(), "vm-msgsaved");
}

#[test]
fn star_during_the_greeting_prompt_cancels() {
    let mut sim = logged_in(&[], Vec::new());
    sim.listen();
    sim.keys("01*");
    assert_eq!(sim.hearing(), "vm-options");
    assert!(!sim.log.iter().any(|o| matches!(o, Output::Record { .. })));
}

#[test]
fn the_temporary_greeting_is_recorded_or_removed() {
    let mut sim = logged_in(&[], Vec::new());
    sim.listen();
    sim.keys("04");
    assert_eq!(sim.listen(), "vm-rec-temp");

    let mut sim = logged_in(&[(GreetingKind::Temporary, "/vm/1001/t.wav")], Vec::new());
    sim.listen();
    sim.keys("04");
    assert_eq!(sim.listen(), "vm-tempgreeting2");
    sim.key('2');
    assert_eq!(
        sim.writes,
        [StoreRequest::RemoveGreeting {
            number: "1001".into(),
            kind: GreetingKind::Temporary
        }]
    );
    assert_eq!(sim.listen(), "vm-tempremoved");
    // Gone: 4 records a new one straight away.
    sim.key('4');
    assert_eq!(sim.hearing(), "vm-rec-temp");
}

#[test]
fn changing_the_pin() {
    let mut sim = logged_in(&[], Vec::new());
    sim.listen();
    sim.keys("05");
    assert_eq!(sim.listen(), "vm-newpassword");
    sim.keys("5678#");
    assert_eq!(sim.listen(), "vm-reenterpassword");
    sim.keys("5678#");
    assert_eq!(
        sim.writes,
        [StoreRequest::SetPin {
            number: "1001".into(),
            pin: "5678".into()
        }]
    );
    assert_eq!(sim.listen(), "vm-passchanged");
    assert_eq!(sim.hearing(), "vm-options");

    // A mismatch changes nothing; neither does a PIN too short.
    sim.keys("5");
    sim.keys("1111#");
    sim.keys("2222#");
    assert_eq!(sim.listen(), "vm-mismatch");
    sim.keys("5");
    sim.keys("12#");
    assert_eq!(sim.listen(), "vm-invalid-password");
    assert_eq!(sim.writes.len(), 1);
    // The PIN never shows in a debug print.
    sim.keys("5");
    sim.keys("9876");
    let shown = format!("{:?} {:?}", sim.m, sim.writes);
    assert!(
        !shown.contains("9876") && !shown.contains("5678"),
        "{shown}"
    );
}

#[test]
fn unanswered_menus_repeat_then_goodbye() {
    let mut sim = logged_in(&[], inbox());
    let first = sim.listen();
    assert!(first.ends_with("vm-onefor vm-INBOX vm-messages vm-opts vm-helpexit"));
    sim.wait(MENU_TIMEOUT);
    assert_eq!(
        sim.listen(),
        "vm-onefor vm-INBOX vm-messages vm-opts vm-helpexit"
    );
    sim.wait(MENU_TIMEOUT);
    assert_eq!(
        sim.listen(),
        "vm-onefor vm-INBOX vm-messages vm-opts vm-helpexit"
    );
    sim.wait(MENU_TIMEOUT);
    assert_eq!(sim.listen(), "vm-goodbye");
    assert!(sim.hung_up() && sim.m.is_finished());
    assert_eq!(sim.m.poll_timeout(), None);
}

#[test]
fn a_key_resets_the_idle_count_and_star_is_help() {
    let mut sim = logged_in(&[], inbox());
    sim.listen();
    sim.wait(MENU_TIMEOUT);
    sim.listen();
    sim.wait(MENU_TIMEOUT);
    sim.key('*');
    assert_eq!(
        sim.listen(),
        "vm-onefor vm-INBOX vm-messages vm-opts vm-helpexit"
    );
    sim.wait(MENU_TIMEOUT);
    sim.listen();
    sim.wait(MENU_TIMEOUT);
    assert!(!sim.hung_up(), "the count started again at the key");
    sim.key('3');
    assert_eq!(sim.listen(), "vm-sorry");
}

#[test]
fn pound_exits_from_the_menus() {
    for keys in ["#", "1#", "0#"] {
        let mut sim = logged_in(&[], inbox());
        sim.listen();
        sim.keys(keys);
        assert_eq!(sim.listen(), "vm-goodbye", "{keys}");
        assert!(sim.hung_up() && sim.m.is_finished());
    }
}

#[test]
fn hanging_up_ends_the_session_anywhere() {
    let mut sim = logged_in(&[], inbox());
    sim.listen();
    sim.key('1');
    sim.input(Input::Hangup);
    assert!(sim.m.is_finished());
    let before = sim.log.len();
    sim.key('7');
    sim.wait(Duration::from_secs(60));
    assert_eq!(sim.log.len(), before, "nothing after the hang-up");

    // While recording a greeting: what was said is kept.
    let mut sim = logged_in(&[], Vec::new());
    sim.listen();
    sim.keys("01");
    sim.listen();
    sim.listen();
    sim.input(Input::Hangup);
    assert!(matches!(sim.log.last(), Some(Output::StopRecord { .. })));
    let path = sim.recorded(5, RecordEnd::Stopped);
    assert_eq!(
        sim.writes,
        [StoreRequest::SetGreeting {
            number: "1001".into(),
            kind: GreetingKind::Unavailable,
            path
        }]
    );
    assert!(sim.m.is_finished() && !sim.hung_up());

    // During the PIN check: the answer is not waited for.
    let mut sim = own(Some("1001"));
    sim.keys("1234#");
    sim.input(Input::Hangup);
    assert!(sim.m.is_finished());
    sim.answer(StoreAnswer::Pin(true));
    assert!(sim.asked.is_none());
}

#[test]
fn a_store_failure_apologises_and_hangs_up() {
    let mut sim = own(Some("1001"));
    sim.keys("1234#");
    sim.answer(StoreAnswer::Failed);
    assert_eq!(sim.listen(), "im-sorry vm-goodbye");
    assert!(sim.hung_up());
    assert!(security_events(&sim).is_empty(), "not the caller's fault");
}
