//! RFC 4733 telephone-events to digits: a realistic sequence (start with the marker,
//! updates every 50 ms, three end packets) gives each digit once, with its duration.

mod relay_support;
mod session_support;

use std::time::{Duration, Instant};

use pbx_media::Side;
use pbx_media::endpoint::dtmf::{DtmfSpec, LOST_END};
use pbx_media::relay::{Component, Verdict};
use pbx_media::session::{Command, Event, MediaSession};
use relay_support::{addr, base, feed, leg, plan, rtp};
use session_support::{events, run_until};

const CALLER: &str = "192.0.2.10:4000";
const CALLEE: &str = "198.51.100.20:6000";
const TE: u8 = 101;

struct Phone {
    seq: u16,
    now: Instant,
}

impl Phone {
    fn send(&mut self, s: &mut MediaSession, pkt: Vec<u8>) -> Verdict {
        self.seq = self.seq.wrapping_add(1);
        feed(
            s,
            self.now,
            Side::Caller,
            Component::Rtp,
            addr(CALLER),
            &pkt,
        )
        .0
    }

    /// RFC 4733 §2.3: event, E bit (+ volume 10), duration in 8 kHz units.
    fn event(&mut self, s: &mut MediaSession, marker: bool, ts: u32, key: u8, end: bool, dur: u16) {
        let mut payload = vec![key, u8::from(end) << 7 | 10];
        payload.extend_from_slice(&dur.to_be_bytes());
        let pkt = rtp(TE, marker, self.seq, ts, 0xd7f, &payload);
        let v = self.send(s, pkt);
        assert!(
            matches!(v, Verdict::Forward { .. }),
            "events are relayed too"
        );
    }

    fn audio(&mut self, s: &mut MediaSession, ts: u32) {
        let pkt = rtp(0, false, self.seq, ts, 0xd7f, &[0xff; 160]);
        let _ = self.send(s, pkt);
    }

    fn wait(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
    }

    /// A key held `held` units: start, an update every 50 ms (400 units), then the end
    /// packet three times (RFC 4733 §2.5.1.4), as phones send it.
    fn press(&mut self, s: &mut MediaSession, ts: u32, key: u8, held: u16) {
        self.event(s, true, ts, key, false, 160);
        let mut dur = 160;
        while dur + 400 < held {
            self.wait(50);
            dur += 400;
            self.event(s, false, ts, key, false, dur);
        }
        for _ in 0..3 {
            self.wait(50);
            self.event(s, false, ts, key, true, held);
        }
    }
}

fn session(t0: Instant) -> MediaSession {
    let mut s = MediaSession::relay(t0);
    s.apply(t0, &plan(leg(CALLER), leg(CALLEE))).expect("plan");
    s.handle_command(
        t0,
        Command::DetectDtmf {
            side: Side::Caller,
            spec: DtmfSpec {
                payload_type: Some(TE),
                clock_rate: 8000,
                inband: None,
            },
        },
    )
    .expect("detect");
    s
}

fn dtmf(digit: char, ms: u64) -> Event {
    Event::Dtmf {
        side: Side::Caller,
        digit,
        duration: Duration::from_millis(ms),
    }
}

#[test]
fn each_digit_once_with_its_duration() {
    let t0 = base();
    let mut s = session(t0);
    let mut phone = Phone { seq: 1000, now: t0 };
    for i in 0..5 {
        phone.audio(&mut s, 160 * i);
        phone.wait(20);
    }
    // '5' held 1280 units (160 ms), then audio, then '#' held 1600 (200 ms), then audio.
    phone.press(&mut s, 800, 5, 1280);
    assert_eq!(
        events(&mut s),
        vec![dtmf('5', 160)],
        "reported at the first end packet"
    );
    for i in 0..5 {
        phone.wait(20);
        phone.audio(&mut s, 3000 + 160 * i);
    }
    phone.press(&mut s, 4000, 11, 1600);
    phone.wait(20);
    phone.audio(&mut s, 6000);
    // A late update of '#' after its end: still the same event.
    phone.event(&mut s, false, 4000, 11, false, 1200);
    assert_eq!(events(&mut s), vec![dtmf('#', 200)]);
    // Nothing left pending.
    let (_, later) = run_until(&mut s, phone.now, phone.now + Duration::from_secs(5));
    assert!(later.is_empty(), "{later:?}");
}

#[test]
fn the_same_key_twice_is_two_digits() {
    let t0 = base();
    let mut s = session(t0);
    let mut phone = Phone { seq: 1, now: t0 };
    phone.press(&mut s, 1000, 1, 800);
    phone.wait(100);
    phone.press(&mut s, 3000, 1, 800);
    assert_eq!(events(&mut s), vec![dtmf('1', 100), dtmf('1', 100)]);
}

#[test]
fn an_event_whose_ends_were_lost_is_reported_once_later() {
    let t0 = base();
    let mut s = session(t0);
    let mut phone = Phone { seq: 1, now: t0 };
    phone.event(&mut s, true, 500, 9, false, 160);
    phone.wait(50);
    phone.event(&mut s, false, 500, 9, false, 560);
    assert!(events(&mut s).is_empty());
    assert_eq!(s.poll_timeout(), Some(phone.now + LOST_END));
    let (_, got) = run_until(&mut s, phone.now, phone.now + Duration::from_secs(5));
    assert_eq!(got, vec![(phone.now + LOST_END, dtmf('9', 70))]);

    // Lost ends followed by a new event: the old one is reported when the new one starts.
    phone.wait(2000);
    phone.event(&mut s, true, 20_000, 0, false, 160);
    phone.wait(50);
    phone.event(&mut s, true, 30_000, 10, false, 160);
    assert_eq!(events(&mut s), vec![dtmf('0', 20)]);
    phone.wait(50);
    phone.event(&mut s, false, 30_000, 10, true, 800);
    assert_eq!(events(&mut s), vec![dtmf('*', 100)]);
}

#[test]
fn a_long_event_in_segments_is_one_digit() {
    let t0 = base();
    let mut s = session(t0);
    let mut phone = Phone { seq: 1, now: t0 };
    // RFC 4733 §2.5.1.3: the first segment runs to the largest duration, the next one
    // starts at the timestamp where it ended.
    phone.event(&mut s, true, 100, 12, false, 160);
    phone.wait(50);
    phone.event(&mut s, false, 100, 12, false, 0xffff);
    phone.wait(50);
    phone.event(&mut s, false, 100 + 0xffff, 12, false, 400);
    phone.wait(50);
    phone.event(&mut s, false, 100 + 0xffff, 12, true, 800);
    assert_eq!(
        events(&mut s),
        vec![Event::Dtmf {
            side: Side::Caller,
            digit: 'A',
            duration: Duration::from_micros((0xffff + 800) * 125),
        }]
    );
}
