//! My profile (`/me`): change one's name and password, sign out
//! everywhere. Handlers translate forms into use-case calls.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{IntoResponse, Request, Response, handler};
use secrecy::SecretString;
use secureai_domain::SignInMethod;
use secureai_domain::resets::errors::ChangePasswordError;
use serde::Deserialize;

use super::shell::{CsrfForm, Nav, Viewer, form_viewer, see_other, sentence, viewer};
use super::{internal, page};
use crate::AppState;
use crate::auth::request_context;

#[derive(Deserialize, Default)]
pub(crate) struct DoneQuery {
    #[serde(default)]
    pub(super) done: Option<String>,
}

// ---------------------------------------------------------------- my profile

#[derive(Template)]
#[template(path = "me.html")]
struct MePage {
    nav: Nav,
    error: Option<String>,
    name: String,
    email: String,
    role: &'static str,
    sso: bool,
    mfa_on: bool,
    totp: bool,
    passkeys: u32,
    recovery_codes_left: u32,
}

async fn me_page(
    state: &AppState,
    viewer: &Viewer,
    done: Option<&str>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let mut nav = viewer.nav("me");
    nav.notice = done.and_then(|d| match d {
        "name" => Some("Your name is saved.".to_owned()),
        "password" => Some("Your password is changed; your other sessions have ended.".to_owned()),
        _ => None,
    });
    let user = viewer.principal.user();
    let mfa = match state.service.mfa.status(user).await {
        Ok(mfa) => mfa,
        Err(e) => return internal(&e),
    };
    let template = MePage {
        nav,
        error,
        name: user.name.to_string(),
        email: user.email.to_string(),
        role: user.role.as_str(),
        sso: user.sign_in == SignInMethod::Sso,
        mfa_on: mfa.enrolled(),
        totp: mfa.totp,
        passkeys: mfa.passkeys,
        recovery_codes_left: mfa.recovery_codes_left,
    };
    page(status, &template)
}

/// `GET /me`.
#[handler]
pub(crate) async fn me(
    state: Data<&AppState>,
    req: &Request,
    Query(q): Query<DoneQuery>,
) -> Response {
    match viewer(&state, req).await {
        Ok(viewer) => me_page(&state, &viewer, q.done.as_deref(), None, StatusCode::OK).await,
        Err(response) => response,
    }
}

#[derive(Deserialize)]
pub(crate) struct NameForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// `POST /me/name`.
#[handler]
pub(crate) async fn save_name(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<NameForm>,
) -> Response {
    let viewer = match form_viewer(&state, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    use secureai_domain::users::errors::UpdateUserError;
    match state
        .service
        .users
        .update_own_name(&viewer.principal, &form.name, &request_context(req))
        .await
    {
        Ok(_) => see_other("/me?done=name"),
        Err(UpdateUserError::Unexpected(e)) => internal(&e),
        Err(error) => {
            let error = Some(sentence(&error.to_string()));
            me_page(&state, &viewer, None, error, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    new_password_confirm: String,
}

/// `POST /me/password`.
#[handler]
pub(crate) async fn change_password(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<PasswordForm>,
) -> Response {
    let viewer = match form_viewer(&state, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if form.new_password != form.new_password_confirm {
        let error = Some("The two new passwords differ; type the same one twice.".to_owned());
        return me_page(&state, &viewer, None, error, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let current = SecretString::from(form.current_password);
    let new = SecretString::from(form.new_password);
    match state
        .service
        .passwords
        .change_own_password(&viewer.principal, &current, new, &request_context(req))
        .await
    {
        Ok(()) => see_other("/me?done=password"),
        Err(ChangePasswordError::Unexpected(e)) => internal(&e),
        Err(error) => {
            let error = Some(sentence(&error.to_string()));
            me_page(&state, &viewer, None, error, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

/// `POST /me/sessions`: sign out everywhere, this browser included.
#[handler]
pub(crate) async fn sign_out_everywhere(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<CsrfForm>,
) -> Response {
    let viewer = match form_viewer(&state, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if let Err(e) =
        state.service.sessions.sign_out_everywhere(&viewer.principal, &request_context(req)).await
    {
        return internal(&e);
    }
    see_other("/sign-in")
        .with_header(poem::http::header::SET_COOKIE, state.cleared_session_cookie().to_string())
        .into_response()
}

// ---------------------------------------------------------------- settings
