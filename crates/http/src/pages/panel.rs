//! The signed-in pages: sign in and out, and the admin panel's Users pages
//! (list with search, filters, sort and paging; Add User; a user's
//! profile). Handlers translate forms and queries into use-case calls; every
//! rule is the domain's.
//!
//! Forms that change something carry a CSRF token derived from the session
//! token (so only a page served to this session can carry it) and must come
//! from our own origin.

use askama::Template;
use chrono::{DateTime, Utc};
use poem::http::{StatusCode, header};
use poem::web::{Data, Form, Path, Query};
use poem::{IntoResponse, Request, Response, handler};
use secrecy::SecretString;
use secureai_domain::sessions::errors::SignInError;
use secureai_domain::sessions::models::{Admin, Principal};
use secureai_domain::sso::models::SsoProtocol;
use secureai_domain::users::errors::{GetUserError, InviteUserError};
use secureai_domain::users::listing::ListUsersRequest;
use secureai_domain::users::service::InviteRequest;
use secureai_domain::{PlainToken, User, UserId};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{internal, message, page};
use crate::AppState;
use crate::auth::{SESSION_COOKIE, request_context};

/// What every panel page shows in its header.
pub(crate) struct Nav {
    pub name: String,
    pub admin: bool,
    pub csrf: String,
    pub section: &'static str,
    pub notice: Option<String>,
}

/// The signed-in person behind a page request.
pub(crate) struct Viewer {
    pub principal: Principal,
    pub csrf: String,
}

impl Viewer {
    pub(crate) fn nav(&self, section: &'static str) -> Nav {
        Nav {
            name: self.principal.user.name.to_string(),
            admin: self.principal.user.is_active_admin(),
            csrf: self.csrf.clone(),
            section,
            notice: None,
        }
    }
}

/// The CSRF token of a session: a digest of its token under a fixed label,
/// so it is unguessable without the session cookie and needs no storage.
fn csrf_of(token: &PlainToken) -> String {
    let digest = Sha256::new()
        .chain_update(b"secureai-csrf\0")
        .chain_update(token.expose().as_bytes())
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn see_other(to: &str) -> Response {
    StatusCode::SEE_OTHER
        .with_header(header::LOCATION, to)
        .with_header(header::CACHE_CONTROL, "no-store")
        .into_response()
}

/// The viewer, or the answer to give instead (to the sign-in page).
pub(crate) async fn viewer(state: &AppState, req: &Request) -> Result<Viewer, Response> {
    let Some(cookie) = req.cookie().get(SESSION_COOKIE) else {
        return Err(see_other("/sign-in"));
    };
    let token = PlainToken::presented(cookie.value_str().to_owned());
    match state.service.authenticate(&token).await {
        Ok(principal) => Ok(Viewer { principal, csrf: csrf_of(&token) }),
        Err(_) => Err(see_other("/sign-in")
            .with_header(header::SET_COOKIE, state.cleared_session_cookie().to_string())
            .into_response()),
    }
}

/// The viewer and their `Admin` capability; a page saying they are not an
/// admin otherwise.
pub(crate) async fn admin_viewer(
    state: &AppState,
    req: &Request,
) -> Result<(Viewer, Admin), Response> {
    let viewer = viewer(state, req).await?;
    match viewer.principal.admin() {
        Ok(admin) => Ok((viewer, admin)),
        Err(_) => Err(message(
            StatusCode::FORBIDDEN,
            "Administrators only",
            "This page is part of the Admin Panel. Your account does not have the admin role.",
            Some(("/", "Go to your start page")),
        )),
    }
}

/// The viewer of a form post: signed in, with this session's CSRF token,
/// from our own site.
pub(crate) async fn form_viewer(
    state: &AppState,
    req: &Request,
    csrf: &str,
) -> Result<Viewer, Response> {
    let viewer = viewer(state, req).await?;
    match refuse_form(state, req, &viewer, csrf) {
        Some(refused) => Err(refused),
        None => Ok(viewer),
    }
}

/// The admin behind a form post (see [`form_viewer`]).
pub(crate) async fn form_admin(
    state: &AppState,
    req: &Request,
    csrf: &str,
) -> Result<(Viewer, Admin), Response> {
    let (viewer, admin) = admin_viewer(state, req).await?;
    if let Some(refused) = refuse_form(state, req, &viewer, csrf) {
        return Err(refused);
    }
    Ok((viewer, admin))
}

/// The refusal of a form without this session's CSRF token or from another
/// site; `None` when the form may proceed.
pub(crate) fn refuse_form(
    state: &AppState,
    req: &Request,
    viewer: &Viewer,
    csrf: &str,
) -> Option<Response> {
    let token_ok = bool::from(csrf.as_bytes().ct_eq(viewer.csrf.as_bytes()));
    if token_ok && state.same_origin(req) {
        return None;
    }
    Some(message(
        StatusCode::FORBIDDEN,
        "This form has expired",
        "The form was not sent from this page in your current session. Go back, reload the page \
         and try again.",
        Some(("/", "Go to your start page")),
    ))
}

/// A domain message as a sentence: capital first letter, final period.
pub(crate) fn sentence(text: &str) -> String {
    let mut chars = text.trim().chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

fn when(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "—".to_owned(), |at| at.format("%-d %b %Y, %H:%M UTC").to_string())
}

// ---------------------------------------------------------------- sign in

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    error: Option<String>,
    email: String,
    sso: Option<&'static str>,
}

