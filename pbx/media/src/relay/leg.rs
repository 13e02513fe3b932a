//! One leg of the bridge: where to send to it, what it may send, its latched addresses and
//! its SRTP contexts.

use std::net::SocketAddr;

use super::Component;
use super::latch::{Latches, Probation};
use super::packet::{Kind, PtTable};
use super::rewrite::{Clocks, OutStream};
use super::srtp::LegSrtp;
use crate::{Direction, LegPlan, SrtpPair, WebRtcPlan};

pub(crate) struct Leg {
    /// Where the leg's SDP said it receives RTP and RTCP.
    sdp_rtp: Option<SocketAddr>,
    sdp_rtcp: Option<SocketAddr>,
    rtcp_mux: bool,
    direction: Direction,
    /// Rewrites packets sent TO this leg.
    pub(crate) pt: PtTable,
    /// Where packets really came from, per PBX socket of this leg (RFC 4961 §4: the leg
    /// receives where it sends from), and the sources on probation (`latch.rs`).
    pub(crate) latches: Latches,
    pub(crate) srtp: Option<LegSrtp>,
    /// A WebRTC leg: its keys come from DTLS and its address from ICE; until DTLS is done it
    /// neither sends nor receives media.
    pub(crate) webrtc: Option<Box<WebRtcPlan>>,
    /// The address ICE proved (RFC 8445 §8.1.1), in place of the SDP's for a WebRTC leg.
    ice_dest: Option<SocketAddr>,
    /// The one stream the PBX sends this leg, when the plan asks for it (`LegPlan::out_stream`).
    pub(crate) out: Option<OutStream>,
}

impl Leg {
    /// The leg for a new plan, carrying over what `prev` learned when it still applies.
    ///
    /// Latches survive a re-plan only while the SDP address they override stays the same:
    /// a re-INVITE that keeps the address (session refresh, codec change, hold/resume with
    /// `a=sendonly`) must not reopen the port to whoever sends first, while one that moves
    /// the media (the phone changed network, a transfer brought in another device) starts
    /// over — send to the new SDP address and latch again (`latch.rs`). An address going
    /// away (port 0, `c=0.0.0.0`) also clears it.
    ///
    /// SRTP contexts survive when the keys are unchanged, which keeps the rollover counters
    /// (RFC 3711 §3.3.1) in step with the endpoint; new keys (RFC 4568 §7.1.4 re-keying)
    /// start new contexts.
    ///
    /// `fresh` holds new contexts when the keys changed (made beforehand by the caller, so a
    /// bad key fails before anything is touched).
    ///
    /// A WebRTC leg whose ICE and DTLS session the new plan keeps (same credentials and
    /// fingerprints: a hold, not an ICE restart) keeps its DTLS keys and its ICE address.
    pub(crate) fn from_plan(plan: &LegPlan, prev: Option<Leg>, fresh: Option<LegSrtp>) -> Leg {
        let same_webrtc = plan.webrtc.is_some()
            && prev
                .as_ref()
                .is_some_and(|p| p.webrtc.as_ref() == plan.webrtc.as_ref());
        let kept = same_webrtc
            || prev
                .as_ref()
                .and_then(|p| p.srtp.as_ref())
                .is_some_and(|s| Some(s.keys()) == plan.srtp.as_ref());
        let mut prev = prev;
        let srtp = match fresh {
            Some(new) => Some(new),
            None if kept => prev.as_mut().and_then(|p| p.srtp.take()),
            None => None,
        };
        let mut latched = [None, None];
        let mut probation = Probation::default();
        let ice_dest = prev
            .as_ref()
            .and_then(|p| p.ice_dest)
            .filter(|_| same_webrtc);
        if same_webrtc && let Some(p) = &prev {
            latched = [p.latched(Component::Rtp), p.latched(Component::Rtcp)];
        } else if let Some(p) = &prev {
            let rtp_same = plan.remote_rtp.is_some() && plan.remote_rtp == p.sdp_rtp;
            if rtp_same {
                latched[Component::Rtp.index()] = p.latched(Component::Rtp);
                // Sources on probation keep their runs too (a re-INVITE mid-probation).
                probation = p.latches.probation.clone();
                if plan.remote_rtcp == p.sdp_rtcp && plan.rtcp_mux == p.rtcp_mux {
                    latched[Component::Rtcp.index()] = p.latched(Component::Rtcp);
                }
            }
        }
        // The same SSRC carries on: same numbering, so the leg sees one stream across plans.
        let out = plan.out_stream.as_deref().map(|o| {
            let clocks = Clocks::new(&o.clock_rates);
            match prev.as_mut().and_then(|p| p.out.take()) {
                Some(mut out) if out.ssrc() == o.ssrc => {
                    out.set_clocks(clocks);
                    out
                }
                _ => OutStream::new(o.ssrc, clocks),
            }
        });
        Leg {
            out,
            sdp_rtp: plan.remote_rtp,
            sdp_rtcp: plan.remote_rtcp,
            rtcp_mux: plan.rtcp_mux,
            direction: plan.direction,
            pt: PtTable::new(&plan.pt_map),
            latches: Latches::new(latched, probation),
            srtp,
            webrtc: plan.webrtc.clone(),
            ice_dest,
        }
    }

