//! Virtual time for sessions: step a session to its next deadline, collecting what it sends
//! and reports, as the server's worker does with real time.
#![allow(dead_code)] // each test file uses a different subset

use std::time::Instant;

use pbx_media::session::{Event, MediaSession, Transmit};

/// One datagram the session sent: when, where, and the bytes.
#[derive(Debug)]
pub struct Sent {
    pub at: Instant,
    pub transmit: Transmit,
    pub bytes: Vec<u8>,
}

/// Runs the session's timers and transmissions from `now` until `end` (inclusive); returns
/// what it sent and reported, with the instant of each event.
pub fn run_until(
    s: &mut MediaSession,
    mut now: Instant,
    end: Instant,
) -> (Vec<Sent>, Vec<(Instant, Event)>) {
    let mut sent = Vec::new();
    let mut events = Vec::new();
    let mut buf = [0u8; 2048];
    for _ in 0..1_000_000 {
        while let Some(t) = s.poll_transmit(now, &mut buf) {
            sent.push(Sent {
                at: now,
                transmit: t,
                bytes: buf[..t.len].to_vec(),
            });
        }
        while let Some(e) = s.poll_event() {
            events.push((now, e));
        }
        match s.poll_timeout() {
            Some(at) if at <= end => {
                assert!(at >= now, "a deadline in the past was not acted on");
                now = at;
                s.handle_timeout(now);
            }
            _ => return (sent, events),
        }
    }
    panic!("the session never settled");
}

/// Events only, from a session stepped once at `now`.
pub fn events(s: &mut MediaSession) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}
