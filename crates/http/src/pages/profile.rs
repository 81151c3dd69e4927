//! A user's profile in the admin panel: details, activity, invitation and
//! email delivery, the Edit user form (name, department, role, active),
//! Change email for an invited user, and the actions behind confirmation
//! steps (in `user_actions`).

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response, handler};
use secureai_domain::access::Admin;
use secureai_domain::users::errors::GetUserError;
use secureai_domain::{SignInMethod, User, UserId, UserStatus};
use serde::Deserialize;

use super::shell::{
    Nav, Viewer, admin_viewer, blank_to_none, form_admin, see_other, sentence, when,
};
use super::{internal, message, page};
use crate::AppState;
use crate::auth::request_context;

#[derive(Template)]
#[template(path = "user.html")]
struct UserPage {
    nav: Nav,
    error: Option<String>,
    id: String,
    name: String,
    email: String,
    role: &'static str,
    status: &'static str,
    /// Role and status in words, for the badges.
    role_label: &'static str,
    status_label: &'static str,
    sso: bool,
    /// Single sign-on is configured: a password account can be switched.
    sso_available: bool,
    department: String,
    /// The groups the identity provider put them in (id, name), by name.
    groups: Vec<(String, String)>,
    /// The department as stored, for the form (empty when none).
    department_value: String,
    created: String,
    activated: String,
    deactivated: Option<String>,
    /// Deactivated before ever accepting the invitation: reactivating makes
    /// them invited again.
    never_activated: bool,
    last_sign_in: String,
    sessions: u64,
    invitation: Option<String>,
    /// Sign-in paused after failed attempts: until when.
    paused: Option<String>,
    /// Their second factor in words; `None` for single sign-on users.
    second_factor: Option<String>,
    /// They have one an admin may reset (not the viewer's own).
    resettable_factor: bool,
    /// Where the last invitation (or access-ready) email is.
    invitation_email: Option<Delivery>,
    /// Where the last password-reset email is.
    reset_email: Option<Delivery>,
    last_activity: String,
    usage_tokens: String,
    usage_conversations: String,
    usage_events: String,
    top_models: Vec<super::analytics::ModelRow>,
}

/// Where an email to the user is, in words, with what Retry needs.
pub(crate) struct Delivery {
    /// The message id (for Retry).
    pub id: String,
    /// Sent, waiting or failed, with the server's last answer.
    pub text: String,
    /// Failed: offer Retry.
    pub failed: bool,
}

impl Delivery {
    pub(crate) fn of(entry: &secureai_domain::mail::models::OutboxEntry) -> Self {
        use secureai_domain::mail::models::MailState;
        let error = entry.last_error.as_deref().unwrap_or("no answer recorded");
        let text = match entry.state {
            MailState::Sent => format!("sent on {}", when(entry.sent_at)),
            MailState::Queued if entry.attempts == 0 => "waiting to be sent".to_owned(),
            MailState::Queued => format!(
                "not delivered yet: {} attempt{} so far, the next at {} (last answer: {error})",
                entry.attempts,
                if entry.attempts == 1 { "" } else { "s" },
                when(Some(entry.next_attempt_at)),
            ),
            MailState::Failed => format!(
                "failed after {} attempt{}: {error}",
                entry.attempts,
                if entry.attempts == 1 { "" } else { "s" },
            ),
        };
        Self { id: entry.id.to_string(), text, failed: entry.state == MailState::Failed }
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct UserQuery {
    #[serde(default)]
    done: Option<String>,
}

/// The words for a finished action (`?done=`).
fn done_notice(done: &str, user: &User) -> Option<String> {
    Some(match done {
        "invited" => format!("Invitation sent to {}.", user.email),
        "saved" => "Saved.".to_owned(),
        "reset" => format!(
            "A password reset link was sent to {}. Their current password works until they use it.",
            user.email
        ),
        "sessions" => format!("Every session of {} has ended; they must sign in again.", user.name),
        "resent" if user.sign_in == SignInMethod::Sso => {
            format!("The \"your access is ready\" email was sent to {} again.", user.email)
        }
        "resent" => format!(
            "A new invitation was sent to {}; the earlier link no longer works.",
            user.email
        ),
        "allowed" => format!("{} may sign in again now.", user.email),
        "mfa-reset" => format!(
            "The second factor of {} is reset and they were emailed. Where one is required, they set up a new one at their next sign-in.",
            user.email
        ),
        "withdrawn" => format!(
            "The invitation of {} was withdrawn: the link no longer works and the seat is free.",
            user.email
        ),
        "email_changed" => format!(
            "The email address is now {}. A new invitation was sent to it; the earlier link no longer works.",
            user.email
        ),
        "retried" => "The email is queued again and goes out in a moment.".to_owned(),
        "reinvited" => format!(
            "{} is invited again. They never accepted their invitation and the earlier link no longer works: re-send the invitation to send them a new one.",
            user.email
        ),
        "switched" => format!(
            "{} now signs in through your identity provider; their next sign-in there links the account.",
            user.email
        ),
        _ => return None,
    })
}

pub(super) fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "No such user",
        "There is no user with this address.",
        Some(("/admin/users", "Back to Users")),
    )
}

