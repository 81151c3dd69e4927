//! The analytics use cases: service tokens, ingestion, dashboards, a
//! user's activity, retention.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};

use crate::access::{Admin, ServiceCaller};
use crate::analytics::errors::{AnalyticsError, IngestError};
use crate::analytics::models::{
    ActivePoint, ActivitySummary, Dashboard, DayRange, DayUsage, EventRejection, IngestReport,
    MAX_TOKENS, Period, RejectedEvent, TopUsers, Usage, UsageEvent, UsageEventInput, valid_id,
    valid_name,
};
use crate::errors::StoreError;
use crate::users::models::UserId;

/// The ports AnalyticsService uses, and no others.
#[derive(Clone)]
pub struct AnalyticsPorts {
    /// Usage events and their aggregates; a sign-in marks its user active.
    pub usage: std::sync::Arc<dyn crate::analytics::ports::UsageRepository>,
    /// User storage.
    pub users: std::sync::Arc<dyn crate::users::ports::UserRepository>,
    /// Time.
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
}

/// Usage analytics: ingesting events from other services, dashboards, one
/// user's activity, retention. Rules (docs/RULES.md): 12 metadata, never
/// content; 15 every input bounded (batches, dates, ranges).
pub struct AnalyticsService {
    ports: AnalyticsPorts,
    policy: std::sync::Arc<crate::policy::Policy>,
}

impl AnalyticsService {
    /// The use cases over these ports and rules.
    #[must_use]
    pub fn new(ports: AnalyticsPorts, policy: std::sync::Arc<crate::policy::Policy>) -> Self {
        Self { ports, policy }
    }
}

impl AnalyticsService {
    /// Records a batch of usage events. Each event is checked on its own:
    /// the valid ones are recorded (a repeated event id is ignored), the
    /// others are reported with their reason.
    ///
    /// # Errors
    /// [`IngestError::TooLarge`] past the batch limit (nothing recorded).
    pub async fn ingest_usage(
        &self,
        _caller: &ServiceCaller,
        inputs: Vec<UsageEventInput>,
    ) -> Result<IngestReport, IngestError> {
        let policy = &self.policy.analytics;
        if inputs.len() > policy.max_batch {
            return Err(IngestError::TooLarge { limit: policy.max_batch });
        }
        let now = self.ports.clock.now();
        let oldest = now - policy.raw_retention;
        let newest = now + policy.future_skew;
        let mut report = IngestReport { received: inputs.len(), ..IngestReport::default() };
        let mut seen = HashSet::new();
        let mut checked = Vec::new();
        let mut index_of = BTreeMap::new();
        for (index, input) in inputs.into_iter().enumerate() {
            match check_event(&input, oldest, newest) {
                Err(reason) => {
                    report.rejected.push(RejectedEvent { index, event_id: input.event_id, reason });
                }
                Ok(event) => {
                    if seen.insert(event.id.clone()) {
                        index_of.insert(event.id.clone(), index);
                        checked.push(event);
                    } else {
                        report.duplicates += 1;
                    }
                }
            }
        }
        let valid = checked.len();
        let recorded = if checked.is_empty() {
            Default::default()
        } else {
            self.ports.usage.record_usage(checked).await?
        };
        report.duplicates += recorded.duplicates.len();
        for event_id in recorded.unknown_users {
            let index = index_of.get(&event_id).copied().unwrap_or_default();
            report.rejected.push(RejectedEvent {
                index,
                event_id,
                reason: EventRejection::UnknownUser,
            });
        }
        report.rejected.sort_by_key(|r| r.index);
        report.accepted = valid
            - recorded.duplicates.len()
            - report.rejected.iter().filter(|r| r.reason == EventRejection::UnknownUser).count();
        Ok(report)
    }

    /// The dashboard: active users, usage by day, model and user, over
    /// `range`.
    ///
    /// # Errors
    /// [`AnalyticsError::InvalidRange`].
    pub async fn dashboard(
        &self,
        _admin: &Admin,
        range: DayRange,
    ) -> Result<Dashboard, AnalyticsError> {
        self.check_range(range)?;
        let usage = &self.ports.usage;
        let limit = self.policy.analytics.top_users;
        let daily_active = self.active_series(Period::Day, range).await?;
        let weekly_active = self.active_series(Period::Week, range).await?;
        let monthly_active = self.active_series(Period::Month, range).await?;
        let stored = usage.usage_by_day(range).await?;
        let by_day: Vec<DayUsage> = range
            .each_day()
            .map(|day| DayUsage {
                day,
                usage: stored
                    .iter()
                    .find(|d| d.day == day)
                    .map_or_else(Usage::default, |d| d.usage),
            })
            .collect();
        let total = by_day.iter().fold(Usage::default(), |sum, d| sum.plus(d.usage));
        let mut by_model = usage.usage_by_model(range).await?;
        by_model.sort_by(|a, b| {
            b.usage.tokens().cmp(&a.usage.tokens()).then_with(|| a.model.cmp(&b.model))
        });
        let TopUsers { by_tokens: mut top_users, by_conversations: mut top_conversations } =
            usage.top_users(range, limit).await?;
        for entry in top_users.iter_mut().chain(top_conversations.iter_mut()) {
            entry.user = self.ports.users.get(entry.user_id).await?;
        }
        Ok(Dashboard {
            range,
            daily_active,
            weekly_active,
            monthly_active,
            by_day,
            by_model,
            top_users,
            top_conversations,
            total,
        })
    }

