//! A media session: the legs of one call and the endpoints attached to them, sans-IO in the
//! shape of str0m's `Rtc` and quinn-proto's `Connection`.
//!
//! The shell owns the sockets (two per leg: RTP and RTCP) and the clock, and drives the
//! session with:
//!
//! - [`MediaSession::handle_datagram`] for every datagram on a leg's socket. A datagram the
//!   relay forwards comes back at once, transformed in place in the caller's buffer, so the
//!   relayed path copies and allocates nothing (as the [`Bridge`](crate::relay::Bridge) it
//!   wraps); what the endpoints take from it (digits, audio) they take before that.
//! - [`MediaSession::handle_command`] (connect the relay, attach a player, a recorder, a DTMF
//!   detector), [`MediaSession::apply`] for each completed offer/answer, and
//!   [`MediaSession::handle_timeout`] when [`MediaSession::poll_timeout`]'s instant comes.
//! - then, until they return `None`: [`MediaSession::poll_transmit`] (what the PBX itself
//!   sends: a player's frames, encrypted for SRTP legs) and [`MediaSession::poll_event`].
//!
//! A session has two legs, [`Side::Caller`] and [`Side::Callee`]; today's two-party relay is
//! the session built by [`MediaSession::relay`]. A call the PBX answers itself uses one leg.

mod command;
mod early;
mod event;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::endpoint::dtmf::DtmfDetector;
use crate::endpoint::dtmf_out::DtmfOut;
use crate::endpoint::echo::Echo;
use crate::endpoint::player::{Continuation, Player, PlayerOutput};
use crate::endpoint::recorder::{Recorder, RecordingEnd};
use crate::endpoint::relay::Relay;
use crate::relay::{BridgeStats, Component, DropReason, Kind, LatchPolicy, RelayError, Verdict};
use crate::rtp::RtpView;
use crate::webrtc::{Demux, DtlsIdentity, LegEvent, WebRtcLeg, demux};
use crate::{MediaPlan, Side};
use early::{EarlyPackets, Held};
use std::sync::Arc;

pub use command::{Command, SessionError};
pub use event::{Event, Transmit};

/// SRTP authentication failures are reported at most this often.
const SRTP_REPORT_EVERY: Duration = Duration::from_secs(1);

/// The PBX's own endpoints on one leg.
#[derive(Default)]
struct Endpoints {
    player: Option<Player>,
    /// Where the last player left the leg's stream (the next one carries on from there).
    played: Option<Continuation>,
    recorder: Option<Recorder>,
    dtmf: Option<DtmfDetector>,
    echo: Option<Echo>,
    /// RFC 4733 events the PBX puts into the stream relayed to this leg.
    dtmf_out: Option<DtmfOut>,
    /// The detector's events are converted (to SIP INFO for the other leg), not relayed.
    dtmf_converted: bool,
}

impl Endpoints {
    /// Whether anything here wants the leg's received packets.
    fn listening(&self) -> bool {
        self.recorder.is_some() || self.dtmf.is_some() || self.echo.is_some()
    }

    fn on_rtp(
        &mut self,
        now: Instant,
        side: Side,
        pkt: &RtpView<'_>,
        events: &mut VecDeque<Event>,
    ) {
        if let Some(dtmf) = self.dtmf.as_mut() {
            dtmf.on_rtp(now, pkt, &mut |digit, duration| {
                events.push_back(Event::Dtmf {
                    side,
                    digit,
                    duration,
                });
            });
        }
        if let Some(rec) = self.recorder.as_mut() {
            let end = rec.on_rtp(now, pkt);
            if let Some(pcm) = rec.take_chunk() {
                events.push_back(Event::RecorderAudio { side, pcm });
            }
            if let Some(end) = end {
                self.finish_recording(side, end, events);
            }
        }
    }

    fn finish_recording(&mut self, side: Side, end: RecordingEnd, events: &mut VecDeque<Event>) {
        if let Some(rec) = self.recorder.take() {
            events.push_back(Event::RecorderFinished {
                side,
                end,
                pcm: rec.finish(),
            });
        }
    }

