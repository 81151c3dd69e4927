//! `/invitations/accept`: the link in the invitation email.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{Request, Response, handler};
use secrecy::SecretString;
use secureai_domain::PlainToken;
use secureai_domain::invitations::errors::AcceptInvitationError;
use secureai_domain::invitations::models::InvitationStatus;
use secureai_domain::invitations::service::InvitationLookup;
use serde::Deserialize;

use super::{message, page};
use crate::AppState;
use crate::auth::request_context;
use crate::errors::ApiError;

#[derive(Deserialize)]
pub(crate) struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Template)]
#[template(path = "accept.html")]
struct AcceptPage<'a> {
    token: &'a str,
    name: &'a str,
    email: &'a str,
    expires_at: &'a str,
    error: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct AcceptForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

fn invalid() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "This invitation link is not valid",
        "It may have been used already, or replaced by a newer invitation. If you activated your \
         account, sign in; otherwise ask your administrator to re-send the invitation.",
        None,
    )
}

fn expired(at: &chrono::DateTime<chrono::Utc>) -> Response {
    message(
        StatusCode::GONE,
        "This invitation link has expired",
        &format!(
            "Invitation links work for 72 hours; this one expired on {}. Ask your administrator \
             to re-send the invitation: the new email will have a fresh link.",
            when(at)
        ),
        None,
    )
}

fn when(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%-d %B %Y at %H:%M UTC").to_string()
}

fn internal(error: &secureai_domain::StoreError) -> Response {
    let _ = ApiError::internal(error);
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The error was logged. Please try again in a moment.",
        None,
    )
}

async fn render_form(state: &AppState, token: &str, error: Option<String>) -> Response {
    match state.service.look_up_invitation(&PlainToken::presented(token.to_owned())).await {
        Ok(InvitationLookup::Pending { user, status }) => {
            let expires_at = match status {
                InvitationStatus::Pending { expires_at } => when(&expires_at),
                _ => String::new(),
            };
            let status_code =
                if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
            page(
                status_code,
                &AcceptPage {
                    token,
                    name: user.name.as_ref(),
                    email: user.email.as_str(),
                    expires_at: &expires_at,
                    error,
                },
            )
        }
        Ok(InvitationLookup::Expired(InvitationStatus::Expired { expired_at })) => {
            expired(&expired_at)
        }
        Ok(_) => invalid(),
        Err(error) => internal(&error),
    }
}

#[handler]
pub(crate) async fn show(Query(query): Query<TokenQuery>, state: Data<&AppState>) -> Response {
    render_form(&state, &query.token, None).await
}

#[handler]
pub(crate) async fn submit(
    Form(form): Form<AcceptForm>,
    state: Data<&AppState>,
    req: &Request,
) -> Response {
    if form.password != form.password_confirm {
        return render_form(
            &state,
            &form.token,
            Some("The two passwords are not the same.".into()),
        )
        .await;
    }
    let token = PlainToken::presented(form.token.clone());
    let outcome = state
        .service
        .accept_invitation(&token, SecretString::from(form.password.clone()), &request_context(req))
        .await;
    match outcome {
        Ok(user) => message(
            StatusCode::OK,
            "Your account is active",
            &format!("You can now sign in to SecureAI as {} with your new password.", user.email),
            None,
        ),
        Err(AcceptInvitationError::Invalid) => invalid(),
        Err(AcceptInvitationError::Expired { expired_at }) => expired(&expired_at),
        Err(AcceptInvitationError::WeakPassword(reason)) => {
            render_form(&state, &form.token, Some(reason.to_string())).await
        }
        Err(AcceptInvitationError::Unexpected(error)) => internal(&error),
    }
}
