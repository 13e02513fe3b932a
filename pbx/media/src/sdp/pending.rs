//! What an offer says, what the policies make of it, and what the PBX keeps of it until the
//! answer comes back.

use std::net::{IpAddr, SocketAddr};

use super::codec::{Codec, audio_codecs};
use super::crypto::{Crypto, first_usable};
use super::opus_leg::TowardOpus;
use super::parse::{MediaDescription, SessionDescription};
use super::webrtc::{RemoteWebRtc, remote};
use super::write::Rejected;
use super::{Encryption, LegPolicy, NegotiationError};
use crate::{Direction, Side};

/// Where and how one leg's bridged stream flows, as its SDP declared it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stream {
    /// The declared direction, less receiving with `c=0.0.0.0` (RFC 3264 §8.4).
    pub direction: Direction,
    pub rtp: Option<SocketAddr>,
    pub rtcp: Option<SocketAddr>,
}

impl Stream {
    /// `mux` is whether rtcp-mux was negotiated on this leg (RFC 5761 §5.1.1: then RTCP goes
    /// to the RTP address).
    pub fn of(sdp: &SessionDescription, m: &MediaDescription, mux: bool) -> Stream {
        // RFC 8866 §6.7: a media-level direction overrides the session-level one.
        let declared = m.direction.or(sdp.direction).unwrap_or_default();
        if m.is_dtls() {
            // RFC 8839 §4.2.1.1: with ICE, `c=` holds a default candidate (browsers write
            // 0.0.0.0 port 9), not a hold; where media goes is what the checks prove.
            return Stream {
                direction: declared,
                rtp: None,
                rtcp: None,
            };
        }
        // RFC 8866 §5.7: the media-level c= overrides the session-level one.
        let addr = m.connection.or(sdp.connection).and_then(|c| c.addr);
        let old_hold = addr.is_some_and(|a| a.is_unspecified());
        let direction = if old_hold {
            declared.without_receive()
        } else {
            declared
        };
        let ip = addr.filter(|a| !a.is_unspecified());
        let rtp = ip
            .filter(|_| m.port != 0)
            .map(|ip| SocketAddr::new(ip, m.port));
        let rtcp = rtp.and_then(|rtp| rtcp_address(rtp, m, mux));
        Stream {
            direction,
            rtp,
            rtcp,
        }
    }
}

fn rtcp_address(rtp: SocketAddr, m: &MediaDescription, mux: bool) -> Option<SocketAddr> {
    if mux {
        return Some(rtp);
    }
    match m.rtcp {
        // RFC 3605 §2.1: a=rtcp gives the port, and optionally an address of its own.
        Some(r) if r.port != 0 => {
            let ip: IpAddr = r.addr.filter(|a| !a.is_unspecified()).unwrap_or(rtp.ip());
            Some(SocketAddr::new(ip, r.port))
        }
        // RFC 3550 §11: RTCP on the next higher port.
        _ => rtp
            .port()
            .checked_add(1)
            .map(|p| SocketAddr::new(rtp.ip(), p)),
    }
}

/// An offer the PBX passed on, waiting for the other leg's answer.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub from: Side,
    /// Position of the bridged audio `m=` line, the same in the offer sent on.
    pub index: usize,
    /// The offerer's `m=` lines, to answer the others with port 0 in place.
    pub lines: Vec<Rejected>,
    /// The offerer's audio profile: the answer repeats it (RFC 3264 §6.1).
    pub proto: String,
    /// The offerer's audio codecs (its payload types) and the payload type each was offered
    /// under to the other leg. A format for which the other leg had no number left is absent.
    pub codecs: Vec<(Codec, u8)>,
    /// The offerer's key when the PBX answers it with SRTP.
    pub crypto: Option<Crypto>,
    pub rtcp_mux: bool,
    pub ptime: Option<u32>,
    pub stream: Stream,
    /// The PBX offered the other leg SRTP (with its keys of `crypto::OFFERED`).
    pub srtp_on: bool,
    /// The offerer is a WebRTC leg: its ICE credentials, fingerprints and setup.
    pub webrtc: Option<RemoteWebRtc>,
    /// The offerer's Opus when it offered no G.711 and the other leg is a phone: the PBX
    /// added the voice codecs it transcodes to (`synthetic`, their static payload types).
    pub opus: Option<Codec>,
    pub synthetic: Vec<u8>,
    /// The offerer's `telephone-event/48000` when it offered no 8 kHz one and Opus is
    /// transcoded: the PBX added a `telephone-event/8000` (in `synthetic`) for the phone.
    pub opus_event: Option<Codec>,
    /// The offerer is the phone of a transcoded call and the other leg the Opus one: the
    /// PBX offered that leg its Opus in place of the phone's voice codecs
    /// (`Pending::offer_opus_leg`).
    pub toward_opus: Option<TowardOpus>,
}

