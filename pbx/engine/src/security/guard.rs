//! The shared front door: every transport asks the [`Guard`] about a packet's source before
//! parsing it, and the engine reports authentication failures to it.

use super::acl::{Acl, canonical};
use super::gate::Gate;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The per-source request-rate limit the guard applies after bans and the ACL. It reads a
/// clock, so it is the shell's; the engine never calls [`Guard::check`].
pub trait RateLimit: Send + Sync {
    /// True when this packet from `ip` is within its budget.
    fn admit(&self, ip: IpAddr) -> bool;

    /// Forgets sources whose budget is full again (periodic housekeeping).
    fn forget_idle(&self);
}

/// No rate limit: every packet is within budget.
pub struct NoRateLimit;

impl RateLimit for NoRateLimit {
    fn admit(&self, _ip: IpAddr) -> bool {
        true
    }

    fn forget_idle(&self) {}
}

/// What to do with a packet from some source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Banned: dropped without an answer.
    Banned,
    /// Outside `[security] allow`, or inside `deny`: dropped without an answer.
    NotAllowed,
    /// Over the per-source rate: dropped.
    RateLimited,
}

impl Verdict {
    /// The label of the dropped-input counter.
    pub fn drop_reason(self) -> &'static str {
        match self {
            Verdict::Pass => "none",
            Verdict::Banned => "banned",
            Verdict::NotAllowed => "acl",
            Verdict::RateLimited => "rate_limit",
        }
    }
}

/// What a credential check tells the gate: its result for the caller, and whether it counts
/// as a failed guess (a stale nonce or a malformed header does not).
pub struct CheckOutcome<R> {
    pub result: R,
    pub failed: bool,
}

/// Whether a credential that arrived may be checked: see [`Guard::admit_credential`].
#[derive(Debug)]
pub enum Admission {
    Granted(Ticket),
    /// The source is banned: drop the request without an answer.
    Banned,
    /// The source has the limit's worth of failures and checks on their way: the credential
    /// is not checked; answer 503 with Retry-After (a phone retries; a guess learns nothing).
    Busy,
}

/// A credential's place in the gate: it holds one of its source's slots until it is checked
/// or dropped.
pub struct Ticket {
    guard: Arc<Guard>,
    ip: IpAddr,
    held: bool,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket").field("ip", &self.ip).finish()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.held {
            self.guard.release(self.ip);
        }
    }
}

/// What [`Guard::check_credential`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Gated<R> {
    /// The source is banned: the credential was not looked at. Answer nothing.
    Refused,
    /// The check ran; `ban` is set when this failure reached the limit.
    Checked { result: R, ban: Option<Ban> },
}

/// A ban as the shell persists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ban {
    pub address: IpAddr,
    pub reason: String,
    /// Unix seconds.
    pub until: u64,
}

#[derive(Clone, Debug)]
struct BanEntry {
    until: u64,
    /// When this process created it, so a sync from the database that has not seen the write
    /// yet does not lift it.
    created_here: Option<Instant>,
}

pub struct Guard {
    acl: Acl,
    bans: RwLock<HashMap<IpAddr, BanEntry>>,
    gate: Mutex<Gate>,
    rate: Box<dyn RateLimit>,
    ban_for: Duration,
}

/// How long a ban made here survives a database sync that does not list it yet.
const PENDING_WRITE_GRACE: Duration = Duration::from_secs(10);

impl Guard {
    pub fn new(
        acl: Acl,
        max_auth_failures: u32,
        failure_window: Duration,
        ban_for: Duration,
        rate: impl RateLimit + 'static,
    ) -> Guard {
        Guard {
            acl,
            bans: RwLock::new(HashMap::new()),
            gate: Mutex::new(Gate::new(max_auth_failures, failure_window)),
            rate: Box::new(rate),
            ban_for,
        }
    }

