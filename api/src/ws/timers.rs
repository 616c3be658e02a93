//! The socket's clocks: the keep-alive tick and when a token stops being
//! valid.

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};

/// Waits for the next keep-alive, forever when there is none.
pub(super) async fn tick(keepalive: &mut Option<Interval>) {
    match keepalive {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// A tick every `every_ms`, the first one period from now; none when 0.
/// A late tick is not made up for: one keep-alive is enough.
pub(super) fn keepalive_interval(every_ms: u64) -> Option<Interval> {
    if every_ms == 0 {
        return None;
    }
    let period = Duration::from_millis(every_ms);
    let mut interval = tokio::time::interval_at(Instant::now() + period, period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    Some(interval)
}

/// When a token with `exp` (seconds since the epoch) stops being valid.
pub(super) fn expiry(exp: i64) -> Instant {
    /// Farther than any socket lives; keeps the addition from overflowing.
    const MAX_MS: i64 = 10 * 365 * 24 * 3600 * 1000;
    let left_ms = exp
        .saturating_mul(1000)
        .saturating_sub(chrono::Utc::now().timestamp_millis());
    Instant::now() + Duration::from_millis(left_ms.clamp(0, MAX_MS) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token's expiry far in the future or the past never overflows.
    #[test]
    fn expiry_is_clamped() {
        let now = Instant::now();
        assert!(expiry(i64::MAX) > now);
        assert!(expiry(i64::MIN) <= Instant::now());
    }
}
