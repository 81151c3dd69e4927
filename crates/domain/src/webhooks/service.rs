//! Admins' use cases for webhook endpoints (Settings › Webhooks and the
//! API), and the worker that delivers their events.

use std::sync::Arc;

use chrono::Duration;
use uuid::Uuid;

use crate::access::Principal;
use crate::audit::models::{AuditAction, AuditEvent, Change, RequestContext};
use crate::errors::{StepUpError, StoreError};
use crate::webhooks::deliveries::{Delivery, DeliveryState, GIVE_UP_AFTER};
use crate::webhooks::events::test_body;
use crate::webhooks::models::{
    EndpointPolicy, EndpointRefused, EventType, WebhookEndpoint, check_endpoint,
};
use crate::webhooks::ports::WebhookRepository;
use crate::webhooks::signature::WebhookSecret;

/// The most endpoints an instance keeps.
pub const MAX_ENDPOINTS: usize = 20;

/// How long the previous secret still signs after a rotation, so that
/// receivers can switch without losing a delivery.
pub const ROTATION_OVERLAP: Duration = Duration::hours(24);

/// The ports the webhook use cases use, and no others.
#[derive(Clone)]
pub struct WebhookPorts {
    /// Endpoints and deliveries.
    pub webhooks: Arc<dyn WebhookRepository>,
    /// Second factors: changing where security events go needs a recent
    /// check.
    pub mfa: Arc<dyn crate::mfa::ports::MfaRepository>,
    /// Time.
    pub clock: Arc<dyn crate::clock::Clock>,
    /// Randomness (signing secrets).
    pub tokens: Arc<dyn crate::secrets::TokenGenerator>,
}

/// Why a webhook request failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Webhooks are for admins.
    #[error("webhooks are managed by admins")]
    Forbidden,
    /// The address is not allowed.
    #[error("{0}")]
    InvalidUrl(EndpointRefused),
    /// No event, or one that does not exist.
    #[error("choose at least one event of: {known}{unknown}")]
    InvalidEvents {
        /// The events there are.
        known: String,
        /// The names not known, if any.
        unknown: String,
    },
    /// The instance keeps the most endpoints it may.
    #[error("there are 20 webhook endpoints, the most there may be: delete one first")]
    TooMany,
    /// No such endpoint or delivery.
    #[error("no such webhook endpoint or delivery")]
    NotFound,
    /// Only a failed delivery is retried.
    #[error("only a failed delivery can be retried; this one is pending or delivered")]
    NotFailed,
    /// A later event about the same user reached the receiver.
    #[error(
        "a later event about this user was delivered since: sending this one again would undo it at the receiver"
    )]
    Superseded,
    /// The endpoint is paused or stopped.
    #[error("the endpoint is paused or stopped: resume it first")]
    Disabled,
    /// Changing where security events go needs a recent check.
    #[error(transparent)]
    StepUp(#[from] StepUpError),
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// A change to an endpoint: what is `Some` changes.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    /// A new address.
    pub url: Option<String>,
    /// New events (names).
    pub events: Option<Vec<String>>,
    /// Paused (`false`) or delivering (`true`).
    pub enabled: Option<bool>,
}

/// Settings › Webhooks and `/api/v1/webhooks`.
pub struct WebhookService {
    ports: WebhookPorts,
    policy: EndpointPolicy,
}

impl WebhookService {
    /// The use cases over these ports, accepting addresses by `policy`.
    #[must_use]
    pub fn new(ports: WebhookPorts, policy: EndpointPolicy) -> Self {
        Self { ports, policy }
    }

    /// Which addresses are accepted.
    pub fn policy(&self) -> EndpointPolicy {
        self.policy
    }

    /// Every endpoint, oldest first.
    ///
    /// # Errors
    /// [`WebhookError::Forbidden`] for anyone but an admin.
    pub async fn endpoints(
        &self,
        principal: &Principal,
    ) -> Result<Vec<WebhookEndpoint>, WebhookError> {
        principal.admin().map_err(|_| WebhookError::Forbidden)?;
        Ok(self.ports.webhooks.endpoints().await?)
    }

