//! Usage analytics: service tokens (`/service-tokens`, admins), usage
//! ingestion (`POST /usage-events`, service tokens), dashboards
//! (`/analytics/...`, admins) and a user's activity.

use chrono::{DateTime, NaiveDate, Utc};
use poem::Request;
use poem_openapi::auth::Bearer;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi, SecurityScheme};
use secureai_domain::PlainToken;
use secureai_domain::access::ApiScope;
use secureai_domain::analytics::models::TokenScope;
use secureai_domain::analytics::models::{
    ActivePoint, ActivitySummary, DayRange, DayUsage, IngestReport, ModelUsage, Period, Usage,
    UsageEventInput, UserUsage,
};
use secureai_domain::dates::{EARLIEST_DAY, parse_day};
use uuid::Uuid;

use super::ApiTags;
use crate::AppState;
use crate::auth::{SessionAuth, request_context};
use crate::errors::ApiError;

/// A service token in the `Authorization: Bearer` header (`sat_…`).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", rename = "service_token")]
pub(crate) struct ServiceBearer(Bearer);

/// A service token as listed (never its secret).
#[derive(Debug, Object)]
pub(crate) struct ServiceTokenView {
    id: Uuid,
    /// What the admin called it.
    name: String,
    created_at: DateTime<Utc>,
    /// The admin who created it.
    created_by: Option<String>,
    /// Last request it authenticated (to the minute).
    last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked token authenticates nothing.
    revoked_at: Option<DateTime<Utc>>,
    /// What it opens: `usage` (reporting usage), `scim` (provisioning).
    scopes: Vec<String>,
}

impl From<&secureai_domain::analytics::models::ServiceToken> for ServiceTokenView {
    fn from(token: &secureai_domain::analytics::models::ServiceToken) -> Self {
        Self {
            id: token.id,
            name: token.name.clone(),
            created_at: token.created_at,
            created_by: token.created_by.map(|id| id.to_string()),
            last_used_at: token.last_used_at,
            revoked_at: token.revoked_at,
            scopes: token.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        }
    }
}

/// A token just created: its secret is in this answer and nowhere else.
#[derive(Debug, Object)]
pub(crate) struct CreatedServiceToken {
    /// The token.
    #[oai(flatten)]
    token: ServiceTokenView,
    /// The secret to configure in the reporting service. Shown once.
    secret: String,
}

/// A new service token.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct NewServiceToken {
    /// What it is for ("chat service, eu-west"), 1–100 characters.
    name: String,
    /// What it opens: `usage` (reporting usage, the default), `scim`
    /// (provisioning from an identity provider), or both.
    scopes: Option<Vec<String>>,
}

#[derive(ApiResponse)]
pub(crate) enum CreatedToken {
    /// Created; the secret is shown this once.
    #[oai(status = 201)]
    Created(Json<CreatedServiceToken>),
}

/// One usage event. There is no content field, and unknown fields are
/// refused: what was said in a conversation cannot be sent here.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct UsageEventDto {
    /// Your id for the event (1–128 of `A-Z a-z 0-9 . _ : -`); sending it
    /// again is harmless.
    event_id: String,
    /// The SecureAI user (UUID).
    user_id: String,
    /// The conversation (same alphabet as `event_id`).
    conversation_id: String,
    /// Model name.
    model: String,
    /// Provider name.
    provider: String,
    /// Tokens sent to the model.
    input_tokens: i64,
    /// Tokens the model produced.
    output_tokens: i64,
    /// When it happened (RFC 3339 with offset).
    occurred_at: String,
}

/// A batch of usage events.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct UsageBatch {
    /// The events (at most the configured batch size, 1,000 by default).
    events: Vec<UsageEventDto>,
}

/// One event refused.
#[derive(Debug, Object)]
pub(crate) struct RejectedEventView {
    /// Position in the batch, from 0.
    index: u32,
    /// The event id as sent.
    event_id: String,
    /// Stable code, e.g. `unknown_user`, `invalid_time`.
    code: String,
    /// Why, in words.
    message: String,
}

