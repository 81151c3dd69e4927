//! The in-memory store's personal API tokens.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::InMemoryStore;
use crate::api_tokens::models::ApiToken;
use crate::api_tokens::ports::ApiTokenRepository;
use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::secrets::TokenHash;
use crate::users::models::UserId;

#[async_trait]
impl ApiTokenRepository for InMemoryStore {
    async fn insert_api_token(
        &self,
        token: ApiToken,
        hash: TokenHash,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.api_tokens.push((token, hash));
        state.audit.push(audit);
        Ok(())
    }

    async fn api_token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
        Ok(self.state().api_tokens.iter().find(|(_, h)| h == hash).map(|(t, _)| t.clone()))
    }

    async fn api_tokens(&self, user: Option<UserId>) -> Result<Vec<ApiToken>, StoreError> {
        let state = self.state();
        let mut tokens: Vec<ApiToken> = state
            .api_tokens
            .iter()
            .filter(|(t, _)| user.is_none_or(|u| t.user_id == u))
            .map(|(t, _)| t.clone())
            .collect();
        tokens.sort_by_key(|t| std::cmp::Reverse((t.created_at, t.id)));
        Ok(tokens)
    }

    async fn revoke_api_token(
        &self,
        id: Uuid,
        owner: Option<UserId>,
        now: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<Option<ApiToken>, StoreError> {
        let mut state = self.state();
        let Some((token, _)) = state.api_tokens.iter_mut().find(|(t, _)| {
            t.id == id && t.revoked_at.is_none() && owner.is_none_or(|o| t.user_id == o)
        }) else {
            return Ok(None);
        };
        token.revoked_at = Some(now);
        let token = token.clone();
        state.audit.push(audit);
        Ok(Some(token))
    }

    async fn touch_api_token(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        ip: Option<String>,
    ) -> Result<(), StoreError> {
        if let Some((token, _)) = self.state().api_tokens.iter_mut().find(|(t, _)| t.id == id) {
            token.last_used_at = Some(at);
            token.last_used_ip = ip;
        }
        Ok(())
    }
}
