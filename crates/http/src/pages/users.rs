//! The admin panel's Users pages: the list with search, filters, sort and
//! paging; Add User; a user's profile. Handlers translate forms and queries
//! into use-case calls; every rule is the domain's.

use std::collections::HashMap;

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{Request, Response, handler};
use secureai_domain::invitations::service::InviteRequest;
use secureai_domain::service::InvitationOverview;
use secureai_domain::users::errors::InviteUserError;
use secureai_domain::users::listing::ListUsersRequest;
use secureai_domain::{User, UserId};
use serde::Deserialize;

use super::profile::{role_label, status_label};
use super::shell::{
    Nav, admin_viewer, blank_to_none, form_admin, link_with, see_other, sentence, sso_link, when,
};
use super::{internal, page};
use crate::AppState;
use crate::auth::request_context;

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
    invitation: String,
    /// A group's id.
    #[serde(default)]
    group: String,
    #[serde(default)]
    sort: String,
    #[serde(default)]
    cursor: String,
    /// An action started from this list has been done.
    #[serde(default)]
    done: String,
}

struct UserRow {
    id: String,
    name: String,
    email: String,
    role: &'static str,
    status: &'static str,
    role_label: &'static str,
    status_label: &'static str,
    department: String,
    last_sign_in: String,
    /// An invited user's invitation: its state, then its email's.
    invitation: Option<InvitationCell>,
}

/// The Invitation column of an invited user.
struct InvitationCell {
    /// Pending until, expired, voided, or waiting for a first SSO sign-in.
    state: String,
    /// Whether the link no longer works (expired or voided): re-send.
    lapsed: bool,
    /// Where the invitation email is: waiting, sent, failed with the answer.
    email: Option<String>,
    /// The email failed.
    failed: bool,
}

impl InvitationCell {
    fn of(overview: &InvitationOverview) -> Self {
        use secureai_domain::invitations::models::InvitationStatus;
        use secureai_domain::mail::models::MailState;
        let (state, lapsed) = match overview.status {
            InvitationStatus::Pending { expires_at } => {
                (format!("Pending until {}", when(Some(expires_at))), false)
            }
            InvitationStatus::Expired { expired_at } => {
                (format!("Expired on {}", when(Some(expired_at))), true)
            }
            InvitationStatus::Revoked { .. } => ("Link voided".to_owned(), true),
            InvitationStatus::AwaitingFirstSignIn => {
                ("Waiting for first sign-in".to_owned(), false)
            }
            InvitationStatus::Accepted { at } => (format!("Accepted on {}", when(Some(at))), false),
        };
        let email = overview.email.as_ref().map(|entry| match entry.state {
            MailState::Sent => "Email sent".to_owned(),
            MailState::Queued if entry.attempts == 0 => "Email waiting to be sent".to_owned(),
            MailState::Queued => format!(
                "Email not delivered yet ({} attempt{})",
                entry.attempts,
                if entry.attempts == 1 { "" } else { "s" }
            ),
            MailState::Failed => format!(
                "Email failed: {}",
                entry.last_error.as_deref().unwrap_or("no answer recorded")
            ),
        });
        let failed = overview.email.as_ref().is_some_and(|e| e.state == MailState::Failed);
        Self { state, lapsed, email, failed }
    }
}

