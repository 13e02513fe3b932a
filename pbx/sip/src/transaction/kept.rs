//! A response a server transaction keeps only to send it again.
//!
//! A completed transaction waits 32 s (Timer J, Timer H) for request retransmissions, and at
//! thousands of requests per second hundreds of thousands wait at once. A structured
//! [`Response`] would keep its header vector and, through its zero-copy header values, the
//! whole datagram of the request it answers. Kept serialized instead, it costs its own bytes;
//! the rare retransmission parses it again.

use crate::message::{Message, Response};
use bytes::Bytes;

#[derive(Clone, Debug)]
pub(super) struct KeptResponse {
    bytes: Bytes,
}

impl KeptResponse {
    pub(super) fn new(response: &Response) -> KeptResponse {
        KeptResponse {
            bytes: response.to_bytes(),
        }
    }

    /// The response again, to hand to the transport. `None` cannot happen for a response
    /// this crate serialized; then nothing is re-sent and the peer retransmits or times out.
    pub(super) fn message(&self) -> Option<Message> {
        crate::parse::parse_message(self.bytes.clone()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comes_back_byte_for_byte() {
        let raw = "SIP/2.0 401 Unauthorized\r\n\
            Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-1;rport=5060;received=192.0.2.1\r\n\
            From: <sip:1000@pbx.test>;tag=a1\r\n\
            To: <sip:1000@pbx.test>;tag=b2\r\n\
            Call-ID: c3@192.0.2.1\r\n\
            CSeq: 1 REGISTER\r\n\
            WWW-Authenticate: Digest realm=\"pbx.test\", nonce=\"n\", algorithm=MD5, qop=\"auth\"\r\n\
            X-Unknown:   kept   as is\r\n\
            Content-Length: 0\r\n\r\n";
        let Ok(Message::Response(response)) = crate::parse::parse_message(Bytes::from(raw)) else {
            panic!("test response must parse");
        };
        let kept = KeptResponse::new(&response);
        let Some(Message::Response(again)) = kept.message() else {
            panic!("kept response must parse again");
        };
        assert_eq!(again.status, response.status);
        assert_eq!(again.to_bytes(), response.to_bytes());
    }
}
