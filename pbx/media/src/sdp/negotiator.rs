//! The per-call offer/answer state of the B2BUA (RFC 3264).

use super::codec::{Codec, PtSpace, audio_codecs, intersect};
use super::crypto::{OFFERED, generate, parse_crypto};
use super::opus_leg::OpusLeg;
use super::parse::parse;
use super::pending::{FirstOffer, LegSrtp, Pending, Stream, offer_srtp};
use super::webrtc::{self as w, remote};
use super::write::{Audio, Rejected, Section, body, with_origin};
use super::{Encryption, LegPolicy, LocalEndpoint, NegotiationError};

mod local;

use crate::transcode::{EventPts, Transcoding};
use crate::voice::Voice;
use crate::{
    CryptoSuite, Fingerprint, IceCredentials, LegPlan, MediaPlan, OutStreamPlan, Setup, Side,
    SrtpKey, SrtpPair,
};
pub use local::LocalMedia;

/// The SDP side of one bridged call: turns each leg's offers and answers into the PBX's own
/// SDP for the other leg, and each completed exchange into a [`MediaPlan`].
///
/// One exchange at a time (RFC 3264 §4): [`offer`](Self::offer) from one leg, then
/// [`answer`](Self::answer) from the other, or [`cancel_offer`](Self::cancel_offer) when the
/// other leg refused the offer (a failed re-INVITE leaves the previous plan in force).
#[derive(Clone, Debug)]
pub struct Negotiator {
    session_id: u64,
    legs: [Leg; 2],
    pending: Option<Pending>,
    plan: Option<MediaPlan>,
    /// The PBX's DTLS certificate fingerprint: WebRTC legs are possible.
    dtls_fingerprint: Option<Fingerprint>,
    /// The PBX converts DTMF between RFC 4733 and SIP INFO on this call: an offerer keeps
    /// `telephone-event` in its answer even when the answerer has none.
    dtmf_interworking: bool,
    /// Each leg's `telephone-event/8000` payload type after the last exchange.
    events: [Option<u8>; 2],
    /// The leg the PBX offered `telephone-event` of its own (the offerer had none), with the
    /// payload type offered.
    own_event: Option<(Side, u8)>,
    /// The leg that speaks only Opus while the call is transcoded: re-offers from the other
    /// leg are turned into its formats (`Pending::offer_opus_leg`).
    opus_leg: Option<OpusLeg>,
}

/// What the PBX keeps about its SDP session with one leg.
#[derive(Clone)]
struct Leg {
    local: LocalEndpoint,
    policy: LegPolicy,
    /// `o=` version of the last SDP sent to this leg (0: none yet).
    version: u64,
    /// The last SDP sent to this leg, after its `o=` line.
    last_body: Option<String>,
    /// The `m=` lines of the last SDP sent to this leg: RFC 3264 §8 lets a later one add
    /// lines but never drop one, so a shorter offer is padded with these at port 0.
    lines: Vec<Rejected>,
    /// The PBX's SDES keys for this leg, one per suite, made once: re-offers (hold, resume,
    /// refresh) keep them, so the relay keeps its SRTP contexts (RFC 4568 §7.1.4 allows it).
    keys: Vec<SrtpKey>,
    pts: PtSpace,
    srtp: LegSrtp,
    /// The PBX's ICE credentials towards this leg, made once: a re-offer that kept them is
    /// not an ICE restart (RFC 8839 §4.4.1.1.1).
    ice: Option<IceCredentials>,
    /// The leg speaks WebRTC: offered `UDP/TLS/RTP/SAVPF` by the PBX, or offered it.
    webrtc: bool,
    /// The PBX's SSRC towards this leg when it gets one continuous stream (WebRTC legs),
    /// drawn once so every plan of the call keeps it.
    out_ssrc: Option<u32>,
}

// `last_body` holds the PBX's keys in its `a=crypto` lines: never printed (ARCHITECTURE.md
// rule 11); `SrtpKey`'s own Debug hides the rest.
impl std::fmt::Debug for Leg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leg")
            .field("local", &self.local)
            .field("policy", &self.policy)
            .field("version", &self.version)
            .field("keys", &self.keys)
            .field("srtp", &self.srtp)
            .finish_non_exhaustive()
    }
}

