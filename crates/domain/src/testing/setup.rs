//! The in-memory store's first-admin setup.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::errors::StoreError;
use crate::secrets::TokenHash;
use crate::setup::ports::{CompleteSetupStoreError, SetupCompletion, SetupRepository};
use crate::users::models::User;

use super::InMemoryStore;

#[async_trait]
impl SetupRepository for InMemoryStore {
    async fn has_active_admin(&self) -> Result<bool, StoreError> {
        Ok(self.state().users.values().any(User::is_active_admin))
    }

    async fn replace_setup_token(
        &self,
        hash: TokenHash,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.state().setup_token = Some((hash, expires_at));
        Ok(())
    }

    async fn setup_token_valid(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self.state().setup_token.is_some_and(|(h, exp)| h == *hash && now < exp))
    }

    async fn complete_setup(
        &self,
        completion: SetupCompletion,
    ) -> Result<(), CompleteSetupStoreError> {
        let mut state = self.state();
        let valid = state
            .setup_token
            .is_some_and(|(h, exp)| h == completion.token_hash && completion.at < exp);
        if !valid {
            return Err(CompleteSetupStoreError::InvalidToken);
        }
        if state.users.values().any(User::is_active_admin) {
            return Err(CompleteSetupStoreError::AdminExists);
        }
        if state.email_taken(&completion.admin.email) {
            return Err(CompleteSetupStoreError::EmailTaken);
        }
        state.setup_token = None;
        state.passwords.insert(completion.admin.id, completion.password_hash);
        state.users.insert(completion.admin.id, completion.admin);
        state.audit.push(completion.audit);
        Ok(())
    }
}
