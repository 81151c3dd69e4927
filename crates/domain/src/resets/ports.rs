//! Driven port for password resets and password changes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::mail::models::OutgoingMail;
use crate::resets::models::PasswordReset;
use crate::secrets::{PasswordHash, TokenHash};
use crate::sessions::models::SessionId;
use crate::users::models::{User, UserId};

/// A new reset link and what goes with it.
#[derive(Debug, Clone)]
pub struct NewReset {
    /// The link (pending).
    pub reset: PasswordReset,
    /// Its email.
    pub mail: OutgoingMail,
    /// The audit record.
    pub audit: AuditEvent,
}

/// Setting a password, from a reset link or by the user themself.
#[derive(Debug, Clone)]
pub struct PasswordChange {
    /// Whose password.
    pub user_id: UserId,
    /// The new hash.
    pub password_hash: PasswordHash,
    /// The reset link consumed, if the change comes from one.
    pub reset_id: Option<Uuid>,
    /// End every session of the user but this one (`None`: end them all).
    pub keep_session: Option<SessionId>,
    /// When.
    pub at: DateTime<Utc>,
    /// The audit record.
    pub audit: AuditEvent,
}

/// Why the store refused a password change.
#[derive(Debug, thiserror::Error)]
pub enum PasswordStoreError {
    /// The reset link is no longer pending, or the user no longer active.
    #[error("no longer applicable")]
    NoLongerApplicable,
    /// Unexpected failure.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Storage of password resets and password changes.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait PasswordRepository: Send + Sync {
    /// Voids the user's pending reset links and stores the new one, its
    /// email and the audit event, in one transaction.
    ///
    /// # Errors
    /// MUST return [`PasswordStoreError::NoLongerApplicable`] and write
    /// nothing if the user is not active at the moment of writing.
    async fn issue_reset(&self, new: NewReset) -> Result<(), PasswordStoreError>;

    /// The reset link stored under `hash`, with its user.
    ///
    /// # Errors
    /// MUST return `Ok(None)` for an unknown hash; [`StoreError`] only on failure.
    async fn find_reset(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(PasswordReset, User)>, StoreError>;

    /// Sets the password, consumes the reset link if any, ends the user's
    /// sessions (all, or all but `keep_session`) and appends the audit
    /// event, in one transaction.
    ///
    /// # Errors
    /// MUST return [`PasswordStoreError::NoLongerApplicable`] and write
    /// nothing if the link is no longer pending (of two concurrent uses one
    /// wins) or the user is not active.
    async fn set_password(&self, change: PasswordChange) -> Result<(), PasswordStoreError>;
}
