//! The worker's round: claim the due deliveries, sign them, send them
//! several at a time, record the outcomes, retry with jitter for three
//! days, stop an endpoint at 410.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Duration;
use futures_util::StreamExt as _;
use uuid::Uuid;

use crate::errors::StoreError;
use crate::webhooks::deliveries::{AttemptOutcome, DueDelivery, SignedRequest, retry_delay};
use crate::webhooks::models::{EndpointPolicy, check_endpoint};
use crate::webhooks::ports::{WebhookRepository, WebhookSender};
use crate::webhooks::signature::{WebhookSecret, signature_header};

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
