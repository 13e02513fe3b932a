//! Requests, responses and the header list, as the parser produces them and the serializer
//! writes them. Header names and values are slices of the received datagram ([`Bytes`]), so
//! an unknown header goes back out byte for byte.

use crate::method::Method;
use crate::status::StatusCode;
use crate::uri::Uri;
use bytes::Bytes;
use std::fmt;

/// A header name as received (its spelling and case kept), compared the way RFC 3261 §7.3.1
/// says: case-insensitively, with each compact form equal to its long form.
#[derive(Clone)]
pub struct HeaderName(Bytes);

macro_rules! header_names {
    ($($konst:ident = $text:literal),* $(,)?) => {
        impl HeaderName {
            $(pub const $konst: HeaderName = HeaderName(Bytes::from_static($text.as_bytes()));)*
        }
    };
}

header_names! {
    ACCEPT = "Accept",
    ALLOW = "Allow",
    ALLOW_EVENTS = "Allow-Events",
    AUTHORIZATION = "Authorization",
    AUTHENTICATION_INFO = "Authentication-Info",
    CALL_ID = "Call-ID",
    CONTACT = "Contact",
    CONTENT_ENCODING = "Content-Encoding",
    CONTENT_LENGTH = "Content-Length",
    CONTENT_TYPE = "Content-Type",
    CSEQ = "CSeq",
    DATE = "Date",
    EVENT = "Event",
    EXPIRES = "Expires",
    FROM = "From",
    MAX_FORWARDS = "Max-Forwards",
    MIN_EXPIRES = "Min-Expires",
    PROXY_AUTHENTICATE = "Proxy-Authenticate",
    PROXY_AUTHORIZATION = "Proxy-Authorization",
    PROXY_REQUIRE = "Proxy-Require",
    REASON = "Reason",
    RECORD_ROUTE = "Record-Route",
    REFER_TO = "Refer-To",
    REFERRED_BY = "Referred-By",
    REQUIRE = "Require",
    RETRY_AFTER = "Retry-After",
    ROUTE = "Route",
    SERVER = "Server",
    SESSION_EXPIRES = "Session-Expires",
    SUBJECT = "Subject",
    SUPPORTED = "Supported",
    TIMESTAMP = "Timestamp",
    TO = "To",
    UNSUPPORTED = "Unsupported",
    USER_AGENT = "User-Agent",
    VIA = "Via",
    WARNING = "Warning",
    WWW_AUTHENTICATE = "WWW-Authenticate",
}

/// RFC 3261 §7.3.3 and later RFCs: the one-letter forms and the names they stand for.
const COMPACT_FORMS: &[(u8, &str)] = &[
    (b'a', "accept-contact"),
    (b'b', "referred-by"),
    (b'c', "content-type"),
    (b'd', "request-disposition"),
    (b'e', "content-encoding"),
    (b'f', "from"),
    (b'i', "call-id"),
    (b'j', "reject-contact"),
    (b'k', "supported"),
    (b'l', "content-length"),
    (b'm', "contact"),
    (b'n', "identity-info"),
    (b'o', "event"),
    (b'r', "refer-to"),
    (b's', "subject"),
    (b't', "to"),
    (b'u', "allow-events"),
    (b'v', "via"),
    (b'x', "session-expires"),
    (b'y', "identity"),
];

impl HeaderName {
    /// Wraps a name as read off the wire (the parser checks it is a `token`).
    pub fn from_bytes(name: Bytes) -> HeaderName {
        HeaderName(name)
    }

    /// A name known at compile time, for headers the PBX adds itself.
    pub const fn from_static(name: &'static str) -> HeaderName {
        HeaderName(Bytes::from_static(name.as_bytes()))
    }

    /// The name as received (or as given).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The long form, as spelled in this name, with a compact form expanded (lower case).
    fn long_form(&self) -> &[u8] {
        if let [letter] = self.0.as_ref() {
            let letter = letter.to_ascii_lowercase();
            if let Some((_, long)) = COMPACT_FORMS.iter().find(|(c, _)| *c == letter) {
                return long.as_bytes();
            }
        }
        &self.0
    }
}

impl PartialEq for HeaderName {
    fn eq(&self, other: &HeaderName) -> bool {
        self.long_form().eq_ignore_ascii_case(other.long_form())
    }
}

impl Eq for HeaderName {}

impl fmt::Debug for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line. `value` has its folding (RFC 3261 §7.3.1) already replaced by a single
/// space, and no leading or trailing white space.
#[derive(Clone, Debug)]
pub struct Header {
    pub name: HeaderName,
    pub value: Bytes,
}

