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
        Err(SignInError::SecondFactorRequired(needed)) => {
            let offered = Offered::of(&needed.methods);
            let method = if offered.totp { MfaMethod::Totp } else { MfaMethod::RecoveryCode };
            let token = needed.token.expose().to_owned();
            page(StatusCode::OK, &offered.page(token, method, needed.webauthn, None))
        }
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
    /// The factors offered, carried from form to form (`totp,recovery_code`).
    methods: String,
    /// An authenticator app is set up.
    totp: bool,
    /// Recovery codes are left.
    recovery: bool,
    /// The challenge for the user's passkeys (options JSON), while it waits.
    webauthn: Option<String>,
}

/// The codes the second step offers. Only what the page shows: the domain
/// checks whatever is sent against what the user has.
struct Offered {
    totp: bool,
    recovery: bool,
}

impl Offered {
    fn of(methods: &[MfaMethod]) -> Self {
        Self {
            totp: methods.contains(&MfaMethod::Totp),
            recovery: methods.contains(&MfaMethod::RecoveryCode),
        }
    }

    /// From the form's `methods` field (`none` when neither); both when
    /// it is missing.
    fn parse(text: &str) -> Self {
        if text.is_empty() {
            return Self { totp: true, recovery: true };
        }
        let methods: Vec<&str> = text.split(',').collect();
        Self { totp: methods.contains(&"totp"), recovery: methods.contains(&"recovery_code") }
    }

    fn page(
        &self,
        mfa_token: String,
        method: MfaMethod,
        webauthn: Option<String>,
        error: Option<String>,
    ) -> CodePage {
        let mut methods = Vec::new();
        if self.totp {
            methods.push("totp");
        }
        if self.recovery {
            methods.push("recovery_code");
        }
        if methods.is_empty() {
            methods.push("none");
        }
        CodePage {
            error,
            mfa_token,
            method: method.as_str().to_owned(),
            methods: methods.join(","),
            totp: self.totp,
            recovery: self.recovery,
            webauthn,
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    mfa_token: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    methods: String,
    #[serde(default)]
    code: String,
    /// A passkey's answer (JSON), with `method` `webauthn`.
    #[serde(default)]
    credential: String,
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
    let method = match form.method.as_str() {
        "recovery_code" => MfaMethod::RecoveryCode,
        "webauthn" => MfaMethod::Webauthn,
        _ => MfaMethod::Totp,
    };
    let answer = if method == MfaMethod::Webauthn { &form.credential } else { &form.code };
    let token = PlainToken::presented(form.mfa_token.clone());
    let offered = Offered::parse(&form.methods);
    // A passkey's challenge is answered once: after a refused answer the
    // page offers the codes (a new sign-in brings a new challenge).
    let again = |status, error: String| {
        let shown = if method == MfaMethod::Webauthn { MfaMethod::Totp } else { method };
        let template = offered.page(form.mfa_token.clone(), shown, None, Some(error));
        page(status, &template)
    };
    match state
        .service
        .sessions
        .complete_sign_in(&token, method, answer, &request_context(req))
        .await
    {
        Ok(signed_in) => see_other("/")
            .with_header(header::SET_COOKIE, state.session_cookie(&signed_in.token).to_string())
            .into_response(),
        Err(SecondFactorError::WrongCode) if method == MfaMethod::Webauthn => again(
            StatusCode::UNPROCESSABLE_ENTITY,
            "That passkey was not accepted: it is not registered to your account (removed, or \
             another account's). Enter a code, or start again to use another passkey."
                .to_owned(),
        ),
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
