//! Leaving a message, every key path: greetings (default, recorded, temporary, name), `#`
//! skips, `0` to the operator, the recording ended by `#`, hang-up, silence or maximum
//! length, too short discarded, the mailbox missing.

mod support;

use std::time::Duration;

use pbx_voicemail::{
    GreetingKind, Input, LeaveConfig, LeaveMessage, Machine, MailboxInfo, NewMessageInfo, Output,
    Reason, RecordEnd, RecordLimits, StoreAnswer, StoreRequest,
};
use support::{Sim, t0};

const PATH: &str = "/var/vm/1001/msg-abc.wav";

fn config(reason: Reason, operator: Option<&str>) -> LeaveConfig {
    LeaveConfig {
        mailbox: "1001".into(),
        reason,
        operator: operator.map(str::to_string),
        limits: RecordLimits {
            min: Duration::from_secs(2),
            max: Duration::from_secs(180),
            silence: Some(Duration::from_secs(5)),
        },
        path: PATH.into(),
        caller_number: "2001".into(),
        caller_name: "Bob".into(),
        received_at: 1_772_550_000,
    }
}

fn mailbox(greetings: &[(GreetingKind, &str)]) -> MailboxInfo {
    MailboxInfo {
        number: "1001".into(),
        greetings: greetings.iter().map(|(k, p)| (*k, p.to_string())).collect(),
    }
}

/// A machine past the store's answer, greeting playing.
fn start(reason: Reason, operator: Option<&str>, mb: MailboxInfo) -> Sim<LeaveMessage> {
    let now = t0();
    let mut sim = Sim::new(LeaveMessage::new(now, config(reason, operator)), now);
    assert!(sim.playing.is_none(), "nothing before the mailbox is known");
    let asked = sim.answer(StoreAnswer::Mailbox(Some(mb)));
    assert_eq!(
        asked,
        StoreRequest::Mailbox {
            number: "1001".into()
        }
    );
    sim
}

fn filed(secs: u64) -> StoreRequest {
    StoreRequest::AddMessage(NewMessageInfo {
        mailbox: "1001".into(),
        caller_number: "2001".into(),
        caller_name: "Bob".into(),
        received_at: 1_772_550_000,
        duration: Duration::from_secs(secs),
        path: PATH.into(),
    })
}

/// Greeting and beep to their end; the recording starts.
fn to_recording(sim: &mut Sim<LeaveMessage>) {
    sim.listen();
    assert_eq!(sim.listen(), "beep");
    let record = sim.log.last().cloned();
    assert!(
        matches!(
            &record,
            Some(Output::Record { path, max, silence, .. })
                if path == PATH && *max == Duration::from_secs(180)
                    && *silence == Some(Duration::from_secs(5))
        ),
        "{record:?}"
    );
}

#[test]
fn default_greeting_beep_record_until_pound_saved_goodbye() {
    let mut sim = start(Reason::Unavailable, None, mailbox(&[]));
    assert_eq!(
        sim.hearing(),
        "vm-theperson 1 0 0 1 vm-isunavail vm-intro",
        "the person at extension 1 0 0 1 is unavailable; leave your message after the tone"
    );
    to_recording(&mut sim);
    sim.key('5'); // part of the message
    assert!(sim.recording.is_some());
    sim.key('#');
    assert!(matches!(sim.log.last(), Some(Output::StopRecord { .. })));
    sim.recorded(10, RecordEnd::Stopped);
    assert_eq!(sim.writes, [filed(10)]);
    assert_eq!(sim.listen(), "vm-msgsaved vm-goodbye");
    assert!(sim.hung_up());
    assert!(sim.m.is_finished());
}

#[test]
fn busy_default_and_recorded_greetings() {
    let sim = start(Reason::Busy, None, mailbox(&[]));
    assert_eq!(sim.hearing(), "vm-theperson 1 0 0 1 vm-isonphone vm-intro");
    // The recorded name replaces "the person at extension ...".
    let sim = start(
        Reason::Busy,
        None,
        mailbox(&[(GreetingKind::Name, "n.wav")]),
    );
    assert_eq!(sim.hearing(), "<n.wav> vm-isonphone vm-intro");
    // A recorded greeting for the reason.
    let both = [
        (GreetingKind::Unavailable, "u.wav"),
        (GreetingKind::Busy, "b.wav"),
    ];
    let sim = start(Reason::Busy, None, mailbox(&both));
    assert_eq!(sim.hearing(), "<b.wav> vm-intro");
    let sim = start(Reason::Unavailable, None, mailbox(&both));
    assert_eq!(sim.hearing(), "<u.wav> vm-intro");
    // The temporary one overrides both.
    let all = [
        (GreetingKind::Unavailable, "u.wav"),
        (GreetingKind::Busy, "b.wav"),
        (GreetingKind::Temporary, "t.wav"),
    ];
    for reason in [Reason::Busy, Reason::Unavailable] {
        let sim = start(reason, None, mailbox(&all));
        assert_eq!(sim.hearing(), "<t.wav> vm-intro");
    }
}

#[test]
fn pound_skips_the_greeting() {
    let mut sim = start(Reason::Unavailable, None, mailbox(&[]));
    let (old, _) = sim.playing.clone().unwrap_or_else(|| panic!());
    sim.key('#');
    assert!(
        sim.log.contains(&Output::StopPlay { id: old }),
        "{:?}",
        sim.log
    );
    assert_eq!(sim.hearing(), "beep");
    // The stopped greeting reporting its end late changes nothing.
    sim.input(Input::PlayFinished { id: old });
    assert_eq!(sim.hearing(), "beep");
    assert_eq!(sim.listen(), "beep");
    assert!(sim.recording.is_some());
}

