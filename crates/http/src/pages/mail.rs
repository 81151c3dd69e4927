//! Email that could not be delivered, retried from the panel: one message
//! (from a user's profile or Settings › Email) or all failed ones.

use poem::http::StatusCode;
use poem::web::{Data, Form, Path};
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::internal;
use super::settings::settings_page;
use super::shell::{CsrfForm, form_admin, see_other, sentence};
use crate::AppState;
use crate::auth::request_context;

#[derive(Deserialize)]
pub(crate) struct RetryForm {
    #[serde(default)]
    csrf: String,
    /// The page to return to (a user's profile); Settings otherwise.
    #[serde(default)]
    back: String,
}

/// `POST /admin/outbox/{id}/retry`: Retry one failed email.
#[handler]
pub(crate) async fn retry_mail(
    state: Data<&AppState>,
    req: &Request,
    Path(id): Path<String>,
    Form(form): Form<RetryForm>,
) -> Response {
    let (viewer, admin) = match form_admin(&state, req, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    // Only our own user pages: never a redirect elsewhere.
    let back = if form.back.starts_with("/admin/users/") && !form.back.contains("//") {
        form.back.as_str()
    } else {
        "/admin/settings"
    };
    let Ok(id) = id.parse::<uuid::Uuid>() else {
        return settings_page(
            &state,
            &viewer,
            &admin,
            None,
            Some("No message has this id.".into()),
            StatusCode::NOT_FOUND,
        )
        .await;
    };
    use secureai_domain::mail::admin::RetryMailError;
    match state.service.mail.retry_mail(&admin, id, &request_context(req)).await {
        Ok(_) => see_other(&format!("{back}?done=retried")),
        Err(RetryMailError::Unexpected(e)) => internal(&e),
        Err(error) => {
            let error = Some(sentence(&error.to_string()));
            settings_page(&state, &viewer, &admin, None, error, StatusCode::CONFLICT).await
        }
    }
}

/// `POST /admin/outbox/retry-all`: Retry all failed emails.
#[handler]
pub(crate) async fn retry_all_mail(
    state: Data<&AppState>,
    req: &Request,
    Form(form): Form<CsrfForm>,
) -> Response {
    let (_, admin) = match form_admin(&state, req, &form.csrf).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match state.service.mail.retry_all_failed(&admin, &request_context(req)).await {
        Ok(_) => see_other("/admin/settings?done=retried-all"),
        Err(e) => internal(&e),
    }
}