impl Leg {
    fn new(local: LocalEndpoint, policy: LegPolicy) -> Leg {
        Leg {
            local,
            policy,
            version: 0,
            last_body: None,
            lines: Vec::new(),
            keys: Vec::new(),
            pts: PtSpace::default(),
            srtp: LegSrtp::default(),
            ice: None,
            webrtc: false,
            out_ssrc: None,
        }
    }

    /// RFC 3550 §8: a random SSRC, the same for the whole call. Only WebRTC legs get one
    /// (docs/decisions.md "One outgoing stream"): plain phones keep today's pass-through.
    fn out_ssrc(&mut self, webrtc: bool, rng: &mut impl rand::RngCore) -> Option<u32> {
        if !webrtc {
            return None;
        }
        Some(*self.out_ssrc.get_or_insert_with(|| rng.next_u32()))
    }

    fn ice(&mut self, rng: &mut impl rand::RngCore) -> IceCredentials {
        self.ice.get_or_insert_with(|| w::credentials(rng)).clone()
    }

    fn key(&mut self, suite: CryptoSuite, rng: &mut impl rand::RngCore) -> SrtpKey {
        if let Some(k) = self.keys.iter().find(|k| k.suite == suite) {
            return k.clone();
        }
        let k = generate(suite, rng);
        self.keys.push(k.clone());
        k
    }

    /// The full SDP with this leg's `o=` line. RFC 3264 §8: the version goes up by one for
    /// every changed description, and an unchanged one keeps its version (a session refresh).
    fn stamp(&mut self, session_id: u64, body: String) -> Vec<u8> {
        if self.last_body.as_ref() != Some(&body) {
            self.version += 1;
        }
        let sdp = with_origin(session_id, self.version, self.local.ip, &body);
        self.last_body = Some(body);
        sdp
    }
}

impl Negotiator {
    pub fn new(
        caller: LocalEndpoint,
        caller_policy: LegPolicy,
        callee: LocalEndpoint,
        callee_policy: LegPolicy,
        session_id: u64,
    ) -> Negotiator {
        Negotiator {
            session_id,
            legs: [
                Leg::new(caller, caller_policy),
                Leg::new(callee, callee_policy),
            ],
            pending: None,
            plan: None,
            dtls_fingerprint: None,
            dtmf_interworking: false,
            events: [None, None],
            own_event: None,
            opus_leg: None,
        }
    }

    /// The PBX converts DTMF on this call (one leg sends SIP INFO, the other RFC 4733): the
    /// answer to an offerer that offered `telephone-event/8000` keeps it when the answerer
    /// has none, and an offer without it gets it added for the other leg, so a phone sends
    /// its keys as RFC 4733 events for the PBX to read, and receives the ones the PBX makes
    /// from the other leg's INFOs.
    pub fn with_dtmf_interworking(mut self) -> Negotiator {
        self.dtmf_interworking = true;
        self
    }

    /// `side`'s RFC 4733 `telephone-event/8000` payload type as agreed in the last completed
    /// exchange (its own number for it); `None` when its SDP has none.
    pub fn telephone_event(&self, side: Side) -> Option<u8> {
        self.events[side.index()]
    }

    /// The PBX has a DTLS certificate with this fingerprint: WebRTC offers are answered, and
    /// legs marked with [`Negotiator::with_webrtc_leg`] are offered WebRTC.
    pub fn with_webrtc(mut self, fingerprint: Fingerprint) -> Negotiator {
        self.dtls_fingerprint = Some(fingerprint);
        self
    }

    /// Offers to `side` are WebRTC (`UDP/TLS/RTP/SAVPF`, ICE-lite, DTLS `actpass`): the
    /// device is a browser (it registered over WebSocket). Needs [`Negotiator::with_webrtc`].
    pub fn with_webrtc_leg(mut self, side: Side) -> Negotiator {
        self.legs[side.index()].webrtc = self.dtls_fingerprint.is_some();
        self
    }

    /// How the first offer to `side` treats an `Optional` policy (default
    /// [`FirstOffer::Mirror`]).
    pub fn with_first_offer(mut self, side: Side, first: FirstOffer) -> Negotiator {
        self.legs[side.index()].srtp.first_offer = first;
        self
    }

