//! The shared front door: every transport asks the [`Guard`] about a packet's source before
//! parsing it, and the engine reports authentication failures to it.

use super::acl::{Acl, canonical};
use super::bans::FailureTracker;
use super::rate::SourceRateLimit;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

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
    failures: Mutex<FailureTracker>,
    rate: SourceRateLimit,
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
        rate: SourceRateLimit,
    ) -> Guard {
        Guard {
            acl,
            bans: RwLock::new(HashMap::new()),
            failures: Mutex::new(FailureTracker::new(max_auth_failures, failure_window)),
            rate,
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

    /// Records a failed authentication; returns the ban to persist when this one crossed the
    /// threshold.
    pub fn record_auth_failure(&self, ip: IpAddr, now: Instant, now_unix: u64) -> Option<Ban> {
        let ip = canonical(ip);
        let crossed = {
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            failures.record_failure(ip, now)
        };
        if !crossed {
            return None;
        }
        let until = now_unix.saturating_add(self.ban_for.as_secs().max(1));
        let mut bans = self.bans.write().unwrap_or_else(|e| e.into_inner());
        bans.insert(
            ip,
            BanEntry {
                until,
                created_here: Some(now),
            },
        );
        Some(Ban {
            address: ip,
            reason: "too many failed authentications".into(),
            until,
        })
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
        self.failures
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
mod tests {
    use super::*;

    fn guard(max: u32) -> Guard {
        let all = vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()];
        Guard::new(
            Acl::new(all, vec!["192.0.2.0/24".parse().unwrap()]),
            max,
            Duration::from_secs(60),
            Duration::from_secs(3600),
            SourceRateLimit::new(0, 0),
        )
    }

    #[test]
    fn ban_after_threshold_only_for_that_source() {
        let g = guard(3);
        let t0 = Instant::now();
        let attacker: IpAddr = "127.0.0.2".parse().unwrap();
        let phone: IpAddr = "127.0.0.3".parse().unwrap();
        assert!(g.record_auth_failure(attacker, t0, 1000).is_none());
        assert!(g.record_auth_failure(attacker, t0, 1000).is_none());
        let ban = g
            .record_auth_failure(attacker, t0, 1000)
            .expect("third failure bans");
        assert_eq!(ban.until, 1000 + 3600);
        assert_eq!(g.check(attacker, 1001), Verdict::Banned);
        assert_eq!(g.check(phone, 1001), Verdict::Pass);
        // Expired.
        assert_eq!(g.check(attacker, 1000 + 3600), Verdict::Pass);
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
        g.record_auth_failure(a, t0, 100).expect("ban");
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
