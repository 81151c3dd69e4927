//! Personal API tokens: `POST /me/tokens` (the secret, once), `GET
//! /me/tokens`, `DELETE /me/tokens/{id}`; admins see and revoke everyone's
//! at `GET /tokens` and `DELETE /tokens/{id}`. A token is sent as
//! `Authorization: Bearer sai_pat_…` and opens what its scopes name, as
//! its owner — never more than the owner's role allows now.

use chrono::{DateTime, DurationRound, Utc};
use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use secureai_domain::api_tokens::models::{ApiTokenStatus, ListedApiToken, NewApiToken};

use super::ApiTags;
use crate::AppState;
use crate::auth::{SessionAuth, request_context};
use crate::errors::ApiError;

/// A new token.
#[derive(Object)]
pub(crate) struct CreateToken {
    /// What you call it ("Nightly HR sync"): 1 to 64 characters.
    #[oai(validator(max_length = 64))]
    name: String,
    /// Days until it stops working: 1 to 366 (default 90).
    #[oai(validator(minimum(value = "1"), maximum(value = "366")))]
    expires_in_days: Option<u32>,
    /// What it may do: `users:read`, `users:write`, `audit:read`,
    /// `analytics:read`, `settings:write` (at least one).
    #[oai(validator(max_items = 10, min_items = 1))]
    scopes: Vec<String>,
}

/// A personal API token (never its secret).
#[derive(Object)]
pub(crate) struct TokenDto {
    /// Identifier.
    id: uuid::Uuid,
    /// Its name.
    name: String,
    /// What it may do.
    scopes: Vec<String>,
    /// `active`, `expired`, `revoked`, or `disabled` (its owner is no
    /// longer an active admin: revoked at its next use).
    status: String,
    /// When it was created.
    created_at: DateTime<Utc>,
    /// When it stops working.
    expires_at: DateTime<Utc>,
    /// When it was last used, to the minute (`null`: never).
    last_used_at: Option<DateTime<Utc>>,
    /// From which address it was last used.
    last_used_ip: Option<String>,
    /// When it was revoked.
    revoked_at: Option<DateTime<Utc>>,
    /// Whose it is (in the admins' list; `null` in your own).
    owner_email: Option<String>,
}

impl TokenDto {
    fn of(listed: &ListedApiToken) -> Self {
        let token = &listed.token;
        Self {
            id: token.id,
            name: token.name.clone(),
            scopes: token.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            status: listed.status.as_str().to_owned(),
            created_at: token.created_at,
            expires_at: token.expires_at,
            last_used_at: token
                .last_used_at
                .map(|at| at.duration_trunc(chrono::Duration::minutes(1)).unwrap_or(at)),
            last_used_ip: token.last_used_ip.clone(),
            revoked_at: token.revoked_at,
            owner_email: listed.owner_email.clone(),
        }
    }
}

/// A token just created.
#[derive(Object)]
pub(crate) struct TokenCreatedDto {
    /// The token.
    token: TokenDto,
    /// Its secret, shown this once: `Authorization: Bearer <secret>`.
    secret: String,
}

#[derive(ApiResponse)]
pub(crate) enum TokenCreated {
    /// Created; keep the secret now, it is never shown again.
    #[oai(status = 201)]
    Created(Json<TokenCreatedDto>, #[oai(header = "Cache-Control")] String),
}

#[derive(ApiResponse)]
pub(crate) enum TokenRevoked {
    /// Revoked: it opens nothing from the next request on.
    #[oai(status = 204)]
    Revoked,
}

pub(crate) struct TokensApi(pub(crate) AppState);

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Auth")]
impl TokensApi {
    /// Create a personal API token for your scripts (admins). Needs a
    /// signed-in session (a token makes none) and, if you have a second
    /// factor, a check from the last 10 minutes (403
    /// `mfa_step_up_required`). The secret (`sai_pat_…`) is shown once. 400
    /// `invalid_body` for a name over 64 characters, days outside 1–366,
    /// no scope or more than 10; 422 `invalid_name` (blank or control
    /// characters), `invalid_scopes` (an unknown scope); 409
    /// `too_many_tokens` at 50 live ones.
    #[oai(path = "/me/tokens", method = "post")]
    async fn create(
        &self,
        auth: SessionAuth,
        body: Json<CreateToken>,
        req: &Request,
    ) -> Result<TokenCreated, ApiError> {
        let principal = self.0.principal(&auth, req).await?;
        let new = NewApiToken {
            name: body.0.name,
            expires_in_days: body.0.expires_in_days,
            scopes: body.0.scopes,
        };
        let issued =
            self.0.service.api_tokens.create(&principal, &new, &request_context(req)).await?;
        let listed = ListedApiToken {
            token: issued.token,
            status: ApiTokenStatus::Active,
            owner_email: None,
        };
        Ok(TokenCreated::Created(
            Json(TokenCreatedDto {
                token: TokenDto::of(&listed),
                secret: issued.secret.expose().to_owned(),
            }),
            "no-store".to_owned(),
        ))
    }

    /// Your personal API tokens, newest first (never a secret).
    #[oai(path = "/me/tokens", method = "get")]
    async fn own(&self, auth: SessionAuth, req: &Request) -> Result<Json<Vec<TokenDto>>, ApiError> {
        let principal = self.0.principal(&auth, req).await?;
        let tokens = self.0.service.api_tokens.own_tokens(&principal).await?;
        Ok(Json(tokens.iter().map(TokenDto::of).collect()))
    }

    /// Revoke one of your tokens. 404 `token_not_found` (unknown, another's,
    /// or revoked already).
    #[oai(path = "/me/tokens/:id", method = "delete")]
    async fn revoke_own(
        &self,
        auth: SessionAuth,
        id: Path<uuid::Uuid>,
        req: &Request,
    ) -> Result<TokenRevoked, ApiError> {
        let principal = self.0.principal(&auth, req).await?;
        self.0.service.api_tokens.revoke_own(&principal, id.0, &request_context(req)).await?;
        Ok(TokenRevoked::Revoked)
    }

    /// Everyone's personal API tokens with their owners, newest first
    /// (admins).
    #[oai(path = "/tokens", method = "get", tag = "ApiTags::Settings")]
    async fn all(&self, auth: SessionAuth, req: &Request) -> Result<Json<Vec<TokenDto>>, ApiError> {
        let principal = self.0.principal(&auth, req).await?;
        let tokens = self.0.service.api_tokens.all_tokens(&principal).await?;
        Ok(Json(tokens.iter().map(TokenDto::of).collect()))
    }

    /// Revoke anyone's token (admins). 404 `token_not_found`.
    #[oai(path = "/tokens/:id", method = "delete", tag = "ApiTags::Settings")]
    async fn revoke(
        &self,
        auth: SessionAuth,
        id: Path<uuid::Uuid>,
        req: &Request,
    ) -> Result<TokenRevoked, ApiError> {
        let principal = self.0.principal(&auth, req).await?;
        principal.admin()?;
        self.0.service.api_tokens.revoke(&principal, id.0, &request_context(req)).await?;
        Ok(TokenRevoked::Revoked)
    }
}