    /// The negotiator of a new branch to `side`, for a call whose other leg the PBX already
    /// answered: that leg's session (its SDP versions, payload types and SRTP keys) goes on
    /// unchanged, so once a device answers, the relay can carry the call without a new offer
    /// to that leg; `side` starts fresh with `local` and `policy`.
    pub fn branch(&self, side: Side, local: LocalEndpoint, policy: LegPolicy) -> Negotiator {
        let mut branch = self.clone();
        branch.legs[side.index()] = Leg::new(local, policy);
        branch.pending = None;
        branch.opus_leg = self.opus_leg.clone().filter(|o| o.side != side);
        branch
    }

    /// Whether the outstanding offer the PBX sent carries SRTP (RTP/SAVP with its keys).
    pub fn pending_offer_is_srtp(&self) -> bool {
        self.pending.as_ref().is_some_and(|p| p.srtp_on)
    }

    /// The plan of the last completed exchange.
    pub fn plan(&self) -> Option<&MediaPlan> {
        self.plan.as_ref()
    }

    /// The leg whose offer awaits the other leg's answer.
    pub fn pending_offer_from(&self) -> Option<Side> {
        self.pending.as_ref().map(|p| p.from)
    }

    /// Forgets the outstanding offer: the other leg rejected it (RFC 3264 §8: the session
    /// stays as it was). The `o=` versions already sent stay counted.
    pub fn cancel_offer(&mut self) {
        self.pending = None;
    }

    /// An SDP offer from `from` (initial INVITE, re-INVITE, UPDATE, or a 2xx of a late-offer
    /// INVITE). Returns the offer the PBX sends the other leg.
    pub fn offer(
        &mut self,
        from: Side,
        sdp: &[u8],
        rng: &mut impl rand::RngCore,
    ) -> Result<Vec<u8>, NegotiationError> {
        self.offer_only(from, sdp, None, rng)
    }

