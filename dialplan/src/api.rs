//! What the server gives the evaluator and what it gets back.

use std::time::Duration;

use jiff::Timestamp;

pub use crate::model::{DialStrategy, HttpMethod};

/// The call to route.
#[derive(Debug, Clone, PartialEq)]
pub struct CallContext {
    /// The caller's number (an extension, or the number a trunk presents).
    pub caller: String,
    /// The caller's display name; may be empty.
    pub caller_name: String,
    /// The caller's class of service when the server knows it (a trunk's context). `None`:
    /// from the contexts' `members`, else `[defaults] context`.
    pub caller_context: Option<String>,
    /// The number dialed.
    pub dialed: String,
    /// When the call arrives; `if_time` is evaluated at this instant. No clock is read.
    pub now: Timestamp,
}

/// Answers "is this number an extension?" from the store (the plan does not know the DB).
pub trait Directory {
    fn is_extension(&self, number: &str) -> bool;
}

impl<F: Fn(&str) -> bool> Directory for F {
    fn is_extension(&self, number: &str) -> bool {
        self(number)
    }
}

/// Whom a `dial` rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An extension of this PBX: ring every device registered for it.
    Extension(String),
    /// Anything else, without a trunk named: nothing the PBX can ring.
    External(String),
    /// `trunk:NAME/NUMBER`: NUMBER called through the trunk NAME.
    Trunk { trunk: String, number: String },
}

impl Target {
    pub fn number(&self) -> &str {
        match self {
            Target::Extension(n) | Target::External(n) => n,
            Target::Trunk { number, .. } => number,
        }
    }

    /// Reads an expanded dial target: `trunk:NAME/NUMBER` when the plan wrote one (`trunk`:
    /// a caller's digits never turn into a trunk target through a variable), else an
    /// extension when the directory knows the number, else an external number.
    pub(crate) fn classify(text: String, trunk: bool, directory: &dyn Directory) -> Target {
        if let Some((name, number)) = split_trunk_target(&text).filter(|_| trunk) {
            return Target::Trunk {
                trunk: name.to_owned(),
                number: number.to_owned(),
            };
        }
        match directory.is_extension(&text) {
            true => Target::Extension(text),
            false => Target::External(text),
        }
    }
}

/// The prefix of a dial target that names a trunk.
pub(crate) const TRUNK_PREFIX: &str = "trunk:";

/// `trunk:NAME/NUMBER` as (NAME, NUMBER); `None` when `text` is no trunk target.
pub(crate) fn split_trunk_target(text: &str) -> Option<(&str, &str)> {
    text.strip_prefix(TRUNK_PREFIX)?.split_once('/')
}

/// Which voicemail greeting to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting {
    Busy,
    Unavailable,
}

/// An HTTP request the server makes for `http_lookup`, then reports with
/// [`StepResult::Http`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: HttpMethod,
    pub url: String,
    /// JSON or form text for POST.
    pub body: Option<String>,
    pub timeout: Duration,
}

