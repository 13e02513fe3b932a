//! DTMF converted between a leg in SIP INFO mode and one in RFC 4733 mode (issue 15): the
//! INFO leg's keys become events for the other leg's media, the events read from the RFC
//! 4733 leg's media become one INFO each.

mod support;

use pbx_calls::{DtmfMedia, DtmfMode, MediaSetup, Route};
use pbx_media::Side;
use pbx_media::sdp::{Encryption, LocalEndpoint};
use pbx_sip::method::Method;
use pbx_sip::status::StatusCode;
use std::time::Duration;
use support::{OFFER, World, caller_invite, device};

/// The callee answers PCMA without telephone-event (an INFO-only gateway).
const ANSWER_NO_EVENTS: &str = "v=0
o=gw 7 7 IN IP4 10.0.0.2
s=-
c=IN IP4 10.0.0.2
t=0 0
m=audio 5000 RTP/AVP 8
a=rtpmap:8 PCMA/8000
a=sendrecv
";

/// The callee answers PCMA with telephone-event on 96.
const ANSWER_EVENTS: &str = "v=0
o=bob 7 7 IN IP4 10.0.0.2
s=-
c=IN IP4 10.0.0.2
t=0 0
m=audio 5000 RTP/AVP 8 96
a=rtpmap:8 PCMA/8000
a=rtpmap:96 telephone-event/8000
a=sendrecv
";

fn media() -> MediaSetup {
    let ip = "192.0.2.1".parse().unwrap_or_else(|_| unreachable!());
    MediaSetup {
        caller: LocalEndpoint {
            ip,
            rtp_port: 10000,
        },
        callee: LocalEndpoint {
            ip,
            rtp_port: 10002,
        },
        caller_encryption: Encryption::Off,
        callee_encryption: Encryption::Off,
        allow_keys_in_clear: false,
        session_id: 42,
        dtls_fingerprint: None,
    }
}

/// The caller (RFC 4733 offer, events on 101) calls `desk`; the legs' modes are set
/// before it rings; the desk answers `answer`.
fn bridged(caller: DtmfMode, callee: DtmfMode, answer: &str) -> World {
    let mut w =
        World::start_planned_with(caller_invite(Some(OFFER), 70), Route::Wait, Some(media()));
    w.call.set_dtmf_mode(Side::Caller, caller);
    w.call.set_dtmf_mode(Side::Callee, callee);
    let now = w.now;
    w.call.ring(
        now,
        &mut w.layer,
        vec![device("desk")],
        Duration::from_secs(20),
        None,
    );
    w.settle();
    w.device_answers("desk", 200, Some(answer));
    w.caller_acks();
    w
}

fn body(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn events_from_the_phone_become_one_info_each_to_an_info_trunk() {
    let mut w = bridged(DtmfMode::Rfc4733, DtmfMode::Info, ANSWER_NO_EVENTS);
    // The phone keeps its events although the trunk has none: the PBX reads them.
    let ok = w.last_to_caller();
    assert!(
        body(&ok.body).contains("a=rtpmap:101 telephone-event/8000"),
        "{}",
        body(&ok.body)
    );
    assert_eq!(
        w.dtmf_media,
        [DtmfMedia::Detect {
            side: Side::Caller,
            payload_type: 101
        }]
    );
    let now = w.now;
    for digit in ['1', '#'] {
        w.call.handle_dtmf(
            now,
            &mut w.layer,
            Side::Caller,
            digit,
            Duration::from_millis(120),
        );
    }
    w.settle();
    let infos: Vec<String> = w
        .sent
        .iter()
        .filter_map(|(to, m)| match m {
            pbx_sip::message::Message::Request(r) if *to == "desk" && r.method == Method::INFO => {
                assert_eq!(
                    r.headers
                        .get_str(&pbx_sip::message::HeaderName::CONTENT_TYPE),
                    Some("application/dtmf-relay")
                );
                Some(body(&r.body))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        infos,
        [
            "Signal=1\r\nDuration=120\r\n",
            "Signal=#\r\nDuration=120\r\n"
        ]
    );
}

#[test]
fn an_info_from_the_caller_becomes_events_for_the_callee() {
    let mut w = bridged(DtmfMode::Info, DtmfMode::Rfc4733, ANSWER_EVENTS);
    // The callee's own events are read, for INFOs to the caller.
    let detect = DtmfMedia::Detect {
        side: Side::Callee,
        payload_type: 96,
    };
    assert_eq!(w.dtmf_media, [detect]);
    w.caller_request_typed(
        "INFO",
        2,
        "application/dtmf-relay",
        Some("Signal=5\nDuration=200\n"),
    );
    assert_eq!(w.last_to_caller().status, StatusCode::OK);
    assert_eq!(
        w.dtmf_media,
        [
            detect,
            DtmfMedia::Send {
                side: Side::Callee,
                digit: '5',
                duration: Duration::from_millis(200),
                payload_type: 96
            }
        ]
    );
    assert!(
        !w.sent.iter().any(|(to, m)| *to == "desk"
            && matches!(m, pbx_sip::message::Message::Request(r) if r.method == Method::INFO)),
        "the INFO is not relayed"
    );
}

#[test]
fn same_modes_relay_info_as_it_is() {
    let mut w = bridged(DtmfMode::Info, DtmfMode::Info, ANSWER_NO_EVENTS);
    w.caller_request_typed(
        "INFO",
        2,
        "application/dtmf-relay",
        Some("Signal=5\nDuration=200\n"),
    );
    assert!(w.dtmf_media.is_empty());
    let info = w.last_request("desk", &Method::INFO);
    assert_eq!(body(&info.body), "Signal=5\r\nDuration=200\r\n");
}

#[test]
fn auto_follows_the_sdp() {
    // The callee in auto mode answered events: both legs speak RFC 4733, nothing converts.
    let w = bridged(DtmfMode::Rfc4733, DtmfMode::Auto, ANSWER_EVENTS);
    assert!(w.dtmf_media.is_empty());
    // Without events in its answer, auto means INFO: the caller's events are read.
    let w = bridged(DtmfMode::Rfc4733, DtmfMode::Auto, ANSWER_NO_EVENTS);
    assert_eq!(
        w.dtmf_media,
        [DtmfMedia::Detect {
            side: Side::Caller,
            payload_type: 101
        }]
    );
}