async fn sso_link(state: &AppState) -> Option<&'static str> {
    match state.service.sso_protocol().await {
        Ok(Some(SsoProtocol::Oidc)) => Some("/auth/oidc/login"),
        Ok(Some(SsoProtocol::Saml)) => Some("/auth/saml/login"),
        _ => None,
    }
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
    match state.service.sign_in(&form.email, &password, &request_context(req)).await {
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

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
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
    if let Err(e) = state.service.sign_out(&viewer.principal, &request_context(req)).await {
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
    if viewer.principal.user.is_active_admin() {
        return see_other("/admin/users");
    }
    #[derive(Template)]
    #[template(path = "start.html")]
    struct StartPage {
        nav: Nav,
        email: String,
    }
    let email = viewer.principal.user.email.to_string();
    page(StatusCode::OK, &StartPage { nav: viewer.nav("start"), email })
}

// ---------------------------------------------------------------- users

#[derive(Deserialize, Default)]
pub(crate) struct UsersQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    cursor: String,
}

struct UserRow {
    id: String,
    name: String,
    email: String,
    role: &'static str,
    status: &'static str,
    department: String,
    last_sign_in: String,
}

impl From<&User> for UserRow {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            name: user.name.to_string(),
            email: user.email.to_string(),
            role: user.role.as_str(),
            status: user.status().as_str(),
            department: user.department.as_ref().map(ToString::to_string).unwrap_or_default(),
            last_sign_in: when(user.last_login_at),
        }
    }
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    nav: Nav,
    q: String,
    status: String,
    role: String,
    department: String,
    sort: String,
    statuses: Vec<(&'static str, &'static str)>,
    roles: Vec<(&'static str, &'static str)>,
    sorts: Vec<(&'static str, &'static str)>,
    rows: Vec<UserRow>,
    total_text: String,
    seats_text: String,
    next: Option<String>,
    /// The page ended before its limit with more to search (a broad search
    /// looks through a bounded part of the directory per page).
    searching: bool,
    error: Option<String>,
}

/// `path?name=value&…` with the non-empty parameters, encoded.
pub(crate) fn link_with(path: &str, params: &[(&str, &str)]) -> String {
    let encoded: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().filter(|(_, v)| !v.is_empty()))
        .finish();
    format!("{path}?{encoded}")
}

