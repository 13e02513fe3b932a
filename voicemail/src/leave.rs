//! Leaving a message (Asterisk's `VoiceMail()`): the greeting, the beep, the recording,
//! filing it.
//!
//! - The greeting: the temporary one if recorded, else the busy or unavailable one for the
//!   reason the call came here, else the default spoken one: "the person at extension 1 0 0
//!   1" (or the recorded name) "is unavailable" / "is on the phone". Then "please leave your
//!   message after the tone; when done, hang up or press the pound key" (`vm-intro`).
//! - `#` during the greeting skips it; `0` goes to the operator when there is one (no
//!   message is left).
//! - The beep, then the recording until the caller hangs up, presses `#`, is silent for the
//!   silence limit, or reaches the maximum length. `0` while recording keeps what was said
//!   and goes to the operator.
//! - A recording shorter than the minimum (not counting a silence that ended it) is
//!   discarded; a kept one is filed as a new message. A caller still there hears "your
//!   message has been saved, goodbye" (or just "goodbye" when too short) and is hung up on.

use std::time::Instant;

use crate::io::{
    GreetingKind, Input, Io, Machine, MailboxInfo, NewMessageInfo, Output, RecordEnd, RecordLimits,
    Sound, StoreAnswer, StoreRequest, prompts, spoken,
};
use crate::say;

/// Why the call reached the mailbox: which greeting it hears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Busy,
    Unavailable,
}

/// One message to leave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveConfig {
    pub mailbox: String,
    pub reason: Reason,
    /// The operator's extension, for `0`; `None`: `0` does nothing.
    pub operator: Option<String>,
    pub limits: RecordLimits,
    /// Where the message is recorded (a WAV file the shell names, unique per call).
    pub path: String,
    pub caller_number: String,
    pub caller_name: String,
    /// Unix seconds, when the call arrived.
    pub received_at: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the mailbox.
    Loading,
    Greeting,
    Beep,
    Recording,
    /// The last words ("saved", "goodbye"), then hang up.
    Closing,
    Done,
}

/// The machine that takes one message. See the module documentation.
#[derive(Debug)]
pub struct LeaveMessage {
    cfg: LeaveConfig,
    io: Io,
    phase: Phase,
    /// The caller hung up.
    gone: bool,
    /// `0` was pressed while recording: the operator after filing.
    to_operator: bool,
}

/// The greeting for `reason`, recorded or spoken.
pub fn greeting(mailbox: &MailboxInfo, reason: Reason) -> Vec<Sound> {
    let recorded = mailbox.greeting(GreetingKind::Temporary).or_else(|| {
        mailbox.greeting(match reason {
            Reason::Busy => GreetingKind::Busy,
            Reason::Unavailable => GreetingKind::Unavailable,
        })
    });
    if let Some(path) = recorded {
        return vec![Sound::File(path.to_string())];
    }
    let mut out = match mailbox.greeting(GreetingKind::Name) {
        Some(name) => vec![Sound::File(name.to_string())],
        None => {
            let mut v = vec![Sound::prompt("vm-theperson")];
            v.extend(say::digits(&mailbox.number));
            v
        }
    };
    out.push(Sound::prompt(match reason {
        Reason::Busy => "vm-isonphone",
        Reason::Unavailable => "vm-isunavail",
    }));
    out
}

impl LeaveMessage {
    /// Starts by asking the store for the mailbox.
    pub fn new(_now: Instant, cfg: LeaveConfig) -> LeaveMessage {
        let mut io = Io::default();
        io.ask(StoreRequest::Mailbox {
            number: cfg.mailbox.clone(),
        });
        LeaveMessage {
            cfg,
            io,
            phase: Phase::Loading,
            gone: false,
            to_operator: false,
        }
    }

    fn finish(&mut self) {
        self.phase = Phase::Done;
    }

