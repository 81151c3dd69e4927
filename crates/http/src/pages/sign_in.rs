//! Signing in and out, and the start page that sends each person where
//! they belong.

use askama::Template;
use poem::http::{StatusCode, header};
use poem::web::{Data, Form};
use poem::{IntoResponse, Request, Response, handler};
use secrecy::SecretString;
use secureai_domain::mfa::models::MfaMethod;
use secureai_domain::secrets::PlainToken;
use secureai_domain::sessions::errors::{SecondFactorError, SignInError};
use serde::Deserialize;

use super::shell::{CsrfForm, Nav, enrolling_form_viewer, see_other, sso_link, viewer};
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
        Err(SignInError::SecondFactorRequired(needed)) => page(
            StatusCode::OK,
            &CodePage {
                error: None,
                mfa_token: needed.token.expose().to_owned(),
                method: "totp".to_owned(),
                recovery: needed.methods.contains(&MfaMethod::RecoveryCode),
            },
        ),
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
                SignInError::Unexpected(_) | SignInError::SecondFactorRequired(_) => String::new(),
            };
            page(status, &SignInPage { error: Some(text), email: form.email, sso })
        }
    }
}

#[derive(Template)]
#[template(path = "sign_in_code.html")]
struct CodePage {
    error: Option<String>,
    mfa_token: String,
    method: String,
    /// Recovery codes are left.
    recovery: bool,
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    mfa_token: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    code: String,
}

/// `POST /sign-in/code`: the second step of a password sign-in.
#[handler]
pub(crate) async fn submit_code(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<CodeForm>,
) -> Response {
    let sso = sso_link(&state).await;
    let start_again = |status, text: &str| {
        let error = Some(text.to_owned());
        page(status, &SignInPage { error, email: String::new(), sso })
    };
    if !state.same_origin(req) {
        return start_again(
            StatusCode::FORBIDDEN,
            "This sign-in form was sent from another site. Reload the page.",
        );
    }
    let method =
        if form.method == "recovery_code" { MfaMethod::RecoveryCode } else { MfaMethod::Totp };
    let token = PlainToken::presented(form.mfa_token.clone());
    let again = |status, error: String| {
        page(
            status,
            &CodePage {
                error: Some(error),
                mfa_token: form.mfa_token.clone(),
                method: method.as_str().to_owned(),
                recovery: true,
            },
        )
    };
    match state
        .service
        .sessions
        .complete_sign_in(&token, method, &form.code, &request_context(req))
        .await
    {
        Ok(signed_in) => see_other("/")
            .with_header(header::SET_COOKIE, state.session_cookie(&signed_in.token).to_string())
            .into_response(),
        Err(SecondFactorError::WrongCode) => again(
            StatusCode::UNPROCESSABLE_ENTITY,
            "That code is not right, or was used already. Enter the code your app shows now."
                .to_owned(),
        ),
        Err(SecondFactorError::Throttled { retry_after_secs }) => again(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Too many wrong codes. Wait {retry_after_secs} seconds, then try again."),
        ),
        Err(SecondFactorError::Expired) => start_again(
            StatusCode::UNAUTHORIZED,
            "This sign-in expired (it works for five minutes). Sign in again with your password.",
        ),
        Err(SecondFactorError::Unexpected(e)) => internal(&e),
    }
}

/// `POST /sign-out`.
#[handler]
pub(crate) async fn sign_out(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<CsrfForm>,
) -> Response {
    let viewer = match enrolling_form_viewer(&state, req, &form.csrf).await {
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
