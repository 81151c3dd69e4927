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

/// `back` if it is a user's profile, rebuilt from the parsed id: never a
/// redirect elsewhere.
fn profile_back(back: &str) -> Option<String> {
    let id = back.strip_prefix("/admin/users/")?.parse::<secureai_domain::UserId>().ok()?;
    Some(format!("/admin/users/{id}"))
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
    let back = profile_back(&form.back).unwrap_or_else(|| "/admin/settings".to_owned());
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

#[cfg(test)]
mod tests {
    use super::profile_back;

    #[test]
    fn retry_returns_only_to_a_users_profile() {
        let id = secureai_domain::UserId::generate();
        let profile = format!("/admin/users/{id}");
        assert_eq!(profile_back(&profile), Some(profile.clone()));
        for refused in [
            format!("//evil.example/admin/users/{id}"),
            format!("/admin/users/{id}/../../../sign-out"),
            format!("/admin/users/{id}?x=1"),
            "/admin/users/".to_owned(),
            "https://evil.example".to_owned(),
            String::new(),
        ] {
            assert_eq!(profile_back(&refused), None, "{refused}");
        }
    }
}
