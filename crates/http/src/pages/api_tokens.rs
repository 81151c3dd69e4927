//! Settings › API tokens: every admin's personal API tokens (owner,
//! scopes, expiry, last use) with Revoke, and a form making one for the
//! signed-in admin (its secret shown once). Handlers translate forms into
//! [`secureai_domain::api_tokens::service::ApiTokenService`] calls.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response, handler};
use secureai_domain::access::{ApiScope, Principal};
use secureai_domain::api_tokens::errors::ApiTokenError;
use secureai_domain::api_tokens::models::{ApiTokenStatus, NewApiToken};

use super::shell::{CsrfForm, Nav, admin_viewer, form_admin, sentence, when};
use super::{internal, page};
use crate::AppState;
use crate::auth::request_context;

struct Row {
    id: String,
    name: String,
    owner: String,
    scopes: String,
    expires: String,
    last_used: String,
    active: bool,
    state: String,
}

#[derive(Template)]
#[template(path = "api_tokens.html")]
struct ApiTokensPage {
    nav: Nav,
    tokens: Vec<Row>,
    created: Option<(String, String)>,
    error: Option<String>,
    name: String,
    days: String,
    /// Each scope: its name, what it opens, whether it is ticked.
    scopes: Vec<(&'static str, &'static str, bool)>,
}

fn described(scope: ApiScope) -> &'static str {
    match scope {
        ApiScope::UsersRead => "Read users",
        ApiScope::UsersWrite => "Invite, change and import users",
        ApiScope::AuditRead => "Read the audit log",
        ApiScope::AnalyticsRead => "Read usage analytics",
        ApiScope::SettingsWrite => "Change settings",
    }
}

/// What the form held, shown again after a refusal.
struct Asked {
    name: String,
    days: String,
    scopes: Vec<String>,
}

async fn show_page(
    state: &AppState,
    principal: &Principal,
    nav: Nav,
    created: Option<(String, String)>,
    error: Option<String>,
    asked: Asked,
) -> Response {
    let tokens = match state.service.api_tokens.all_tokens(principal).await {
        Ok(tokens) => tokens,
        Err(ApiTokenError::Unexpected(e)) => return internal(&e),
        Err(_) => return super::message(StatusCode::FORBIDDEN, "Admins only", "", None),
    };
    let rows = tokens
        .iter()
        .map(|t| Row {
            id: t.token.id.to_string(),
            name: t.token.name.clone(),
            owner: t.owner_email.clone().unwrap_or_else(|| "(erased user)".to_owned()),
            scopes: t.token.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            expires: when(Some(t.token.expires_at)),
            last_used: match (&t.token.last_used_at, &t.token.last_used_ip) {
                (Some(at), Some(ip)) => format!("{} from {ip}", when(Some(*at))),
                (Some(at), None) => when(Some(*at)),
                _ => "never".to_owned(),
            },
            active: t.status == ApiTokenStatus::Active,
            state: match t.status {
                ApiTokenStatus::Active => "Active".to_owned(),
                ApiTokenStatus::Expired => "Expired".to_owned(),
                ApiTokenStatus::Revoked => format!("Revoked {}", when(t.token.revoked_at)),
                ApiTokenStatus::Disabled => "Disabled: its owner is no longer an admin".to_owned(),
            },
        })
        .collect();
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let template = ApiTokensPage {
        nav,
        tokens: rows,
        created,
        error,
        name: asked.name,
        days: asked.days,
        scopes: ApiScope::ALL
            .into_iter()
            .map(|s| (s.as_str(), described(s), asked.scopes.iter().any(|a| a == s.as_str())))
            .collect(),
    };
    page(status, &template)
}

fn fresh() -> Asked {
    Asked { name: String::new(), days: "90".to_owned(), scopes: vec!["users:read".to_owned()] }
}

/// `GET /admin/settings/api-tokens`.
#[handler]
pub(crate) async fn show(state: Data<&AppState>, req: &Request) -> Response {
    let (viewer, _) = match admin_viewer(&state, req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    show_page(&state, &viewer.principal, viewer.nav("settings"), None, None, fresh()).await
}

/// `POST /admin/settings/api-tokens`: a new token for the signed-in admin
/// (behind the step-up), its secret shown once.
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
    let scopes: Vec<String> =
        fields.iter().filter(|(k, _)| k == "scopes").map(|(_, v)| v.clone()).take(20).collect();
    let days = field("expires_in_days");
    let asked = Asked { name: field("name"), days: days.clone(), scopes: scopes.clone() };
    let Ok(days) = days.trim().parse::<u32>() else {
        let error = Some(sentence(&ApiTokenError::InvalidLifetime.to_string()));
        return show_page(&state, &viewer.principal, viewer.nav("settings"), None, error, asked)
            .await;
    };
    let new = NewApiToken { name: asked.name.clone(), expires_in_days: Some(days), scopes };
    let context = request_context(req);
    match state.service.api_tokens.create(&viewer.principal, &new, &context).await {
        Ok(issued) => {
            let created = Some((issued.token.name.clone(), issued.secret.expose().to_owned()));
            let nav = viewer.nav("settings");
            show_page(&state, &viewer.principal, nav, created, None, fresh()).await
        }
        Err(ApiTokenError::StepUp(e)) => super::step_up::refused(&viewer, e),
        Err(ApiTokenError::Unexpected(e)) => internal(&e),
        Err(other) => {
            let error = Some(sentence(&other.to_string()));
            show_page(&state, &viewer.principal, viewer.nav("settings"), None, error, asked).await
        }
    }
}

/// `POST /admin/settings/api-tokens/{id}/revoke`.
#[handler]
pub(crate) async fn revoke(
    state: Data<&AppState>,
    req: &Request,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let (viewer, _) = match form_admin(&state, req, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let mut nav = viewer.nav("settings");
    let revoked = match id.parse() {
        Ok(id) => {
            state.service.api_tokens.revoke(&viewer.principal, id, &request_context(req)).await
        }
        Err(_) => Err(ApiTokenError::NotFound),
    };
    nav.notice = Some(match revoked {
        Ok(token) => format!("“{}” is revoked: it opens nothing from now on.", token.name),
        Err(ApiTokenError::Unexpected(e)) => return internal(&e),
        Err(other) => sentence(&other.to_string()),
    });
    show_page(&state, &viewer.principal, nav, None, None, fresh()).await
}
