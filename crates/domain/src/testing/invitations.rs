//! The in-memory store's invitations.

use async_trait::async_trait;

use crate::errors::StoreError;
use crate::invitations::models::{Invitation, InvitationState};
use crate::invitations::ports::{
    AcceptStoreError, Acceptance, InsertUserError, InvitationRepository, NewInvitedUser, Reissue,
    ReissueError,
};
use crate::secrets::TokenHash;
use crate::users::models::{User, UserId, UserState, UserStatus};

use super::InMemoryStore;

#[async_trait]
impl InvitationRepository for InMemoryStore {
    async fn insert_invited(&self, new: NewInvitedUser) -> Result<(), InsertUserError> {
        let mut state = self.state();
        if state.email_taken(&new.user.email) {
            return Err(InsertUserError::EmailTaken);
        }
        if let Some(limit) = new.seat_limit
            && !crate::users::models::SeatLimit::new(limit).admits(state.seats_used() as u64)
        {
            return Err(InsertUserError::SeatLimitReached { limit });
        }
        state.users.insert(new.user.id, new.user);
        state.invitations.push(new.invitation);
        state.queue(new.mail);
        state.audit.push(new.audit);
        Ok(())
    }

    async fn reissue(&self, reissue: Reissue) -> Result<(), ReissueError> {
        let mut state = self.state();
        let user_id = reissue.invitation.user_id;
        if state.users.get(&user_id).is_none_or(|u| u.status() != UserStatus::Invited) {
            return Err(ReissueError::NotInvited);
        }
        if let Some(email) = &reissue.new_email
            && state.users.values().any(|u| u.id != user_id && u.email == *email)
        {
            return Err(ReissueError::EmailTaken);
        }
        if reissue.new_email.is_some() {
            state.modified.insert(user_id, reissue.invitation.created_at);
        }
        if let Some(email) = reissue.new_email
            && let Some(user) = state.users.get_mut(&user_id)
        {
            user.email = email;
        }
        let now = reissue.invitation.created_at;
        state.drop_unsent_links(user_id, &crate::mail::models::INVITATION_KINDS, now);
        let at = reissue.invitation.created_at;
        for invitation in &mut state.invitations {
            if invitation.user_id == user_id && invitation.state == InvitationState::Pending {
                invitation.state = InvitationState::Revoked { at };
            }
        }
        state.invitations.push(reissue.invitation);
        state.queue(reissue.mail);
        state.audit.push(reissue.audit);
        Ok(())
    }

    async fn latest_for(&self, user: UserId) -> Result<Option<Invitation>, StoreError> {
        Ok(self
            .state()
            .invitations
            .iter()
            .filter(|i| i.user_id == user)
            .max_by_key(|i| (i.state == InvitationState::Pending, i.created_at))
            .cloned())
    }

    async fn latest_for_users(&self, users: &[UserId]) -> Result<Vec<Invitation>, StoreError> {
        let mut found = Vec::new();
        for user in users {
            if let Some(invitation) = self.latest_for(*user).await? {
                found.push(invitation);
            }
        }
        Ok(found)
    }

    async fn find_by_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(Invitation, User)>, StoreError> {
        let state = self.state();
        Ok(state
            .invitations
            .iter()
            .find(|i| i.token_hash == *hash)
            .and_then(|i| state.users.get(&i.user_id).map(|u| (i.clone(), u.clone()))))
    }

    async fn accept(&self, acceptance: Acceptance) -> Result<(), AcceptStoreError> {
        let mut state = self.state();
        let pending = state
            .invitations
            .iter()
            .any(|i| i.id == acceptance.invitation_id && i.state == InvitationState::Pending);
        let invited =
            state.users.get(&acceptance.user_id).is_some_and(|u| u.status() == UserStatus::Invited);
        if !pending || !invited {
            return Err(AcceptStoreError::NoLongerPending);
        }
        for invitation in &mut state.invitations {
            if invitation.id == acceptance.invitation_id {
                invitation.state = InvitationState::Accepted { at: acceptance.at };
            }
        }
        if let Some(user) = state.users.get_mut(&acceptance.user_id) {
            user.state = UserState::Active { activated_at: acceptance.at };
        }
        state.modified.insert(acceptance.user_id, acceptance.at);
        if let Some(hash) = acceptance.password_hash {
            state.passwords.insert(acceptance.user_id, hash);
        }
        state.audit.push(acceptance.audit);
        Ok(())
    }
}
