//! Sign-in through the company's identity provider: the browser-facing
//! end points of OpenID Connect (`/auth/oidc/login`, `/auth/oidc/callback`)
//! and SAML (`/auth/saml/login`, the assertion consumer service
//! `/auth/saml/acs`, our metadata at `/auth/saml/metadata`). The
//! handlers translate HTTP to the domain's `begin_sso` / `complete_sso`;
//! every decision (who, whether, audit) is the domain's.

use poem::http::{StatusCode, header};
use poem::web::Data;
use poem::web::cookie::{Cookie, SameSite};
use poem::{IntoResponse, Request, Response, handler};
use secureai_domain::PlainToken;
use secureai_domain::sso::errors::{BeginSsoError, SsoSignInError};
use secureai_domain::sso::models::{SsoProtocol, SsoResponse};
use secureai_domain::sso::service::LOGIN_TTL_MINUTES;

use super::{internal, message};
use crate::AppState;
use crate::auth::request_context;

/// The cookie that binds an identity provider's answer to the browser that
/// started the sign-in: the answer is matched to the sign-in in flight
/// through this cookie only (never through anything the answer carries),
/// so an answer posted from another browser — an attacker's own
/// `SAMLResponse` with their `RelayState`, say — finds no sign-in.
///
/// OIDC's answer is a top-level GET redirect, which carries a
/// `SameSite=Lax` cookie. SAML's is a cross-site POST, which carries only a
/// `SameSite=None` cookie, and browsers keep those only with `Secure`: over
/// https the SAML cookie is `SameSite=None; Secure`. Over plain http
/// (development) it stays `Lax`, which reaches us only when the IdP is on
/// the same site (e.g. both on localhost); use https in production.
const SSO_COOKIE: &str = "secureai_sso";

fn sso_cookie(
    state: &AppState,
    protocol: SsoProtocol,
    value: &str,
    max_age: std::time::Duration,
) -> Cookie {
    let mut cookie = Cookie::new_with_str(SSO_COOKIE, value);
    cookie.set_http_only(true);
    cookie.set_secure(state.secure_cookies);
    let cross_site_post = protocol == SsoProtocol::Saml && state.secure_cookies;
    cookie.set_same_site(if cross_site_post { SameSite::None } else { SameSite::Lax });
    cookie.set_path("/auth/");
    cookie.set_max_age(max_age);
    cookie
}

/// The browser's binding token, from the cookie.
fn bound_token(req: &Request) -> Option<PlainToken> {
    req.cookie()
        .get(SSO_COOKIE)
        .map(|c| c.value_str().to_owned())
        .filter(|v| !v.is_empty())
        .map(PlainToken::presented)
}

fn not_configured() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Single sign-on is not set up",
        "This instance does not sign in through an identity provider. Sign in with your email and \
         password, or ask your administrator.",
        None,
    )
}

/// `GET /auth/oidc/login`: remembers the sign-in and sends the browser to
/// the provider.
#[handler]
pub(crate) async fn oidc_login(state: Data<&AppState>, req: &Request) -> Response {
    begin(&state, SsoProtocol::Oidc, req).await
}

/// `GET /auth/saml/login`: sends the browser to the IdP with an
/// AuthnRequest; the relay state carries the token that finds this
/// sign-in again.
#[handler]
pub(crate) async fn saml_login(state: Data<&AppState>, req: &Request) -> Response {
    begin(&state, SsoProtocol::Saml, req).await
}

/// `POST /auth/saml/acs`: the IdP's response (HTTP-POST binding). The
/// sign-in in flight is found through the browser's cookie; the relay
/// state only comes back for the IdP's sake.
#[handler]
pub(crate) async fn saml_acs(state: Data<&AppState>, req: &Request, body: String) -> Response {
    let response = SsoResponse::from_pairs(
        url::form_urlencoded::parse(body.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())),
    );
    complete(&state, SsoProtocol::Saml, bound_token(req), &response, req).await
}

