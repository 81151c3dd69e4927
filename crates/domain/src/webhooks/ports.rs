//! Where webhook endpoints are kept.

use uuid::Uuid;

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::webhooks::models::WebhookEndpoint;
use crate::webhooks::signature::WebhookSecret;

/// Webhook endpoints, with their signing secrets sealed at rest.
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

    /// Writes an endpoint's address, events and state, with its audit
    /// event: whether it exists.
    async fn update_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        audit: AuditEvent,
    ) -> Result<bool, StoreError>;

    /// Deletes an endpoint, with its audit event: whether it existed (of
    /// concurrent calls, one).
    async fn delete_endpoint(&self, id: Uuid, audit: AuditEvent) -> Result<bool, StoreError>;
}