impl Pending {
    /// Reads an offer from `from` under its policy.
    /// `webrtc`: the PBX has a DTLS certificate, so a WebRTC stream is usable.
    pub fn read(
        from: Side,
        sdp: &SessionDescription,
        policy: &LegPolicy,
        webrtc: bool,
    ) -> Result<Pending, NegotiationError> {
        let usable = |m: &MediaDescription| {
            m.is_rtp() || (webrtc && m.is_dtls() && remote(sdp, m).is_some())
        };
        let index = sdp
            .media
            .iter()
            .position(|m| m.is_audio() && m.port != 0 && usable(m))
            .ok_or(NegotiationError::NoAudio)?;
        let m = sdp.media.get(index).ok_or(NegotiationError::NoAudio)?;
        let remote_webrtc = remote(sdp, m);
        let codecs = audio_codecs(m);
        if codecs.iter().all(Codec::is_auxiliary) {
            return Err(NegotiationError::NoCommonCodec);
        }
        Ok(Pending {
            from,
            index,
            lines: sdp.media.iter().map(Rejected::of).collect(),
            proto: m.proto.clone(),
            codecs: codecs.into_iter().map(|c| (c, 0)).collect(),
            // DTLS-SRTP brings its own keys; `a=crypto` beside it is not used (RFC 5763 §5).
            crypto: match remote_webrtc {
                Some(_) => None,
                None => offerer_crypto(from, m, policy)?,
            },
            // RFC 8829 §5.1.1: browsers always multiplex; the PBX then does too.
            rtcp_mux: m.rtcp_mux || remote_webrtc.is_some(),
            ptime: m.ptime,
            stream: Stream::of(sdp, m, m.rtcp_mux),
            srtp_on: false,
            webrtc: remote_webrtc,
            opus: None,
            synthetic: Vec::new(),
            opus_event: None,
            toward_opus: None,
        })
    }
}

/// The offerer's key if the PBX answers it with SRTP.
fn offerer_crypto(
    side: Side,
    m: &MediaDescription,
    policy: &LegPolicy,
) -> Result<Option<Crypto>, NegotiationError> {
    if policy.encryption == Encryption::Off {
        // A SAVP stream cannot be answered with RTP (RFC 3264 §6.1: same profile).
        return match m.is_savp() {
            true => Err(NegotiationError::EncryptionDisabled(side)),
            false => Ok(None),
        };
    }
    // RFC 4568 §6.1: the first line the PBX can use, in the offerer's order. On RTP/AVP,
    // `a=crypto` is "best-effort SRTP" (baresip, Linphone, Zoiper): taken when usable.
    match first_usable(&m.crypto) {
        None if m.is_savp() => Err(NegotiationError::NoAcceptableCrypto(side)),
        None if policy.encryption == Encryption::Required => {
            Err(NegotiationError::EncryptionRequired(side))
        }
        None => Ok(None),
        Some(c) if policy.keys_may_travel() => Ok(Some(c)),
        // RFC 4568 §8.3: no keys over plain signaling; best effort falls back to RTP.
        Some(_) if !m.is_savp() && policy.encryption == Encryption::Optional => Ok(None),
        Some(_) => Err(NegotiationError::KeysInClear(side)),
    }
}

/// Whether the PBX offers SRTP to `side`, given its policy, what the PBX knows of that leg
/// and whether the offerer has SRTP.
pub(crate) fn offer_srtp(
    side: Side,
    policy: &LegPolicy,
    leg: LegSrtp,
    offerer_encrypted: bool,
) -> Result<bool, NegotiationError> {
    match policy.encryption {
        Encryption::Off => Ok(false),
        Encryption::Required if policy.keys_may_travel() => Ok(true),
        Encryption::Required => Err(NegotiationError::KeysInClear(side)),
        Encryption::Optional => Ok(match (leg.in_use, leg.first_offer) {
            // A leg keeps its profile for the whole call: a re-offer that switched it could be
            // refused, and a refused re-INVITE leaves hold or resume undone.
            (Some(in_use), _) => in_use && policy.keys_may_travel(),
            (None, FirstOffer::Plain) => false,
            (None, FirstOffer::Srtp) => {
                policy.secure_signaling || (offerer_encrypted && policy.keys_may_travel())
            }
            // Mirror the offerer, when keys may travel to this leg; RTP otherwise.
            (None, FirstOffer::Mirror) => offerer_encrypted && policy.keys_may_travel(),
        }),
    }
}