/// What became of a batch.
#[derive(Debug, Object)]
pub(crate) struct IngestReportView {
    received: u32,
    /// Recorded now.
    accepted: u32,
    /// Ignored: already recorded (or repeated in the batch).
    duplicates: u32,
    /// Refused, each with its reason; the others were recorded.
    rejected: Vec<RejectedEventView>,
}

impl From<IngestReport> for IngestReportView {
    fn from(report: IngestReport) -> Self {
        let n = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self {
            received: n(report.received),
            accepted: n(report.accepted),
            duplicates: n(report.duplicates),
            rejected: report
                .rejected
                .into_iter()
                .map(|r| RejectedEventView {
                    index: n(r.index),
                    event_id: r.event_id,
                    code: r.reason.code().to_owned(),
                    message: r.reason.message().to_owned(),
                })
                .collect(),
        }
    }
}

/// Sums over something.
#[derive(Debug, Object)]
pub(crate) struct UsageView {
    events: u64,
    input_tokens: u64,
    output_tokens: u64,
    /// Input and output tokens.
    tokens: u64,
    /// Conversations started.
    conversations: u64,
}

impl From<Usage> for UsageView {
    fn from(usage: Usage) -> Self {
        Self {
            events: usage.events,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            tokens: usage.tokens(),
            conversations: usage.conversations,
        }
    }
}

/// Active users in one period.
#[derive(Debug, Object)]
pub(crate) struct ActivePointView {
    /// First day of the period.
    start: NaiveDate,
    /// Users with a usage event or a sign-in in it.
    users: u64,
}

impl From<&ActivePoint> for ActivePointView {
    fn from(point: &ActivePoint) -> Self {
        Self { start: point.start, users: point.users }
    }
}

/// Active users per period.
#[derive(Debug, Object)]
pub(crate) struct ActiveUsersView {
    /// `day`, `week` (ISO, from Monday) or `month`.
    period: String,
    /// Every period overlapping the range, oldest first.
    points: Vec<ActivePointView>,
}

/// Usage on one day.
#[derive(Debug, Object)]
pub(crate) struct DayUsageView {
    day: NaiveDate,
    #[oai(flatten)]
    usage: UsageView,
}

impl From<&DayUsage> for DayUsageView {
    fn from(day: &DayUsage) -> Self {
        Self { day: day.day, usage: day.usage.into() }
    }
}

/// Usage of one model.
#[derive(Debug, Object)]
pub(crate) struct ModelUsageView {
    model: String,
    provider: String,
    #[oai(flatten)]
    usage: UsageView,
    /// This model's part of all tokens in the range, 0–1.
    share: f64,
}

fn model_views(models: &[ModelUsage]) -> Vec<ModelUsageView> {
    let all: u64 = models.iter().map(|m| m.usage.tokens()).sum();
    models
        .iter()
        .map(|m| ModelUsageView {
            model: m.model.clone(),
            provider: m.provider.clone(),
            usage: m.usage.into(),
            share: if all == 0 { 0.0 } else { m.usage.tokens() as f64 / all as f64 },
        })
        .collect()
}

/// Usage by one user.
#[derive(Debug, Object)]
pub(crate) struct UserUsageView {
    user_id: String,
    /// Email now (anonymised if the user was erased).
    email: Option<String>,
    name: Option<String>,
    #[oai(flatten)]
    usage: UsageView,
}

impl From<&UserUsage> for UserUsageView {
    fn from(entry: &UserUsage) -> Self {
        Self {
            user_id: entry.user_id.to_string(),
            email: entry.user.as_ref().map(|u| u.email.to_string()),
            name: entry.user.as_ref().map(|u| u.name.to_string()),
            usage: entry.usage.into(),
        }
    }
}

