//! The in-memory store's webhook endpoints and deliveries. Audit events
//! become deliveries when the deliveries are next read (the SQL store
//! writes them in the change's transaction; here every change is atomic
//! under one lock, and endpoints seldom change between the two).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{InMemoryStore, MemoryState};
use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::webhooks::deliveries::{
    AttemptOutcome, Delivery, DeliveryState, DueDelivery, GIVE_UP_AFTER,
};
use crate::webhooks::events::event_of;
use crate::webhooks::models::WebhookEndpoint;
use crate::webhooks::ports::WebhookRepository;
use crate::webhooks::signature::WebhookSecret;

/// A delivery as the in-memory store keeps it.
#[derive(Debug, Clone)]
pub struct StoredDelivery {
    /// The delivery.
    pub delivery: Delivery,
    /// Its body.
    pub body: String,
    /// At most one per endpoint and key.
    pub dedupe_key: Option<String>,
    /// Leased to a worker until.
    pub leased_until: Option<DateTime<Utc>>,
    /// The lease's token.
    pub lease: Option<String>,
}

pub(crate) fn fan_out(state: &mut MemoryState) {
    let seen = state.webhook_audit_seen.min(state.audit.len());
    let fresh: Vec<AuditEvent> = state.audit[seen..].to_vec();
    state.webhook_audit_seen = state.audit.len();
    for audit in fresh {
        let Some(event) = event_of(&audit) else { continue };
        let targets: Vec<Uuid> = state
            .webhooks
            .iter()
            .filter(|(e, _)| e.disabled.is_none() && e.events.contains(&event.event_type))
            .map(|(e, _)| e.id)
            .collect();
        for endpoint_id in targets {
            let duplicate = event.dedupe_key.is_some()
                && state.webhook_deliveries.iter().any(|d| {
                    d.delivery.endpoint_id == endpoint_id && d.dedupe_key == event.dedupe_key
                });
            if duplicate {
                continue;
            }
            state.webhook_deliveries.push(StoredDelivery {
                delivery: Delivery {
                    id: crate::record_id(),
                    endpoint_id,
                    message_id: event.message_id.clone(),
                    event_type: event.event_type.as_str().to_owned(),
                    user_id: event.user_id,
                    created_at: audit.at,
                    state: DeliveryState::Pending,
                    attempts: 0,
                    next_attempt_at: audit.at,
                    last_attempt_at: None,
                    last_status: None,
                    last_error: None,
                    delivered_at: None,
                    give_up_at: audit.at + GIVE_UP_AFTER,
                },
                body: event.body.clone(),
                dedupe_key: event.dedupe_key.clone(),
                leased_until: None,
                lease: None,
            });
        }
    }
}

#[async_trait]
impl WebhookRepository for InMemoryStore {
    async fn insert_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        secret: &WebhookSecret,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        fan_out(&mut state);
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

    async fn signing_secrets(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<WebhookSecret>, StoreError> {
        let state = self.state();
        let mut secrets: Vec<WebhookSecret> =
            state.webhooks.iter().filter(|(e, _)| e.id == id).map(|(_, s)| s.clone()).collect();
        if let Some((previous, until)) = state.webhook_previous.get(&id)
            && !secrets.is_empty()
            && now < *until
        {
            secrets.push(previous.clone());
        }
        Ok(secrets)
    }

    async fn rotate_secret(
        &self,
        id: Uuid,
        secret: &WebhookSecret,
        previous_until: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        fan_out(&mut state);
        let Some((_, stored)) = state.webhooks.iter_mut().find(|(e, _)| e.id == id) else {
            return Ok(false);
        };
        let previous = std::mem::replace(stored, secret.clone());
        state.webhook_previous.insert(id, (previous, previous_until));
        state.audit.push(audit);
        Ok(true)
    }

    async fn update_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        fan_out(&mut state);
        let Some((stored, _)) = state.webhooks.iter_mut().find(|(e, _)| e.id == endpoint.id) else {
            return Ok(false);
        };
        *stored = endpoint.clone();
        state.audit.push(audit);
        Ok(true)
    }

    async fn disable_endpoint(
        &self,
        id: Uuid,
        url: &str,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let found = state
            .webhooks
            .iter_mut()
            .find(|(e, _)| e.id == id && e.url == url && e.disabled.is_none());
        let Some((stored, _)) = found else { return Ok(false) };
        stored.disabled = Some((at, reason.to_owned()));
        Ok(true)
    }

    async fn delivery(
        &self,
        endpoint: Uuid,
        id: Uuid,
    ) -> Result<Option<(Delivery, bool)>, StoreError> {
        let mut state = self.state();
        fan_out(&mut state);
        let all = &state.webhook_deliveries;
        let Some(at) =
            all.iter().position(|d| d.delivery.id == id && d.delivery.endpoint_id == endpoint)
        else {
            return Ok(None);
        };
        let found = all[at].delivery.clone();
        let superseded = found.user_id.is_some()
            && all[at + 1..].iter().any(|d| {
                d.delivery.endpoint_id == endpoint
                    && d.delivery.user_id == found.user_id
                    && d.delivery.state == DeliveryState::Delivered
            });
        Ok(Some((found, superseded)))
    }

