//! The recent security events (failed authentications and logins, bans, refused networks,
//! ACL and rate-limit drops), kept in a ring for the web admin's Security page and
//! dashboard. Bounded: the oldest fall out; a run of one kind from one source is one entry
//! with a count, so a flood of drops does not push the failed logins out.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Mutex;

pub use pbx_web_admin::live::{SecurityEvent, SecurityKind};

/// How many events are kept.
pub const KEPT: usize = 200;

pub struct SecurityLog {
    ring: Mutex<VecDeque<SecurityEvent>>,
    cap: usize,
}

impl Default for SecurityLog {
    fn default() -> Self {
        SecurityLog::new(KEPT)
    }
}

impl SecurityLog {
    pub fn new(cap: usize) -> SecurityLog {
        SecurityLog {
            ring: Mutex::new(VecDeque::with_capacity(cap.min(KEPT))),
            cap: cap.max(1),
        }
    }

    /// Records an event at `now_unix`.
    pub fn push(
        &self,
        now_unix: u64,
        kind: SecurityKind,
        source: IpAddr,
        user: &str,
        detail: &str,
    ) {
        let Ok(mut ring) = self.ring.lock() else {
            return;
        };
        if let Some(last) = ring.back_mut()
            && last.kind == kind
            && last.source == source
            && last.user == user
        {
            last.at = now_unix;
            last.count += 1;
            last.detail = detail.to_string();
            return;
        }
        if ring.len() >= self.cap {
            ring.pop_front();
        }
        ring.push_back(SecurityEvent {
            at: now_unix,
            kind,
            source,
            user: user.to_string(),
            detail: detail.to_string(),
            count: 1,
        });
    }

    /// Newest first, at most `limit`.
    pub fn recent(&self, limit: usize) -> Vec<SecurityEvent> {
        self.ring
            .lock()
            .map(|ring| ring.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_counts_repeats() {
        let log = SecurityLog::new(3);
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        log.push(10, SecurityKind::AuthFailed, a, "1001", "wrong password");
        log.push(11, SecurityKind::AuthFailed, a, "1001", "wrong password");
        log.push(12, SecurityKind::AclRefused, b, "", "");
        log.push(13, SecurityKind::Banned, a, "", "until 99");
        let recent = log.recent(10);
        assert_eq!(recent.len(), 3);
        assert_eq!(recent[0].kind, SecurityKind::Banned);
        assert_eq!(recent[2].count, 2);
        assert_eq!(recent[2].at, 11);
        log.push(14, SecurityKind::LoginFailed, b, "admin", "");
        let recent = log.recent(10);
        assert_eq!(recent.len(), 3, "the oldest fell out");
        assert_eq!(recent[2].kind, SecurityKind::AclRefused);
        assert_eq!(log.recent(1).len(), 1);
    }
}
