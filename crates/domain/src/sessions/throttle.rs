//! Brute-force throttling of sign-in, per account and per client IP
//! (OWASP ASVS 6.3.1, NIST 800-63B rate limiting).
//!
//! Each key (the email tried, the client's IP) counts attempts that have not
//! (yet) succeeded. An attempt is counted — reserved — atomically *before*
//! its password is verified, so concurrent attempts see each other: of any
//! number sent at once, only the free ones reach the (expensive) password
//! check and the rest wait. After the free attempts every further one must
//! wait a delay that doubles with each failure, up to a ceiling. A correct
//! password clears the account's count; counts older than the window are
//! forgotten. There is no
//! permanent lockout, so an attacker can at worst slow a victim down for the
//! ceiling's length — and the same happens whether or not the email exists,
//! so throttling reveals nothing either.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::audit::models::AuditEvent;
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

impl ThrottlePolicy {
    /// One more attempt under a key holding `count` at `now`: the count it
    /// makes (`Ok`), or until when it must wait (`Err`), in which case it is
    /// not counted. The first `free` attempts in a window never wait.
    ///
    /// # Errors
    /// The time the attempt may be made again.
    pub fn admit(
        &self,
        count: Option<FailureCount>,
        free: u32,
        now: DateTime<Utc>,
    ) -> Result<u32, DateTime<Utc>> {
        let Some(current) = count.filter(|c| now - c.last_failure_at < self.window) else {
            return Ok(1);
        };
        let failures = current.failures.saturating_add(1);
        let next = FailureCount { failures, last_failure_at: current.last_failure_at };
        match self.blocked_until(Some(next), free, now) {
            Some(until) => Err(until),
            None => Ok(failures),
        }
    }
}

/// A key an attempt is counted under, with the attempts it allows freely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptKey {
    /// `account:<email>` or `ip:<address>`.
    pub key: String,
    /// Attempts in a window that never wait.
    pub free: u32,
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

    /// Counts one attempt at `now` under every key of `keys`, in one atomic
    /// step, if [`ThrottlePolicy::admit`] admits it under each; otherwise
    /// records nothing and returns the latest time any key allows again.
    /// Concurrent reservations (also from other instances) MUST be
    /// serialised per key: each sees every count reserved before it, so of
    /// N attempts sent at once at most `free` are admitted.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn reserve(
        &self,
        keys: &[AttemptKey],
        now: DateTime<Utc>,
        policy: &ThrottlePolicy,
    ) -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Takes back one attempt reserved under `key` (a correct password from
    /// an address: it was no failure), never below zero.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn release(&self, key: &str) -> Result<(), StoreError>;

    /// Deletes every count whose last attempt was at or before `before`
    /// (outside the window, so it no longer blocks) and every count taken
    /// back to zero; returns how many went. Called on a schedule.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn forget_stale(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Forgets the failures under `key`.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn clear(&self, key: &str) -> Result<(), StoreError>;

    /// An admin lifts a pause: forgets the failures under `key` and writes
    /// `audit`, in one transaction (both or neither).
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn allow_again(&self, key: &str, audit: AuditEvent) -> Result<(), StoreError>;
}

/// The key an account's sign-in attempts are counted under: the email as
/// typed, trimmed and lower-cased, so it behaves alike for unknown and known
/// accounts.
pub fn account_key(typed_email: &str) -> String {
    format!("account:{}", typed_email.trim().to_lowercase())
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

    #[test]
    fn the_free_attempts_are_admitted_and_the_next_waits_for_the_delay() {
        let policy = ThrottlePolicy::default();
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let at = |failures| Some(FailureCount { failures, last_failure_at: t0 });
        assert_eq!(policy.admit(None, 5, t0), Ok(1));
        assert_eq!(policy.admit(at(4), 5, t0), Ok(5));
        assert_eq!(policy.admit(at(5), 5, t0), Err(t0 + Duration::seconds(2)));
        assert_eq!(policy.admit(at(5), 5, t0 + Duration::seconds(2)), Ok(6));
        assert_eq!(
            policy.admit(at(6), 5, t0 + Duration::seconds(2)),
            Err(t0 + Duration::seconds(4))
        );
        // A count older than the window starts over.
        assert_eq!(policy.admit(at(40), 5, t0 + Duration::hours(12)), Ok(1));
    }
}
