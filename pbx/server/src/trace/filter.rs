//! Which messages the SIP trace writes out: those from or to a traced source network, and
//! those about a traced extension (the user part of the Request-URI, From or To; for a
//! REGISTER the To is the address of record, RFC 3261 §10.2).

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use bytes::Bytes;
use ipnet::IpNet;
use pbx_sip::message::Message;

/// One thing to trace.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    /// Messages whose remote address is in this network.
    Source(IpNet),
    /// Messages whose Request-URI, From or To names this user.
    Extension(String),
}

impl Target {
    /// The kind as stored and shown: `source` or `extension`.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Source(_) => "source",
            Target::Extension(_) => "extension",
        }
    }

    /// The value as stored and shown: a CIDR or an extension number.
    pub fn value(&self) -> String {
        match self {
            Target::Source(net) => net.to_string(),
            Target::Extension(user) => user.clone(),
        }
    }

    /// Reads back a stored `(kind, value)`.
    pub fn from_parts(kind: &str, value: &str) -> Result<Target, String> {
        match kind {
            "source" => parse_source(value).map(Target::Source),
            "extension" => parse_extension(value).map(Target::Extension),
            other => Err(format!("unknown trace kind `{other}`")),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.value())
    }
}

/// A CIDR or a single address, as `[security] allow` takes them.
pub fn parse_source(text: &str) -> Result<IpNet, String> {
    crate::security::acl::parse_network(text.trim())
}

/// A SIP user part as extensions and dialled numbers are written: not empty, at most 64
/// characters, none of white space, `@ : ; < > " ,`.
pub fn parse_extension(text: &str) -> Result<String, String> {
    let bad = |c: char| c.is_whitespace() || c.is_control() || "@:;<>\",".contains(c);
    if text.is_empty() || text.chars().count() > 64 || text.contains(bad) {
        return Err(format!(
            "bad extension `{text}`: expected the user part of a SIP address, such as 1001"
        ));
    }
    Ok(text.to_string())
}

/// The set of targets in force.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    sources: Vec<IpNet>,
    extensions: BTreeSet<String>,
}

impl Filters {
    pub fn new(targets: impl IntoIterator<Item = Target>) -> Filters {
        let mut filters = Filters::default();
        for target in targets {
            match target {
                Target::Source(net) => {
                    if !filters.sources.contains(&net) {
                        filters.sources.push(net);
                    }
                }
                Target::Extension(user) => {
                    filters.extensions.insert(user);
                }
            }
        }
        filters.sources.sort();
        filters
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty() && self.extensions.is_empty()
    }

    /// Whether a message exchanged with `remote` is traced. `message` is only read (and
    /// parsed) when an extension filter is set and no source filter matched.
    pub fn matches(&self, remote: IpAddr, message: &Bytes) -> bool {
        if self.sources.iter().any(|net| net.contains(&remote)) {
            return true;
        }
        if self.extensions.is_empty() {
            return false;
        }
        users(message)
            .iter()
            .any(|user| self.extensions.contains(user.as_str()))
    }

    /// Every target, sources first (for the log line that says what is traced).
    pub fn targets(&self) -> Vec<Target> {
        let sources = self.sources.iter().copied().map(Target::Source);
        let users = self.extensions.iter().cloned().map(Target::Extension);
        sources.chain(users).collect()
    }
}

/// The user parts of the Request-URI (requests), From and To; none when the message does not
/// parse (such a message is still traced by source).
pub fn users(message: &Bytes) -> Vec<String> {
    let Ok(parsed) = pbx_sip::parse::parse_message(message.clone()) else {
        return Vec::new();
    };
    let mut users = Vec::with_capacity(3);
    if let Message::Request(request) = &parsed
        && let Some(user) = request.uri.user()
    {
        users.push(user.to_string());
    }
    let headers = parsed.headers();
    for address in [headers.from(), headers.to()].into_iter().flatten() {
        if let Some(user) = address.uri.user() {
            users.push(user.to_string());
        }
    }
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|_| panic!("{text}"))
    }

    fn source(text: &str) -> Target {
        Target::Source(parse_source(text).unwrap_or_else(|e| panic!("{e}")))
    }

    fn message(text: &str) -> Bytes {
        Bytes::from(text.replace('\n', "\r\n"))
    }

    const REGISTER: &str = "REGISTER sip:pbx.test SIP/2.0\n\
        Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK77\n\
        From: <sip:1001@pbx.test>;tag=a\nTo: <sip:1001@pbx.test>\nCall-ID: c1\n\
        CSeq: 1 REGISTER\nContent-Length: 0\n\n";
    const INVITE: &str = "INVITE sip:2000@pbx.test SIP/2.0\n\
        Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK78\n\
        From: \"A\" <sip:1003@pbx.test>;tag=b\nt: sip:2000@pbx.test\ni: c2\n\
        CSeq: 1 INVITE\nContent-Length: 0\n\n";
    const RESPONSE: &str = "SIP/2.0 200 OK\n\
        Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK78\n\
        From: <sip:1003@pbx.test>;tag=b\nTo: <sip:+4930123@pbx.test;user=phone>;tag=x\n\
        Call-ID: c2\nCSeq: 1 INVITE\nContent-Length: 0\n\n";

    #[test]
    fn sources_match_by_network() {
        let f = Filters::new([source("127.0.0.0/30"), source("2001:db8::1")]);
        let m = message(REGISTER);
        assert!(f.matches(ip("127.0.0.3"), &m));
        assert!(!f.matches(ip("127.0.0.4"), &m));
        assert!(f.matches(ip("2001:db8::1"), &m));
        assert!(!f.matches(ip("2001:db8::2"), &m));
        assert!(!Filters::default().matches(ip("127.0.0.1"), &m));
    }

    #[test]
    fn extensions_match_request_uri_from_and_to() {
        let f = |user: &str| Filters::new([Target::Extension(user.into())]);
        let elsewhere = ip("192.0.2.1");
        assert!(f("1001").matches(elsewhere, &message(REGISTER)));
        assert!(
            f("2000").matches(elsewhere, &message(INVITE)),
            "R-URI / compact To"
        );
        assert!(f("1003").matches(elsewhere, &message(INVITE)), "From");
        assert!(
            f("+4930123").matches(elsewhere, &message(RESPONSE)),
            "To of a response"
        );
        assert!(
            !f("100").matches(elsewhere, &message(REGISTER)),
            "whole user parts only"
        );
        assert!(!f("1001").matches(elsewhere, &Bytes::from_static(b"\x00garbage")));
    }

    #[test]
    fn targets_round_trip_and_are_validated() {
        let f = Filters::new([
            Target::Extension("1001".into()),
            source("10.0.0.0/8"),
            source("10.0.0.0/8"),
        ]);
        assert_eq!(
            f.targets(),
            vec![source("10.0.0.0/8"), Target::Extension("1001".into())]
        );
        for t in f.targets() {
            assert_eq!(Target::from_parts(t.kind(), &t.value()), Ok(t));
        }
        assert_eq!(source("10.1.2.3").to_string(), "source 10.1.2.3/32");
        assert!(Target::from_parts("source", "ten").is_err());
        assert!(Target::from_parts("user", "1001").is_err());
        for bad in ["", "10 01", "a@b", "x;y", &"9".repeat(65)] {
            assert!(parse_extension(bad).is_err(), "{bad:?}");
        }
        assert!(Filters::default().is_empty());
        assert!(!f.is_empty());
    }
}
