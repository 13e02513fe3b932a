//! Per-source request-rate limit: one flooding address must not starve the others.
//!
//! A keyed token bucket (GCRA) from `governor`; its clock is the monotonic one of the shell.

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use pbx_engine::security::RateLimit;
use std::net::IpAddr;
use std::num::NonZeroU32;

pub struct SourceRateLimit {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl SourceRateLimit {
    /// `per_second` = 0 switches the limit off.
    pub fn new(per_second: u32, burst: u32) -> SourceRateLimit {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        SourceRateLimit { limiter }
    }
}

impl RateLimit for SourceRateLimit {
    /// True when this packet from `ip` is within its budget.
    fn admit(&self, ip: IpAddr) -> bool {
        self.limiter
            .as_ref()
            .is_none_or(|l| l.check_key(&ip).is_ok())
    }

    /// Forgets sources whose bucket is full again (called periodically by the shell).
    fn forget_idle(&self) {
        if let Some(l) = &self.limiter {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flooding_source_is_limited_and_others_are_not() {
        let limit = SourceRateLimit::new(10, 20);
        let flooder: IpAddr = "127.0.0.2".parse().unwrap();
        let admitted = (0..100).filter(|_| limit.admit(flooder)).count();
        // The burst, plus at most a token or two refilled while the loop ran.
        assert!((20..=22).contains(&admitted), "admitted {admitted}");
        assert!(limit.admit("127.0.0.3".parse().unwrap()));
    }

    #[test]
    fn zero_switches_the_limit_off() {
        let limit = SourceRateLimit::new(0, 0);
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        assert!((0..10_000).all(|_| limit.admit(ip)));
    }
}
