//! What the machines take in and give out. The shell plays, records, talks to the store and
//! hangs up; the machines decide. Plays and recordings carry an id so that a late report
//! (a prompt that finished just as a key stopped it) is told apart from the current one.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use jiff::civil::DateTime;

/// Something to play.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sound {
    /// A prompt by name, relative to the language folder: `vm-login`, `digits/7`.
    Prompt(String),
    /// A recorded file: a message or a greeting, by path.
    File(String),
}

impl Sound {
    pub fn prompt(name: impl Into<String>) -> Sound {
        Sound::Prompt(name.into())
    }
}

/// Prompts by name.
pub(crate) fn prompts(names: &[&str]) -> Vec<Sound> {
    names.iter().map(|n| Sound::prompt(*n)).collect()
}

/// Where a message sits. The same three as `pbx_store::Folder` (and likewise
/// [`GreetingKind`]): this crate does not depend on the store, the shell maps one to the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Folder {
    New,
    Old,
    Saved,
}

impl Folder {
    /// The menu's folder numbers (key 2, "change folders") in order.
    pub const ALL: [Folder; 3] = [Folder::New, Folder::Old, Folder::Saved];

    /// The prompt that names it: "new", "old", "saved".
    pub(crate) fn prompt(self) -> &'static str {
        match self {
            Folder::New => "vm-INBOX",
            Folder::Old => "vm-Old",
            Folder::Saved => "vm-saved",
        }
    }
}

/// The kinds of recorded greeting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GreetingKind {
    Unavailable,
    Busy,
    /// Overrides both while it exists.
    Temporary,
    /// The owner's name, said instead of the number in the default greeting.
    Name,
}

impl GreetingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GreetingKind::Unavailable => "unavailable",
            GreetingKind::Busy => "busy",
            GreetingKind::Temporary => "temporary",
            GreetingKind::Name => "name",
        }
    }
}

/// What the machines need of a mailbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MailboxInfo {
    pub number: String,
    /// Recorded greetings and their files.
    pub greetings: Vec<(GreetingKind, String)>,
}

impl MailboxInfo {
    pub fn greeting(&self, kind: GreetingKind) -> Option<&str> {
        self.greetings
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, path)| path.as_str())
    }
}

/// A message as the menu plays it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageInfo {
    pub id: i64,
    pub folder: Folder,
    /// Empty when unknown.
    pub caller_number: String,
    /// When it arrived, in the listener's local time (the shell converts).
    pub received: DateTime,
    pub path: String,
}

/// A message to file, once recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMessageInfo {
    pub mailbox: String,
    pub caller_number: String,
    pub caller_name: String,
    /// Unix seconds, given by the shell when the call arrived.
    pub received_at: u64,
    pub duration: Duration,
    pub path: String,
}

/// What the machines ask of the store. Mailbox, CheckPin and Messages are answered
/// ([`Input::Store`]); the others are writes the machine does not wait for (the shell does
/// them in order and logs a failure).
#[derive(Clone, PartialEq, Eq)]
pub enum StoreRequest {
    Mailbox {
        number: String,
    },
    CheckPin {
        number: String,
        pin: String,
    },
    /// Every message of the mailbox, any folder.
    Messages {
        number: String,
    },
    AddMessage(NewMessageInfo),
    Move {
        id: i64,
        folder: Folder,
    },
    /// Deletes the message and its file.
    Delete {
        id: i64,
    },
    /// Records a greeting; the file it replaces is the shell's to delete.
    SetGreeting {
        number: String,
        kind: GreetingKind,
        path: String,
    },
    RemoveGreeting {
        number: String,
        kind: GreetingKind,
    },
    SetPin {
        number: String,
        pin: String,
    },
}

// Hand-written so that a PIN never reaches a log through `{:?}`.
impl std::fmt::Debug for StoreRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreRequest::Mailbox { number } => write!(f, "Mailbox({number})"),
            StoreRequest::CheckPin { number, .. } => write!(f, "CheckPin({number}, ...)"),
            StoreRequest::Messages { number } => write!(f, "Messages({number})"),
            StoreRequest::AddMessage(m) => write!(f, "AddMessage({m:?})"),
            StoreRequest::Move { id, folder } => write!(f, "Move({id}, {folder:?})"),
            StoreRequest::Delete { id } => write!(f, "Delete({id})"),
            StoreRequest::SetGreeting { number, kind, path } => {
                write!(f, "SetGreeting({number}, {kind:?}, {path})")
            }
            StoreRequest::RemoveGreeting { number, kind } => {
                write!(f, "RemoveGreeting({number}, {kind:?})")
            }
            StoreRequest::SetPin { number, .. } => write!(f, "SetPin({number}, ...)"),
        }
    }
}

/// The store's answer to a request that has one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreAnswer {
    /// `None`: no such mailbox.
    Mailbox(Option<MailboxInfo>),
    Pin(bool),
    Messages(Vec<MessageInfo>),
    /// The store could not answer (the machine apologises and hangs up).
    Failed,
}

/// For the ban rules: the shell counts these against the caller's source address like SIP
/// digest failures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecurityEvent {
    /// A wrong PIN, or a PIN for a mailbox that does not exist or has none (told apart
    /// nowhere, so a caller cannot find mailboxes by trying).
    WrongPin { mailbox: String },
}

