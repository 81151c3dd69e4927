//! Settings › Security (`/admin/settings/security`): who must have a
//! second factor. The handlers translate the form into
//! [`secureai_domain::mfa::service::MfaService::set_security_policy`].

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{Request, Response, handler};
use secureai_domain::access::Admin;
use secureai_domain::mfa::policy::{AdminMfa, SecurityPolicy, UserMfa};
use serde::Deserialize;

use super::account::DoneQuery;
use super::shell::{Nav, Viewer, admin_viewer, form_admin, see_other};
use super::{internal, page};
use crate::AppState;
use crate::auth::request_context;

#[derive(Template)]
#[template(path = "security_settings.html")]
struct SecurityPage {
    nav: Nav,
    error: Option<String>,
    admin_mfa: &'static str,
    user_mfa: &'static str,
}

/// Settings › Security in a few words, for the Settings page.
pub(crate) fn summary(policy: SecurityPolicy) -> String {
    let admins = match policy.admin_mfa {
        AdminMfa::Required => "required for admins",
        AdminMfa::Optional => "optional for admins",
    };
    let users = match policy.user_mfa {
        UserMfa::Off => "not offered to users",
        UserMfa::Optional => "optional for users",
        UserMfa::Required => "required for users",
    };
    format!("{admins}, {users}")
}

async fn security_page(
    state: &AppState,
    viewer: &Viewer,
    _admin: &Admin,
    done: bool,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let policy = match state.service.mfa.security_policy().await {
        Ok(policy) => policy,
        Err(e) => return internal(&e),
    };
    let mut nav = viewer.nav("settings");
    if done {
        nav.notice =
            Some("Saved. A requirement applies at each person's next password sign-in.".to_owned());
    }
    let template = SecurityPage {
        nav,
        error,
        admin_mfa: policy.admin_mfa.as_str(),
        user_mfa: policy.user_mfa.as_str(),
    };
    page(status, &template)
}

/// `GET /admin/settings/security`.
#[handler]
pub(crate) async fn show(
    state: Data<&AppState>,
    req: &Request,
    Query(q): Query<DoneQuery>,
) -> Response {
    match admin_viewer(&state, req).await {
        Ok((viewer, admin)) => {
            let done = q.done.as_deref() == Some("security");
            security_page(&state, &viewer, &admin, done, None, StatusCode::OK).await
        }
        Err(response) => response,
    }
}

#[derive(Deserialize)]
pub(crate) struct SecurityForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    admin_mfa: String,
    #[serde(default)]
    user_mfa: String,
}

/// `POST /admin/settings/security`.
#[handler]
pub(crate) async fn save(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<SecurityForm>,
) -> Response {
    let (viewer, admin) = match form_admin(&state, req, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (Some(admin_mfa), Some(user_mfa)) =
        (AdminMfa::parse(&form.admin_mfa), UserMfa::parse(&form.user_mfa))
    else {
        let error = Some("Choose one of the listed options for admins and for users.".to_owned());
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        return security_page(&state, &viewer, &admin, false, error, status).await;
    };
    let policy = SecurityPolicy { admin_mfa, user_mfa };
    match state.service.mfa.set_security_policy(&admin, policy, &request_context(req)).await {
        Ok(_) => see_other("/admin/settings/security?done=security"),
        Err(e) => super::step_up::refused(&viewer, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_page_sums_the_policy_up() {
        assert_eq!(summary(SecurityPolicy::default()), "required for admins, not offered to users");
        let open = SecurityPolicy { admin_mfa: AdminMfa::Optional, user_mfa: UserMfa::Required };
        assert_eq!(summary(open), "optional for admins, required for users");
    }
}