    fn stop_player(&mut self, side: Side, events: &mut VecDeque<Event>) {
        if let Some(player) = self.player.take() {
            self.played = Some(player.continuation());
            events.push_back(Event::PlayerFinished { side });
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let player = self.player.as_ref().map(Player::poll_timeout);
        let recorder = self.recorder.as_ref().map(Recorder::poll_timeout);
        let dtmf = self.dtmf.as_ref().and_then(DtmfDetector::poll_timeout);
        [player, recorder, dtmf].into_iter().flatten().min()
    }
}

/// The media of one call. See the module documentation for how to drive it.
pub struct MediaSession {
    relay: Relay,
    /// Boxed, and only once an endpoint is attached: a relayed call carries a pointer, not
    /// the endpoints' state (memory per call is a goal of docs/performance.md).
    legs: Option<Box<[Endpoints; 2]>>,
    events: VecDeque<Event>,
    rtp_timeout: Option<Duration>,
    timed_out: bool,
    srtp_reported: Option<Instant>,
    /// The PBX's DTLS certificate and the WebRTC legs (ICE-lite, DTLS), boxed: most calls
    /// have none.
    webrtc: Option<Box<WebRtcLegs>>,
    /// Datagrams that came before the first plan (`early.rs`), and what they made the
    /// session send; boxed, and gone once sent.
    early: Option<Box<EarlyPackets>>,
}

struct WebRtcLegs {
    identity: Arc<DtlsIdentity>,
    legs: [Option<WebRtcLeg>; 2],
}

impl MediaSession {
    /// A session with no plan, the relay not connected and no endpoints.
    pub fn new(now: Instant) -> MediaSession {
        MediaSession {
            relay: Relay::new(now),
            legs: None,
            events: VecDeque::new(),
            rtp_timeout: None,
            timed_out: false,
            srtp_reported: None,
            webrtc: None,
            early: None,
        }
    }

    /// WebRTC legs are possible, with this certificate (the one whose fingerprint the SDP
    /// carries).
    pub fn with_webrtc(mut self, identity: Arc<DtlsIdentity>) -> MediaSession {
        self.webrtc = Some(Box::new(WebRtcLegs {
            identity,
            legs: [None, None],
        }));
        self
    }

    /// A two-party call: the relay connected between the legs.
    pub fn relay(now: Instant) -> MediaSession {
        let mut s = MediaSession::new(now);
        s.relay.connected = true;
        s
    }

    /// How plain RTP legs latch (`[rtp] strict_rtp`; default strict, see
    /// [`crate::relay::LatchPolicy`]). Datagrams held before the plan follow it too.
    pub fn with_latching(mut self, policy: LatchPolicy) -> MediaSession {
        self.relay.bridge.set_latching(policy);
        self
    }

    /// Reports [`Event::MediaTimeout`] after `timeout` without RTP (see
    /// [`MediaSession::idle_for`]).
    pub fn with_rtp_timeout(mut self, timeout: Duration) -> MediaSession {
        self.rtp_timeout = Some(timeout);
        self
    }

    /// Applies a completed offer/answer to the legs (see [`crate::relay::Bridge::apply`]).
    ///
    /// A leg whose plan is WebRTC gets its ICE-lite and DTLS machine (kept across plans that
    /// keep its credentials and fingerprints); without [`MediaSession::with_webrtc`] such a
    /// leg carries nothing.
    ///
    /// The first plan also handles the datagrams kept since the ports were handed out
    /// ([`Verdict::Held`]), in the order they came; what they make comes out of
    /// [`MediaSession::poll_transmit`] before anything else.
    pub fn apply(&mut self, now: Instant, plan: &MediaPlan) -> Result<(), RelayError> {
        self.relay.bridge.apply(now, plan)?;
        if let Some(w) = self.webrtc.as_mut() {
            for side in [Side::Caller, Side::Callee] {
                let slot = &mut w.legs[side.index()];
                match &plan.leg(side).webrtc {
                    None => *slot = None,
                    Some(p) if slot.as_ref().is_some_and(|l| l.same_session(p)) => {}
                    Some(p) => *slot = Some(WebRtcLeg::new(now, p, w.identity.clone())),
                }
            }
        }
        self.replay_early(now);
        Ok(())
    }

