//! The voicemail machines (`pbx_voicemail`: leaving a message, the `*97`/`*98` menu) on a
//! call the PBX answered: what they ask becomes media commands for the call's session and
//! store requests for the shell; what the session and the store report goes back to them.
//!
//! The PIN goes through the same credential gate as SIP digest ([`crate::security::Guard`]):
//! a ticket when the machine asks the store to check it, the failure counted under the
//! gate's lock when the store says no, and a ban ends the call.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use pbx_dialplan::Greeting;
use pbx_voicemail::{
    Input as VmInput, LeaveConfig, LeaveMessage, Machine, MenuConfig, NewMessageInfo,
    Output as VmOutput, Reason, RecordEnd, RecordLimits, StoreAnswer, StoreRequest, VoicemailMenu,
};

use crate::security::{Admission, CheckOutcome, Gated, Ticket};

/// `[voicemail]` as the engine needs it.
#[derive(Clone, Debug)]
pub struct VoicemailSettings {
    /// The folder of the mailboxes' files: `{storage}/{mailbox}/...wav`.
    pub storage: String,
    /// The extension `0` reaches from a mailbox; `None`: `0` does nothing.
    pub operator: Option<String>,
    pub message: RecordLimits,
    pub greeting: RecordLimits,
    /// Failed logins before the menu hangs up.
    pub max_attempts: u32,
    pub digit_timeout: Duration,
    pub menu_timeout: Duration,
    pub max_idle: u32,
    /// The listeners' time zone: envelopes ("received yesterday at ...") and today's date.
    pub time_zone: jiff::tz::TimeZone,
}

impl Default for VoicemailSettings {
    fn default() -> VoicemailSettings {
        VoicemailSettings {
            storage: "data/voicemail".into(),
            operator: None,
            message: RecordLimits {
                min: Duration::from_secs(1),
                max: Duration::from_secs(300),
                silence: Some(Duration::from_secs(10)),
            },
            greeting: RecordLimits {
                min: Duration::from_secs(1),
                max: Duration::from_secs(60),
                silence: Some(Duration::from_secs(5)),
            },
            max_attempts: 3,
            digit_timeout: Duration::from_secs(5),
            menu_timeout: Duration::from_secs(10),
            max_idle: 3,
            time_zone: jiff::tz::TimeZone::UTC,
        }
    }
}

/// One voicemail machine on a call, with the bookkeeping between it and the session.
pub(crate) struct Voicemail {
    machine: Box<dyn Machine + Send>,
    /// The machine's play ids, in the order the session reports players finished (each
    /// player reports once, in order: see `application.rs`).
    plays: VecDeque<u64>,
    /// The machine's recording in progress.
    recording: Option<u64>,
    /// A leave machine's message, filed by the shell from its recording.
    message: Option<NewMessageInfo>,
    limits: RecordLimits,
    /// The PIN being checked holds a place in the credential gate.
    pin: Option<(u64, Ticket)>,
}

/// What the glue asks the engine to do for one machine output.
pub(crate) enum Act {
    Play(Vec<pbx_voicemail::Sound>),
    StopPlay,
    Record {
        path: String,
        limits: RecordLimits,
        message: Option<NewMessageInfo>,
    },
    StopRecord,
    /// To the shell: a store request (with its id) or a file to delete.
    Shell(u64, crate::io::VoicemailRequest),
    /// Check a PIN: needs a ticket of the credential gate first.
    CheckPin(u64, StoreRequest),
    Transfer(String),
    Hangup,
}

/// Who is calling, for a message's envelope.
pub(crate) struct Caller<'a> {
    pub number: &'a str,
    pub name: &'a str,
}

impl Voicemail {
    /// A message for `mailbox`, recorded into a file unique to this call (`tag`).
    pub(crate) fn leave(
        settings: &VoicemailSettings,
        now: crate::Now,
        mailbox: &str,
        greeting: Greeting,
        caller: Caller<'_>,
        tag: &str,
    ) -> Voicemail {
        let path = format!("{}/{mailbox}/msg-{tag}.wav", settings.storage);
        let reason = match greeting {
            Greeting::Busy => Reason::Busy,
            Greeting::Unavailable => Reason::Unavailable,
        };
        let message = NewMessageInfo {
            mailbox: mailbox.to_string(),
            caller_number: caller.number.to_string(),
            caller_name: caller.name.to_string(),
            received_at: now.unix(),
            duration: Duration::ZERO,
            path: path.clone(),
        };
        let machine = LeaveMessage::new(
            now.at,
            LeaveConfig {
                mailbox: mailbox.to_string(),
                reason,
                operator: settings.operator.clone().filter(|o| o != mailbox),
                limits: settings.message,
                path,
                caller_number: caller.number.to_string(),
                caller_name: caller.name.to_string(),
                received_at: now.unix(),
            },
        );
        Voicemail::with(Box::new(machine), Some(message), settings.message)
    }

