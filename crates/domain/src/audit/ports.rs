//! Driven port for the audit log: stand-alone events and reading back.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::models::{AuditAction, AuditEntry, AuditEvent};
use crate::errors::StoreError;
use crate::identity::UserId;

/// Which audit entries to read. Every condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Done by this user.
    pub actor: Option<UserId>,
    /// Done to this user.
    pub target: Option<UserId>,
    /// This action.
    pub action: Option<AuditAction>,
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// Before.
    pub to: Option<DateTime<Utc>>,
}

/// Position after the last entry of a page (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCursor {
    /// Time of the last entry shown.
    pub at: DateTime<Utc>,
    /// Its id.
    pub id: Uuid,
}

/// Appends and reads audit events.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends one event that records no other change (e.g. a failed sign-in).
    ///
    /// # Errors
    /// MUST return [`StoreError`] only when the event could not be stored.
    async fn append(&self, event: AuditEvent) -> Result<(), StoreError>;

    /// Up to `limit` entries matching `filter`, newest first (by time, then
    /// id, both descending), strictly after `after`.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn list(
        &self,
        filter: &AuditFilter,
        after: Option<AuditCursor>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}
