//! A message-waiting request waiting for a mailbox's counts from the store (data only).

use super::request::Accepted;
use crate::peer::Peer;
use pbx_sip::message::Request;
use pbx_sip::transaction::TransactionKey;

/// A request waiting for a mailbox's counts from the store.
// Always boxed (`Waiting::Mwi`): the sizes of the variants do not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Pending {
    /// A SUBSCRIBE, new (`existing` None) or in an existing subscription's dialog.
    Subscribe {
        key: TransactionKey,
        request: Request,
        peer: Peer,
        mailbox: String,
        accepted: Accepted,
        existing: Option<u64>,
    },
    /// Devices of `mailbox` that just registered and get NOTIFYs without subscribing.
    Registered {
        mailbox: String,
        devices: Vec<(String, Peer)>,
    },
}