/// How a recording ended, as the shell's recorder reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordEnd {
    /// Stopped by [`Output::StopRecord`] (a key, or the caller hung up).
    Stopped,
    /// The silence limit: the last `silence` of it is quiet.
    Silence,
    MaxLength,
}

/// Limits of a recording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLimits {
    /// Shorter than this (less a trailing silence) is discarded.
    pub min: Duration,
    pub max: Duration,
    /// Stop after this long without sound.
    pub silence: Option<Duration>,
}

/// What a machine asks the shell to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Play these in order; report [`Input::PlayFinished`] with `id` when all are played.
    Play {
        id: u64,
        sounds: Vec<Sound>,
    },
    /// Stop play `id` at once (no [`Input::PlayFinished`] is needed for it).
    StopPlay {
        id: u64,
    },
    /// Record the caller into `path` (a WAV file); report [`Input::RecordFinished`].
    Record {
        id: u64,
        path: String,
        max: Duration,
        silence: Option<Duration>,
    },
    /// Stop recording `id`; it still reports [`Input::RecordFinished`].
    StopRecord {
        id: u64,
    },
    /// Delete a recording that is not kept.
    Discard {
        path: String,
    },
    Store {
        id: u64,
        request: StoreRequest,
    },
    Security(SecurityEvent),
    /// Hand the call to this extension (the operator).
    Transfer {
        to: String,
    },
    Hangup,
}

/// What the shell tells a machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A key (RFC 4733, SIP INFO or in-band): `0`-`9`, `*`, `#`, `A`-`D`.
    Digit(char),
    PlayFinished {
        id: u64,
    },
    RecordFinished {
        id: u64,
        duration: Duration,
        end: RecordEnd,
    },
    Store {
        id: u64,
        answer: StoreAnswer,
    },
    /// The caller hung up.
    Hangup,
}

/// A voicemail machine, driven as the architecture's sans-IO cores are: inputs and
/// timeouts with the time in, outputs and the next deadline out.
pub trait Machine {
    fn handle_input(&mut self, now: Instant, input: Input);
    /// Acts on the deadline of [`Machine::poll_timeout`] once `now` reaches it.
    fn handle_timeout(&mut self, now: Instant);
    #[must_use]
    fn poll_output(&mut self) -> Option<Output>;
    #[must_use]
    fn poll_timeout(&self) -> Option<Instant>;
    /// Nothing more will come out: the call can be let go.
    fn is_finished(&self) -> bool;
}

/// The bookkeeping both machines share: ids, the current play and recording, the pending
/// store request, the one timer, the output queue.
#[derive(Debug, Default)]
pub(crate) struct Io {
    next_id: u64,
    out: VecDeque<Output>,
    playing: Option<u64>,
    recording: Option<u64>,
    waiting: Option<u64>,
    pub(crate) timer: Option<Instant>,
}

impl Io {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn emit(&mut self, o: Output) {
        self.out.push_back(o);
    }

    pub(crate) fn pop(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// No output is waiting to be polled.
    pub(crate) fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// Plays `sounds`, replacing what was playing.
    pub(crate) fn play(&mut self, sounds: Vec<Sound>) {
        self.stop_play();
        self.timer = None;
        let id = self.id();
        self.playing = Some(id);
        self.emit(Output::Play { id, sounds });
    }

    pub(crate) fn stop_play(&mut self) {
        if let Some(id) = self.playing.take() {
            self.emit(Output::StopPlay { id });
        }
    }

    /// Whether `id` is the play in progress; if so it is over now.
    pub(crate) fn play_done(&mut self, id: u64) -> bool {
        self.playing.take_if(|p| *p == id).is_some()
    }

    pub(crate) fn record(&mut self, path: &str, limits: RecordLimits) {
        let id = self.id();
        self.recording = Some(id);
        self.emit(Output::Record {
            id,
            path: path.to_string(),
            max: limits.max,
            silence: limits.silence,
        });
    }

    pub(crate) fn stop_record(&mut self) {
        if let Some(id) = self.recording {
            self.emit(Output::StopRecord { id });
        }
    }

    pub(crate) fn record_done(&mut self, id: u64) -> bool {
        self.recording.take_if(|r| *r == id).is_some()
    }

    /// A request whose answer the machine waits for.
    pub(crate) fn ask(&mut self, request: StoreRequest) {
        let id = self.id();
        self.waiting = Some(id);
        self.emit(Output::Store { id, request });
    }

    /// A write the machine does not wait for.
    pub(crate) fn write(&mut self, request: StoreRequest) {
        let id = self.id();
        self.emit(Output::Store { id, request });
    }

    pub(crate) fn answered(&mut self, id: u64) -> bool {
        self.waiting.take_if(|w| *w == id).is_some()
    }

    /// Whether the timer is due at `now`; if so it is cleared.
    pub(crate) fn due(&mut self, now: Instant) -> bool {
        self.timer.take_if(|t| now >= *t).is_some()
    }
}

/// The recorded length that counts against the minimum: a recording ended by silence
/// ends with that much of it.
pub(crate) fn spoken(duration: Duration, end: RecordEnd, limits: RecordLimits) -> Duration {
    match (end, limits.silence) {
        (RecordEnd::Silence, Some(quiet)) => duration.saturating_sub(quiet),
        _ => duration,
    }
}
