//! `POST /auth/login`, `POST /auth/logout`, `GET /me`.

use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use secrecy::SecretString;

use super::ApiTags;
use crate::AppState;
use crate::auth::{SessionAuth, request_context};
use crate::dto::MeDto;
use crate::errors::ApiError;

/// Credentials. (No `Debug`: it holds a password.)
#[derive(Object)]
pub(crate) struct LoginRequest {
    /// Email address.
    email: String,
    /// Password.
    #[oai(write_only)]
    password: String,
}

/// A new session.
#[derive(Object)]
pub(crate) struct LoginResponse {
    /// The session token, for `Authorization: Bearer`. Also set as the
    /// `secureai_session` cookie. Shown once.
    token: String,
    /// The signed-in user.
    user: MeDto,
}

#[derive(ApiResponse)]
pub(crate) enum LoginResult {
    /// Signed in.
    #[oai(status = 200)]
    Ok(Json<LoginResponse>, #[oai(header = "Set-Cookie")] String),
}

#[derive(ApiResponse)]
pub(crate) enum LogoutResult {
    /// Signed out; the session no longer works.
    #[oai(status = 204)]
    SignedOut(#[oai(header = "Set-Cookie")] String),
}

pub(crate) struct AuthApi(pub(crate) AppState);

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Sign in with email and password.
    ///
    /// Wrong email and wrong password get the same answer
    /// (`invalid_credentials`); `account_deactivated` is only said after the
    /// password checked out.
    #[oai(path = "/auth/login", method = "post")]
    async fn login(
        &self,
        body: Json<LoginRequest>,
        req: &Request,
    ) -> Result<LoginResult, ApiError> {
        let password = SecretString::from(body.0.password);
        let signed_in = self
            .0
            .service
            .sessions
            .sign_in(&body.0.email, &password, &request_context(req))
            .await?;
        let cookie = self.0.session_cookie(&signed_in.token).to_string();
        Ok(LoginResult::Ok(
            Json(LoginResponse {
                token: signed_in.token.expose().to_owned(),
                user: MeDto::from(&signed_in.user),
            }),
            cookie,
        ))
    }

    /// Sign out: ends the session used for this request.
    #[oai(path = "/auth/logout", method = "post")]
    async fn logout(&self, auth: SessionAuth, req: &Request) -> Result<LogoutResult, ApiError> {
        let principal = self.0.principal(&auth, req).await?;
        self.0.service.sessions.sign_out(&principal, &request_context(req)).await?;
        Ok(LogoutResult::SignedOut(self.0.cleared_session_cookie().to_string()))
    }

    /// The signed-in user, their role and permissions — read fresh on every
    /// request.
    #[oai(path = "/me", method = "get")]
    async fn me(&self, auth: SessionAuth, req: &Request) -> Result<Json<MeDto>, ApiError> {
        let principal = self.0.principal(&auth, req).await?;
        Ok(Json(MeDto::from(principal.user())))
    }
}
