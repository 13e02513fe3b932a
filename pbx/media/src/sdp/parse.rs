//! A tolerant SDP reader (RFC 8866 §5, RFC 4566 §5): keeps what a media-anchoring B2BUA needs
//! and skips everything else. Never panics; see the module doc of [`crate::sdp`] for why this
//! is not `ezk-sdp-types`.

use std::net::IpAddr;

use crate::{Direction, Fingerprint, Setup};

/// More media descriptions than any real call offers; a bound against hostile bodies.
const MAX_MEDIA: usize = 32;

/// Why a body is not SDP at all (the caller answers 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty body")]
    Empty,
    #[error("does not start with v=0")]
    NoVersion,
    #[error("a line is not <type>=<value>")]
    BadLine,
    #[error("unreadable m= line")]
    BadMedia,
    #[error("unreadable c= line")]
    BadConnection,
    #[error("too many m= lines")]
    TooManyMedia,
}

/// A parsed session description: only the fields negotiation reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionDescription {
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level direction attribute, inherited by media without their own (RFC 8866 §6.7).
    pub direction: Option<Direction>,
    /// Session-level WebRTC attributes (Firefox writes `a=fingerprint` here), inherited by
    /// media without their own.
    pub webrtc: WebRtcAttributes,
    /// `a=group:BUNDLE` (RFC 9143 §7.1): the bundled `a=mid`s.
    pub bundle: Vec<String>,
    pub media: Vec<MediaDescription>,
}

/// The attributes of ICE (RFC 8839), DTLS-SRTP (RFC 8122, RFC 5763) and BUNDLE (RFC 9143),
/// at session or media level. Its `Debug` leaves out the ICE password.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct WebRtcAttributes {
    pub fingerprints: Vec<Fingerprint>,
    pub setup: Option<Setup>,
    pub ice_ufrag: Option<String>,
    pub ice_pwd: Option<String>,
    /// `a=ice-lite` (RFC 8839 §5.3).
    pub ice_lite: bool,
    /// `a=mid` (RFC 9143 §7.1), media level only.
    pub mid: Option<String>,
    /// How many `a=candidate` lines (the PBX, ICE-lite, needs none of them).
    pub candidates: usize,
}

impl std::fmt::Debug for WebRtcAttributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcAttributes")
            .field("fingerprints", &self.fingerprints)
            .field("setup", &self.setup)
            .field("ice_ufrag", &self.ice_ufrag)
            .field("ice_pwd", &self.ice_pwd.as_ref().map(|_| "…"))
            .field("ice_lite", &self.ice_lite)
            .field("mid", &self.mid)
            .field("candidates", &self.candidates)
            .finish()
    }
}

impl WebRtcAttributes {
    /// Reads one attribute; false when it is not one of these.
    fn read(&mut self, name: &str, value: &str) -> bool {
        match name {
            "fingerprint" => self.fingerprints.extend(Fingerprint::parse(value)),
            "setup" => self.setup = Setup::from_attribute(value).or(self.setup),
            // RFC 8839 §5.4: ufrag 4-256 and pwd 22-256 ice-chars; shorter ones are kept
            // (some stacks use them) but empty ones are not.
            "ice-ufrag" if !value.is_empty() => self.ice_ufrag = Some(value.to_owned()),
            "ice-pwd" if !value.is_empty() => self.ice_pwd = Some(value.to_owned()),
            "ice-lite" => self.ice_lite = true,
            "mid" if !value.is_empty() => self.mid = Some(value.to_owned()),
            "candidate" => self.candidates += 1,
            _ => return false,
        }
        true
    }
}

/// A `c=` line. `addr` is `None` when the address is not an IP literal (an FQDN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    pub addr: Option<IpAddr>,
}

