//! Cutting a TCP/TLS byte stream into messages (RFC 3261 §18.3) and keep-alives
//! (RFC 5626 §3.5.1). Works with any split of the stream. Bytes that cannot begin a message
//! are refused as soon as they arrive ([`message_start`]), so a peer sending binary or NUL
//! bytes is not read up to the size limit.

use bytes::{Buf, Bytes, BytesMut};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// Exactly one message's bytes, for [`crate::parse::parse_message`].
    Message(Bytes),
    /// CRLFCRLF: an RFC 5626 §3.5.1 keep-alive ping; answer with CRLF.
    Ping,
    /// A lone CRLF: the pong to our ping. Reported once the byte after it has arrived (until
    /// then it may be the first half of a ping).
    Pong,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// RFC 3261 §18.3: Content-Length is mandatory on a stream; the connection must close.
    #[error("message without Content-Length on a stream")]
    MissingContentLength,
    #[error("invalid Content-Length")]
    InvalidContentLength,
    #[error("more than one Content-Length")]
    MultipleContentLength,
    #[error("message larger than the limit")]
    TooLarge,
    /// The stream does not begin with a request line or a status line ([`message_start`]).
    #[error("bytes that cannot start a SIP message")]
    NotSip,
}

/// What the first bytes of a stream (or of the next message on it) say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A method token and SP (a request line) or `SIP/2.0 ` (a status line).
    Plausible,
    /// Too few bytes to tell.
    NeedMore,
    /// No SIP message starts like this: binary, NUL bytes, a TLS handshake on a TCP port.
    NotSip,
}

/// Longer method names are not methods anyone sends (the longest registered is 9 bytes), so
/// a run of token characters this long without SP is refused before the size limit.
pub const MAX_METHOD_LEN: usize = 32;

const SIP_VERSION_SP: &[u8] = b"SIP/2.0 ";

/// Whether `bytes`, once leading CR and LF (keep-alives, RFC 5626 §3.5.1) are skipped, can be
/// the start of a SIP message: `Method SP` (RFC 3261 §25.1: `Method = token`) or `SIP/2.0 SP`
/// (§7.2; the version compares case-insensitively, §7.1).
pub fn message_start(bytes: &[u8]) -> Start {
    let skip = bytes
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    let rest = bytes.get(skip..).unwrap_or_default();
    if rest.is_empty() {
        return Start::NeedMore;
    }
    let n = rest.len().min(SIP_VERSION_SP.len());
    if rest
        .get(..n)
        .is_some_and(|head| head.eq_ignore_ascii_case(SIP_VERSION_SP.get(..n).unwrap_or_default()))
    {
        return if n == SIP_VERSION_SP.len() {
            Start::Plausible
        } else {
            Start::NeedMore
        };
    }
    let token = rest
        .iter()
        .take(MAX_METHOD_LEN + 1)
        .take_while(|b| is_token_char(**b))
        .count();
    match rest.get(token) {
        _ if token > MAX_METHOD_LEN => Start::NotSip,
        None => Start::NeedMore,
        Some(b' ') if token > 0 => Start::Plausible,
        Some(_) => Start::NotSip,
    }
}

/// RFC 3261 §25.1: `token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" /
/// "'" / "~")`.
fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Takes the next item off the front of `buf`. `Ok(None)`: more bytes are needed.
/// Any error means the stream cannot be resynchronised: close the connection.
pub fn next_item(
    buf: &mut BytesMut,
    max_message: usize,
) -> Result<Option<StreamItem>, FramingError> {
    match buf.as_ref() {
        [] | [b'\r'] | [b'\r', b'\n'] | [b'\r', b'\n', b'\r'] => return Ok(None),
        [b'\r', b'\n', b'\r', b'\n', ..] => {
            buf.advance(4);
            return Ok(Some(StreamItem::Ping));
        }
        [b'\r', b'\n', ..] => {
            buf.advance(2);
            return Ok(Some(StreamItem::Pong));
        }
        _ => {}
    }
    if message_start(buf) == Start::NotSip {
        return Err(FramingError::NotSip);
    }
    let Some(header_end) = find_header_end(buf) else {
        return if buf.len() > max_message {
            Err(FramingError::TooLarge)
        } else {
            Ok(None)
        };
    };
    if header_end > max_message {
        return Err(FramingError::TooLarge);
    }
    let length = content_length(buf.get(..header_end).unwrap_or_default())?;
    let total = header_end
        .checked_add(length)
        .ok_or(FramingError::TooLarge)?;
    if total > max_message {
        return Err(FramingError::TooLarge);
    }
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some(StreamItem::Message(buf.split_to(total).freeze())))
}

/// The offset just past the empty line that ends the header section (CRLFCRLF, or LFLF).
fn find_header_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(off) = buf.get(i..)?.iter().position(|b| *b == b'\n') {
        let lf = i + off;
        match buf.get(lf + 1..) {
            Some([b'\n', ..]) => return Some(lf + 2),
            Some([b'\r', b'\n', ..]) => return Some(lf + 3),
            _ => i = lf + 1,
        }
    }
    None
}

