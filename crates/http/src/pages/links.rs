//! The two pages behind emailed links that set a password:
//! `/invitations/accept` (activate the account) and
//! `/password-resets/complete` (choose a new password). They differ only in
//! wording and in the use case they call.

use askama::Template;
use chrono::{DateTime, Utc};
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{Request, Response, handler};
use secrecy::SecretString;
use secureai_domain::PlainToken;
use secureai_domain::invitations::errors::AcceptInvitationError;
use secureai_domain::invitations::models::InvitationStatus;
use secureai_domain::invitations::service::InvitationLookup;
use secureai_domain::resets::errors::CompleteResetError;
use secureai_domain::resets::service::ResetLookup;
use secureai_domain::{StoreError, User};
use serde::Deserialize;

use super::{internal, message, page};
use crate::AppState;
use crate::auth::request_context;

#[derive(Deserialize)]
pub(crate) struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
pub(crate) struct PasswordForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

#[derive(Template)]
#[template(path = "set_password.html")]
struct SetPasswordPage<'a> {
    heading: &'a str,
    intro: &'a str,
    action: &'a str,
    button: &'a str,
    token: &'a str,
    error: Option<String>,
}

/// The wording and use case of one kind of link.
#[derive(Clone, Copy)]
enum Link {
    Invitation,
    Reset,
}

/// What a link means now, whatever its kind.
enum Lookup {
    Pending(User, DateTime<Utc>),
    Expired(DateTime<Utc>),
    Invalid,
}

/// The outcome of using a link, whatever its kind.
enum Outcome {
    Done(User),
    Invalid,
    Expired(DateTime<Utc>),
    Weak(String),
    Failed(StoreError),
}

fn when(at: &DateTime<Utc>) -> String {
    at.format("%-d %B %Y at %H:%M UTC").to_string()
}

