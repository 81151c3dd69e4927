//! The in-memory store's provisioned users.

use async_trait::async_trait;

use crate::errors::StoreError;
use crate::invitations::ports::InsertUserError;
use crate::provisioning::models::{ProvisionedUser, ScimIdentity};
use crate::provisioning::ports::{NewProvisionedUser, ProvisioningRepository};
use crate::users::models::{EmailAddress, User, UserId};
use crate::users::ports::{ChangeUserError, UserChange};

use super::{InMemoryStore, MemoryState};

impl MemoryState {
    /// The user as the identity provider sees them, unless detached.
    fn provisioned(&self, user: &User) -> Option<ProvisionedUser> {
        let identity = self.scim_identities.get(&user.id);
        if identity.is_some_and(|i| i.detached_at.is_some()) {
            return None;
        }
        Some(ProvisionedUser {
            user: user.clone(),
            external_id: identity.and_then(|i| i.external_id.clone()),
            user_name: identity.and_then(|i| i.user_name.clone()),
        })
    }

    /// Whether a user other than `except` has this account name.
    fn user_name_taken(&self, user_name: &str, except: UserId) -> bool {
        let key = user_name.to_lowercase();
        self.scim_identities.iter().any(|(id, i)| {
            *id != except && i.user_name.as_deref().is_some_and(|n| n.to_lowercase() == key)
        })
    }

    /// Every user not detached, in creation order.
    fn provisioned_in_order(&self) -> Vec<ProvisionedUser> {
        let mut users: Vec<&User> = self.users.values().collect();
        users.sort_by_key(|u| (u.created_at, u.id));
        users.into_iter().filter_map(|u| self.provisioned(u)).collect()
    }
}

#[async_trait]
impl ProvisioningRepository for InMemoryStore {
    async fn create(&self, new: NewProvisionedUser) -> Result<(), InsertUserError> {
        let mut state = self.state();
        if state.email_taken(&new.user.email)
            || new.user_name.as_deref().is_some_and(|n| state.user_name_taken(n, new.user.id))
        {
            return Err(InsertUserError::EmailTaken);
        }
        if let Some(limit) = new.seat_limit
            && !crate::users::models::SeatLimit::new(limit).admits(state.seats_used() as u64)
        {
            return Err(InsertUserError::SeatLimitReached { limit });
        }
        let id = new.user.id;
        state.users.insert(id, new.user);
        state.invitations.push(new.invitation);
        if let Some(mail) = new.mail {
            state.queue(mail);
        }
        state.audit.push(new.audit);
        state.scim_identities.insert(
            id,
            ScimIdentity {
                external_id: new.external_id,
                user_name: new.user_name,
                detached_at: None,
            },
        );
        Ok(())
    }

    async fn update(
        &self,
        user: UserId,
        change: Option<UserChange>,
        identity: ScimIdentity,
    ) -> Result<(), ChangeUserError> {
        let mut state = self.state();
        if !state.users.contains_key(&user) {
            return Err(ChangeUserError::Stale);
        }
        if identity.user_name.as_deref().is_some_and(|n| state.user_name_taken(n, user)) {
            return Err(ChangeUserError::EmailTaken);
        }
        if let Some(change) = change {
            state.apply_change(change)?;
        }
        state.scim_identities.insert(user, identity);
        Ok(())
    }

    async fn identity(&self, user: UserId) -> Result<Option<ScimIdentity>, StoreError> {
        Ok(self.state().scim_identities.get(&user).cloned())
    }

    async fn get(&self, user: UserId) -> Result<Option<ProvisionedUser>, StoreError> {
        let state = self.state();
        Ok(state.users.get(&user).and_then(|u| state.provisioned(u)))
    }

    async fn find_by_email(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<ProvisionedUser>, StoreError> {
        let state = self.state();
        Ok(state.users.values().find(|u| u.email == *email).and_then(|u| state.provisioned(u)))
    }

    async fn find_by_user_name(
        &self,
        user_name: &str,
    ) -> Result<Option<ProvisionedUser>, StoreError> {
        let state = self.state();
        let key = user_name.to_lowercase();
        let found = state
            .scim_identities
            .iter()
            .find(|(_, i)| i.user_name.as_deref().is_some_and(|n| n.to_lowercase() == key));
        Ok(found.and_then(|(id, _)| state.users.get(id)).and_then(|u| state.provisioned(u)))
    }

    async fn find_by_external_id(
        &self,
        external_id: &str,
        limit: u32,
    ) -> Result<Vec<ProvisionedUser>, StoreError> {
        Ok(self
            .state()
            .provisioned_in_order()
            .into_iter()
            .filter(|p| p.external_id.as_deref() == Some(external_id))
            .take(limit as usize)
            .collect())
    }

    async fn by_position(
        &self,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<ProvisionedUser>, u64), StoreError> {
        let all = self.state().provisioned_in_order();
        let total = all.len() as u64;
        let page = all
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(limit as usize)
            .collect();
        Ok((page, total))
    }
}
