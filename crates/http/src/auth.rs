//! How a request proves who is behind it: a session token in the
//! `secureai_session` cookie (browsers) or an `Authorization: Bearer` header
//! (scripts, other services). The token is resolved on every request, so a
//! role change or deactivation applies to the very next one.

use poem::Request;
use poem::http::Method;
use poem::web::cookie::{Cookie, SameSite};
use poem_openapi::SecurityScheme;
use poem_openapi::auth::{ApiKey, Bearer};
use secureai_domain::access::{ApiScope, Principal};
use secureai_domain::api_tokens::models::API_TOKEN_PREFIX;
use secureai_domain::sessions::errors::AuthenticateError;
use secureai_domain::{PlainToken, RequestContext};

use crate::AppState;
use crate::errors::ApiError;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "secureai_session";

/// A session token in the `Authorization: Bearer` header.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", rename = "bearer")]
pub struct BearerToken(Bearer);

/// A session token in the `secureai_session` cookie.
#[derive(SecurityScheme)]
#[oai(ty = "api_key", key_name = "secureai_session", key_in = "cookie", rename = "session_cookie")]
pub struct SessionCookie(ApiKey);

/// Either way of presenting a session.
#[derive(SecurityScheme)]
pub enum SessionAuth {
    /// Bearer header.
    Bearer(BearerToken),
    /// Cookie.
    Cookie(SessionCookie),
}

impl SessionAuth {
    fn token(&self) -> PlainToken {
        match self {
            Self::Bearer(b) => PlainToken::presented(b.0.token.clone()),
            Self::Cookie(c) => PlainToken::presented(c.0.key.clone()),
        }
    }
}

/// Whether a presented token is a personal API token (by its prefix).
fn is_api_token(token: &PlainToken) -> bool {
    token.expose().starts_with(API_TOKEN_PREFIX)
}

/// 403 `session_required` for a personal API token where only a
/// signed-in session may act (its own sessions, second factors, tokens).
fn refuse_api_token(token: &PlainToken) -> Result<(), ApiError> {
    if is_api_token(token) {
        return Err(ApiError::forbidden(
            "session_required",
            "this request needs a signed-in session: personal API tokens cannot make it",
        ));
    }
    Ok(())
}

/// Where a request came from, for the audit log and the throttles: the
/// client's address as the trusted proxies report it
/// ([`crate::client_address`]).
pub fn request_context(req: &Request) -> RequestContext {
    let peer = req.remote_addr().as_socket_addr().map(std::net::SocketAddr::ip);
    let ip = match req.data::<AppState>() {
        Some(state) => state.trusted_proxies.client_address(peer, req.headers()),
        None => peer,
    };
    RequestContext {
        ip: ip.map(|ip| ip.to_string()),
        user_agent: req.header("user-agent").map(|ua| ua.chars().take(512).collect()),
        // The request's log line names the audit events it made.
        audit_ids: crate::RequestLog::audit_ids(req),
    }
}

impl AppState {
    /// Resolves the caller; refuses cross-site use of the cookie.
    ///
    /// # Errors
    /// 401 without a live session; 403 `csrf_rejected` for a cookie-borne
    /// state-changing request from another site.
    pub async fn principal(
        &self,
        auth: &SessionAuth,
        req: &Request,
    ) -> Result<Principal, ApiError> {
        self.refuse_cross_site(auth, req)?;
        let token = auth.token();
        refuse_api_token(&token)?;
        let principal = self.service.sessions.authenticate(&token).await?;
        crate::RequestLog::actor(req, principal.user().id);
        Ok(principal)
    }

    /// Resolves the caller: a session, or a personal API token (in the
    /// `Authorization: Bearer` header only) that holds `scope` (`None`:
    /// any token, for `GET /me`).
    ///
    /// # Errors
    /// As [`AppState::principal`]; 401 `invalid_token` for a token that is
    /// malformed, unknown, expired or revoked (or whose owner is no longer
    /// an active admin); 403 `insufficient_scope` for one without `scope`.
    pub async fn caller(
        &self,
        auth: &SessionAuth,
        req: &Request,
        scope: Option<ApiScope>,
    ) -> Result<Principal, ApiError> {
        self.refuse_cross_site(auth, req)?;
        let token = auth.token();
        if !is_api_token(&token) {
            let principal = self.service.sessions.authenticate(&token).await?;
            crate::RequestLog::actor(req, principal.user().id);
            return Ok(principal);
        }
        if matches!(auth, SessionAuth::Cookie(_)) {
            return Err(AuthenticateError::Unauthenticated.into());
        }
        let principal = self.service.api_tokens.authenticate(&token, &request_context(req)).await?;
        crate::RequestLog::actor(req, principal.user().id);
        if let Some(scope) = scope {
            principal.require_scope(scope).map_err(|_| {
                ApiError::forbidden(
                    "insufficient_scope",
                    format!("this API token lacks the `{}` scope", scope.as_str()),
                )
            })?;
        }
        Ok(principal)
    }

    /// [`AppState::principal`] that also accepts a session that may only
    /// set up a second factor: for the requests that set one up.
    ///
    /// # Errors
    /// As [`AppState::principal`].
    pub async fn enrolling_principal(
        &self,
        auth: &SessionAuth,
        req: &Request,
    ) -> Result<Principal, ApiError> {
        self.refuse_cross_site(auth, req)?;
        let token = auth.token();
        refuse_api_token(&token)?;
        let principal = self.service.sessions.authenticate_for_enrolment(&token).await?;
        crate::RequestLog::actor(req, principal.user().id);
        Ok(principal)
    }

    /// 403 `csrf_rejected` for a cookie-borne state-changing request from
    /// another site.
    fn refuse_cross_site(&self, auth: &SessionAuth, req: &Request) -> Result<(), ApiError> {
        if matches!(auth, SessionAuth::Cookie(_)) && !self.same_origin(req) {
            return Err(ApiError::forbidden(
                "csrf_rejected",
                "this request came from another site; cookie-authenticated changes must come from SecureAI's own pages",
            ));
        }
        Ok(())
    }

    /// Whether a state-changing, cookie-authenticated request comes from
    /// our own origin (`Sec-Fetch-Site`, else `Origin`). Safe methods pass.
    pub(crate) fn same_origin(&self, req: &Request) -> bool {
        if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
            return true;
        }
        if let Some(site) = req.header("sec-fetch-site") {
            return matches!(site, "same-origin" | "none");
        }
        match req.header("origin") {
            Some(origin) => origin.trim_end_matches('/') == self.origin(),
            // Non-browser clients send neither; browsers always send one of
            // them on cross-site POSTs.
            None => true,
        }
    }

    /// The session cookie carrying `token`.
    pub fn session_cookie(&self, token: &PlainToken) -> Cookie {
        let mut cookie = Cookie::new_with_str(SESSION_COOKIE, token.expose());
        cookie.set_http_only(true);
        cookie.set_secure(self.secure_cookies);
        cookie.set_same_site(SameSite::Lax);
        cookie.set_path("/");
        let max_age = self.service.policy().session_absolute_timeout.to_std().unwrap_or_default();
        cookie.set_max_age(max_age);
        cookie
    }

    /// A cookie that deletes the session cookie.
    pub fn cleared_session_cookie(&self) -> Cookie {
        let mut cookie = Cookie::new_with_str(SESSION_COOKIE, "");
        cookie.set_http_only(true);
        cookie.set_secure(self.secure_cookies);
        cookie.set_same_site(SameSite::Lax);
        cookie.set_path("/");
        cookie.set_max_age(std::time::Duration::ZERO);
        cookie
    }
}
