//! The checks a parsed message must pass (RFC 3261 §8.1.1, §8.2.2), and what an error
//! response copies.

use super::ParseErrorKind;
use crate::header::{HeaderError, split_commas};
use crate::message::{HeaderName, Headers};
use crate::method::Method;

/// RFC 3261 §8.1.1 / §8.2.2: the headers every message needs, checked with their typed views.
pub(super) fn check_headers(
    headers: &Headers,
    request_method: Option<&Method>,
) -> Result<(), ParseErrorKind> {
    let vias = headers.vias().map_err(ParseErrorKind::Header)?;
    if vias.is_empty() {
        return Err(ParseErrorKind::Header(HeaderError::Missing("Via")));
    }
    headers.from().map_err(ParseErrorKind::Header)?;
    headers.to().map_err(ParseErrorKind::Header)?;
    let mut ids = headers.get_all(&HeaderName::CALL_ID);
    match (ids.next(), ids.next()) {
        (None, _) => return Err(ParseErrorKind::Header(HeaderError::Missing("Call-ID"))),
        (Some(_), Some(_)) => return Err(ParseErrorKind::Header(HeaderError::Multiple("Call-ID"))),
        // RFC 3261 §25.1: callid = word ["@" word], so no white space and no comma.
        (Some(id), None) => {
            if id.is_empty()
                || id
                    .iter()
                    .any(|b| b.is_ascii_whitespace() || *b == b',' || b.is_ascii_control())
            {
                return Err(ParseErrorKind::CallId);
            }
        }
    }
    let cseq = headers.cseq().map_err(ParseErrorKind::Header)?;
    // RFC 3261 §8.2.2 / RFC 4475 §3.1.2.17: the CSeq method must match the request's.
    if request_method.is_some_and(|m| *m != cseq.method) {
        return Err(ParseErrorKind::CSeqMethod);
    }
    let mut mf = headers.get_all(&HeaderName::MAX_FORWARDS);
    match (mf.next(), mf.next()) {
        (Some(_), Some(_)) => {
            return Err(ParseErrorKind::Header(HeaderError::Multiple(
                "Max-Forwards",
            )));
        }
        (Some(v), None) if v.is_empty() || !v.iter().all(u8::is_ascii_digit) => {
            return Err(ParseErrorKind::MaxForwards);
        }
        _ => {}
    }
    headers.contacts().map_err(ParseErrorKind::Header)?;
    Ok(())
}

/// The headers copied into an error response, when the request can be answered at all:
/// its top Via must parse, whatever its SIP version (the response is routed by it), and From,
/// To, Call-ID and CSeq must each appear once (they are copied as they are).
pub(super) fn reply_context(headers: &Headers) -> Option<Box<Headers>> {
    let top = headers.get_str(&HeaderName::VIA)?;
    crate::header::Via::parse_any_version(split_commas(top).ok()?.first()?).ok()?;
    // RFC 3261 §8.2.6.2 copies these into a response. A missing one is simply not copied (RFC
    // 4475 §3.3.1: a request without Call-ID, From and To is still best answered 400); a
    // repeated one makes the answer ambiguous, so there is none (§3.1.2.11).
    let at_most_once = |name: &HeaderName| headers.get_all(name).count() <= 1;
    let needed = [
        HeaderName::FROM,
        HeaderName::TO,
        HeaderName::CALL_ID,
        HeaderName::CSEQ,
    ];
    if !needed.iter().all(at_most_once) {
        return None;
    }
    let mut copy = Headers::with_capacity(8);
    for h in headers.iter() {
        if h.name == HeaderName::VIA || needed.contains(&h.name) {
            copy.push(h.name.clone(), h.value.clone());
        }
    }
    Some(Box::new(copy))
}
