//! Admins' use cases for webhook endpoints (Settings › Webhooks and the
//! API), and the worker that delivers their events.

use std::collections::HashMap;

use futures_util::StreamExt as _;
use std::sync::Arc;

use chrono::Duration;
use uuid::Uuid;

use crate::access::Principal;
use crate::audit::models::{AuditAction, AuditEvent, Change, RequestContext};
use crate::errors::{StepUpError, StoreError};
use crate::webhooks::deliveries::{
    AttemptOutcome, Delivery, DeliveryState, DueDelivery, GIVE_UP_AFTER, SignedRequest, retry_delay,
};
use crate::webhooks::events::test_body;
use crate::webhooks::models::{
    EndpointPolicy, EndpointRefused, EventType, WebhookEndpoint, check_endpoint,
};
use crate::webhooks::ports::{WebhookRepository, WebhookSender};
use crate::webhooks::signature::{WebhookSecret, signature_header};

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

/// How the worker delivers.
#[derive(Debug, Clone, Copy)]
pub struct WebhookDeliveryPolicy {
    /// Which addresses may receive (checked again before each attempt:
    /// the setting may have changed since the endpoint was added).
    pub endpoints: EndpointPolicy,
    /// How long a claimed delivery stays leased to one worker.
    pub lease: Duration,
    /// Deliveries claimed per round.
    pub batch: u32,
    /// Attempts in flight at once.
    pub concurrency: usize,
}

