//! Admin sessions, kept in memory: a restart logs everyone out, which is the safe direction
//! (docs/decisions.md). A session ends after `idle` without a request or `absolute` after
//! login, whichever comes first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// One logged-in admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    /// The anti-CSRF token every form of this session carries.
    pub csrf: String,
    pub created: u64,
    pub last_seen: u64,
}

/// Why a session cookie did not give a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Unknown,
    Expired,
}

pub struct Sessions {
    idle: u64,
    absolute: u64,
    /// Keyed by the SHA-256 of the cookie value, so a memory dump shows no usable cookie.
    by_id: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes as hex.
pub fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

impl Sessions {
    pub fn new(idle: Duration, absolute: Duration) -> Sessions {
        Sessions {
            idle: idle.as_secs().max(1),
            absolute: absolute.as_secs().max(1),
            by_id: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session for `user`; returns the cookie value.
    pub fn create(&self, user: &str, now: u64) -> String {
        let id = random_token();
        let session = Session {
            user: user.to_string(),
            csrf: random_token(),
            created: now,
            last_seen: now,
        };
        let mut map = self.map();
        // Forget the ended ones now and then, so the map cannot grow without bound.
        map.retain(|_, s| !self.ended(s, now));
        map.insert(key(&id), session);
        id
    }

    fn ended(&self, s: &Session, now: u64) -> bool {
        now >= s.last_seen.saturating_add(self.idle)
            || now >= s.created.saturating_add(self.absolute)
    }

    /// The session of cookie value `id`, marked as used now.
    pub fn touch(&self, id: &str, now: u64) -> Result<Session, Lookup> {
        let k = key(id);
        let mut map = self.map();
        let Some(session) = map.get_mut(&k) else {
            return Err(Lookup::Unknown);
        };
        if self.ended(session, now) {
            map.remove(&k);
            return Err(Lookup::Expired);
        }
        session.last_seen = now;
        Ok(session.clone())
    }

    pub fn remove(&self, id: &str) {
        self.map().remove(&key(id));
    }

    /// Ends every session of `user` (an account deleted).
    pub fn end_user(&self, user: &str) {
        self.map().retain(|_, s| s.user != user);
    }

    pub fn count(&self) -> usize {
        self.map().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_and_absolute_expiry() {
        let s = Sessions::new(Duration::from_secs(100), Duration::from_secs(250));
        let id = s.create("admin", 1000);
        assert_eq!(s.touch(&id, 1099).map(|x| x.user), Ok("admin".into()));
        // Used at 1099: idle counts from there.
        assert!(s.touch(&id, 1198).is_ok());
        assert!(s.touch(&id, 1240).is_ok());
        // Past the absolute limit however busy.
        assert_eq!(s.touch(&id, 1250), Err(Lookup::Expired));
        assert_eq!(s.touch(&id, 1251), Err(Lookup::Unknown));

        let id = s.create("admin", 2000);
        assert_eq!(s.touch(&id, 2100), Err(Lookup::Expired));
        assert_eq!(s.touch("nope", 2000), Err(Lookup::Unknown));
    }

    #[test]
    fn logout_and_distinct_tokens() {
        let s = Sessions::new(Duration::from_secs(100), Duration::from_secs(250));
        let a = s.create("a", 0);
        let b = s.create("b", 0);
        assert_ne!(a, b);
        s.remove(&a);
        assert!(s.touch(&a, 1).is_err());
        assert!(s.touch(&b, 1).is_ok());
    }
}
