//! The per-call RTP/RTCP bridge, sans-IO.
//!
//! The shell owns two PBX sockets per leg (RTP and RTCP; with rtcp-mux only the first is
//! used) and hands every datagram to [`Bridge::handle_packet`], which transforms it in place
//! and says where to send it. The bridge:
//!
//! - **latches** (RFC 4961 symmetric RTP, "comedia"): a leg's address for each socket is
//!   learnt from where its packets come from; the PBX then sends to it there instead of to
//!   the SDP address (which is often a private address behind NAT), and drops packets from
//!   anywhere else. On an SRTP leg the first authenticated packet latches; on a plain leg
//!   the SDP address latches at once and any other source only after a probation of
//!   consecutive packets (`latch.rs`, strict RTP against RTP bleed).
//! - **demultiplexes** RTP and RTCP on one port (RFC 5761 §4).
//! - **rewrites payload types** in place (the legs may have negotiated different numbers for
//!   the same codec), keeping marker, sequence number, timestamp and SSRC.
//! - **decrypts and encrypts SRTP/SRTCP** (RFC 3711) with SDES keys (RFC 4568); a packet that
//!   fails authentication is counted and never relayed.
//! - keeps **counters** and the time of the last media for the RTP timeout.
//! - gives a WebRTC leg **one outgoing stream** under its own SSRC (`rewrite.rs`), and
//!   **transcodes** Opus ↔ G.711/G.722 when the plan says so (`crate::transcode`).
//!
//! Nothing is allocated per plain packet. The SRTP path allocates one buffer per packet
//! because `rtc-srtp` only returns `BytesMut` (see `srtp.rs`).

mod latch;
mod leg;
pub(crate) mod packet;
mod rewrite;
mod srtp;
mod stats;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::transcode::{TranscodeError, Transcoder};
use crate::{MediaPlan, Side, SrtpPair};
use leg::Leg;
pub(crate) use packet::Kind;
use rewrite::Source;
use srtp::{LegSrtp, SrtpFailure};

use latch::Arrival;
pub use latch::{LatchPolicy, MAX_CANDIDATES, StrictRtp};
pub use stats::{BridgeStats, DropReason, Flow};

/// Which of a leg's two PBX sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Component {
    /// The RTP socket (even port), which also carries RTCP with rtcp-mux.
    Rtp,
    /// The RTCP socket (RTP port + 1, RFC 3550 §11).
    Rtcp,
}

impl Component {
    pub fn index(self) -> usize {
        match self {
            Component::Rtp => 0,
            Component::Rtcp => 1,
        }
    }
}

/// What to do with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// Send `buf[..len]` from `side`'s `component` socket to `to`.
    Forward {
        side: Side,
        component: Component,
        to: SocketAddr,
        len: usize,
    },
    /// Do not send anything; already counted.
    Drop(DropReason),
    /// Taken by the PBX's own endpoints of a [`crate::session::MediaSession`] (a recorder, a
    /// DTMF detector) and not relayed: nothing to send, and not a drop.
    Consumed,
    /// Arrived before the [`crate::session::MediaSession`]'s first plan and kept: it is
    /// handled when the plan comes, and what it makes comes out of `poll_transmit`.
    Held,
}

/// A datagram [`Bridge::receive`] accepted: `buf[..len]` now holds the plain packet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Received {
    pub(crate) kind: Kind,
    pub(crate) len: usize,
}

/// A plan the bridge cannot apply. The bridge keeps its previous plan.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("SRTP key of the {side:?} leg is {got} bytes, {suite} needs {expected}")]
    KeyLength {
        side: Side,
        suite: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("SRTP context for the {side:?} leg: {reason}")]
    Srtp { side: Side, reason: String },
    #[error("transcoder: {0}")]
    Transcode(#[from] TranscodeError),
}

/// The relay of one call.
pub struct Bridge {
    /// Indexed by [`Side::index`]; `None` until the first plan.
    legs: Option<[Leg; 2]>,
    on_hold: bool,
    /// Since when the media timeout counts when no media came after it: the first plan, or
    /// the end of a hold (silence on hold is not a dead call, and must not count after it).
    watch_since: Instant,
    last_media: Option<Instant>,
    stats: BridgeStats,
    /// Opus on one leg, G.711/G.722 on the other: the leg that speaks Opus and the stage.
    transcoder: Option<(Side, Box<Transcoder>)>,
    /// How plain RTP legs latch.
    latching: LatchPolicy,
}

