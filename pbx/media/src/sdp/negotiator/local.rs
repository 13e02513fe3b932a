//! The PBX answering a leg itself (voicemail, IVR, echo): the leg's offer is answered with
//! the formats the PBX's own endpoints speak, and the plan names only that leg.

use super::{Leg, Negotiator};
use crate::g711::Law;
use crate::sdp::NegotiationError;
use crate::sdp::codec::Codec;
use crate::sdp::parse::parse;
use crate::sdp::pending::Pending;
use crate::sdp::webrtc as w;
use crate::sdp::write::{Audio, Rejected, Section, body};
use crate::voice::Voice;
use crate::{Direction, LegPlan, MediaPlan, Side, SrtpKey, SrtpPair};
use std::time::Duration;

/// What the PBX sends and reads on a leg it answered itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalMedia {
    /// The voice codec: G.711 in the leg's choice of law, or G.722.
    pub voice: Voice,
    /// The payload type the leg numbered it with.
    pub payload_type: u8,
    /// RFC 4733 telephone-event at 8000 Hz, when the leg offered it: its payload type.
    pub telephone_event: Option<u8>,
    /// The leg's `a=ptime`, else 20 ms (RFC 3551 §4.5).
    pub ptime: Duration,
}

/// The voice formats the PBX's endpoints speak. G.722's RTP clock is 8000 (RFC 3551
/// §4.5.2); Opus is always `opus/48000/2` in SDP, mono or not (RFC 7587 §7).
fn voice_of(codec: &Codec) -> Option<Voice> {
    if codec.name.eq_ignore_ascii_case("opus") {
        return (codec.clock == 48_000 && codec.channels == 2).then_some(Voice::Opus);
    }
    if codec.clock != 8000 || codec.channels != 1 {
        return None;
    }
    [Voice::G711(Law::Mu), Voice::G711(Law::A), Voice::G722]
        .into_iter()
        .find(|v| codec.name.eq_ignore_ascii_case(v.name()))
}

impl LocalMedia {
    /// The RTP clock of the leg's `telephone-event` (RFC 4733 §2.1: the audio's): 8000, or
    /// 48000 on an Opus leg.
    pub fn event_clock(&self) -> u32 {
        self.voice.clock_rate()
    }
}

impl Negotiator {
    /// An offer from `from` that the PBX answers itself. Returns the SDP answer, the plan
    /// (only `from`'s leg is set) and what the PBX's endpoints use on that leg.
    pub fn answer_locally(
        &mut self,
        from: Side,
        sdp: &[u8],
        rng: &mut impl rand::RngCore,
    ) -> Result<(Vec<u8>, MediaPlan, LocalMedia), NegotiationError> {
        if self.pending.is_some() {
            return Err(NegotiationError::OfferPending);
        }
        let sdp = parse(sdp)?;
        let webrtc_ok = self.dtls_fingerprint.is_some();
        let leg = &mut self.legs[from.index()];
        let p = Pending::read(from, &sdp, &leg.policy, webrtc_ok)?;
        leg.webrtc = p.webrtc.is_some();
        // RFC 3264 §6.1: the answer lists the offered formats it accepts, in the offer's
        // numbering; the first voice format the PBX speaks is the one it sends. Opus only
        // when nothing else is offered: G.711 and G.722 cost no encoder and no decoder.
        let speaks = |opus: bool| {
            p.codecs.iter().find_map(|(c, _)| {
                voice_of(c)
                    .filter(|v| (*v == Voice::Opus) == opus)
                    .map(|kind| (c.clone(), kind))
            })
        };
        let (voice, kind) = speaks(false)
            .or_else(|| speaks(true))
            .ok_or(NegotiationError::NoCommonCodec)?;
        let event = p
            .codecs
            .iter()
            .find(|(c, _)| c.is_event_at(kind.clock_rate()))
            .map(|(c, _)| c.clone());
        let local = LocalMedia {
            voice: kind,
            payload_type: voice.pt,
            telephone_event: event.as_ref().map(|e| e.pt),
            // Opus frames are 20 ms whatever the offer says (RFC 7587 §4.2: a receiver takes
            // any frame size; the PBX's prompts are encoded 20 ms at a time).
            ptime: match kind {
                Voice::Opus => Duration::from_millis(20),
                _ => Duration::from_millis(u64::from(p.ptime.unwrap_or(20).clamp(10, 200))),
            },
        };
        let reply: Vec<Codec> = std::iter::once(voice.clone()).chain(event).collect();
        let srtp = p.crypto.as_ref().map(|c| SrtpPair {
            inbound: c.key.clone(),
            outbound: leg.key(c.key.suite, rng),
        });
        let crypto: Vec<(u32, &SrtpKey)> = match (&p.crypto, &srtp) {
            (Some(c), Some(pair)) => vec![(c.tag, &pair.outbound)],
            _ => Vec::new(),
        };
        let direction = Direction::SendRecv.clamp_answer(p.stream.direction);
        let ice = p.webrtc.as_ref().map(|_| leg.ice(rng));
        let setup = p.webrtc.as_ref().map(|r| r.answer_setup());
        let webrtc_plan = match (&p.webrtc, &ice, setup) {
            (Some(r), Some(ice), Some((_, role))) => Some(r.plan(role, ice)),
            _ => None,
        };
        let section = match (&p.webrtc, &ice, setup, &self.dtls_fingerprint) {
            (Some(r), Some(ice), Some((setup, _)), Some(fingerprint)) => Some(w::Section {
                ice,
                fingerprint,
                setup,
                mid: r.mid.as_deref().unwrap_or(w::DEFAULT_MID),
            }),
            _ => None,
        };
        let text = answer_body(leg, &p, &reply, &crypto, direction, section);
        let out = leg.stamp(self.session_id, text);
        let mut lines = p.lines.clone();
        if let Some(line) = lines.get_mut(p.index) {
            *line = Rejected::audio(&p.proto, &reply);
        }
        leg.lines = lines;
        leg.pts.learn(&reply);
        leg.srtp.in_use = Some(srtp.is_some());
        let out_ssrc = leg.out_ssrc(webrtc_plan.is_some(), rng);
        let leg_plan = LegPlan {
            out_stream: out_ssrc.map(|ssrc| {
                Box::new(crate::OutStreamPlan {
                    ssrc,
                    clock_rates: reply.iter().map(|c| (c.pt, c.clock)).collect(),
                })
            }),
            transcode: None,
            remote_rtp: p.stream.rtp,
            remote_rtcp: p.stream.rtcp,
            rtcp_mux: p.rtcp_mux,
            srtp,
            pt_map: Vec::new(),
            direction: p.stream.direction,
            webrtc: webrtc_plan,
        };
        let mut plan = MediaPlan {
            codec: voice.encoding(),
            ..MediaPlan::default()
        };
        match from {
            Side::Caller => plan.caller = leg_plan,
            Side::Callee => plan.callee = leg_plan,
        }
        self.plan = Some(plan.clone());
        Ok((out, plan, local))
    }
}