    /// As [`Negotiator::offer`], passing on only the offered formats with these payload
    /// types (the one the PBX agreed on with `from` when it answered it itself).
    pub fn offer_only(
        &mut self,
        from: Side,
        sdp: &[u8],
        only: Option<&[u8]>,
        rng: &mut impl rand::RngCore,
    ) -> Result<Vec<u8>, NegotiationError> {
        if self.pending.is_some() {
            return Err(NegotiationError::OfferPending);
        }
        let sdp = parse(sdp)?;
        let to = from.other();
        let webrtc_ok = self.dtls_fingerprint.is_some();
        let mut p = Pending::read(from, &sdp, &self.legs[from.index()].policy, webrtc_ok)?;
        self.legs[from.index()].webrtc = p.webrtc.is_some();
        if let Some(only) = only {
            p.codecs.retain(|(c, _)| only.contains(&c.pt));
        }
        let to_leg = &self.legs[to.index()];
        let to_webrtc = to_leg.webrtc;
        match self.opus_leg.as_ref().filter(|o| o.side == to) {
            // RFC 3264 §8: the Opus leg keeps its Opus across the phone's re-offers.
            Some(opus_leg) => p.offer_opus_leg(opus_leg),
            None if !to_webrtc => p.add_transcoded(),
            None => {}
        }
        let offerer_encrypted = p.crypto.is_some() || p.webrtc.is_some();
        p.srtp_on = match to_webrtc {
            // DTLS-SRTP: no SDES keys in the SDP.
            true => false,
            false => offer_srtp(to, &to_leg.policy, to_leg.srtp, offerer_encrypted)?,
        };
        let leg = &mut self.legs[to.index()];
        let to_ice = to_webrtc.then(|| leg.ice(rng));

        // The offerer's formats under the numbers this leg knows them by (RFC 3264 §8.3.2).
        let mut taken = Vec::new();
        let mut sent = Vec::new();
        p.codecs.retain_mut(|(codec, to_pt)| {
            let Some(pt) = leg.pts.choose(codec, &taken) else {
                return false;
            };
            taken.push(pt);
            *to_pt = pt;
            sent.push(Codec {
                pt,
                ..codec.clone()
            });
            true
        });
        self.own_event = None;
        if self.dtmf_interworking && !p.codecs.iter().any(|(c, _)| is_event(c)) {
            let event = Codec {
                pt: 101,
                name: "telephone-event".to_string(),
                clock: 8000,
                channels: 1,
                fmtp: Some("0-16".to_string()),
            };
            if let Some(pt) = leg.pts.choose(&event, &taken) {
                sent.push(Codec { pt, ..event });
                self.own_event = Some((to, pt));
            }
        }
        let keys: Vec<(u32, SrtpKey)> = match p.srtp_on {
            true => OFFERED
                .iter()
                .map(|&(tag, s)| (tag, leg.key(s, rng)))
                .collect(),
            false => Vec::new(),
        };
        let crypto: Vec<(u32, &SrtpKey)> = keys.iter().map(|(t, k)| (*t, k)).collect();
        let proto = match (to_webrtc, p.srtp_on) {
            (true, _) => w::PROTO,
            (false, true) => "RTP/SAVP",
            (false, false) => "RTP/AVP",
        };
        let audio = Rejected::audio(proto, &sent);
        let fingerprint = self.dtls_fingerprint.as_ref();
        // RFC 5763 §5: the offerer says actpass and lets the answerer choose.
        let webrtc = match (&to_ice, fingerprint) {
            (Some(ice), Some(fingerprint)) => Some(w::Section {
                ice,
                fingerprint,
                setup: Setup::ActPass,
                mid: w::DEFAULT_MID,
            }),
            _ => None,
        };

        let mut lines = p.lines.clone();
        lines.extend(leg.lines.iter().skip(lines.len()).cloned());
        let sections: Vec<Section<'_>> = lines
            .iter()
            .enumerate()
            .map(|(i, line)| match i == p.index {
                true => Section::Audio(Audio {
                    port: leg.local.rtp_port,
                    proto,
                    codecs: &sent,
                    ptime: p.ptime,
                    rtcp_mux: p.rtcp_mux || to_webrtc,
                    crypto: &crypto,
                    direction: p.stream.direction,
                    webrtc,
                }),
                false => Section::Rejected(line),
            })
            .collect();
        let text = body(leg.local.ip, &sections);
        if let Some(line) = lines.get_mut(p.index) {
            *line = audio;
        }
        leg.lines = lines;
        leg.pts.learn(&sent);
        let out = leg.stamp(self.session_id, text);

        // The offerer's own formats: the ones the PBX added for the other leg are not its.
        let own: Vec<Codec> = p
            .codecs
            .iter()
            .filter(|(c, _)| !p.synthetic.contains(&c.pt))
            .map(|(c, _)| c.clone())
            .chain(
                p.toward_opus
                    .iter()
                    .flat_map(|t| std::iter::once(t.voice.clone()).chain(t.event.clone())),
            )
            .collect();
        self.legs[from.index()].pts.learn(&own);
        self.pending = Some(p);
        Ok(out)
    }