    /// Says `names` and hangs up, or just ends if the caller is gone.
    fn close(&mut self, names: &[&str]) {
        if self.gone {
            self.finish();
        } else {
            self.io.play(prompts(names));
            self.phase = Phase::Closing;
        }
    }

    fn operator(&mut self) -> Option<String> {
        self.cfg.operator.clone()
    }

    fn start_beep(&mut self) {
        self.io.play(prompts(&["beep"]));
        self.phase = Phase::Beep;
    }

    fn on_digit(&mut self, d: char) {
        match (self.phase, d) {
            (Phase::Greeting, '#') => {
                self.io.stop_play();
                self.start_beep();
            }
            (Phase::Greeting, '0') => {
                if let Some(to) = self.operator() {
                    self.io.stop_play();
                    self.io.emit(Output::Transfer { to });
                    self.finish();
                }
            }
            (Phase::Recording, '#') => self.io.stop_record(),
            (Phase::Recording, '0') if self.cfg.operator.is_some() => {
                self.to_operator = true;
                self.io.stop_record();
            }
            // Other keys are part of the message, or ignored.
            _ => {}
        }
    }

    fn on_recorded(&mut self, duration: std::time::Duration, end: RecordEnd) {
        let path = self.cfg.path.clone();
        let kept = spoken(duration, end, self.cfg.limits) >= self.cfg.limits.min;
        if kept {
            self.io.write(StoreRequest::AddMessage(NewMessageInfo {
                mailbox: self.cfg.mailbox.clone(),
                caller_number: self.cfg.caller_number.clone(),
                caller_name: self.cfg.caller_name.clone(),
                received_at: self.cfg.received_at,
                duration,
                path,
            }));
        } else {
            self.io.emit(Output::Discard { path });
        }
        if self.to_operator
            && !self.gone
            && let Some(to) = self.operator()
        {
            self.io.emit(Output::Transfer { to });
            self.finish();
            return;
        }
        if kept {
            self.close(&["vm-msgsaved", "vm-goodbye"]);
        } else {
            self.close(&["vm-goodbye"]);
        }
    }
}

impl Machine for LeaveMessage {
    fn handle_input(&mut self, _now: Instant, input: Input) {
        if self.phase == Phase::Done {
            return;
        }
        match input {
            Input::Digit(d) => {
                if !self.gone {
                    self.on_digit(d);
                }
            }
            Input::Store { id, answer } => {
                if !self.io.answered(id) || self.phase != Phase::Loading {
                    return;
                }
                match answer {
                    StoreAnswer::Mailbox(Some(mb)) if !self.gone => {
                        let mut sounds = greeting(&mb, self.cfg.reason);
                        sounds.push(Sound::prompt("vm-intro"));
                        self.io.play(sounds);
                        self.phase = Phase::Greeting;
                    }
                    _ => self.close(&["vm-goodbye"]),
                }
            }
            Input::PlayFinished { id } => {
                if !self.io.play_done(id) {
                    return;
                }
                match self.phase {
                    Phase::Greeting => self.start_beep(),
                    Phase::Beep => {
                        self.io.record(&self.cfg.path.clone(), self.cfg.limits);
                        self.phase = Phase::Recording;
                    }
                    Phase::Closing => {
                        self.io.emit(Output::Hangup);
                        self.finish();
                    }
                    _ => {}
                }
            }
            Input::RecordFinished { id, duration, end } => {
                if self.io.record_done(id) && self.phase == Phase::Recording {
                    self.on_recorded(duration, end);
                }
            }
            Input::Hangup => {
                self.gone = true;
                match self.phase {
                    // What was said so far is the message: the recorder reports it.
                    Phase::Recording => self.io.stop_record(),
                    _ => self.finish(),
                }
            }
        }
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn poll_output(&mut self) -> Option<Output> {
        self.io.pop()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn is_finished(&self) -> bool {
        self.phase == Phase::Done && self.io.is_empty()
    }
}
