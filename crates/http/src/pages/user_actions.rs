//! The actions on a user's profile that need a confirmation step: send a
//! password reset, end their sessions, re-send or withdraw their
//! invitation, switch them to SSO, let them sign in again after failed
//! attempts, reset their second factor. Started from the users list, they
//! lead back to it.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response, handler};
use secureai_domain::users::errors::GetUserError;
use secureai_domain::{SignInMethod, UserId};
use serde::Deserialize;

use super::profile::{not_found, render_profile};
use super::shell::{Nav, admin_viewer, form_admin, see_other, sentence};
use super::{internal, page};
use crate::AppState;
use crate::auth::request_context;

/// The actions behind a confirmation step.
#[derive(Clone, Copy)]
enum Action {
    ResetPassword,
    TerminateSessions,
    ResendInvitation,
    WithdrawInvitation,
    SwitchToSso,
    AllowSignIn,
    ResetSecondFactor,
}

impl Action {
    fn parse(slug: &str) -> Option<Self> {
        match slug {
            "reset-password" => Some(Self::ResetPassword),
            "terminate-sessions" => Some(Self::TerminateSessions),
            "resend-invitation" => Some(Self::ResendInvitation),
            "withdraw-invitation" => Some(Self::WithdrawInvitation),
            "switch-to-sso" => Some(Self::SwitchToSso),
            "allow-sign-in" => Some(Self::AllowSignIn),
            "reset-second-factor" => Some(Self::ResetSecondFactor),
            _ => None,
        }
    }
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    nav: Nav,
    heading: String,
    text: String,
    action: String,
    button: &'static str,
    cancel: String,
    /// The users list the action was started from, to return to.
    back: Option<String>,
}

/// Where an action started from the users list returns: only that list
/// (with its filters), never elsewhere.
#[derive(Deserialize, Default)]
pub(crate) struct BackQuery {
    #[serde(default)]
    back: Option<String>,
}

/// `back` if it is the users list, with or without filters.
pub(crate) fn users_list(back: Option<&str>) -> Option<String> {
    let back = back?;
    let rest = back.strip_prefix("/admin/users")?;
    let safe = (rest.is_empty() || rest.starts_with('?'))
        && !back.contains(['\\', '#'])
        && back.chars().all(|c| c.is_ascii_graphic());
    safe.then(|| back.to_owned())
}

/// `list` with `done` added.
fn with_done(list: &str, done: &str) -> String {
    let separator = if list.contains('?') { '&' } else { '?' };
    format!("{list}{separator}done={done}")
}

/// The confirmation form: CSRF, and where it returns.
#[derive(Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    back: Option<String>,
}