    /// Called for every packet, before parsing.
    pub fn check(&self, ip: IpAddr, now_unix: u64) -> Verdict {
        let ip = canonical(ip);
        if self.is_banned(ip, now_unix) {
            return Verdict::Banned;
        }
        if !self.acl.permits(ip) {
            return Verdict::NotAllowed;
        }
        if !self.rate.admit(ip) {
            return Verdict::RateLimited;
        }
        Verdict::Pass
    }

    pub fn is_banned(&self, ip: IpAddr, now_unix: u64) -> bool {
        let bans = self.bans.read().unwrap_or_else(|e| e.into_inner());
        bans.get(&canonical(ip)).is_some_and(|b| b.until > now_unix)
    }

    /// The one gate in front of every credential check (SIP digest of REGISTER and INVITE today;
    /// the voicemail PIN and the web login go through it too): at most `max_auth_failures`
    /// failed checks per source address per window, across shards, transports and kinds.
    ///
    /// Step one, where a credential arrives (in arrival order): a ticket, refused while the
    /// source's failures in the window plus its credentials already on their way reach the
    /// limit. A burst of guesses gets at most the limit's worth of tickets, so a right
    /// password sent after them is never checked, however the engine's threads reorder them.
    pub fn admit_credential(
        self: &Arc<Self>,
        ip: IpAddr,
        now: Instant,
        now_unix: u64,
    ) -> Admission {
        let ip = canonical(ip);
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        if self.is_banned(ip, now_unix) {
            return Admission::Banned;
        }
        if !gate.admit(ip, now) {
            return Admission::Busy;
        }
        Admission::Granted(Ticket {
            guard: self.clone(),
            ip,
            held: true,
        })
    }

    /// Step two: the check itself, with the ticket. The decision, the check and the counting
    /// happen under one lock: once the limit is reached (the source is banned), `check` is
    /// not run at all. The ban is returned (to persist and count) exactly once, by the check
    /// that reached the limit.
    pub fn check_credential<R>(
        &self,
        mut ticket: Ticket,
        now: Instant,
        now_unix: u64,
        check: impl FnOnce() -> CheckOutcome<R>,
    ) -> Gated<R> {
        let ip = ticket.ip;
        let mut gate = self.gate.lock().unwrap_or_else(|e| e.into_inner());
        gate.release(ip);
        ticket.held = false;
        if self.is_banned(ip, now_unix) {
            return Gated::Refused;
        }
        let outcome = check();
        if !outcome.failed {
            return Gated::Checked {
                result: outcome.result,
                ban: None,
            };
        }
        let ban = gate
            .record_failure(ip, now)
            .then(|| self.ban(ip, now, now_unix));
        Gated::Checked {
            result: outcome.result,
            ban,
        }
    }

    fn release(&self, ip: IpAddr) {
        self.gate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .release(ip);
    }

    fn ban(&self, ip: IpAddr, now: Instant, now_unix: u64) -> Ban {
        let until = now_unix.saturating_add(self.ban_for.as_secs().max(1));
        let mut bans = self.bans.write().unwrap_or_else(|e| e.into_inner());
        bans.insert(
            ip,
            BanEntry {
                until,
                created_here: Some(now),
            },
        );
        Ban {
            address: ip,
            reason: "too many failed authentications".into(),
            until,
        }
    }

    /// Replaces the ban table with the database's view, keeping bans made here moments ago
    /// whose write may not have landed yet.
    pub fn sync_bans(&self, from_store: &[Ban], now: Instant) {
        let mut bans = self.bans.write().unwrap_or_else(|e| e.into_inner());
        bans.retain(|_, b| {
            b.created_here
                .is_some_and(|t| now.saturating_duration_since(t) < PENDING_WRITE_GRACE)
        });
        for ban in from_store {
            bans.insert(
                canonical(ban.address),
                BanEntry {
                    until: ban.until,
                    created_here: None,
                },
            );
        }
    }

