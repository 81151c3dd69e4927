//! Driven port for users.

use async_trait::async_trait;

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::users::models::{EmailAddress, Role, User, UserId, UserStatus};

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
    /// Void pending invitation and reset links, and drop their emails not
    /// sent yet (deactivation).
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
    /// The new address is another user's (in any letter case).
    #[error("the address is taken")]
    EmailTaken,
    /// Unexpected failure.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Erasing a person's data (GDPR): the user row stays, anonymised, so that
/// aggregates and the audit trail keep their ids.
#[derive(Debug, Clone)]
pub struct Erasure {
    /// The user as the domain read them.
    pub before: User,
    /// The anonymised, deactivated user.
    pub after: User,
    /// The audit record (ids only, no personal data).
    pub audit: AuditEvent,
}

/// What users are ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserSort {
    /// Display name, case-insensitively.
    Name,
    /// Email address, case-insensitively.
    Email,
    /// Creation (invitation) time.
    #[default]
    Created,
    /// Last sign-in time (never signed in sorts first).
    LastSignIn,
}

/// A user's position in a sort order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortValue {
    /// A case-folded text key (name, email).
    Text(String),
    /// An instant in microseconds since the epoch (0 = never).
    Micros(i64),
}

impl UserSort {
    /// The value `user` sorts by.
    pub fn value_of(self, user: &User) -> SortValue {
        match self {
            Self::Name => SortValue::Text(user.name.sort_key()),
            Self::Email => SortValue::Text(user.email.key().to_owned()),
            Self::Created => SortValue::Micros(user.created_at.timestamp_micros()),
            Self::LastSignIn => {
                SortValue::Micros(user.last_login_at.map_or(0, |at| at.timestamp_micros()))
            }
        }
    }
}

/// Position after the last user of a page: the sort value and the id (the
/// tie-breaker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCursor {
    /// Sort value of the last user shown.
    pub value: SortValue,
    /// Id of the last user shown.
    pub id: UserId,
}

/// Which users to list. Every condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Words that must each start the email address, its domain, or a word
    /// of the name (case-insensitive).
    pub words: Vec<String>,
    /// Only this role.
    pub role: Option<Role>,
    /// Only this status.
    pub status: Option<UserStatus>,
    /// Only this department (exact).
    pub department: Option<String>,
    /// Only invited users whose invitation is in this trouble. Stores
    /// evaluate it with their invitations and outbox (see
    /// [`InvitationFilter`]); [`UserFilter::matches`] does not.
    pub invitation: Option<InvitationFilter>,
    /// Only members of this group (pushed by the identity provider).
    /// Stores evaluate it with their memberships; [`UserFilter::matches`]
    /// does not.
    pub group: Option<uuid::Uuid>,
}

/// Invited users whose invitation went wrong: the users list's filters
/// "Invitation expired" and "Email failed". Both imply status `invited`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationFilter {
    /// Password users whose pending invitation link expired at or before
    /// `now` (SSO users' invitations do not expire).
    Expired {
        /// The time the expiry is judged at.
        now: chrono::DateTime<chrono::Utc>,
    },
    /// Users whose newest invitation email (of
    /// [`crate::mail::models::INVITATION_KINDS`]) failed.
    EmailFailed,
}

impl UserFilter {
    /// Whether `user` matches (the reference semantics every store
    /// follows), leaving out `invitation`, which needs more than the user.
    pub fn matches(&self, user: &User) -> bool {
        let terms = crate::users::models::search_terms(&user.email, &user.name);
        self.words.iter().all(|word| terms.iter().any(|term| term.starts_with(word.as_str())))
            && self.role.is_none_or(|role| user.role == role)
            && self.status.is_none_or(|status| user.status() == status)
            && self
                .department
                .as_ref()
                .is_none_or(|d| user.department.as_ref().is_some_and(|ud| ud.as_ref() == d))
    }
}

/// How many users match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserTotal {
    /// The count (a lower bound when not exact).
    pub count: u64,
    /// Whether `count` is exact.
    pub exact: bool,
}

/// A page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    /// Which users.
    pub filter: UserFilter,
    /// Order.
    pub sort: UserSort,
    /// Reverse order.
    pub descending: bool,
    /// At most this many users.
    pub limit: u32,
    /// Start after this position.
    pub after: Option<UserCursor>,
}

/// One page of users and how many match in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    /// The users, in order.
    pub items: Vec<User>,
    /// Where the next page starts, if there is one.
    pub next: Option<UserCursor>,
    /// How many users match the filter, over all pages.
    pub total: UserTotal,
}

impl UserPage {
    /// Cuts a fetch of up to `limit + 1` users (in order) into a page and the
    /// cursor of the next one: the extra user only proves there is more.
    pub fn from_overfetch(
        mut items: Vec<User>,
        limit: u32,
        sort: UserSort,
        total: UserTotal,
    ) -> Self {
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|u| UserCursor { value: sort.value_of(u), id: u.id })
        } else {
            None
        };
        Self { items, next, total }
    }
}

/// Storage of users.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Applies a change to an existing user in one transaction: the row, the
    /// audit events, and (as asked) ending sessions and voiding links. A
    /// change of `sign_in` to SSO removes the stored password.
    ///
    /// # Errors
    /// Writes nothing and
    /// - MUST return [`ChangeUserError::Stale`] if the stored role, status
    ///   or email address differs from `before` (a change worked out from
    ///   an older address would write it back into the search index);
    /// - MUST return [`ChangeUserError::LastAdmin`] if `keep_an_admin` is set
    ///   and no *other* active admin exists — checked atomically, so two
    ///   admins demoting each other at once leave one admin;
    /// - MUST return [`ChangeUserError::SeatLimitReached`] if `takes_seat`
    ///   carries a limit that invited + active users already reach;
    /// - MUST return [`ChangeUserError::EmailTaken`] if `after` has a new
    ///   address another user has in any letter case (a new address is
    ///   written, and re-indexed for search, with the rest).
    async fn apply_change(&self, change: UserChange) -> Result<(), ChangeUserError>;

    /// Anonymises the user in one transaction: the row becomes `after`
    /// (password removed), sessions end, links are voided, queued mail to
    /// them is dropped, search terms are removed, and audit events keep
    /// their ids but lose the user's email and changed values.
    ///
    /// # Errors
    /// Writes nothing and MUST return [`ChangeUserError::LastAdmin`] if
    /// `before` is the only active admin (checked atomically), or
    /// [`ChangeUserError::Stale`] if the user's role or status changed.
    async fn erase(&self, erasure: Erasure) -> Result<(), ChangeUserError>;

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

    /// A page of the users matching the filter, ordered by (sort value, id)
    /// — both reversed when descending — starting strictly after the cursor,
    /// with the total number of matches. Keyset paging: the cost of a page
    /// does not grow with its depth. A store MAY stop counting at
    /// `total_cap` for searches that match very many users, and then MUST
    /// say the total is a lower bound or estimate (`exact: false`). A store
    /// MAY end a search's page early — fewer than `limit` users, with `next`
    /// set to where it stopped looking — to bound the work of one page;
    /// following `next` MUST continue the search, so that the pages list
    /// every matching user exactly once.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn list(&self, query: &UserQuery, total_cap: u64) -> Result<UserPage, StoreError>;
}