impl Header {
    /// The value as text, `None` when it is not UTF-8 (RFC 3261 allows UTF-8 in values).
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

/// The headers of a message, in the order received. Order matters between headers of the same
/// name (Via, Route, Record-Route); the list keeps every line as it came.
#[derive(Clone, Debug, Default)]
pub struct Headers(Vec<Header>);

impl Headers {
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    pub fn with_capacity(capacity: usize) -> Headers {
        Headers(Vec::with_capacity(capacity))
    }

    /// The value of the first line with this name.
    pub fn get(&self, name: &HeaderName) -> Option<&Bytes> {
        self.0.iter().find(|h| h.name == *name).map(|h| &h.value)
    }

    /// The value of the first line with this name, as text.
    pub fn get_str(&self, name: &HeaderName) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every line with this name, in order. A line may itself hold several comma-separated
    /// values; the typed accessors in [`crate::header`] split them.
    pub fn get_all<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a Bytes> + 'a {
        // Cloning a name is a reference-count bump (or nothing, for the constants).
        let name = name.clone();
        self.0
            .iter()
            .filter(move |h| h.name == name)
            .map(|h| &h.value)
    }

    /// The first line with this name, to change its value in place.
    pub fn first_mut(&mut self, name: &HeaderName) -> Option<&mut Header> {
        self.0.iter_mut().find(|h| h.name == *name)
    }

    pub fn contains(&self, name: &HeaderName) -> bool {
        self.0.iter().any(|h| h.name == *name)
    }

    /// Appends a line.
    pub fn push(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.0.push(Header {
            name,
            value: value.into(),
        });
    }

    /// Inserts a line before every other (a new top Via, a Record-Route).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        self.0.insert(
            0,
            Header {
                name,
                value: value.into(),
            },
        );
    }

    /// Removes every line with this name; returns how many there were.
    pub fn remove_all(&mut self, name: &HeaderName) -> usize {
        let before = self.0.len();
        self.0.retain(|h| h.name != *name);
        before - self.0.len()
    }

    /// Removes the first line with this name and returns its value.
    pub fn remove_first(&mut self, name: &HeaderName) -> Option<Bytes> {
        let at = self.0.iter().position(|h| h.name == *name)?;
        Some(self.0.remove(at).value)
    }

    /// Replaces every line with this name by one line, at the place of the first (or at the end).
    pub fn set(&mut self, name: HeaderName, value: impl Into<Bytes>) {
        let value = value.into();
        match self.0.iter().position(|h| h.name == name) {
            Some(at) => {
                self.0[at].value = value;
                let mut index = 0;
                self.0.retain(|h| {
                    let keep = index <= at || h.name != name;
                    index += 1;
                    keep
                });
            }
            None => self.0.push(Header { name, value }),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A SIP request (RFC 3261 §7.1).
#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Bytes,
}

/// A SIP response (RFC 3261 §7.2).
#[derive(Clone, Debug)]
pub struct Response {
    pub status: StatusCode,
    /// The reason phrase as received, or the canonical one for responses the PBX makes.
    pub reason: Bytes,
    pub headers: Headers,
    pub body: Bytes,
}

/// Either kind of message.
#[derive(Clone, Debug)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Message {
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    pub fn headers_mut(&mut self) -> &mut Headers {
        match self {
            Message::Request(r) => &mut r.headers,
            Message::Response(r) => &mut r.headers,
        }
    }

    pub fn body(&self) -> &Bytes {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_long_forms_are_equal_ignoring_case() {
        let v = HeaderName::from_bytes(Bytes::from_static(b"v"));
        assert_eq!(v, HeaderName::VIA);
        let upper = HeaderName::from_bytes(Bytes::from_static(b"CALL-id"));
        assert_eq!(upper, HeaderName::CALL_ID);
        let i = HeaderName::from_bytes(Bytes::from_static(b"I"));
        assert_eq!(i, HeaderName::CALL_ID);
        assert_ne!(i, HeaderName::VIA);
        let unknown = HeaderName::from_bytes(Bytes::from_static(b"q"));
        assert_ne!(unknown, HeaderName::VIA);
    }

    #[test]
    fn set_replaces_all_lines_in_place_of_the_first() {
        let mut h = Headers::new();
        h.push(HeaderName::VIA, "a");
        h.push(HeaderName::TO, "t");
        h.push(HeaderName::from_static("v"), "b");
        h.set(HeaderName::VIA, "c");
        let values: Vec<_> = h.iter().map(|h| h.value.clone()).collect();
        assert_eq!(values, vec![Bytes::from("c"), Bytes::from("t")]);
    }
}
