//! Self-service: `PATCH /me`, `POST /me/password`, `DELETE /me/sessions`.

use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use secrecy::SecretString;

use super::ApiTags;
use crate::AppState;
use crate::auth::{SessionAuth, request_context};
use crate::dto::{Ended, MeDto};
use crate::errors::ApiError;

/// Changes to one's own profile.
#[derive(Debug, Object)]
pub(crate) struct UpdateMe {
    /// New display name.
    name: String,
}

/// A password change. (No `Debug`: secrets.)
#[derive(Object)]
pub(crate) struct ChangePassword {
    /// The current password.
    #[oai(write_only)]
    current_password: String,
    /// The new password: 8 to 128 characters, not a common password.
    #[oai(write_only)]
    new_password: String,
}

#[derive(ApiResponse)]
pub(crate) enum PasswordChanged {
    /// Changed; every other session of yours has ended.
    #[oai(status = 204)]
    Changed,
}

#[derive(ApiResponse)]
pub(crate) enum SignedOutEverywhere {
    /// Every session ended, this one included.
    #[oai(status = 200)]
    Ended(Json<Ended>, #[oai(header = "Set-Cookie")] String),
}

pub(crate) struct MeApi(pub(crate) AppState);

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Auth")]
impl MeApi {
    /// Change your own display name.
    #[oai(path = "/me", method = "patch")]
    async fn update(
        &self,
        auth: SessionAuth,
        body: Json<UpdateMe>,
        req: &Request,
    ) -> Result<Json<MeDto>, ApiError> {
        let principal = self.0.principal(&auth, req).await?;
        let user = self
            .0
            .service
            .users
            .update_own_name(&principal, &body.0.name, &request_context(req))
            .await?;
        Ok(Json(MeDto::from(&user)))
    }

    /// Change your own password (the current one is required). Your other
    /// sessions end; this one stays.
    #[oai(path = "/me/password", method = "post")]
    async fn change_password(
        &self,
        auth: SessionAuth,
        body: Json<ChangePassword>,
        req: &Request,
    ) -> Result<PasswordChanged, ApiError> {
        let principal = self.0.principal(&auth, req).await?;
        self.0
            .service
            .passwords
            .change_own_password(
                &principal,
                &SecretString::from(body.0.current_password),
                SecretString::from(body.0.new_password),
                &request_context(req),
            )
            .await?;
        Ok(PasswordChanged::Changed)
    }

    /// Sign out everywhere: every session of yours ends, this one included.
    #[oai(path = "/me/sessions", method = "delete")]
    async fn sign_out_everywhere(
        &self,
        auth: SessionAuth,
        req: &Request,
    ) -> Result<SignedOutEverywhere, ApiError> {
        let principal = self.0.principal(&auth, req).await?;
        let ended =
            self.0.service.sessions.sign_out_everywhere(&principal, &request_context(req)).await?;
        Ok(SignedOutEverywhere::Ended(
            Json(Ended { ended }),
            self.0.cleared_session_cookie().to_string(),
        ))
    }
}
