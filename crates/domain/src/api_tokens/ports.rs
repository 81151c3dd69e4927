//! Where personal API tokens are kept.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::api_tokens::models::ApiToken;
use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::secrets::TokenHash;
use crate::users::models::UserId;

/// Personal API tokens, kept with the SHA-256 digest of their secret.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait::async_trait]
pub trait ApiTokenRepository: Send + Sync {
    /// Keeps a new token under `hash`, with its audit event, in one
    /// transaction.
    async fn insert_api_token(
        &self,
        token: ApiToken,
        hash: TokenHash,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;

    /// The token whose secret has this digest.
    async fn api_token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError>;

    /// The tokens of `user` (`None`: everyone's), newest first.
    async fn api_tokens(&self, user: Option<UserId>) -> Result<Vec<ApiToken>, StoreError>;

    /// Revokes the token `id` (only `owner`'s when given) at `now`, with
    /// its audit event, if it is not revoked yet: the token as revoked
    /// now, or `None` (unknown, another's, or revoked already — then
    /// nothing is written). Of concurrent calls exactly one revokes.
    async fn revoke_api_token(
        &self,
        id: Uuid,
        owner: Option<UserId>,
        now: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<Option<ApiToken>, StoreError>;

    /// Records a use: when (to the minute) and from where.
    async fn touch_api_token(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        ip: Option<String>,
    ) -> Result<(), StoreError>;
}
