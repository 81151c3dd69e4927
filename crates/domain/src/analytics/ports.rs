//! Storage of service tokens and usage metadata.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::analytics::models::{
    ActivePoint, DayRange, DayUsage, ModelUsage, Period, RecordedUsage, ServiceToken, TopUsers,
    UsageEvent,
};
use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::secrets::TokenHash;
use crate::users::models::UserId;

/// Service tokens, stored by the digest of their secret.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ServiceTokenRepository: Send + Sync {
    /// Stores a new token under `hash` with its audit event, atomically.
    async fn insert_service_token(
        &self,
        token: ServiceToken,
        hash: TokenHash,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;

    /// Every token, revoked ones included, newest first.
    async fn service_tokens(&self) -> Result<Vec<ServiceToken>, StoreError>;

    /// The token whose secret has this digest (an index lookup: the digest
    /// of a guess reveals nothing about a stored one).
    async fn service_token_by_hash(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<ServiceToken>, StoreError>;

    /// Revokes an active token and writes `audit`, atomically. Returns the
    /// token as it is now, or `None` when no token has this id. A token
    /// already revoked is returned unchanged and nothing is written.
    async fn revoke_service_token(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<Option<ServiceToken>, StoreError>;

    /// Records that the token authenticated a request at `at`.
    async fn touch_service_token(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError>;
}

/// Usage events and the aggregates that answer the dashboards.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait UsageRepository: Send + Sync {
    /// Records checked events in one transaction with every aggregate they
    /// change (per user-day-model, per user-day, per model-day, first events
    /// of conversations, active users per day, week and month).
    ///
    /// - MUST ignore (and list in `duplicates`) an event whose id is already
    ///   stored, even when another batch records it concurrently;
    /// - MUST NOT record (and list in `unknown_users`) an event whose user
    ///   does not exist;
    /// - a conversation counts once, on the day of its first event.
    async fn record_usage(&self, events: Vec<UsageEvent>) -> Result<RecordedUsage, StoreError>;

    /// Marks the user active on the day (and week and month) of `at`.
    async fn mark_active(&self, user: UserId, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Active users of each period starting in `range` (periods with none
    /// may be left out).
    async fn active_users(
        &self,
        period: Period,
        range: DayRange,
    ) -> Result<Vec<ActivePoint>, StoreError>;

    /// Usage per day of the range (idle days may be left out), oldest first.
    async fn usage_by_day(&self, range: DayRange) -> Result<Vec<DayUsage>, StoreError>;

    /// Usage per model and provider over the range.
    async fn usage_by_model(&self, range: DayRange) -> Result<Vec<ModelUsage>, StoreError>;

    /// The `limit` users ranked highest by tokens and by conversations over
    /// the range, highest first (ties by user id), without users scoring 0.
    async fn top_users(&self, range: DayRange, limit: u32) -> Result<TopUsers, StoreError>;

    /// One user's usage per model over the range, and their last event ever
    /// kept.
    async fn user_usage(
        &self,
        user: UserId,
        range: DayRange,
    ) -> Result<(Option<DateTime<Utc>>, Vec<ModelUsage>), StoreError>;

    /// Deletes raw events (and conversation first-event records) from
    /// before `before`; aggregates stay. Returns the events deleted.
    async fn purge_usage_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}