/// Everything the Analytics page shows, over a range.
#[derive(Debug, Object)]
pub(crate) struct DashboardView {
    from: NaiveDate,
    to: NaiveDate,
    /// Totals over the range.
    total: UsageView,
    /// Daily active users.
    daily_active_users: Vec<ActivePointView>,
    /// Weekly active users (ISO weeks overlapping the range).
    weekly_active_users: Vec<ActivePointView>,
    /// Monthly active users.
    monthly_active_users: Vec<ActivePointView>,
    /// Every day of the range.
    by_day: Vec<DayUsageView>,
    /// Models, most tokens first.
    by_model: Vec<ModelUsageView>,
    /// Users with the most tokens.
    top_users_by_tokens: Vec<UserUsageView>,
    /// Users with the most conversations started.
    top_users_by_conversations: Vec<UserUsageView>,
}

/// A user's recent activity.
#[derive(Debug, Object)]
pub(crate) struct ActivityView {
    from: NaiveDate,
    to: NaiveDate,
    /// Last sign-in.
    last_sign_in_at: Option<DateTime<Utc>>,
    /// Last usage event.
    last_activity_at: Option<DateTime<Utc>>,
    /// Usage in the last 30 days.
    usage: UsageView,
    /// Models used in the last 30 days, most tokens first.
    models: Vec<ModelUsageView>,
}

impl ActivityView {
    fn new(activity: &ActivitySummary, last_sign_in_at: Option<DateTime<Utc>>) -> Self {
        Self {
            from: activity.range.from,
            to: activity.range.to,
            last_sign_in_at,
            last_activity_at: activity.last_activity_at,
            usage: activity.usage.into(),
            models: model_views(&activity.models),
        }
    }
}

pub(crate) struct AnalyticsApi(pub(crate) AppState);

impl AnalyticsApi {
    /// `from`/`to` as days, defaulting to the last 30 days.
    fn range(&self, from: Option<String>, to: Option<String>) -> Result<DayRange, ApiError> {
        let day = |text: Option<String>, field: &str| {
            text.map(|t| parse_day(&t, field).map_err(|e| ApiError::invalid_date(&e))).transpose()
        };
        let to = day(to, "to")?.unwrap_or(self.0.service.analytics.last_days(1).to);
        let from = day(from, "from")?.unwrap_or(DayRange::ending(to, 30).from.max(EARLIEST_DAY));
        Ok(DayRange { from, to })
    }
}

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Analytics")]
impl AnalyticsApi {
    /// Create a service token for another SecureAI service to report usage
    /// with. The secret is in this answer only; it is stored as a digest.
    #[oai(path = "/service-tokens", method = "post")]
    async fn create_service_token(
        &self,
        auth: SessionAuth,
        body: Json<NewServiceToken>,
        req: &Request,
    ) -> Result<CreatedToken, ApiError> {
        let admin = self.0.principal(&auth, req).await?.admin()?;
        let issued = self
            .0
            .service
            .service_tokens
            .create_service_token(
                &admin,
                &body.0.name,
                body.0.scopes.as_deref(),
                &request_context(req),
            )
            .await?;
        Ok(CreatedToken::Created(Json(CreatedServiceToken {
            token: (&issued.token).into(),
            secret: issued.secret.expose().to_owned(),
        })))
    }

    /// Every service token, newest first (never a secret).
    #[oai(path = "/service-tokens", method = "get")]
    async fn service_tokens(
        &self,
        auth: SessionAuth,
        req: &Request,
    ) -> Result<Json<Vec<ServiceTokenView>>, ApiError> {
        let admin = self.0.principal(&auth, req).await?.admin()?;
        let tokens = self.0.service.service_tokens.service_tokens(&admin).await?;
        Ok(Json(tokens.iter().map(Into::into).collect()))
    }

    /// Revoke a service token: from now on it authenticates nothing.
    #[oai(path = "/service-tokens/:id", method = "delete")]
    async fn revoke_service_token(
        &self,
        auth: SessionAuth,
        id: Path<Uuid>,
        req: &Request,
    ) -> Result<Json<ServiceTokenView>, ApiError> {
        let admin = self.0.principal(&auth, req).await?.admin()?;
        let token = self
            .0
            .service
            .service_tokens
            .revoke_service_token(&admin, id.0, &request_context(req))
            .await?;
        Ok(Json((&token).into()))
    }