    /// Active users of every `period` overlapping `range` (zero when none).
    ///
    /// # Errors
    /// [`AnalyticsError::InvalidRange`].
    pub async fn active_users(
        &self,
        _admin: &Admin,
        period: Period,
        range: DayRange,
    ) -> Result<Vec<ActivePoint>, AnalyticsError> {
        self.check_range(range)?;
        self.active_series(period, range).await
    }

    /// A user's recent activity: the last 30 days and their last event.
    ///
    /// # Errors
    /// [`StoreError`] on failure.
    pub async fn user_activity(
        &self,
        _admin: &Admin,
        user: UserId,
    ) -> Result<ActivitySummary, StoreError> {
        let range = DayRange::ending(self.ports.clock.now().date_naive(), 30);
        let (last_activity_at, mut models) = self.ports.usage.user_usage(user, range).await?;
        models.sort_by(|a, b| {
            b.usage.tokens().cmp(&a.usage.tokens()).then_with(|| a.model.cmp(&b.model))
        });
        let usage = models.iter().fold(Usage::default(), |sum, m| sum.plus(m.usage));
        Ok(ActivitySummary { range, last_activity_at, usage, models })
    }

    /// Deletes raw usage events older than the retention period (daily
    /// aggregates stay). Returns how many were deleted.
    ///
    /// # Errors
    /// [`StoreError`] on failure.
    pub async fn purge_expired_usage(&self) -> Result<u64, StoreError> {
        let before = self.ports.clock.now() - self.policy.analytics.raw_retention;
        self.ports.usage.purge_usage_before(before).await
    }

    /// The range of the last `days` days (today included), clamped to the
    /// longest allowed.
    pub fn last_days(&self, days: i64) -> DayRange {
        let days = days.clamp(1, self.policy.analytics.max_range_days);
        DayRange::ending(self.ports.clock.now().date_naive(), days)
    }

    fn check_range(&self, range: DayRange) -> Result<(), AnalyticsError> {
        let max_days = self.policy.analytics.max_range_days;
        let in_calendar =
            crate::dates::day_in_range(range.from) && crate::dates::day_in_range(range.to);
        if !in_calendar || range.from > range.to || range.days() > max_days {
            return Err(AnalyticsError::InvalidRange { max_days });
        }
        Ok(())
    }

    async fn active_series(
        &self,
        period: Period,
        range: DayRange,
    ) -> Result<Vec<ActivePoint>, AnalyticsError> {
        let stored = self.ports.usage.active_users(period, range).await?;
        Ok(period
            .starts_in(range)
            .into_iter()
            .map(|start| ActivePoint {
                start,
                users: stored.iter().find(|p| p.start == start).map_or(0, |p| p.users),
            })
            .collect())
    }
}

fn check_event(
    input: &UsageEventInput,
    oldest: DateTime<Utc>,
    newest: DateTime<Utc>,
) -> Result<UsageEvent, EventRejection> {
    if !valid_id(&input.event_id) {
        return Err(EventRejection::InvalidEventId);
    }
    let user_id: UserId = input.user_id.parse().map_err(|_| EventRejection::InvalidUserId)?;
    if !valid_id(&input.conversation_id) {
        return Err(EventRejection::InvalidConversationId);
    }
    if !valid_name(&input.model) {
        return Err(EventRejection::InvalidModel);
    }
    if !valid_name(&input.provider) {
        return Err(EventRejection::InvalidProvider);
    }
    let count = |n: i64| {
        (0..=MAX_TOKENS)
            .contains(&n)
            .then_some(n.unsigned_abs())
            .ok_or(EventRejection::InvalidTokenCount)
    };
    let input_tokens = count(input.input_tokens)?;
    let output_tokens = count(input.output_tokens)?;
    let occurred_at = crate::dates::parse_instant(&input.occurred_at, "occurred_at")
        .map_err(|_| EventRejection::InvalidTime)?;
    if occurred_at < oldest {
        return Err(EventRejection::TooOld);
    }
    if occurred_at > newest {
        return Err(EventRejection::InTheFuture);
    }
    Ok(UsageEvent {
        id: input.event_id.clone(),
        user_id,
        conversation_id: input.conversation_id.clone(),
        model: input.model.clone(),
        provider: input.provider.clone(),
        input_tokens,
        output_tokens,
        occurred_at,
    })
}