/// The Content-Length of a header section (compact form `l` included; folded lines joined).
fn content_length(section: &[u8]) -> Result<usize, FramingError> {
    let mut found: Option<Vec<u8>> = None;
    let mut current: Option<Vec<u8>> = None;
    // The start line cannot be a Content-Length.
    let lines = section.split(|b| *b == b'\n').skip(1);
    let finish = |current: &mut Option<Vec<u8>>, found: &mut Option<Vec<u8>>| match (
        current.take(),
        found.is_some(),
    ) {
        (Some(_), true) => Err(FramingError::MultipleContentLength),
        (Some(v), false) => {
            *found = Some(v);
            Ok(())
        }
        (None, _) => Ok(()),
    };
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if let Some(v) = current.as_mut() {
                v.push(b' ');
                v.extend_from_slice(line);
            }
            continue;
        }
        finish(&mut current, &mut found)?;
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = line.get(..colon).unwrap_or_default().trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            current = Some(line.get(colon + 1..).unwrap_or_default().to_vec());
        }
    }
    finish(&mut current, &mut found)?;
    let value = found.ok_or(FramingError::MissingContentLength)?;
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(FramingError::InvalidContentLength);
    }
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or(FramingError::InvalidContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] =
        b"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl:\r\n 5\r\n\r\nhello";

    fn drain(stream: &[u8], chunk: usize) -> Result<Vec<StreamItem>, FramingError> {
        let mut buf = BytesMut::new();
        let mut items = Vec::new();
        for piece in stream.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(item) = next_item(&mut buf, 4096)? {
                items.push(item);
            }
        }
        assert!(buf.is_empty() || buf.as_ref() == b"\r\n");
        Ok(items)
    }

    #[test]
    fn any_split_gives_the_same_items() {
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(b"\r\nX");
        stream.pop();
        stream.extend_from_slice(MSG);
        stream.extend_from_slice(b"\r\n\r\n");
        let expected = vec![
            StreamItem::Ping,
            StreamItem::Message(Bytes::from_static(MSG)),
            StreamItem::Pong,
            StreamItem::Message(Bytes::from_static(MSG)),
            StreamItem::Ping,
        ];
        for chunk in 1..stream.len() {
            assert_eq!(drain(&stream, chunk).unwrap(), expected, "chunk {chunk}");
        }
    }

    #[test]
    fn content_length_is_mandatory_and_single() {
        let no_cl = b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n";
        assert_eq!(drain(no_cl, 3), Err(FramingError::MissingContentLength));
        let two = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1\r\nl: 1\r\n\r\nx";
        assert_eq!(drain(two, 100), Err(FramingError::MultipleContentLength));
        let neg = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -999\r\n\r\n";
        assert_eq!(drain(neg, 100), Err(FramingError::InvalidContentLength));
    }

    #[test]
    fn what_can_start_a_message() {
        for ok in [
            &b"INVITE sip:a@b SIP/2.0\r\n"[..],
            b"OPTIONS ",
            b"X-CUSTOM.METHOD~ sip:a@b",
            b"SIP/2.0 200 OK\r\n",
            b"sip/2.0 180 Ringing",
            b"\r\n\r\nREGISTER ",
            b"\nBYE ",
        ] {
            assert_eq!(message_start(ok), Start::Plausible, "{ok:?}");
        }
        for more in [&b""[..], b"\r\n", b"INV", b"S", b"SIP/2.", b"\r\nREGISTER"] {
            assert_eq!(message_start(more), Start::NeedMore, "{more:?}");
        }
        let long = [b'A'; MAX_METHOD_LEN + 1];
        for garbage in [
            &b"\0"[..],
            &[0u8; 2048],
            b"\x16\x03\x01\x02\x00\x01", // a TLS ClientHello on the TCP port
            b" INVITE",
            b"INVITE\tsip:a@b",
            b"SIP/3.0 200 OK",
            b"\r\n\0",
            b"\xff\xfe",
            &long,
        ] {
            assert_eq!(message_start(garbage), Start::NotSip, "{garbage:?}");
        }
    }

    #[test]
    fn garbage_is_refused_on_its_first_byte_even_after_a_message() {
        let mut buf = BytesMut::from(&b"\0"[..]);
        assert_eq!(next_item(&mut buf, 4096), Err(FramingError::NotSip));
        let mut buf = BytesMut::from(MSG);
        buf.extend_from_slice(b"\r\n\r\n\x80abc");
        assert!(matches!(
            next_item(&mut buf, 4096),
            Ok(Some(StreamItem::Message(_)))
        ));
        assert_eq!(next_item(&mut buf, 4096), Ok(Some(StreamItem::Ping)));
        assert_eq!(next_item(&mut buf, 4096), Err(FramingError::NotSip));
        // A partial request line waits for more.
        let mut buf = BytesMut::from(&b"REGIS"[..]);
        assert_eq!(next_item(&mut buf, 4096), Ok(None));
    }

    #[test]
    fn limits() {
        let mut buf = BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nX: "[..]);
        buf.extend_from_slice(&[b'a'; 100]);
        assert_eq!(next_item(&mut buf, 64), Err(FramingError::TooLarge));
        let mut buf = BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nl: 1000\r\n\r\n"[..]);
        assert_eq!(next_item(&mut buf, 512), Err(FramingError::TooLarge));
        let mut buf =
            BytesMut::from(&b"OPTIONS sip:a@b SIP/2.0\r\nl: 99999999999999999999\r\n\r\n"[..]);
        assert_eq!(
            next_item(&mut buf, 512),
            Err(FramingError::InvalidContentLength)
        );
    }
}
