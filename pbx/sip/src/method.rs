//! SIP methods: an open registry (RFC 3261 §7.1, §27.4), so unknown methods round-trip.

use bytes::Bytes;
use std::fmt;

/// A request method. Methods are case-sensitive (RFC 3261 §7.1).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Method(Bytes);

impl Method {
    pub const INVITE: Method = Method(Bytes::from_static(b"INVITE"));
    pub const ACK: Method = Method(Bytes::from_static(b"ACK"));
    pub const BYE: Method = Method(Bytes::from_static(b"BYE"));
    pub const CANCEL: Method = Method(Bytes::from_static(b"CANCEL"));
    pub const OPTIONS: Method = Method(Bytes::from_static(b"OPTIONS"));
    pub const REGISTER: Method = Method(Bytes::from_static(b"REGISTER"));
    pub const INFO: Method = Method(Bytes::from_static(b"INFO"));
    pub const UPDATE: Method = Method(Bytes::from_static(b"UPDATE"));
    pub const PRACK: Method = Method(Bytes::from_static(b"PRACK"));
    pub const SUBSCRIBE: Method = Method(Bytes::from_static(b"SUBSCRIBE"));
    pub const NOTIFY: Method = Method(Bytes::from_static(b"NOTIFY"));
    pub const REFER: Method = Method(Bytes::from_static(b"REFER"));
    pub const MESSAGE: Method = Method(Bytes::from_static(b"MESSAGE"));
    pub const PUBLISH: Method = Method(Bytes::from_static(b"PUBLISH"));

    /// Wraps a method token as read off the wire (the parser checks it is a `token`).
    pub fn from_bytes(token: Bytes) -> Method {
        Method(token)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The method as text; the parser only admits `token` characters, which are ASCII.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
