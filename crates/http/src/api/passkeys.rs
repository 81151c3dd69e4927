//! Your passkeys (WebAuthn): `POST /me/passkeys/registration` (the options
//! for `navigator.credentials.create`), `POST /me/passkeys` (the browser's
//! answer and a name), `GET /me/passkeys`, `PATCH` and `DELETE
//! /me/passkeys/{id}`. A passkey verifies its user (PIN or biometrics), so
//! it is a second factor on its own; at sign-in it answers the challenge
//! of `POST /auth/login` (`methods` has `webauthn`).

use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use secrecy::ExposeSecret;
use secureai_domain::PlainToken;
use secureai_domain::mfa::passkeys::Passkey;

use super::ApiTags;
use crate::AppState;
use crate::auth::{SessionAuth, request_context};
use crate::errors::ApiError;

const NO_STORE: &str = "no-store";

/// A registration begun.
#[derive(Object)]
pub(crate) struct RegistrationDto {
    /// Send it back with the answer, within five minutes; works once.
    registration_token: String,
    /// For `navigator.credentials.create` (`{"publicKey": {...}}`, binary
    /// fields base64url).
    options: serde_json::Value,
}

/// The browser's answer to a registration, and the passkey's name.
#[derive(Object)]
pub(crate) struct RegisterPasskey {
    /// From `POST /me/passkeys/registration`.
    #[oai(write_only, validator(max_length = 100))]
    registration_token: String,
    /// What you call it ("YubiKey", "Work laptop"): 1 to 64 characters.
    #[oai(validator(max_length = 64))]
    name: String,
    /// `navigator.credentials.create`'s `PublicKeyCredential` (binary
    /// fields base64url).
    credential: serde_json::Value,
}

/// A new name.
#[derive(Object)]
pub(crate) struct RenamePasskey {
    /// 1 to 64 characters.
    #[oai(validator(max_length = 64))]
    name: String,
}

/// One of your passkeys.
#[derive(Object)]
pub(crate) struct PasskeyDto {
    /// Identifier.
    id: uuid::Uuid,
    /// Its name.
    name: String,
    /// When it was registered.
    created_at: chrono::DateTime<chrono::Utc>,
    /// When it last signed you in (`null`: never).
    last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<&Passkey> for PasskeyDto {
    fn from(passkey: &Passkey) -> Self {
        Self {
            id: passkey.id,
            name: passkey.name.clone(),
            created_at: passkey.created_at,
            last_used_at: passkey.last_used_at,
        }
    }
}

/// A passkey registered.
#[derive(Object)]
pub(crate) struct PasskeyAddedDto {
    /// The passkey.
    passkey: PasskeyDto,
    /// With your first second factor: ten recovery codes, shown once.
    recovery_codes: Option<Vec<String>>,
}

#[derive(ApiResponse)]
pub(crate) enum RegistrationStarted {
    /// The options for the browser.
    #[oai(status = 201)]
    Created(Json<RegistrationDto>, #[oai(header = "Cache-Control")] String),
}

#[derive(ApiResponse)]
pub(crate) enum PasskeyRegistered {
    /// Registered.
    #[oai(status = 201)]
    Created(Json<PasskeyAddedDto>, #[oai(header = "Cache-Control")] String),
}

#[derive(ApiResponse)]
pub(crate) enum PasskeyChanged {
    /// Done.
    #[oai(status = 204)]
    Done,
}

pub(crate) struct PasskeysApi(pub(crate) AppState);

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Auth")]
impl PasskeysApi {
    /// Your passkeys, oldest first.
    #[oai(path = "/me/passkeys", method = "get")]
    async fn list(
        &self,
        auth: SessionAuth,
        req: &Request,
    ) -> Result<Json<Vec<PasskeyDto>>, ApiError> {
        let principal = self.0.enrolling_principal(&auth, req).await?;
        let passkeys = self.0.service.mfa.passkeys(principal.user()).await?;
        Ok(Json(passkeys.iter().map(PasskeyDto::from).collect()))
    }

    /// Begin registering a passkey: the options for the browser. 409
    /// `too_many_passkeys` at ten; 409 `sso_user`; 409
    /// `passkeys_unavailable` when the service's address allows none
    /// (WebAuthn needs https://, or http://localhost).
    #[oai(path = "/me/passkeys/registration", method = "post")]
    async fn start(
        &self,
        auth: SessionAuth,
        req: &Request,
    ) -> Result<RegistrationStarted, ApiError> {
        let principal = self.0.enrolling_principal(&auth, req).await?;
        let started = self.0.service.mfa.start_passkey_registration(principal.user()).await?;
        let options = serde_json::from_str(&started.options)
            .map_err(|e| ApiError::internal(&secureai_domain::StoreError::msg(e.to_string())))?;
        Ok(RegistrationStarted::Created(
            Json(RegistrationDto {
                registration_token: started.token.expose().to_owned(),
                options,
            }),
            NO_STORE.to_owned(),
        ))
    }

    /// Finish registering a passkey with the browser's answer. The first
    /// second factor brings ten recovery codes (shown once). 422
    /// `invalid_credential` for an answer that fails its checks; 409
    /// `passkey_registration_expired` (used, another's, or older than five
    /// minutes); 409 `passkey_taken`; 422 `invalid_name`.
    #[oai(path = "/me/passkeys", method = "post")]
    async fn register(
        &self,
        auth: SessionAuth,
        body: Json<RegisterPasskey>,
        req: &Request,
    ) -> Result<PasskeyRegistered, ApiError> {
        let principal = self.0.enrolling_principal(&auth, req).await?;
        let token = PlainToken::presented(body.0.registration_token);
        let answer = body.0.credential.to_string();
        let added = self
            .0
            .service
            .mfa
            .finish_passkey_registration(
                &principal,
                &token,
                &body.0.name,
                &answer,
                &request_context(req),
            )
            .await?;
        let recovery_codes = added
            .recovery_codes
            .map(|codes| codes.iter().map(|c| c.expose_secret().to_owned()).collect());
        Ok(PasskeyRegistered::Created(
            Json(PasskeyAddedDto { passkey: PasskeyDto::from(&added.passkey), recovery_codes }),
            NO_STORE.to_owned(),
        ))
    }

    /// Rename one of your passkeys. 404 `passkey_not_found`.
    #[oai(path = "/me/passkeys/:id", method = "patch")]
    async fn rename(
        &self,
        auth: SessionAuth,
        id: Path<uuid::Uuid>,
        body: Json<RenamePasskey>,
        req: &Request,
    ) -> Result<PasskeyChanged, ApiError> {
        let principal = self.0.principal(&auth, req).await?;
        self.0.service.mfa.rename_passkey(principal.user(), id.0, &body.0.name).await?;
        Ok(PasskeyChanged::Done)
    }

    /// Remove one of your passkeys (with your last second factor, your
    /// recovery codes go too). Where your organisation requires a second
    /// factor, the last one is replaced: it needs a check from the last 10
    /// minutes (403 `mfa_step_up_required`), and the session can then only
    /// set up a new one. 404 `passkey_not_found`.
    #[oai(path = "/me/passkeys/:id", method = "delete")]
    async fn remove(
        &self,
        auth: SessionAuth,
        id: Path<uuid::Uuid>,
        req: &Request,
    ) -> Result<PasskeyChanged, ApiError> {
        let principal = self.0.principal(&auth, req).await?;
        self.0.service.mfa.remove_passkey(&principal, id.0, &request_context(req)).await?;
        Ok(PasskeyChanged::Done)
    }
}
