//! A round of ringing the plan asked for and the engine starts once the call has its relay
//! ports and local addresses (data only).

use crate::peer::Peer;
use pbx_sip::message::HeaderName;
use pbx_sip::uri::Uri;
use std::time::Duration;

/// A round of ringing the plan asked for, not started yet.
pub(crate) struct PendingRing {
    /// Each device's Contact and the flow it registered from.
    pub devices: Vec<(Uri, Peer)>,
    pub timeout: Duration,
    pub caller_name: Option<String>,
    /// The called extension's `media_encryption`.
    pub callee_policy: String,
    /// A call through a trunk instead of devices.
    pub trunk: Option<Box<TrunkRing>>,
}

/// A trunk leg waiting for its round of ringing (see `trunk::outbound`).
#[derive(Clone)]
pub(crate) struct TrunkRing {
    pub trunk: std::sync::Arc<crate::trunk::TrunkPeer>,
    pub number: String,
    pub peer: Peer,
    pub contact: Uri,
    pub from: pbx_sip::header::NameAddr,
    pub to: pbx_sip::header::NameAddr,
    pub headers: Vec<(HeaderName, String)>,
    pub setup_timeout: Duration,
}
