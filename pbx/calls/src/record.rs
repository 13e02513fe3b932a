//! What a call leaves behind: the call detail record (CDR).

use std::time::Instant;

/// How a call ended, from the caller's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    Answered,
    Busy,
    NoAnswer,
    Failed,
    Cancelled,
}

impl Disposition {
    /// The name stored in the `cdrs` table.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::Busy => "busy",
            Disposition::NoAnswer => "no_answer",
            Disposition::Failed => "failed",
            Disposition::Cancelled => "cancelled",
        }
    }
}

/// Who ended the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HangupSide {
    Caller,
    Callee,
    Pbx,
}

impl HangupSide {
    pub fn as_str(self) -> &'static str {
        match self {
            HangupSide::Caller => "caller",
            HangupSide::Callee => "callee",
            HangupSide::Pbx => "pbx",
        }
    }
}

/// A finished call. Times are the machine's `Instant`s; the shell turns them into wall-clock
/// time.
#[derive(Clone, Debug)]
pub struct CallRecord {
    /// The caller's Call-ID.
    pub call_id: String,
    pub caller: String,
    pub called: String,
    pub started: Instant,
    pub answered: Option<Instant>,
    pub ended: Instant,
    pub disposition: Disposition,
    /// A SIP status and reason (`486 Busy Here`), `BYE`, `media timeout`...
    pub hangup_cause: String,
    pub hangup_side: HangupSide,
    /// The codec both legs agreed on, when media was set up.
    pub codec: Option<String>,
    pub caller_encrypted: bool,
    pub callee_encrypted: bool,
    /// The trunk the call came in by (`Originator::Trunk`); `None` for an extension's call.
    pub trunk: Option<String>,
}

impl CallRecord {
    /// Whole seconds from answer to end; 0 for an unanswered call.
    pub fn duration_secs(&self) -> u64 {
        self.answered
            .map(|at| self.ended.saturating_duration_since(at).as_secs())
            .unwrap_or(0)
    }
}
