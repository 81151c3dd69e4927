//! Step-up on the pages: an action that needs a recent second-factor check
//! ([`secureai_domain::mfa::check::require_recent_factor`]) asks for a code
//! and then does what was asked, without the admin filling the form again.
//!
//! A handler whose use case answered `StepUpError::Required` returns
//! [`needed`]; the [`StepUp`] middleware around it, which kept the form it
//! was sent, answers instead with a page asking for a code whose form
//! carries every field of the first one and posts back to the same
//! address. When that form comes back, the middleware checks the code
//! (`SessionService::step_up`: throttled and audited like every
//! second-factor check), takes the code out, and hands the first form to
//! the handler, which now goes through.

use askama::Template;
use poem::http::{Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use secureai_domain::mfa::check::StepUpError;
use secureai_domain::mfa::models::MfaMethod;
use secureai_domain::sessions::errors::StepUpCheckError;

use super::shell::{Nav, Viewer, form_viewer};
use super::{internal, page};
use crate::AppState;
use crate::auth::request_context;

/// The forms' fields that hold a secret, with what the page calls them:
/// never echoed back into the page, asked for again instead.
const SECRET_FIELDS: &[(&str, &str)] =
    &[("password", "the SMTP password"), ("client_secret", "the client secret")];

/// The field of the step-up form that carries the code.
const CODE_FIELD: &str = "step_up_code";
/// The field that says which factor the code is.
const METHOD_FIELD: &str = "step_up_method";
/// The field that carries the passkey challenge's token.
const CHALLENGE_FIELD: &str = "step_up_challenge";
/// The field that carries the passkey's answer.
const CREDENTIAL_FIELD: &str = "step_up_credential";

/// Marks a handler's answer: the action needs a recent second-factor
/// check. Carries what the page asking for it shows in its header.
#[derive(Clone)]
struct Needed {
    name: String,
    admin: bool,
    csrf: String,
    principal: secureai_domain::access::Principal,
}

/// The answer of a handler whose action needs a recent second-factor
/// check; [`StepUp`] turns it into the page asking for one.
pub(crate) fn needed(viewer: &Viewer) -> Response {
    let mut response = StatusCode::FORBIDDEN.into_response();
    response.extensions_mut().insert(Needed::of(viewer));
    response
}

impl Needed {
    fn of(viewer: &Viewer) -> Self {
        let nav = viewer.nav("");
        Self {
            name: nav.name,
            admin: nav.admin,
            csrf: nav.csrf,
            principal: viewer.principal.clone(),
        }
    }
}

/// The answer for a refused step-up: ask for a code, or the failure page.
pub(crate) fn refused(viewer: &Viewer, error: StepUpError) -> Response {
    match error {
        // Pages are sessions: a token never reaches them.
        StepUpError::Required | StepUpError::SessionRequired => needed(viewer),
        StepUpError::Unexpected(e) => internal(&e),
    }
}

#[derive(Template)]
#[template(path = "step_up.html")]
struct StepUpPage {
    nav: Nav,
    error: Option<String>,
    action: String,
    back: String,
    fields: Vec<(String, String)>,
    /// Secrets typed into the first form: asked for again, never echoed.
    retype: Vec<(&'static str, &'static str)>,
    method: String,
    /// A challenge for the admin's passkeys: its token and the options.
    passkey: Option<(String, String)>,
    /// An authenticator app is set up (the code may be its).
    totp: bool,
}

/// Keeps the form of the routes it wraps, to ask for a second-factor
/// check and resume it (see the module).
pub(crate) struct StepUp;

impl<E: Endpoint> Middleware<E> for StepUp {
    type Output = StepUpEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        StepUpEndpoint { inner: ep }
    }
}

pub(crate) struct StepUpEndpoint<E> {
    inner: E,
}

