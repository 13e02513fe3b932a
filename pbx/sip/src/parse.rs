//! The message parser (RFC 3261 §7, §25): one UDP datagram, or one message cut out of a
//! stream by [`crate::framing`]. Header values are slices of the input ([`Bytes`]); only
//! folded values are copied. Never panics, whatever the input.

mod check;
mod error;

pub use error::{ParseError, ParseErrorKind};

use crate::message::{HeaderName, Headers, Message, Request, Response};
use crate::method::Method;
use crate::status::StatusCode;
use crate::uri::{Uri, UriError};
use bytes::{Bytes, BytesMut};
use check::{check_headers, reply_context};

enum StartLine {
    /// A bad Request-URI is reported after the headers are read, so it can be answered.
    Request {
        method: Method,
        uri: Result<Uri, ParseErrorKind>,
    },
    Response {
        status: StatusCode,
        reason: Bytes,
    },
}

/// Parses one message. See the module documentation.
pub fn parse_message(buf: Bytes) -> Result<Message, ParseError> {
    let data: &[u8] = &buf;
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let mut pos = data
        .iter()
        .position(|b| *b != b'\r' && *b != b'\n')
        .ok_or(ParseErrorKind::Empty)?;
    let (line, next) = next_line(data, pos).ok_or(ParseErrorKind::StartLine)?;
    let (start, version_ok) = parse_start_line(&buf, line)?;
    pos = next;

    let mut headers = Headers::with_capacity(16);
    let body_start = loop {
        let Some((line, mut next)) = next_line(data, pos) else {
            // No empty line before the end of the datagram: the headers run to the end.
            if pos < data.len() {
                let (name, value) = header_line(&buf, (pos, data.len()), &[])?;
                headers.push(name, value);
            }
            break data.len();
        };
        if line.0 == line.1 {
            break next;
        }
        // RFC 3261 §7.3.1: a line starting with white space continues the previous one.
        let mut continuations = Vec::new();
        while let Some((cont, after)) = next_line(data, next) {
            if !matches!(data.get(cont.0), Some(b' ' | b'\t')) {
                break;
            }
            continuations.push(cont);
            next = after;
        }
        let (name, value) = header_line(&buf, line, &continuations)?;
        headers.push(name, value);
        pos = next;
    };

    let answerable = matches!(start, StartLine::Request { .. });
    let fail = |kind: ParseErrorKind, headers: &Headers| -> ParseError {
        let mut err = ParseError::new(kind);
        if answerable {
            err = err.with_reply(reply_context(headers));
        }
        err
    };
    if !version_ok {
        return Err(fail(ParseErrorKind::Version, &headers));
    }
    if let StartLine::Request { uri: Err(kind), .. } = &start {
        return Err(fail(kind.clone(), &headers));
    }

    // Content-Length: RFC 3261 §18.3 — a datagram's extra bytes are dropped, a short body
    // is an error; without the header the body runs to the end of the datagram.
    let remaining = buf.len().saturating_sub(body_start);
    let mut first_length = None;
    let mut lengths = 0;
    for h in headers
        .iter()
        .filter(|h| h.name == HeaderName::CONTENT_LENGTH)
    {
        first_length.get_or_insert(&h.value);
        lengths += 1;
    }
    let body_len = match (first_length, lengths > 1) {
        (None, _) => remaining,
        (Some(_), true) => return Err(fail(ParseErrorKind::MultipleContentLength, &headers)),
        (Some(v), false) => {
            let n =
                parse_decimal(v).ok_or_else(|| fail(ParseErrorKind::ContentLength, &headers))?;
            if n > remaining {
                return Err(fail(ParseErrorKind::BodyTooShort, &headers));
            }
            n
        }
    };
    let body = buf.slice(body_start..body_start + body_len);

    let request_method = match &start {
        StartLine::Request { method, .. } => Some(method),
        StartLine::Response { .. } => None,
    };
    if let Err(kind) = check_headers(&headers, request_method) {
        return Err(fail(kind, &headers));
    }
    Ok(match start {
        StartLine::Request { method, uri } => {
            let uri = uri.map_err(|kind| fail(kind, &headers))?;
            Message::Request(Request {
                method,
                uri,
                headers,
                body,
            })
        }
        StartLine::Response { status, reason } => Message::Response(Response {
            status,
            reason,
            headers,
            body,
        }),
    })
}

