//! Brute-force throttling of sign-in, per account and per client IP
//! (OWASP ASVS 6.3.1, NIST 800-63B rate limiting).
//!
//! Each key (the email tried, the client's IP) counts failures. The first
//! few are free; after that every attempt must wait a delay that doubles with
//! each further failure, up to a ceiling. A success clears the account's
//! count; failures older than the window are forgotten. There is no
//! permanent lockout, so an attacker can at worst slow a victim down for the
//! ceiling's length — and the same happens whether or not the email exists,
//! so throttling reveals nothing either.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::errors::StoreError;

/// Tunable throttling rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures per account before delays start.
    pub free_account_failures: u32,
    /// Failures per client IP before delays start.
    pub free_ip_failures: u32,
    /// The first delay; doubled per further failure.
    pub first_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
    /// Failures older than this are forgotten.
    pub window: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            free_account_failures: 5,
            free_ip_failures: 20,
            first_delay: Duration::seconds(2),
            max_delay: Duration::minutes(15),
            window: Duration::hours(12),
        }
    }
}

/// Failures recorded under one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    /// Failures in the current window.
    pub failures: u32,
    /// The latest failure.
    pub last_failure_at: DateTime<Utc>,
}

impl ThrottlePolicy {
    /// Until when a key with these failures is blocked, if at all at `now`.
    pub fn blocked_until(
        &self,
        count: Option<FailureCount>,
        free: u32,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let count = count.filter(|c| now - c.last_failure_at < self.window)?;
        let over = count.failures.checked_sub(free).filter(|n| *n > 0)?;
        let factor = 1_i32.checked_shl(over.saturating_sub(1).min(20)).unwrap_or(i32::MAX);
        let delay = (self.first_delay * factor).min(self.max_delay);
        let until = count.last_failure_at + delay;
        (until > now).then_some(until)
    }
}

/// Storage of failure counts.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ThrottleRepository: Send + Sync {
    /// The failures recorded under `key`.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn failures(&self, key: &str) -> Result<Option<FailureCount>, StoreError>;

    /// Records one more failure under `key` at `at`, starting a new count if
    /// the last failure is older than `window`. Concurrent failures MUST all
    /// be counted.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn record_failure(
        &self,
        key: &str,
        at: DateTime<Utc>,
        window: Duration,
    ) -> Result<(), StoreError>;

    /// Forgets the failures under `key`.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn clear(&self, key: &str) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn delays_start_after_the_free_failures_double_and_stop_at_the_ceiling() {
        let policy = ThrottlePolicy::default();
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let at = |failures| Some(FailureCount { failures, last_failure_at: t0 });
        assert_eq!(policy.blocked_until(at(5), 5, t0), None);
        assert_eq!(policy.blocked_until(at(6), 5, t0), Some(t0 + Duration::seconds(2)));
        assert_eq!(policy.blocked_until(at(7), 5, t0), Some(t0 + Duration::seconds(4)));
        assert_eq!(policy.blocked_until(at(40), 5, t0), Some(t0 + Duration::minutes(15)));
        assert_eq!(policy.blocked_until(at(6), 5, t0 + Duration::seconds(2)), None);
        assert_eq!(policy.blocked_until(at(40), 5, t0 + Duration::hours(13)), None);
    }
}