/// Renders a user's profile with an optional notice or error.
pub(super) async fn render_profile(
    state: &AppState,
    viewer: &Viewer,
    admin: &Admin,
    id: UserId,
    notice: Option<&str>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let profile = match state.service.user_profile(admin, id).await {
        Ok(profile) => profile,
        Err(GetUserError::NotFound) => return not_found(),
        Err(GetUserError::Unexpected(e)) => return internal(&e),
    };
    let user = &profile.user;
    let mut nav = viewer.nav("users");
    nav.notice = notice.and_then(|done| done_notice(done, user));
    let invitation = profile.invitation.as_ref().map(|status| {
        use secureai_domain::invitations::models::InvitationStatus;
        match status {
            InvitationStatus::Pending { expires_at } => {
                format!("pending, the link works until {}", when(Some(*expires_at)))
            }
            InvitationStatus::Expired { expired_at } => {
                format!("expired on {} — re-send it for a new link", when(Some(*expired_at)))
            }
            InvitationStatus::Accepted { at } => format!("accepted on {}", when(Some(*at))),
            // Replaced by a re-send, or voided by a deactivation.
            InvitationStatus::Revoked { at } if user.status() == UserStatus::Invited => {
                format!("voided on {} — re-send it for a new link", when(Some(*at)))
            }
            InvitationStatus::Revoked { at } => format!("voided on {}", when(Some(*at))),
            InvitationStatus::AwaitingFirstSignIn => {
                "waiting for their first sign-in through your identity provider (no link, nothing expires)".to_owned()
            }
        }
    });
    let activity = match state.service.analytics.user_activity(admin, user.id).await {
        Ok(activity) => activity,
        Err(e) => return internal(&e),
    };
    let sso_available = match state.service.sso.sso_protocol().await {
        Ok(protocol) => protocol.is_some(),
        Err(e) => return internal(&e),
    };
    let groups = match state.service.provisioning.groups_of_user(admin, user.id).await {
        Ok(groups) => groups.into_iter().map(|g| (g.id.to_string(), g.name)).collect(),
        Err(e) => return internal(&e),
    };
    let mfa = match state.service.mfa.status(user).await {
        Ok(mfa) => mfa,
        Err(e) => return internal(&e),
    };
    let sso = user.sign_in == secureai_domain::SignInMethod::Sso;
    let second_factor = (!sso).then(|| {
        let mut kinds = Vec::new();
        if mfa.totp {
            kinds.push("authenticator app".to_owned());
        }
        match mfa.passkeys {
            0 => {}
            1 => kinds.push("1 passkey".to_owned()),
            n => kinds.push(format!("{n} passkeys")),
        }
        if kinds.is_empty() {
            "none".to_owned()
        } else {
            format!("{}, {} recovery codes left", kinds.join(" and "), mfa.recovery_codes_left)
        }
    });
    let resettable_factor = mfa.enrolled() && user.id != admin.user().id;
    let mut top_models = super::analytics::model_rows(&activity.models);
    top_models.truncate(3);
    let count = super::analytics::thousands;
    let template = UserPage {
        nav,
        error,
        last_activity: when(activity.last_activity_at),
        usage_tokens: count(activity.usage.tokens()),
        usage_conversations: count(activity.usage.conversations),
        usage_events: count(activity.usage.events),
        top_models,
        id: user.id.to_string(),
        name: user.name.to_string(),
        email: user.email.to_string(),
        role: user.role.as_str(),
        status: user.status().as_str(),
        role_label: role_label(user.role),
        status_label: status_label(user.status()),
        sso: user.sign_in == secureai_domain::SignInMethod::Sso,
        sso_available,
        department: user.department.as_ref().map(ToString::to_string).unwrap_or_else(|| "—".into()),
        department_value: user.department.as_ref().map(ToString::to_string).unwrap_or_default(),
        groups,
        created: when(Some(user.created_at)),
        activated: when(user.state.activated_at()),
        never_activated: user.state.activated_at().is_none(),
        deactivated: user.state.deactivated_at().map(|at| when(Some(at))),
        last_sign_in: when(user.last_login_at),
        sessions: profile.active_sessions,
        invitation,
        invitation_email: profile.invitation_email.as_ref().map(Delivery::of),
        reset_email: profile.reset_email.as_ref().map(Delivery::of),
        second_factor,
        resettable_factor,
        paused: profile
            .sign_in_paused_until
            .map(|until| until.format("%-d %b %Y, %H:%M:%S UTC").to_string()),
    };
    page(status, &template)
}

