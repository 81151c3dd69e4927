//! The analytics use cases: service tokens, ingestion, dashboards, a
//! user's activity, retention.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::analytics::errors::{AnalyticsError, IngestError, ServiceAuthError, ServiceTokenError};
use crate::analytics::models::{
    ActivePoint, ActivitySummary, Dashboard, DayRange, DayUsage, EventRejection, IngestReport,
    MAX_TOKENS, Period, RejectedEvent, ServiceToken, TopUsers, Usage, UsageEvent, UsageEventInput,
    valid_id, valid_name,
};
use crate::audit::models::{AuditAction, AuditEvent, Change, RequestContext};
use crate::errors::StoreError;
use crate::secrets::PlainToken;
use crate::service::UserManagement;
use crate::sessions::models::Admin;
use crate::users::models::UserId;

/// Tunable rules of analytics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsPolicy {
    /// Most events in one batch.
    pub max_batch: usize,
    /// Raw events are kept this long; daily aggregates are kept.
    pub raw_retention: Duration,
    /// Events up to this far in the future are accepted (clock skew).
    pub future_skew: Duration,
    /// Longest range a dashboard covers.
    pub max_range_days: i64,
    /// Users in each top list.
    pub top_users: u32,
}

impl Default for AnalyticsPolicy {
    fn default() -> Self {
        Self {
            max_batch: 1000,
            raw_retention: Duration::days(90),
            future_skew: Duration::minutes(5),
            max_range_days: 366,
            top_users: 10,
        }
    }
}

/// A service token just created, with its secret (shown this once).
#[derive(Debug)]
pub struct IssuedServiceToken {
    /// The token.
    pub token: ServiceToken,
    /// The secret to give the reporting service.
    pub secret: PlainToken,
}

/// Proof that a request comes from a service holding an active token.
#[derive(Debug, Clone)]
pub struct ServiceCaller {
    token: ServiceToken,
}

impl ServiceCaller {
    /// The token used.
    pub fn token(&self) -> &ServiceToken {
        &self.token
    }
}

/// Secrets of service tokens start with this, so that a leaked one is
/// recognised (secret scanners) and never confused with a session.
pub const SERVICE_TOKEN_PREFIX: &str = "sat_";

impl UserManagement {
    /// Creates a service token named `name`; its secret is returned once
    /// and stored only as a digest. Audited.
    ///
    /// # Errors
    /// [`ServiceTokenError::InvalidName`].
    pub async fn create_service_token(
        &self,
        admin: &Admin,
        name: &str,
        context: &RequestContext,
    ) -> Result<IssuedServiceToken, ServiceTokenError> {
        let name = name.trim();
        if !valid_name(name) {
            return Err(ServiceTokenError::InvalidName);
        }
        let now = self.ports.clock.now();
        let secret = PlainToken::presented(format!(
            "{SERVICE_TOKEN_PREFIX}{}",
            self.ports.tokens.generate().expose()
        ));
        let token = ServiceToken {
            id: crate::record_id(),
            name: name.to_owned(),
            created_by: Some(admin.user().id),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        };
        let audit = AuditEvent::new(now, admin.actor(), AuditAction::ServiceTokenCreated, context)
            .change(Change::new("service_token", None, Some(&token.id.to_string())))
            .change(Change::new("name", None, Some(name)));
        self.ports.service_tokens.insert_service_token(token.clone(), secret.hash(), audit).await?;
        Ok(IssuedServiceToken { token, secret })
    }

    /// Every service token (never a secret), newest first.
    ///
    /// # Errors
    /// [`StoreError`] on failure.
    pub async fn service_tokens(&self, _admin: &Admin) -> Result<Vec<ServiceToken>, StoreError> {
        self.ports.service_tokens.service_tokens().await
    }

    /// Revokes a service token: it authenticates nothing from now on.
    /// Audited once; revoking again changes nothing.
    ///
    /// # Errors
    /// [`ServiceTokenError::NotFound`].
    pub async fn revoke_service_token(
        &self,
        admin: &Admin,
        id: Uuid,
        context: &RequestContext,
    ) -> Result<ServiceToken, ServiceTokenError> {
        let now = self.ports.clock.now();
        let audit = AuditEvent::new(now, admin.actor(), AuditAction::ServiceTokenRevoked, context)
            .change(Change::new("service_token", Some(&id.to_string()), None));
        self.ports
            .service_tokens
            .revoke_service_token(id, now, audit)
            .await?
            .ok_or(ServiceTokenError::NotFound)
    }

    /// Checks a service token presented with a request.
    ///
    /// # Errors
    /// [`ServiceAuthError::InvalidToken`] for a missing, unknown or revoked
    /// token, all alike.
    pub async fn authenticate_service(
        &self,
        presented: &PlainToken,
    ) -> Result<ServiceCaller, ServiceAuthError> {
        if !presented.expose().starts_with(SERVICE_TOKEN_PREFIX) {
            return Err(ServiceAuthError::InvalidToken);
        }
        let token = self
            .ports
            .service_tokens
            .service_token_by_hash(&presented.hash())
            .await?
            .filter(ServiceToken::is_active)
            .ok_or(ServiceAuthError::InvalidToken)?;
        let now = self.ports.clock.now();
        if token.last_used_at.is_none_or(|at| now - at >= Duration::minutes(1)) {
            self.ports.service_tokens.touch_service_token(token.id, now).await?;
        }
        Ok(ServiceCaller { token })
    }

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