    /// Report usage (for SecureAI services, with a service token). Each
    /// event is checked on its own: valid ones are recorded, a repeated
    /// `event_id` is ignored, the others come back with a reason. Unknown
    /// fields fail the whole batch (400) so that no content slips in.
    #[oai(path = "/usage-events", method = "post")]
    async fn ingest(
        &self,
        auth: ServiceBearer,
        body: Json<UsageBatch>,
    ) -> Result<Json<IngestReportView>, ApiError> {
        let caller = self
            .0
            .service
            .service_tokens
            .authenticate_service(&PlainToken::presented(auth.0.token), TokenScope::Usage)
            .await?;
        let inputs = body
            .0
            .events
            .into_iter()
            .map(|e| UsageEventInput {
                event_id: e.event_id,
                user_id: e.user_id,
                conversation_id: e.conversation_id,
                model: e.model,
                provider: e.provider,
                input_tokens: e.input_tokens,
                output_tokens: e.output_tokens,
                occurred_at: e.occurred_at,
            })
            .collect();
        let report = self.0.service.analytics.ingest_usage(&caller, inputs).await?;
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        if let Some(metrics) = &self.0.metrics {
            metrics.usage_events(
                count(report.accepted),
                count(report.duplicates),
                count(report.rejected.len()),
            );
        }
        Ok(Json(report.into()))
    }

    /// Everything the Analytics page shows over `from`..=`to` (days, UTC;
    /// default the last 30 days, at most 366).
    #[oai(path = "/analytics/dashboard", method = "get")]
    async fn dashboard(
        &self,
        auth: SessionAuth,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
        req: &Request,
    ) -> Result<Json<DashboardView>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::AnalyticsRead)).await?.admin()?;
        let range = self.range(from.0, to.0)?;
        let d = self.0.service.analytics.dashboard(&admin, range).await?;
        let points = |p: &[ActivePoint]| p.iter().map(Into::into).collect();
        Ok(Json(DashboardView {
            from: d.range.from,
            to: d.range.to,
            total: d.total.into(),
            daily_active_users: points(&d.daily_active),
            weekly_active_users: points(&d.weekly_active),
            monthly_active_users: points(&d.monthly_active),
            by_day: d.by_day.iter().map(Into::into).collect(),
            by_model: model_views(&d.by_model),
            top_users_by_tokens: d.top_users.iter().map(Into::into).collect(),
            top_users_by_conversations: d.top_conversations.iter().map(Into::into).collect(),
        }))
    }

    /// Active users per `period` (`day`, `week`, `month`) over the range.
    #[oai(path = "/analytics/active-users", method = "get")]
    async fn active_users(
        &self,
        auth: SessionAuth,
        period: Query<Option<String>>,
        from: Query<Option<String>>,
        to: Query<Option<String>>,
        req: &Request,
    ) -> Result<Json<ActiveUsersView>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::AnalyticsRead)).await?.admin()?;
        let period = match period.0.as_deref() {
            None => Period::Day,
            Some(text) => Period::parse(text).ok_or_else(|| {
                ApiError::bad_request("invalid_period", "period must be day, week or month")
            })?,
        };
        let range = self.range(from.0, to.0)?;
        let points = self.0.service.analytics.active_users(&admin, period, range).await?;
        Ok(Json(ActiveUsersView {
            period: period.as_str().to_owned(),
            points: points.iter().map(Into::into).collect(),
        }))
    }

    /// A user's activity: last sign-in, last usage event, conversations
    /// and tokens in the last 30 days, models used.
    #[oai(path = "/users/:id/activity", method = "get")]
    async fn activity(
        &self,
        auth: SessionAuth,
        id: Path<String>,
        req: &Request,
    ) -> Result<Json<ActivityView>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::AnalyticsRead)).await?.admin()?;
        let user = self.0.service.users.get_user(&admin, super::users::parse_id(&id.0)?).await?;
        let activity = self.0.service.analytics.user_activity(&admin, user.id).await?;
        Ok(Json(ActivityView::new(&activity, user.last_login_at)))
    }
}
