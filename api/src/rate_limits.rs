//! Rate limits (auth.md, "Next round"): per user for mutations and for
//! operations started over a WebSocket, per client address for requests
//! that carry no valid token (and for WebSocket upgrades, which carry none
//! yet). Each is a GCRA budget from `governor`: `N` per minute, spent at
//! most `N / 10` (at least 1) at once. A caller over its budget is told how
//! many seconds to wait (`retryAfterSeconds`) and nothing is done.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::settings::RateSettings;

/// How many checks pass between two sweeps of keys that have not been seen
/// for a while, so a budget per address cannot grow without bound.
const SWEEP_EVERY: u64 = 10_000;

/// A caller over its budget: wait this many seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_seconds: u64,
}

/// One budget per key; `None` when the limit is turned off (0 per minute).
struct Budget<K: std::hash::Hash + Eq + Clone> {
    limiter: Option<DefaultKeyedRateLimiter<K>>,
    checks: AtomicU64,
}

impl<K: std::hash::Hash + Eq + Clone> Budget<K> {
    fn per_minute(n: u32) -> Budget<K> {
        let limiter = NonZeroU32::new(n).map(|n| {
            let burst = NonZeroU32::new(n.get() / 10).unwrap_or(NonZeroU32::MIN);
            DefaultKeyedRateLimiter::keyed(Quota::per_minute(n).allow_burst(burst))
        });
        Budget {
            limiter,
            checks: AtomicU64::new(0),
        }
    }

    fn spend(&self, key: &K) -> Result<(), Limited> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            Limited {
                retry_after_seconds: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        })
    }
}

/// The server's budgets.
pub struct RateLimits {
    mutations: Budget<String>,
    operations: Budget<String>,
    anonymous: Budget<IpAddr>,
}

impl RateLimits {
    pub fn new(settings: &RateSettings) -> RateLimits {
        RateLimits {
            mutations: Budget::per_minute(settings.rate_mutations_per_minute),
            operations: Budget::per_minute(settings.rate_operations_per_minute),
            anonymous: Budget::per_minute(settings.rate_anonymous_per_minute),
        }
    }

    /// A mutation by `user`.
    pub fn mutation(&self, user: &str) -> Result<(), Limited> {
        self.mutations.spend(&user.to_string())
    }

    /// An operation (subscription, query or mutation) started by `user` on a
    /// WebSocket.
    pub fn operation(&self, user: &str) -> Result<(), Limited> {
        self.operations.spend(&user.to_string())
    }

    /// A request without a valid token, or a WebSocket upgrade, from `address`.
    pub fn anonymous(&self, address: IpAddr) -> Result<(), Limited> {
        self.anonymous.spend(&address)
    }
}

impl Limited {
    /// The message every rate-limited answer carries.
    pub fn message(&self, what: &str) -> String {
        format!("too many {what}; retry in {} s", self.retry_after_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_minute: u32) -> RateLimits {
        RateLimits::new(&RateSettings {
            rate_mutations_per_minute: per_minute,
            rate_operations_per_minute: per_minute,
            rate_anonymous_per_minute: per_minute,
        })
    }

    /// A budget of 60 a minute lets 6 through at once, then asks the caller
    /// to wait; another user's budget is their own.
    #[test]
    fn a_burst_passes_then_the_caller_waits() {
        let limits = limits(60);
        for _ in 0..6 {
            assert_eq!(limits.mutation("ann"), Ok(()));
        }
        let limited = limits.mutation("ann").expect_err("over the burst");
        assert!(
            (1..=2).contains(&limited.retry_after_seconds),
            "{limited:?}"
        );
        assert_eq!(limits.mutation("bob"), Ok(()));
        assert_eq!(limits.operation("ann"), Ok(()), "a budget per kind");
    }

    /// Zero turns a limit off.
    #[test]
    fn zero_is_no_limit() {
        let limits = limits(0);
        for _ in 0..10_000 {
            assert_eq!(limits.anonymous(IpAddr::from([127, 0, 0, 1])), Ok(()));
        }
    }
}
