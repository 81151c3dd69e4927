//! The in-memory store's sign-in failure counts.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::sessions::throttle::{AttemptKey, FailureCount, ThrottlePolicy, ThrottleRepository};

use super::InMemoryStore;

#[async_trait]
impl ThrottleRepository for InMemoryStore {
    async fn failures(&self, key: &str) -> Result<Option<FailureCount>, StoreError> {
        Ok(self.state().failures.get(key).copied())
    }

    async fn reserve(
        &self,
        keys: &[AttemptKey],
        now: DateTime<Utc>,
        policy: &ThrottlePolicy,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        // One lock for the whole step: concurrent reservations serialise.
        let mut state = self.state();
        let mut admitted = Vec::with_capacity(keys.len());
        let mut wait = None;
        for key in keys {
            match policy.admit(state.failures.get(&key.key).copied(), key.free, now) {
                Ok(failures) => admitted.push((key.key.clone(), failures)),
                Err(until) => wait = wait.max(Some(until)),
            }
        }
        if wait.is_none() {
            for (key, failures) in admitted {
                state.failures.insert(key, FailureCount { failures, last_failure_at: now });
            }
        }
        Ok(wait)
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        if let Some(count) = self.state().failures.get_mut(key) {
            count.failures = count.failures.saturating_sub(1);
        }
        Ok(())
    }

    async fn forget_stale(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.state();
        let count = state.failures.len();
        state.failures.retain(|_, c| c.failures > 0 && c.last_failure_at > before);
        Ok(u64::try_from(count - state.failures.len()).unwrap_or(u64::MAX))
    }

    async fn clear(&self, key: &str) -> Result<(), StoreError> {
        self.state().failures.remove(key);
        Ok(())
    }

    async fn allow_again(&self, key: &str, audit: AuditEvent) -> Result<(), StoreError> {
        let mut state = self.state();
        state.failures.remove(key);
        state.audit.push(audit);
        Ok(())
    }
}
