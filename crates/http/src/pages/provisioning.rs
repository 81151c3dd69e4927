//! Settings › Provisioning: what to paste into the identity provider (the
//! SCIM base URL and a token that opens only SCIM), and the tokens it holds.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{Request, Response, handler};
use secureai_domain::analytics::models::TokenScope;
use serde::Deserialize;

use super::shell::{Nav, admin_viewer, form_admin, sentence, when};
use super::{internal, page};
use crate::AppState;
use crate::auth::request_context;

struct ProvisioningToken {
    name: String,
    created: String,
    last_used: String,
    revoked: Option<String>,
}

struct FailureRow {
    at: String,
    request: String,
    status: u16,
    detail: String,
    token: String,
}

struct GroupRow {
    id: String,
    name: String,
    members: usize,
    chosen: bool,
}

/// What the settings form says after a save.
#[derive(Default)]
struct SettingsOutcome {
    saved: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "provisioning.html")]
struct ProvisioningPage {
    groups: Vec<GroupRow>,
    failures: Vec<FailureRow>,
    /// When a provisioning token was last used, and which.
    last_request: Option<String>,
    send_access_email: bool,
    saved: Option<String>,
    settings_error: Option<String>,
    nav: Nav,
    /// The SCIM base URL ("Tenant URL" in Entra ID, "SCIM connector base
    /// URL" in Okta).
    base_url: String,
    tokens: Vec<ProvisioningToken>,
    /// A token just created: its name and secret, shown on this answer only.
    created: Option<(String, String)>,
    error: Option<String>,
}

async fn render(
    state: &AppState,
    nav: Nav,
    admin: &secureai_domain::access::Admin,
    created: Option<(String, String)>,
    error: Option<String>,
) -> Response {
    render_with(state, nav, admin, created, error, SettingsOutcome::default()).await
}

async fn render_with(
    state: &AppState,
    nav: Nav,
    admin: &secureai_domain::access::Admin,
    created: Option<(String, String)>,
    error: Option<String>,
    outcome: SettingsOutcome,
) -> Response {
    let provisioning = &state.service.provisioning;
    let (settings, groups) =
        match (provisioning.settings(admin).await, provisioning.groups_for_admin(admin).await) {
            (Ok(settings), Ok(groups)) => (settings, groups),
            (Err(e), _) | (_, Err(e)) => return internal(&e),
        };
    let failures = match provisioning.recent_failures(admin, 20).await {
        Ok(failures) => failures
            .into_iter()
            .map(|f| FailureRow {
                at: when(Some(f.at)),
                request: format!("{} {}", f.method, f.path),
                status: f.status,
                detail: f.detail,
                token: f.token,
            })
            .collect(),
        Err(e) => return internal(&e),
    };
    let mut groups: Vec<GroupRow> = groups
        .iter()
        .map(|g| GroupRow {
            id: g.id.to_string(),
            name: g.name.clone(),
            members: g.members.len(),
            chosen: settings.admin_group == Some(g.id),
        })
        .collect();
    // The admin group beyond the listed ones stays chosen when the form is
    // saved for the other setting.
    if let Some(id) = settings.admin_group.filter(|_| !groups.iter().any(|g| g.chosen)) {
        groups.push(GroupRow {
            id: id.to_string(),
            name: "the admin group chosen earlier".to_owned(),
            members: 0,
            chosen: true,
        });
    }
    let tokens = match state.service.service_tokens.service_tokens(admin).await {
        Ok(tokens) => tokens,
        Err(e) => return internal(&e),
    };
    let last_request = tokens
        .iter()
        .filter(|t| t.allows(TokenScope::Scim))
        .filter_map(|t| t.last_used_at.map(|at| (at, t.name.clone())))
        .max()
        .map(|(at, name)| format!("{} with the token “{name}”", when(Some(at))));
    let tokens = tokens
        .iter()
        .filter(|t| t.allows(TokenScope::Scim))
        .map(|t| ProvisioningToken {
            name: t.name.clone(),
            created: when(Some(t.created_at)),
            last_used: t.last_used_at.map_or_else(|| "never".to_owned(), |at| when(Some(at))),
            revoked: t.revoked_at.map(|at| when(Some(at))),
        })
        .collect();
    let failed = error.is_some() || outcome.error.is_some();
    let status = if failed { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let template = ProvisioningPage {
        groups,
        failures,
        last_request,
        send_access_email: settings.send_access_email,
        saved: outcome.saved,
        settings_error: outcome.error,
        nav,
        base_url: format!("{}/scim/v2", state.public_url),
        tokens,
        created,
        error,
    };
    page(status, &template)
}

/// `GET /admin/settings/provisioning`.
#[handler]
pub(crate) async fn show(state: Data<&AppState>, req: &Request) -> Response {
    let (viewer, admin) = match admin_viewer(&state, req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    render(&state, viewer.nav("settings"), &admin, None, None).await
}

#[derive(Deserialize)]
pub(crate) struct NewTokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// `POST /admin/settings/provisioning`: a token that opens only SCIM.
#[handler]
pub(crate) async fn create_token(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<NewTokenForm>,
) -> Response {
    let (viewer, admin) = match form_admin(&state, req, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let scopes = [TokenScope::Scim.as_str().to_owned()];
    let context = request_context(req);
    let tokens = &state.service.service_tokens;
    match tokens.create_service_token(&admin, &form.name, Some(&scopes), &context).await {
        Ok(issued) => {
            let created = (issued.token.name.clone(), issued.secret.expose().to_owned());
            render(&state, viewer.nav("settings"), &admin, Some(created), None).await
        }
        Err(secureai_domain::analytics::errors::ServiceTokenError::Unexpected(e)) => internal(&e),
        Err(secureai_domain::analytics::errors::ServiceTokenError::StepUp(e)) => {
            super::step_up::refused(&viewer, e)
        }
        Err(error) => {
            let error = Some(sentence(&error.to_string()));
            render(&state, viewer.nav("settings"), &admin, None, error).await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct SettingsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    admin_group: String,
    #[serde(default)]
    send_access_email: Option<String>,
}

/// `POST /admin/settings/provisioning/settings`: the admin group and the
/// access-ready email.
#[handler]
pub(crate) async fn save_settings(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<SettingsForm>,
) -> Response {
    let (viewer, admin) = match form_admin(&state, req, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let admin_group = match form.admin_group.trim() {
        "" => None,
        id => match uuid::Uuid::parse_str(id) {
            Ok(id) => Some(id),
            Err(_) => {
                let outcome = SettingsOutcome {
                    error: Some("Choose a group from the list.".to_owned()),
                    ..SettingsOutcome::default()
                };
                return render_with(&state, viewer.nav("settings"), &admin, None, None, outcome)
                    .await;
            }
        },
    };
    let settings = secureai_domain::provisioning::models::ProvisioningSettings {
        admin_group,
        send_access_email: form.send_access_email.is_some(),
    };
    let context = request_context(req);
    let outcome = match state.service.provisioning.set_settings(&admin, &settings, &context).await {
        Ok(_) => SettingsOutcome { saved: Some("Saved.".to_owned()), error: None },
        Err(secureai_domain::provisioning::service::ProvisioningError::Unexpected(e)) => {
            return internal(&e);
        }
        Err(secureai_domain::provisioning::service::ProvisioningError::StepUp(e)) => {
            return super::step_up::refused(&viewer, e);
        }
        Err(e) => SettingsOutcome { saved: None, error: Some(sentence(&e.to_string())) },
    };
    render_with(&state, viewer.nav("settings"), &admin, None, None, outcome).await
}
