//! Settings › Webhooks: the endpoints security events go to (address,
//! events, state) with Send test event, Pause/Resume, New secret and
//! Delete; a form adding one (its secret shown once); each endpoint's
//! deliveries with the failed ones' errors and Retry. Handlers translate
//! forms into [`secureai_domain::webhooks::service::WebhookService`] calls.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response, handler};
use secureai_domain::access::Principal;
use secureai_domain::webhooks::deliveries::DeliveryState;
use secureai_domain::webhooks::models::EventType;
use secureai_domain::webhooks::service::{EndpointChange, WebhookError};

use super::shell::{CsrfForm, Nav, admin_viewer, form_admin, sentence, when};
use super::{internal, page};
use crate::AppState;
use crate::auth::request_context;

struct Row {
    id: String,
    url: String,
    events: String,
    enabled: bool,
    state: String,
}

#[derive(Template)]
#[template(path = "webhooks.html")]
struct WebhooksPage {
    nav: Nav,
    endpoints: Vec<Row>,
    /// A secret just made: the endpoint's address and the secret.
    secret: Option<(String, String)>,
    error: Option<String>,
    url: String,
    /// Each event: its name, what it means, whether it is ticked.
    events: Vec<(&'static str, &'static str, bool)>,
}

fn described(event: EventType) -> &'static str {
    match event {
        EventType::UserInvited => "Someone was invited",
        EventType::UserActivated => "Someone accepted their invitation or first signed in by SSO",
        EventType::UserDeactivated => {
            "Someone was deactivated (by an admin, the identity provider, or a withdrawn invitation)"
        }
        EventType::UserReactivated => "Someone was reactivated",
        EventType::UserRoleChanged => "Someone became or stopped being an admin",
        EventType::UserSessionsTerminated => "Someone's sessions were ended",
        EventType::UserErased => "Someone's personal data was erased",
        EventType::UserPasswordReset => "Someone reset their password",
        EventType::SsoSettingsChanged => "Single sign-on settings changed",
        EventType::ImportCompleted => "A bulk import finished",
        EventType::SigninThrottled => "Sign-in was paused after failed attempts",
    }
}

/// What a refusal shows: a sentence on the page, or a page of its own
/// (the step-up, a failure).
fn refused(error: WebhookError, viewer: &super::shell::Viewer) -> Result<String, Box<Response>> {
    match error {
        WebhookError::StepUp(e) => Err(Box::new(super::step_up::refused(viewer, e))),
        WebhookError::Unexpected(e) => Err(Box::new(internal(&e))),
        WebhookError::Forbidden => {
            Err(Box::new(super::message(StatusCode::FORBIDDEN, "Admins only", "", None)))
        }
        other => Ok(sentence(&other.to_string())),
    }
}

async fn show_page(
    state: &AppState,
    principal: &Principal,
    nav: Nav,
    secret: Option<(String, String)>,
    error: Option<String>,
    asked: (String, Vec<String>),
) -> Response {
    let endpoints = match state.service.webhooks.endpoints(principal).await {
        Ok(endpoints) => endpoints,
        Err(WebhookError::Unexpected(e)) => return internal(&e),
        Err(_) => return super::message(StatusCode::FORBIDDEN, "Admins only", "", None),
    };
    let rows = endpoints
        .iter()
        .map(|e| Row {
            id: e.id.to_string(),
            url: e.url.clone(),
            events: e.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "),
            enabled: e.disabled.is_none(),
            state: match &e.disabled {
                None => "Delivering".to_owned(),
                Some((at, why)) => format!("Stopped {}: {why}", when(Some(*at))),
            },
        })
        .collect();
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let (url, ticked) = asked;
    let template = WebhooksPage {
        nav,
        endpoints: rows,
        secret,
        error,
        url,
        events: EventType::ALL
            .into_iter()
            .map(|e| (e.as_str(), described(e), ticked.iter().any(|t| t == e.as_str())))
            .collect(),
    };
    page(status, &template)
}