impl Default for WebhookDeliveryPolicy {
    /// 100 per round, 20 at once: with the sender's 10-second bound a
    /// round takes at most 50 s, well within the 5-minute lease.
    fn default() -> Self {
        Self {
            endpoints: EndpointPolicy::default(),
            lease: Duration::minutes(5),
            batch: 100,
            concurrency: 20,
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookRoundReport {
    /// Accepted by their receivers.
    pub delivered: u32,
    /// Failed, to be retried.
    pub retrying: u32,
    /// Failed for good.
    pub failed: u32,
}

impl WebhookRoundReport {
    /// Deliveries attempted.
    pub fn attempted(&self) -> u32 {
        self.delivered + self.retrying + self.failed
    }
}

/// Delivers due webhook deliveries (the worker's round).
pub struct WebhookDelivery {
    webhooks: Arc<dyn WebhookRepository>,
    sender: Arc<dyn WebhookSender>,
    clock: Arc<dyn crate::clock::Clock>,
    policy: WebhookDeliveryPolicy,
}

impl WebhookDelivery {
    /// A worker over these ports.
    pub fn new(
        webhooks: Arc<dyn WebhookRepository>,
        sender: Arc<dyn WebhookSender>,
        clock: Arc<dyn crate::clock::Clock>,
        policy: WebhookDeliveryPolicy,
    ) -> Self {
        Self { webhooks, sender, clock, policy }
    }

    /// Deliveries claimed per round.
    pub fn batch(&self) -> u32 {
        self.policy.batch
    }

    /// Claims the due deliveries and attempts each once: signed with the
    /// endpoint's secrets (both during a rotation), retried on failure
    /// by [`retry_delay`] until [`GIVE_UP_AFTER`]; a 410 answer disables
    /// the endpoint.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails; a receiver's failure is recorded
    /// on its delivery.
    pub async fn deliver_due(&self) -> Result<WebhookRoundReport, StoreError> {
        let now = self.clock.now();
        let claimed =
            self.webhooks.claim_due(now, now + self.policy.lease, self.policy.batch).await?;
        let mut report = WebhookRoundReport::default();
        // An endpoint whose secret cannot be read (a corrupt row, another
        // operator key) fails its own deliveries, never the round.
        let mut secrets: HashMap<Uuid, Result<Vec<WebhookSecret>, String>> = HashMap::new();
        for due in &claimed {
            let endpoint = due.delivery.endpoint_id;
            if let std::collections::hash_map::Entry::Vacant(slot) = secrets.entry(endpoint) {
                let read = self.webhooks.signing_secrets(endpoint, now).await;
                slot.insert(read.map_err(|e| format!("the endpoint's secret cannot be read: {e}")));
            }
        }
        // Several at once, so that one slow receiver does not hold up the
        // others (an attempt takes at most the sender's timeout).
        let attempts: Vec<_> = claimed
            .into_iter()
            .map(|due| {
                let signing = secrets.get(&due.delivery.endpoint_id).cloned();
                async move {
                    let outcome = match signing {
                        Some(Ok(signing)) => self.attempt(&due, &signing).await,
                        Some(Err(error)) => self.unreadable(&due, error),
                        None => self.unreadable(&due, "no secret".to_owned()),
                    };
                    (due, outcome)
                }
            })
            .collect();
        let mut attempts =
            futures_util::stream::iter(attempts).buffer_unordered(self.policy.concurrency.max(1));
        // The outcomes are written together at the end of the round (one
        // commit, not one per delivery); a 410 stops its endpoint at once.
        let mut failure = None;
        let mut outcomes = Vec::new();
        while let Some((due, outcome)) = attempts.next().await {
            match &outcome {
                AttemptOutcome::Delivered { .. } => report.delivered += 1,
                AttemptOutcome::Retry { .. } => report.retrying += 1,
                AttemptOutcome::Failed { status: Some(410), at, .. } => {
                    report.failed += 1;
                    let reason = "the receiver answered 410 Gone";
                    let endpoint = due.delivery.endpoint_id;
                    let gone = self.webhooks.disable_endpoint(endpoint, &due.url, *at, reason);
                    if let Err(error) = gone.await {
                        failure.get_or_insert(error);
                    }
                }
                AttemptOutcome::Failed { .. } => report.failed += 1,
            }
            outcomes.push((due.delivery.id, due.lease, outcome));
        }
        if let Err(error) = self.webhooks.record_attempts(outcomes).await {
            failure.get_or_insert(error);
        }
        if let Some(error) = failure {
            return Err(error);
        }
        Ok(report)
    }

    /// A retry (or, past three days, a failure) for a delivery that could
    /// not be signed.
    fn unreadable(&self, due: &DueDelivery, error: String) -> AttemptOutcome {
        let at = self.clock.now();
        let retry_at = at + retry_delay(due.delivery.id, due.delivery.attempts + 1);
        if retry_at >= due.delivery.give_up_at {
            return AttemptOutcome::Failed { at, status: None, error };
        }
        AttemptOutcome::Retry { at, retry_at, status: None, error }
    }

    async fn attempt(&self, due: &DueDelivery, secrets: &[WebhookSecret]) -> AttemptOutcome {
        let at = self.clock.now();
        let delivery = &due.delivery;
        let fail = |status, error: String| AttemptOutcome::Failed { at, status, error };
        if at >= delivery.give_up_at {
            return fail(None, "not delivered within three days".to_owned());
        }
        if secrets.is_empty() {
            return fail(None, "the endpoint was deleted".to_owned());
        }
        if let Err(refused) = check_endpoint(&due.url, self.policy.endpoints) {
            return fail(None, format!("the address is no longer allowed: {refused}"));
        }
        let timestamp = at.timestamp();
        let request = SignedRequest {
            url: due.url.clone(),
            message_id: delivery.message_id.clone(),
            timestamp,
            signature: signature_header(
                secrets,
                &delivery.message_id,
                timestamp,
                due.body.as_bytes(),
            ),
            body: due.body.clone(),
        };
        let (status, error) = match self.sender.send(&request).await {
            Ok(status) if (200..300).contains(&status) => {
                return AttemptOutcome::Delivered { at, status };
            }
            Ok(410) => {
                return fail(Some(410), "the receiver answered 410 Gone: endpoint disabled".into());
            }
            Ok(status) => (Some(status), format!("the receiver answered {status}")),
            Err(failed) => (None, failed.0),
        };
        let retry_at = at + retry_delay(delivery.id, delivery.attempts + 1);
        if retry_at >= delivery.give_up_at {
            return fail(status, format!("{error}; not delivered within three days"));
        }
        AttemptOutcome::Retry { at, retry_at, status, error }
    }
}
