//! A WebRTC leg (a browser, or any WebRTC stack): ICE-lite, consent freshness and DTLS-SRTP
//! on the leg's one RTP socket, behind the media session like the relay's other legs.
//!
//! The PBX's RTP socket of such a leg carries four protocols, told apart by their first byte
//! (RFC 7983 §7): STUN (0-3) for ICE, DTLS (20-63) for the keys, RTP and RTCP (128-191,
//! rtcp-mux always: RFC 8829 §5.1.1 makes browsers require it). [`WebRtcLeg`] takes the first
//! two; RTP and RTCP go to the relay's leg as on any SRTP leg, once DTLS has given it keys.
//!
//! docs/decisions.md "WebRTC media" says why `rtc-dtls` and `rtc-stun` and not str0m.

mod dtls;
mod ice;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

pub use dtls::{DtlsError, DtlsIdentity, export_keys};
pub use ice::CONSENT_TIMEOUT;

use crate::{SrtpPair, WebRtcPlan};
use dtls::{Dtls, DtlsOutcome};
use ice::{Check, IceLite};

/// What the first byte of a datagram on a WebRTC leg's socket says it is (RFC 7983 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Demux {
    Stun,
    Dtls,
    Rtp,
    /// ZRTP (16-19), TURN channels (64-79) and the rest: not ours.
    Other,
}

pub fn demux(pkt: &[u8]) -> Demux {
    match pkt.first() {
        Some(0..=3) => Demux::Stun,
        Some(20..=63) => Demux::Dtls,
        Some(128..=191) => Demux::Rtp,
        _ => Demux::Other,
    }
}

/// What a WebRTC leg tells the session.
#[derive(Debug)]
pub enum LegEvent {
    /// ICE proved (or nominated) the browser's address: media goes there.
    Selected(SocketAddr),
    /// DTLS finished and the fingerprint matched: the leg's SRTP keys.
    Keys(SrtpPair),
    /// DTLS failed or the certificate did not match: the leg never carries media.
    Failed(DtlsError),
    /// No authenticated check for [`CONSENT_TIMEOUT`] (RFC 7675 §5.1): the browser is gone.
    ConsentLost,
}

/// One WebRTC leg's ICE and DTLS.
pub struct WebRtcLeg {
    plan: WebRtcPlan,
    identity: Arc<DtlsIdentity>,
    ice: IceLite,
    dtls: Dtls,
    out: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<LegEvent>,
    failed: bool,
}

impl WebRtcLeg {
    pub fn new(now: Instant, plan: &WebRtcPlan, identity: Arc<DtlsIdentity>) -> WebRtcLeg {
        WebRtcLeg {
            ice: IceLite::new(now, plan.local_ice.clone(), plan.remote_ice.clone()),
            dtls: Dtls::new(&identity, plan.role, plan.remote_fingerprints.clone()),
            plan: plan.clone(),
            identity,
            out: VecDeque::new(),
            events: VecDeque::new(),
            failed: false,
        }
    }

    /// Whether a new plan still describes this association: same credentials, fingerprints
    /// and role. An ICE restart or a new certificate needs a new leg (RFC 8839 §4.4.1.1.1).
    pub fn same_session(&self, plan: &WebRtcPlan) -> bool {
        &self.plan == plan
    }

    /// A STUN or DTLS datagram from `from` (see [`demux`]); anything else is ignored.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, pkt: &[u8]) {
        match demux(pkt) {
            Demux::Stun => {
                let crypto = self.identity.provider().clone();
                let before = self.ice.selected();
                if let Check::Valid { response, .. } =
                    self.ice.handle_stun(now, from, pkt, crypto.crypto())
                {
                    self.out.push_back((from, response));
                    let after = self.ice.selected();
                    if after != before
                        && let Some(addr) = after
                    {
                        self.events.push_back(LegEvent::Selected(addr));
                        if let Err(e) = self.dtls.start(now, addr) {
                            self.fail(e);
                        }
                    }
                }
            }
            Demux::Dtls if !self.failed => {
                let outcome = self.dtls.handle(now, from, pkt);
                self.outcome(outcome);
            }
            _ => {}
        }
        self.collect();
    }

    fn outcome(&mut self, outcome: Option<DtlsOutcome>) {
        match outcome {
            Some(DtlsOutcome::Keys(keys)) => self.events.push_back(LegEvent::Keys(keys)),
            Some(DtlsOutcome::Failed(e)) => self.fail(e),
            None => {}
        }
    }

    fn fail(&mut self, e: DtlsError) {
        if !self.failed {
            self.failed = true;
            self.events.push_back(LegEvent::Failed(e));
        }
    }

    fn collect(&mut self) {
        while let Some(t) = self.dtls.poll_transmit() {
            self.out.push_back(t);
        }
    }

    /// The next datagram to send from the leg's RTP socket, and where.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.out.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<LegEvent> {
        self.events.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.ice.poll_timeout(), self.dtls.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.ice.handle_timeout(now) {
            self.events.push_back(LegEvent::ConsentLost);
        }
        let outcome = self.dtls.handle_timeout(now);
        self.outcome(outcome);
        self.collect();
    }

    /// The browser's address once ICE proved it.
    pub fn selected(&self) -> Option<SocketAddr> {
        self.ice.selected()
    }

    /// Whether the browser still consents to receive media (RFC 7675 §5.1).
    pub fn has_consent(&self) -> bool {
        self.ice.has_consent()
    }
}

#[cfg(test)]
mod tests;