    /// Keeps a datagram that came before the first plan (see `early.rs`).
    #[cold]
    fn hold(
        &mut self,
        now: Instant,
        side: Side,
        component: Component,
        source: SocketAddr,
        pkt: &[u8],
    ) -> Verdict {
        let early = self.early.get_or_insert_with(Box::default);
        let dropped = early.hold(Held {
            at: now,
            side,
            component,
            source,
            bytes: pkt.to_vec(),
        });
        for _ in 0..dropped {
            self.relay.bridge.note_drop(DropReason::NoPlan);
        }
        Verdict::Held
    }

    /// Handles the kept datagrams now that there is a plan: as if they came now, in the
    /// order they came. Those older than `early::MAX_AGE` are dropped.
    fn replay_early(&mut self, now: Instant) {
        let Some(early) = self.early.as_mut() else {
            return;
        };
        let expired = early.expire(now);
        let held = early.take_all();
        for _ in 0..expired {
            self.relay.bridge.note_drop(DropReason::NoPlan);
        }
        // Room for the datagram grown by SRTP or transcoding, as the shell's buffer has.
        let mut buf = vec![0u8; 2048];
        for h in held {
            let Some(dst) = buf.get_mut(..h.bytes.len()) else {
                continue;
            };
            dst.copy_from_slice(&h.bytes);
            let verdict =
                self.handle_datagram(now, h.side, h.component, h.source, &mut buf, h.bytes.len());
            if let Verdict::Forward {
                side,
                component,
                to,
                len,
            } = verdict
                && let (Some(bytes), Some(early)) = (buf.get(..len), self.early.as_mut())
            {
                let transmit = Transmit {
                    side,
                    component,
                    to,
                    len,
                };
                early.push_out(transmit, bytes.to_vec());
            }
        }
    }

    /// Hands a STUN or DTLS datagram to `side`'s WebRTC leg; false when it is not one.
    fn webrtc_datagram(
        &mut self,
        now: Instant,
        side: Side,
        component: Component,
        source: SocketAddr,
        pkt: &[u8],
    ) -> bool {
        let Some(leg) = self
            .webrtc
            .as_mut()
            .and_then(|w| w.legs[side.index()].as_mut())
        else {
            return false;
        };
        if component != Component::Rtp || !matches!(demux(pkt), Demux::Stun | Demux::Dtls) {
            return false;
        }
        leg.handle_datagram(now, source, pkt);
        self.webrtc_events(side);
        true
    }

    /// What a WebRTC leg reported, applied to the relay and told to the shell.
    fn webrtc_events(&mut self, side: Side) {
        let Some(leg) = self
            .webrtc
            .as_mut()
            .and_then(|w| w.legs[side.index()].as_mut())
        else {
            return;
        };
        while let Some(event) = leg.poll_event() {
            match event {
                LegEvent::Selected(addr) => {
                    self.relay.bridge.set_ice_destination(side, Some(addr));
                }
                LegEvent::Keys(keys) => {
                    if let Err(e) = self.relay.bridge.set_webrtc_keys(side, &keys) {
                        self.events.push_back(Event::WebRtcFailed {
                            side,
                            reason: e.to_string(),
                        });
                    }
                }
                LegEvent::Failed(e) => self.events.push_back(Event::WebRtcFailed {
                    side,
                    reason: e.to_string(),
                }),
                LegEvent::ConsentLost => {
                    self.relay.bridge.set_ice_destination(side, None);
                    self.events.push_back(Event::ConsentLost { side });
                }
            }
        }
    }

