//! Hosts of SIP URIs and Vias: domain names, IPv4, and IPv6 references (RFC 5118).

use super::error::UriError;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The host of a SIP URI or Via.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// As written (compare with [`Host::matches`], which ignores case).
    Domain(String),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
}

impl Host {
    /// Parses `hostname`, `IPv4address` or `[IPv6address]` (RFC 3261 §25.1, RFC 5118).
    pub fn parse(s: &str) -> Result<Host, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(UriError::Host)?;
            return parse_ipv6(inner).map(Host::Ipv6).ok_or(UriError::Host);
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && let Ok(v4) = Ipv4Addr::from_str(s)
        {
            return Ok(Host::Ipv4(v4));
        }
        if is_hostname(s) {
            Ok(Host::Domain(s.to_owned()))
        } else {
            Err(UriError::Host)
        }
    }

    /// RFC 3261 §19.1.4: domain names compare case-insensitively; an IP address never
    /// matches a domain name.
    pub fn matches(&self, other: &Host) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => a.eq_ignore_ascii_case(b),
            (Host::Ipv4(a), Host::Ipv4(b)) => a == b,
            (Host::Ipv6(a), Host::Ipv6(b)) => a == b,
            _ => false,
        }
    }

    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Domain(_) => None,
            Host::Ipv4(a) => Some(IpAddr::V4(*a)),
            Host::Ipv6(a) => Some(IpAddr::V6(*a)),
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Host {
        match ip {
            IpAddr::V4(a) => Host::Ipv4(a),
            IpAddr::V6(a) => Host::Ipv6(a),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// An IPv6 address, tolerating the `:::` form that RFC 3261's ABNF allowed by mistake
/// (RFC 5118 §4.10: implementations must accept it).
pub(crate) fn parse_ipv6(s: &str) -> Option<Ipv6Addr> {
    Ipv6Addr::from_str(s)
        .ok()
        .or_else(|| Ipv6Addr::from_str(&s.replacen(":::", "::", 1)).ok())
}

/// RFC 3261 `hostname`: dot-separated labels of alphanumerics and `-` (and `_`, which real
/// clients use), with an optional final dot.
fn is_hostname(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    let mut after_dot = true;
    for b in s.bytes() {
        if b == b'.' {
            if after_dot {
                return false;
            }
            after_dot = true;
        } else if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            after_dot = false;
        } else {
            return false;
        }
    }
    !after_dot
}