/// What the server does next for the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer the call (200 OK), then report [`StepResult::Done`].
    Answer,
    /// Ring the targets at once (an `in_order` dial comes as one `Dial` per target); report
    /// [`StepResult::Dial`].
    Dial {
        targets: Vec<Target>,
        timeout: Duration,
        /// The caller's name now (a `set` or `http_lookup` may have changed it).
        caller_name: String,
    },
    /// Leave a message in `mailbox`; report [`StepResult::Done`].
    Voicemail { mailbox: String, greeting: Greeting },
    /// The voicemail menu; `None`: ask for the mailbox number. Report [`StepResult::Done`].
    VoicemailMenu { mailbox: Option<String> },
    /// Play a sound; report [`StepResult::Done`].
    Playback { prompt: String },
    /// Play `prompt` while collecting up to `max_digits` digits (`#` ends early); report
    /// [`StepResult::Digits`], empty when nothing came within `timeout`.
    Menu {
        prompt: String,
        max_digits: usize,
        timeout: Duration,
    },
    /// Send the caller's media back; report [`StepResult::Done`] when it hangs up.
    Echo,
    /// Make the request; report [`StepResult::Http`].
    HttpLookup(HttpRequest),
    /// Say `value` as `kind` says; report [`StepResult::Done`]. A value that is not one
    /// (`say = { number = "abc" }`) is skipped with a log line.
    Say { kind: SayKind, value: String },
    /// Run the query; report [`StepResult::Db`].
    DbLookup(DbRequest),
    /// End the call: a final `status` when not answered yet, else a BYE. `reason` is the
    /// phrase the admin wrote for the caller (the status's own phrase by default). Final.
    Hangup { status: u16, reason: String },
    /// The caller's context may not call this number: answer 403. `reason` names contexts:
    /// it is for the log and the CDR, not for the caller. Final.
    Refused { status: u16, reason: String },
    /// No rule matches: answer 404. `reason` names the context: for the log and the CDR
    /// only. Final.
    NoRoute { status: u16, reason: String },
    /// The plan broke down (a `goto` loop that never waits for the call): answer `status`
    /// (500). `reason` is for the log and the CDR only. Final.
    Failed { status: u16, reason: String },
    /// The plan is over (its steps ran out, or a `dial` was answered and bridged): hang up
    /// when the call is still up. Final.
    End,
}

impl Action {
    /// True for the actions after which the plan does nothing more.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Action::Hangup { .. }
                | Action::Refused { .. }
                | Action::NoRoute { .. }
                | Action::Failed { .. }
                | Action::End
        )
    }
}

/// How a `dial` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialOutcome {
    /// Someone answered; the call is bridged and the plan ends.
    Answered,
    Busy,
    NoAnswer,
    /// Not registered, or every device failed; through a trunk: the trunk failed (408,
    /// 5xx, no answer within its setup time, down, all channels in use).
    Unavailable,
    /// A trunk's network refused the number itself (404, 484, 403...): trying another
    /// trunk would get the same answer.
    Rejected,
}

impl DialOutcome {
    /// The value of `${dial_status}` after a dial.
    pub fn as_str(self) -> &'static str {
        match self {
            DialOutcome::Answered => "answered",
            DialOutcome::Busy => "busy",
            DialOutcome::NoAnswer => "no_answer",
            DialOutcome::Unavailable => "unavailable",
            DialOutcome::Rejected => "rejected",
        }
    }
}

/// How `say` reads its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SayKind {
    /// One digit after the other: "one two three".
    Digits,
    /// A whole number: "one hundred twenty three".
    Number,
    /// Unix seconds or `YYYY-MM-DD`: the weekday, month and day.
    Date,
    /// Unix seconds or `HH:MM`: the time of day.
    Time,
}

impl SayKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SayKind::Digits => "digits",
            SayKind::Number => "number",
            SayKind::Date => "date",
            SayKind::Time => "time",
        }
    }
}

/// A `db_lookup` query the server runs against `[lookup.DATABASE]`, then reports with
/// [`StepResult::Db`]. The parameters are bound, never spliced into the query.
#[derive(Clone, PartialEq, Eq)]
pub struct DbRequest {
    pub database: String,
    pub query: String,
    pub params: Vec<String>,
    pub timeout: Duration,
}

// Hand-written: parameters may be a caller's PIN.
impl std::fmt::Debug for DbRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbRequest")
            .field("database", &self.database)
            .field("query", &self.query)
            .field("params", &self.params.len())
            .finish_non_exhaustive()
    }
}

/// How a `db_lookup` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbOutcome {
    /// The first row, column name → value as text (NULL: empty).
    Row(Vec<(String, String)>),
    NoRow,
    /// An error or a timeout.
    Failed(String),
}

/// How an `http_lookup` request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    /// An answer arrived; a 2xx with a JSON body fills the variables.
    Response { status: u16, body: String },
    /// Timeout, connection failure...
    Failed(String),
}

/// What the server reports after carrying out an [`Action`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepResult {
    /// Answer, playback, echo and voicemail are over.
    Done,
    Dial(DialOutcome),
    /// The digits entered at a menu; empty on timeout.
    Digits(String),
    Http(HttpOutcome),
    Db(DbOutcome),
}