    /// A datagram arrived on `side`'s `component` socket from `source`: `buf[..len]` holds
    /// it, and `buf` has room beyond `len` for an SRTP tag (64 bytes are plenty) — and, on a
    /// transcoded call, for the packet in the other codec (up to 1.5 KB: the shell's 2048-byte
    /// buffer does). A [`Verdict::Forward`] says where to send `buf[..len']`.
    #[inline]
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        side: Side,
        component: Component,
        source: SocketAddr,
        buf: &mut [u8],
        len: usize,
    ) -> Verdict {
        if !self.relay.bridge.has_plan() {
            let pkt = buf.get(..len).unwrap_or_default();
            // ICE checks and DTLS records are not kept: their senders retransmit them, and a
            // handshake record replayed late can meet its own retransmission (a browser that
            // rang for long then had its DTLS handshake fail, and heard nothing).
            if self.webrtc.is_some() && matches!(demux(pkt), Demux::Stun | Demux::Dtls) {
                self.relay.bridge.note_drop(DropReason::NoPlan);
                return Verdict::Drop(DropReason::NoPlan);
            }
            return self.hold(now, side, component, source, pkt);
        }
        if self.webrtc.is_some()
            && let Some(pkt) = buf.get(..len)
            && self.webrtc_datagram(now, side, component, source, pkt)
        {
            return Verdict::Consumed;
        }
        let got = match self.relay.receive(now, side, component, source, buf, len) {
            Ok(got) => got,
            Err(reason) => {
                if reason == DropReason::SrtpAuth {
                    self.srtp_failed(now);
                }
                return Verdict::Drop(reason);
            }
        };
        let mut listening = false;
        let mut converted = false;
        if let Some(legs) = self.legs.as_mut() {
            let eps = &mut legs[side.index()];
            listening = eps.listening();
            if listening
                && got.kind == Kind::Rtp
                && let Some(pkt) = buf.get(..got.len).and_then(RtpView::parse)
            {
                eps.on_rtp(now, side, &pkt, &mut self.events);
                converted = eps.dtmf_converted
                    && eps
                        .dtmf
                        .as_ref()
                        .is_some_and(|d| d.payload_type() == Some(pkt.payload_type));
            }
            if got.kind == Kind::Rtp
                && let Some(echo) = eps.echo.as_ref()
                && buf.get_mut(..got.len).is_some_and(|pkt| echo.reflect(pkt))
            {
                return match self.relay.bridge.send_own(now, side, buf, got.len) {
                    Ok((component, to, len)) => Verdict::Forward {
                        side,
                        component,
                        to,
                        len,
                    },
                    Err(reason) => {
                        self.relay.bridge.note_drop(reason);
                        Verdict::Drop(reason)
                    }
                };
            }
        }
        if converted && self.relay.connected {
            // A detector on a bridged leg converts its events (to SIP INFO for the other
            // leg): relaying them too would deliver each key twice.
            return Verdict::Consumed;
        }
        if got.kind == Kind::Rtp
            && self.relay.connected
            && let Some(out) = self
                .legs
                .as_mut()
                .and_then(|l| l[side.other().index()].dtmf_out.as_mut())
                .filter(|o| o.busy())
            && let Some(len) = out.replace(buf, got.len)
        {
            return self.send_replaced(now, side.other(), buf, len);
        }
        self.relay.forward(now, side, got, buf, listening)
    }

    /// Sends an event packet that took the place of a relayed one to `to`.
    fn send_replaced(&mut self, now: Instant, to: Side, buf: &mut [u8], len: usize) -> Verdict {
        match self.relay.bridge.send_own(now, to, buf, len) {
            Ok((component, to_addr, len)) => Verdict::Forward {
                side: to,
                component,
                to: to_addr,
                len,
            },
            Err(reason) => {
                self.relay.bridge.note_drop(reason);
                Verdict::Drop(reason)
            }
        }
    }