    async fn delete_endpoint(&self, id: Uuid, audit: AuditEvent) -> Result<bool, StoreError> {
        let mut state = self.state();
        fan_out(&mut state);
        let before = state.webhooks.len();
        state.webhooks.retain(|(e, _)| e.id != id);
        if state.webhooks.len() == before {
            return Ok(false);
        }
        state.webhook_deliveries.retain(|d| d.delivery.endpoint_id != id);
        state.webhook_previous.remove(&id);
        state.audit.push(audit);
        Ok(true)
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let mut state = self.state();
        fan_out(&mut state);
        let state = &mut *state;
        let mut claimed = Vec::new();
        let lease = crate::record_id().to_string();
        let mut heads: std::collections::HashSet<(Uuid, crate::identity::UserId)> =
            std::collections::HashSet::new();
        // Deliveries about a user first (a flood of anonymous events does
        // not hold back a deactivation), each kind oldest first.
        let mut order: Vec<usize> = (0..state.webhook_deliveries.len()).collect();
        order.sort_by_key(|&i| state.webhook_deliveries[i].delivery.user_id.is_none());
        for i in order {
            let stored = &mut state.webhook_deliveries[i];
            let d = &stored.delivery;
            if d.state != DeliveryState::Pending {
                continue;
            }
            // The oldest pending delivery per endpoint and user goes first.
            if let Some(user) = d.user_id
                && !heads.insert((d.endpoint_id, user))
            {
                continue;
            }
            let Some((endpoint, _)) = state.webhooks.iter().find(|(e, _)| e.id == d.endpoint_id)
            else {
                continue;
            };
            let free = stored.leased_until.is_none_or(|until| until <= now);
            if endpoint.disabled.is_some() || d.next_attempt_at > now || !free {
                continue;
            }
            if claimed.len() >= usize::try_from(limit).unwrap_or(usize::MAX) {
                break;
            }
            let due = DueDelivery {
                delivery: d.clone(),
                url: endpoint.url.clone(),
                body: stored.body.clone(),
                lease: lease.clone(),
            };
            stored.leased_until = Some(lease_until);
            stored.lease = Some(lease.clone());
            claimed.push(due);
        }
        Ok(claimed)
    }

    async fn record_attempt(
        &self,
        id: Uuid,
        lease: &str,
        outcome: AttemptOutcome,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        let found = state
            .webhook_deliveries
            .iter_mut()
            .find(|d| d.delivery.id == id && d.lease.as_deref() == Some(lease));
        let Some(stored) = found else { return Ok(()) };
        stored.leased_until = None;
        stored.lease = None;
        let d = &mut stored.delivery;
        d.attempts += 1;
        match outcome {
            AttemptOutcome::Delivered { at, status } => {
                d.state = DeliveryState::Delivered;
                d.last_attempt_at = Some(at);
                d.last_status = Some(status);
                d.last_error = None;
                d.delivered_at = Some(at);
            }
            AttemptOutcome::Retry { at, retry_at, status, error } => {
                d.last_attempt_at = Some(at);
                d.next_attempt_at = retry_at;
                d.last_status = status;
                d.last_error = Some(error);
            }
            AttemptOutcome::Failed { at, status, error } => {
                d.state = DeliveryState::Failed;
                d.last_attempt_at = Some(at);
                d.last_status = status;
                d.last_error = Some(error);
            }
        }
        Ok(())
    }

    async fn deliveries(
        &self,
        endpoint: Uuid,
        state: Option<DeliveryState>,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut guard = self.state();
        fan_out(&mut guard);
        let mut found: Vec<Delivery> = guard
            .webhook_deliveries
            .iter()
            .map(|d| d.delivery.clone())
            .filter(|d| d.endpoint_id == endpoint)
            .filter(|d| state.is_none_or(|s| d.state == s))
            .filter(|d| before.is_none_or(|b| (d.created_at, d.id) < b))
            .collect();
        found.sort_by_key(|d| std::cmp::Reverse((d.created_at, d.id)));
        found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(found)
    }

    async fn retry_delivery(
        &self,
        endpoint: Uuid,
        id: Uuid,
        at: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        fan_out(&mut state);
        let Some(stored) = state.webhook_deliveries.iter_mut().find(|d| {
            d.delivery.id == id
                && d.delivery.endpoint_id == endpoint
                && d.delivery.state == DeliveryState::Failed
        }) else {
            return Ok(false);
        };
        let d = &mut stored.delivery;
        d.state = DeliveryState::Pending;
        d.attempts = 0;
        d.next_attempt_at = at;
        d.give_up_at = at + GIVE_UP_AFTER;
        state.audit.push(audit);
        Ok(true)
    }

    async fn forget_old_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut state = self.state();
        let count = state.webhook_deliveries.len();
        state.webhook_deliveries.retain(|d| {
            d.delivery.state == DeliveryState::Pending || d.delivery.created_at >= before
        });
        Ok(u64::try_from(count - state.webhook_deliveries.len()).unwrap_or(u64::MAX))
    }

    async fn queue_delivery(&self, delivery: &Delivery, body: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        fan_out(&mut state);
        state.webhook_deliveries.push(StoredDelivery {
            delivery: delivery.clone(),
            body: body.to_owned(),
            dedupe_key: None,
            leased_until: None,
            lease: None,
        });
        Ok(())
    }
}
