//! One dialog of the B2BUA (RFC 3261 §12): its identifiers, sequence numbers, remote target
//! and route set, and the in-dialog requests built from them.

use crate::endpoint::Endpoint;
use crate::ids;
use bytes::Bytes;
use pbx_sip::header::{CSeq, NameAddr};
use pbx_sip::message::{HeaderName, Request};
use pbx_sip::method::Method;
use pbx_sip::uri::Uri;
use rand::RngCore;

/// A dialog as the PBX sees it. `local_*` is the PBX's side.
#[derive(Clone, Debug)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    /// The From (UAC side) or To (UAS side) of the PBX, without tag.
    pub local_uri: NameAddr,
    pub remote_uri: NameAddr,
    /// RFC 3261 §12.1: the Contact of the other party; the Request-URI of our requests.
    pub remote_target: Uri,
    /// RFC 3261 §12.1.1 / §12.1.2: Route headers for our requests, in order.
    pub route_set: Vec<Bytes>,
    /// The CSeq of the last request the PBX sent in this dialog.
    pub local_cseq: u32,
    /// The CSeq of the last request received, to refuse stale ones (§12.2.2).
    pub remote_cseq: Option<u32>,
}

impl Dialog {
    /// RFC 3261 §12.2.2: a request with a lower CSeq than the last one is out of order
    /// (answered 500); records the new number otherwise.
    pub fn accept_remote_cseq(&mut self, cseq: u32, method: &Method) -> bool {
        if *method == Method::ACK || *method == Method::CANCEL {
            return true;
        }
        match self.remote_cseq {
            Some(last) if cseq <= last => false,
            _ => {
                self.remote_cseq = Some(cseq);
                true
            }
        }
    }

    /// A new in-dialog request (RFC 3261 §12.2.1.1) with the next CSeq.
    pub fn request<D>(
        &mut self,
        method: Method,
        endpoint: &Endpoint<D>,
        user_agent: &str,
        rng: &mut impl RngCore,
    ) -> Request {
        self.local_cseq = self.local_cseq.saturating_add(1);
        let seq = self.local_cseq;
        self.request_with_cseq(method, seq, endpoint, user_agent, rng)
    }

    /// The ACK of a 2xx (§13.2.2.4): the INVITE's CSeq number, a new branch.
    pub fn ack<D>(
        &self,
        invite_cseq: u32,
        endpoint: &Endpoint<D>,
        user_agent: &str,
        rng: &mut impl RngCore,
    ) -> Request {
        self.request_with_cseq(Method::ACK, invite_cseq, endpoint, user_agent, rng)
    }

    fn request_with_cseq<D>(
        &self,
        method: Method,
        seq: u32,
        endpoint: &Endpoint<D>,
        user_agent: &str,
        rng: &mut impl RngCore,
    ) -> Request {
        let mut request = Request::new(method.clone(), self.remote_target.clone());
        let h = &mut request.headers;
        h.push(HeaderName::VIA, endpoint.via(&ids::branch(rng)).to_string());
        h.push(HeaderName::MAX_FORWARDS, "70");
        for route in &self.route_set {
            h.push(HeaderName::ROUTE, route.clone());
        }
        let mut from = self.local_uri.clone();
        from.params.set("tag", Some(&self.local_tag));
        h.push(HeaderName::FROM, from.to_string());
        let mut to = self.remote_uri.clone();
        if !self.remote_tag.is_empty() {
            to.params.set("tag", Some(&self.remote_tag));
        }
        h.push(HeaderName::TO, to.to_string());
        h.push(HeaderName::CALL_ID, self.call_id.clone());
        h.push(HeaderName::CSEQ, CSeq::new(seq, method).to_string());
        h.push(HeaderName::CONTACT, format!("<{}>", endpoint.contact()));
        h.push(HeaderName::USER_AGENT, user_agent.to_string());
        request
    }
}

/// Strips the tag from a From/To value.
pub fn without_tag(mut addr: NameAddr) -> NameAddr {
    addr.params.remove("tag");
    addr
}