    fn srtp_failed(&mut self, now: Instant) {
        if self
            .srtp_reported
            .is_none_or(|at| now >= at + SRTP_REPORT_EVERY)
        {
            self.srtp_reported = Some(now);
            let total = self.relay.bridge.stats().srtp_auth_failures();
            self.events.push_back(Event::SrtpFailures { total });
        }
    }

    /// Carries out a command. On error nothing changed.
    pub fn handle_command(&mut self, now: Instant, command: Command) -> Result<(), SessionError> {
        command.validate()?;
        let events = &mut self.events;
        let legs = self.legs.get_or_insert_with(Box::default);
        let leg = |side: Side| side.index();
        match command {
            Command::ConnectRelay => self.relay.connected = true,
            Command::DisconnectRelay => self.relay.connected = false,
            Command::Play { side, mut spec } => {
                let eps = &mut legs[leg(side)];
                eps.stop_player(side, events);
                if let Some(played) = eps.played {
                    played.carry_into(now, &mut spec);
                }
                eps.player = Some(Player::new(now, spec));
            }
            Command::StopPlayer { side } => legs[leg(side)].stop_player(side, events),
            Command::Record { side, spec } => {
                let eps = &mut legs[leg(side)];
                eps.finish_recording(side, RecordingEnd::Stopped, events);
                eps.recorder = Some(Recorder::new(now, spec));
            }
            Command::StopRecorder { side } => {
                legs[leg(side)].finish_recording(side, RecordingEnd::Stopped, events);
            }
            Command::DetectDtmf { side, spec } => {
                legs[leg(side)].dtmf = Some(DtmfDetector::new(spec));
                legs[leg(side)].dtmf_converted = false;
            }
            Command::ConvertDtmf { side, spec } => {
                legs[leg(side)].dtmf = Some(DtmfDetector::new(spec));
                legs[leg(side)].dtmf_converted = true;
            }
            Command::StopDtmf { side } => legs[leg(side)].dtmf = None,
            Command::SendDtmf {
                side,
                digit,
                duration,
                spec,
            } => {
                let out = legs[leg(side)]
                    .dtmf_out
                    .get_or_insert_with(|| DtmfOut::new(spec));
                out.set_spec(spec);
                if !out.push(digit, duration) {
                    return Err(SessionError::Digit(digit));
                }
            }
            Command::Echo { side, spec } => legs[leg(side)].echo = Some(Echo::new(spec)),
            Command::StopEcho { side } => legs[leg(side)].echo = None,
        }
        Ok(())
    }

    /// Ends any recording in progress (the session is going away): its last audio comes out
    /// as [`Event::RecorderFinished`], ended [`RecordingEnd::Stopped`].
    pub fn stop_recorders(&mut self) {
        let Some(legs) = self.legs.as_mut() else {
            return;
        };
        for side in [Side::Caller, Side::Callee] {
            legs[side.index()].finish_recording(side, RecordingEnd::Stopped, &mut self.events);
        }
    }

    /// Acts on every deadline at or before `now`: the media timeout, recorders' length and
    /// silence, DTMF events whose end never came. (Players act in `poll_transmit`.)
    pub fn handle_timeout(&mut self, now: Instant) {
        for side in [Side::Caller, Side::Callee] {
            if let Some(leg) = self
                .webrtc
                .as_mut()
                .and_then(|w| w.legs[side.index()].as_mut())
                && leg.poll_timeout().is_some_and(|at| now >= at)
            {
                leg.handle_timeout(now);
                self.webrtc_events(side);
            }
        }
        if self.media_deadline().is_some_and(|at| now >= at) {
            self.timed_out = true;
            let idle = self.relay.bridge.idle_for(now).unwrap_or_default();
            self.events.push_back(Event::MediaTimeout { idle });
        }
        let Some(legs) = self.legs.as_mut() else {
            return;
        };
        for side in [Side::Caller, Side::Callee] {
            let eps = &mut legs[side.index()];
            if let Some(end) = eps.recorder.as_mut().and_then(|r| r.handle_timeout(now)) {
                eps.finish_recording(side, end, &mut self.events);
            }
            if let Some(dtmf) = eps.dtmf.as_mut() {
                let events = &mut self.events;
                dtmf.handle_timeout(now, &mut |digit, duration| {
                    events.push_back(Event::Dtmf {
                        side,
                        digit,
                        duration,
                    });
                });
            }
        }
    }

