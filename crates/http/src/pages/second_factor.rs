//! Your second factor (`/me/second-factor`): your passkeys (registered,
//! renamed and removed in [`super::passkeys`]); set up an authenticator
//! app from a QR code, confirm it with a code, keep the recovery codes
//! (shown once), make a new set, remove the app. Handlers translate forms
//! into [`secureai_domain::mfa::service::MfaService`] calls.

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Form, Query};
use poem::{Request, Response, handler};
use secrecy::ExposeSecret;
use secureai_domain::SignInMethod;
use secureai_domain::mfa::service::MfaError;
use serde::Deserialize;

use super::account::DoneQuery;
use super::shell::{
    CsrfForm, Viewer, enrolling_form_viewer, enrolling_viewer, see_other, sentence,
};
use super::{internal, page};
use crate::AppState;
use crate::auth::request_context;

const PAGE: &str = "/me/second-factor";

/// One of the user's passkeys, as the page lists it.
struct PasskeyRow {
    id: String,
    name: String,
    created: String,
    last_used: String,
}

/// The app being set up: its QR code, and its secret to type by hand.
struct Pending {
    qr_svg: String,
    secret_groups: String,
}

#[derive(Template)]
#[template(path = "second_factor.html")]
struct SecondFactorPage {
    nav: super::shell::Nav,
    error: Option<String>,
    sso: bool,
    /// The security policy offers (or requires) one to this user.
    offered: bool,
    /// This session may do nothing else until one is set up.
    required: bool,
    /// The user may remove their last factor (the policy does not require
    /// one); otherwise the last one is replaced.
    removable: bool,
    totp: bool,
    passkeys: Vec<PasskeyRow>,
    recovery_codes_left: u32,
    pending: Option<Pending>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryCodesPage {
    nav: super::shell::Nav,
    codes: Vec<String>,
    first: bool,
}

/// The `otpauth://` link as an inline SVG QR code (the content security
/// policy allows no `data:` image), labelled for screen readers.
fn qr_svg(uri: &str) -> String {
    let Ok(code) = qrcode::QrCode::new(uri.as_bytes()) else {
        return String::new();
    };
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let start = svg.find("<svg").unwrap_or(0);
    svg[start..].replacen(
        "<svg ",
        "<svg role=\"img\" aria-label=\"QR code to scan with your authenticator app\" ",
        1,
    )
}

/// The base32 secret in groups of four, easier to type.
fn grouped(secret: &str) -> String {
    secret
        .as_bytes()
        .chunks(4)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

async fn second_factor_page(
    state: &AppState,
    viewer: &Viewer,
    done: Option<&str>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let user = viewer.principal.user();
    let mfa = &state.service.mfa;
    let (current, pending, policy) =
        match (mfa.status(user).await, mfa.pending_totp(user).await, mfa.security_policy().await) {
            (Ok(current), Ok(pending), Ok(policy)) => (current, pending, policy),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return internal(&e),
        };
    let passkeys = match mfa.passkeys(user).await {
        Ok(passkeys) => passkeys,
        Err(e) => return internal(&e),
    };
    let mut nav = viewer.nav("me");
    nav.notice = done.and_then(|d| match d {
        "removed" if current.enrolled() => Some("Your authenticator app is removed.".to_owned()),
        "removed" => Some("Your authenticator app and its recovery codes are removed.".to_owned()),
        "passkey-added" => Some("Your passkey is added.".to_owned()),
        "passkey-renamed" => Some("Your passkey is renamed.".to_owned()),
        "passkey-removed" => Some("Your passkey is removed.".to_owned()),
        _ => None,
    });
    let passkeys = passkeys
        .iter()
        .map(|p| PasskeyRow {
            id: p.id.to_string(),
            name: p.name.clone(),
            created: super::shell::when(Some(p.created_at)),
            last_used: p
                .last_used_at
                .map_or_else(|| "Never".to_owned(), |at| super::shell::when(Some(at))),
        })
        .collect();
    let pending = pending.map(|setup| Pending {
        qr_svg: qr_svg(setup.otpauth_uri.expose_secret()),
        secret_groups: grouped(setup.secret.expose_base32()),
    });
    let template = SecondFactorPage {
        nav,
        error,
        sso: user.sign_in == SignInMethod::Sso,
        offered: policy.offers(user),
        required: viewer.principal.enrolment_only(),
        removable: !policy.requires(user),
        totp: current.totp,
        passkeys,
        recovery_codes_left: current.recovery_codes_left,
        pending,
    };
    page(status, &template)
}

pub(super) fn codes_page(
    viewer: &Viewer,
    codes: &[secrecy::SecretString],
    first: bool,
) -> Response {
    let template = RecoveryCodesPage {
        nav: viewer.nav("me"),
        codes: codes.iter().map(|c| c.expose_secret().to_owned()).collect(),
        first,
    };
    page(StatusCode::OK, &template)
}

/// The answer to a refused second-factor form: the page again with the
/// reason, or a failure page for a store error.
pub(super) async fn refused(state: &AppState, viewer: &Viewer, error: MfaError) -> Response {
    match error {
        MfaError::Unexpected(e) => internal(&e),
        error => {
            let reason = Some(sentence(&error.to_string()));
            second_factor_page(state, viewer, None, reason, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

/// `GET /me/second-factor`.
#[handler]
pub(crate) async fn show(
    state: Data<&AppState>,
    req: &Request,
    Query(q): Query<DoneQuery>,
) -> Response {
    match enrolling_viewer(&state, req).await {
        Ok(viewer) => {
            second_factor_page(&state, &viewer, q.done.as_deref(), None, StatusCode::OK).await
        }
        Err(response) => response,
    }
}

/// `POST /me/second-factor/app`: a new secret, pending; the page shows it.
#[handler]
pub(crate) async fn start_app(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<CsrfForm>,
) -> Response {
    let viewer = match enrolling_form_viewer(&state, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    match state.service.mfa.start_totp(viewer.principal.user()).await {
        Ok(_) => see_other(PAGE),
        Err(error) => refused(&state, &viewer, error).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// `POST /me/second-factor/confirm`: the app's current code confirms it;
/// the answer shows the recovery codes, once.
#[handler]
pub(crate) async fn confirm_app(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<CodeForm>,
) -> Response {
    let viewer = match enrolling_form_viewer(&state, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    match state.service.mfa.confirm_totp(&viewer.principal, &form.code, &request_context(req)).await
    {
        Ok(codes) => codes_page(&viewer, &codes, true),
        Err(MfaError::StepUp(e)) => super::step_up::refused(&viewer, e),
        Err(error) => refused(&state, &viewer, error).await,
    }
}

/// `POST /me/second-factor/recovery-codes`: a new set, shown once.
#[handler]
pub(crate) async fn new_recovery_codes(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<CsrfForm>,
) -> Response {
    let viewer = match enrolling_form_viewer(&state, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    let context = request_context(req);
    match state.service.mfa.regenerate_recovery_codes(&viewer.principal, &context).await {
        Ok(codes) => codes_page(&viewer, &codes, false),
        Err(MfaError::StepUp(e)) => super::step_up::refused(&viewer, e),
        Err(error) => refused(&state, &viewer, error).await,
    }
}

/// `POST /me/second-factor/remove`: the app and its recovery codes go.
#[handler]
pub(crate) async fn remove_app(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<CsrfForm>,
) -> Response {
    let viewer = match enrolling_form_viewer(&state, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    match state.service.mfa.remove_totp(&viewer.principal, &request_context(req)).await {
        // A required app: the session may only set up the new one now.
        Ok(true) => see_other("/me/second-factor"),
        Ok(false) => see_other("/me/second-factor?done=removed"),
        Err(MfaError::StepUp(e)) => super::step_up::refused(&viewer, e),
        Err(error) => refused(&state, &viewer, error).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_inline_svg_with_a_label() {
        let svg = qr_svg("otpauth://totp/SecureAI:ada%40example.com?secret=JBSWY3DPEHPK3PXP");
        assert!(svg.starts_with("<svg role=\"img\" aria-label="), "{}", &svg[..80]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(!svg.contains("style="), "the content security policy forbids inline styles");
        assert_eq!(grouped("JBSWY3DPEHPK3PXP"), "JBSW Y3DP EHPK 3PXP");
    }
}
