//! Driven port for invitations.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::invitations::models::{Invitation, InvitationId};
use crate::mail::models::OutgoingMail;
use crate::secrets::{PasswordHash, TokenHash};
use crate::users::models::{EmailAddress, User, UserId};

/// A new invited user with everything that must be written with it.
#[derive(Debug, Clone)]
pub struct NewInvitedUser {
    /// The user, in state `Invited`.
    pub user: User,
    /// Their invitation.
    pub invitation: Invitation,
    /// The invitation email, for the outbox.
    pub mail: OutgoingMail,
    /// The audit record.
    pub audit: AuditEvent,
    /// The seat limit in force (`None` = unlimited).
    pub seat_limit: Option<u32>,
}

/// Why the store refused a new user.
#[derive(Debug, thiserror::Error)]
pub enum InsertUserError {
    /// The email's case-insensitive key is taken.
    #[error("email taken")]
    EmailTaken,
    /// Invited + active users already fill the limit.
    #[error("seat limit {limit} reached")]
    SeatLimitReached {
        /// The limit.
        limit: u32,
    },
    /// Unexpected failure.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Everything that changes when an invitation is accepted, written at once.
#[derive(Debug, Clone)]
pub struct Acceptance {
    /// The invitation being used.
    pub invitation_id: InvitationId,
    /// The user it activates.
    pub user_id: UserId,
    /// The password chosen (absent for SSO users).
    pub password_hash: Option<PasswordHash>,
    /// When.
    pub at: DateTime<Utc>,
    /// The audit record of the acceptance.
    pub audit: AuditEvent,
}

/// Why the store refused an acceptance.
#[derive(Debug, thiserror::Error)]
pub enum AcceptStoreError {
    /// The invitation was no longer pending (used concurrently, or revoked),
    /// or the user was no longer invited.
    #[error("the invitation is no longer pending")]
    NoLongerPending,
    /// Unexpected failure.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// A new invitation replacing the pending ones of an invited user.
#[derive(Debug, Clone)]
pub struct Reissue {
    /// The new invitation (pending).
    pub invitation: Invitation,
    /// Its email, for the outbox.
    pub mail: OutgoingMail,
    /// The audit record.
    pub audit: AuditEvent,
    /// The corrected address, when the invitation goes to a new one (an
    /// invited user's mistyped email).
    pub new_email: Option<EmailAddress>,
}

/// Why the store refused to reissue.
#[derive(Debug, thiserror::Error)]
pub enum ReissueError {
    /// The user is no longer invited (activated or deactivated meanwhile).
    #[error("the user is not invited")]
    NotInvited,
    /// Another user already has the corrected address.
    #[error("email already in use")]
    EmailTaken,
    /// Unexpected failure.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Storage of invitations.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait InvitationRepository: Send + Sync {
    /// Writes a new invited user, their invitation, the outbox message and the audit
    /// event in one transaction.
    ///
    /// # Errors
    /// - MUST return [`InsertUserError::EmailTaken`] and write nothing if any
    ///   user (any status) has the same case-insensitive email.
    /// - MUST return [`InsertUserError::SeatLimitReached`] and write nothing if
    ///   `seat_limit` is set and invited + active users already reach it —
    ///   checked atomically, so concurrent inserts never overshoot.
    async fn insert_invited(&self, new: NewInvitedUser) -> Result<(), InsertUserError>;

    /// The invitation stored under `hash`, with its user.
    ///
    /// # Errors
    /// MUST return `Ok(None)` for an unknown hash; [`StoreError`] only on failure.
    async fn find_by_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(Invitation, User)>, StoreError>;

    /// Marks the invitation accepted, activates the user (status active,
    /// `activated_at`, password hash) and appends the audit event — all in one
    /// transaction.
    ///
    /// # Errors
    /// MUST return [`AcceptStoreError::NoLongerPending`] and change nothing if
    /// the invitation is not pending or the user is not invited at the moment
    /// of writing: of two concurrent acceptances exactly one succeeds.
    async fn accept(&self, acceptance: Acceptance) -> Result<(), AcceptStoreError>;

    /// Voids the user's pending invitations and stores the new one, its
    /// email and the audit event, in one transaction. Earlier invitation
    /// emails of the user not sent yet (queued or failed) are dropped: their
    /// links are void. With `new_email`, the user's address becomes it.
    ///
    /// # Errors
    /// - MUST return [`ReissueError::NotInvited`] and write nothing if the
    ///   user is not invited at the moment of writing.
    /// - MUST return [`ReissueError::EmailTaken`] and write nothing if
    ///   `new_email` is another user's address in any letter case.
    async fn reissue(&self, reissue: Reissue) -> Result<(), ReissueError>;

    /// The user's pending invitation if there is one, else their most
    /// recent one, if any.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn latest_for(&self, user: UserId) -> Result<Option<Invitation>, StoreError>;

    /// [`InvitationRepository::latest_for`] for each of `users` that has an
    /// invitation, in one read (a page of the users list).
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn latest_for_users(&self, users: &[UserId]) -> Result<Vec<Invitation>, StoreError>;
}
