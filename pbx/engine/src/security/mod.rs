//! The tables that keep hostile sources out, shared by every shard and the transports: bans
//! after repeated authentication failures, the `[security] allow`/`deny` networks, and the
//! credential gate.
//!
//! The decision logic ([`bans::FailureTracker`], [`acl::Acl`], [`gate::Gate`]) takes the time
//! as input so it is tested without a clock; [`Guard`] is the shared, read-mostly front that
//! every transport asks before it parses a byte. The per-source rate limit is the shell's
//! (it reads a clock): the guard asks it through [`RateLimit`].

pub mod acl;
pub mod bans;
pub mod gate;
pub mod guard;

pub use guard::{
    Admission, Ban, CheckOutcome, Gated, Guard, NoRateLimit, RateLimit, Ticket, Verdict,
};
