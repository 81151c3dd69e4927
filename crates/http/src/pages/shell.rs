//! What every signed-in page shares: the header, who is looking (and
//! whether they may), CSRF tokens on forms, and small text helpers.
//!
//! Forms that change something carry a CSRF token derived from the session
//! token (so only a page served to this session can carry it) and must come
//! from our own origin.

use chrono::{DateTime, Utc};
use poem::http::{StatusCode, header};
use poem::{IntoResponse, Request, Response};
use secureai_domain::PlainToken;
use secureai_domain::access::{Admin, Principal};
use secureai_domain::sso::models::SsoProtocol;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::message;
use crate::AppState;
use crate::auth::SESSION_COOKIE;

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

impl Nav {
    /// The admin section this page is in, with its address, for the
    /// guide's "Admin Panel › Users".
    pub(crate) fn crumb(&self) -> Option<(&'static str, &'static str)> {
        if !self.admin {
            return None;
        }
        Some(match self.section {
            "users" => ("Users", "/admin/users"),
            "analytics" => ("Analytics", "/admin/analytics"),
            "audit" => ("Audit log", "/admin/audit"),
            "settings" => ("Settings", "/admin/settings"),
            _ => return None,
        })
    }
}

impl Viewer {
    pub(crate) fn nav(&self, section: &'static str) -> Nav {
        Nav {
            name: self.principal.user().name.to_string(),
            admin: self.principal.user().is_active_admin(),
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

/// Where a session that may only set up a second factor is sent.
pub(crate) const ENROLMENT_PAGE: &str = "/me/second-factor";

/// The viewer, or the answer to give instead: the sign-in page, or the
/// second-factor page for a session that may only set one up.
pub(crate) async fn viewer(state: &AppState, req: &Request) -> Result<Viewer, Response> {
    let viewer = enrolling_viewer(state, req).await?;
    if viewer.principal.enrolment_only() {
        return Err(see_other(ENROLMENT_PAGE));
    }
    Ok(viewer)
}

/// The viewer, also when their session may only set up a second factor
/// (the second-factor pages and signing out).
pub(crate) async fn enrolling_viewer(state: &AppState, req: &Request) -> Result<Viewer, Response> {
    let Some(cookie) = req.cookie().get(SESSION_COOKIE) else {
        return Err(see_other("/sign-in"));
    };
    let token = PlainToken::presented(cookie.value_str().to_owned());
    match state.service.sessions.authenticate_for_enrolment(&token).await {
        Ok(principal) => {
            crate::RequestLog::actor(req, principal.user().id);
            Ok(Viewer { principal, csrf: csrf_of(&token) })
        }
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

/// [`form_viewer`] for a session that may only set up a second factor.
pub(crate) async fn enrolling_form_viewer(
    state: &AppState,
    req: &Request,
    csrf: &str,
) -> Result<Viewer, Response> {
    let viewer = enrolling_viewer(state, req).await?;
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

pub(crate) fn when(at: Option<DateTime<Utc>>) -> String {
    at.map_or_else(|| "—".to_owned(), |at| at.format("%-d %b %Y, %H:%M UTC").to_string())
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

/// A form that carries only its CSRF token.
#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// Where the sign-in page's SSO button leads, when SSO is on.
pub(crate) async fn sso_link(state: &AppState) -> Option<&'static str> {
    match state.service.sso.sso_protocol().await {
        Ok(Some(SsoProtocol::Oidc)) => Some("/auth/oidc/login"),
        Ok(Some(SsoProtocol::Saml)) => Some("/auth/saml/login"),
        _ => None,
    }
}
