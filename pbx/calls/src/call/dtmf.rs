//! DTMF between legs that carry it differently (issue 15): a trunk or phone that sends and
//! takes keys only as SIP INFO (`application/dtmf-relay`) bridged to one that uses RFC 4733
//! events in its media. The call decides, the media session does the packets: keys the
//! RFC 4733 leg sends are read from its media ([`DtmfMedia::Detect`]) and come back through
//! [`Call::handle_dtmf`] to leave as one INFO each on the other leg; an INFO becomes a
//! [`DtmfMedia::Send`] of events into the RFC 4733 leg's stream. Legs that carry keys the
//! same way are left alone (INFO relayed as it is, events relayed in the media).

use super::{Call, CallOutput, Phase};
use bytes::Bytes;
use pbx_media::Side;
use pbx_sip::message::{HeaderName, Request};
use pbx_sip::method::Method;
use pbx_sip::status::StatusCode;
use pbx_sip::transaction::{TransactionKey, TransactionLayer};
use std::time::{Duration, Instant};

/// How a leg carries DTMF keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DtmfMode {
    /// RFC 4733 telephone-events in the media.
    #[default]
    Rfc4733,
    /// SIP INFO, `application/dtmf-relay` (`Signal=`, `Duration=`).
    Info,
    /// RFC 4733 when the leg's SDP agreed on `telephone-event`, INFO otherwise.
    Auto,
}

impl DtmfMode {
    pub const NAMES: [&'static str; 3] = ["rfc4733", "info", "auto"];

    pub fn parse(name: &str) -> Option<DtmfMode> {
        match name {
            "rfc4733" => Some(DtmfMode::Rfc4733),
            "info" => Some(DtmfMode::Info),
            "auto" => Some(DtmfMode::Auto),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DtmfMode::Rfc4733 => "rfc4733",
            DtmfMode::Info => "info",
            DtmfMode::Auto => "auto",
        }
    }
}

/// What the call asks of the media session to convert keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtmfMedia {
    /// Report the keys `side` sends as RFC 4733 events under `payload_type` (8000 Hz).
    Detect { side: Side, payload_type: u8 },
    /// Send `side` this key as RFC 4733 events under its `payload_type` (8000 Hz).
    Send {
        side: Side,
        digit: char,
        duration: Duration,
        payload_type: u8,
    },
}

/// The key length an INFO without `Duration` stands for, and the one the PBX's INFOs
/// carry when the events did not say (160 ms, a common default of phones).
const DEFAULT_DURATION: Duration = Duration::from_millis(160);

/// How a leg's keys travel once its media is agreed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Carrier {
    /// RFC 4733 events under this payload type.
    Events(u8),
    Info,
}

impl<D: Clone + std::fmt::Debug> Call<D> {
    /// Sets how `side` carries DTMF (default RFC 4733). Set before the leg is offered media
    /// (the callee's before ringing it): the offer/answer keeps `telephone-event` for a
    /// leg whose keys the PBX converts.
    pub fn set_dtmf_mode(&mut self, side: Side, mode: DtmfMode) {
        self.dtmf[side.index()] = mode;
    }

    /// Whether keys may need converting on this call (a leg not in plain RFC 4733 mode).
    pub(super) fn dtmf_may_convert(&self) -> bool {
        self.dtmf.iter().any(|m| *m != DtmfMode::Rfc4733)
    }

    fn carrier(&self, side: Side) -> Option<Carrier> {
        let events = self
            .negotiator
            .as_ref()
            .and_then(|n| n.telephone_event(side));
        match (self.dtmf[side.index()], events) {
            (DtmfMode::Info, _) | (DtmfMode::Auto, None) => Some(Carrier::Info),
            (_, Some(pt)) => Some(Carrier::Events(pt)),
            // RFC 4733 mode without agreed events: nothing the PBX can send it.
            (DtmfMode::Rfc4733, None) => None,
        }
    }