impl Bridge {
    /// A bridge with no plan: it drops everything until [`Bridge::apply`].
    pub fn new(now: Instant) -> Bridge {
        Bridge {
            legs: None,
            on_hold: false,
            watch_since: now,
            last_media: None,
            stats: BridgeStats::default(),
            transcoder: None,
            latching: LatchPolicy::default(),
        }
    }

    /// How plain RTP legs latch from now on (default: strict, see `latch.rs`).
    pub fn set_latching(&mut self, policy: LatchPolicy) {
        self.latching = policy;
    }

    /// Whether a plan was applied (before, every datagram is [`DropReason::NoPlan`]).
    pub(crate) fn has_plan(&self) -> bool {
        self.legs.is_some()
    }

    /// Applies the outcome of a completed offer/answer. Latched addresses and SRTP contexts
    /// carry over where the plan did not change them (see `Leg::from_plan`). On error nothing
    /// changes.
    pub fn apply(&mut self, now: Instant, plan: &MediaPlan) -> Result<(), RelayError> {
        // New SRTP contexts first: a bad key fails here, before anything is touched.
        let mut fresh: [Option<LegSrtp>; 2] = [None, None];
        for side in [Side::Caller, Side::Callee] {
            if let Some(keys) = &plan.leg(side).srtp {
                let prev = self.legs.as_ref().map(|l| &l[side.index()]);
                if Leg::needs_new_srtp(prev, keys) {
                    fresh[side.index()] = Some(LegSrtp::new(side, keys)?);
                }
            }
        }
        // The transcoder (its codec state) stays while the plan keeps the same codecs, under
        // the plan's payload types (a re-offer may renumber them).
        let wanted = [Side::Caller, Side::Callee]
            .into_iter()
            .find_map(|side| plan.leg(side).transcode.map(|t| (side, t)));
        let transcoder = match wanted {
            Some((side, spec)) => {
                match self
                    .transcoder
                    .take_if(|(had, t)| *had == side && t.renumber(spec))
                {
                    Some(kept) => Some(kept),
                    None => Some((side, Box::new(Transcoder::new(spec)?))),
                }
            }
            None => None,
        };
        self.transcoder = transcoder;
        let had_plan = self.legs.is_some();
        let [prev_caller, prev_callee] = match self.legs.take() {
            Some([a, b]) => [Some(a), Some(b)],
            None => [None, None],
        };
        let [fresh_caller, fresh_callee] = fresh;
        self.legs = Some([
            Leg::from_plan(&plan.caller, prev_caller, fresh_caller),
            Leg::from_plan(&plan.callee, prev_callee, fresh_callee),
        ]);
        let on_hold = plan.on_hold();
        if !had_plan || (self.on_hold && !on_hold) {
            self.watch_since = now;
        }
        self.on_hold = on_hold;
        Ok(())
    }

    /// A datagram arrived on the PBX socket of leg `side`/`component` from `source`;
    /// `buf[..len]` holds it and `buf` has room beyond `len` for SRTP tags. Transforms it in
    /// place and says where to send `buf[..len']`.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        side: Side,
        component: Component,
        source: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Verdict {
        let relayed = self
            .receive(now, side, component, source, buf, len)
            .and_then(|got| self.forward(now, side, got, buf));
        match relayed {
            Ok(v) => v,
            Err(reason) => {
                self.note_drop(reason);
                Verdict::Drop(reason)
            }
        }
    }