impl UserRow {
    fn of(user: &User, invitations: &HashMap<UserId, InvitationOverview>) -> Self {
        Self {
            id: user.id.to_string(),
            name: user.name.to_string(),
            email: user.email.to_string(),
            role: user.role.as_str(),
            status: user.status().as_str(),
            role_label: role_label(user.role),
            status_label: status_label(user.status()),
            department: user.department.as_ref().map(ToString::to_string).unwrap_or_default(),
            last_sign_in: when(user.last_login_at),
            invitation: invitations.get(&user.id).map(InvitationCell::of),
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
    invitation: String,
    sort: String,
    statuses: Vec<(&'static str, &'static str)>,
    invitations: Vec<(&'static str, &'static str)>,
    /// The group filter's choices (id, name); none until the identity
    /// provider pushes a group.
    groups: Vec<(String, String)>,
    group: String,
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
    /// The CSV export of what the filters match.
    export: String,
    /// This list with its filters (where row actions return), encoded.
    back: String,
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
    let mut query = query;
    if query.sort.trim().is_empty() {
        // The list opens newest first.
        query.sort = "-created".to_owned();
    }
    let request = ListUsersRequest {
        q: blank_to_none(&query.q),
        role: blank_to_none(&query.role),
        status: blank_to_none(&query.status),
        department: blank_to_none(&query.department),
        invitation: blank_to_none(&query.invitation),
        group: blank_to_none(&query.group),
        sort: blank_to_none(&query.sort),
        limit: Some(25),
        cursor: blank_to_none(&query.cursor),
    };
    let page_size = request.limit.unwrap_or(25) as usize;
    let filters = [
        ("q", query.q.as_str()),
        ("status", query.status.as_str()),
        ("role", query.role.as_str()),
        ("department", query.department.as_str()),
        ("invitation", query.invitation.as_str()),
        ("group", query.group.as_str()),
        ("sort", query.sort.as_str()),
    ];
    let (rows, total_text, next, error) =
        match state.service.users.list_users(&admin, &request).await {
            Ok(found) => {
                let total_text = match (found.total, found.total_exact) {
                    (1, true) => "1 user".to_owned(),
                    (n, true) => format!("{n} users"),
                    // A search whose first pages ended early has counted none yet.
                    (0, false) => "Matches not counted yet".to_owned(),
                    (n, false) => format!("{n} or more users"),
                };
                let next = found.next_cursor.map(|cursor| {
                    let mut params = filters.to_vec();
                    params.push(("cursor", cursor.as_str()));
                    link_with("/admin/users", &params)
                });
                let invitations =
                    match state.service.invitation_overviews(&admin, &found.items).await {
                        Ok(found) => found,
                        Err(e) => return internal(&e),
                    };
                let rows = found.items.iter().map(|u| UserRow::of(u, &invitations)).collect();
                (rows, total_text, next, None)
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
            Err(secureai_domain::users::errors::ListUsersError::Unexpected(e)) => {
                return internal(&e);
            }
        };
    let seats_text = match state.service.users.seat_usage(&admin).await {
        Ok(usage) => match usage.limit {
            Some(limit) => format!("Seats: {} of {limit} in use", usage.used),
            None => format!("Seats: {} in use, no limit", usage.used),
        },
        Err(e) => return internal(&e),
    };
    let mut groups: Vec<(String, String)> =
        match state.service.provisioning.group_names(&admin).await {
            Ok(found) => found.into_iter().map(|g| (g.id.to_string(), g.name)).collect(),
            Err(e) => return internal(&e),
        };
    // A group beyond the listed ones (or deleted) stays chosen.
    let group = query.group.trim().to_owned();
    if !group.is_empty() && !groups.iter().any(|(id, _)| *id == group) {
        groups.push((group.clone(), "the group chosen".to_owned()));
    }
    let export = link_with("/api/v1/users/export.csv", &filters);
    let back = link_with("/admin/users", &filters);
    let back = back.strip_suffix('?').unwrap_or(&back);
    let back: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
    let mut nav = viewer.nav("users");
    nav.notice = match query.done.as_str() {
        "withdrawn" => Some(
            "The invitation was withdrawn: its link no longer works and the seat is free.".into(),
        ),
        "resent" => Some("A new invitation was sent; the earlier link no longer works.".into()),
        _ => None,
    };
    let template = UsersPage {
        export,
        back,
        seats_text,
        nav,
        q: query.q,
        status: query.status,
        role: query.role,
        department: query.department,
        invitation: query.invitation,
        groups,
        group,
        invitations: vec![
            ("", "Any"),
            ("expired", "Invitation expired"),
            ("email_failed", "Email failed"),
        ],
        sort: query.sort,
        statuses: vec![
            ("", "Any"),
            ("invited", "Invited"),
            ("active", "Active"),
            ("deactivated", "Deactivated"),
        ],
        roles: vec![("", "Any"), ("user", "User"), ("admin", "Admin")],
        sorts: vec![
            ("-created", "Newest first"),
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
    /// "Sign in with a password" was ticked (offered while SSO is on).
    password: bool,
    /// How long the invitation link works (from the configuration).
    valid_for: String,
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
        password: false,
        valid_for: link_lifetime(&state),
    };
    page(StatusCode::OK, &template)
}

/// How long invitation and reset links work, in words.
pub(crate) fn link_lifetime(state: &AppState) -> String {
    secureai_domain::dates::lifetime_in_words(state.service.policy().invitation_ttl)
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
    /// Present when "Sign in with a password (break-glass admin)" is ticked.
    #[serde(default)]
    password: Option<String>,
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
        // Unticked: the instance's default (SSO while it is configured).
        sign_in: form.password.is_some().then(|| "password".to_owned()),
    };
    let error = match state
        .service
        .invitations
        .invite_user(&admin, &request, &request_context(req))
        .await
    {
        Ok(invited) => return see_other(&format!("/admin/users/{}?done=invited", invited.user.id)),
        Err(InviteUserError::Unexpected(e)) => return internal(&e),
        Err(InviteUserError::StepUp(e)) => return super::step_up::refused(&viewer, e),
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
        password: form.password.is_some(),
        valid_for: link_lifetime(&state),
    };
    page(StatusCode::UNPROCESSABLE_ENTITY, &template)
}
