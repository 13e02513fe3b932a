//! The readable block one traced message becomes: a line saying which way it went, over
//! what, between which addresses and when, then the (redacted) message as it was on the wire.
//!
//! ```text
//! SIP in udp 127.0.0.5:40312 -> 127.0.0.1:5060 at 2026-03-30T08:30:00.123Z (532 bytes)
//! REGISTER sip:pbx.test SIP/2.0
//! Via: SIP/2.0/UDP 127.0.0.5:40312;branch=z9hG4bK...
//! ...
//! ```

use std::fmt::Write;
use std::net::SocketAddr;
use std::time::SystemTime;

/// Which way a message went, seen from the PBX.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// Where a message went: the arrow always points from sender to receiver.
#[derive(Clone, Copy, Debug)]
pub struct Route<'a> {
    pub direction: Direction,
    /// `udp`, `tcp` or `tls`.
    pub transport: &'a str,
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

impl Route<'_> {
    /// (source, destination).
    pub fn ends(&self) -> (SocketAddr, SocketAddr) {
        match self.direction {
            Direction::In => (self.remote, self.local),
            Direction::Out => (self.local, self.remote),
        }
    }
}

/// `2026-03-30T08:30:00.123Z`: UTC, milliseconds.
pub fn wall_clock(at: SystemTime) -> String {
    match jiff::Timestamp::try_from(at) {
        Ok(ts) => format!("{ts:.3}"),
        Err(_) => "(clock out of range)".to_string(),
    }
}

/// The block for one message: the summary line, then `text` (already redacted) with its
/// line endings made `\n` and trailing blank lines dropped.
pub fn block(route: &Route<'_>, at: SystemTime, size: usize, text: &str) -> String {
    let (from, to) = route.ends();
    let mut out = String::with_capacity(text.len() + 96);
    let _ = write!(
        out,
        "SIP {} {} {from} -> {to} at {} ({size} bytes)",
        route.direction.name(),
        route.transport,
        wall_clock(at),
    );
    for line in text.trim_end_matches(['\r', '\n']).split('\n') {
        out.push('\n');
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap_or_else(|_| panic!("{text}"))
    }

    #[test]
    fn wall_clock_is_utc_with_milliseconds() {
        let at = UNIX_EPOCH + Duration::from_millis(1_774_859_400_123);
        assert_eq!(wall_clock(at), "2026-03-30T08:30:00.123Z");
        assert_eq!(wall_clock(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn blocks_name_direction_transport_addresses_time_and_size() {
        let at = UNIX_EPOCH + Duration::from_millis(1_774_859_400_123);
        let route = Route {
            direction: Direction::In,
            transport: "udp",
            local: addr("127.0.0.1:5060"),
            remote: addr("127.0.0.5:40312"),
        };
        let text = "OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            block(&route, at, 44, text),
            "SIP in udp 127.0.0.5:40312 -> 127.0.0.1:5060 at 2026-03-30T08:30:00.123Z \
             (44 bytes)\nOPTIONS sip:x SIP/2.0\nContent-Length: 0"
        );
        let out = Route {
            direction: Direction::Out,
            transport: "tls",
            ..route
        };
        let b = block(&out, at, 7, "SIP/2.0 200 OK\r\n\r\nv=0\r\n");
        assert!(
            b.starts_with("SIP out tls 127.0.0.1:5060 -> 127.0.0.5:40312 at "),
            "{b}"
        );
        assert!(b.ends_with("SIP/2.0 200 OK\n\nv=0"), "{b}");
    }
}
