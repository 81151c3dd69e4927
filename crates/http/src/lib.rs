//! The HTTP front end: the JSON API (poem-openapi) under `/api/v1`, its
//! OpenAPI document at `/api/openapi.json` and browsable docs at
//! `/api/docs`, the pages that must work from a plain browser, and health
//! probes. Handlers translate HTTP to use-case calls on
//! [`UserManagement`]; no business rule lives here.

mod api;
mod auth;
mod client_address;
mod contract;
mod csv_export;
mod dto;
mod errors;
mod limits;
mod pages;
mod rate_limit;
mod scim;

/// Defuses a cell a spreadsheet would run as a formula (for CSV reports).
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use poem::http::StatusCode;
use poem::middleware::CatchPanic;
use poem::web::Json as PoemJson;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Response, Route, get, handler};
use poem_openapi::OpenApiService;
use secureai_domain::UserManagement;

pub use client_address::TrustedProxies;
pub use errors::{ApiError, ErrorBody};
pub use rate_limit::PerAddress;
pub use secureai_telemetry::{Metrics, Snapshot};

/// Checks the service's dependencies for `/readyz`.
#[async_trait]
pub trait Readiness: Send + Sync {
    /// `Err` with a short reason when the database does not answer.
    async fn check(&self) -> Result<(), String>;

