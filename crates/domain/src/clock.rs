//! The `Clock` port: every rule that depends on time asks it, so tests can
//! move time instead of waiting for it.

use chrono::{DateTime, Utc};

/// Tells the current time.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait Clock: Send + Sync {
    /// The current instant, in UTC.
    fn now(&self) -> DateTime<Utc>;
}
