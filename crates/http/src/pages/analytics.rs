//! Admin Panel > Analytics: active users, tokens by day, model share, top
//! users — charts drawn here as SVG (no script), each with its numbers in
//! a table; and Settings > Service tokens, where other SecureAI services
//! get the token they report usage with.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{Request, Response, handler};
use secureai_domain::analytics::errors::AnalyticsError;
use secureai_domain::analytics::models::{ActivePoint, Dashboard, ModelUsage, UserUsage};
use serde::Deserialize;

use super::shell::{Nav, admin_viewer, form_admin, sentence};
use super::{internal, page};
use crate::AppState;
use crate::auth::request_context;

/// One bar of a chart, in the SVG's coordinates.
pub(crate) struct Bar {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    /// What the bar stands for, e.g. "2026-11-28: 42 users".
    pub label: String,
}

/// A bar chart over days, sized for the page (the SVG scales down).
pub(crate) struct Chart {
    pub title: String,
    pub width: u32,
    pub height: u32,
    pub bars: Vec<Bar>,
    /// The largest value, shown on the axis.
    pub max_label: String,
    pub first_label: String,
    pub last_label: String,
}

const CHART_WIDTH: u32 = 720;
const CHART_HEIGHT: u32 = 180;
const PLOT_TOP: u32 = 16;
const PLOT_LEFT: u32 = 48;

impl Chart {
    fn new(title: &str, points: &[(String, u64)], unit: &str) -> Self {
        let max = points.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
        let plot_width = CHART_WIDTH - PLOT_LEFT - 8;
        let plot_height = CHART_HEIGHT - PLOT_TOP - 24;
        let n = u32::try_from(points.len().max(1)).unwrap_or(u32::MAX);
        let slot = (plot_width / n).max(1);
        let bars = points
            .iter()
            .enumerate()
            .map(|(i, (label, value))| {
                let height =
                    u32::try_from(u128::from(*value) * u128::from(plot_height) / u128::from(max))
                        .unwrap_or(plot_height);
                let i = u32::try_from(i).unwrap_or(0);
                Bar {
                    x: PLOT_LEFT + i * slot + slot / 8,
                    y: PLOT_TOP + plot_height - height,
                    width: (slot - slot / 4).max(1),
                    height,
                    label: format!("{label}: {} {unit}", thousands(*value)),
                }
            })
            .collect();
        Self {
            title: title.to_owned(),
            width: CHART_WIDTH,
            height: CHART_HEIGHT,
            bars,
            max_label: thousands(max),
            first_label: points.first().map(|(l, _)| l.clone()).unwrap_or_default(),
            last_label: points.last().map(|(l, _)| l.clone()).unwrap_or_default(),
        }
    }
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) struct ModelRow {
    pub model: String,
    pub provider: String,
    pub tokens: String,
    pub events: String,
    pub conversations: String,
    /// Share of all tokens, in percent (one decimal).
    pub share: String,
    /// Width of the share bar, 0–100.
    pub width: u32,
}

pub(crate) fn model_rows(models: &[ModelUsage]) -> Vec<ModelRow> {
    let all: u64 = models.iter().map(|m| m.usage.tokens()).sum::<u64>().max(1);
    models
        .iter()
        .map(|m| {
            let per_mille = m.usage.tokens() * 1000 / all;
            ModelRow {
                model: m.model.clone(),
                provider: m.provider.clone(),
                tokens: thousands(m.usage.tokens()),
                events: thousands(m.usage.events),
                conversations: thousands(m.usage.conversations),
                share: format!("{}.{}", per_mille / 10, per_mille % 10),
                width: u32::try_from(per_mille / 10).unwrap_or(100),
            }
        })
        .collect()
}

struct UserRow {
    id: String,
    who: String,
    tokens: String,
    conversations: String,
    events: String,
}

fn user_rows(users: &[UserUsage]) -> Vec<UserRow> {
    users
        .iter()
        .map(|u| UserRow {
            id: u.user_id.to_string(),
            who: u.user.as_ref().map_or_else(
                || u.user_id.to_string(),
                |user| format!("{} ({})", user.name, user.email),
            ),
            tokens: thousands(u.usage.tokens()),
            conversations: thousands(u.usage.conversations),
            events: thousands(u.usage.events),
        })
        .collect()
}

struct PeriodRow {
    start: String,
    users: String,
}

fn period_rows(points: &[ActivePoint]) -> Vec<PeriodRow> {
    points
        .iter()
        .rev()
        .map(|p| PeriodRow { start: p.start.to_string(), users: thousands(p.users) })
        .collect()
}

#[derive(Template)]
#[template(path = "analytics.html")]
struct AnalyticsPage {
    nav: Nav,
    days: i64,
    choices: Vec<i64>,
    from: String,
    to: String,
    active_today: String,
    tokens: String,
    events: String,
    conversations: String,
    active_chart: Chart,
    token_chart: Chart,
    models: Vec<ModelRow>,
    top_users: Vec<UserRow>,
    top_conversations: Vec<UserRow>,
    weeks: Vec<PeriodRow>,
    months: Vec<PeriodRow>,
}

#[derive(Deserialize, Default)]
pub(crate) struct RangeQuery {
    days: Option<i64>,
}

