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
