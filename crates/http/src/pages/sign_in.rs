//! Signing in and out, and the start page that sends each person where
//! they belong.

use askama::Template;
use poem::http::{StatusCode, header};
use poem::web::{Data, Form};
use poem::{IntoResponse, Request, Response, handler};
use secrecy::SecretString;
use secureai_domain::sessions::errors::SignInError;
use serde::Deserialize;

use super::shell::{CsrfForm, Nav, form_viewer, see_other, sso_link, viewer};
use super::{internal, page};
use crate::AppState;
use crate::auth::request_context;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    error: Option<String>,
    email: String,
    sso: Option<&'static str>,
}

/// `GET /sign-in`.
#[handler]
pub(crate) async fn show_sign_in(state: Data<&AppState>) -> Response {
    page(
        StatusCode::OK,
        &SignInPage { error: None, email: String::new(), sso: sso_link(&state).await },
    )
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// `POST /sign-in`.
#[handler]
pub(crate) async fn submit_sign_in(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<SignInForm>,
) -> Response {
    let sso = sso_link(&state).await;
    if !state.same_origin(req) {
        let error = Some("This sign-in form was sent from another site. Reload the page.".into());
        return page(StatusCode::FORBIDDEN, &SignInPage { error, email: String::new(), sso });
    }
    let password = SecretString::from(form.password);
    match state.service.sessions.sign_in(&form.email, &password, &request_context(req)).await {
        Ok(signed_in) => see_other("/")
            .with_header(header::SET_COOKIE, state.session_cookie(&signed_in.token).to_string())
            .into_response(),
        Err(SignInError::Unexpected(e)) => internal(&e),
        Err(error) => {
            let status = match error {
                SignInError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
                SignInError::AccountDeactivated => StatusCode::FORBIDDEN,
                _ => StatusCode::UNAUTHORIZED,
            };
            let text = match error {
                SignInError::InvalidCredentials => {
                    "The email address or password is not correct.".to_owned()
                }
                SignInError::AccountDeactivated => {
                    "Your account has been deactivated. Contact your administrator if you need \
                     access again."
                        .to_owned()
                }
                SignInError::Throttled { retry_after_secs } => format!(
                    "Too many failed attempts. Wait {retry_after_secs} seconds, then try again."
                ),
                SignInError::Unexpected(_) => String::new(),
            };
            page(status, &SignInPage { error: Some(text), email: form.email, sso })
        }
    }
}

/// `POST /sign-out`.
#[handler]
pub(crate) async fn sign_out(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<CsrfForm>,
) -> Response {
    let viewer = match form_viewer(&state, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if let Err(e) = state.service.sessions.sign_out(&viewer.principal, &request_context(req)).await
    {
        return internal(&e);
    }
    see_other("/sign-in")
        .with_header(header::SET_COOKIE, state.cleared_session_cookie().to_string())
        .into_response()
}

/// `GET /`: admins to the Users page, others to a page saying who they are.
#[handler]
pub(crate) async fn home(state: Data<&AppState>, req: &Request) -> Response {
    let viewer = match viewer(&state, req).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if viewer.principal.user().is_active_admin() {
        return see_other("/admin/users");
    }
    #[derive(Template)]
    #[template(path = "start.html")]
    struct StartPage {
        nav: Nav,
        email: String,
    }
    let email = viewer.principal.user().email.to_string();
    page(StatusCode::OK, &StartPage { nav: viewer.nav("start"), email })
}
