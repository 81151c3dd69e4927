//! Driven port for provisioning: users created and changed together with
//! their link to the identity provider's record, atomically.

use async_trait::async_trait;

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
    /// is written, if the user exists.
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