    /// The answer from the leg the PBX last sent an offer to. Returns the answer for the
    /// offerer and the plan for the relay. Any error but
    /// [`UnexpectedAnswer`](NegotiationError::UnexpectedAnswer) ends the exchange.
    pub fn answer(
        &mut self,
        from: Side,
        sdp: &[u8],
        rng: &mut impl rand::RngCore,
    ) -> Result<(Vec<u8>, MediaPlan), NegotiationError> {
        let p = self
            .pending
            .take_if(|p| p.from == from.other())
            .ok_or(NegotiationError::UnexpectedAnswer)?;
        let offerer = p.from;
        let sdp = parse(sdp)?;
        // RFC 3264 §6: the answer's m-lines match the offer's; port 0 rejects the stream.
        let m = sdp
            .media
            .get(p.index)
            .filter(|m| m.port != 0 && m.is_audio())
            .ok_or(NegotiationError::NoCommonCodec)?;

        let answered = audio_codecs(m);
        let all_agreed = intersect(&p.codecs, &answered);
        // A format both legs speak wins; one the PBX added (`Pending::add_transcoded`) means
        // transcoding the offerer's Opus to it.
        let voice = |synthetic: bool| {
            all_agreed
                .iter()
                .find(|(c, _, _)| !c.is_auxiliary() && p.synthetic.contains(&c.pt) == synthetic)
        };
        // The Opus leg answered the phone's re-offer with its Opus (`Pending::offer_opus_leg`):
        // the transcoder stays, on the answerer's side. It sends under the number offered.
        let mut reverse: Option<(Codec, Transcoding)> = None;
        let (first, mut transcode) = match (voice(false), voice(true), &p.opus, &p.toward_opus) {
            (Some((c, _, _)), _, _, _) => (*c, None),
            (None, Some((c, sent, _)), None, Some(toward)) => {
                let t = Transcoding {
                    opus_pt: *sent,
                    voice: toward.kind,
                    voice_pt: toward.voice.pt,
                    events: None,
                };
                reverse = Some(((*c).clone(), t));
                (&toward.voice, None)
            }
            (None, Some((c, sent, _)), Some(opus), _) => {
                let voice =
                    Voice::from_payload_type(c.pt).ok_or(NegotiationError::NoCommonCodec)?;
                let t = Transcoding {
                    opus_pt: opus.pt,
                    voice,
                    voice_pt: *sent,
                    events: None,
                };
                (*c, Some((opus.clone(), t)))
            }
            _ => return Err(NegotiationError::NoCommonCodec),
        };
        // The phone agreed the 8 kHz event the PBX added for an offerer that has only the
        // 48 kHz one (`Pending::add_transcoded_event`): the transcoder converts them, so each
        // leg keeps the clock it offered or answered.
        let mapped_event = match (&mut transcode, &p.opus_event) {
            (Some((_, t)), Some(opus_event)) => all_agreed
                .iter()
                .find(|(c, _, _)| is_event(c) && p.synthetic.contains(&c.pt))
                .map(|(c, sent, a)| {
                    t.events = Some(EventPts {
                        opus_pt: opus_event.pt,
                        voice_in: *sent,
                        voice_out: c.pt,
                    });
                    (opus_event.clone(), a.pt)
                }),
            _ => None,
        };
        // The same for the phone's 8 kHz events turned into the Opus leg's 48 kHz ones: the
        // phone sends and receives them under its own number (the PBX answers with it).
        let toward_event = p.toward_opus.as_ref().and_then(|t| t.event.as_ref());
        let reverse_event = match (&mut reverse, toward_event) {
            (Some((_, t)), Some(event)) => all_agreed
                .iter()
                .find(|(c, _, _)| c.is_event_at(48_000) && p.synthetic.contains(&c.pt))
                .map(|(_, sent, _)| {
                    t.events = Some(EventPts {
                        opus_pt: *sent,
                        voice_in: event.pt,
                        voice_out: event.pt,
                    });
                    event.clone()
                }),
            _ => None,
        };
        let codec = match (&transcode, &reverse) {
            (Some((opus, _)), _) | (None, Some((opus, _))) => {
                format!("{} <-> {}", opus.encoding(), first.encoding())
            }
            (None, None) => first.encoding(),
        };
        // What the offerer hears of: its own formats only.
        let agreed: Vec<_> = all_agreed
            .iter()
            .filter(|(c, _, _)| !p.synthetic.contains(&c.pt))
            .cloned()
            .collect();
        // The PBX offered this leg WebRTC: its answer must carry ICE and a fingerprint.
        let ans_webrtc = match self.legs[from.index()].webrtc {
            true => Some(remote(&sdp, m).ok_or(NegotiationError::NoDtls(from))?),
            false => None,
        };
        let fingerprint = self.dtls_fingerprint.clone();
        let keep_events = self.dtmf_interworking;

        let [caller, callee] = &mut self.legs;
        let (off_leg, ans_leg) = match offerer {
            Side::Caller => (caller, callee),
            Side::Callee => (callee, caller),
        };

        // An `optional` leg offered SRTP that answers plain RTP/AVP without keys is taken as
        // plain: the offer was best-effort SRTP (RFC 4568 §7.5), and refusing the call would
        // only make a plain re-offer the far end answers the same way (RFC 3264 §6).
        let plain_answer = !m.is_savp()
            && m.crypto.is_empty()
            && ans_leg.policy.encryption == Encryption::Optional;
        // RFC 4568 §6.1: the answer's crypto line has the tag and suite of one the PBX offered.
        let ans_srtp = match p.srtp_on && !plain_answer {
            true => {
                let c = m
                    .crypto
                    .iter()
                    .filter_map(|l| parse_crypto(l))
                    .find(|c| OFFERED.contains(&(c.tag, c.key.suite)))
                    .ok_or(NegotiationError::NoAcceptableCrypto(from))?;
                let outbound = ans_leg.key(c.key.suite, rng);
                Some(SrtpPair {
                    inbound: c.key,
                    outbound,
                })
            }
            false => None,
        };
        let off_srtp = p.crypto.as_ref().map(|c| SrtpPair {
            inbound: c.key.clone(),
            outbound: off_leg.key(c.key.suite, rng),
        });
        let ans_mux = (p.rtcp_mux && m.rtcp_mux) || ans_webrtc.is_some();
        let ans_webrtc_plan = ans_webrtc
            .as_ref()
            .map(|r| r.plan(r.role_after_answer(), &ans_leg.ice(rng)));
        // The offerer is WebRTC: the PBX answers with its own ICE-lite credentials and DTLS.
        let off_ice = p.webrtc.as_ref().map(|_| off_leg.ice(rng));
        let off_setup = p.webrtc.as_ref().map(|r| r.answer_setup());
        let off_webrtc_plan = match (&p.webrtc, &off_ice, off_setup) {
            (Some(r), Some(ice), Some((_, role))) => Some(r.plan(role, ice)),
            _ => None,
        };
        let off_section = match (&p.webrtc, &off_ice, off_setup, &fingerprint) {
            (Some(r), Some(ice), Some((setup, _)), Some(fingerprint)) => Some(w::Section {
                ice,
                fingerprint,
                setup,
                mid: r.mid.as_deref().unwrap_or(w::DEFAULT_MID),
            }),
            _ => None,
        };
        let mut ans_stream = Stream::of(&sdp, m, ans_mux);
        ans_stream.direction = ans_stream.direction.clamp_answer(p.stream.direction);

        // The answer to the offerer: the agreed formats under its own numbers, with the
        // answerer's format parameters (they describe what the answerer receives).
        let mut reply: Vec<Codec> = transcode
            .iter()
            .map(|(opus, _)| opus.clone())
            .chain(reverse.iter().map(|_| first.clone()))
            .chain(agreed.iter().map(|(c, _, a)| Codec {
                fmtp: a.fmtp.clone(),
                ..(*c).clone()
            }))
            .collect();
        if let Some((opus_event, _)) = &mapped_event
            && !reply.iter().any(|c| c.pt == opus_event.pt)
        {
            reply.push(opus_event.clone());
        }
        if let Some(event) = &reverse_event
            && !reply.iter().any(|c| c.pt == event.pt)
        {
            reply.push(event.clone());
        }
        let agreed_event = agreed.iter().find(|(c, _, _)| is_event(c));
        let own_event = self
            .own_event
            .take()
            .filter(|(side, _)| *side == from)
            .and_then(|_| answered.iter().find(|a| is_event(a)).map(|a| a.pt));
        let ans_event = agreed_event
            .map(|(_, _, a)| a.pt)
            .or(own_event)
            .or(mapped_event.as_ref().map(|(_, pt)| *pt));
        let mut off_event = agreed_event
            .map(|(c, _, _)| c.pt)
            .or(reverse_event.as_ref().map(|e| e.pt));
        if keep_events
            && off_event.is_none()
            && let Some((c, _)) = p
                .codecs
                .iter()
                .find(|(c, _)| is_event(c) && !p.synthetic.contains(&c.pt))
        {
            // The PBX itself is the far end of this leg's events (no `pt_map` entry: the
            // answerer has no number for them). Only the offerer's own: the one the PBX added
            // for a transcoded phone is no format of the offerer's (RFC 3264 §6.1).
            reply.push(c.clone());
            off_event = Some(c.pt);
        }
        let crypto: Vec<(u32, &SrtpKey)> = match (&p.crypto, &off_srtp) {
            (Some(c), Some(pair)) => vec![(c.tag, &pair.outbound)],
            _ => Vec::new(),
        };
        let sections: Vec<Section<'_>> = p
            .lines
            .iter()
            .enumerate()
            .map(|(i, line)| match i == p.index {
                true => Section::Audio(Audio {
                    port: off_leg.local.rtp_port,
                    proto: &p.proto,
                    codecs: &reply,
                    ptime: m.ptime,
                    rtcp_mux: p.rtcp_mux,
                    crypto: &crypto,
                    direction: ans_stream.direction,
                    webrtc: off_section,
                }),
                false => Section::Rejected(line),
            })
            .collect();
        let text = body(off_leg.local.ip, &sections);
        let out = off_leg.stamp(self.session_id, text);
        let mut lines = p.lines.clone();
        if let Some(line) = lines.get_mut(p.index) {
            *line = Rejected::audio(&p.proto, &reply);
        }
        off_leg.lines = lines;
        ans_leg.pts.learn(&answered);
        off_leg.srtp.in_use = Some(off_srtp.is_some());
        ans_leg.srtp.in_use = Some(ans_srtp.is_some());

        // Packets to the offerer carry the numbers the PBX offered the answerer; packets to
        // the answerer carry the offerer's numbers (the PBX answered with them).
        let differing = |pairs: Vec<(u8, u8)>| pairs.into_iter().filter(|(a, b)| a != b).collect();
        let off_out = off_leg.out_ssrc(off_webrtc_plan.is_some(), rng);
        let ans_out = ans_leg.out_ssrc(ans_webrtc_plan.is_some(), rng);
        let off_plan = LegPlan {
            out_stream: off_out.map(|ssrc| {
                Box::new(OutStreamPlan {
                    ssrc,
                    clock_rates: reply.iter().map(|c| (c.pt, c.clock)).collect(),
                })
            }),
            transcode: transcode.as_ref().map(|(_, t)| *t),
            remote_rtp: p.stream.rtp,
            remote_rtcp: p.stream.rtcp,
            rtcp_mux: p.rtcp_mux,
            srtp: off_srtp,
            pt_map: differing(agreed.iter().map(|(c, sent, _)| (*sent, c.pt)).collect()),
            direction: p.stream.direction,
            webrtc: off_webrtc_plan,
        };
        let ans_plan = LegPlan {
            out_stream: ans_out.map(|ssrc| {
                Box::new(OutStreamPlan {
                    ssrc,
                    clock_rates: all_agreed.iter().map(|(_, _, a)| (a.pt, a.clock)).collect(),
                })
            }),
            transcode: reverse.as_ref().map(|(_, t)| *t),
            remote_rtp: ans_stream.rtp,
            remote_rtcp: ans_stream.rtcp,
            rtcp_mux: ans_mux,
            srtp: ans_srtp,
            // The transcoder writes the Opus leg's formats under the numbers offered to it.
            pt_map: differing(
                all_agreed
                    .iter()
                    .map(
                        |(c, sent, a)| match reverse.is_some() && p.synthetic.contains(&c.pt) {
                            true => (*sent, a.pt),
                            false => (c.pt, a.pt),
                        },
                    )
                    .collect(),
            ),
            direction: ans_stream.direction,
            webrtc: ans_webrtc_plan,
        };
        let (caller, callee) = match offerer {
            Side::Caller => (off_plan, ans_plan),
            Side::Callee => (ans_plan, off_plan),
        };
        self.events[offerer.index()] = off_event;
        self.events[from.index()] = ans_event;
        self.opus_leg = match (&transcode, &reverse) {
            (Some((opus, _)), _) => Some(OpusLeg {
                side: offerer,
                opus: opus.clone(),
                event: p.opus_event.clone(),
            }),
            (None, Some(_)) => self.opus_leg.take(),
            (None, None) => None,
        };
        let plan = MediaPlan {
            caller,
            callee,
            codec,
        };
        self.plan = Some(plan.clone());
        Ok((out, plan))
    }
}

/// RFC 4733 §7.1.1: `telephone-event`, here at the 8000 Hz clock of the voice codecs the PBX
/// reads and writes events for.
fn is_event(codec: &Codec) -> bool {
    codec.is_event_at(8000)
}
