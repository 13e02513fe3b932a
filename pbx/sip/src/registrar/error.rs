//! Why a REGISTER is refused, and the status each reason is answered with.

use crate::header::HeaderError;
use crate::status::StatusCode;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// A header the rules need is missing or unreadable (Call-ID, CSeq, Contact).
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// `Contact: *` with an expiration other than 0 (RFC 3261 §10.3 step 6).
    #[error("Contact * requires Expires: 0")]
    StarWithExpires,
    /// A non-zero expiration below the minimum (RFC 3261 §10.3 step 7).
    #[error("interval too brief; minimum is {min_expires} s")]
    IntervalTooBrief { min_expires: u32 },
    /// Same Call-ID as a binding, CSeq not higher (RFC 3261 §10.3 steps 6 and 8: "the update
    /// MUST be aborted and the request fails").
    #[error("CSeq {cseq} is not higher than the binding's {stored}")]
    OutOfOrder { cseq: u32, stored: u32 },
    /// The request would leave more bindings than the policy allows.
    #[error("too many bindings (at most {max})")]
    TooManyBindings { max: usize },
}

impl RegisterError {
    /// - 400 for a malformed request. For `OutOfOrder`, RFC 3261 §10.3 step 8 only says the
    ///   request fails; 500 is kept there for a failed commit, and the fault is the client's
    ///   ordering, so 400.
    /// - 423 with Min-Expires for an interval too brief (§10.3 step 7).
    /// - 403 for too many bindings: a standing policy, not a passing overload (which 503 means).
    pub fn status(&self) -> StatusCode {
        match self {
            RegisterError::Header(_)
            | RegisterError::StarWithExpires
            | RegisterError::OutOfOrder { .. } => StatusCode::BAD_REQUEST,
            RegisterError::IntervalTooBrief { .. } => StatusCode::INTERVAL_TOO_BRIEF,
            RegisterError::TooManyBindings { .. } => StatusCode::FORBIDDEN,
        }
    }

    /// A reason phrase that says what went wrong.
    pub fn reason(&self) -> &'static str {
        match self {
            RegisterError::Header(_) => "Bad Request",
            RegisterError::StarWithExpires => "Contact * Requires Expires 0",
            RegisterError::IntervalTooBrief { .. } => "Interval Too Brief",
            RegisterError::OutOfOrder { .. } => "Invalid CSeq Number",
            RegisterError::TooManyBindings { .. } => "Too Many Registrations",
        }
    }

    /// The Min-Expires header value the 423 MUST carry (RFC 3261 §10.3 step 7).
    pub fn min_expires(&self) -> Option<u32> {
        match self {
            RegisterError::IntervalTooBrief { min_expires } => Some(*min_expires),
            _ => None,
        }
    }
}