    /// The menu of `mailbox` (`None`: asked).
    pub(crate) fn menu(
        settings: &VoicemailSettings,
        now: crate::Now,
        mailbox: Option<String>,
        tag: &str,
    ) -> Voicemail {
        let today = i64::try_from(now.unix())
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok())
            .map(|t| t.to_zoned(settings.time_zone.clone()).date())
            .unwrap_or_default();
        let machine = VoicemailMenu::new(
            now.at,
            MenuConfig {
                mailbox,
                max_attempts: settings.max_attempts,
                digit_timeout: settings.digit_timeout,
                menu_timeout: settings.menu_timeout,
                max_idle: settings.max_idle,
                greeting_limits: settings.greeting,
                storage: settings.storage.clone(),
                tag: tag.to_string(),
                today,
            },
        );
        Voicemail::with(Box::new(machine), None, settings.greeting)
    }

    fn with(
        machine: Box<dyn Machine + Send>,
        message: Option<NewMessageInfo>,
        limits: RecordLimits,
    ) -> Voicemail {
        Voicemail {
            machine,
            plays: VecDeque::new(),
            recording: None,
            message,
            limits,
            pin: None,
        }
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.machine.poll_timeout()
    }

    pub(crate) fn input(&mut self, now: Instant, input: VmInput) {
        self.machine.handle_input(now, input);
    }

    pub(crate) fn timeout(&mut self, now: Instant) {
        if self.machine.poll_timeout().is_some_and(|at| at <= now) {
            self.machine.handle_timeout(now);
        }
    }

    /// A player of the session finished: the machine's play it was.
    pub(crate) fn player_finished(&mut self, now: Instant) {
        if let Some(id) = self.plays.pop_front() {
            self.machine.handle_input(now, VmInput::PlayFinished { id });
        }
    }

    pub(crate) fn recorded(&mut self, now: Instant, duration: Duration, end: RecordEnd) {
        if let Some(id) = self.recording.take() {
            let input = VmInput::RecordFinished { id, duration, end };
            self.machine.handle_input(now, input);
        }
    }

    /// Holds the gate's ticket while the store checks the PIN of request `id`.
    pub(crate) fn hold_ticket(&mut self, id: u64, ticket: Ticket) {
        self.pin = Some((id, ticket));
    }

    /// The store's answer `id`: a PIN answer is checked through the gate first. Returns a
    /// ban when this wrong PIN reached the limit (the caller is then hung up on), and
    /// whether the gate refused (banned meanwhile).
    pub(crate) fn store_answer(
        &mut self,
        guard: &crate::security::Guard,
        now: crate::Now,
        id: u64,
        answer: StoreAnswer,
    ) -> PinVerdict {
        let answer = match (answer, self.pin.take()) {
            (StoreAnswer::Pin(ok), Some((pin_id, ticket))) if pin_id == id => {
                let gated = guard.check_credential(ticket, now.at, now.unix(), || CheckOutcome {
                    result: ok,
                    failed: !ok,
                });
                match gated {
                    Gated::Refused => return PinVerdict::Refused,
                    Gated::Checked { ban: Some(ban), .. } => return PinVerdict::Banned(ban),
                    Gated::Checked { result, ban: None } => StoreAnswer::Pin(result),
                }
            }
            (answer, other) => {
                self.pin = other;
                answer
            }
        };
        self.machine
            .handle_input(now.at, VmInput::Store { id, answer });
        PinVerdict::Answered
    }

    /// The machine's next output, as an act for the engine.
    pub(crate) fn next(&mut self) -> Option<Act> {
        use crate::io::VoicemailRequest;
        loop {
            let act = match self.machine.poll_output()? {
                VmOutput::Play { id, sounds } => {
                    self.plays.push_back(id);
                    Act::Play(sounds)
                }
                VmOutput::StopPlay { .. } => Act::StopPlay,
                VmOutput::Record { id, path, .. } => {
                    self.recording = Some(id);
                    let message = self.message.clone().map(|mut m| {
                        m.path = path.clone();
                        m
                    });
                    Act::Record {
                        path,
                        limits: self.limits,
                        message,
                    }
                }
                VmOutput::StopRecord { .. } => Act::StopRecord,
                VmOutput::Discard { path } => Act::Shell(0, VoicemailRequest::Discard { path }),
                // The shell files a message from its recording (even when the caller is
                // gone by then): the machine's own request would file it twice.
                VmOutput::Store {
                    request: StoreRequest::AddMessage(_),
                    ..
                } => continue,
                VmOutput::Store {
                    id,
                    request: request @ StoreRequest::CheckPin { .. },
                } => Act::CheckPin(id, request),
                VmOutput::Store { id, request } => Act::Shell(id, VoicemailRequest::Store(request)),
                VmOutput::Security(event) => {
                    // Counted by the gate when the store said no; this is for the log.
                    tracing::info!(?event, "voicemail login failed");
                    metrics::counter!("pbx_voicemail_login_failures_total").increment(1);
                    continue;
                }
                VmOutput::Transfer { to } => Act::Transfer(to),
                VmOutput::Hangup => Act::Hangup,
            };
            return Some(act);
        }
    }
}

/// What became of a PIN answer.
pub(crate) enum PinVerdict {
    Answered,
    /// The source was banned while the store looked.
    Refused,
    /// This wrong PIN banned the source.
    Banned(crate::security::guard::Ban),
}

/// A ticket of the credential gate for a PIN from `ip`.
pub(crate) fn admit(
    guard: &std::sync::Arc<crate::security::Guard>,
    ip: std::net::IpAddr,
    now: crate::Now,
) -> Admission {
    guard.admit_credential(ip, now.at, now.unix())
}