pub(crate) fn blank_to_none(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// `GET /admin/users`.
#[handler]
pub(crate) async fn users(
    state: Data<&AppState>,
    req: &Request,
    Query(query): Query<UsersQuery>,
) -> Response {
    let (viewer, admin) = match admin_viewer(&state, req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let request = ListUsersRequest {
        q: blank_to_none(&query.q),
        role: blank_to_none(&query.role),
        status: blank_to_none(&query.status),
        department: blank_to_none(&query.department),
        sort: blank_to_none(&query.sort),
        limit: Some(25),
        cursor: blank_to_none(&query.cursor),
    };
    let page_size = request.limit.unwrap_or(25) as usize;
    let (rows, total_text, next, error) = match state.service.list_users(&admin, &request).await {
        Ok(found) => {
            let total_text = match (found.total, found.total_exact) {
                (1, true) => "1 user".to_owned(),
                (n, true) => format!("{n} users"),
                // A search whose first pages ended early has counted none yet.
                (0, false) => "Matches not counted yet".to_owned(),
                (n, false) => format!("{n} or more users"),
            };
            let next = found.next_cursor.map(|cursor| {
                let params = [
                    ("q", query.q.as_str()),
                    ("status", query.status.as_str()),
                    ("role", query.role.as_str()),
                    ("department", query.department.as_str()),
                    ("sort", query.sort.as_str()),
                    ("cursor", cursor.as_str()),
                ];
                link_with("/admin/users", &params)
            });
            (found.items.iter().map(UserRow::from).collect(), total_text, next, None)
        }
        Err(secureai_domain::users::errors::ListUsersError::Invalid(field)) => {
            (Vec::new(), String::new(), None, Some(field.to_string()))
        }
        Err(secureai_domain::users::errors::ListUsersError::InvalidCursor) => (
            Vec::new(),
            String::new(),
            None,
            Some("This page link is out of date; start again from the first page.".into()),
        ),
        Err(secureai_domain::users::errors::ListUsersError::Unexpected(e)) => return internal(&e),
    };
    let seats_text = match state.service.seat_usage(&admin).await {
        Ok(usage) => match usage.limit {
            Some(limit) => format!("Seats: {} of {limit} in use", usage.used),
            None => format!("Seats: {} in use, no limit", usage.used),
        },
        Err(e) => return internal(&e),
    };
    let template = UsersPage {
        seats_text,
        nav: viewer.nav("users"),
        q: query.q,
        status: query.status,
        role: query.role,
        department: query.department,
        sort: query.sort,
        statuses: vec![
            ("", "Any"),
            ("invited", "Invited"),
            ("active", "Active"),
            ("deactivated", "Deactivated"),
        ],
        roles: vec![("", "Any"), ("user", "User"), ("admin", "Admin")],
        sorts: vec![
            ("", "Newest first"),
            ("created", "Oldest first"),
            ("name", "Name"),
            ("email", "Email"),
            ("-last_sign_in", "Last sign-in"),
        ],
        searching: next.is_some() && rows.len() < page_size,
        rows,
        total_text,
        next,
        error,
    };
    page(StatusCode::OK, &template)
}

#[derive(Template)]
#[template(path = "user_new.html")]
struct NewUserPage {
    nav: Nav,
    sso: bool,
    error: Option<String>,
    email: String,
    name: String,
    role: String,
    department: String,
}

/// `GET /admin/users/new`.
#[handler]
pub(crate) async fn new_user(state: Data<&AppState>, req: &Request) -> Response {
    let (viewer, _) = match admin_viewer(&state, req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let sso = sso_link(&state).await.is_some();
    let template = NewUserPage {
        nav: viewer.nav("users"),
        sso,
        error: None,
        email: String::new(),
        name: String::new(),
        role: "user".into(),
        department: String::new(),
    };
    page(StatusCode::OK, &template)
}

#[derive(Deserialize)]
pub(crate) struct NewUserForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    department: String,
}

/// `POST /admin/users/new`: Send Invitation.
#[handler]
pub(crate) async fn create_user(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<NewUserForm>,
) -> Response {
    let (viewer, admin) = match form_admin(&state, req, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let request = InviteRequest {
        email: form.email.clone(),
        name: form.name.clone(),
        role: form.role.clone(),
        department: blank_to_none(&form.department),
        sign_in: None,
    };
    let error = match state.service.invite_user(&admin, &request, &request_context(req)).await {
        Ok(invited) => return see_other(&format!("/admin/users/{}?done=invited", invited.user.id)),
        Err(InviteUserError::Unexpected(e)) => return internal(&e),
        Err(error) => sentence(&error.to_string()),
    };
    let sso = sso_link(&state).await.is_some();
    let template = NewUserPage {
        nav: viewer.nav("users"),
        sso,
        error: Some(error),
        email: form.email,
        name: form.name,
        role: form.role,
        department: form.department,
    };
    page(StatusCode::UNPROCESSABLE_ENTITY, &template)
}

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
    sso: bool,
    /// Single sign-on is configured: a password account can be switched.
    sso_available: bool,
    department: String,
    created: String,
    activated: String,
    deactivated: Option<String>,
    last_sign_in: String,
    sessions: u64,
    invitation: Option<String>,
    last_activity: String,
    usage_tokens: String,
    usage_conversations: String,
    usage_events: String,
    top_models: Vec<super::analytics::ModelRow>,
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
        "resent" => format!(
            "A new invitation was sent to {}; the earlier link no longer works.",
            user.email
        ),
        "switched" => format!(
            "{} now signs in through your identity provider; their next sign-in there links the account.",
            user.email
        ),
        _ => return None,
    })
}

fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "No such user",
        "There is no user with this address.",
        Some(("/admin/users", "Back to Users")),
    )
}

/// Renders a user's profile with an optional notice or error.
async fn render_profile(
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
            InvitationStatus::Revoked { at } => format!("replaced on {}", when(Some(*at))),
        }
    });
    let activity = match state.service.user_activity(admin, user.id).await {
        Ok(activity) => activity,
        Err(e) => return internal(&e),
    };
    let sso_available = match state.service.sso_protocol().await {
        Ok(protocol) => protocol.is_some(),
        Err(e) => return internal(&e),
    };
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
        sso: user.sign_in == secureai_domain::SignInMethod::Sso,
        sso_available,
        department: user.department.as_ref().map(ToString::to_string).unwrap_or_else(|| "—".into()),
        created: when(Some(user.created_at)),
        activated: when(user.state.activated_at()),
        deactivated: user.state.deactivated_at().map(|at| when(Some(at))),
        last_sign_in: when(user.last_login_at),
        sessions: profile.active_sessions,
        invitation,
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
}

/// `POST /admin/users/{id}`: Save (role and active).
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
    let update = secureai_domain::users::lifecycle::UserUpdate {
        role: blank_to_none(&form.role),
        active: form.has_active.map(|_| form.active.is_some()),
        name: None,
        department: None,
        sign_in: None,
    };
    use secureai_domain::users::errors::UpdateUserError;
    match state.service.update_user(&admin, id, &update, &request_context(req)).await {
        // Saving may have taken the admin's own role: the next page decides.
        Ok(_) => see_other(&format!("/admin/users/{id}?done=saved")),
        Err(UpdateUserError::NotFound) => not_found(),
        Err(UpdateUserError::Unexpected(e)) => internal(&e),
        Err(error) => {
            let error = Some(sentence(&error.to_string()));
            render_profile(&state, &viewer, &admin, id, None, error, StatusCode::CONFLICT).await
        }
    }
}

/// The three actions behind a confirmation step or a button.
#[derive(Clone, Copy)]
enum Action {
    ResetPassword,
    TerminateSessions,
    ResendInvitation,
    SwitchToSso,
}

