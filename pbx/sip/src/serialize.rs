//! Writing messages. Headers go out as stored (name as stored, `: `, value), except
//! Content-Length, which is always written last with the real body length (RFC 3261 §18.3:
//! mandatory on streams, harmless on datagrams).

use crate::message::{HeaderName, Headers, Message, Request, Response};
use bytes::{BufMut, Bytes, BytesMut};

/// Writes `text`, turning any CR or LF into a space so a value can never start a new line.
fn put_line_safe(buf: &mut BytesMut, text: &[u8]) {
    if text.iter().any(|b| *b == b'\r' || *b == b'\n') {
        buf.extend(
            text.iter()
                .map(|b| if *b == b'\r' || *b == b'\n' { b' ' } else { *b }),
        );
    } else {
        buf.put_slice(text);
    }
}

fn write_headers_and_body(headers: &Headers, body: &Bytes, buf: &mut BytesMut) {
    for h in headers.iter() {
        if h.name == HeaderName::CONTENT_LENGTH {
            continue;
        }
        put_line_safe(buf, h.name.as_bytes());
        buf.put_slice(b": ");
        put_line_safe(buf, &h.value);
        buf.put_slice(b"\r\n");
    }
    buf.put_slice(b"Content-Length: ");
    buf.put_slice(body.len().to_string().as_bytes());
    buf.put_slice(b"\r\n\r\n");
    buf.put_slice(body);
}

fn size_hint(headers: &Headers, body: &Bytes) -> usize {
    headers
        .iter()
        .map(|h| h.name.as_bytes().len() + h.value.len() + 4)
        .sum::<usize>()
        + body.len()
        + 96
}

impl Request {
    pub fn write_to(&self, buf: &mut BytesMut) {
        buf.reserve(size_hint(&self.headers, &self.body));
        put_line_safe(buf, self.method.as_bytes());
        buf.put_u8(b' ');
        put_line_safe(buf, self.uri.as_str().as_bytes());
        buf.put_slice(b" SIP/2.0\r\n");
        write_headers_and_body(&self.headers, &self.body, buf);
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::new();
        self.write_to(&mut buf);
        buf.freeze()
    }
}

impl Response {
    pub fn write_to(&self, buf: &mut BytesMut) {
        buf.reserve(size_hint(&self.headers, &self.body));
        buf.put_slice(b"SIP/2.0 ");
        buf.put_slice(self.status.code().to_string().as_bytes());
        buf.put_u8(b' ');
        put_line_safe(buf, &self.reason);
        buf.put_slice(b"\r\n");
        write_headers_and_body(&self.headers, &self.body, buf);
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::new();
        self.write_to(&mut buf);
        buf.freeze()
    }
}

impl Message {
    pub fn write_to(&self, buf: &mut BytesMut) {
        match self {
            Message::Request(r) => r.write_to(buf),
            Message::Response(r) => r.write_to(buf),
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_message;
    use crate::status::StatusCode;

    #[test]
    fn writes_headers_as_stored_and_content_length_last() {
        let input = b"OPTIONS  sip:a@b.example  SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nl: 99\r\n\
TO :\r\n <sip:a@b.example>\r\nf: <sip:c@d>;tag=1\r\ni: x\r\nCSeq: 1 OPTIONS\r\nX-Weird: a,,b\r\n\r\n";
        let msg = parse_message(Bytes::from_static(b"")).err();
        assert!(msg.is_some());
        let mut text = input.to_vec();
        text.extend_from_slice(&[b'z'; 99]);
        let msg = parse_message(Bytes::from(text)).unwrap();
        let out = msg.to_bytes();
        let expected = format!(
            "OPTIONS sip:a@b.example SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTO: <sip:a@b.example>\r\n\
f: <sip:c@d>;tag=1\r\ni: x\r\nCSeq: 1 OPTIONS\r\nX-Weird: a,,b\r\nContent-Length: 99\r\n\r\n{}",
            "z".repeat(99)
        );
        assert_eq!(String::from_utf8_lossy(&out), expected);
        let again = parse_message(out.clone()).unwrap().to_bytes();
        assert_eq!(again, out);
    }

    #[test]
    fn values_cannot_inject_lines() {
        let mut r = Response::new(StatusCode::OK).with_reason("OK\r\nX: y");
        r.headers.push(HeaderName::SUBJECT, "a\r\nVia: evil");
        let out = r.to_bytes();
        assert_eq!(
            &out[..],
            b"SIP/2.0 200 OK  X: y\r\nSubject: a  Via: evil\r\nContent-Length: 0\r\n\r\n"
        );
    }
}