#[test]
fn zero_reaches_the_operator_when_there_is_one() {
    let mut sim = start(Reason::Unavailable, Some("1000"), mailbox(&[]));
    sim.key('0');
    assert_eq!(
        sim.log.last(),
        Some(&Output::Transfer { to: "1000".into() })
    );
    assert!(sim.writes.is_empty() && sim.recording.is_none());
    assert!(sim.m.is_finished());

    // Without an operator, 0 does nothing.
    let mut sim = start(Reason::Unavailable, None, mailbox(&[]));
    sim.key('0');
    assert_eq!(sim.hearing(), "vm-theperson 1 0 0 1 vm-isunavail vm-intro");
    assert!(!sim.log.iter().any(|o| matches!(o, Output::Transfer { .. })));
}

#[test]
fn zero_while_recording_keeps_the_message_and_transfers() {
    let mut sim = start(Reason::Unavailable, Some("1000"), mailbox(&[]));
    to_recording(&mut sim);
    sim.key('0');
    sim.recorded(8, RecordEnd::Stopped);
    assert_eq!(sim.writes, [filed(8)]);
    assert_eq!(
        sim.log.last(),
        Some(&Output::Transfer { to: "1000".into() })
    );
    assert!(sim.m.is_finished());
}

#[test]
fn hanging_up_while_recording_keeps_the_message() {
    let mut sim = start(Reason::Unavailable, None, mailbox(&[]));
    to_recording(&mut sim);
    sim.input(Input::Hangup);
    assert!(matches!(sim.log.last(), Some(Output::StopRecord { .. })));
    assert!(!sim.m.is_finished(), "waits for the recording");
    sim.recorded(30, RecordEnd::Stopped);
    assert_eq!(sim.writes, [filed(30)]);
    assert!(sim.playing.is_none() && !sim.hung_up(), "nobody to talk to");
    assert!(sim.m.is_finished());
}

#[test]
fn silence_and_maximum_length_end_the_recording() {
    // 12 s ending with the 5 s of silence: 7 s said, kept (the file is 12 s).
    let mut sim = start(Reason::Unavailable, None, mailbox(&[]));
    to_recording(&mut sim);
    sim.recorded(12, RecordEnd::Silence);
    assert_eq!(sim.writes, [filed(12)]);
    assert_eq!(sim.listen(), "vm-msgsaved vm-goodbye");

    // 6 s of which the last 5 are silence: 1 s said, under the 2 s minimum.
    let mut sim = start(Reason::Unavailable, None, mailbox(&[]));
    to_recording(&mut sim);
    sim.recorded(6, RecordEnd::Silence);
    assert!(sim.writes.is_empty());
    assert!(sim.log.contains(&Output::Discard { path: PATH.into() }));
    assert_eq!(sim.listen(), "vm-goodbye");
    assert!(sim.hung_up());

    let mut sim = start(Reason::Unavailable, None, mailbox(&[]));
    to_recording(&mut sim);
    sim.recorded(180, RecordEnd::MaxLength);
    assert_eq!(sim.writes, [filed(180)]);
}

#[test]
fn too_short_is_discarded_even_after_a_hang_up() {
    let mut sim = start(Reason::Unavailable, None, mailbox(&[]));
    to_recording(&mut sim);
    sim.key('#');
    sim.recorded(1, RecordEnd::Stopped);
    assert!(sim.writes.is_empty());
    assert!(sim.log.contains(&Output::Discard { path: PATH.into() }));
    assert_eq!(sim.listen(), "vm-goodbye");
    assert!(sim.hung_up() && sim.m.is_finished());

    let mut sim = start(Reason::Unavailable, None, mailbox(&[]));
    to_recording(&mut sim);
    sim.input(Input::Hangup);
    sim.recorded(1, RecordEnd::Stopped);
    assert!(sim.writes.is_empty());
    assert!(sim.log.contains(&Output::Discard { path: PATH.into() }));
    assert!(sim.m.is_finished() && !sim.hung_up());
}

#[test]
fn hanging_up_before_the_beep_leaves_nothing() {
    let mut sim = start(Reason::Unavailable, None, mailbox(&[]));
    sim.input(Input::Hangup);
    assert!(sim.m.is_finished());
    let mut sim = start(Reason::Unavailable, None, mailbox(&[]));
    sim.listen();
    sim.input(Input::Hangup); // during the beep
    assert!(sim.m.is_finished());
    assert!(sim.writes.is_empty() && sim.recording.is_none());
    assert!(!sim.log.iter().any(|o| matches!(o, Output::Record { .. })));
}

#[test]
fn no_such_mailbox_or_no_store_is_goodbye() {
    for answer in [StoreAnswer::Mailbox(None), StoreAnswer::Failed] {
        let now = t0();
        let mut sim = Sim::new(LeaveMessage::new(now, config(Reason::Busy, None)), now);
        sim.answer(answer);
        assert_eq!(sim.listen(), "vm-goodbye");
        assert!(sim.hung_up() && sim.m.is_finished());
        assert!(!sim.log.iter().any(|o| matches!(o, Output::Record { .. })));
    }
}