fn fresh() -> (String, Vec<String>) {
    let access = [EventType::UserDeactivated, EventType::UserRoleChanged, EventType::UserErased];
    (String::new(), access.iter().map(|e| e.as_str().to_owned()).collect())
}

/// `GET /admin/settings/webhooks`.
#[handler]
pub(crate) async fn show(state: Data<&AppState>, req: &Request) -> Response {
    let (viewer, _) = match admin_viewer(&state, req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    show_page(&state, &viewer.principal, viewer.nav("settings"), None, None, fresh()).await
}

/// `POST /admin/settings/webhooks`: a new endpoint (behind the step-up),
/// its secret shown once.
#[handler]
pub(crate) async fn create(state: Data<&AppState>, req: &Request, body: String) -> Response {
    let fields: Vec<(String, String)> =
        url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let field = |name: &str| {
        fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    let (viewer, _) = match form_admin(&state, req, &field("csrf")).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let events: Vec<String> =
        fields.iter().filter(|(k, _)| k == "events").map(|(_, v)| v.clone()).take(20).collect();
    let url = field("url");
    let context = request_context(req);
    let nav = viewer.nav("settings");
    match state.service.webhooks.create(&viewer.principal, &url, &events, &context).await {
        Ok((endpoint, secret)) => {
            let made = Some((endpoint.url, secret.expose().to_owned()));
            show_page(&state, &viewer.principal, nav, made, None, fresh()).await
        }
        Err(error) => match refused(error, &viewer) {
            Ok(error) => {
                show_page(&state, &viewer.principal, nav, None, Some(error), (url, events)).await
            }
            Err(response) => *response,
        },
    }
}

/// `POST /admin/settings/webhooks/{id}/{action}`: `test`, and behind the
/// step-up `pause`, `resume`, `rotate`, `delete` (the [`super::step_up::StepUp`]
/// middleware around every action asks only when the use case does).
#[handler]
pub(crate) async fn act(
    state: Data<&AppState>,
    req: &Request,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let (viewer, _) = match form_admin(&state, req, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let hooks = &state.service.webhooks;
    let principal = &viewer.principal;
    let context = request_context(req);
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return super::message(StatusCode::NOT_FOUND, "No such endpoint", "", None);
    };
    let toggle = |enabled| EndpointChange { enabled: Some(enabled), ..EndpointChange::default() };
    let mut secret = None;
    let done = match action.as_str() {
        "test" => hooks
            .send_test(principal, id)
            .await
            .map(|_| "A test event is on its way; its outcome shows in the deliveries.".to_owned()),
        "pause" => hooks
            .update(principal, id, &toggle(false), &context)
            .await
            .map(|e| format!("{} is paused: events meanwhile are not sent to it.", e.url)),
        "resume" => hooks
            .update(principal, id, &toggle(true), &context)
            .await
            .map(|e| format!("{} receives events again.", e.url)),
        "rotate" => match hooks.rotate_secret(principal, id, &context).await {
            Ok(made) => {
                let url = hooks.endpoint(principal, id).await.map(|e| e.url).unwrap_or_default();
                secret = Some((url, made.expose().to_owned()));
                Ok("New secret made; the previous one also signs for 24 hours.".to_owned())
            }
            Err(e) => Err(e),
        },
        "delete" => hooks
            .delete(principal, id, &context)
            .await
            .map(|()| "The endpoint is deleted with its deliveries.".to_owned()),
        _ => Err(WebhookError::NotFound),
    };
    let mut nav = viewer.nav("settings");
    nav.notice = Some(match done {
        Ok(notice) => notice,
        Err(error) => match refused(error, &viewer) {
            Ok(error) => error,
            Err(response) => return *response,
        },
    });
    show_page(&state, principal, nav, secret, None, fresh()).await
}

struct DeliveryRow {
    id: String,
    event: String,
    created: String,
    state: String,
    attempts: u32,
    last: String,
    failed: bool,
}

#[derive(Template)]
#[template(path = "webhook_deliveries.html")]
struct DeliveriesPage {
    nav: Nav,
    id: String,
    url: String,
    failed_only: bool,
    deliveries: Vec<DeliveryRow>,
}

#[derive(serde::Deserialize)]
pub(crate) struct DeliveriesQuery {
    #[serde(default)]
    status: Option<String>,
}

async fn deliveries_page(
    state: &AppState,
    principal: &Principal,
    nav: Nav,
    id: &str,
    failed_only: bool,
) -> Response {
    let hooks = &state.service.webhooks;
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return super::message(StatusCode::NOT_FOUND, "No such endpoint", "", None);
    };
    let filter = failed_only.then_some(DeliveryState::Failed);
    let found = match hooks.endpoint(principal, id).await {
        Ok(endpoint) => hooks
            .deliveries(principal, id, filter, None, 100)
            .await
            .map(|deliveries| (endpoint, deliveries)),
        Err(e) => Err(e),
    };
    let (endpoint, deliveries) = match found {
        Ok(found) => found,
        Err(WebhookError::Unexpected(e)) => return internal(&e),
        Err(WebhookError::NotFound) => {
            return super::message(StatusCode::NOT_FOUND, "No such endpoint", "", None);
        }
        Err(_) => return super::message(StatusCode::FORBIDDEN, "Admins only", "", None),
    };
    let rows = deliveries
        .iter()
        .map(|d| DeliveryRow {
            id: d.id.to_string(),
            event: d.event_type.clone(),
            created: when(Some(d.created_at)),
            state: match d.state {
                DeliveryState::Delivered => format!("Delivered {}", when(d.delivered_at)),
                DeliveryState::Pending if d.attempts == 0 => "Waiting".to_owned(),
                DeliveryState::Pending => format!("Next try {}", when(Some(d.next_attempt_at))),
                DeliveryState::Failed => "Failed".to_owned(),
            },
            attempts: d.attempts,
            last: match (&d.last_status, &d.last_error) {
                (_, Some(error)) => error.clone(),
                (Some(status), None) => format!("HTTP {status}"),
                _ => String::new(),
            },
            failed: d.state == DeliveryState::Failed,
        })
        .collect();
    let template = DeliveriesPage {
        nav,
        id: id.to_string(),
        url: endpoint.url,
        failed_only,
        deliveries: rows,
    };
    page(StatusCode::OK, &template)
}

/// `GET /admin/settings/webhooks/{id}` (`?status=failed`).
#[handler]
pub(crate) async fn show_deliveries(
    state: Data<&AppState>,
    req: &Request,
    Path(id): Path<String>,
    Query(query): Query<DeliveriesQuery>,
) -> Response {
    let (viewer, _) = match admin_viewer(&state, req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let failed_only = query.status.as_deref() == Some("failed");
    deliveries_page(&state, &viewer.principal, viewer.nav("settings"), &id, failed_only).await
}

/// `POST /admin/settings/webhooks/{id}/deliveries/{delivery}/retry`.
#[handler]
pub(crate) async fn retry(
    state: Data<&AppState>,
    req: &Request,
    Path((id, delivery)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let (viewer, _) = match form_admin(&state, req, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let retried = match (id.parse::<uuid::Uuid>(), delivery.parse::<uuid::Uuid>()) {
        (Ok(endpoint), Ok(delivery)) => {
            let context = request_context(req);
            state.service.webhooks.retry(&viewer.principal, endpoint, delivery, &context).await
        }
        _ => Err(WebhookError::NotFound),
    };
    let mut nav = viewer.nav("settings");
    nav.notice = Some(match retried {
        Ok(()) => "Sent again now, with three more days of retries.".to_owned(),
        Err(error) => match refused(error, &viewer) {
            Ok(error) => error,
            Err(response) => return *response,
        },
    });
    deliveries_page(&state, &viewer.principal, nav, &id, false).await
}