    /// After each completed offer/answer: start reading the events of a leg whose keys go
    /// to an INFO leg.
    pub(super) fn dtmf_after_plan(&mut self) {
        if !self.dtmf_may_convert() || self.callee.is_none() {
            return;
        }
        for side in [Side::Caller, Side::Callee] {
            if let (Some(Carrier::Events(pt)), Some(Carrier::Info)) =
                (self.carrier(side), self.carrier(side.other()))
            {
                self.outputs
                    .push_back(CallOutput::DtmfMedia(DtmfMedia::Detect {
                        side,
                        payload_type: pt,
                    }));
            }
        }
    }

    /// An INFO from `side` of the bridged call. When the other leg takes its keys as RFC
    /// 4733 events, the INFO is answered here and its key sent as events (true); false: the
    /// request is to be relayed as it is.
    pub(super) fn info_to_events(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        key: &TransactionKey,
        side: Side,
        request: &Request,
    ) -> bool {
        if !self.dtmf_may_convert() || request.method != Method::INFO {
            return false;
        }
        let (Some(Carrier::Info), Some(Carrier::Events(pt))) =
            (self.carrier(side), self.carrier(side.other()))
        else {
            return false;
        };
        let status = match super::application::dtmf_of(request) {
            Ok(Some(digit)) => {
                self.outputs
                    .push_back(CallOutput::DtmfMedia(DtmfMedia::Send {
                        side: side.other(),
                        digit,
                        duration: info_duration(request),
                        payload_type: pt,
                    }));
                StatusCode::OK
            }
            Ok(None) => StatusCode::OK,
            Err(status) => status,
        };
        self.reply(now, layer, key, request, status);
        true
    }

    /// The media session read a key from `side`'s RFC 4733 events (after
    /// [`DtmfMedia::Detect`]): the other leg gets it as one INFO.
    pub fn handle_dtmf(
        &mut self,
        now: Instant,
        layer: &mut TransactionLayer<D>,
        side: Side,
        digit: char,
        duration: Duration,
    ) {
        if self.phase != Phase::Answered
            || !matches!(self.carrier(side.other()), Some(Carrier::Info))
        {
            return;
        }
        let ua = self.config.user_agent.clone();
        let (mut info, endpoint) = match side.other() {
            Side::Caller => {
                let endpoint = self.caller.endpoint.clone();
                let info = self
                    .caller
                    .dialog
                    .request(Method::INFO, &endpoint, &ua, &mut self.rng);
                (info, endpoint)
            }
            Side::Callee => {
                let Some(c) = self.callee.as_mut() else {
                    return;
                };
                let info = c
                    .dialog
                    .request(Method::INFO, &c.endpoint, &ua, &mut self.rng);
                (info, c.endpoint.clone())
            }
        };
        let ms = match duration.as_millis() {
            0 => DEFAULT_DURATION.as_millis(),
            ms => ms,
        };
        info.headers
            .push(HeaderName::CONTENT_TYPE, "application/dtmf-relay");
        info.body = Bytes::from(format!("Signal={digit}\r\nDuration={ms}\r\n"));
        // The answer matches no relayed request and is dropped: a refused key is not
        // retried (the caller would press it again).
        let _ = self.send(now, layer, info, &endpoint);
    }
}

/// The `Duration=` of an `application/dtmf-relay` body in milliseconds, the default when
/// absent or unreadable; at most 5 s.
fn info_duration(request: &Request) -> Duration {
    String::from_utf8_lossy(&request.body)
        .lines()
        .filter_map(|line| line.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("duration"))
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .filter(|ms| (1..=5000).contains(ms))
        .map_or(DEFAULT_DURATION, Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::DtmfMode;

    #[test]
    fn modes_by_name() {
        for name in DtmfMode::NAMES {
            assert_eq!(DtmfMode::parse(name).map(DtmfMode::as_str), Some(name));
        }
        assert_eq!(DtmfMode::parse("inband"), None);
        assert_eq!(DtmfMode::default(), DtmfMode::Rfc4733);
    }
}
