//! The in-memory store's provisioned users.

use async_trait::async_trait;

use crate::errors::StoreError;
use crate::invitations::ports::InsertUserError;
use crate::provisioning::models::{Group, GroupSummary, ProvisionedUser, ScimIdentity};
use crate::provisioning::ports::{
    GroupRepository, GroupWrite, GroupWriteError, NewProvisionedUser, ProvisioningRepository,
};
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
            modified_at: self.modified.get(&user.id).copied().unwrap_or(user.created_at),
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
        // Seats first, as the SQL store checks them.
        if let Some(limit) = new.seat_limit
            && !crate::users::models::SeatLimit::new(limit).admits(state.seats_used() as u64)
        {
            return Err(InsertUserError::SeatLimitReached { limit });
        }
        if state.email_taken(&new.user.email)
            || new.user_name.as_deref().is_some_and(|n| state.user_name_taken(n, new.user.id))
        {
            return Err(InsertUserError::EmailTaken);
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
        at: chrono::DateTime<chrono::Utc>,
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
        state.modified.insert(user, at);
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

    async fn search(
        &self,
        filter: &crate::provisioning::filter::ScimFilter,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<ProvisionedUser>, u64), StoreError> {
        let matching: Vec<ProvisionedUser> =
            self.state().provisioned_in_order().into_iter().filter(|p| filter.matches(p)).collect();
        let total = matching.len() as u64;
        let page = matching
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(limit as usize)
            .collect();
        Ok((page, total))
    }

    async fn record_failure(
        &self,
        failure: &crate::provisioning::models::RequestFailure,
        keep: u32,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.scim_failures.push(failure.clone());
        state.scim_failures.sort_by_key(|f| std::cmp::Reverse(f.at));
        state.scim_failures.truncate(keep as usize);
        Ok(())
    }

    async fn recent_failures(
        &self,
        limit: u32,
    ) -> Result<Vec<crate::provisioning::models::RequestFailure>, StoreError> {
        Ok(self.state().scim_failures.iter().take(limit as usize).cloned().collect())
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

impl MemoryState {
    fn group_name_taken(&self, name: &str, except: uuid::Uuid) -> bool {
        let key = name.to_lowercase();
        self.groups.values().any(|g| g.id != except && g.name.to_lowercase() == key)
    }

    /// Applies role changes all or nothing: checked on a copy first.
    fn apply_role_changes(&mut self, changes: Vec<UserChange>) -> Result<(), GroupWriteError> {
        let mut trial = self.users.clone();
        for change in &changes {
            let id = change.before.id;
            let current = trial.get(&id).ok_or(GroupWriteError::Stale)?;
            if current.role != change.before.role || current.status() != change.before.status() {
                return Err(GroupWriteError::Stale);
            }
            if change.keep_an_admin && !trial.values().any(|u| u.id != id && u.is_active_admin()) {
                return Err(GroupWriteError::LastAdmin);
            }
            trial.insert(id, change.after.clone());
        }
        for change in changes {
            self.apply_change(change).map_err(|e| match e {
                ChangeUserError::LastAdmin => GroupWriteError::LastAdmin,
                ChangeUserError::Stale => GroupWriteError::Stale,
                other => GroupWriteError::Unexpected(StoreError::msg(other.to_string())),
            })?;
        }
        Ok(())
    }
}

#[async_trait]
impl GroupRepository for InMemoryStore {
    async fn create_group(&self, write: GroupWrite) -> Result<(), GroupWriteError> {
        let mut state = self.state();
        if state.group_name_taken(&write.group.name, write.group.id) {
            return Err(GroupWriteError::NameTaken);
        }
        let mut group = write.group;
        let mut members = write.members.replace.unwrap_or_default();
        members.extend(write.members.add);
        members.retain(|m| !write.members.remove.contains(m));
        if members.iter().any(|m| !state.users.contains_key(m)) {
            return Err(GroupWriteError::UnknownMember);
        }
        members.sort();
        members.dedup();
        group.members = members;
        state.apply_role_changes(write.role_changes)?;
        state.groups.insert(group.id, group);
        state.audit.extend(write.audit);
        Ok(())
    }

    async fn change_group(&self, write: GroupWrite) -> Result<(), GroupWriteError> {
        let mut state = self.state();
        let id = write.group.id;
        let Some(current) = state.groups.get(&id).cloned() else {
            return Err(GroupWriteError::NotFound);
        };
        if state.group_name_taken(&write.group.name, id) {
            return Err(GroupWriteError::NameTaken);
        }
        let joining = write.members.add.iter().chain(write.members.replace.iter().flatten());
        if joining.into_iter().any(|m| !state.users.contains_key(m)) {
            return Err(GroupWriteError::UnknownMember);
        }
        if let Some(expected) = &write.expected_members {
            let mut expected = expected.clone();
            expected.sort();
            let mut now = current.members.clone();
            now.sort();
            if expected != now {
                return Err(GroupWriteError::Stale);
            }
        }
        let mut members = write.members.replace.clone().unwrap_or(current.members);
        members.extend(write.members.add.iter().copied());
        members.retain(|m| !write.members.remove.contains(m));
        members.sort();
        members.dedup();
        state.apply_role_changes(write.role_changes)?;
        let group = Group { members, ..write.group };
        state.groups.insert(id, group);
        state.audit.extend(write.audit);
        Ok(())
    }

    async fn delete_group(
        &self,
        id: uuid::Uuid,
        expected_members: Option<Vec<UserId>>,
        role_changes: Vec<UserChange>,
        audit: crate::audit::models::AuditEvent,
    ) -> Result<(), GroupWriteError> {
        let mut state = self.state();
        let Some(group) = state.groups.get(&id) else {
            return Err(GroupWriteError::NotFound);
        };
        if let Some(mut expected) = expected_members {
            let mut now = group.members.clone();
            expected.sort();
            now.sort();
            if expected != now {
                return Err(GroupWriteError::Stale);
            }
        }
        state.apply_role_changes(role_changes)?;
        state.groups.remove(&id);
        state.audit.push(audit);
        Ok(())
    }

    async fn group(&self, id: uuid::Uuid) -> Result<Option<Group>, StoreError> {
        Ok(self.state().groups.get(&id).cloned())
    }

    async fn group_by_name(&self, name: &str) -> Result<Option<Group>, StoreError> {
        let key = name.to_lowercase();
        Ok(self.state().groups.values().find(|g| g.name.to_lowercase() == key).cloned())
    }

    async fn groups_by_position(
        &self,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<Group>, u64), StoreError> {
        let state = self.state();
        let mut groups: Vec<&Group> = state.groups.values().collect();
        groups.sort_by_key(|g| (g.created_at, g.id));
        let total = groups.len() as u64;
        let page = groups
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(limit as usize)
            .cloned()
            .collect();
        Ok((page, total))
    }

    async fn groups_of(&self, user: UserId) -> Result<Vec<GroupSummary>, StoreError> {
        let state = self.state();
        let mut groups: Vec<GroupSummary> = state
            .groups
            .values()
            .filter(|g| g.members.contains(&user))
            .map(|g| GroupSummary { id: g.id, name: g.name.clone() })
            .collect();
        groups.sort_by_key(|g| g.name.to_lowercase());
        Ok(groups)
    }

    async fn group_names(&self, limit: u32) -> Result<Vec<GroupSummary>, StoreError> {
        let state = self.state();
        let mut groups: Vec<GroupSummary> = state
            .groups
            .values()
            .map(|g| GroupSummary { id: g.id, name: g.name.clone() })
            .collect();
        groups.sort_by_key(|g| (g.name.to_lowercase(), g.id));
        groups.truncate(limit as usize);
        Ok(groups)
    }
}