/// `GET /admin/users/{id}`: the profile with its activity summary and
/// actions.
#[handler]
pub(crate) async fn user_profile(
    state: Data<&AppState>,
    req: &Request,
    Path(id): Path<String>,
    Query(query): Query<UserQuery>,
) -> Response {
    let (viewer, admin) = match admin_viewer(&state, req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Ok(id) = id.parse::<UserId>() else {
        return not_found();
    };
    render_profile(&state, &viewer, &admin, id, query.done.as_deref(), None, StatusCode::OK).await
}

#[derive(Deserialize)]
pub(crate) struct SaveUserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
    /// Present when the form showed the Active checkbox.
    #[serde(default)]
    has_active: Option<String>,
    #[serde(default)]
    active: Option<String>,
    /// Absent from forms that do not show it: left as it is.
    #[serde(default)]
    name: Option<String>,
    /// Absent: left as it is; empty: cleared.
    #[serde(default)]
    department: Option<String>,
}

/// `POST /admin/users/{id}`: Save (name, department, role and active).
#[handler]
pub(crate) async fn save_user(
    state: Data<&AppState>,
    req: &Request,
    Path(id): Path<String>,
    Form(form): Form<SaveUserForm>,
) -> Response {
    let (viewer, admin) = match form_admin(&state, req, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Ok(id) = id.parse::<UserId>() else {
        return not_found();
    };
    let active = form.has_active.map(|_| form.active.is_some());
    let reactivating = active == Some(true);
    let update = secureai_domain::users::lifecycle::UserUpdate {
        role: blank_to_none(&form.role),
        active,
        name: form.name,
        department: form.department,
        sign_in: None,
    };
    use secureai_domain::users::errors::UpdateUserError;
    match state.service.users.update_user(&admin, id, &update, &request_context(req)).await {
        // Saving may have taken the admin's own role: the next page decides.
        // Reactivated before ever accepting: invited again, with no link.
        Ok(user) if reactivating && user.status() == UserStatus::Invited => {
            see_other(&format!("/admin/users/{id}?done=reinvited"))
        }
        Ok(_) => see_other(&format!("/admin/users/{id}?done=saved")),
        Err(UpdateUserError::NotFound) => not_found(),
        Err(UpdateUserError::Unexpected(e)) => internal(&e),
        Err(UpdateUserError::StepUp(e)) => super::step_up::refused(&viewer, e),
        Err(error) => {
            let error = Some(sentence(&error.to_string()));
            render_profile(&state, &viewer, &admin, id, None, error, StatusCode::CONFLICT).await
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct ChangeEmailForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

/// `POST /admin/users/{id}/email`: Change email (invited users).
#[handler]
pub(crate) async fn change_email(
    state: Data<&AppState>,
    req: &Request,
    Path(id): Path<String>,
    Form(form): Form<ChangeEmailForm>,
) -> Response {
    let (viewer, admin) = match form_admin(&state, req, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Ok(id) = id.parse::<UserId>() else {
        return not_found();
    };
    use secureai_domain::invitations::errors::CorrectEmailError as E;
    let context = request_context(req);
    let outcome = state.service.invitations.correct_email(&admin, id, &form.email, &context).await;
    let (status, error) = match outcome {
        Ok(_) => return see_other(&format!("/admin/users/{id}?done=email_changed")),
        Err(E::NotFound) => return not_found(),
        Err(E::Unexpected(e)) => return internal(&e),
        Err(E::StepUp(e)) => return super::step_up::refused(&viewer, e),
        Err(error @ E::Invalid(_)) => (StatusCode::UNPROCESSABLE_ENTITY, error.to_string()),
        Err(error) => (StatusCode::CONFLICT, error.to_string()),
    };
    render_profile(&state, &viewer, &admin, id, None, Some(sentence(&error)), status).await
}

/// A role as the guide writes it: "User", "Admin".
pub(crate) fn role_label(role: secureai_domain::Role) -> &'static str {
    match role {
        secureai_domain::Role::User => "User",
        secureai_domain::Role::Admin => "Admin",
    }
}

/// A status as a word: "Invited", "Active", "Deactivated".
pub(crate) fn status_label(status: UserStatus) -> &'static str {
    match status {
        UserStatus::Invited => "Invited",
        UserStatus::Active => "Active",
        UserStatus::Deactivated => "Deactivated",
    }
}