/// `GET /admin/analytics?days=N` (7, 30 or 90; 30 by default).
#[handler]
pub(crate) async fn analytics(
    state: Data<&AppState>,
    req: &Request,
    Query(query): Query<RangeQuery>,
) -> Response {
    let (viewer, admin) = match admin_viewer(&state, req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let choices = vec![7, 30, 90];
    let days = query.days.filter(|d| choices.contains(d)).unwrap_or(30);
    let range = state.service.analytics.last_days(days);
    let dashboard: Dashboard = match state.service.analytics.dashboard(&admin, range).await {
        Ok(dashboard) => dashboard,
        Err(AnalyticsError::Unexpected(e)) => return internal(&e),
        // The range comes from the choices above: always valid.
        Err(other) => return internal(&secureai_domain::StoreError::msg(other.to_string())),
    };
    let day_points = |value: &dyn Fn(usize) -> u64| -> Vec<(String, u64)> {
        dashboard.by_day.iter().enumerate().map(|(i, d)| (d.day.to_string(), value(i))).collect()
    };
    let active: Vec<(String, u64)> =
        dashboard.daily_active.iter().map(|p| (p.start.to_string(), p.users)).collect();
    let template = AnalyticsPage {
        nav: viewer.nav("analytics"),
        days,
        choices,
        from: range.from.to_string(),
        to: range.to.to_string(),
        active_today: thousands(dashboard.daily_active.last().map_or(0, |p| p.users)),
        tokens: thousands(dashboard.total.tokens()),
        events: thousands(dashboard.total.events),
        conversations: thousands(dashboard.total.conversations),
        active_chart: Chart::new("Daily active users", &active, "users"),
        token_chart: Chart::new(
            "Tokens per day",
            &day_points(&|i| dashboard.by_day[i].usage.tokens()),
            "tokens",
        ),
        models: model_rows(&dashboard.by_model),
        top_users: user_rows(&dashboard.top_users),
        top_conversations: user_rows(&dashboard.top_conversations),
        weeks: period_rows(&dashboard.weekly_active),
        months: period_rows(&dashboard.monthly_active),
    };
    page(StatusCode::OK, &template)
}

struct TokenRow {
    id: String,
    name: String,
    created: String,
    last_used: String,
    revoked: Option<String>,
    /// What it opens, in words.
    scopes: String,
}

#[derive(Template)]
#[template(path = "service_tokens.html")]
struct ServiceTokensPage {
    nav: Nav,
    tokens: Vec<TokenRow>,
    /// A secret just created: shown on this one answer.
    created: Option<(String, String)>,
    error: Option<String>,
    name: String,
}

async fn tokens_page(
    state: &AppState,
    viewer_nav: Nav,
    admin: &secureai_domain::access::Admin,
    created: Option<(String, String)>,
    error: Option<String>,
    name: String,
) -> Response {
    let tokens = match state.service.service_tokens.service_tokens(admin).await {
        Ok(tokens) => tokens,
        Err(e) => return internal(&e),
    };
    let when = |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%d %H:%M UTC").to_string();
    let template = ServiceTokensPage {
        nav: viewer_nav,
        tokens: tokens
            .iter()
            .map(|t| TokenRow {
                id: t.id.to_string(),
                name: t.name.clone(),
                created: when(t.created_at),
                last_used: t.last_used_at.map_or_else(|| "never".to_owned(), when),
                revoked: t.revoked_at.map(when),
                scopes: t
                    .scopes
                    .iter()
                    .map(|s| match s {
                        secureai_domain::analytics::models::TokenScope::Usage => "Usage reporting",
                        secureai_domain::analytics::models::TokenScope::Scim => "SCIM provisioning",
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect(),
        created,
        error,
        name,
    };
    let status =
        if template.error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    page(status, &template)
}

/// `GET /admin/settings/service-tokens`.
#[handler]
pub(crate) async fn service_tokens(state: Data<&AppState>, req: &Request) -> Response {
    let (viewer, admin) = match admin_viewer(&state, req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    tokens_page(&state, viewer.nav("settings"), &admin, None, None, String::new()).await
}

#[derive(Deserialize)]
pub(crate) struct TokenForm {
    csrf: String,
    #[serde(default)]
    name: String,
    /// `usage`, `scim` or `usage,scim`.
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    revoke: String,
}

/// `POST /admin/settings/service-tokens`: create (name) or revoke (revoke=id).
#[handler]
pub(crate) async fn save_service_token(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<TokenForm>,
) -> Response {
    let (viewer, admin) = match form_admin(&state, req, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let context = request_context(req);
    if !form.revoke.is_empty() {
        let notice = match form.revoke.parse() {
            Ok(id) => match state
                .service
                .service_tokens
                .revoke_service_token(&admin, id, &context)
                .await
            {
                Ok(token) => {
                    format!("“{}” is revoked: it authenticates nothing from now on.", token.name)
                }
                Err(secureai_domain::analytics::errors::ServiceTokenError::Unexpected(e)) => {
                    return internal(&e);
                }
                Err(other) => sentence(&other.to_string()),
            },
            Err(_) => "No service token has this id.".to_owned(),
        };
        let mut nav = viewer.nav("settings");
        nav.notice = Some(notice);
        return tokens_page(&state, nav, &admin, None, None, String::new()).await;
    }
    let scopes: Vec<String> =
        form.scopes.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect();
    let scopes = (!scopes.is_empty()).then_some(scopes.as_slice());
    match state
        .service
        .service_tokens
        .create_service_token(&admin, &form.name, scopes, &context)
        .await
    {
        Ok(issued) => {
            let created = (issued.token.name.clone(), issued.secret.expose().to_owned());
            tokens_page(&state, viewer.nav("settings"), &admin, Some(created), None, String::new())
                .await
        }
        Err(secureai_domain::analytics::errors::ServiceTokenError::Unexpected(e)) => internal(&e),
        Err(secureai_domain::analytics::errors::ServiceTokenError::StepUp(e)) => {
            super::step_up::refused(&viewer, e)
        }
        Err(other) => {
            let error = Some(sentence(&other.to_string()));
            tokens_page(&state, viewer.nav("settings"), &admin, None, error, form.name).await
        }
    }
}