/// One `m=` section. Its `Debug` leaves out the `a=crypto` values (they hold the leg's keys).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, … as written.
    pub kind: String,
    pub port: u16,
    /// `RTP/AVP`, `RTP/SAVP`, … as written.
    pub proto: String,
    /// The format list (payload type numbers for RTP).
    pub formats: Vec<String>,
    pub connection: Option<Connection>,
    pub direction: Option<Direction>,
    pub rtpmaps: Vec<RtpMap>,
    /// `a=fmtp:<pt> <params>`.
    pub fmtps: Vec<(u8, String)>,
    /// RFC 3605 `a=rtcp`.
    pub rtcp: Option<Rtcp>,
    /// RFC 5761 `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// The values of `a=crypto` lines, unparsed: RFC 4568 §6.1 says skip one we cannot use,
    /// so each is read only when negotiation looks at it.
    pub crypto: Vec<String>,
    /// `a=ptime` in milliseconds.
    pub ptime: Option<u32>,
    /// ICE, DTLS and `a=mid` at media level.
    pub webrtc: WebRtcAttributes,
}

/// `a=rtpmap:<pt> <name>/<clock>[/<channels>]` (RFC 8866 §6.6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpMap {
    pub pt: u8,
    pub name: String,
    pub clock: u32,
    pub channels: Option<u8>,
}

/// `a=rtcp:<port> [IN IP4 <addr>]` (RFC 3605 §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rtcp {
    pub port: u16,
    pub addr: Option<IpAddr>,
}

// Never print key material (ARCHITECTURE.md rule 11).
impl std::fmt::Debug for MediaDescription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaDescription")
            .field("kind", &self.kind)
            .field("port", &self.port)
            .field("proto", &self.proto)
            .field("formats", &self.formats)
            .field("connection", &self.connection)
            .field("direction", &self.direction)
            .field("rtpmaps", &self.rtpmaps)
            .field("fmtps", &self.fmtps)
            .field("rtcp", &self.rtcp)
            .field("rtcp_mux", &self.rtcp_mux)
            .field("crypto_lines", &self.crypto.len())
            .field("ptime", &self.ptime)
            .field("webrtc", &self.webrtc)
            .finish()
    }
}

impl MediaDescription {
    pub fn is_audio(&self) -> bool {
        self.kind.eq_ignore_ascii_case("audio")
    }

    /// RTP/SAVP or RTP/SAVPF (RFC 3711 §12, RFC 5124).
    pub fn is_savp(&self) -> bool {
        self.proto.eq_ignore_ascii_case("RTP/SAVP") || self.proto.eq_ignore_ascii_case("RTP/SAVPF")
    }

    /// A profile the relay can bridge: plain RTP or SDES-SRTP over UDP (not DTLS, not TCP).
    pub fn is_rtp(&self) -> bool {
        self.is_savp()
            || self.proto.eq_ignore_ascii_case("RTP/AVP")
            || self.proto.eq_ignore_ascii_case("RTP/AVPF")
    }

    /// DTLS-SRTP over UDP (RFC 5764 §8, RFC 8829 §5.1.2): `UDP/TLS/RTP/SAVPF`, what browsers
    /// offer, or `UDP/TLS/RTP/SAVP`.
    pub fn is_dtls(&self) -> bool {
        self.proto.eq_ignore_ascii_case("UDP/TLS/RTP/SAVPF")
            || self.proto.eq_ignore_ascii_case("UDP/TLS/RTP/SAVP")
    }

    /// The `a=fmtp` parameters of a payload type.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.fmtps
            .iter()
            .find(|(p, _)| *p == pt)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses an SDP body. Unknown lines and attributes, and attributes we need but cannot read,
/// are skipped; only a body that is not SDP at all is an error.
pub fn parse(body: &[u8]) -> Result<SessionDescription, ParseError> {
    // s=/i= may be in another charset (RFC 8866 §6.10); nothing we read is outside ASCII.
    let text = String::from_utf8_lossy(body);
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.trim().is_empty());
    match lines.next() {
        None => return Err(ParseError::Empty),
        Some(first) if first.trim_end() == "v=0" => {}
        Some(_) => return Err(ParseError::NoVersion),
    }
    let mut sdp = SessionDescription::default();
    for line in lines {
        let (kind, value) = line.split_once('=').ok_or(ParseError::BadLine)?;
        let mut letters = kind.chars();
        let letter = match (letters.next(), letters.next()) {
            (Some(c), None) if c.is_ascii_lowercase() => c,
            _ => return Err(ParseError::BadLine),
        };
        // Nothing we read or write back may carry a control character (a bare CR would split
        // a line of the SDP we send to the other leg).
        let clean = !value.chars().any(|c| c.is_control() && c != '\t');
        match letter {
            'm' if !clean => return Err(ParseError::BadMedia),
            'c' if !clean => return Err(ParseError::BadConnection),
            'a' if !clean => {}
            'm' => {
                if sdp.media.len() >= MAX_MEDIA {
                    return Err(ParseError::TooManyMedia);
                }
                sdp.media.push(parse_media(value)?);
            }
            'c' => {
                let c = parse_connection(value)?;
                match sdp.media.last_mut() {
                    Some(m) => m.connection = Some(c),
                    None => sdp.connection = Some(c),
                }
            }
            'a' => match sdp.media.last_mut() {
                Some(m) => media_attribute(m, value),
                None => session_attribute(&mut sdp, value),
            },
            _ => {}
        }
    }
    Ok(sdp)
}

