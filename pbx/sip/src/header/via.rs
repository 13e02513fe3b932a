//! `Via: SIP/2.0/UDP host:port;branch=...` (RFC 3261 §20.42), one value per [`Via`].

use super::SyntaxError;
use super::lex::Lexer;
use super::params::Params;
use crate::uri::{Host, parse_ipv6};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// Upper-cased: "UDP", "TCP", "TLS", "WS", "WSS" or any other token.
    pub transport: String,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
}

/// The RFC 3261 §8.1.1.7 magic cookie that starts every RFC 3261 branch.
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

impl Via {
    pub fn new(transport: &str, host: Host, port: Option<u16>) -> Via {
        Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params: Params::new(),
        }
    }

    /// Parses one Via value; the sent-protocol must be `SIP/2.0`.
    pub fn parse(s: &str) -> Result<Via, SyntaxError> {
        match Via::parse_any_version(s)? {
            (via, true) => Ok(via),
            (_, false) => Err(SyntaxError::Bad("sent-protocol is not SIP/2.0")),
        }
    }

    /// Parses a Via of any `SIP/x.y`, saying whether it was 2.0 (to answer 505, RFC 3261 §21.5.20).
    pub(crate) fn parse_any_version(s: &str) -> Result<(Via, bool), SyntaxError> {
        let mut lx = Lexer::new(s);
        lx.skip_ws();
        let protocol = lx.token()?;
        if !lx.eat_sep(b'/') {
            return Err(SyntaxError::Bad("expected / after protocol name"));
        }
        let version = lx.token()?;
        if !protocol.eq_ignore_ascii_case("SIP") {
            return Err(SyntaxError::Bad("sent-protocol is not SIP"));
        }
        if !lx.eat_sep(b'/') {
            return Err(SyntaxError::Bad("expected / after protocol version"));
        }
        let transport = lx.token()?.to_ascii_uppercase();
        if !lx.skip_ws() {
            return Err(SyntaxError::Bad("expected white space before sent-by"));
        }
        let host_text = if lx.peek() == Some(b'[') {
            let inner = lx.until(b']').ok_or(SyntaxError::Bad("missing ]"))?;
            lx.eat(b']');
            // `until` stopped before the `]`; put it back for Host::parse.
            format!("{inner}]")
        } else {
            lx.take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
                .to_owned()
        };
        let host = Host::parse(&host_text).map_err(|_| SyntaxError::Bad("invalid sent-by host"))?;
        let port = if lx.eat_sep(b':') {
            let digits = lx.take_while(|b| b.is_ascii_digit());
            Some(
                digits
                    .parse::<u16>()
                    .map_err(|_| SyntaxError::Bad("invalid sent-by port"))?,
            )
        } else {
            None
        };
        let params = Params::parse_from(&mut lx)?;
        lx.skip_ws();
        if !lx.at_end() {
            return Err(SyntaxError::Bad("unexpected text in Via"));
        }
        let via = Via {
            transport,
            host,
            port,
            params,
        };
        if via.params.contains("received") && via.received().is_none() {
            return Err(SyntaxError::Bad("received is not an IP address"));
        }
        if matches!(via.params.get("rport"), Some(Some(p)) if p.parse::<u16>().is_err()) {
            return Err(SyntaxError::Bad("invalid rport"));
        }
        if via.params.get("branch") == Some(None) {
            return Err(SyntaxError::Bad("branch without a value"));
        }
        Ok((via, version == "2.0"))
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }

    /// Whether the branch is the RFC 3261 magic cookie followed by something (§17.2.3
    /// matching applies). A bare cookie identifies nothing (RFC 4475 §3.2.1).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| {
            b.len() > BRANCH_MAGIC_COOKIE.len() && b.starts_with(BRANCH_MAGIC_COOKIE)
        })
    }

    /// The `received` address, with or without `[]` (RFC 5118 §4.5 says to accept both).
    pub fn received(&self) -> Option<IpAddr> {
        let v = self.params.get("received").flatten()?;
        if let Some(inner) = v.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            return parse_ipv6(inner).map(IpAddr::V6);
        }
        v.parse::<IpAddr>()
            .ok()
            .or_else(|| parse_ipv6(v).map(IpAddr::V6))
    }

    /// `None`: no rport; `Some(None)`: rport without value (RFC 3581 §3 request);
    /// `Some(Some(p))`: filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// RFC 3261 §18.2.1; IPv6 written without brackets (RFC 5118 §4.5).
    pub fn set_received(&mut self, ip: IpAddr) {
        self.params.set("received", Some(&ip.to_string()));
    }

    /// RFC 3581 §4.
    pub fn set_rport(&mut self, port: u16) {
        self.params.set("rport", Some(&port.to_string()));
    }

    /// `host[:port]`.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.to_string(),
        }
    }

    /// The transport is reliable (anything but UDP, RFC 3261 §17.1.1.2 Timer A).
    pub fn is_reliable(&self) -> bool {
        self.transport != "UDP"
    }
}

impl FromStr for Via {
    type Err = SyntaxError;
    fn from_str(s: &str) -> Result<Via, SyntaxError> {
        Via::parse(s)
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SIP/2.0/{} {}{}",
            self.transport,
            self.sent_by(),
            self.params
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_odd_white_space() {
        let v = Via::parse("SIP  /   2.0 /UDP     192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, Host::Ipv4("192.0.2.2".parse().unwrap()));
        assert_eq!(v.branch(), Some("390skdjuw"));
        assert!(!v.has_rfc3261_branch());
        let v =
            Via::parse("SIP  / 2.0  / tcp     spindle.example.com   ;  branch  =   z9hG4bK9ikj8")
                .unwrap();
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.branch(), Some("z9hG4bK9ikj8"));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8"
        );
    }

    #[test]
    fn ipv6_sent_by_and_received() {
        let v = Via::parse(
            "SIP/2.0/UDP [2001:db8::9:1]:6050;received=[2001:db8::9:255];branch=z9hG4bKas3",
        )
        .unwrap();
        assert_eq!(v.host, Host::Ipv6("2001:db8::9:1".parse().unwrap()));
        assert_eq!(v.port, Some(6050));
        assert_eq!(v.received(), Some("2001:db8::9:255".parse().unwrap()));
        assert_eq!(v.sent_by(), "[2001:db8::9:1]:6050");
        let v =
            Via::parse("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3")
                .unwrap();
        assert_eq!(v.received(), Some("2001:db8::9:255".parse().unwrap()));
    }

    #[test]
    fn rport_and_received_setters() {
        let mut v = Via::parse("SIP/2.0/UDP pc33.example.com:5060;rport;branch=z9hG4bKx").unwrap();
        assert_eq!(v.rport(), Some(None));
        v.set_received("192.0.2.9".parse().unwrap());
        v.set_rport(5099);
        assert_eq!(v.rport(), Some(Some(5099)));
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP pc33.example.com:5060;rport=5099;branch=z9hG4bKx;received=192.0.2.9"
        );
        assert_eq!(Via::parse(&v.to_string()).unwrap(), v);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "SIP/2.0/UDP 192.0.2.15;;",
            "SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP host:99999",
            "SIP/2.0/UDPhost",
            "SIP/2.0/UDP host;received=example.com",
            "SIP/2.0/UDP host;rport=x",
            "SIP/2.0/UDP host;branch",
            "SIP/2.0/UDP ho st",
            "",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad:?}");
        }
    }
}
