//! Delivering the outbox: claim due messages, send, record the outcome, back
//! off exponentially on failure.

use std::sync::Arc;

use chrono::Duration;

use crate::clock::Clock;
use crate::errors::StoreError;
use crate::mail::ports::{DeliveryError, MailTransport, OutboxRepository};

/// Retry policy for outgoing mail.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// Delay before the first retry; doubled after each failure.
    pub first_retry: Duration,
    /// Longest delay between attempts.
    pub max_retry: Duration,
    /// Attempts before a message is marked failed.
    pub max_attempts: u32,
    /// How long a claimed message stays leased to one worker.
    pub lease: Duration,
    /// Messages claimed per round.
    pub batch: u32,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            first_retry: Duration::seconds(30),
            max_retry: Duration::hours(1),
            max_attempts: 12,
            lease: Duration::minutes(5),
            batch: 50,
        }
    }
}

/// What one delivery round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Messages accepted by the transport.
    pub sent: u32,
    /// Messages that failed and will be retried.
    pub retrying: u32,
    /// Messages that failed for good.
    pub failed: u32,
}

/// Delivers queued mail.
pub struct OutboxDelivery {
    outbox: Arc<dyn OutboxRepository>,
    transport: Arc<dyn MailTransport>,
    clock: Arc<dyn Clock>,
    policy: DeliveryPolicy,
}

impl OutboxDelivery {
    /// A delivery service over these ports.
    pub fn new(
        outbox: Arc<dyn OutboxRepository>,
        transport: Arc<dyn MailTransport>,
        clock: Arc<dyn Clock>,
        policy: DeliveryPolicy,
    ) -> Self {
        Self { outbox, transport, clock, policy }
    }

    /// The delay before attempt number `attempts + 1`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1_i32.checked_shl(attempts.min(20)).unwrap_or(i32::MAX);
        (self.policy.first_retry * factor).min(self.policy.max_retry)
    }

    /// Delivers every message that is due now, one round.
    ///
    /// # Errors
    /// [`StoreError`] if the outbox cannot be read or updated; transport
    /// failures are recorded on the message, not returned.
    pub async fn deliver_due(&self) -> Result<DeliveryReport, StoreError> {
        let now = self.clock.now();
        let claimed =
            self.outbox.claim_due(now, now + self.policy.lease, self.policy.batch).await?;
        let mut report = DeliveryReport::default();
        for queued in claimed {
            match self.transport.send(&queued.mail).await {
                Ok(()) => {
                    self.outbox.mark_sent(queued.mail.id, self.clock.now()).await?;
                    report.sent += 1;
                }
                Err(error) => {
                    let attempts = queued.attempts + 1;
                    let give_up = matches!(error, DeliveryError::Permanent(_))
                        || attempts >= self.policy.max_attempts;
                    let retry_at =
                        (!give_up).then(|| self.clock.now() + self.backoff(queued.attempts));
                    self.outbox
                        .mark_attempt_failed(queued.mail.id, error.to_string(), retry_at)
                        .await?;
                    if give_up {
                        report.failed += 1;
                    } else {
                        report.retrying += 1;
                    }
                }
            }
        }
        Ok(report)
    }
}
