//! Parse any bytes as a datagram, read every typed view, answer errors, re-serialize.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pbx_sip::message::Message;
use pbx_sip::parse::parse_message;

fuzz_target!(|data: &[u8]| {
    let msg = match parse_message(Bytes::copy_from_slice(data)) {
        Ok(msg) => msg,
        Err(e) => {
            let _ = (e.reason(), e.status());
            if let Some(resp) = e.bad_request_response() {
                let _ = resp.to_bytes();
            }
            return;
        }
    };
    let h = msg.headers();
    if let Ok(vias) = h.vias() {
        for v in vias {
            let _ = (
                v.branch(),
                v.received(),
                v.rport(),
                v.sent_by(),
                v.to_string(),
            );
        }
    }
    let _ = (h.top_via(), h.call_id(), h.cseq().map(|c| c.to_string()));
    let _ = (
        h.from().map(|f| f.to_string()),
        h.to().map(|t| t.tag().map(str::to_owned)),
    );
    if let Ok(c) = h.contacts() {
        for a in c.addresses() {
            let _ = (a.expires(), a.q(), a.uri.equivalent(&a.uri), a.to_string());
        }
    }
    let _ = (h.expires(), h.max_forwards(), h.content_length());
    if let Message::Request(r) = &msg {
        let _ = (
            r.uri.user(),
            r.uri.host(),
            r.uri.port(),
            r.uri.param("transport"),
        );
        let _ = r.uri.clone().with_param("x", Some("y")).to_string();
        let resp =
            pbx_sip::message::Response::for_request(r, pbx_sip::status::StatusCode::OK, Some("t"));
        let _ = resp.to_bytes();
    }
    // A message that parsed must re-parse, identically.
    let once = msg.to_bytes();
    let again = parse_message(once.clone()).expect("re-parse of a serialized message");
    assert_eq!(again.to_bytes(), once);
});
