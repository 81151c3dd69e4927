//! Driven port for sessions and sign-in credentials.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::secrets::{PasswordHash, TokenHash};
use crate::sessions::models::{Session, SessionId};
use crate::users::models::{EmailAddress, User, UserId};

/// Storage of sessions.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait SessionRepository: Send + Sync {
    /// The user with this email and their password hash (if they have one).
    ///
    /// # Errors
    /// MUST return `Ok(None)` for an unknown email; [`StoreError`] only on failure.
    async fn find_credentials(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<(User, Option<PasswordHash>)>, StoreError>;

    /// Stores a new session, sets the user's last sign-in to its start and
    /// appends the audit event, in one transaction.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn start(&self, session: Session, audit: AuditEvent) -> Result<(), StoreError>;

    /// The session stored under `hash`, with its user as stored right now.
    ///
    /// # Errors
    /// MUST return `Ok(None)` for an unknown hash; [`StoreError`] only on failure.
    async fn find(&self, hash: &TokenHash) -> Result<Option<(Session, User)>, StoreError>;

    /// Records activity on a session.
    ///
    /// # Errors
    /// [`StoreError`] only on failure; a session that no longer exists is not an error.
    async fn touch(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Records that the session's user passed a second-factor check at
    /// `at`: the session is no longer enrolment-only.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn second_factor_checked(
        &self,
        id: SessionId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Makes the session enrolment-only again (its user replaces a
    /// required second factor): it can only set up the new one, and its
    /// last check is forgotten.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn enrolment_required(&self, id: SessionId) -> Result<(), StoreError>;

    /// How many sessions of `user` are still usable at `now` (not past
    /// `expires_at`, used since `idle_since`).
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn count_live(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Deletes every session of `user` and appends the audit event, in one
    /// transaction; returns how many ended.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn end_all(&self, user: UserId, audit: AuditEvent) -> Result<u64, StoreError>;

    /// Deletes a session and, if given, appends the audit event, in one
    /// transaction.
    ///
    /// # Errors
    /// [`StoreError`] only on failure; a session that no longer exists is not an error.
    async fn end(&self, id: SessionId, audit: Option<AuditEvent>) -> Result<(), StoreError>;
}
