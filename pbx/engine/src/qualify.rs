//! OPTIONS qualify (the "qualify" of Asterisk, the "nathelper ping" of Kamailio): every
//! `[sip] qualify_interval`, each registered device is sent an OPTIONS over the flow it
//! registered from (which also keeps its NAT binding open); a device that never answers is
//! marked unreachable.

use crate::location::{BindingPeer, Location};
use crate::now::Now;
use crate::peer::Peer;
use bytes::Bytes;
use pbx_sip::message::{Message, Request};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// One device to qualify, routed to the shard its Call-ID hashes to so that the answer
/// (dispatched by Call-ID too) finds the transaction.
pub struct Target {
    pub aor: String,
    pub contact: String,
    pub call_id: String,
    pub peer: Peer,
}

/// When to qualify which devices: every `interval`, every live binding. The shell sleeps
/// until [`Schedule::poll_timeout`], calls [`Schedule::due`] and hands each [`Target`] to the
/// shard its Call-ID routes to, as `Input::Qualify`.
pub struct Schedule {
    interval: Duration,
    domain: String,
    /// The next round; `None` when qualify is off.
    next: Option<Instant>,
}

impl Schedule {
    /// Rounds every `interval` from `start` (the first one `interval` later); a zero
    /// interval switches qualify off.
    pub fn new(interval: Duration, domain: String, start: Instant) -> Schedule {
        let next = (!interval.is_zero()).then(|| start + interval);
        Schedule {
            interval,
            domain,
            next,
        }
    }

    /// When the next round is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next
    }

    /// The devices to send an OPTIONS at `now`: none before the round is due, else every
    /// live binding (and the next round is set one interval on; rounds missed while the
    /// shell was late are skipped, not bunched).
    #[must_use]
    pub fn due(&mut self, now: Now, location: &Location) -> Vec<Target> {
        let Some(next) = self.next.filter(|next| *next <= now.at) else {
            return Vec::new();
        };
        let mut following = next + self.interval;
        while following <= now.at {
            following += self.interval;
        }
        self.next = Some(following);
        location
            .snapshot(now.unix())
            .into_iter()
            .map(|(aor, registration)| {
                let contact = registration.binding.contact.to_string();
                // One Call-ID per device: its OPTIONS always land on the same shard, which
                // skips a device whose previous OPTIONS is still unanswered.
                let call_id = format!(
                    "qualify-{:016x}@{}",
                    device_hash(&aor, &contact),
                    self.domain
                );
                Target {
                    peer: registration.peer(),
                    aor,
                    contact,
                    call_id,
                }
            })
            .collect()
    }
}

/// A stable hash of one device (SipHash with fixed keys: the same in every process).
fn device_hash(aor: &str, contact: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (aor, contact).hash(&mut hasher);
    hasher.finish()
}

/// The OPTIONS request for a target (RFC 3261 §11.1), with a fresh branch and From tag.
pub fn options_request(
    target: &Target,
    domain: &str,
    user_agent: &str,
    rng: &mut impl rand::RngCore,
) -> Option<Request> {
    let local = target.peer.local;
    // A wildcard listener has no address of its own to put in Via; the domain then stands in.
    let host = match local.ip() {
        ip if ip.is_unspecified() => domain.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    let text = format!(
        "OPTIONS {contact} SIP/2.0\r\n\
         Via: SIP/2.0/{transport} {host}:{port};branch=z9hG4bK{branch:016x};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:pbx@{domain}>;tag={tag:016x}\r\n\
         To: <{contact}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\n\
         User-Agent: {user_agent}\r\n\
         Content-Length: 0\r\n\r\n",
        contact = target.contact,
        transport = target.peer.kind.via_token(),
        port = local.port(),
        branch = rng.next_u64(),
        tag = rng.next_u64(),
        call_id = target.call_id,
    );
    match pbx_sip::parse::parse_message(Bytes::from(text)) {
        Ok(Message::Request(request)) => Some(request),
        _ => None,
    }
}
