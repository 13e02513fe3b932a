//! The two messages a transaction writes itself: the ACK for a non-2xx final response
//! (§17.1.1.3) and the 100 Trying of an INVITE server transaction (§17.2.1).

use crate::header::{CSeq, split_commas};
use crate::message::{HeaderName, Headers, Request, Response};
use crate::method::Method;
use crate::status::StatusCode;
use bytes::Bytes;

/// The ACK for `response`, a 300-699 answer to `invite`.
pub(crate) fn ack_for(invite: &Request, response: &Response) -> Request {
    let original = &invite.headers;
    let mut headers = Headers::with_capacity(8);
    // RFC 3261 §17.1.1.3: the ACK MUST contain a single Via header field, equal to the top
    // Via header field of the original request.
    if let Some(via) = top_value(original, &HeaderName::VIA) {
        headers.push(HeaderName::VIA, via);
    }
    headers.push(HeaderName::MAX_FORWARDS, Bytes::from_static(b"70"));
    // RFC 3261 §17.1.1.3: if the INVITE contained Route header fields, the ACK MUST contain
    // them too.
    for route in original.get_all(&HeaderName::ROUTE) {
        headers.push(HeaderName::ROUTE, route.clone());
    }
    // RFC 3261 §17.1.1.3: Call-ID, From and Request-URI MUST equal those of the original
    // request; To MUST equal the To of the response being acknowledged (with its tag).
    copy(original, &mut headers, &HeaderName::FROM);
    copy(&response.headers, &mut headers, &HeaderName::TO);
    copy(original, &mut headers, &HeaderName::CALL_ID);
    // RFC 3261 §17.1.1.3: the CSeq number MUST equal the original's; the method MUST be ACK.
    if let Ok(cseq) = original.cseq() {
        headers.push(
            HeaderName::CSEQ,
            CSeq::new(cseq.seq, Method::ACK).to_string(),
        );
    }
    // Content-Length is written by the serializer.
    Request {
        method: Method::ACK,
        uri: invite.uri.clone(),
        headers,
        body: Bytes::new(),
    }
}

/// The 100 Trying for `request`: Via, From, To (no tag), Call-ID, CSeq and Timestamp copied
/// (RFC 3261 §8.2.6).
pub(crate) fn trying_for(request: &Request) -> Response {
    Response::for_request(request, StatusCode::TRYING, None)
}

fn copy(from: &Headers, to: &mut Headers, name: &HeaderName) {
    if let Some(value) = from.get(name) {
        to.push(name.clone(), value.clone());
    }
}

/// The first comma-separated value of the first line named `name` (a line may hold several
/// Via values, RFC 3261 §7.3.1), as written.
fn top_value(headers: &Headers, name: &HeaderName) -> Option<String> {
    let line = headers.get_str(name)?;
    let values = split_commas(line).ok()?;
    values.first().map(|v| v.trim().to_owned())
}
