//! Passkeys on My profile › Second factor: register one (the browser's
//! side is `/static/passkeys.js`, which asks
//! `/me/second-factor/passkeys/options` for the options and sends the
//! answer with the form), rename and remove. Handlers translate forms into
//! [`secureai_domain::mfa::service::MfaService`] calls.

use poem::http::StatusCode;
use poem::web::{Data, Form, Json, Path};
use poem::{IntoResponse, Request, Response, handler};
use secureai_domain::PlainToken;
use secureai_domain::mfa::service::MfaError;
use serde::Deserialize;

use super::second_factor::{codes_page, refused};
use super::shell::{CsrfForm, enrolling_form_viewer, form_viewer, see_other};
use crate::AppState;
use crate::auth::request_context;

/// The script that runs the browser's side of every passkey ceremony.
#[handler]
pub(crate) fn script() -> Response {
    include_str!("../../templates/passkeys.js")
        .with_content_type("text/javascript; charset=utf-8")
        // Asked again each time (a small file): a new version is never
        // stale after an upgrade.
        .with_header(poem::http::header::CACHE_CONTROL, "no-cache")
        .into_response()
}

/// A JSON refusal for the script, which shows `message`.
fn json_refusal(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": code, "message": message});
    Json(body).with_status(status).into_response()
}

/// `POST /me/second-factor/passkeys/options`: a registration begun — the
/// options for `navigator.credentials.create` and the registration's token
/// (JSON, for the script).
#[handler]
pub(crate) async fn options(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<CsrfForm>,
) -> Response {
    let viewer = match enrolling_form_viewer(&state, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(_) => {
            let message = "Your session ended or this page is stale. Reload the page.";
            return json_refusal(StatusCode::FORBIDDEN, "forbidden", message);
        }
    };
    match state.service.mfa.start_passkey_registration(viewer.principal.user()).await {
        Ok(started) => {
            let Ok(options) = serde_json::from_str::<serde_json::Value>(&started.options) else {
                let message = "The passkey options could not be read. Try again.";
                return json_refusal(StatusCode::INTERNAL_SERVER_ERROR, "internal", message);
            };
            let body = serde_json::json!({
                "registration_token": started.token.expose(),
                "options": options,
            });
            Json(body)
                .with_status(StatusCode::CREATED)
                .with_header(poem::http::header::CACHE_CONTROL, "no-store")
                .into_response()
        }
        Err(MfaError::Unexpected(e)) => {
            let _ = crate::errors::ApiError::internal(&e);
            let message = "Something went wrong. The error was logged; try again in a moment.";
            json_refusal(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
        }
        Err(error) => {
            let message = super::shell::sentence(&error.to_string());
            json_refusal(StatusCode::CONFLICT, "refused", &message)
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    registration_token: String,
    #[serde(default)]
    credential: String,
}

/// `POST /me/second-factor/passkeys`: the browser's answer and the name;
/// the first second factor brings the recovery codes, shown once.
#[handler]
pub(crate) async fn add(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<AddForm>,
) -> Response {
    let viewer = match enrolling_form_viewer(&state, req, &form.csrf).await {
        Ok(viewer) => viewer,
        Err(response) => return response,
    };
    if form.credential.trim().is_empty() {
        let error = MfaError::PasskeyRefused(
            "your browser sent no passkey: passkeys need JavaScript turned on".into(),
        );
        return refused(&state, &viewer, error).await;
    }
    let token = PlainToken::presented(form.registration_token);
    let added = state
        .service
        .mfa
        .finish_passkey_registration(
            &viewer.principal,
            &token,
            &form.name,
            &form.credential,
            &request_context(req),
        )
        .await;
    match added {
        Ok(added) => match added.recovery_codes {
            Some(codes) => codes_page(&viewer, &codes, true),
            None => see_other("/me/second-factor?done=passkey-added"),
        },
        Err(MfaError::StepUp(e)) => super::step_up::refused(&viewer, e),
        Err(error) => refused(&state, &viewer, error).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct RenameForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// The viewer behind a passkey's form (its CSRF token checked) and the
/// passkey's id, or the answer to give.
async fn passkey_form(
    state: &AppState,
    req: &Request,
    id: &str,
    csrf: &str,
) -> Result<(super::shell::Viewer, uuid::Uuid), Response> {
    let viewer = form_viewer(state, req, csrf).await?;
    match uuid::Uuid::parse_str(id) {
        Ok(id) => Ok((viewer, id)),
        Err(_) => Err(refused(state, &viewer, MfaError::NoSuchPasskey).await),
    }
}

/// `POST /me/second-factor/passkeys/{id}/rename`.
#[handler]
pub(crate) async fn rename(
    state: Data<&AppState>,
    req: &Request,
    Path(id): Path<String>,
    Form(form): Form<RenameForm>,
) -> Response {
    let (viewer, id) = match passkey_form(&state, req, &id, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let user = viewer.principal.user();
    match state.service.mfa.rename_passkey(user, id, &form.name).await {
        Ok(()) => see_other("/me/second-factor?done=passkey-renamed"),
        Err(error) => refused(&state, &viewer, error).await,
    }
}

/// `POST /me/second-factor/passkeys/{id}/remove`: the last required one is
/// replaced (after a recent check, then the session may only set up a new
/// one), as the authenticator app is.
#[handler]
pub(crate) async fn remove(
    state: Data<&AppState>,
    req: &Request,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let (viewer, id) = match passkey_form(&state, req, &id, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match state.service.mfa.remove_passkey(&viewer.principal, id, &request_context(req)).await {
        Ok(true) => see_other("/me/second-factor"),
        Ok(false) => see_other("/me/second-factor?done=passkey-removed"),
        Err(MfaError::StepUp(e)) => super::step_up::refused(&viewer, e),
        Err(error) => refused(&state, &viewer, error).await,
    }
}