    pub fn active_bans(&self, now_unix: u64) -> usize {
        let bans = self.bans.read().unwrap_or_else(|e| e.into_inner());
        bans.values().filter(|b| b.until > now_unix).count()
    }

    /// Periodic housekeeping: forget quiet sources.
    pub fn housekeeping(&self, now: Instant, now_unix: u64) {
        self.rate.forget_idle();
        self.gate
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .prune(now);
        self.bans
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, b| b.until > now_unix);
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // `Instant::now()`: one fixed base for virtual time
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn guard(max: u32) -> Arc<Guard> {
        let all = vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()];
        Arc::new(Guard::new(
            Acl::new(all, vec!["192.0.2.0/24".parse().unwrap()]),
            max,
            Duration::from_secs(60),
            Duration::from_secs(3600),
            NoRateLimit,
        ))
    }

    /// One guess through both steps of the gate; `None` when it was not admitted.
    fn guess(
        g: &Arc<Guard>,
        ip: IpAddr,
        now: Instant,
        now_unix: u64,
        right: bool,
    ) -> Option<Gated<()>> {
        let Admission::Granted(ticket) = g.admit_credential(ip, now, now_unix) else {
            return None;
        };
        Some(g.check_credential(ticket, now, now_unix, || CheckOutcome {
            result: (),
            failed: !right,
        }))
    }

    fn banned(gated: Option<Gated<()>>) -> bool {
        matches!(gated, Some(Gated::Checked { ban: Some(_), .. }))
    }

    fn checked_without_ban(gated: Option<Gated<()>>) -> bool {
        matches!(gated, Some(Gated::Checked { ban: None, .. }))
    }

    #[test]
    fn ban_after_threshold_only_for_that_source() {
        let g = guard(3);
        let t0 = Instant::now();
        let attacker: IpAddr = "127.0.0.2".parse().unwrap();
        let phone: IpAddr = "127.0.0.3".parse().unwrap();
        assert!(checked_without_ban(guess(&g, attacker, t0, 1000, false)));
        assert!(checked_without_ban(guess(&g, attacker, t0, 1000, false)));
        let Some(Gated::Checked { ban: Some(ban), .. }) = guess(&g, attacker, t0, 1000, false)
        else {
            panic!("the third failure bans");
        };
        assert_eq!(ban.until, 1000 + 3600);
        assert_eq!(g.check(attacker, 1001), Verdict::Banned);
        assert_eq!(g.check(phone, 1001), Verdict::Pass);
        // Expired.
        assert_eq!(g.check(attacker, 1000 + 3600), Verdict::Pass);
    }

    #[test]
    fn after_the_limit_no_credential_is_checked_and_no_second_ban_is_made() {
        let g = guard(3);
        let t0 = Instant::now();
        let attacker: IpAddr = "127.0.0.2".parse().unwrap();
        let bans = (0..3)
            .filter(|_| banned(guess(&g, attacker, t0, 1000, false)))
            .count();
        assert_eq!(bans, 1);
        assert!(matches!(
            g.admit_credential(attacker, t0, 1001),
            Admission::Banned
        ));
        for _ in 0..10 {
            assert!(guess(&g, attacker, t0, 1001, true).is_none());
        }
    }

    #[test]
    fn a_ticket_taken_before_a_ban_is_refused_after_it() {
        // A request admitted, then queued while its source was banned (here by another node,
        // through the database): when its turn comes, it is not checked.
        let g = guard(5);
        let t0 = Instant::now();
        let attacker: IpAddr = "127.0.0.2".parse().unwrap();
        let Admission::Granted(late) = g.admit_credential(attacker, t0, 1000) else {
            panic!("first ticket");
        };
        let ban = Ban {
            address: attacker,
            reason: "x".into(),
            until: 5000,
        };
        g.sync_bans(&[ban], t0);
        let mut looked = false;
        let gated = g.check_credential(late, t0, 1000, || {
            looked = true;
            CheckOutcome {
                result: (),
                failed: false,
            }
        });
        assert_eq!(gated, Gated::Refused);
        assert!(!looked, "a credential was checked after the ban");
    }

    #[test]
    fn a_burst_in_arrival_order_never_reaches_a_right_guess_after_the_limit() {
        let g = guard(5);
        let t0 = Instant::now();
        let attacker: IpAddr = "127.0.0.2".parse().unwrap();
        // All twenty arrive before any is checked (a pipelined burst).
        let tickets: Vec<_> = (0..20)
            .map(|_| g.admit_credential(attacker, t0, 1000))
            .collect();
        let granted = tickets
            .iter()
            .filter(|a| matches!(a, Admission::Granted(_)))
            .count();
        assert_eq!(granted, 5);
        assert!(
            matches!(tickets.get(7), Some(Admission::Busy)),
            "guess 8 is never checked"
        );
    }

    #[test]
    fn a_dropped_ticket_gives_its_slot_back() {
        let g = guard(1);
        let t0 = Instant::now();
        let phone: IpAddr = "10.0.0.1".parse().unwrap();
        let first = g.admit_credential(phone, t0, 1);
        assert!(matches!(g.admit_credential(phone, t0, 1), Admission::Busy));
        drop(first);
        assert!(matches!(
            g.admit_credential(phone, t0, 1),
            Admission::Granted(_)
        ));
    }

    #[test]
    fn successes_do_not_reset_the_count_and_other_sources_are_apart() {
        let g = guard(2);
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(checked_without_ban(guess(&g, a, t0, 1, false)));
        assert!(checked_without_ban(guess(&g, a, t0, 1, true)));
        assert!(checked_without_ban(guess(&g, b, t0, 1, false)));
        assert!(banned(guess(&g, a, t0, 1, false)));
        assert!(checked_without_ban(guess(&g, b, t0, 1, true)));
    }

    #[test]
    fn a_burst_from_many_threads_gets_exactly_the_limit_checked() {
        // The shards run on several threads: a burst spread over them must still stop at
        // exactly `max` checked guesses, with one ban.
        let g = guard(5);
        let checked = Arc::new(AtomicUsize::new(0));
        let bans = Arc::new(AtomicUsize::new(0));
        let attacker: IpAddr = "127.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (g, checked, bans) = (g.clone(), checked.clone(), bans.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let Admission::Granted(ticket) = g.admit_credential(attacker, t0, 1000)
                        else {
                            continue;
                        };
                        let gated = g.check_credential(ticket, t0, 1000, || {
                            checked.fetch_add(1, Ordering::SeqCst);
                            CheckOutcome {
                                result: (),
                                failed: true,
                            }
                        });
                        if let Gated::Checked { ban: Some(_), .. } = gated {
                            bans.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(checked.load(Ordering::SeqCst), 5);
        assert_eq!(bans.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn deny_network_is_not_allowed() {
        let g = guard(3);
        assert_eq!(
            g.check("192.0.2.7".parse().unwrap(), 0),
            Verdict::NotAllowed
        );
    }

    #[test]
    fn sync_lifts_removed_bans_but_keeps_fresh_local_ones() {
        let g = guard(1);
        let t0 = Instant::now();
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.4".parse().unwrap();
        assert!(banned(guess(&g, a, t0, 100, false)));
        // The store has not seen the write yet: the local ban survives the sync...
        g.sync_bans(
            &[Ban {
                address: b,
                reason: "x".into(),
                until: 500,
            }],
            t0,
        );
        assert!(g.is_banned(a, 101));
        assert!(g.is_banned(b, 101));
        // ...but once the grace is over, the store is the truth (`pbx ban remove` lifted it).
        g.sync_bans(&[], t0 + Duration::from_secs(11));
        assert!(!g.is_banned(a, 101));
        assert!(!g.is_banned(b, 101));
    }
}
