//! Building messages: responses to a request (RFC 3261 §8.2.6) and blank requests.

use crate::header::NameAddr;
use crate::message::{HeaderName, Headers, Request, Response};
use crate::method::Method;
use crate::status::StatusCode;
use crate::uri::Uri;
use bytes::Bytes;

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }
}

impl Response {
    /// A response with the canonical reason phrase, no headers and no body.
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            reason: Bytes::from_static(status.canonical_reason().as_bytes()),
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// RFC 3261 §8.2.6.2: copies Via (all, in order), From, To, Call-ID and CSeq from the
    /// request, adds `to_tag` to To when given and To has none, and for 100 (Trying) copies
    /// Timestamp (§8.2.6.1). The reason phrase is the canonical one.
    pub fn for_request(req: &Request, status: StatusCode, to_tag: Option<&str>) -> Response {
        let mut resp = Response::new(status);
        resp.headers = reply_headers(&req.headers, status, to_tag);
        resp
    }

    /// Replaces the reason phrase (CR and LF are replaced by spaces when written).
    pub fn with_reason(mut self, reason: impl Into<Bytes>) -> Response {
        self.reason = reason.into();
        self
    }
}

/// The headers of a response built from a request's headers. Lines are copied as stored.
/// With no `to_tag`, a non-100 response to a To without tag gets one derived from the
/// request, so a retransmission gets the same tag (RFC 3261 §8.2.7, stateless UAS).
pub(crate) fn reply_headers(req: &Headers, status: StatusCode, to_tag: Option<&str>) -> Headers {
    let mut out = Headers::with_capacity(8);
    // RFC 3261 §8.2.6.2: Via values in the same order as in the request.
    for h in req.iter().filter(|h| h.name == HeaderName::VIA) {
        out.push(h.name.clone(), h.value.clone());
    }
    // RFC 3261 §8.2.6.2: the UAS MUST add a To tag, except to a 100 (Trying), where it MAY.
    // A To that does not parse (a malformed request being answered) is copied as is.
    let tag = to_tag
        .map(str::to_owned)
        .or_else(|| (status != StatusCode::TRYING).then(|| stateless_tag(req)));
    for name in [
        HeaderName::FROM,
        HeaderName::TO,
        HeaderName::CALL_ID,
        HeaderName::CSEQ,
    ] {
        let Some(h) = req.iter().find(|h| h.name == name) else {
            continue;
        };
        let mut value = h.value.clone();
        if let (true, Some(tag)) = (name == HeaderName::TO, &tag) {
            let has_tag = NameAddr::parse(h.value_str().unwrap_or("")).map(|n| n.tag().is_some());
            if has_tag == Ok(false) {
                let mut v = value.to_vec();
                v.extend_from_slice(b";tag=");
                v.extend_from_slice(tag.as_bytes());
                value = Bytes::from(v);
            }
        }
        out.push(h.name.clone(), value);
    }
    // RFC 3261 §8.2.6.1: a 100 (Trying) copies the request's Timestamp.
    if status == StatusCode::TRYING
        && let Some(h) = req.iter().find(|h| h.name == HeaderName::TIMESTAMP)
    {
        out.push(h.name.clone(), h.value.clone());
    }
    out
}

/// A tag that depends only on the request (FNV-1a over Call-ID, From, CSeq and top Via).
fn stateless_tag(req: &Headers) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for name in [
        HeaderName::CALL_ID,
        HeaderName::FROM,
        HeaderName::CSEQ,
        HeaderName::VIA,
    ] {
        for b in req.get(&name).map(|v| v.as_ref()).unwrap_or_default() {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash = (hash ^ 0xff).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::parse::parse_message;

    fn request(extra: &str) -> Request {
        let text = format!(
            "INVITE sip:bob@example.com SIP/2.0\r\n\
v: SIP/2.0/UDP p1.example.com;branch=z9hG4bK1\r\n\
Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bK2, SIP/2.0/UDP a.example.com;branch=z9hG4bK3\r\n\
Max-Forwards: 70\r\nTo: Bob <sip:bob@example.com>\r\nFrom: <sip:alice@example.com>;tag=88\r\n\
Call-ID: c1\r\nCSeq: 4 INVITE\r\nSubject: hi\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        match parse_message(Bytes::from(text)).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    #[test]
    fn copies_rfc3261_8_2_6_2_headers() {
        let req = request("Timestamp: 54.2\r\n");
        let resp = Response::for_request(&req, StatusCode::OK, Some("xyz"));
        assert_eq!(&resp.reason[..], b"OK");
        let names: Vec<_> = resp
            .headers
            .iter()
            .map(|h| h.name.as_str().to_owned())
            .collect();
        assert_eq!(names, ["v", "Via", "From", "To", "Call-ID", "CSeq"]);
        let vias = resp.headers.vias().unwrap();
        assert_eq!(
            vias.iter().map(|v| v.branch().unwrap()).collect::<Vec<_>>(),
            ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3"]
        );
        assert_eq!(resp.headers.to().unwrap().tag(), Some("xyz"));
        assert_eq!(resp.headers.from().unwrap().tag(), Some("88"));
        assert!(!resp.headers.contains(&HeaderName::TIMESTAMP));
    }

    #[test]
    fn trying_copies_timestamp_and_adds_no_tag() {
        let req = request("Timestamp: 54.2\r\n");
        let resp = Response::for_request(&req, StatusCode::TRYING, None);
        assert_eq!(resp.headers.get_str(&HeaderName::TIMESTAMP), Some("54.2"));
        assert_eq!(resp.headers.to().unwrap().tag(), None);
    }

    #[test]
    fn keeps_an_existing_to_tag_and_derives_one_otherwise() {
        let mut req = request("");
        let a = Response::for_request(&req, StatusCode::BUSY_HERE, None);
        let b = Response::for_request(&req, StatusCode::BUSY_HERE, None);
        let tag = a.headers.to().unwrap().tag().map(str::to_owned);
        assert!(tag.is_some());
        assert_eq!(tag.as_deref(), b.headers.to().unwrap().tag());
        req.headers
            .set(HeaderName::TO, "<sip:bob@example.com>;tag=abc");
        let c = Response::for_request(&req, StatusCode::OK, Some("new"));
        assert_eq!(c.headers.to().unwrap().tag(), Some("abc"));
        let d = c.with_reason("Fine");
        assert_eq!(&d.reason[..], b"Fine");
    }
}
