//! Where a party's messages go, and how the PBX names itself to that party.

use pbx_sip::header::Via;
use pbx_sip::uri::{Host, Uri};
use std::net::SocketAddr;

/// One party's transport, as the shell knows it: the destination `D` (address and flow,
/// opaque here) and the PBX's own address on that transport.
#[derive(Clone, Debug)]
pub struct Endpoint<D> {
    /// Where to send: for a phone behind NAT, where its requests really came from (RFC 3581).
    pub peer: D,
    /// TCP or TLS: the transaction timers are shortened (RFC 3261 §17.1.1.2).
    pub reliable: bool,
    /// The Via transport token: `UDP`, `TCP`, `TLS`.
    pub transport: &'static str,
    /// The PBX's listening address on that transport, for Via and Contact.
    pub local: SocketAddr,
    /// Signalling is encrypted (TLS): SRTP keys may be written into SDP (RFC 4568 §8.3).
    pub secure: bool,
}

impl<D> Endpoint<D> {
    /// A Via for a request the PBX sends on this transport, with a fresh branch (§8.1.1.7)
    /// and `rport` (RFC 3581 §3) so the answer comes back through the same NAT binding.
    pub fn via(&self, branch: &str) -> Via {
        let mut via = Via::new(
            self.transport,
            Host::from(self.local.ip()),
            Some(self.local.port()),
        );
        via.params.set("branch", Some(branch));
        via.params.set("rport", None);
        via
    }

    /// The PBX's Contact URI on this transport (RFC 3261 §8.1.1.8, §12.1.1).
    pub fn contact(&self) -> Uri {
        let uri = Uri::sip(
            Some("pbx"),
            Host::from(self.local.ip()),
            Some(self.local.port()),
        );
        match self.transport {
            "UDP" => uri,
            other => uri.with_param("transport", Some(&other.to_ascii_lowercase())),
        }
    }
}

/// One registered device of the called extension.
#[derive(Clone, Debug)]
pub struct Device<D> {
    /// The binding's Contact: the Request-URI of the INVITE (RFC 3261 §10.3, §16.5).
    pub contact: Uri,
    pub endpoint: Endpoint<D>,
}