/// The answer's body: the offer's `m=` lines in place, the audio one with the PBX's port.
fn answer_body(
    leg: &Leg,
    p: &Pending,
    reply: &[Codec],
    crypto: &[(u32, &SrtpKey)],
    direction: Direction,
    webrtc: Option<w::Section<'_>>,
) -> String {
    let sections: Vec<Section<'_>> = p
        .lines
        .iter()
        .enumerate()
        .map(|(i, line)| match i == p.index {
            true => Section::Audio(Audio {
                port: leg.local.rtp_port,
                proto: &p.proto,
                codecs: reply,
                ptime: p.ptime,
                rtcp_mux: p.rtcp_mux,
                crypto,
                direction,
                webrtc,
            }),
            false => Section::Rejected(line),
        })
        .collect();
    body(leg.local.ip, &sections)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::{Encryption, LegPolicy, LocalEndpoint};
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    fn negotiator(encryption: Encryption, tls: bool) -> Negotiator {
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let policy = LegPolicy {
            encryption,
            secure_signaling: tls,
            allow_keys_in_clear: false,
        };
        Negotiator::new(
            LocalEndpoint {
                ip,
                rtp_port: 40000,
            },
            policy,
            LocalEndpoint {
                ip,
                rtp_port: 40002,
            },
            policy,
            7,
        )
    }

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 198.51.100.9\r\ns=-\r\nc=IN IP4 198.51.100.9\r\n\
        t=0 0\r\nm=audio 5004 RTP/AVP 18 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
        a=ptime:30\r\nm=video 5006 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";

    #[test]
    fn a_phone_that_prefers_g722_is_answered_in_g722() {
        let mut n = negotiator(Encryption::Optional, false);
        let offer = OFFER.replace("18 8 0 101", "9 0 101");
        let (sdp, plan, local) = n
            .answer_locally(
                Side::Caller,
                offer.as_bytes(),
                &mut StdRng::seed_from_u64(1),
            )
            .expect("answered");
        let text = String::from_utf8(sdp).expect("utf-8");
        assert!(text.contains("m=audio 40000 RTP/AVP 9 101\r\n"), "{text}");
        assert_eq!((local.voice, local.payload_type), (Voice::G722, 9));
        assert_eq!(plan.codec, "G722/8000");
    }

    #[test]
    fn answers_with_the_first_g711_and_telephone_event_of_the_offer() {
        let mut n = negotiator(Encryption::Optional, false);
        let mut rng = StdRng::seed_from_u64(1);
        let (sdp, plan, local) = n
            .answer_locally(Side::Caller, OFFER.as_bytes(), &mut rng)
            .expect("answered");
        let text = String::from_utf8(sdp).expect("utf-8");
        assert!(text.contains("m=audio 40000 RTP/AVP 8 101\r\n"), "{text}");
        assert!(text.contains("c=IN IP4 192.0.2.1"), "{text}");
        assert!(
            text.contains("m=video 0 "),
            "video refused in place: {text}"
        );
        assert_eq!(
            local,
            LocalMedia {
                voice: Voice::G711(Law::A),
                payload_type: 8,
                telephone_event: Some(101),
                ptime: Duration::from_millis(30),
            }
        );
        assert_eq!(plan.codec, "PCMA/8000");
        assert_eq!(
            plan.caller.remote_rtp,
            Some(SocketAddr::from(([198, 51, 100, 9], 5004)))
        );
        assert_eq!(plan.callee, LegPlan::default());
        assert!(plan.caller.srtp.is_none());
    }

    #[test]
    fn an_opus_only_offer_is_answered_in_opus_and_g711_is_preferred_when_offered() {
        let opus_only = OFFER
            .replace("18 8 0 101", "111 110")
            .replace(
                "a=rtpmap:101 telephone-event/8000\r\n",
                "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
                 a=rtpmap:110 telephone-event/48000\r\n",
            )
            .replace("a=ptime:30\r\n", "");
        let mut n = negotiator(Encryption::Optional, false);
        let (sdp, plan, local) = n
            .answer_locally(
                Side::Caller,
                opus_only.as_bytes(),
                &mut StdRng::seed_from_u64(1),
            )
            .expect("answered");
        let text = String::from_utf8(sdp).expect("utf-8");
        assert!(text.contains("m=audio 40000 RTP/AVP 111 110\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:111 opus/48000/2"), "{text}");
        assert!(
            text.contains("a=rtpmap:110 telephone-event/48000"),
            "{text}"
        );
        assert_eq!(
            (local.voice, local.payload_type, local.telephone_event),
            (Voice::Opus, 111, Some(110))
        );
        assert_eq!(local.event_clock(), 48_000);
        assert_eq!(plan.codec, "opus/48000/2");

        // Opus first, PCMU after: PCMU, no transcoding of the PBX's own audio needed.
        let both = opus_only
            .replace("111 110", "111 0 110")
            .replace(
                "a=rtpmap:110 telephone-event/48000\r\n",
                "a=rtpmap:110 telephone-event/48000\r\na=rtpmap:101 telephone-event/8000\r\n",
            )
            .replace("111 0 110", "111 0 110 101");
        let mut n = negotiator(Encryption::Optional, false);
        let (_, _, local) = n
            .answer_locally(Side::Caller, both.as_bytes(), &mut StdRng::seed_from_u64(1))
            .expect("answered");
        assert_eq!(
            (local.voice, local.payload_type, local.telephone_event),
            (Voice::G711(Law::Mu), 0, Some(101))
        );
    }

    #[test]
    fn an_offer_without_a_codec_of_the_pbx_is_refused() {
        let mut n = negotiator(Encryption::Optional, false);
        let offer = OFFER.replace("18 8 0 101", "18 101");
        let got = n.answer_locally(
            Side::Caller,
            offer.as_bytes(),
            &mut StdRng::seed_from_u64(1),
        );
        assert!(matches!(got, Err(NegotiationError::NoCommonCodec)));
    }

    #[test]
    fn an_srtp_offer_over_tls_is_answered_with_the_pbx_key() {
        let mut n = negotiator(Encryption::Optional, true);
        let offer = OFFER.replace("RTP/AVP 18 8 0 101", "RTP/SAVP 0 101").replace(
            "a=ptime:30\r\n",
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n",
        );
        let (sdp, plan, local) = n
            .answer_locally(
                Side::Caller,
                offer.as_bytes(),
                &mut StdRng::seed_from_u64(1),
            )
            .expect("answered");
        let text = String::from_utf8(sdp).expect("utf-8");
        assert!(text.contains("m=audio 40000 RTP/SAVP 0 101"), "{text}");
        assert!(
            text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
            "{text}"
        );
        assert!(plan.caller.srtp.is_some());
        assert_eq!(local.voice, Voice::G711(Law::Mu));
        // A re-offer (hold) keeps the PBX's key: the relay keeps its SRTP context.
        let hold = offer.replace("m=audio 5004", "a=sendonly\r\nm=audio 5004");
        let (again, plan2, _) = n
            .answer_locally(Side::Caller, hold.as_bytes(), &mut StdRng::seed_from_u64(2))
            .expect("answered");
        assert_eq!(
            plan.caller.srtp.map(|s| s.outbound),
            plan2.caller.srtp.map(|s| s.outbound)
        );
        assert!(String::from_utf8_lossy(&again).contains("a=recvonly"));
    }
}