    /// ICE proved (or lost, `None`) the browser's address: media goes there and comes only
    /// from there.
    pub(crate) fn set_ice_destination(&mut self, addr: Option<SocketAddr>) {
        self.ice_dest = addr;
        self.latches.set(Component::Rtp, addr);
    }

    /// A WebRTC leg before its DTLS keys: no media either way.
    pub(crate) fn awaiting_keys(&self) -> bool {
        self.webrtc.is_some() && self.srtp.is_none()
    }

    /// Whether a plan with `keys` needs new SRTP contexts for this leg.
    pub(crate) fn needs_new_srtp(prev: Option<&Leg>, keys: &SrtpPair) -> bool {
        prev.and_then(|p| p.srtp.as_ref())
            .is_none_or(|s| s.keys() != keys)
    }

    /// The address latched on this leg's `component` socket.
    pub(crate) fn latched(&self, component: Component) -> Option<SocketAddr> {
        self.latches.get(component)
    }

    /// The leg's SDP addresses, RTP and RTCP.
    pub(crate) fn sdp(&self) -> [Option<SocketAddr>; 2] {
        [self.sdp_rtp, self.sdp_rtcp]
    }

    /// Where to send a packet of `kind` to this leg, and from which of its PBX sockets.
    /// Nothing unless the leg's SDP gave an address: a leg that set port 0 or `c=0.0.0.0`
    /// asked not to receive (RFC 3264 §8.2, §8.4), even if we know where it is.
    pub(crate) fn destination(&self, kind: Kind) -> Option<(Component, SocketAddr)> {
        if self.webrtc.is_some() {
            // RFC 7675 §5.1: only where ICE proved consent, and only once DTLS gave keys.
            let to = self.ice_dest.filter(|_| self.srtp.is_some())?;
            return Some((Component::Rtp, to));
        }
        self.sdp_rtp?;
        match kind {
            Kind::Rtp => Some((Component::Rtp, self.rtp_target()?)),
            // RFC 5761 §5.1.3: with rtcp-mux, RTCP goes to the RTP address.
            Kind::Rtcp if self.rtcp_mux => Some((Component::Rtp, self.rtp_target()?)),
            Kind::Rtcp => {
                let to = self.latched(Component::Rtcp).or(self.sdp_rtcp)?;
                Some((Component::Rtcp, to))
            }
        }
    }

    fn rtp_target(&self) -> Option<SocketAddr> {
        self.latched(Component::Rtp).or(self.sdp_rtp)
    }

    /// RFC 3264 §5.1: a `recvonly` or `inactive` leg does not send RTP.
    pub(crate) fn may_send(&self) -> bool {
        matches!(self.direction, Direction::SendRecv | Direction::SendOnly)
    }

    /// RFC 3264 §5.1: nothing is sent to a `sendonly` or `inactive` leg.
    pub(crate) fn may_receive(&self) -> bool {
        matches!(self.direction, Direction::SendRecv | Direction::RecvOnly)
    }
}
