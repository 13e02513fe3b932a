//! The answer the caller gets when no device answered (RFC 3261 §16.7 step 6, simplified for
//! a B2BUA that forks to the devices of one extension).

use crate::record::Disposition;
use pbx_sip::status::StatusCode;

/// The best final response among the devices' failures, and what it means for the CDR.
pub fn best_failure(statuses: &[StatusCode]) -> (StatusCode, Disposition) {
    let has = |code: u16| statuses.iter().any(|s| s.code() == code);
    // RFC 3261 §16.7: a 6xx ends the search (global failure); among 4xx, a busy device
    // says more about the extension than an unreachable one.
    if let Some(global) = statuses.iter().find(|s| s.class() == 6) {
        let disposition = if matches!(global.code(), 600 | 603) {
            Disposition::Busy
        } else {
            Disposition::Failed
        };
        return (*global, disposition);
    }
    if has(486) {
        return (StatusCode::BUSY_HERE, Disposition::Busy);
    }
    if let Some(redirect) = statuses.iter().find(|s| s.class() == 3) {
        return (*redirect, Disposition::Failed);
    }
    let unreachable = |s: &StatusCode| matches!(s.code(), 408 | 480 | 503 | 500 | 404);
    if statuses.is_empty() || statuses.iter().all(unreachable) {
        return (StatusCode::TEMPORARILY_UNAVAILABLE, Disposition::Failed);
    }
    let lowest = statuses
        .iter()
        .filter(|s| !unreachable(s))
        .min_by_key(|s| s.code())
        .copied()
        .unwrap_or(StatusCode::TEMPORARILY_UNAVAILABLE);
    (lowest, Disposition::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(list: &[u16]) -> Vec<StatusCode> {
        list.iter().map(|c| StatusCode(*c)).collect()
    }

    #[test]
    fn busy_beats_unreachable() {
        assert_eq!(
            best_failure(&codes(&[408, 486])),
            (StatusCode::BUSY_HERE, Disposition::Busy)
        );
    }

    #[test]
    fn decline_is_global_and_busy() {
        assert_eq!(best_failure(&codes(&[486, 603])).0.code(), 603);
    }

    #[test]
    fn all_unreachable_is_480() {
        assert_eq!(best_failure(&codes(&[408, 503])).0.code(), 480);
        assert_eq!(best_failure(&[]).0.code(), 480);
    }

    #[test]
    fn other_client_errors_pass_through() {
        assert_eq!(best_failure(&codes(&[488, 408])).0.code(), 488);
    }
}
