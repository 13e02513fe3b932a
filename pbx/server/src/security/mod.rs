//! What keeps hostile sources out: bans after repeated authentication failures, the
//! `[security] allow`/`deny` networks, and a per-source request-rate limit.
//!
//! The tables the engine consults (the [`Guard`], its ACL, ban tracker and credential gate)
//! are the engine crate's (`pbx_engine::security`); the rate limit, which reads the shell's
//! clock, is here and plugs into the guard.

pub mod events;
pub mod rate;

pub use pbx_engine::security::{Admission, CheckOutcome, Gated, Guard, Ticket, Verdict};
pub use pbx_engine::security::{acl, bans, gate, guard};
