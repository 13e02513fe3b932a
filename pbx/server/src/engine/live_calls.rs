//! The calls in progress, for the web admin's Calls page and `GET /api/v1/calls`: a small
//! table the shard drivers keep from the engine's [`CallState`] outputs (who calls whom,
//! answered when) and media plans (codec, SRTP per leg). Read-mostly and tiny next to the
//! calls themselves: one mutex is enough.

use pbx_engine::CallState;
use pbx_media::MediaPlan;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// One call in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCall {
    /// The shard that owns the call, and the call's number there.
    pub shard: usize,
    pub call: u64,
    pub call_id: String,
    pub caller: String,
    pub called: String,
    /// Unix seconds.
    pub started_at: u64,
    pub answered_at: Option<u64>,
    /// The codec both legs agreed on, once media is set up (`PCMU/8000`).
    pub codec: Option<String>,
    pub caller_encrypted: bool,
    pub callee_encrypted: bool,
}

#[derive(Default)]
pub struct LiveCalls {
    calls: Mutex<BTreeMap<(usize, u64), LiveCall>>,
}

impl LiveCalls {
    /// What shard `shard`'s engine said about one of its calls, at `now_unix`.
    pub fn apply(&self, shard: usize, state: CallState, now_unix: u64) {
        let Ok(mut calls) = self.calls.lock() else {
            return;
        };
        match state {
            CallState::Started {
                call,
                call_id,
                caller,
                called,
            } => {
                calls.insert(
                    (shard, call),
                    LiveCall {
                        shard,
                        call,
                        call_id,
                        caller,
                        called,
                        started_at: now_unix,
                        answered_at: None,
                        codec: None,
                        caller_encrypted: false,
                        callee_encrypted: false,
                    },
                );
            }
            CallState::Answered { call } => {
                if let Some(live) = calls.get_mut(&(shard, call)) {
                    live.answered_at.get_or_insert(now_unix);
                }
            }
            CallState::Ended { call } => {
                calls.remove(&(shard, call));
            }
        }
    }

    /// A media plan applied to a call's relay: its codec and which legs are SRTP.
    pub fn media(&self, shard: usize, call: u64, plan: &MediaPlan) {
        if let Ok(mut calls) = self.calls.lock()
            && let Some(live) = calls.get_mut(&(shard, call))
        {
            live.codec = Some(plan.codec.clone()).filter(|c| !c.is_empty());
            live.caller_encrypted = plan.caller.srtp.is_some();
            live.callee_encrypted = plan.callee.srtp.is_some();
        }
    }

    /// Shard `shard`'s engine was replaced: its calls are gone.
    pub fn clear_shard(&self, shard: usize) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.retain(|(s, _), _| *s != shard);
        }
    }

    /// Every call in progress, oldest first.
    pub fn list(&self) -> Vec<LiveCall> {
        let mut all: Vec<LiveCall> = self
            .calls
            .lock()
            .map(|calls| calls.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by_key(|c| (c.started_at, c.shard, c.call));
        all
    }

    /// The shard and number of the call with this id (`SHARD-CALL`), if it is live.
    pub fn find(&self, id: &str) -> Option<(usize, u64)> {
        let (shard, call) = id.split_once('-')?;
        let key = (shard.parse().ok()?, call.parse().ok()?);
        let calls = self.calls.lock().ok()?;
        calls.contains_key(&key).then_some(key)
    }
}

impl LiveCall {
    /// Its id for the web admin and the API.
    pub fn id(&self) -> String {
        format!("{}-{}", self.shard, self.call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbx_media::LegPlan;

    fn started(call: u64, caller: &str) -> CallState {
        CallState::Started {
            call,
            call_id: format!("c{call}"),
            caller: caller.into(),
            called: "1000".into(),
        }
    }

    #[test]
    fn a_call_is_listed_from_start_to_end() {
        let live = LiveCalls::default();
        live.apply(1, started(7, "1001"), 100);
        live.apply(0, started(7, "1002"), 90);
        let all = live.list();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].caller, "1002", "oldest first");
        assert_eq!(all[1].id(), "1-7");
        assert_eq!(live.find("1-7"), Some((1, 7)));
        assert_eq!(live.find("1-8"), None);
        assert_eq!(live.find("x"), None);

        live.apply(1, CallState::Answered { call: 7 }, 105);
        let plan = MediaPlan {
            caller: LegPlan {
                srtp: None,
                ..LegPlan::default()
            },
            callee: LegPlan::default(),
            codec: "PCMU/8000".into(),
        };
        live.media(1, 7, &plan);
        let call = live.list().into_iter().find(|c| c.shard == 1).unwrap();
        assert_eq!(call.answered_at, Some(105));
        assert_eq!(call.codec.as_deref(), Some("PCMU/8000"));
        assert!(!call.caller_encrypted && !call.callee_encrypted);
        // A second Answered (a re-INVITE's) keeps the first time.
        live.apply(1, CallState::Answered { call: 7 }, 200);
        assert_eq!(live.list()[1].answered_at, Some(105));

        live.apply(1, CallState::Ended { call: 7 }, 300);
        assert_eq!(live.list().len(), 1);
        live.clear_shard(0);
        assert!(live.list().is_empty());
    }
}