/// The next line from `pos`: its (start, end) without the line ending, and where the
/// following line starts. `None` when there is no complete line. Bare LF is accepted.
fn next_line(data: &[u8], pos: usize) -> Option<((usize, usize), usize)> {
    let rest = data.get(pos..)?;
    let lf = rest.iter().position(|b| *b == b'\n')?;
    let mut end = pos + lf;
    if end > pos && data.get(end - 1) == Some(&b'\r') {
        end -= 1;
    }
    Some(((pos, end), pos + lf + 1))
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim(data: &[u8], (mut s, mut e): (usize, usize)) -> (usize, usize) {
    while s < e && data.get(s).copied().is_some_and(is_ws) {
        s += 1;
    }
    while e > s && data.get(e - 1).copied().is_some_and(is_ws) {
        e -= 1;
    }
    (s, e)
}

fn parse_decimal(v: &[u8]) -> Option<usize> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn is_version(v: &[u8]) -> bool {
    v.eq_ignore_ascii_case(b"SIP/2.0")
}

/// Returns the start line and whether its version is SIP/2.0 (checked after the headers are
/// read, so a 505 can still be answered).
fn parse_start_line(buf: &Bytes, (s, e): (usize, usize)) -> Result<(StartLine, bool), ParseError> {
    let line = buf.get(s..e).ok_or(ParseErrorKind::StartLine)?;
    if line.contains(&b'\r') {
        return Err(ParseErrorKind::StartLine.into());
    }
    if line.len() >= 4
        && line
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
    {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let sp = line
            .iter()
            .position(|b| *b == b' ')
            .ok_or(ParseErrorKind::StartLine)?;
        let version_ok = line.get(..sp).is_some_and(is_version);
        let rest = line.get(sp + 1..).unwrap_or_default();
        let code_end = rest.iter().position(|b| *b == b' ').unwrap_or(rest.len());
        let code = rest.get(..code_end).unwrap_or_default();
        if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
            return Err(ParseErrorKind::StatusCode.into());
        }
        let code = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        if !(100..=699).contains(&code) {
            return Err(ParseErrorKind::StatusCode.into());
        }
        let reason_start = (s + sp + 1 + code_end + 1).min(e);
        let reason = buf.slice(reason_start..e);
        return Ok((
            StartLine::Response {
                status: StatusCode(code),
                reason,
            },
            version_ok,
        ));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version. RFC 4475 §3.1.2.9/§3.1.2.10 let a
    // receiver accept extra SPs; we do, and never write them back.
    let parts: Vec<(usize, usize)> = line
        .split(|b| *b == b' ')
        .filter(|p| !p.is_empty())
        .map(|p| (p.as_ptr() as usize - line.as_ptr() as usize, p.len()))
        .collect();
    let (Some(&m), Some(&v)) = (parts.first(), parts.last()) else {
        return Err(ParseErrorKind::StartLine.into());
    };
    if parts.len() < 3 {
        return Err(ParseErrorKind::StartLine.into());
    }
    let method = buf.slice(s + m.0..s + m.0 + m.1);
    if !method.iter().all(|b| crate::header::lex::is_token_byte(*b)) {
        return Err(ParseErrorKind::Method.into());
    }
    let version = line.get(v.0..v.0 + v.1).unwrap_or_default();
    let version_ok = is_version(version);
    if !version_ok
        && !version
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
    {
        return Err(ParseErrorKind::StartLine.into());
    }
    let uri = if parts.len() > 3 {
        // RFC 4475 §3.1.2.8: white space inside the Request-URI.
        Err(ParseErrorKind::RequestUri(UriError::Char))
    } else {
        let text = parts
            .get(1)
            .and_then(|u| line.get(u.0..u.0 + u.1))
            .unwrap_or_default();
        std::str::from_utf8(text)
            .map_err(|_| ParseErrorKind::RequestUri(UriError::Char))
            .and_then(|t| Uri::parse(t).map_err(ParseErrorKind::RequestUri))
            .and_then(|uri| match uri.headers() {
                // RFC 4475 §3.1.2.11: URI headers make no sense in a Request-URI; reject them.
                Some(_) => Err(ParseErrorKind::RequestUriHeaders),
                None => Ok(uri),
            })
    };
    Ok((
        StartLine::Request {
            method: Method::from_bytes(method),
            uri,
        },
        version_ok,
    ))
}

/// One header: `name HCOLON value`, with continuation lines joined by one space.
fn header_line(
    buf: &Bytes,
    (s, e): (usize, usize),
    continuations: &[(usize, usize)],
) -> Result<(HeaderName, Bytes), ParseError> {
    let data: &[u8] = buf;
    let line = data.get(s..e).ok_or(ParseErrorKind::HeaderLine)?;
    if line.contains(&b'\r') {
        return Err(ParseErrorKind::HeaderLine.into());
    }
    let colon = line
        .iter()
        .position(|b| *b == b':')
        .ok_or(ParseErrorKind::HeaderLine)?;
    let (ns, ne) = trim(data, (s, s + colon));
    // RFC 3261 §7.3.1: the name is a token (white space only before the colon).
    if ns != s
        || ne == ns
        || !data
            .get(ns..ne)
            .unwrap_or_default()
            .iter()
            .all(|b| crate::header::lex::is_token_byte(*b))
    {
        return Err(ParseErrorKind::HeaderLine.into());
    }
    let name = HeaderName::from_bytes(buf.slice(ns..ne));
    let first = trim(data, (s + colon + 1, e));
    if continuations.is_empty() {
        return Ok((name, buf.slice(first.0..first.1)));
    }
    // RFC 3261 §7.3.1: folding is replaced by a single SP.
    let mut value = BytesMut::with_capacity(e - s + 64);
    for &(cs, ce) in std::iter::once(&first).chain(continuations) {
        let part = data.get(cs..ce).ok_or(ParseErrorKind::HeaderLine)?;
        if part.contains(&b'\r') {
            return Err(ParseErrorKind::HeaderLine.into());
        }
        let part = part.trim_ascii();
        if part.is_empty() {
            continue;
        }
        if !value.is_empty() {
            value.extend_from_slice(b" ");
        }
        value.extend_from_slice(part);
    }
    Ok((name, value.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::HeaderError;

    const REGISTER: &[u8] = b"REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: Bob <sip:bob@example.com>;tag=456248\r\n\
Call-ID: 843817637684230@998sdasdh09\r\n\
CSeq: 1826 REGISTER\r\n\
Contact: <sip:bob@192.0.2.4>\r\n\
Expires: 7200\r\n\
Content-Length: 0\r\n\r\n";

    fn req(bytes: &[u8]) -> Request {
        match parse_message(Bytes::copy_from_slice(bytes)).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!("expected a request"),
        }
    }

    fn err(bytes: &[u8]) -> ParseError {
        parse_message(Bytes::copy_from_slice(bytes)).unwrap_err()
    }

    #[test]
    fn parses_a_register() {
        let r = req(REGISTER);
        assert_eq!(r.method, Method::REGISTER);
        assert_eq!(r.uri.to_string(), "sip:example.com");
        assert_eq!(r.headers.len(), 9);
        assert_eq!(r.headers.call_id(), Some("843817637684230@998sdasdh09"));
        assert_eq!(r.headers.top_via().unwrap().rport(), Some(None));
        assert_eq!(r.headers.expires(), Some(7200));
        assert!(r.body.is_empty());
    }

    #[test]
    fn skips_leading_crlf_and_keeps_unknown_headers() {
        let mut msg = b"\r\n\r\n".to_vec();
        msg.extend_from_slice(REGISTER);
        let text = String::from_utf8(msg)
            .unwrap()
            .replace("Expires: 7200", "X-Odd :  a,,b ;; c ");
        let r = req(text.as_bytes());
        let h = r
            .headers
            .iter()
            .find(|h| h.name.as_str() == "X-Odd")
            .unwrap();
        assert_eq!(&h.value[..], b"a,,b ;; c");
    }

    #[test]
    fn folding_is_joined_with_one_space() {
        let text = String::from_utf8(REGISTER.to_vec())
            .unwrap()
            .replace("Subject", "")
            .replace("Expires: 7200\r\n", "Subject: one\r\n   two\r\n\tthree\r\n");
        let r = req(text.as_bytes());
        assert_eq!(
            r.headers.get_str(&HeaderName::SUBJECT),
            Some("one two three")
        );
    }

    #[test]
    fn content_length_rules() {
        let with_body = |cl: &str, body: &str| {
            let text = String::from_utf8(REGISTER.to_vec())
                .unwrap()
                .replace("Content-Length: 0\r\n\r\n", "");
            format!("{text}Content-Length: {cl}\r\n\r\n{body}")
        };
        assert_eq!(&req(with_body("3", "abcdef").as_bytes()).body[..], b"abc");
        let e = err(with_body("9", "abc").as_bytes());
        assert_eq!(e.kind(), &ParseErrorKind::BodyTooShort);
        let resp = e.bad_request_response().unwrap();
        assert_eq!(resp.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            &resp.reason[..],
            b"Bad Request (Content-Length larger than body)"
        );
        assert_eq!(
            err(with_body("-1", "").as_bytes()).kind(),
            &ParseErrorKind::ContentLength
        );
        let no_cl = String::from_utf8(REGISTER.to_vec())
            .unwrap()
            .replace("Content-Length: 0\r\n", "")
            + "xyz";
        assert_eq!(&req(no_cl.as_bytes()).body[..], b"xyz");
    }

    #[test]
    fn version_and_mandatory_headers() {
        let v = String::from_utf8(REGISTER.to_vec())
            .unwrap()
            .replacen("SIP/2.0", "SIP/3.0", 1);
        let e = err(v.as_bytes());
        assert_eq!(e.status(), StatusCode::VERSION_NOT_SUPPORTED);
        assert_eq!(
            e.bad_request_response().unwrap().status,
            StatusCode::VERSION_NOT_SUPPORTED
        );
        let no_to = String::from_utf8(REGISTER.to_vec())
            .unwrap()
            .replace("To: Bob <sip:bob@example.com>\r\n", "");
        let e = err(no_to.as_bytes());
        assert_eq!(
            e.kind(),
            &ParseErrorKind::Header(HeaderError::Missing("To"))
        );
        // Still answered (RFC 4475 §3.3.1), without the To it lacks.
        let answer = e.bad_request_response().unwrap();
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert!(!answer.headers.contains(&crate::message::HeaderName::TO));
        assert!(
            answer
                .headers
                .contains(&crate::message::HeaderName::CALL_ID)
        );
        let mismatch = String::from_utf8(REGISTER.to_vec())
            .unwrap()
            .replace("1826 REGISTER", "1826 INVITE");
        let e = err(mismatch.as_bytes());
        assert_eq!(e.kind(), &ParseErrorKind::CSeqMethod);
        let resp = e.bad_request_response().unwrap();
        assert_eq!(resp.headers.cseq().unwrap().method, Method::INVITE);
        assert!(resp.headers.to().unwrap().tag().is_some());
    }

    #[test]
    fn responses() {
        let m = parse_message(Bytes::from_static(
            b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n\
To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap();
        let Message::Response(r) = m else {
            panic!("expected a response")
        };
        assert_eq!(r.status, StatusCode::RINGING);
        assert_eq!(&r.reason[..], b"Ringing");
        for bad in [
            &b"SIP/2.0 99 x\r\n\r\n"[..],
            b"SIP/2.0 700 x\r\n\r\n",
            b"SIP/2.0 2000 x\r\n\r\n",
            b"SIP/2.0\r\n\r\n",
        ] {
            assert!(parse_message(Bytes::copy_from_slice(bad)).is_err());
        }
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in [
            &b""[..],
            b"\r\n",
            b"INVITE",
            b"INVITE sip:a@b SIP/2.0",
            b"INVITE sip:a@b HTTP/1.1\r\n\r\n",
            b"\xff\xfe sip:a@b SIP/2.0\r\n\r\n",
        ] {
            assert!(
                parse_message(Bytes::copy_from_slice(bad)).is_err(),
                "{bad:?}"
            );
        }
    }
}
