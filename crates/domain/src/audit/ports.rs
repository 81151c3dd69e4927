//! Driven port for audit events that stand alone (not part of another write).

use async_trait::async_trait;

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;

/// Appends audit events that record no other change (e.g. a failed sign-in).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends one event.
    ///
    /// # Errors
    /// MUST return [`StoreError`] only when the event could not be stored.
    async fn append(&self, event: AuditEvent) -> Result<(), StoreError>;
}