    /// The first half of [`Bridge::handle_packet`]: checks the datagram against the leg
    /// (kind, socket, latched source), decrypts it in place and latches. On success
    /// `buf[..got.len]` is the plain packet, for the session's endpoints to look at before
    /// it is forwarded. Drops are not counted here (see [`Bridge::note_drop`]).
    #[inline]
    pub(crate) fn receive(
        &mut self,
        now: Instant,
        side: Side,
        component: Component,
        source: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Result<Received, DropReason> {
        let legs = self.legs.as_mut().ok_or(DropReason::NoPlan)?;
        let kind = buf
            .get(..len)
            .and_then(packet::classify)
            .ok_or(DropReason::NotRtp)?;
        // RTCP may arrive on the RTP socket (RFC 5761 §4, whether or not rtcp-mux was agreed:
        // payload types 64-95 are never RTP), but never RTP on the RTCP socket.
        if component == Component::Rtcp && kind == Kind::Rtp {
            return Err(DropReason::NotRtp);
        }
        let from = &mut legs[side.index()];
        if from.awaiting_keys() {
            // RFC 5764 §5.1.2: nothing but SRTP with the DTLS keys is media on a WebRTC leg.
            return Err(DropReason::SrtpError);
        }
        let mut len = len;
        if from.srtp.is_none() && self.latching.strict == StrictRtp::Sequence {
            // A plain leg: the SDP address, or a source that passed probation (`latch.rs`).
            let sdp = from.sdp();
            let pkt = buf.get(..len).ok_or(DropReason::NotRtp)?;
            let arrival = Arrival {
                component,
                kind,
                source,
                pkt,
            };
            from.latches
                .admit(now, arrival, sdp, self.latching.probation)?;
        } else {
            // RFC 4961 §4 / comedia: once latched, only the latched source is the leg.
            if from.latched(component).is_some_and(|a| a != source) {
                return Err(DropReason::UnexpectedSource);
            }
            if let Some(srtp) = from.srtp.as_mut() {
                len = srtp.decrypt(kind, buf, len).map_err(srtp_reason)?;
            }
            // Valid (and on an SRTP leg authentic): the first such packet is the leg.
            from.latches.first(component, source);
        }
        if kind == Kind::Rtp {
            // The media timeout follows RTP only, as Asterisk's rtptimeout: RTCP keeps
            // flowing from a phone whose audio path died.
            self.last_media = Some(now);
        }
        Ok(Received { kind, len })
    }

    /// The second half of [`Bridge::handle_packet`]: a packet [`Bridge::receive`] accepted
    /// from `side` goes to the other leg, its payload type rewritten and (on an SRTP leg)
    /// encrypted in place. Counts what it relays; drops are the caller's to count.
    #[inline]
    pub(crate) fn forward(
        &mut self,
        now: Instant,
        side: Side,
        got: Received,
        buf: &mut [u8],
    ) -> Result<Verdict, DropReason> {
        let Received { kind, mut len } = got;
        let legs = self.legs.as_mut().ok_or(DropReason::NoPlan)?;
        let [caller, callee] = legs;
        let (from, to_leg) = match side {
            Side::Caller => (caller, callee),
            Side::Callee => (callee, caller),
        };
        if kind == Kind::Rtp && (!from.may_send() || !to_leg.may_receive()) {
            return Err(DropReason::Direction);
        }
        let (out_component, to) = to_leg.destination(kind).ok_or(DropReason::NoDestination)?;
        if kind == Kind::Rtp
            && let Some((opus_side, t)) = self.transcoder.as_mut()
        {
            let stage = match side == *opus_side {
                true if t.to_voice.takes(&buf[..len]) => t.to_voice.transcode(buf, len).map(Some),
                false if t.to_opus.takes(&buf[..len]) => t.to_opus.transcode(buf, len),
                _ => Ok(Some(len)),
            };
            len = match stage {
                Ok(Some(n)) => n,
                // Less than one frame: it goes out with the next packet.
                Ok(None) => return Ok(Verdict::Consumed),
                Err(_) => return Err(DropReason::Transcode),
            };
        }
        if kind == Kind::Rtp {
            to_leg.pt.rewrite(&mut buf[..len]);
        }
        if let Some(out) = to_leg.out.as_mut() {
            let pkt = &mut buf[..len];
            let ssrc = packet::ssrc(kind, pkt);
            match kind {
                Kind::Rtp => out.rewrite_rtp(now, Source::Relayed(ssrc), pkt),
                Kind::Rtcp => out.rewrite_rtcp(ssrc, pkt),
            }
        }
        if let Some(srtp) = to_leg.srtp.as_mut() {
            len = srtp.encrypt(kind, buf, len).map_err(srtp_reason)?;
        }
        self.stats.count_relayed(side, len);
        Ok(Verdict::Forward {
            side: side.other(),
            component: out_component,
            to,
            len,
        })
    }

    /// Sends an RTP packet the PBX made itself (a player's) to leg `side`: where and from
    /// which socket, encrypted in place when the leg is SRTP (RFC 3711 §3.3, with the PBX's
    /// outbound key of that leg). Not counted as relayed. On a leg with its own outgoing
    /// stream it is renumbered into that stream (`rewrite.rs`).
    pub(crate) fn send_own(
        &mut self,
        now: Instant,
        side: Side,
        buf: &mut [u8],
        len: usize,
    ) -> Result<(Component, SocketAddr, usize), DropReason> {
        let leg = self
            .legs
            .as_mut()
            .map(|l| &mut l[side.index()])
            .ok_or(DropReason::NoPlan)?;
        if !leg.may_receive() {
            return Err(DropReason::Direction);
        }
        let (component, to) = leg
            .destination(Kind::Rtp)
            .ok_or(DropReason::NoDestination)?;
        if let Some(out) = leg.out.as_mut() {
            let pkt = buf.get_mut(..len).ok_or(DropReason::NotRtp)?;
            let ssrc = packet::ssrc(Kind::Rtp, pkt);
            out.rewrite_rtp(now, Source::Own(ssrc), pkt);
        }
        let mut len = len;
        if let Some(srtp) = leg.srtp.as_mut() {
            len = srtp.encrypt(Kind::Rtp, buf, len).map_err(srtp_reason)?;
        }
        Ok((component, to, len))
    }

    /// A WebRTC leg's DTLS finished: its SRTP contexts from the exported keys.
    pub(crate) fn set_webrtc_keys(
        &mut self,
        side: Side,
        keys: &SrtpPair,
    ) -> Result<(), RelayError> {
        let srtp = LegSrtp::new(side, keys)?;
        if let Some(legs) = self.legs.as_mut() {
            legs[side.index()].srtp = Some(srtp);
        }
        Ok(())
    }

    /// A WebRTC leg's ICE address (see `Leg::set_ice_destination`).
    pub(crate) fn set_ice_destination(&mut self, side: Side, addr: Option<SocketAddr>) {
        if let Some(legs) = self.legs.as_mut() {
            legs[side.index()].set_ice_destination(addr);
        }
    }

    /// Counts a datagram that was not relayed.
    pub(crate) fn note_drop(&mut self, reason: DropReason) {
        self.stats.count_drop(reason);
    }

    /// Since when the media timeout counts (see [`Bridge::idle_for`]).
    pub(crate) fn idle_since(&self) -> Option<Instant> {
        if self.legs.is_none() || self.on_hold {
            return None;
        }
        Some(
            self.last_media
                .map_or(self.watch_since, |t| t.max(self.watch_since)),
        )
    }

    /// How long no RTP came from either leg (since the first plan or the end of a hold if
    /// later); `None` before any plan and while on hold, when silence is expected.
    pub fn idle_for(&self, now: Instant) -> Option<Duration> {
        self.idle_since()
            .map(|since| now.saturating_duration_since(since))
    }

    pub fn stats(&self) -> &BridgeStats {
        &self.stats
    }

    /// Where the PBX currently sends RTP to `side` (latched or SDP), for logs and tests.
    pub fn rtp_destination(&self, side: Side) -> Option<SocketAddr> {
        let legs = self.legs.as_ref()?;
        legs[side.index()]
            .destination(Kind::Rtp)
            .map(|(_, addr)| addr)
    }

    /// The address latched on `side`'s `component` socket, if any.
    pub fn latched(&self, side: Side, component: Component) -> Option<SocketAddr> {
        self.legs.as_ref()?[side.index()].latched(component)
    }
}

fn srtp_reason(f: SrtpFailure) -> DropReason {
    match f {
        SrtpFailure::Auth => DropReason::SrtpAuth,
        SrtpFailure::Replay => DropReason::SrtpReplay,
        SrtpFailure::Other => DropReason::SrtpError,
    }
}
