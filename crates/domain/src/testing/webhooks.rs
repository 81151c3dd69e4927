//! The in-memory store's webhook endpoints.

use async_trait::async_trait;
use uuid::Uuid;

use super::InMemoryStore;
use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::webhooks::models::WebhookEndpoint;
use crate::webhooks::ports::WebhookRepository;
use crate::webhooks::signature::WebhookSecret;

#[async_trait]
impl WebhookRepository for InMemoryStore {
    async fn insert_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        secret: &WebhookSecret,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.webhooks.push((endpoint.clone(), secret.clone()));
        state.audit.push(audit);
        Ok(())
    }

    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, StoreError> {
        Ok(self.state().webhooks.iter().map(|(e, _)| e.clone()).collect())
    }

    async fn endpoint_secret(&self, id: Uuid) -> Result<Option<WebhookSecret>, StoreError> {
        Ok(self.state().webhooks.iter().find(|(e, _)| e.id == id).map(|(_, s)| s.clone()))
    }

    async fn update_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some((stored, _)) = state.webhooks.iter_mut().find(|(e, _)| e.id == endpoint.id) else {
            return Ok(false);
        };
        *stored = endpoint.clone();
        state.audit.push(audit);
        Ok(true)
    }

    async fn delete_endpoint(&self, id: Uuid, audit: AuditEvent) -> Result<bool, StoreError> {
        let mut state = self.state();
        let before = state.webhooks.len();
        state.webhooks.retain(|(e, _)| e.id != id);
        if state.webhooks.len() == before {
            return Ok(false);
        }
        state.audit.push(audit);
        Ok(true)
    }
}