impl Link {
    fn action(self) -> &'static str {
        match self {
            Self::Invitation => "/invitations/accept",
            Self::Reset => "/password-resets/complete",
        }
    }

    async fn look_up(self, state: &AppState, token: &PlainToken) -> Result<Lookup, StoreError> {
        let pending = |user, status| match status {
            InvitationStatus::Pending { expires_at } => Lookup::Pending(user, expires_at),
            _ => Lookup::Invalid,
        };
        let expired = |status| match status {
            InvitationStatus::Expired { expired_at } => Lookup::Expired(expired_at),
            _ => Lookup::Invalid,
        };
        Ok(match self {
            Self::Invitation => match state.service.invitations.look_up_invitation(token).await? {
                InvitationLookup::Pending { user, status } => pending(user, status),
                InvitationLookup::Expired(status) => expired(status),
                InvitationLookup::Invalid => Lookup::Invalid,
            },
            Self::Reset => match state.service.passwords.look_up_reset(token).await? {
                ResetLookup::Pending { user, status } => pending(user, status),
                ResetLookup::Expired(status) => expired(status),
                ResetLookup::Invalid => Lookup::Invalid,
            },
        })
    }

    async fn use_link(
        self,
        state: &AppState,
        token: &PlainToken,
        password: SecretString,
        req: &Request,
    ) -> Outcome {
        let context = request_context(req);
        match self {
            Self::Invitation => {
                match state.service.invitations.accept_invitation(token, password, &context).await {
                    Ok(user) => Outcome::Done(user),
                    Err(AcceptInvitationError::Invalid) => Outcome::Invalid,
                    Err(AcceptInvitationError::Expired { expired_at }) => {
                        Outcome::Expired(expired_at)
                    }
                    Err(AcceptInvitationError::WeakPassword(e)) => Outcome::Weak(e.to_string()),
                    Err(AcceptInvitationError::Unexpected(e)) => Outcome::Failed(e),
                }
            }
            Self::Reset => {
                match state
                    .service
                    .passwords
                    .complete_password_reset(token, password, &context)
                    .await
                {
                    Ok(user) => Outcome::Done(user),
                    Err(CompleteResetError::Invalid) => Outcome::Invalid,
                    Err(CompleteResetError::Expired { expired_at }) => Outcome::Expired(expired_at),
                    Err(CompleteResetError::WeakPassword(e)) => Outcome::Weak(e.to_string()),
                    Err(CompleteResetError::Unexpected(e)) => Outcome::Failed(e),
                }
            }
        }
    }

    fn form(
        self,
        token: &str,
        user: &User,
        expires_at: &DateTime<Utc>,
        error: Option<String>,
    ) -> Response {
        let (heading, intro, button) = match self {
            Self::Invitation => (
                "Activate your account",
                format!(
                    "Welcome, {}. Choose a password for {}. This link expires on {}.",
                    user.name,
                    user.email,
                    when(expires_at)
                ),
                "Activate account",
            ),
            Self::Reset => (
                "Choose a new password",
                format!(
                    "Choose a new password for {}. This link expires on {}. Your current password \
                     works until you do; afterwards you are signed out everywhere.",
                    user.email,
                    when(expires_at)
                ),
                "Set new password",
            ),
        };
        let status =
            if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
        page(
            status,
            &SetPasswordPage {
                heading,
                intro: &intro,
                action: self.action(),
                button,
                token,
                error,
            },
        )
    }

    fn invalid(self) -> Response {
        let (heading, text) = match self {
            Self::Invitation => (
                "This invitation link is not valid",
                "It may have been used already, or replaced by a newer invitation. If you activated \
                 your account, sign in; otherwise ask your administrator to re-send the invitation.",
            ),
            Self::Reset => (
                "This password reset link is not valid",
                "It may have been used already, or replaced by a newer one. Ask your administrator \
                 for a new password reset if you still need one.",
            ),
        };
        message(StatusCode::NOT_FOUND, heading, text, None)
    }

    fn expired(self, state: &AppState, at: &DateTime<Utc>) -> Response {
        let valid_for =
            secureai_domain::dates::lifetime_in_words(state.service.policy().invitation_ttl);
        let (heading, text) = match self {
            Self::Invitation => (
                "This invitation link has expired",
                format!(
                    "Invitation links work for {valid_for}; this one expired on {}. Ask your \
                     administrator to re-send the invitation: the new email will have a fresh link.",
                    when(at)
                ),
            ),
            Self::Reset => (
                "This password reset link has expired",
                format!(
                    "Password reset links work for {valid_for}; this one expired on {}. Ask your \
                     administrator for a new password reset.",
                    when(at)
                ),
            ),
        };
        message(StatusCode::GONE, heading, &text, None)
    }

    fn done(self, user: &User) -> Response {
        let (heading, text) = match self {
            Self::Invitation => (
                "Your account is active",
                format!(
                    "You can now sign in to SecureAI as {} with your new password.",
                    user.email
                ),
            ),
            Self::Reset => (
                "Your password is changed",
                format!(
                    "You were signed out everywhere. Sign in to SecureAI as {} with your new password.",
                    user.email
                ),
            ),
        };
        message(StatusCode::OK, heading, &text, None)
    }

    async fn show(self, state: &AppState, token: &str, error: Option<String>) -> Response {
        match self.look_up(state, &PlainToken::presented(token.to_owned())).await {
            Ok(Lookup::Pending(user, expires_at)) => self.form(token, &user, &expires_at, error),
            Ok(Lookup::Expired(at)) => self.expired(state, &at),
            Ok(Lookup::Invalid) => self.invalid(),
            Err(error) => internal(&error),
        }
    }

    async fn submit(self, state: &AppState, form: PasswordForm, req: &Request) -> Response {
        if form.password != form.password_confirm {
            return self
                .show(state, &form.token, Some("The two passwords are not the same.".into()))
                .await;
        }
        let token = PlainToken::presented(form.token.clone());
        match self.use_link(state, &token, SecretString::from(form.password), req).await {
            Outcome::Done(user) => self.done(&user),
            Outcome::Invalid => self.invalid(),
            Outcome::Expired(at) => self.expired(state, &at),
            Outcome::Weak(reason) => self.show(state, &form.token, Some(reason)).await,
            Outcome::Failed(error) => internal(&error),
        }
    }
}

#[handler]
pub(crate) async fn show_invitation(
    Query(q): Query<TokenQuery>,
    state: Data<&AppState>,
) -> Response {
    Link::Invitation.show(&state, &q.token, None).await
}

#[handler]
pub(crate) async fn submit_invitation(
    Form(form): Form<PasswordForm>,
    state: Data<&AppState>,
    req: &Request,
) -> Response {
    Link::Invitation.submit(&state, form, req).await
}

#[handler]
pub(crate) async fn show_reset(Query(q): Query<TokenQuery>, state: Data<&AppState>) -> Response {
    Link::Reset.show(&state, &q.token, None).await
}

#[handler]
pub(crate) async fn submit_reset(
    Form(form): Form<PasswordForm>,
    state: Data<&AppState>,
    req: &Request,
) -> Response {
    Link::Reset.submit(&state, form, req).await
}