    /// The next datagram the PBX itself sends, written into `buf` (at least 12 bytes of RTP
    /// header, one frame and 16 for an SRTP tag; the relay's 2048-byte buffer will do).
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some(early) = self.early.as_mut()
            && self.relay.bridge.has_plan()
        {
            while let Some((t, bytes)) = early.pop_out() {
                // A buffer too small for it (never with the relay's): dropped as oversized.
                if let Some(dst) = buf.get_mut(..bytes.len()) {
                    dst.copy_from_slice(&bytes);
                    return Some(t);
                }
            }
            self.early = None;
        }
        if let Some(w) = self.webrtc.as_mut() {
            for side in [Side::Caller, Side::Callee] {
                let Some(leg) = w.legs[side.index()].as_mut() else {
                    continue;
                };
                // STUN answers and DTLS flights are far below the relay's buffer; one that
                // is not (never seen) is dropped like an oversized datagram.
                while let Some((to, bytes)) = leg.poll_transmit() {
                    if let Some(dst) = buf.get_mut(..bytes.len()) {
                        dst.copy_from_slice(&bytes);
                        return Some(Transmit {
                            side,
                            component: Component::Rtp,
                            to,
                            len: bytes.len(),
                        });
                    }
                }
            }
        }
        let legs = self.legs.as_mut()?;
        for side in [Side::Caller, Side::Callee] {
            let eps = &mut legs[side.index()];
            while let Some(player) = eps.player.as_mut() {
                match player.poll_transmit(now, buf) {
                    PlayerOutput::Packet(len) => {
                        // A leg with no address yet, on hold, or whose SRTP refuses: the
                        // frame's time passes unheard, as it would on a lossy path.
                        if let Ok((component, to, len)) =
                            self.relay.bridge.send_own(now, side, buf, len)
                        {
                            return Some(Transmit {
                                side,
                                component,
                                to,
                                len,
                            });
                        }
                    }
                    PlayerOutput::Finished => eps.stop_player(side, &mut self.events),
                    PlayerOutput::Idle => break,
                }
            }
        }
        None
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest instant [`MediaSession::handle_timeout`] or
    /// [`MediaSession::poll_transmit`] has something to do.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let webrtc = self.webrtc.as_ref().and_then(|w| {
            w.legs
                .iter()
                .flatten()
                .filter_map(WebRtcLeg::poll_timeout)
                .min()
        });
        let media = [self.media_deadline(), webrtc].into_iter().flatten().min();
        let Some(legs) = self.legs.as_deref() else {
            return media;
        };
        let [a, b] = legs;
        [media, a.poll_timeout(), b.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    fn media_deadline(&self) -> Option<Instant> {
        let timeout = self.rtp_timeout.filter(|_| !self.timed_out)?;
        Some(self.relay.bridge.idle_since()? + timeout)
    }

    /// Whether the legs are connected to each other.
    pub fn is_relaying(&self) -> bool {
        self.relay.connected
    }

    pub fn stats(&self) -> &BridgeStats {
        self.relay.bridge.stats()
    }

    /// How long no RTP came from either leg (see [`crate::relay::Bridge::idle_for`]).
    pub fn idle_for(&self, now: Instant) -> Option<Duration> {
        self.relay.bridge.idle_for(now)
    }

    /// Where the PBX currently sends RTP to `side` (latched or SDP).
    pub fn rtp_destination(&self, side: Side) -> Option<SocketAddr> {
        self.relay.bridge.rtp_destination(side)
    }

    /// The address latched on `side`'s `component` socket, if any.
    pub fn latched(&self, side: Side, component: Component) -> Option<SocketAddr> {
        self.relay.bridge.latched(side, component)
    }
}
