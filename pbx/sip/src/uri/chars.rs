//! Character classes of RFC 3261 §25.1 URIs, and %-escaping.

use super::error::UriError;
use crate::header::lex::byte_class;

/// RFC 3261 §25.1: `unreserved` / `reserved` / `%`, plus `[` `]` of IPv6 references and the
/// `#` of tel numbers.
pub(super) static URI_BYTES: [bool; 256] = byte_class(b"-_.!~*'()%;/?:@&=+$,[]#");
/// `unreserved` plus RFC 3261 §25.1 `user-unreserved`.
pub(super) static USER: [bool; 256] = byte_class(b"-_.!~*'()&=+$,;?/");
pub(super) static PASSWORD: [bool; 256] = byte_class(b"-_.!~*'()&=+$,");
/// `unreserved` plus `param-unreserved`.
pub(super) static PARAM: [bool; 256] = byte_class(b"-_.!~*'()[]/:&+$");
/// `unreserved` plus `hnv-unreserved`, and the `=` and `&` that separate headers.
pub(super) static HEADER: [bool; 256] = byte_class(b"-_.!~*'()[]/?:+$=&");

/// Checks that `s` has only bytes of `class` and `%HH` escapes.
pub(super) fn check_chars(s: &str, class: &[bool; 256], err: UriError) -> Result<(), UriError> {
    let b = s.as_bytes();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return Err(UriError::Escape);
            }
            i += 3;
            continue;
        }
        if !class[usize::from(c)] {
            return Err(err);
        }
        i += 1;
    }
    Ok(())
}

/// Replaces `%HH` escapes by the byte they encode (RFC 3261 §19.1.4 compares unescaped).
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hi = b.get(i + 1).and_then(|h| (*h as char).to_digit(16));
            let lo = b.get(i + 2).and_then(|h| (*h as char).to_digit(16));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Escapes every byte outside `unreserved` and `extra`.
pub(super) fn escape(s: &str, class: &[bool; 256]) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if class[usize::from(b)] && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