/// `m=<media> <port>[/<number of ports>] <proto> <fmt> ...` (RFC 8866 §5.14).
fn parse_media(value: &str) -> Result<MediaDescription, ParseError> {
    let mut tokens = value.split_ascii_whitespace();
    let kind = tokens.next().ok_or(ParseError::BadMedia)?;
    let port = tokens.next().ok_or(ParseError::BadMedia)?;
    let port = port.split('/').next().unwrap_or(port);
    let port = port.parse::<u16>().map_err(|_| ParseError::BadMedia)?;
    let proto = tokens.next().ok_or(ParseError::BadMedia)?;
    Ok(MediaDescription {
        kind: kind.to_owned(),
        port,
        proto: proto.to_owned(),
        formats: tokens.map(str::to_owned).collect(),
        ..MediaDescription::default()
    })
}

/// `c=IN IP4 <addr>[/<ttl>[/<n>]]` (RFC 8866 §5.7).
fn parse_connection(value: &str) -> Result<Connection, ParseError> {
    let mut tokens = value.split_ascii_whitespace();
    let (Some(net), Some(family), Some(addr)) = (tokens.next(), tokens.next(), tokens.next())
    else {
        return Err(ParseError::BadConnection);
    };
    if !net.eq_ignore_ascii_case("IN")
        || !(family.eq_ignore_ascii_case("IP4") || family.eq_ignore_ascii_case("IP6"))
    {
        return Err(ParseError::BadConnection);
    }
    let addr = addr.split('/').next().unwrap_or(addr);
    Ok(Connection {
        addr: addr.parse().ok(),
    })
}

fn split_attribute(value: &str) -> (String, &str) {
    match value.split_once(':') {
        Some((n, r)) => (n.trim().to_ascii_lowercase(), r.trim()),
        None => (value.trim().to_ascii_lowercase(), ""),
    }
}

fn session_attribute(sdp: &mut SessionDescription, value: &str) {
    let (name, rest) = split_attribute(value);
    if name == "group" {
        // RFC 9143 §7.1: `a=group:BUNDLE <mid> ...`.
        let mut tokens = rest.split_ascii_whitespace();
        if tokens
            .next()
            .is_some_and(|s| s.eq_ignore_ascii_case("BUNDLE"))
        {
            sdp.bundle = tokens.map(str::to_owned).collect();
        }
    } else if name != "mid"
        && !sdp.webrtc.read(&name, rest)
        && let Some(d) = Direction::from_attribute(&name)
    {
        sdp.direction = Some(d);
    }
}

fn media_attribute(m: &mut MediaDescription, value: &str) {
    let (name, rest) = split_attribute(value);
    if m.webrtc.read(&name, rest) {
        return;
    }
    match name.as_str() {
        "rtpmap" => m.rtpmaps.extend(parse_rtpmap(rest)),
        "fmtp" => {
            let (pt, params) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Ok(pt) = pt.parse::<u8>() {
                m.fmtps.push((pt, params.trim().to_owned()));
            }
        }
        "rtcp" => m.rtcp = parse_rtcp(rest),
        "rtcp-mux" => m.rtcp_mux = true,
        "crypto" => m.crypto.push(rest.to_owned()),
        "ptime" => m.ptime = rest.parse().ok().filter(|p| (1..=1000).contains(p)),
        _ => {
            if let Some(d) = Direction::from_attribute(&name) {
                m.direction = Some(d);
            }
        }
    }
}

