//! The SDP the PBX sends: always its own, written from scratch (RFC 8866 §5 field order).

use std::fmt::Write;
use std::net::IpAddr;

use super::codec::Codec;
use super::parse::MediaDescription;
use crate::{Direction, SrtpKey};

/// An `m=` line the PBX does not bridge, written with port 0 (RFC 3264 §6, §8.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rejected {
    kind: String,
    proto: String,
    formats: Vec<String>,
}

impl Rejected {
    pub fn of(m: &MediaDescription) -> Rejected {
        Rejected {
            kind: m.kind.clone(),
            proto: m.proto.clone(),
            formats: m.formats.clone(),
        }
    }

    /// The template of an audio line the PBX wrote, for padding later SDPs to this leg.
    pub fn audio(proto: &str, codecs: &[Codec]) -> Rejected {
        let mut formats: Vec<String> = codecs.iter().map(|c| c.pt.to_string()).collect();
        if formats.is_empty() {
            formats.push("0".to_owned());
        }
        Rejected {
            kind: "audio".to_owned(),
            proto: proto.to_owned(),
            formats,
        }
    }
}

/// The bridged audio stream as the PBX describes it to one leg.
pub(crate) struct Audio<'a> {
    pub port: u16,
    pub proto: &'a str,
    /// In the payload type numbers of the leg the SDP goes to.
    pub codecs: &'a [Codec],
    pub ptime: Option<u32>,
    pub rtcp_mux: bool,
    pub crypto: &'a [(u32, &'a SrtpKey)],
    pub direction: Direction,
    /// ICE-lite and DTLS lines for a WebRTC leg.
    pub webrtc: Option<super::webrtc::Section<'a>>,
}

pub(crate) enum Section<'a> {
    Audio(Audio<'a>),
    Rejected(&'a Rejected),
}

/// Everything after the `o=` line; the version is stamped separately so that an unchanged
/// description keeps its version (RFC 3264 §8).
pub(crate) fn body(ip: IpAddr, sections: &[Section<'_>]) -> String {
    let mut s = String::with_capacity(512);
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    // `write!` to a String cannot fail.
    let _ = write!(s, "s=-\r\nc=IN {family} {ip}\r\nt=0 0\r\n");
    let webrtc = sections.iter().find_map(|section| match section {
        Section::Audio(a) => a.webrtc,
        Section::Rejected(_) => None,
    });
    if let Some(w) = webrtc {
        // RFC 8839 §5.3: the PBX is a lite agent; RFC 9143 §7.1: one bundled audio stream.
        let _ = write!(s, "a=ice-lite\r\na=group:BUNDLE {}\r\n", w.mid);
        // RFC 8830 §2: one media stream, so the browser's track has a stream to join.
        s.push_str("a=msid-semantic: WMS pbx\r\n");
    }
    for section in sections {
        match section {
            Section::Rejected(r) => {
                let formats = if r.formats.is_empty() {
                    "0".to_owned()
                } else {
                    r.formats.join(" ")
                };
                let _ = write!(s, "m={} 0 {} {formats}\r\n", r.kind, r.proto);
            }
            Section::Audio(a) => audio(&mut s, a, ip),
        }
    }
    s
}

fn audio(s: &mut String, a: &Audio<'_>, ip: IpAddr) {
    let _ = write!(s, "m=audio {} {}", a.port, a.proto);
    for c in a.codecs {
        let _ = write!(s, " {}", c.pt);
    }
    s.push_str("\r\n");
    for c in a.codecs {
        let _ = write!(s, "a=rtpmap:{} {}\r\n", c.pt, c.encoding());
        if let Some(fmtp) = c.fmtp.as_deref().filter(|f| !f.is_empty()) {
            let _ = write!(s, "a=fmtp:{} {fmtp}\r\n", c.pt);
        }
    }
    if let Some(ptime) = a.ptime {
        let _ = write!(s, "a=ptime:{ptime}\r\n");
    }
    if a.rtcp_mux {
        s.push_str("a=rtcp-mux\r\n");
    }
    if let Some(w) = &a.webrtc {
        webrtc_lines(s, w, ip, a.port);
    }
    for (tag, key) in a.crypto {
        let _ = write!(
            s,
            "a=crypto:{}\r\n",
            super::crypto::format_crypto(*tag, key)
        );
    }
    let _ = write!(s, "a={}\r\n", a.direction.attribute());
}

fn webrtc_lines(s: &mut String, w: &super::webrtc::Section<'_>, ip: IpAddr, port: u16) {
    let _ = write!(
        s,
        "a=mid:{}\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:{}\r\na=setup:{}\r\n",
        w.mid,
        w.ice.ufrag,
        w.ice.pwd,
        w.fingerprint.attribute(),
        w.setup.attribute()
    );
    // RFC 8445 §5.1.2.1: a host candidate's priority with type preference 126, local
    // preference 65535, component 1; RFC 8840 §4.1: lite agents list end-of-candidates.
    let _ = write!(
        s,
        "a=candidate:1 1 udp 2130706431 {ip} {port} typ host\r\na=end-of-candidates\r\n"
    );
    s.push_str("a=msid:pbx pbx-audio\r\n");
}

/// The whole description with its `o=` line (RFC 8866 §5.2).
pub(crate) fn with_origin(session_id: u64, version: u64, ip: IpAddr, body: &str) -> Vec<u8> {
    let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
    format!("v=0\r\no=- {session_id} {version} IN {family} {ip}\r\n{body}").into_bytes()
}
