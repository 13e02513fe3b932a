//! Sans-IO B2BUA calls (RFC 3261 §6 "back-to-back user agent").
//!
//! A [`Call`] bridges the caller's dialog (the PBX is its UAS) to the dialog with the device
//! that answers (the PBX is its UAC), ringing every device of the called extension at once.
//! It runs above `pbx_sip`'s transaction layer and below the shell: the shell passes it the
//! requests, responses, transaction events and the time; it answers through the layer and
//! tells the shell what to do with [`CallOutput`]s (apply a media plan, track a transaction,
//! write the CDR). No sockets, no clock.

mod call;
mod dialog;
pub mod endpoint;
pub mod ids;
mod originator;
mod outcome;
pub mod record;

pub use call::{
    ALLOW, AnswerError, Call, CallConfig, CallOutput, CallSetup, DialEnd, DialOutcome, DtmfMedia,
    DtmfMode, MediaSetup, Route, TrunkCredentials, TrunkLeg,
};
pub use dialog::Dialog;
pub use endpoint::{Device, Endpoint};
pub use originator::Originator;
pub use outcome::best_failure;
pub use record::{CallRecord, Disposition, HangupSide};
