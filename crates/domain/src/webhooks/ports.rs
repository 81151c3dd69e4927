//! Where webhook endpoints and their deliveries are kept, and how a
//! delivery is sent.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::webhooks::deliveries::{
    AttemptOutcome, Delivery, DeliveryState, DueDelivery, SendFailed, SignedRequest,
};
use crate::webhooks::models::WebhookEndpoint;
use crate::webhooks::signature::WebhookSecret;

/// Webhook endpoints, with their signing secrets sealed at rest, and the
/// deliveries of events to them.
///
/// The store also writes deliveries of its own: with every audit event
/// that [`crate::webhooks::events::event_of`] maps to an event, one
/// pending delivery per enabled endpoint subscribed to it, in the
/// transaction of the change (at most one per endpoint and dedupe key).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait::async_trait]
pub trait WebhookRepository: Send + Sync {
    /// Keeps a new endpoint and its secret, with its audit event, in one
    /// transaction.
    async fn insert_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        secret: &WebhookSecret,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;

    /// Every endpoint, oldest first.
    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, StoreError>;

    /// The secret an endpoint's deliveries are signed with (`None`: no
    /// such endpoint).
    async fn endpoint_secret(&self, id: Uuid) -> Result<Option<WebhookSecret>, StoreError>;

    /// The secrets deliveries are signed with at `now`: the current one,
    /// then the previous one while a rotation's overlap lasts (empty: no
    /// such endpoint).
    async fn signing_secrets(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<WebhookSecret>, StoreError>;

    /// Replaces an endpoint's secret, keeping the old one for signing
    /// until `previous_until`, with its audit event: whether it exists.
    async fn rotate_secret(
        &self,
        id: Uuid,
        secret: &WebhookSecret,
        previous_until: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<bool, StoreError>;

    /// Writes an endpoint's address, events and state, with its audit
    /// event: whether it exists.
    async fn update_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        audit: AuditEvent,
    ) -> Result<bool, StoreError>;

    /// Stops deliveries to an endpoint whose receiver answered 410 Gone,
    /// if it still has the address that answered and is not stopped
    /// already (an admin's change since wins): whether it stopped it.
    async fn disable_endpoint(
        &self,
        id: Uuid,
        url: &str,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<bool, StoreError>;

    /// Deletes an endpoint and its deliveries, with its audit event:
    /// whether it existed (of concurrent calls, one).
    async fn delete_endpoint(&self, id: Uuid, audit: AuditEvent) -> Result<bool, StoreError>;

    /// Claims up to `limit` pending deliveries due at `now` to enabled
    /// endpoints, leased until `lease_until` so no other worker (in this
    /// or another instance) attempts them meanwhile. Only the oldest
    /// pending delivery per endpoint and user is ever due: a user's
    /// events reach an endpoint in order.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError>;

    /// Records an attempt and ends the lease, if `lease` still holds it
    /// (a worker whose lease ran out and was taken over writes nothing).
    async fn record_attempt(
        &self,
        id: Uuid,
        lease: &str,
        outcome: AttemptOutcome,
    ) -> Result<(), StoreError>;

    /// Records a round's attempts together (one transaction where the store
    /// has them): each as [`WebhookRepository::record_attempt`].
    async fn record_attempts(
        &self,
        attempts: Vec<(Uuid, String, AttemptOutcome)>,
    ) -> Result<(), StoreError> {
        for (id, lease, outcome) in attempts {
            self.record_attempt(id, &lease, outcome).await?;
        }
        Ok(())
    }

    /// One delivery of an endpoint, and whether a later delivery about the
    /// same user to that endpoint was delivered (sending this one again
    /// would then undo it at the receiver).
    async fn delivery(
        &self,
        endpoint: Uuid,
        id: Uuid,
    ) -> Result<Option<(Delivery, bool)>, StoreError>;

    /// An endpoint's deliveries in `state` (any if `None`), newest first,
    /// before `before` if given (paging).
    async fn deliveries(
        &self,
        endpoint: Uuid,
        state: Option<DeliveryState>,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Queues a failed delivery again, due at `at`, attempts counted from
    /// zero and its three days from `at`, with its audit event: `false`
    /// (nothing changed) unless it was failed.
    async fn retry_delivery(
        &self,
        endpoint: Uuid,
        id: Uuid,
        at: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<bool, StoreError>;

    /// Deletes delivered and failed deliveries of events older than
    /// `before`: how many.
    async fn forget_old_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Queues a delivery that no audit event made ("Send test event").
    async fn queue_delivery(&self, delivery: &Delivery, body: &str) -> Result<(), StoreError>;
}

/// Sends a signed delivery over HTTP.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait::async_trait]
pub trait WebhookSender: Send + Sync {
    /// POSTs the body with its `webhook-*` headers: the receiver's status,
    /// or why there was none (refused address, connection, timeout).
    async fn send(&self, request: &SignedRequest) -> Result<u16, SendFailed>;
}
