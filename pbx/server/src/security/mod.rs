//! What keeps hostile sources out: bans after repeated authentication failures, the
//! `[security] allow`/`deny` networks, and a per-source request-rate limit.
//!
//! The decision logic ([`bans::FailureTracker`], [`acl::Acl`]) takes the time as input so it is
//! tested without a clock; [`Guard`] is the shared, read-mostly front that every transport asks
//! before it parses a byte.

pub mod acl;
pub mod bans;
pub mod gate;
pub mod guard;
pub mod rate;

pub use guard::{Admission, CheckOutcome, Gated, Guard, Ticket, Verdict};
