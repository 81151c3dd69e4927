//! Driven port for provisioning: users created and changed together with
//! their link to the identity provider's record, atomically.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::invitations::models::Invitation;
use crate::invitations::ports::InsertUserError;
use crate::mail::models::OutgoingMail;
use crate::provisioning::models::{ProvisionedUser, ScimIdentity};
use crate::users::models::{EmailAddress, User, UserId};
use crate::users::ports::{ChangeUserError, UserChange};

/// A user the identity provider creates, with everything written with it.
#[derive(Debug, Clone)]
pub struct NewProvisionedUser {
    /// The user: invited, or deactivated when created inactive.
    pub user: User,
    /// Their invitation (waiting for the first SSO sign-in).
    pub invitation: Invitation,
    /// The access-ready email, unless a setting turned it off or the user
    /// is created inactive.
    pub mail: Option<OutgoingMail>,
    /// The audit record.
    pub audit: AuditEvent,
    /// The seat limit in force, when the user takes a seat.
    pub seat_limit: Option<u32>,
    /// The identity provider's id for the user.
    pub external_id: Option<String>,
    /// Its `userName`, when that is not the address.
    pub user_name: Option<String>,
}

/// Storage of provisioned users.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ProvisioningRepository: Send + Sync {
    /// Inserts the user, their invitation, email, audit event and SCIM
    /// identity in one transaction.
    ///
    /// # Errors
    /// Writes nothing and MUST return [`InsertUserError::EmailTaken`] if the
    /// address, or the `user_name`, is taken in any letter case, or
    /// [`InsertUserError::SeatLimitReached`] if `seat_limit` is set and
    /// invited + active users already reach it (checked atomically).
    async fn create(&self, new: NewProvisionedUser) -> Result<(), InsertUserError>;

    /// Applies `change` (as [`crate::users::ports::UserRepository::apply_change`]
    /// does, with the same errors) and sets the user's SCIM identity to
    /// `identity`, in one transaction. With no change, only the identity
    /// is written, if the user exists. Either way the user's
    /// [`ProvisionedUser::modified_at`] becomes `at`.
    ///
    /// # Errors
    /// Writes nothing on any error; MUST return
    /// [`ChangeUserError::EmailTaken`] if another user's identity has the
    /// `user_name` in any letter case.
    async fn update(
        &self,
        user: UserId,
        change: Option<UserChange>,
        identity: ScimIdentity,
        at: DateTime<Utc>,
    ) -> Result<(), ChangeUserError>;

    /// The user's SCIM identity, if they have one.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn identity(&self, user: UserId) -> Result<Option<ScimIdentity>, StoreError>;

    /// The user with this id unless detached.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn get(&self, user: UserId) -> Result<Option<ProvisionedUser>, StoreError>;

    /// The user with this address (any letter case) unless detached.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn find_by_email(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<ProvisionedUser>, StoreError>;

    /// The user whose `userName` (an account name) is this, in any letter
    /// case, unless detached.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn find_by_user_name(
        &self,
        user_name: &str,
    ) -> Result<Option<ProvisionedUser>, StoreError>;

    /// Up to `limit` users whose `externalId` is exactly this, not
    /// detached, in creation order.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn find_by_external_id(
        &self,
        external_id: &str,
        limit: u32,
    ) -> Result<Vec<ProvisionedUser>, StoreError>;

    /// Up to `limit` users matching `filter` from position `offset` in
    /// creation order, leaving out detached users, and how many match.
    /// MUST follow [`crate::provisioning::filter::ScimFilter::matches`].
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn search(
        &self,
        filter: &crate::provisioning::filter::ScimFilter,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<ProvisionedUser>, u64), StoreError>;

    /// Keeps a refused request, and of all kept only the newest `keep`.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn record_failure(
        &self,
        failure: &crate::provisioning::models::RequestFailure,
        keep: u32,
    ) -> Result<(), StoreError>;

    /// The newest refused requests, newest first.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn recent_failures(
        &self,
        limit: u32,
    ) -> Result<Vec<crate::provisioning::models::RequestFailure>, StoreError>;

    /// Up to `limit` users from position `offset` (0-based) in creation
    /// order, `(created_at, id)`, leaving out detached users, and how many
    /// such users there are in all.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn by_position(
        &self,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<ProvisionedUser>, u64), StoreError>;
}

