//! The in-memory store's SSO sign-ins, and an identity provider that answers as told.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::errors::FieldError;
use crate::errors::StoreError;
use crate::invitations::models::InvitationState;
use crate::secrets::TokenHash;
use crate::sso::models::{PendingLogin, SsoFailure, SsoIdentity, SsoResponse, SsoStart};
use crate::sso::ports::{IdentityProvider, SsoRepository, SsoSignIn, SsoSignInStoreError};
use crate::sso::settings::SsoSettings;
use crate::users::models::{User, UserId, UserStatus};

use super::InMemoryStore;

#[async_trait]
impl SsoRepository for InMemoryStore {
    async fn save_login(&self, login: PendingLogin) -> Result<(), StoreError> {
        self.state().pending_logins.push(login);
        Ok(())
    }

    async fn take_login(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingLogin>, StoreError> {
        let mut state = self.state();
        let found = state.pending_logins.iter().position(|p| &p.key == key);
        let taken = found.map(|i| state.pending_logins.remove(i));
        state.pending_logins.retain(|p| p.expires_at > now);
        Ok(taken)
    }

    async fn find_linked(&self, issuer: &str, subject: &str) -> Result<Option<User>, StoreError> {
        let state = self.state();
        let id = state.sso_links.get(&(issuer.to_owned(), subject.to_owned()));
        Ok(id.and_then(|id| state.users.get(id).cloned()))
    }

    async fn links_of(&self, user: UserId) -> Result<Vec<(String, String)>, StoreError> {
        let state = self.state();
        Ok(state
            .sso_links
            .iter()
            .filter(|(_, u)| **u == user)
            .map(|((issuer, subject), _)| (issuer.clone(), subject.clone()))
            .collect())
    }

    async fn remember_assertion(
        &self,
        issuer: &str,
        id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        state.assertions.retain(|_, until| *until > now);
        let key = (issuer.to_owned(), id.to_owned());
        if state.assertions.contains_key(&key) {
            return Ok(false);
        }
        state.assertions.insert(key, expires_at);
        Ok(true)
    }

    async fn forget_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.state();
        let before = state.pending_logins.len() + state.assertions.len();
        state.pending_logins.retain(|p| p.expires_at > now);
        state.assertions.retain(|_, until| *until > now);
        let after = state.pending_logins.len() + state.assertions.len();
        Ok(u64::try_from(before - after).unwrap_or(u64::MAX))
    }

    async fn record_sso_sign_in(&self, sign_in: SsoSignIn) -> Result<(), SsoSignInStoreError> {
        let mut state = self.state();
        let id = sign_in.user.id;
        match sign_in.create {
            Some(limit) => {
                if state.email_taken(&sign_in.user.email) {
                    return Err(SsoSignInStoreError::Conflict);
                }
                if let Some(limit) = limit
                    && !crate::users::models::SeatLimit::new(limit)
                        .admits(state.seats_used() as u64)
                {
                    return Err(SsoSignInStoreError::SeatLimitReached { limit });
                }
            }
            None => {
                let current = state.users.get(&id).ok_or(SsoSignInStoreError::Stale)?;
                let expected =
                    if sign_in.activate { UserStatus::Invited } else { UserStatus::Active };
                if current.status() != expected {
                    return Err(SsoSignInStoreError::Stale);
                }
            }
        }
        if let Some((issuer, subject)) = &sign_in.link {
            let key = (issuer.clone(), subject.clone());
            if state.sso_links.contains_key(&key) {
                return Err(SsoSignInStoreError::Conflict);
            }
            state.sso_links.insert(key, id);
        }
        if sign_in.activate {
            for invitation in state.invitations.iter_mut().filter(|i| i.user_id == id) {
                // Answered through the identity provider (as the SQL store).
                if invitation.state == InvitationState::Pending {
                    invitation.state = InvitationState::Accepted { at: sign_in.session.created_at };
                }
            }
            state.modified.insert(id, sign_in.session.created_at);
        }
        state.users.insert(id, sign_in.user);
        state.sessions.push(sign_in.session);
        state.audit.extend(sign_in.audit);
        Ok(())
    }
}

/// An identity provider for tests of the rules: answers every sign-in with
/// the identity (or refusal) the test set, and accepts every setting.
#[derive(Default)]
pub struct FakeIdentityProvider {
    answer: Mutex<Option<Result<SsoIdentity, SsoFailure>>>,
    pending_seen: Mutex<Vec<Option<PendingLogin>>>,
}

impl FakeIdentityProvider {
    /// The next sign-in's answer.
    pub fn answer(&self, answer: Result<SsoIdentity, SsoFailure>) {
        *self.answer.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(answer);
    }

    /// The sign-in in flight each `complete` was given, in order.
    pub fn pending_seen(&self) -> Vec<Option<PendingLogin>> {
        self.pending_seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

#[async_trait]
impl IdentityProvider for FakeIdentityProvider {
    async fn check(&self, settings: SsoSettings) -> Result<SsoSettings, FieldError> {
        Ok(settings)
    }

    async fn begin(
        &self,
        _settings: &SsoSettings,
        _relay_state: &str,
    ) -> Result<SsoStart, SsoFailure> {
        Ok(SsoStart {
            redirect_url: "https://idp.example.com/authorize".into(),
            data: "state".into(),
        })
    }

    async fn complete(
        &self,
        _settings: &SsoSettings,
        pending: Option<PendingLogin>,
        _response: &SsoResponse,
        _now: DateTime<Utc>,
    ) -> Result<SsoIdentity, SsoFailure> {
        self.pending_seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(pending);
        self.answer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| Err(SsoFailure::new("no_answer", "the test set no answer")))
    }

    fn service_provider_metadata(&self, _settings: &SsoSettings) -> Result<String, SsoFailure> {
        Ok("<EntityDescriptor/>".into())
    }
}
