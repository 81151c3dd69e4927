//! The in-memory store's sessions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::secrets::{PasswordHash, TokenHash};
use crate::sessions::models::{Session, SessionId};
use crate::sessions::ports::SessionRepository;
use crate::users::models::{EmailAddress, User, UserId};

use super::InMemoryStore;

#[async_trait]
impl SessionRepository for InMemoryStore {
    async fn count_live(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(self
            .state()
            .sessions
            .iter()
            .filter(|s| s.user_id == user && s.expires_at > now && s.last_seen_at > idle_since)
            .count() as u64)
    }

    async fn find_credentials(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<(User, Option<PasswordHash>)>, StoreError> {
        let state = self.state();
        Ok(state
            .users
            .values()
            .find(|u| u.email == *email)
            .map(|u| (u.clone(), state.passwords.get(&u.id).cloned())))
    }

    async fn start(&self, session: Session, audit: AuditEvent) -> Result<(), StoreError> {
        let mut state = self.state();
        if let Some(user) = state.users.get_mut(&session.user_id) {
            user.last_login_at = Some(session.created_at);
        }
        state.sessions.push(session);
        state.audit.push(audit);
        Ok(())
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<(Session, User)>, StoreError> {
        let state = self.state();
        Ok(state
            .sessions
            .iter()
            .find(|s| s.token_hash == *hash)
            .and_then(|s| state.users.get(&s.user_id).map(|u| (s.clone(), u.clone()))))
    }

    async fn touch(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), StoreError> {
        for session in &mut self.state().sessions {
            if session.id == id {
                session.last_seen_at = at;
            }
        }
        Ok(())
    }

    async fn second_factor_checked(
        &self,
        id: SessionId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for session in &mut self.state().sessions {
            if session.id == id {
                session.enrolment_only = false;
                session.second_factor_at = Some(at);
            }
        }
        Ok(())
    }

    async fn enrolment_required(&self, id: SessionId) -> Result<(), StoreError> {
        for session in &mut self.state().sessions {
            if session.id == id {
                session.enrolment_only = true;
                session.second_factor_at = None;
            }
        }
        Ok(())
    }

    async fn end_all(&self, user: UserId, audit: AuditEvent) -> Result<u64, StoreError> {
        let mut state = self.state();
        let before = state.sessions.len();
        state.sessions.retain(|s| s.user_id != user);
        let ended = (before - state.sessions.len()) as u64;
        state.audit.push(audit);
        Ok(ended)
    }

    async fn end(&self, id: SessionId, audit: Option<AuditEvent>) -> Result<(), StoreError> {
        let mut state = self.state();
        state.sessions.retain(|s| s.id != id);
        state.audit.extend(audit);
        Ok(())
    }
}