/// A group change worked out by the domain, written in one transaction:
/// the group row, its members, and the role changes membership of the
/// admin group brings.
#[derive(Debug, Clone)]
pub struct GroupWrite {
    /// The group as it must become (name, external id, updated time);
    /// its `members` are not read: `members` below says what changes.
    pub group: crate::provisioning::models::Group,
    /// The member changes.
    pub members: crate::provisioning::models::MemberChange,
    /// Role changes of members that join or leave the admin group, each
    /// applied as [`crate::users::ports::UserRepository::apply_change`]
    /// does.
    pub role_changes: Vec<UserChange>,
    /// The audit events.
    pub audit: Vec<AuditEvent>,
    /// The members the domain worked the change out from (set for the
    /// admin group, whose members' roles follow membership): the store
    /// MUST refuse with [`GroupWriteError::Stale`] if the members under
    /// its lock differ, so that no concurrent change leaves a role behind.
    pub expected_members: Option<Vec<UserId>>,
}

/// Why the store refused a group change.
#[derive(Debug, thiserror::Error)]
pub enum GroupWriteError {
    /// Another group has the name, in any letter case.
    #[error("another group has this name")]
    NameTaken,
    /// No group has this id.
    #[error("no such group")]
    NotFound,
    /// A member to add is no user.
    #[error("a member is no user")]
    UnknownMember,
    /// A role change would leave no active admin.
    #[error("last active admin")]
    LastAdmin,
    /// A member's role or status changed meanwhile: work it out again.
    #[error("a member changed meanwhile")]
    Stale,
    /// Unexpected failure.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

impl From<ChangeUserError> for GroupWriteError {
    fn from(error: ChangeUserError) -> Self {
        match error {
            ChangeUserError::LastAdmin => Self::LastAdmin,
            ChangeUserError::Stale => Self::Stale,
            ChangeUserError::Unexpected(e) => Self::Unexpected(e),
            other => Self::Unexpected(StoreError::msg(other.to_string())),
        }
    }
}

/// Storage of groups and their members.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait GroupRepository: Send + Sync {
    /// Inserts a group (with members from `write.members.replace` and
    /// `add`) and its audit events in one transaction.
    ///
    /// # Errors
    /// Writes nothing and MUST return [`GroupWriteError::NameTaken`] if
    /// another group has the name in any letter case, or
    /// [`GroupWriteError::UnknownMember`] if a member is no user.
    async fn create_group(&self, write: GroupWrite) -> Result<(), GroupWriteError>;

    /// Changes a group in one transaction: name, external id, members
    /// (replace first, then add, then remove — concurrent changes adding
    /// different members keep all of them), role changes, audit events.
    ///
    /// # Errors
    /// Writes nothing and MUST return [`GroupWriteError::NotFound`] if the
    /// group does not exist, `UnknownMember` if a member to add is no
    /// user, `NameTaken` as for `create_group`, `Stale` if the members
    /// differ from `expected_members`, and the role-change errors of
    /// `apply_change`.
    async fn change_group(&self, write: GroupWrite) -> Result<(), GroupWriteError>;

    /// Deletes a group and its memberships (never its members), with its
    /// audit event and role changes, in one transaction.
    ///
    /// # Errors
    /// MUST return [`GroupWriteError::NotFound`] if there is no such group,
    /// and `Stale` if its members differ from `expected_members`.
    async fn delete_group(
        &self,
        id: uuid::Uuid,
        expected_members: Option<Vec<UserId>>,
        role_changes: Vec<UserChange>,
        audit: AuditEvent,
    ) -> Result<(), GroupWriteError>;

    /// The group with its members.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn group(
        &self,
        id: uuid::Uuid,
    ) -> Result<Option<crate::provisioning::models::Group>, StoreError>;

    /// The group with this name, in any letter case.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn group_by_name(
        &self,
        name: &str,
    ) -> Result<Option<crate::provisioning::models::Group>, StoreError>;

    /// Up to `limit` groups from position `offset` in creation order, with
    /// their members, and how many groups there are.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn groups_by_position(
        &self,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<crate::provisioning::models::Group>, u64), StoreError>;

    /// The groups a user is a member of, by name.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn groups_of(
        &self,
        user: UserId,
    ) -> Result<Vec<crate::provisioning::models::GroupSummary>, StoreError>;

    /// The first `limit` groups by name in any letter case, without their
    /// members (the users list's group filter).
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn group_names(
        &self,
        limit: u32,
    ) -> Result<Vec<crate::provisioning::models::GroupSummary>, StoreError>;
}