/// What the PBX knows of one leg's SRTP, beyond its policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LegSrtp {
    /// How to make the first offer to an `Optional` leg.
    pub first_offer: FirstOffer,
    /// Whether the leg's last completed exchange set up SRTP (`None`: none completed yet).
    pub in_use: Option<bool>,
}

/// What the PBX first offers a leg whose policy is [`Encryption::Optional`]. Later offers keep
/// the profile the first exchange settled on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FirstOffer {
    /// SRTP when the offerer has SRTP and keys may travel to this leg, RTP otherwise.
    #[default]
    Mirror,
    /// SRTP when the leg's signalling is TLS (RFC 4568 §8.3), whatever the offerer has; the
    /// other cases as `Mirror`. For a leg that can refuse it and be offered RTP again (a
    /// device answering the PBX's INVITE with 488).
    Srtp,
    /// RTP: the leg refused SRTP.
    Plain,
}

/// The voice codecs the PBX transcodes Opus to, by static payload type (RFC 3551 §6), in the
/// order it offers them.
const TRANSCODED: [(u8, &str); 3] = [(0, "PCMU"), (8, "PCMA"), (9, "G722")];

impl Pending {
    /// A browser or SIP softphone that offered Opus and neither PCMU nor PCMA, calling a
    /// phone: the offer to the phone gets the voice codecs the PBX can transcode Opus to
    /// (those the caller did not offer itself), after the caller's own formats. Browsers
    /// that offer G.711 (all of them by default, RFC 7874 §3) are bridged without
    /// transcoding, as is a phone that answers with Opus.
    pub fn add_transcoded(&mut self) {
        let has = |name: &str| {
            self.codecs
                .iter()
                .any(|(c, _)| c.name.eq_ignore_ascii_case(name) && c.clock == 8000)
        };
        if has("PCMU") || has("PCMA") {
            return;
        }
        let Some(opus) = self
            .codecs
            .iter()
            .find(|(c, _)| c.name.eq_ignore_ascii_case("opus") && c.clock == 48_000)
            .map(|(c, _)| c.clone())
        else {
            return;
        };
        let missing: Vec<(u8, &str)> = TRANSCODED
            .into_iter()
            .filter(|&(pt, name)| !has(name) && !self.codecs.iter().any(|(c, _)| c.pt == pt))
            .collect();
        for (pt, name) in missing {
            self.codecs.push((
                Codec {
                    pt,
                    name: name.to_owned(),
                    clock: 8000,
                    channels: 1,
                    fmtp: None,
                },
                0,
            ));
            self.synthetic.push(pt);
        }
        self.opus = Some(opus);
        self.add_transcoded_event();
    }

    /// RFC 4733 §2.1: an event's clock is its audio's. An offerer with `telephone-event`
    /// on Opus's 48 kHz clock only (browsers, Opus softphones) has the phone offered one on
    /// 8 kHz beside it, and the transcoder converts the events between the two
    /// (`transcode::events`). An offerer that has an 8 kHz one keeps it passed through.
    fn add_transcoded_event(&mut self) {
        if self.codecs.iter().any(|(c, _)| c.is_event_at(8000)) {
            return;
        }
        let Some(event) = self
            .codecs
            .iter()
            .find(|(c, _)| c.is_event_at(48_000))
            .map(|(c, _)| c.clone())
        else {
            return;
        };
        // A number the offerer does not use: the packets the phone sends under it must not
        // look like one of the offerer's formats.
        let used = |pt: u8| self.codecs.iter().any(|(c, _)| c.pt == pt);
        let Some(pt) = std::iter::once(101).chain(96..=127).find(|&pt| !used(pt)) else {
            return;
        };
        self.codecs.push((
            Codec {
                pt,
                name: "telephone-event".to_owned(),
                clock: 8000,
                channels: 1,
                fmtp: event.fmtp.clone(),
            },
            0,
        ));
        self.synthetic.push(pt);
        self.opus_event = Some(event);
    }
}
