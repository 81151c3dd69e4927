//! `/setup`: the one-time link that creates the first admin.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{Request, Response, handler};
use secrecy::SecretString;
use secureai_domain::PlainToken;
use secureai_domain::setup::errors::SetupError;
use serde::Deserialize;

use super::{internal, message, page};
use crate::AppState;
use crate::auth::request_context;

#[derive(Deserialize)]
pub(crate) struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage<'a> {
    token: &'a str,
    email: &'a str,
    name: &'a str,
    error: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct SetupForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

fn invalid_link() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "This setup link is not valid",
        "It may have been used already, or the service restarted and printed a new one. If an \
         administrator exists, sign in instead; otherwise use the link printed at the latest start.",
        None,
    )
}

#[handler]
pub(crate) async fn show(Query(query): Query<TokenQuery>, state: Data<&AppState>) -> Response {
    let token = PlainToken::presented(query.token.clone());
    match state.service.setup.setup_link_valid(&token).await {
        Ok(true) => page(
            StatusCode::OK,
            &SetupPage { token: &query.token, email: "", name: "", error: None },
        ),
        Ok(false) => invalid_link(),
        Err(error) => internal(&error),
    }
}

#[handler]
pub(crate) async fn submit(
    Form(form): Form<SetupForm>,
    state: Data<&AppState>,
    req: &Request,
) -> Response {
    let again = |error: String| {
        page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &SetupPage {
                token: &form.token,
                email: &form.email,
                name: &form.name,
                error: Some(error),
            },
        )
    };
    if form.password != form.password_confirm {
        return again("The two passwords are not the same.".to_owned());
    }
    let token = PlainToken::presented(form.token.clone());
    let outcome = state
        .service
        .setup
        .complete_setup(
            &token,
            &form.email,
            &form.name,
            SecretString::from(form.password.clone()),
            &request_context(req),
        )
        .await;
    match outcome {
        Ok(admin) => {
            let second_factor = match state.service.mfa.security_policy().await {
                Ok(policy) if policy.requires(&admin) => {
                    " Right after signing in you set up a second factor — a passkey (this \
                     computer, a phone or a security key) or an authenticator app — as every \
                     admin needs one."
                }
                Ok(_) => "",
                Err(error) => return internal(&error),
            };
            message(
                StatusCode::OK,
                "Your admin account is ready",
                &format!(
                    "{} can now sign in with {} and this password, and invite users.{second_factor}",
                    admin.name, admin.email
                ),
                Some(("/sign-in", "Sign in")),
            )
        }
        Err(SetupError::InvalidLink | SetupError::AlreadyComplete) => invalid_link(),
        Err(
            error @ (SetupError::Invalid(_) | SetupError::WeakPassword(_) | SetupError::EmailTaken),
        ) => again(error.to_string()),
        Err(SetupError::Unexpected(error)) => internal(&error),
    }
}
