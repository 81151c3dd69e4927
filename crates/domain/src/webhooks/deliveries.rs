//! Deliveries: one per event and subscribed endpoint, attempted until the
//! receiver answers 2xx, for up to three days.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::identity::UserId;

/// How long delivered and failed deliveries are kept (the panel's history).
pub const KEPT_FOR: Duration = Duration::days(30);

/// How long a delivery is retried before it is marked failed.
pub const GIVE_UP_AFTER: Duration = Duration::days(3);

/// The delay before each retry (Standard Webhooks' recommended schedule,
/// stretched to three days), each jittered by ±20 %: 5 s, 5 min, 30 min,
/// 2 h, 5 h, then every 10 h.
pub const RETRY_SCHEDULE: [Duration; 6] = [
    Duration::seconds(5),
    Duration::minutes(5),
    Duration::minutes(30),
    Duration::hours(2),
    Duration::hours(5),
    Duration::hours(10),
];

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its first attempt or a retry.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: three days without success, the receiver answered 410
    /// Gone, or the endpoint's address is no longer allowed.
    Failed,
}

impl DeliveryState {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Parses a stable name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed].into_iter().find(|s| s.as_str() == name)
    }
}

/// One event on its way to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Identifier of this delivery.
    pub id: Uuid,
    /// Where it goes.
    pub endpoint_id: Uuid,
    /// The `webhook-id` header: the same on every attempt.
    pub message_id: String,
    /// The event's name (`user.deactivated`, or `webhook.test`).
    pub event_type: String,
    /// Whom it is about.
    pub user_id: Option<UserId>,
    /// When the event happened.
    pub created_at: DateTime<Utc>,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (pending ones).
    pub next_attempt_at: DateTime<Utc>,
    /// When the last attempt was made.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the receiver accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
    /// When it is given up unless delivered: three days after the event,
    /// or after an admin's Retry.
    pub give_up_at: DateTime<Utc>,
}

/// A delivery claimed for an attempt, with what is sent.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The delivery.
    pub delivery: Delivery,
    /// The endpoint's address now.
    pub url: String,
    /// The JSON body.
    pub body: String,
    /// The claim's lease: the outcome is recorded only while it holds.
    pub lease: String,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// 2xx.
    Delivered {
        /// When.
        at: DateTime<Utc>,
        /// The status.
        status: u16,
    },
    /// Failed; tried again at `retry_at`.
    Retry {
        /// When the attempt was made.
        at: DateTime<Utc>,
        /// When to try again.
        retry_at: DateTime<Utc>,
        /// The status, if the receiver answered.
        status: Option<u16>,
        /// Why.
        error: String,
    },
    /// Failed for good.
    Failed {
        /// When the attempt was made.
        at: DateTime<Utc>,
        /// The status, if the receiver answered.
        status: Option<u16>,
        /// Why.
        error: String,
    },
}

/// A signed request to send.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    /// The endpoint's address.
    pub url: String,
    /// `webhook-id`.
    pub message_id: String,
    /// `webhook-timestamp` (seconds since the epoch).
    pub timestamp: i64,
    /// `webhook-signature`.
    pub signature: String,
    /// The JSON body.
    pub body: String,
}

/// Why a request did not get an answer (no status).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SendFailed(pub String);

/// The delay before retry number `failures` (1 after the first failed
/// attempt) of delivery `id`: [`RETRY_SCHEDULE`] jittered by ±20 % with a
/// fraction derived from the delivery and attempt, so deliveries that
/// failed together (a receiver's outage) spread out.
pub fn retry_delay(id: Uuid, failures: u32) -> Duration {
    let index = usize::try_from(failures.saturating_sub(1))
        .unwrap_or(usize::MAX)
        .min(RETRY_SCHEDULE.len() - 1);
    let base = RETRY_SCHEDULE[index];
    let fraction = crate::mail::service::jitter_fraction(id, failures);
    let ms = base.num_milliseconds() as f64 * (0.8 + 0.4 * fraction);
    Duration::milliseconds(ms as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_spans_three_days_with_jitter() {
        let id = Uuid::from_u128(7);
        let first = retry_delay(id, 1);
        assert!(first >= Duration::seconds(4) && first <= Duration::seconds(6), "{first}");
        let late = retry_delay(id, 40);
        assert!(late >= Duration::hours(8) && late <= Duration::hours(12), "{late}");
        // Attempts made before a delivery is given up, at the longest
        // delays: at least the schedule's length.
        let (mut elapsed, mut failures) = (Duration::zero(), 0);
        while elapsed <= GIVE_UP_AFTER {
            failures += 1;
            elapsed += retry_delay(id, failures);
        }
        assert!(failures >= 10, "{failures} attempts in three days");
        assert_ne!(retry_delay(Uuid::from_u128(8), 3), retry_delay(id, 3), "jittered");
    }
}