impl Action {
    fn parse(slug: &str) -> Option<Self> {
        match slug {
            "reset-password" => Some(Self::ResetPassword),
            "terminate-sessions" => Some(Self::TerminateSessions),
            "resend-invitation" => Some(Self::ResendInvitation),
            "switch-to-sso" => Some(Self::SwitchToSso),
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
}

/// `GET /admin/users/{id}/{action}`: the confirmation step.
#[handler]
pub(crate) async fn confirm_action(
    state: Data<&AppState>,
    req: &Request,
    Path((id, slug)): Path<(String, String)>,
) -> Response {
    let (viewer, admin) = match admin_viewer(&state, req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (Ok(id), Some(action)) = (id.parse::<UserId>(), Action::parse(&slug)) else {
        return not_found();
    };
    let user = match state.service.get_user(&admin, id).await {
        Ok(user) => user,
        Err(GetUserError::NotFound) => return not_found(),
        Err(GetUserError::Unexpected(e)) => return internal(&e),
    };
    let (heading, text, button) = match action {
        Action::ResetPassword => (
            "Reset password?".to_owned(),
            format!(
                "{} gets an email with a link, valid 72 hours, to choose a new password. Their current password keeps working until they use it.",
                user.email
            ),
            "Send reset link",
        ),
        Action::TerminateSessions => (
            "Terminate sessions?".to_owned(),
            format!(
                "Every session of {} ends now, on every device; they must sign in again.",
                user.name
            ),
            "Terminate sessions",
        ),
        Action::ResendInvitation => (
            "Re-send the invitation?".to_owned(),
            format!("{} gets a new invitation; the earlier link stops working.", user.email),
            "Re-send invitation",
        ),
        Action::SwitchToSso => (
            "Switch to single sign-on?".to_owned(),
            format!(
                "{} will sign in through your company's identity provider: their password is removed and every session ends now. Their next single sign-on links the account. Keep at least one admin with a password, in case the identity provider is unavailable.",
                user.email
            ),
            "Switch to single sign-on",
        ),
    };
    let template = ConfirmPage {
        nav: viewer.nav("users"),
        heading,
        text,
        action: format!("/admin/users/{id}/{slug}"),
        button,
        cancel: format!("/admin/users/{id}"),
    };
    page(StatusCode::OK, &template)
}

/// `POST /admin/users/{id}/{action}`: does it.
#[handler]
pub(crate) async fn do_action(
    state: Data<&AppState>,
    req: &Request,
    Path((id, slug)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
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
            match state.service.request_password_reset(&admin, id, &context).await {
                Ok(_) => Ok("reset"),
                Err(E::NotFound) => return not_found(),
                Err(E::Unexpected(e)) => return internal(&e),
                Err(error) => Err((true, error.to_string())),
            }
        }
        Action::TerminateSessions => {
            match state.service.terminate_sessions(&admin, id, &context).await {
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
            match state.service.update_user(&admin, id, &switch, &context).await {
                Ok(_) => Ok("switched"),
                Err(E::NotFound) => return not_found(),
                Err(E::Unexpected(e)) => return internal(&e),
                Err(error) => Err((true, error.to_string())),
            }
        }
        Action::ResendInvitation => {
            use secureai_domain::invitations::errors::ResendInvitationError as E;
            match state.service.resend_invitation(&admin, id, &context).await {
                Ok(_) => Ok("resent"),
                Err(E::NotFound) => return not_found(),
                Err(E::Unexpected(e)) => return internal(&e),
                Err(error) => Err((true, error.to_string())),
            }
        }
    };
    match outcome {
        Ok(done) => see_other(&format!("/admin/users/{id}?done={done}")),
        Err((_, error)) => {
            let error = Some(sentence(&error));
            render_profile(&state, &viewer, &admin, id, None, error, StatusCode::CONFLICT).await
        }
    }
}
