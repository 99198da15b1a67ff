//! When an asynchronous event is tried again: Lambda's schedule, scaled for tests.
//!
//! After a function error Lambda waits about one minute before the second attempt and about two
//! minutes before the third. An attempt that could not run (throttled, or a system error) is
//! retried with exponential backoff from one second up to five minutes between tries. Every
//! delay, and the maximum event age, is multiplied by the scale (`--retry-delay-scale`), so that
//! tests can run Lambda's schedule in proportion (0.01 turns a minute into 0.6 s).

use std::time::Duration;

/// Delay before the attempt after the first function error; the next ones grow linearly.
const FUNCTION_ERROR_DELAY: Duration = Duration::from_secs(60);
/// First delay after an attempt that could not run.
const THROTTLE_FIRST_DELAY: Duration = Duration::from_secs(1);
/// Longest delay between attempts that could not run.
const THROTTLE_MAX_DELAY: Duration = Duration::from_secs(300);

/// Lambda's retry schedule with every duration multiplied by `scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    scale: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { scale: 1.0 }
    }
}

impl RetryPolicy {
    /// A schedule scaled by `scale` (1.0 is Lambda's); non-finite or negative values are 1.0.
    pub fn scaled(scale: f64) -> Self {
        let scale = if scale.is_finite() && scale >= 0.0 {
            scale
        } else {
            1.0
        };
        Self { scale }
    }

    /// The factor every delay is multiplied by.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// How long to wait after the `failed_attempts`-th invocation ended in a function error
    /// (1 -> one minute, 2 -> two minutes).
    pub fn after_function_error(&self, failed_attempts: u32) -> Duration {
        self.apply(FUNCTION_ERROR_DELAY * failed_attempts.max(1))
    }

    /// How long to wait after the `throttles`-th attempt that could not run: 1 s, 2 s, 4 s, ...
    /// up to five minutes.
    pub fn after_throttle(&self, throttles: u32) -> Duration {
        let exponent = throttles.saturating_sub(1).min(16);
        let delay = THROTTLE_FIRST_DELAY
            .saturating_mul(1 << exponent)
            .min(THROTTLE_MAX_DELAY);
        self.apply(delay)
    }

    /// The maximum event age, scaled like the delays so that ages and delays keep their
    /// proportions (an event that would expire before its next attempt on Lambda expires here
    /// too).
    pub fn max_event_age(&self, seconds: u32) -> Duration {
        self.apply(Duration::from_secs(u64::from(seconds)))
    }

    fn apply(&self, delay: Duration) -> Duration {
        delay.mul_f64(self.scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_errors_wait_one_then_two_minutes() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.after_function_error(1), Duration::from_secs(60));
        assert_eq!(policy.after_function_error(2), Duration::from_secs(120));
    }

    #[test]
    fn throttles_back_off_exponentially_up_to_five_minutes() {
        let policy = RetryPolicy::default();
        let delays: Vec<u64> = (1..=11)
            .map(|n| policy.after_throttle(n).as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(policy.after_throttle(u32::MAX), Duration::from_secs(300));
    }

    #[test]
    fn the_scale_multiplies_every_delay_and_the_event_age() {
        let policy = RetryPolicy::scaled(0.01);
        assert_eq!(policy.after_function_error(1), Duration::from_millis(600));
        assert_eq!(policy.after_function_error(2), Duration::from_millis(1200));
        assert_eq!(policy.after_throttle(1), Duration::from_millis(10));
        assert_eq!(policy.max_event_age(21_600), Duration::from_secs(216));
        assert_eq!(RetryPolicy::scaled(f64::NAN).scale(), 1.0);
        assert_eq!(RetryPolicy::scaled(-1.0).scale(), 1.0);
    }
}
