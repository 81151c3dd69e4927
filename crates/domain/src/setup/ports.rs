//! Driven port for first-admin setup.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::secrets::{PasswordHash, TokenHash};
use crate::users::models::User;

/// The first admin and everything written with them.
#[derive(Debug, Clone)]
pub struct SetupCompletion {
    /// Hash of the setup link's token; consumed.
    pub token_hash: TokenHash,
    /// When.
    pub at: DateTime<Utc>,
    /// The new admin, active.
    pub admin: User,
    /// Their password.
    pub password_hash: PasswordHash,
    /// The audit record.
    pub audit: AuditEvent,
}

/// Why the store refused to complete setup.
#[derive(Debug, thiserror::Error)]
pub enum CompleteSetupStoreError {
    /// No unexpired setup token with this hash.
    #[error("invalid setup token")]
    InvalidToken,
    /// An active admin exists.
    #[error("an admin exists")]
    AdminExists,
    /// The email is taken.
    #[error("email taken")]
    EmailTaken,
    /// Unexpected failure.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Storage for setup.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait SetupRepository: Send + Sync {
    /// Whether any active admin exists.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn has_active_admin(&self) -> Result<bool, StoreError>;

    /// Replaces any setup token by this one.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn replace_setup_token(
        &self,
        hash: TokenHash,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Whether a setup token with this hash exists and expires after `now`.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn setup_token_valid(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Consumes the setup token and creates the first admin with the audit
    /// event, in one transaction.
    ///
    /// # Errors
    /// MUST write nothing and return
    /// - [`CompleteSetupStoreError::InvalidToken`] if no unexpired token has this hash;
    /// - [`CompleteSetupStoreError::AdminExists`] if an active admin exists
    ///   (checked atomically: two concurrent completions make one admin);
    /// - [`CompleteSetupStoreError::EmailTaken`] if the email is taken.
    async fn complete_setup(
        &self,
        completion: SetupCompletion,
    ) -> Result<(), CompleteSetupStoreError>;
}
