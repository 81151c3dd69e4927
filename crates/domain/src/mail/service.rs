//! Delivering the outbox: claim due messages, send, record the outcome, back
//! off exponentially on failure.

use std::sync::Arc;

use chrono::Duration;

use crate::clock::Clock;
use crate::errors::StoreError;
use crate::mail::ports::{DeliveryError, MailTransport, OutboxRepository};
use crate::mail::settings::{EmailSettings, SettingsSource};
use crate::settings::ports::SettingsRepository;

/// Retry policy for outgoing mail.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// The settings in force until an admin saves others.
    pub configured: EmailSettings,
    /// Delay before the first retry; doubled after each failure, then
    /// jittered between half and all of it.
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
            configured: EmailSettings::embedded_default(),
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
    settings: Arc<dyn SettingsRepository>,
    transport: Arc<dyn MailTransport>,
    clock: Arc<dyn Clock>,
    policy: DeliveryPolicy,
}

impl OutboxDelivery {
    /// A delivery service over these ports.
    pub fn new(
        outbox: Arc<dyn OutboxRepository>,
        settings: Arc<dyn SettingsRepository>,
        transport: Arc<dyn MailTransport>,
        clock: Arc<dyn Clock>,
        policy: DeliveryPolicy,
    ) -> Self {
        Self { outbox, settings, transport, clock, policy }
    }

    /// The ceiling of the delay before attempt number `attempts + 1`:
    /// `first_retry × 2^attempts`, at most `max_retry`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1_i32.checked_shl(attempts.min(20)).unwrap_or(i32::MAX);
        (self.policy.first_retry * factor).min(self.policy.max_retry)
    }

    /// The delay before the next attempt of message `id` after `attempts`
    /// failures: the back-off ceiling jittered into `[ceiling / 2, ceiling]`
    /// by a value derived from the message and attempt, so that messages
    /// that failed together (a server outage) do not all retry together.
    pub fn retry_delay(&self, id: uuid::Uuid, attempts: u32) -> Duration {
        let ceiling = self.backoff(attempts);
        let spread = jitter_fraction(id, attempts);
        let half = ceiling / 2;
        let extra_ms = (half.num_milliseconds() as f64 * spread) as i64;
        half + Duration::milliseconds(extra_ms)
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
        if claimed.is_empty() {
            return Ok(report);
        }
        // Read on every round that has mail, so a change saved through any
        // instance applies to the next message without a restart.
        let (settings, _) = effective_settings(&*self.settings, &self.policy.configured).await?;
        for queued in claimed {
            match self.transport.send(&settings, &queued.mail).await {
                Ok(_) => {
                    self.outbox.mark_sent(queued.mail.id, self.clock.now()).await?;
                    report.sent += 1;
                }
                Err(error) => {
                    let attempts = queued.attempts + 1;
                    let give_up = matches!(error, DeliveryError::Permanent(_))
                        || attempts >= self.policy.max_attempts;
                    let retry_at = (!give_up).then(|| {
                        self.clock.now() + self.retry_delay(queued.mail.id, queued.attempts)
                    });
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

/// A fraction in `[0, 1)` derived from a message id and attempt number
/// (SplitMix64 over the id's bits): spread without a random source, and
/// the same for the same attempt, which keeps tests exact.
pub(crate) fn jitter_fraction(id: uuid::Uuid, attempts: u32) -> f64 {
    let (high, low) = id.as_u64_pair();
    let mut z =
        high ^ low.rotate_left(17) ^ u64::from(attempts).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1_u64 << 53) as f64
}

/// The email settings in force: those an admin saved, else the configured ones.
///
/// # Errors
/// [`StoreError`] if the saved settings cannot be read.
pub async fn effective_settings(
    settings: &dyn SettingsRepository,
    configured: &EmailSettings,
) -> Result<(EmailSettings, SettingsSource), StoreError> {
    Ok(match settings.email_settings().await? {
        Some(saved) => (saved, SettingsSource::Saved),
        None => (configured.clone(), SettingsSource::Configuration),
    })
}
