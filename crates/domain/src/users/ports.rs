//! Driven port for users.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::invitations::models::Invitation;
use crate::mail::models::OutgoingMail;
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

/// A change to an existing user, with everything written with it. The domain
/// computed `after` from `before`; the store applies it only if the user is
/// still as `before` says, and only if the instance-wide rules still hold.
#[derive(Debug, Clone)]
pub struct UserChange {
    /// The user as the domain read them.
    pub before: User,
    /// The user as they must become.
    pub after: User,
    /// One audit event per kind of change.
    pub audit: Vec<AuditEvent>,
    /// End every session of the user (deactivation).
    pub end_sessions: bool,
    /// Void pending invitation and reset links (deactivation).
    pub revoke_links: bool,
    /// The change removes an active admin: at least one other must remain.
    pub keep_an_admin: bool,
    /// The change makes the user hold a seat again (reactivation), under
    /// this limit (`None` = unlimited).
    pub takes_seat: Option<Option<u32>>,
}

/// Why the store refused a change.
#[derive(Debug, thiserror::Error)]
pub enum ChangeUserError {
    /// The user's role or status changed since `before` was read.
    #[error("the user changed meanwhile")]
    Stale,
    /// No other active admin would remain.
    #[error("last active admin")]
    LastAdmin,
    /// Every seat is taken.
    #[error("seat limit {limit} reached")]
    SeatLimitReached {
        /// The limit.
        limit: u32,
    },
    /// Unexpected failure.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Position after the last user of a page (users are listed by creation
/// time, then id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserCursor {
    /// Creation time of the last user shown.
    pub created_at: DateTime<Utc>,
    /// Id of the last user shown.
    pub id: UserId,
}

/// A page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    /// At most this many users.
    pub limit: u32,
    /// Start after this position.
    pub after: Option<UserCursor>,
}

/// One page of users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    /// The users, in order.
    pub items: Vec<User>,
    /// Where the next page starts, if there is one.
    pub next: Option<UserCursor>,
}

impl UserPage {
    /// Cuts a fetch of up to `limit + 1` users (in order) into a page and the
    /// cursor of the next one: the extra user only proves there is more.
    pub fn from_overfetch(mut items: Vec<User>, limit: u32) -> Self {
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|u| UserCursor { created_at: u.created_at, id: u.id })
        } else {
            None
        };
        Self { items, next }
    }
}

/// Storage of users.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Writes the user, their invitation, the outbox message and the audit
    /// event in one transaction.
    ///
    /// # Errors
    /// - MUST return [`InsertUserError::EmailTaken`] and write nothing if any
    ///   user (any status) has the same case-insensitive email.
    /// - MUST return [`InsertUserError::SeatLimitReached`] and write nothing if
    ///   `seat_limit` is set and invited + active users already reach it —
    ///   checked atomically, so concurrent inserts never overshoot.
    async fn insert_invited(&self, new: NewInvitedUser) -> Result<(), InsertUserError>;

    /// Applies a change to an existing user in one transaction: the row, the
    /// audit events, and (as asked) ending sessions and voiding links.
    ///
    /// # Errors
    /// Writes nothing and
    /// - MUST return [`ChangeUserError::Stale`] if the stored role or status
    ///   differs from `before`;
    /// - MUST return [`ChangeUserError::LastAdmin`] if `keep_an_admin` is set
    ///   and no *other* active admin exists — checked atomically, so two
    ///   admins demoting each other at once leave one admin;
    /// - MUST return [`ChangeUserError::SeatLimitReached`] if `takes_seat`
    ///   carries a limit that invited + active users already reach.
    async fn apply_change(&self, change: UserChange) -> Result<(), ChangeUserError>;

    /// Invited + active users.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn count_seats(&self) -> Result<u64, StoreError>;

    /// The user with this id.
    ///
    /// # Errors
    /// MUST return `Ok(None)` if there is none; [`StoreError`] only on failure.
    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// The user with this email, case-insensitively.
    ///
    /// # Errors
    /// MUST return `Ok(None)` if there is none; [`StoreError`] only on failure.
    async fn find_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError>;

    /// A page of users ordered by (creation time, id), keyset-paged.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn list(&self, query: &UserQuery) -> Result<UserPage, StoreError>;
}