fn parse_rtpmap(value: &str) -> Option<RtpMap> {
    let (pt, encoding) = value.split_once(' ')?;
    let pt = pt.parse::<u8>().ok().filter(|pt| *pt < 128)?;
    let mut parts = encoding.trim().split('/');
    let name = parts.next().filter(|n| !n.is_empty())?;
    let clock = parts
        .next()?
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|c| *c > 0)?;
    let channels = match parts.next() {
        Some(c) => Some(c.trim().parse::<u8>().ok().filter(|c| *c > 0)?),
        None => None,
    };
    Some(RtpMap {
        pt,
        name: name.to_owned(),
        clock,
        channels,
    })
}

fn parse_rtcp(value: &str) -> Option<Rtcp> {
    let mut tokens = value.split_ascii_whitespace();
    let port = tokens.next()?.parse::<u16>().ok()?;
    let addr = match (tokens.next(), tokens.next(), tokens.next()) {
        (Some(_), Some(_), Some(addr)) => addr.parse().ok(),
        _ => None,
    };
    Some(Rtcp { port, addr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_negotiation_needs() {
        let sdp = parse(
            b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
              a=sendonly\r\nm=audio 4000/2 RTP/SAVP 0 101\r\nc=IN IP6 ::1\r\n\
              a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=rtcp:4005 IN IP4 10.0.0.2\r\n\
              a=rtcp-mux\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\na=ptime:20\r\na=inactive\r\n\
              a=rtpmap:junk\r\nm=video 0 RTP/AVP 96\r\n",
        )
        .unwrap();
        assert_eq!(sdp.direction, Some(Direction::SendOnly));
        assert_eq!(sdp.media.len(), 2);
        let a = &sdp.media[0];
        assert_eq!(
            (a.port, a.proto.as_str(), a.formats.len()),
            (4000, "RTP/SAVP", 2)
        );
        assert_eq!(a.connection.unwrap().addr, Some("::1".parse().unwrap()));
        assert_eq!(a.rtpmaps.len(), 1);
        assert_eq!(a.fmtp(101), Some("0-16"));
        assert_eq!(a.rtcp.unwrap().port, 4005);
        assert!(a.rtcp_mux && a.is_savp() && a.is_rtp());
        assert_eq!((a.crypto.len(), a.ptime), (1, Some(20)));
        assert_eq!(a.direction, Some(Direction::Inactive));
        assert_eq!(sdp.media[1].direction, None);
    }

    #[test]
    fn rejects_what_is_not_sdp() {
        assert_eq!(parse(b""), Err(ParseError::Empty));
        assert_eq!(parse(b"hello"), Err(ParseError::NoVersion));
        assert_eq!(parse(b"v=0\r\nxx=1\r\n"), Err(ParseError::BadLine));
        assert_eq!(parse(b"v=0\r\nm=audio\r\n"), Err(ParseError::BadMedia));
        assert_eq!(
            parse(b"v=0\r\nm=audio 70000 RTP/AVP 0\r\n"),
            Err(ParseError::BadMedia)
        );
        assert_eq!(parse(b"v=0\r\nc=IN\r\n"), Err(ParseError::BadConnection));
        let many = "v=0\r\n".to_owned() + &"m=audio 1 RTP/AVP 0\r\n".repeat(33);
        assert_eq!(parse(many.as_bytes()), Err(ParseError::TooManyMedia));
    }

    #[test]
    fn debug_hides_crypto() {
        let sdp =
            parse(b"v=0\nm=audio 1 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:SECRET\n");
        let debug = format!("{:?}", sdp.unwrap());
        assert!(
            !debug.contains("SECRET") && debug.contains("crypto_lines: 1"),
            "{debug}"
        );
    }

    #[test]
    fn fqdn_connection_has_no_address() {
        let sdp = parse(b"v=0\nc=IN IP4 host.example\nm=audio 1 RTP/AVP 0\n").unwrap();
        assert_eq!(sdp.connection, Some(Connection { addr: None }));
    }
}