async fn begin(state: &AppState, protocol: SsoProtocol, req: &Request) -> Response {
    // Each sign-in begun is a row kept for its lifetime: one address may
    // begin only so many a minute.
    let address = request_context(req).ip.and_then(|ip| ip.parse().ok());
    if let Err(wait) = state.sso_begin_limit.check(address) {
        let mut page = message(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-ins started",
            "Too many single sign-ins were started from your network. Please wait a moment and \
             try again.",
            None,
        );
        let seconds = wait.as_secs().max(1).to_string();
        if let Ok(value) = seconds.parse() {
            page.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return page;
    }
    match state.service.sso.begin_sso(protocol).await {
        Ok(started) => {
            let max_age = std::time::Duration::from_secs(60 * LOGIN_TTL_MINUTES as u64);
            let cookie = sso_cookie(state, protocol, started.browser_token.expose(), max_age);
            StatusCode::SEE_OTHER
                .with_header(header::LOCATION, started.redirect_url)
                .with_header(header::SET_COOKIE, cookie.to_string())
                .with_header(header::CACHE_CONTROL, "no-store")
                .into_response()
        }
        Err(BeginSsoError::NotConfigured) => not_configured(),
        Err(BeginSsoError::Provider(failure)) => {
            tracing::warn!(reason = failure.reason, detail = %failure.detail, "SSO sign-in could not start");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                "Your identity provider is not available",
                "SecureAI could not reach your company's identity provider. Please try again in a \
                 moment; if it keeps happening, tell your administrator.",
                None,
            )
        }
        Err(BeginSsoError::Unexpected(e)) => internal(&e),
    }
}

/// `GET /auth/oidc/callback`: the provider's answer.
#[handler]
pub(crate) async fn oidc_callback(state: Data<&AppState>, req: &Request) -> Response {
    let params = url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()));
    let response = SsoResponse::from_pairs(params);
    complete(&state, SsoProtocol::Oidc, bound_token(req), &response, req).await
}

async fn complete(
    state: &AppState,
    protocol: SsoProtocol,
    token: Option<PlainToken>,
    response: &SsoResponse,
    req: &Request,
) -> Response {
    let cleared = sso_cookie(state, protocol, "", std::time::Duration::ZERO).to_string();
    let outcome = state
        .service
        .sso
        .complete_sso(protocol, token.as_ref(), response, &request_context(req))
        .await;
    match outcome {
        Ok(signed_in) => StatusCode::SEE_OTHER
            .with_header(header::LOCATION, "/")
            .with_header(header::SET_COOKIE, cleared)
            .with_header(header::SET_COOKIE, state.session_cookie(&signed_in.token).to_string())
            .with_header(header::CACHE_CONTROL, "no-store")
            .into_response(),
        Err(SsoSignInError::Refused(refusal)) => {
            tracing::info!(
                protocol = protocol.as_str(),
                reason = refusal.reason(),
                "SSO sign-in refused"
            );
            let heading = match refusal.reason() {
                "account_deactivated" => "Account deactivated",
                "unknown_user" => "No account here",
                _ => "You were not signed in",
            };
            let again = match protocol {
                SsoProtocol::Oidc => "/auth/oidc/login",
                SsoProtocol::Saml => "/auth/saml/login",
            };
            let mut page = message(
                StatusCode::FORBIDDEN,
                heading,
                &refusal.message(),
                Some((again, "Start again")),
            );
            if let Ok(value) = cleared.parse() {
                page.headers_mut().append(header::SET_COOKIE, value);
            }
            page
        }
        Err(SsoSignInError::NotConfigured) => not_configured(),
        Err(SsoSignInError::Unexpected(e)) => internal(&e),
    }
}

/// `GET /auth/saml/metadata`: our service provider metadata.
#[handler]
pub(crate) async fn saml_metadata(state: Data<&AppState>) -> Response {
    match state.service.sso.service_provider_metadata().await {
        Ok(xml) => xml.with_content_type("application/samlmetadata+xml").into_response(),
        Err(BeginSsoError::NotConfigured) => not_configured(),
        Err(BeginSsoError::Provider(failure)) => {
            tracing::warn!(reason = failure.reason, detail = %failure.detail, "SAML metadata unavailable");
            message(
                StatusCode::SERVICE_UNAVAILABLE,
                "SAML metadata unavailable",
                &failure.detail,
                None,
            )
        }
        Err(BeginSsoError::Unexpected(e)) => internal(&e),
    }
}
