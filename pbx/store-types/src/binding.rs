//! One registered device: the one binding type the location service keeps in memory, the
//! store saves and `pbx registration list` shows.

use std::net::SocketAddr;

use pbx_sip::transport::Transport;

/// One binding of an address of record to a contact (RFC 3261 §10.3), with how the device
/// reached the PBX.
///
/// The registrar's rules (pbx-sip, sans-IO) work on [`pbx_sip::registrar::Binding`], the part
/// they decide on; that is a different thing (no transport, no source) and stays in pbx-sip.
/// This type carries it whole in [`Binding::binding`].
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    /// The address of record: the extension number.
    pub aor: String,
    /// What the registrar's rules decide on: the contact URI, expiry (unix seconds), Call-ID
    /// and CSeq, q-value, RFC 5626 instance and reg-id.
    pub binding: pbx_sip::registrar::Binding,
    /// The transport the REGISTER came over.
    pub transport: Transport,
    /// Where the REGISTER came from (after rport/received).
    pub source: SocketAddr,
    /// The listener it arrived on.
    pub local: SocketAddr,
    /// The stream connection it came over (the server's connection id), so that requests go
    /// back over the same flow (RFC 5626 §5.3). Not saved: `None` when read from the store, as
    /// the connection does not outlive the process.
    pub conn: Option<u64>,
    /// The User-Agent header; empty when the phone sent none.
    pub user_agent: String,
    /// The last OPTIONS qualify result; `None` when not qualified (yet). An upsert keeps the
    /// stored value; `LocationStore::set_reachable` (pbx-store) changes it.
    pub reachable: Option<bool>,
}

impl Binding {
    /// The contact URI as text, as the store keys it.
    pub fn contact(&self) -> String {
        self.binding.contact.to_string()
    }

    /// Unix seconds at which the binding lapses.
    pub fn expires_at(&self) -> u64 {
        self.binding.expires_at
    }
}
