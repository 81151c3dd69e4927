//! The in-memory store's users.

use async_trait::async_trait;

use crate::errors::StoreError;
use crate::users::models::{EmailAddress, User, UserId};
use crate::users::ports::UserTotal;
use crate::users::ports::{
    ChangeUserError, Erasure, UserChange, UserPage, UserQuery, UserRepository,
};

use super::InMemoryStore;

#[async_trait]
impl UserRepository for InMemoryStore {
    async fn apply_change(&self, change: UserChange) -> Result<(), ChangeUserError> {
        self.state().apply_change(change)
    }

    async fn erase(&self, erasure: Erasure) -> Result<(), ChangeUserError> {
        let mut state = self.state();
        let id = erasure.before.id;
        let current = state.users.get(&id).ok_or(ChangeUserError::Stale)?;
        if current.role != erasure.before.role || current.status() != erasure.before.status() {
            return Err(ChangeUserError::Stale);
        }
        if erasure.before.is_active_admin()
            && !state.users.values().any(|u| u.id != id && u.is_active_admin())
        {
            return Err(ChangeUserError::LastAdmin);
        }
        state.users.insert(id, erasure.after);
        state.modified.insert(id, erasure.audit.at);
        state.passwords.remove(&id);
        state.totp.remove(&id);
        state.recovery_codes.remove(&id);
        state.mfa_sign_ins.retain(|_, (user, _)| *user != id);
        state.passkeys.retain(|p| p.user_id != id);
        state.ceremonies.retain(|_, c| c.user_id != id);
        state.sessions.retain(|s| s.user_id != id);
        state.api_tokens.retain(|(t, _)| t.user_id != id);
        super::webhooks::fan_out(&mut state);
        state.webhook_deliveries.retain(|d| d.delivery.user_id != Some(id));
        state.revoke_pending_links(id, erasure.audit.at);
        let email = erasure.before.email.clone();
        state.outbox.retain(|m| m.sent_at.is_some() || m.mail.to != email);
        // The audit trail keeps ids, loses the person's data (as the SQL
        // store: emails cleared, changes about them dropped).
        for event in &mut state.audit {
            if event.target_id == Some(id) {
                event.target_email = None;
                event.changes.clear();
            }
            if event.target_email.as_deref() == Some(email.as_str()) {
                event.target_email = None;
            }
        }
        state.erased_actors.insert(id);
        state.audit.push(erasure.audit);
        Ok(())
    }

    async fn count_seats(&self) -> Result<u64, StoreError> {
        Ok(self.state().seats_used() as u64)
    }

    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(self.state().users.get(&id).cloned())
    }

    async fn find_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError> {
        Ok(self.state().users.values().find(|u| u.email == *email).cloned())
    }

    async fn list(&self, query: &UserQuery, _total_cap: u64) -> Result<UserPage, StoreError> {
        let state = self.state();
        let key = |u: &User| (query.sort.value_of(u), u.id);
        let mut users: Vec<&User> = state
            .users
            .values()
            .filter(|u| query.filter.matches(u))
            .filter(|u| query.filter.invitation.is_none_or(|f| state.invitation_in_trouble(u, f)))
            .filter(|u| {
                query.filter.group.is_none_or(|g| {
                    state.groups.get(&g).is_some_and(|group| group.members.contains(&u.id))
                })
            })
            .collect();
        let matching = users.len();
        users.sort_by_key(|u| key(u));
        if query.descending {
            users.reverse();
        }
        let items: Vec<User> = users
            .into_iter()
            .filter(|u| {
                query.after.as_ref().is_none_or(|c| {
                    let position = (c.value.clone(), c.id);
                    if query.descending { key(u) < position } else { key(u) > position }
                })
            })
            .take(query.limit as usize + 1)
            .cloned()
            .collect();
        let total = UserTotal { count: matching as u64, exact: true };
        Ok(UserPage::from_overfetch(items, query.limit, query.sort, total))
    }
}

impl super::MemoryState {
    /// [`UserRepository::apply_change`] on the locked state, for ports that
    /// write a user change with more.
    pub(super) fn apply_change(&mut self, change: UserChange) -> Result<(), ChangeUserError> {
        let id = change.before.id;
        let current = self.users.get(&id).ok_or(ChangeUserError::Stale)?;
        if current.role != change.before.role
            || current.status() != change.before.status()
            || current.email != change.before.email
        {
            return Err(ChangeUserError::Stale);
        }
        if change.keep_an_admin && !self.users.values().any(|u| u.id != id && u.is_active_admin()) {
            return Err(ChangeUserError::LastAdmin);
        }
        if let Some(Some(limit)) = change.takes_seat
            && !crate::users::models::SeatLimit::new(limit).admits(self.seats_used() as u64)
        {
            return Err(ChangeUserError::SeatLimitReached { limit });
        }
        if self.users.values().any(|u| u.id != id && u.email == change.after.email) {
            return Err(ChangeUserError::EmailTaken);
        }
        if change.after.sign_in != change.before.sign_in {
            self.passwords.remove(&id);
        }
        self.users.insert(id, change.after);
        if let Some(event) = change.audit.first() {
            self.modified.insert(id, event.at);
        }
        if change.end_sessions {
            self.sessions.retain(|s| s.user_id != id);
        }
        if change.revoke_links {
            let at = change.audit.first().map(|e| e.at).unwrap_or_default();
            self.revoke_pending_links(id, at);
            self.drop_unsent_links(id, &crate::mail::models::LINK_KINDS, at);
        }
        self.audit.extend(change.audit);
        Ok(())
    }
}