    /// `Err` with the reason when the database's schema is not this
    /// version's (migrations pending, or unknown ones applied).
    async fn migrations(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Reads the stored state `/metrics` reports (users, seats, backlogs, the
/// database pool) at each scrape.
#[async_trait]
pub trait MetricsSource: Send + Sync {
    /// `Err` with a short reason when the database does not answer.
    async fn snapshot(&self) -> Result<Snapshot, String>;
}

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub service: Arc<UserManagement>,
    /// Whether cookies get the `Secure` attribute (false only for plain-http
    /// public URLs such as `http://127.0.0.1:8080`).
    pub secure_cookies: bool,
    /// The public base URL (`https://ai.example.com`), without trailing slash.
    pub public_url: String,
    /// Dependency checks for `/readyz`.
    pub readiness: Arc<dyn Readiness>,
    /// Limits of imports through the API.
    pub import_limits: ImportLimits,
    /// Reverse proxies whose forwarding headers name the client.
    pub trusted_proxies: TrustedProxies,
    /// How often one address may begin an SSO sign-in.
    pub sso_begin_limit: Arc<PerAddress>,
    /// The instance's metrics (also the domain's sign-in meter); `None`
    /// when the operator turned them off: nothing is counted or served.
    pub metrics: Option<Arc<Metrics>>,
    /// The stored state `/metrics` reports.
    pub metrics_source: Arc<dyn MetricsSource>,
    /// Whether this listener serves `/metrics` (false when the operator
    /// gave it a listener of its own, [`metrics_app`]).
    pub metrics_here: bool,
}

/// Limits of one import through the API.
#[derive(Debug, Clone, Copy)]
pub struct ImportLimits {
    /// Largest body, in bytes.
    pub max_bytes: usize,
    /// Most data rows.
    pub max_rows: u64,
}

impl Default for ImportLimits {
    fn default() -> Self {
        Self { max_bytes: 10 * 1024 * 1024, max_rows: 50_000 }
    }
}

impl AppState {
    /// Where an OIDC provider sends the browser back (to register there).
    pub fn oidc_redirect_uri(&self) -> String {
        format!("{}/auth/oidc/callback", self.public_url)
    }

    /// Our SAML metadata, also our default SAML entity id.
    pub fn saml_metadata_url(&self) -> String {
        format!("{}/auth/saml/metadata", self.public_url)
    }

    /// The public URL's origin (scheme, host, port).
    pub fn origin(&self) -> String {
        url::Url::parse(&self.public_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| self.public_url.clone())
    }
}

/// Largest request body the JSON API accepts.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The whole HTTP application.
pub fn app(state: AppState) -> impl Endpoint {
    let api = OpenApiService::new(
        (
            api::auth::AuthApi(state.clone()),
            api::users::UsersApi(state.clone()),
            api::invitations::InvitationsApi(state.clone()),
            api::settings::SettingsApi(state.clone()),
            api::sso::SsoApi(state.clone()),
            api::me::MeApi(state.clone()),
            api::mfa::MfaApi(state.clone()),
            api::passkeys::PasskeysApi(state.clone()),
            api::tokens::TokensApi(state.clone()),
            api::passwords::PasswordsApi(state.clone()),
            api::audit::AuditApi(state.clone()),
            api::mail::MailApi(state.clone()),
            api::imports::ImportsApi(state.clone()),
            api::analytics::AnalyticsApi(state.clone()),
            api::webhooks::WebhooksApi(state.clone()),
        ),
        "SecureAI user management",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Invite users, manage roles and sessions. Authenticate with the session cookie set by \
         `POST /api/v1/auth/login`, or send its token as `Authorization: Bearer`. Errors are \
         `{\"code\", \"message\"}` with a stable code.",
    )
    .server("/api");
    let docs = api.swagger_ui();
    let spec = contract::complete(&api.spec());
    // Shared, not copied: every request passes through `add_allow`.
    let allowed = Arc::new(contract::AllowedMethods::from_spec(&spec, "/api"));
    let spec = Arc::new(spec);
    let metrics = state.metrics.clone();
    let mut routes = Route::new();
    if state.metrics_here {
        routes = routes.at("/metrics", get(metrics_text));
    }
    routes
        .nest("/api/docs", docs)
        .at(
            "/api/openapi.json",
            get(poem::endpoint::make(move |_| {
                let spec = spec.clone();
                async move {
                    spec.as_str().to_owned().with_content_type("application/json; charset=utf-8")
                }
            })),
        )
        .nest(
            "/api",
            api.with(limits::BodyLimit::new(MAX_BODY_BYTES, state.import_limits.max_bytes)),
        )
        .nest("/scim/v2", scim::routes().catch_all_error(scim::render_error))
        // Page forms are small; the Import Users page carries a whole file.
        .nest(
            "/",
            pages::routes()
                .with(limits::BodyLimit::new(64 * 1024, state.import_limits.max_bytes + 64 * 1024)),
        )
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .around(note_route)
        .data(state)
        .with(CatchPanic::new())
        .catch_all_error(errors::render_any_error)
        .around(move |next, req| {
            let allowed = allowed.clone();
            async move { contract::add_allow(next, req, &allowed).await }
        })
        .around(move |next, req| log_request(next, req, metrics.clone()))
}

/// `/metrics` alone, for a listener of its own (`metrics_listen`).
pub fn metrics_app(state: AppState) -> impl Endpoint {
    Route::new().at("/metrics", get(metrics_text)).data(state).with(CatchPanic::new())
}

/// The Prometheus scrape: counters as they stand, gauges read now. When
/// the database does not answer, the gauges keep their last values and
/// the counters are still served.
#[handler]
async fn metrics_text(state: poem::web::Data<&AppState>) -> Response {
    let Some(metrics) = &state.metrics else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let snapshot = match state.metrics_source.snapshot().await {
        Ok(snapshot) => Some(snapshot),
        Err(reason) => {
            tracing::warn!(%reason, "metrics: the stored state could not be read");
            None
        }
    };
    metrics
        .render(snapshot.as_ref())
        .with_content_type(secureai_telemetry::CONTENT_TYPE)
        .into_response()
}

/// What the request's log line says beyond the request itself: who called
/// (filled in by the handler that resolved the caller:
/// [`AppState::principal`] and [`AppState::caller`], the pages' viewer),
/// the route that matched, and the audit events the request made.
#[derive(Clone, Default)]
pub(crate) struct RequestLog {
    actor: Arc<std::sync::Mutex<Option<String>>>,
    route: Arc<std::sync::Mutex<Option<Arc<str>>>>,
    audit_ids: secureai_domain::audit::models::AuditIds,
}

impl RequestLog {
    /// Notes the caller's user id for the log line.
    pub(crate) fn actor(req: &Request, user: secureai_domain::UserId) {
        if let Some(log) = req.extensions().get::<RequestLog>()
            && let Ok(mut actor) = log.actor.lock()
        {
            *actor = Some(user.to_string());
        }
    }

    /// Where the audit events of this request note their ids.
    pub(crate) fn audit_ids(req: &Request) -> secureai_domain::audit::models::AuditIds {
        req.extensions().get::<RequestLog>().map(|log| log.audit_ids.clone()).unwrap_or_default()
    }
}

/// Notes the template of the route that answered (`/api/v1/users/:user_id`,
/// never the path itself) for the log line and the metrics.
async fn note_route<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let log = req.extensions().get::<RequestLog>().cloned();
    let result = next.call(req).await.map(IntoResponse::into_response);
    let pattern = match &result {
        Ok(response) => response.data::<poem::PathPattern>(),
        Err(error) => error.data::<poem::PathPattern>(),
    };
    // A nest whose own routes did not match leaves its prefix (`""` for
    // the pages): no route matched.
    let pattern = pattern.filter(|p| !p.0.is_empty());
    if let (Some(log), Some(pattern)) = (log, pattern)
        && let Ok(mut route) = log.route.lock()
    {
        *route = Some(pattern.0.clone());
    }
    result
}

/// The `X-Request-Id` a client sent, if it is one we may echo and log: 1
/// to 128 characters of letters, digits and `._:-` (no spaces, no control
/// characters, nothing to forge a log line with).
fn valid_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

/// Logs each request — its id, method, path (never the query, which may
/// carry a token), route template, status, duration, the caller's user id
/// and the ids of the audit events it made — counts it in the metrics,
/// and answers with `X-Request-Id`: the client's when valid, else a new one.
async fn log_request<E: Endpoint>(
    next: E,
    mut req: Request,
    metrics: Option<Arc<Metrics>>,
) -> poem::Result<Response> {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v))
        .map_or_else(|| secureai_domain::record_id().simple().to_string(), str::to_owned);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let log = RequestLog::default();
    req.extensions_mut().insert(log.clone());
    // The request's span, for traces only (the log line below says it
    // all for logs): its database statements and outbound calls nest in it.
    let span = tracing::info_span!(
        target: "secureai_trace",
        "request",
        otel.name = %method,
        otel.kind = "server",
        http.request.method = %method,
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        url.path = %path,
        request_id = %request_id,
    );
    let started = Instant::now();
    let mut response = tracing::Instrument::instrument(next.get_response(req), span.clone()).await;
    if let Ok(value) = poem::http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let took = started.elapsed();
    let status = response.status().as_u16();
    let actor = log.actor.lock().ok().and_then(|a| a.clone()).unwrap_or_default();
    let route = log.route.lock().ok().and_then(|r| r.clone());
    if let Some(metrics) = &metrics {
        metrics.request(method.as_str(), route.as_deref(), status, took);
    }
    // (Named by the method alone: an OpenTelemetry span's name cannot
    // change once children started, and the route is known only now.)
    let template = route.as_deref().unwrap_or(secureai_telemetry::UNMATCHED_ROUTE);
    span.record("http.route", template);
    span.record("http.response.status_code", status);
    let audit_events =
        log.audit_ids.ids().iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    tracing::info!(
        request_id,
        %method,
        %path,
        route = template,
        status,
        micros = took.as_micros() as u64,
        actor,
        audit_events,
        "request"
    );
    Ok(response)
}

#[handler]
fn healthz() -> &'static str {
    "ok"
}

#[handler]
async fn readyz(state: poem::web::Data<&AppState>) -> Response {
    // The schema is read only from a database that answers.
    let database = state.readiness.check().await;
    let migrations = match &database {
        Ok(()) => state.readiness.migrations().await,
        Err(_) => Err("not checked: the database does not answer".to_owned()),
    };
    let said = |r: &Result<(), String>| r.as_ref().err().cloned().unwrap_or_else(|| "ok".into());
    let ready = database.is_ok() && migrations.is_ok();
    let answer = PoemJson(serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "database": said(&database),
        "migrations": said(&migrations),
    }));
    if ready {
        answer.into_response()
    } else {
        answer.with_status(StatusCode::SERVICE_UNAVAILABLE).into_response()
    }
}
