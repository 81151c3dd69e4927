//! Password resets: `POST /users/{id}/password-reset` (admin),
//! `POST /password-resets/complete`; `DELETE /users/{id}/sessions` and
//! `DELETE /users/{id}/sign-in-pause`.

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use secrecy::SecretString;
use secureai_domain::PlainToken;
use secureai_domain::access::ApiScope;

use super::ApiTags;
use super::users::parse_id;
use crate::AppState;
use crate::auth::{SessionAuth, request_context};
use crate::dto::{Ended, MeDto};
use crate::errors::ApiError;

/// A reset link was emailed.
#[derive(Debug, Object)]
pub(crate) struct ResetRequested {
    /// When the link stops working.
    expires_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
pub(crate) enum ResetRequestedResult {
    /// The email is queued; the current password works until the link is used.
    #[oai(status = 202)]
    Accepted(Json<ResetRequested>),
}

/// The link's token and the new password. (No `Debug`: secrets.)
#[derive(Object)]
pub(crate) struct CompleteReset {
    /// The `token` parameter of the reset link.
    #[oai(write_only)]
    token: String,
    /// The new password: 8 to 128 characters, not a common password.
    #[oai(write_only)]
    password: String,
}

pub(crate) struct PasswordsApi(pub(crate) AppState);

#[OpenApi(prefix_path = "/v1")]
impl PasswordsApi {
    /// Email the user a single-use link (72 hours) to choose a new password.
    /// Their current password keeps working until they use it. Refused for
    /// SSO users (`sso_user`): their identity provider handles passwords.
    #[oai(path = "/users/:id/password-reset", method = "post", tag = "ApiTags::Users")]
    async fn request_reset(
        &self,
        auth: SessionAuth,
        /// The user's id.
        id: Path<String>,
        req: &Request,
    ) -> Result<ResetRequestedResult, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::UsersWrite)).await?.admin()?;
        let id = parse_id(&id.0)?;
        let reset = self
            .0
            .service
            .passwords
            .request_password_reset(&admin, id, &request_context(req))
            .await?;
        Ok(ResetRequestedResult::Accepted(Json(ResetRequested { expires_at: reset.expires_at })))
    }

    /// Complete a password reset: sets the new password and ends every
    /// session of the user. `reset_invalid` (404) if unknown, used or
    /// replaced; `reset_expired` (410) after 72 hours.
    #[oai(path = "/password-resets/complete", method = "post", tag = "ApiTags::Auth")]
    async fn complete_reset(
        &self,
        body: Json<CompleteReset>,
        req: &Request,
    ) -> Result<Json<MeDto>, ApiError> {
        let user = self
            .0
            .service
            .passwords
            .complete_password_reset(
                &PlainToken::presented(body.0.token),
                SecretString::from(body.0.password),
                &request_context(req),
            )
            .await?;
        Ok(Json(MeDto::from(&user)))
    }

    /// Terminate every session of a user at once; they must sign in again.
    #[oai(path = "/users/:id/sessions", method = "delete", tag = "ApiTags::Users")]
    async fn terminate_sessions(
        &self,
        auth: SessionAuth,
        /// The user's id.
        id: Path<String>,
        req: &Request,
    ) -> Result<Json<Ended>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::UsersWrite)).await?.admin()?;
        let id = parse_id(&id.0)?;
        let ended =
            self.0.service.sessions.terminate_sessions(&admin, id, &request_context(req)).await?;
        Ok(Json(Ended { ended }))
    }

    /// Allow a user whose sign-in is paused after failed attempts to sign
    /// in again now (audited as `sign_in.allowed`). Nothing paused is no
    /// error. The pause on the address the attempts came from stays.
    #[oai(path = "/users/:id/sign-in-pause", method = "delete", tag = "ApiTags::Users")]
    async fn allow_sign_in(
        &self,
        auth: SessionAuth,
        /// The user's id.
        id: Path<String>,
        req: &Request,
    ) -> Result<SignInAllowed, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::UsersWrite)).await?.admin()?;
        let id = parse_id(&id.0)?;
        self.0.service.sessions.allow_sign_in(&admin, id, &request_context(req)).await?;
        Ok(SignInAllowed::Allowed)
    }
}

#[derive(ApiResponse)]
pub(crate) enum SignInAllowed {
    /// The user may sign in again now.
    #[oai(status = 204)]
    Allowed,
}
