//! The time of an input, as the shell read it: the one clock reading every decision takes.

use std::time::Instant;

/// The time of an input: the monotonic clock for timers, the wall clock for what reaches
/// the wire or the store (nonces, Expires, Date, CDR times, dialplan time conditions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub at: Instant,
    /// Milliseconds since the Unix epoch.
    pub unix_ms: u64,
}

impl Now {
    /// Unix seconds.
    pub fn unix(&self) -> u64 {
        self.unix_ms / 1000
    }

    /// The wall clock as the dialplan reads it.
    pub fn timestamp(&self) -> pbx_dialplan::Timestamp {
        i64::try_from(self.unix_ms)
            .ok()
            .and_then(|ms| pbx_dialplan::Timestamp::from_millisecond(ms).ok())
            .unwrap_or(pbx_dialplan::Timestamp::UNIX_EPOCH)
    }

    /// The same wall clock `elapsed` later on the monotonic one (virtual time in tests).
    pub fn advanced_to(&self, at: Instant) -> Now {
        let elapsed = at.saturating_duration_since(self.at).as_millis();
        Now {
            at,
            unix_ms: self
                .unix_ms
                .saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX)),
        }
    }
}
