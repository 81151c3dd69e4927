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
use secureai_domain::sessions::models::Principal;
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
    fn nav(&self, section: &'static str) -> Nav {
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

fn see_other(to: &str) -> Response {
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

/// The viewer if they are an admin; a page saying they are not otherwise.
async fn admin_viewer(state: &AppState, req: &Request) -> Result<Viewer, Response> {
    let viewer = viewer(state, req).await?;
    if viewer.principal.user.is_active_admin() {
        Ok(viewer)
    } else {
        Err(message(
            StatusCode::FORBIDDEN,
            "Administrators only",
            "This page is part of the Admin Panel. Your account does not have the admin role.",
            Some(("/", "Go to your start page")),
        ))
    }
}

/// Whether a state-changing form comes from our own pages.
fn same_origin(state: &AppState, req: &Request) -> bool {
    if let Some(site) = req.header("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match req.header("origin") {
        Some(origin) => origin.trim_end_matches('/') == state.origin(),
        None => true,
    }
}

/// The refusal of a form without this session's CSRF token or from another
/// site; `None` when the form may proceed.
fn refuse_form(state: &AppState, req: &Request, viewer: &Viewer, csrf: &str) -> Option<Response> {
    let token_ok = bool::from(csrf.as_bytes().ct_eq(viewer.csrf.as_bytes()));
    if token_ok && same_origin(state, req) {
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
    if !same_origin(&state, req) {
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
    csrf: String,
}

/// `POST /sign-out`.
#[handler]
pub(crate) async fn sign_out(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<CsrfForm>,
) -> Response {
    let viewer = match viewer(&state, req).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if let Some(refused) = refuse_form(&state, req, &viewer, &form.csrf) {
        return refused;
    }
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
    next: Option<String>,
    error: Option<String>,
}

fn blank_to_none(text: &str) -> Option<String> {
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
    let viewer = match admin_viewer(&state, req).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let Ok(admin) = viewer.principal.admin() else {
        return see_other("/");
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
    let (rows, total_text, next, error) = match state.service.list_users(&admin, &request).await {
        Ok(found) => {
            let total_text = match (found.total, found.total_exact) {
                (1, true) => "1 user".to_owned(),
                (n, true) => format!("{n} users"),
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
                let encoded: String = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params.iter().filter(|(_, v)| !v.is_empty()))
                    .finish();
                format!("/admin/users?{encoded}")
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
    let template = UsersPage {
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
    let viewer = match admin_viewer(&state, req).await {
        Ok(viewer) => viewer,
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
    let viewer = match admin_viewer(&state, req).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if let Some(refused) = refuse_form(&state, req, &viewer, &form.csrf) {
        return refused;
    }
    let Ok(admin) = viewer.principal.admin() else {
        return see_other("/");
    };
    let request = InviteRequest {
        email: form.email.clone(),
        name: form.name.clone(),
        role: form.role.clone(),
        department: blank_to_none(&form.department),
        sign_in: None,
    };
    let error = match state.service.invite_user(&admin, &request, &request_context(req)).await {
        Ok(invited) => return see_other(&format!("/admin/users/{}?invited=1", invited.user.id)),
        Err(InviteUserError::Unexpected(e)) => return internal(&e),
        Err(error) => error.to_string(),
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
    name: String,
    email: String,
    role: &'static str,
    status: &'static str,
    sign_in: &'static str,
    department: String,
    created: String,
    activated: String,
    deactivated: Option<String>,
    last_sign_in: String,
    sessions: u64,
    invitation: Option<String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct UserQuery {
    #[serde(default)]
    invited: Option<String>,
}

/// `GET /admin/users/{id}`: the profile with its activity summary.
#[handler]
pub(crate) async fn user_profile(
    state: Data<&AppState>,
    req: &Request,
    Path(id): Path<String>,
    Query(query): Query<UserQuery>,
) -> Response {
    let viewer = match admin_viewer(&state, req).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let Ok(admin) = viewer.principal.admin() else {
        return see_other("/");
    };
    let not_found = || {
        message(
            StatusCode::NOT_FOUND,
            "No such user",
            "There is no user with this address.",
            Some(("/admin/users", "Back to Users")),
        )
    };
    let Ok(id) = id.parse::<UserId>() else {
        return not_found();
    };
    let profile = match state.service.user_profile(&admin, id).await {
        Ok(profile) => profile,
        Err(GetUserError::NotFound) => return not_found(),
        Err(GetUserError::Unexpected(e)) => return internal(&e),
    };
    let user = &profile.user;
    let mut nav = viewer.nav("users");
    if query.invited.is_some() {
        nav.notice = Some(format!("Invitation sent to {}.", user.email));
    }
    let invitation = profile.invitation.as_ref().map(|status| {
        use secureai_domain::invitations::models::InvitationStatus;
        match status {
            InvitationStatus::Pending { expires_at } => {
                format!("pending, the link works until {}", when(Some(*expires_at)))
            }
            InvitationStatus::Expired { expired_at } => {
                format!("expired on {}", when(Some(*expired_at)))
            }
            InvitationStatus::Accepted { at } => format!("accepted on {}", when(Some(*at))),
            InvitationStatus::Revoked { at } => format!("replaced on {}", when(Some(*at))),
        }
    });
    let template = UserPage {
        nav,
        name: user.name.to_string(),
        email: user.email.to_string(),
        role: user.role.as_str(),
        status: user.status().as_str(),
        sign_in: match user.sign_in {
            secureai_domain::SignInMethod::Password => "password",
            secureai_domain::SignInMethod::Sso => "single sign-on",
        },
        department: user.department.as_ref().map(ToString::to_string).unwrap_or_else(|| "—".into()),
        created: when(Some(user.created_at)),
        activated: when(user.state.activated_at()),
        deactivated: user.state.deactivated_at().map(|at| when(Some(at))),
        last_sign_in: when(user.last_login_at),
        sessions: profile.active_sessions,
        invitation,
    };
    page(StatusCode::OK, &template)
}