/// `GET /admin/users/{id}/{action}`: the confirmation step.
#[handler]
pub(crate) async fn confirm_action(
    state: Data<&AppState>,
    req: &Request,
    Path((id, slug)): Path<(String, String)>,
    Query(query): Query<BackQuery>,
) -> Response {
    let (viewer, admin) = match admin_viewer(&state, req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (Ok(id), Some(action)) = (id.parse::<UserId>(), Action::parse(&slug)) else {
        return not_found();
    };
    let user = match state.service.users.get_user(&admin, id).await {
        Ok(user) => user,
        Err(GetUserError::NotFound) => return not_found(),
        Err(GetUserError::Unexpected(e)) => return internal(&e),
    };
    let (heading, text, button) = match action {
        Action::ResetPassword => (
            "Reset password?".to_owned(),
            format!(
                "{} gets an email with a link, valid {}, to choose a new password. Their current password keeps working until they use it.",
                user.email,
                super::users::link_lifetime(&state),
            ),
            "Reset Password",
        ),
        Action::TerminateSessions => (
            "Terminate sessions?".to_owned(),
            format!(
                "Every session of {} ends now, on every device; they must sign in again.",
                user.name
            ),
            "Terminate Sessions",
        ),
        Action::ResendInvitation if user.sign_in == SignInMethod::Sso => (
            "Re-send the invitation?".to_owned(),
            format!(
                "{} gets the \"your access is ready\" email again. They sign in through your identity provider; there is no link to expire.",
                user.email
            ),
            "Re-send invitation",
        ),
        Action::ResendInvitation => (
            "Re-send the invitation?".to_owned(),
            format!(
                "{} gets a new invitation, valid {}; the earlier link stops working.",
                user.email,
                super::users::link_lifetime(&state),
            ),
            "Re-send invitation",
        ),
        Action::WithdrawInvitation => (
            "Withdraw the invitation?".to_owned(),
            format!(
                "{} is deactivated: their invitation link stops working and their seat is free at once. To invite them again later, reactivate them and re-send the invitation.",
                user.email
            ),
            "Withdraw invitation",
        ),
        Action::SwitchToSso => (
            "Switch to single sign-on?".to_owned(),
            format!(
                "{} will sign in through your company's identity provider: their password is removed and every session ends now. Their next single sign-on links the account. Keep at least one admin with a password, in case the identity provider is unavailable.",
                user.email
            ),
            "Switch to single sign-on",
        ),
        Action::AllowSignIn => (
            "Allow sign-in now?".to_owned(),
            format!(
                "Sign-in for {} is paused after several failed attempts. Allowing it lets them try again at once; make sure it is them who is trying.",
                user.email
            ),
            "Allow sign-in now",
        ),
        Action::ResetSecondFactor => (
            "Reset second factor?".to_owned(),
            format!(
                "The authenticator app and recovery codes of {} stop working now, and they get an email saying so. Do this when they lost their phone — make sure it is them who asks. Where a second factor is required, they set up a new one at their next sign-in.",
                user.email
            ),
            "Reset second factor",
        ),
    };
    let back = users_list(query.back.as_deref());
    let template = ConfirmPage {
        nav: viewer.nav("users"),
        heading,
        text,
        action: format!("/admin/users/{id}/{slug}"),
        button,
        cancel: back.clone().unwrap_or_else(|| format!("/admin/users/{id}")),
        back,
    };
    page(StatusCode::OK, &template)
}

/// `POST /admin/users/{id}/{action}`: does it.
#[handler]
pub(crate) async fn do_action(
    state: Data<&AppState>,
    req: &Request,
    Path((id, slug)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Response {
    let (viewer, admin) = match form_admin(&state, req, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (Ok(id), Some(action)) = (id.parse::<UserId>(), Action::parse(&slug)) else {
        return not_found();
    };
    let context = request_context(req);
    let outcome: Result<&str, (bool, String)> = match action {
        Action::ResetPassword => {
            use secureai_domain::resets::errors::RequestResetError as E;
            match state.service.passwords.request_password_reset(&admin, id, &context).await {
                Ok(_) => Ok("reset"),
                Err(E::NotFound) => return not_found(),
                Err(E::Unexpected(e)) => return internal(&e),
                Err(error) => Err((true, error.to_string())),
            }
        }
        Action::TerminateSessions => {
            match state.service.sessions.terminate_sessions(&admin, id, &context).await {
                Ok(_) => Ok("sessions"),
                Err(GetUserError::NotFound) => return not_found(),
                Err(GetUserError::Unexpected(e)) => return internal(&e),
            }
        }
        Action::SwitchToSso => {
            use secureai_domain::users::errors::UpdateUserError as E;
            let switch = secureai_domain::users::lifecycle::UserUpdate {
                sign_in: Some("sso".into()),
                ..Default::default()
            };
            match state.service.users.update_user(&admin, id, &switch, &context).await {
                Ok(_) => Ok("switched"),
                Err(E::NotFound) => return not_found(),
                Err(E::Unexpected(e)) => return internal(&e),
                Err(error) => Err((true, error.to_string())),
            }
        }
        Action::AllowSignIn => {
            match state.service.sessions.allow_sign_in(&admin, id, &context).await {
                Ok(()) => Ok("allowed"),
                Err(GetUserError::NotFound) => return not_found(),
                Err(GetUserError::Unexpected(e)) => return internal(&e),
            }
        }
        Action::ResetSecondFactor => {
            use secureai_domain::mfa::service::ResetMfaError as E;
            match state.service.mfa.reset(&admin, id, &context).await {
                Ok(_) => Ok("mfa-reset"),
                Err(E::NotFound) => return not_found(),
                Err(E::Unexpected(e)) => return internal(&e),
                Err(E::StepUp(e)) => return super::step_up::refused(&viewer, e),
                Err(error) => Err((true, error.to_string())),
            }
        }
        Action::WithdrawInvitation => {
            use secureai_domain::users::errors::WithdrawInvitationError as E;
            match state.service.users.withdraw_invitation(&admin, id, &context).await {
                Ok(_) => Ok("withdrawn"),
                Err(E::NotFound) => return not_found(),
                Err(E::Unexpected(e)) => return internal(&e),
                Err(error) => Err((true, error.to_string())),
            }
        }
        Action::ResendInvitation => {
            use secureai_domain::invitations::errors::ResendInvitationError as E;
            match state.service.invitations.resend_invitation(&admin, id, &context).await {
                Ok(_) => Ok("resent"),
                Err(E::NotFound) => return not_found(),
                Err(E::Unexpected(e)) => return internal(&e),
                Err(error) => Err((true, error.to_string())),
            }
        }
    };
    match (outcome, users_list(form.back.as_deref())) {
        (Ok(done), Some(list)) => see_other(&with_done(&list, done)),
        (Ok(done), None) => see_other(&format!("/admin/users/{id}?done={done}")),
        (Err((_, error)), _) => {
            let error = Some(sentence(&error));
            render_profile(&state, &viewer, &admin, id, None, error, StatusCode::CONFLICT).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{users_list, with_done};

    #[test]
    fn actions_return_only_to_the_users_list() {
        for kept in ["/admin/users", "/admin/users?invitation=expired&sort=-created"] {
            assert_eq!(users_list(Some(kept)).as_deref(), Some(kept));
        }
        for refused in [
            "//evil.example/admin/users",
            "https://evil.example/admin/users",
            "/admin/users/../../sign-out",
            "/admin/usersx",
            "/admin/users\\@evil.example",
            "/admin/users?q=a b",
            "/admin/users#x",
            "",
        ] {
            assert_eq!(users_list(Some(refused)), None, "{refused}");
        }
        assert_eq!(users_list(None), None);
        assert_eq!(with_done("/admin/users", "resent"), "/admin/users?done=resent");
        assert_eq!(with_done("/admin/users?q=a", "resent"), "/admin/users?q=a&done=resent");
    }
}