    /// One endpoint.
    ///
    /// # Errors
    /// [`WebhookError::NotFound`], [`WebhookError::Forbidden`].
    pub async fn endpoint(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<WebhookEndpoint, WebhookError> {
        self.endpoints(principal)
            .await?
            .into_iter()
            .find(|e| e.id == id)
            .ok_or(WebhookError::NotFound)
    }

    /// Adds an endpoint: its signing secret is returned this once. Needs a
    /// session with a recent second-factor check where the admin has a
    /// factor (sending security events elsewhere is what an intruder
    /// would do). Audited as `webhook.created` (never the secret).
    ///
    /// # Errors
    /// See [`WebhookError`].
    pub async fn create(
        &self,
        principal: &Principal,
        url: &str,
        events: &[String],
        context: &RequestContext,
    ) -> Result<(WebhookEndpoint, WebhookSecret), WebhookError> {
        let admin = principal.admin().map_err(|_| WebhookError::Forbidden)?;
        let url = check_endpoint(url, self.policy).map_err(WebhookError::InvalidUrl)?;
        let events = parse_events(events)?;
        let now = self.ports.clock.now();
        admin.require_recent_factor(self.ports.mfa.as_ref(), now).await?;
        if self.ports.webhooks.endpoints().await?.len() >= MAX_ENDPOINTS {
            return Err(WebhookError::TooMany);
        }
        let endpoint = WebhookEndpoint {
            id: crate::record_id(),
            url: url.to_string(),
            events,
            created_at: now,
            created_by: Some(admin.user().id),
            disabled: None,
        };
        let secret = self.new_secret();
        let audit = AuditEvent::new(now, admin.actor(), AuditAction::WebhookCreated, context)
            .change(Change::new("webhook", None, Some(&endpoint.id.to_string())))
            .change(Change::new("url", None, Some(&endpoint.url)))
            .change(Change::new("events", None, Some(&names(&endpoint.events))));
        self.ports.webhooks.insert_endpoint(&endpoint, &secret, audit).await?;
        Ok((endpoint, secret))
    }

    /// Changes an endpoint's address, events or state (paused or
    /// delivering; enabling one the receiver's 410 disabled starts it
    /// again). Needs a recent check, as creation. Audited as
    /// `webhook.updated` with what changed.
    ///
    /// # Errors
    /// See [`WebhookError`].
    pub async fn update(
        &self,
        principal: &Principal,
        id: Uuid,
        change: &EndpointChange,
        context: &RequestContext,
    ) -> Result<WebhookEndpoint, WebhookError> {
        let admin = principal.admin().map_err(|_| WebhookError::Forbidden)?;
        let url = change
            .url
            .as_deref()
            .map(|url| check_endpoint(url, self.policy).map_err(WebhookError::InvalidUrl))
            .transpose()?;
        let events = change.events.as_deref().map(parse_events).transpose()?;
        let now = self.ports.clock.now();
        admin.require_recent_factor(self.ports.mfa.as_ref(), now).await?;
        let before = self.endpoint(principal, id).await?;
        let mut after = before.clone();
        if let Some(url) = url {
            after.url = url.to_string();
        }
        if let Some(events) = events {
            after.events = events;
        }
        match change.enabled {
            Some(true) => after.disabled = None,
            Some(false) if before.disabled.is_none() => {
                after.disabled = Some((now, "paused by an admin".to_owned()));
            }
            _ => {}
        }
        let mut audit = AuditEvent::new(now, admin.actor(), AuditAction::WebhookUpdated, context)
            .change(Change::detail("webhook", &id.to_string()));
        if after.url != before.url {
            audit = audit.change(Change::new("url", Some(&before.url), Some(&after.url)));
        }
        if after.events != before.events {
            let (was, is) = (names(&before.events), names(&after.events));
            audit = audit.change(Change::new("events", Some(&was), Some(&is)));
        }
        if after.disabled.is_some() != before.disabled.is_some() {
            let state =
                |e: &WebhookEndpoint| if e.disabled.is_some() { "disabled" } else { "enabled" };
            audit = audit.change(Change::new("state", Some(state(&before)), Some(state(&after))));
        }
        if after == before {
            return Ok(before);
        }
        if !self.ports.webhooks.update_endpoint(&after, audit).await? {
            return Err(WebhookError::NotFound);
        }
        Ok(after)
    }

    /// Deletes an endpoint and its deliveries. Needs a recent check.
    /// Audited as `webhook.deleted`.
    ///
    /// # Errors
    /// See [`WebhookError`].
    pub async fn delete(
        &self,
        principal: &Principal,
        id: Uuid,
        context: &RequestContext,
    ) -> Result<(), WebhookError> {
        let admin = principal.admin().map_err(|_| WebhookError::Forbidden)?;
        let now = self.ports.clock.now();
        admin.require_recent_factor(self.ports.mfa.as_ref(), now).await?;
        let endpoint = self.endpoint(principal, id).await?;
        let audit = AuditEvent::new(now, admin.actor(), AuditAction::WebhookDeleted, context)
            .change(Change::new("webhook", Some(&id.to_string()), None))
            .change(Change::new("url", Some(&endpoint.url), None));
        if !self.ports.webhooks.delete_endpoint(id, audit).await? {
            return Err(WebhookError::NotFound);
        }
        Ok(())
    }

    /// A new signing secret, returned this once; the previous one still
    /// signs for [`ROTATION_OVERLAP`] (both signatures on every delivery).
    /// Needs a recent check. Audited as `webhook.updated`.
    ///
    /// # Errors
    /// See [`WebhookError`].
    pub async fn rotate_secret(
        &self,
        principal: &Principal,
        id: Uuid,
        context: &RequestContext,
    ) -> Result<WebhookSecret, WebhookError> {
        let admin = principal.admin().map_err(|_| WebhookError::Forbidden)?;
        let now = self.ports.clock.now();
        admin.require_recent_factor(self.ports.mfa.as_ref(), now).await?;
        let secret = self.new_secret();
        let until = now + ROTATION_OVERLAP;
        let audit = AuditEvent::new(now, admin.actor(), AuditAction::WebhookUpdated, context)
            .change(Change::detail("webhook", &id.to_string()))
            .change(Change::detail("secret", "rotated"))
            .change(Change::detail("previous_secret_until", &until.to_rfc3339()));
        if !self.ports.webhooks.rotate_secret(id, &secret, until, audit).await? {
            return Err(WebhookError::NotFound);
        }
        Ok(secret)
    }

    /// An endpoint's deliveries, newest first.
    ///
    /// # Errors
    /// See [`WebhookError`].
    pub async fn deliveries(
        &self,
        principal: &Principal,
        id: Uuid,
        state: Option<DeliveryState>,
        before: Option<(chrono::DateTime<chrono::Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Delivery>, WebhookError> {
        self.endpoint(principal, id).await?;
        Ok(self.ports.webhooks.deliveries(id, state, before, limit.clamp(1, 200)).await?)
    }

    /// Queues a failed delivery again, due now, with three more days.
    /// Refused when a later event about the same user was delivered to
    /// the endpoint since: sending this one now would undo it at the
    /// receiver (its user's current state is in that later event).
    /// Audited as `webhook.updated` (the delivery retried).
    ///
    /// # Errors
    /// [`WebhookError::NotFailed`] unless it failed,
    /// [`WebhookError::Superseded`]; see [`WebhookError`].
    pub async fn retry(
        &self,
        principal: &Principal,
        id: Uuid,
        delivery: Uuid,
        context: &RequestContext,
    ) -> Result<(), WebhookError> {
        let admin = principal.admin().map_err(|_| WebhookError::Forbidden)?;
        self.endpoint(principal, id).await?;
        let (found, superseded) =
            self.ports.webhooks.delivery(id, delivery).await?.ok_or(WebhookError::NotFound)?;
        if found.state != DeliveryState::Failed {
            return Err(WebhookError::NotFailed);
        }
        if superseded {
            return Err(WebhookError::Superseded);
        }
        let now = self.ports.clock.now();
        let audit = AuditEvent::new(now, admin.actor(), AuditAction::WebhookUpdated, context)
            .change(Change::detail("webhook", &id.to_string()))
            .change(Change::detail("delivery_retried", &delivery.to_string()));
        if self.ports.webhooks.retry_delivery(id, delivery, now, audit).await? {
            Ok(())
        } else {
            Err(WebhookError::NotFailed)
        }
    }

    /// Queues a `webhook.test` delivery to the endpoint, due now.
    ///
    /// # Errors
    /// [`WebhookError::Disabled`] for a paused or stopped endpoint (the
    /// test would wait there); see [`WebhookError`].
    pub async fn send_test(
        &self,
        principal: &Principal,
        id: Uuid,
    ) -> Result<Delivery, WebhookError> {
        if self.endpoint(principal, id).await?.disabled.is_some() {
            return Err(WebhookError::Disabled);
        }
        let now = self.ports.clock.now();
        let delivery = Delivery {
            id: crate::record_id(),
            endpoint_id: id,
            message_id: format!("msg_{}", crate::record_id().simple()),
            event_type: "webhook.test".to_owned(),
            user_id: None,
            created_at: now,
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_attempt_at: None,
            last_status: None,
            last_error: None,
            delivered_at: None,
            give_up_at: now + GIVE_UP_AFTER,
        };
        self.ports.webhooks.queue_delivery(&delivery, &test_body(now, id)).await?;
        Ok(delivery)
    }

    fn new_secret(&self) -> WebhookSecret {
        let random = self.ports.tokens.generate();
        let digest = <sha2::Sha256 as sha2::Digest>::digest(random.expose().as_bytes());
        WebhookSecret::from_random(digest.into())
    }
}

fn names(events: &[EventType]) -> String {
    events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(" ")
}

fn parse_events(names: &[String]) -> Result<Vec<EventType>, WebhookError> {
    let mut events = Vec::new();
    let mut unknown = Vec::new();
    for name in names {
        match EventType::parse(name.trim()) {
            Some(event) => events.push(event),
            None => unknown.push(name.chars().take(40).collect::<String>()),
        }
    }
    events.sort();
    events.dedup();
    if events.is_empty() || !unknown.is_empty() || names.len() > 50 {
        let known = EventType::ALL.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ");
        let unknown = if unknown.is_empty() {
            String::new()
        } else {
            format!(" (unknown: {})", unknown.join(", "))
        };
        return Err(WebhookError::InvalidEvents { known, unknown });
    }
    Ok(events)
}