fn is_form(req: &Request) -> bool {
    req.method() == Method::POST
        && req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

impl<E: Endpoint> Endpoint for StepUpEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let Some(state) = req.data::<AppState>().cloned() else {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        };
        if !is_form(&req) {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        let body = req.take_body().into_bytes().await?;
        let mut fields: Vec<(String, String)> =
            url::form_urlencoded::parse(&body).into_owned().collect();
        let code = take(&mut fields, CODE_FIELD);
        let challenge = take(&mut fields, CHALLENGE_FIELD);
        let credential = take(&mut fields, CREDENTIAL_FIELD);
        let method = match take(&mut fields, METHOD_FIELD).as_deref() {
            Some("recovery_code") => MfaMethod::RecoveryCode,
            _ => MfaMethod::Totp,
        };
        let action = req.uri().path().to_owned();
        // The passkey's answer, when the page's passkey button sent it;
        // otherwise the code.
        let proof = match (credential.filter(|c| !c.is_empty()), code) {
            (Some(answer), _) => Some(Proof::Passkey(challenge.unwrap_or_default(), answer)),
            (None, Some(code)) => Some(Proof::Code(method, code)),
            (None, None) => None,
        };
        if let Some(proof) = proof {
            let csrf = fields.iter().find(|(k, _)| k == "csrf").map_or("", |(_, v)| v.as_str());
            let viewer = match form_viewer(&state, &req, csrf).await {
                Ok(viewer) => viewer,
                Err(response) => return Ok(response),
            };
            let context = request_context(&req);
            let sessions = &state.service.sessions;
            let by_passkey = matches!(proof, Proof::Passkey(..));
            let checked = match proof {
                Proof::Code(method, code) => {
                    sessions.step_up(&viewer.principal, method, &code, &context).await
                }
                Proof::Passkey(challenge, answer) => {
                    let challenge = secureai_domain::PlainToken::presented(challenge);
                    sessions
                        .step_up_with_passkey(&viewer.principal, &challenge, &answer, &context)
                        .await
                }
            };
            match checked {
                // Without a factor nothing asks for one: go on.
                Ok(_) | Err(StepUpCheckError::NotEnrolled) => {}
                Err(StepUpCheckError::Unexpected(e)) => return Ok(internal(&e)),
                Err(error) => {
                    let refusal = Refusal::of(&error, by_passkey);
                    let needed = Needed::of(&viewer);
                    return Ok(ask(&state, needed, &action, fields, method, refusal).await);
                }
            }
        }
        let form = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter())
            .finish();
        req.set_body(form);
        let response = self.inner.call(req).await?.into_response();
        match response.extensions().get::<Needed>().cloned() {
            Some(needed) => {
                let first =
                    Refusal { text: None, retry_after: None, status: StatusCode::FORBIDDEN };
                Ok(ask(&state, needed, &action, fields, MfaMethod::Totp, first).await)
            }
            None => Ok(response),
        }
    }
}

/// What the step-up form brought back.
enum Proof {
    /// A code, and which factor it is.
    Code(MfaMethod, String),
    /// A passkey challenge's token and the passkey's answer.
    Passkey(String, String),
}

/// Why the page is shown again, and with which status.
struct Refusal {
    text: Option<String>,
    retry_after: Option<u64>,
    status: StatusCode,
}

impl Refusal {
    fn of(error: &StepUpCheckError, by_passkey: bool) -> Self {
        let (text, retry_after, status) = match error {
            StepUpCheckError::Throttled { retry_after_secs } => {
                (error.to_string(), Some(*retry_after_secs), StatusCode::TOO_MANY_REQUESTS)
            }
            _ if by_passkey => (
                "that passkey was not accepted: it is not registered to your account (removed, \
                 or another account's), or the page waited more than five minutes; try again"
                    .to_owned(),
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            _ => (error.to_string(), None, StatusCode::UNPROCESSABLE_ENTITY),
        };
        Self { text: Some(super::shell::sentence(&text)), retry_after, status }
    }
}

/// Removes a field from the form and returns its value.
fn take(fields: &mut Vec<(String, String)>, name: &str) -> Option<String> {
    let at = fields.iter().position(|(k, _)| k == name)?;
    Some(fields.remove(at).1)
}

/// The page asking for a code (or the admin's passkey), whose forms carry
/// the first form's fields back to the same address.
async fn ask(
    state: &AppState,
    needed: Needed,
    action: &str,
    fields: Vec<(String, String)>,
    method: MfaMethod,
    refusal: Refusal,
) -> Response {
    let passkey = match state.service.sessions.step_up_challenge(&needed.principal).await {
        Ok(challenge) => challenge.map(|c| (c.token.expose().to_owned(), c.options)),
        Err(e) => return internal(&e),
    };
    let totp = match state.service.mfa.status(needed.principal.user()).await {
        Ok(status) => status.totp,
        Err(e) => return internal(&e),
    };
    let method = if totp { method } else { MfaMethod::RecoveryCode };
    let nav = Nav {
        name: needed.name,
        admin: needed.admin,
        csrf: needed.csrf,
        section: section_of(action),
        notice: None,
    };
    // Email settings have no page of their own.
    let back = if action == "/admin/settings/email" { "/admin/settings" } else { action };
    // A secret the admin typed stays out of the page: they type it again.
    let retype: Vec<(&'static str, &'static str)> = SECRET_FIELDS
        .iter()
        .filter(|(name, _)| fields.iter().any(|(k, v)| k == name && !v.is_empty()))
        .copied()
        .collect();
    let fields: Vec<(String, String)> =
        fields.into_iter().filter(|(k, _)| !SECRET_FIELDS.iter().any(|(s, _)| s == k)).collect();
    let mut response = page(
        refusal.status,
        &StepUpPage {
            nav,
            error: refusal.text,
            action: action.to_owned(),
            back: back.to_owned(),
            fields,
            retype,
            method: method.as_str().to_owned(),
            passkey,
            totp,
        },
    );
    if let Some(value) =
        refusal.retry_after.and_then(|s| poem::http::HeaderValue::from_str(&s.to_string()).ok())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The header's section for the address the form was sent to.
fn section_of(action: &str) -> &'static str {
    if action.starts_with("/admin/users") {
        "users"
    } else if action.starts_with("/me") {
        "me"
    } else {
        "settings"
    }
}
