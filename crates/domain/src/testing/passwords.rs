//! The in-memory store's password resets and changes.

use async_trait::async_trait;

use crate::errors::StoreError;
use crate::invitations::models::InvitationState;
use crate::resets::models::PasswordReset;
use crate::resets::ports::{NewReset, PasswordChange, PasswordRepository, PasswordStoreError};
use crate::secrets::TokenHash;
use crate::users::models::{User, UserStatus};

use super::InMemoryStore;

#[async_trait]
impl PasswordRepository for InMemoryStore {
    async fn issue_reset(&self, new: NewReset) -> Result<(), PasswordStoreError> {
        let mut state = self.state();
        let user_id = new.reset.user_id;
        if state.users.get(&user_id).is_none_or(|u| u.status() != UserStatus::Active) {
            return Err(PasswordStoreError::NoLongerApplicable);
        }
        let at = new.reset.created_at;
        for reset in &mut state.resets {
            if reset.user_id == user_id && reset.state == InvitationState::Pending {
                reset.state = InvitationState::Revoked { at };
            }
        }
        state.resets.push(new.reset);
        state.queue(new.mail);
        state.audit.push(new.audit);
        Ok(())
    }

    async fn find_reset(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(PasswordReset, User)>, StoreError> {
        let state = self.state();
        Ok(state
            .resets
            .iter()
            .find(|r| r.token_hash == *hash)
            .and_then(|r| state.users.get(&r.user_id).map(|u| (r.clone(), u.clone()))))
    }

    async fn set_password(&self, change: PasswordChange) -> Result<(), PasswordStoreError> {
        let mut state = self.state();
        if state.users.get(&change.user_id).is_none_or(|u| u.status() != UserStatus::Active) {
            return Err(PasswordStoreError::NoLongerApplicable);
        }
        if let Some(reset_id) = change.reset_id {
            let reset = state
                .resets
                .iter_mut()
                .find(|r| r.id == reset_id && r.state == InvitationState::Pending)
                .ok_or(PasswordStoreError::NoLongerApplicable)?;
            reset.state = InvitationState::Accepted { at: change.at };
        }
        state.passwords.insert(change.user_id, change.password_hash);
        state.sessions.retain(|s| s.user_id != change.user_id || Some(s.id) == change.keep_session);
        state.audit.push(change.audit);
        Ok(())
    }
}
