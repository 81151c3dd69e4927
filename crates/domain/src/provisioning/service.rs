//! What a provisioning client (an identity provider holding a service
//! token with the `scim` scope) may read and do.

use crate::access::ServiceCaller;
use crate::analytics::models::TokenScope;
use crate::errors::StoreError;
use crate::users::models::{EmailAddress, User, UserId};

/// The ports ProvisioningService uses, and no others.
#[derive(Clone)]
pub struct ProvisioningPorts {
    /// User storage.
    pub users: std::sync::Arc<dyn crate::users::ports::UserRepository>,
}

/// The identity provider's side of user management. Every use case takes
/// the [`ServiceCaller`] the token check made, and refuses one whose token
/// does not have the `scim` scope.
pub struct ProvisioningService {
    ports: ProvisioningPorts,
    policy: std::sync::Arc<crate::policy::Policy>,
}

/// Why a provisioning request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProvisioningError {
    /// The token does not have the `scim` scope.
    #[error("this service token does not have the `scim` scope")]
    Forbidden,
    /// No user has this id.
    #[error("no user has this id")]
    NotFound,
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// A page of users by position, and how many there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsersByPosition {
    /// The users, in creation order.
    pub users: Vec<User>,
    /// Every user there is.
    pub total: u64,
}

impl ProvisioningService {
    /// The use cases over these ports and rules.
    #[must_use]
    pub fn new(ports: ProvisioningPorts, policy: std::sync::Arc<crate::policy::Policy>) -> Self {
        Self { ports, policy }
    }

    fn check(caller: &ServiceCaller) -> Result<(), ProvisioningError> {
        if caller.token().allows(TokenScope::Scim) {
            Ok(())
        } else {
            Err(ProvisioningError::Forbidden)
        }
    }

    /// One user by id.
    ///
    /// # Errors
    /// See [`ProvisioningError`].
    pub async fn user(
        &self,
        caller: &ServiceCaller,
        id: UserId,
    ) -> Result<User, ProvisioningError> {
        Self::check(caller)?;
        self.ports.users.get(id).await?.ok_or(ProvisioningError::NotFound)
    }

    /// The user with this address (any letter case), if any.
    ///
    /// # Errors
    /// See [`ProvisioningError`].
    pub async fn user_by_email(
        &self,
        caller: &ServiceCaller,
        email: &EmailAddress,
    ) -> Result<Option<User>, ProvisioningError> {
        Self::check(caller)?;
        Ok(self.ports.users.find_by_email(email).await?)
    }

    /// Up to `count` users from position `offset` (0-based) in creation
    /// order — a stable order: new users come last — with the total.
    /// `count` is clamped to the largest page.
    ///
    /// # Errors
    /// See [`ProvisioningError`].
    pub async fn users_by_position(
        &self,
        caller: &ServiceCaller,
        offset: u64,
        count: u32,
    ) -> Result<UsersByPosition, ProvisioningError> {
        Self::check(caller)?;
        let count = count.min(self.policy.max_page_size);
        let (users, total) = self.ports.users.by_position(offset, count).await?;
        Ok(UsersByPosition { users, total })
    }
}
