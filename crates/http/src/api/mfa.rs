//! Your own second factors: `GET /me/mfa`, the authenticator app
//! (`POST /me/mfa/totp`, `POST /me/mfa/totp/confirm`,
//! `DELETE /me/mfa/totp`) and recovery codes (`POST /me/recovery-codes`).
//! Secrets and codes are in the answer once, never cached.

use poem::Request;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use secrecy::ExposeSecret;

use super::ApiTags;
use crate::AppState;
use crate::auth::{SessionAuth, request_context};
use crate::errors::ApiError;

const NO_STORE: &str = "no-store";

/// Your second factors.
#[derive(Debug, Object)]
pub(crate) struct MfaStatusDto {
    /// An authenticator app is set up.
    totp: bool,
    /// Passkeys registered (`GET /me/passkeys` lists them).
    passkeys: u32,
    /// Recovery codes not used yet.
    recovery_codes_left: u32,
}

/// A new authenticator app's secret, shown once: scan `otpauth_uri` (as a
/// QR code) or type `secret` into the app, then confirm with a code.
#[derive(Object)]
pub(crate) struct TotpSetupDto {
    /// The shared secret, base32.
    secret: String,
    /// `otpauth://totp/SecureAI:<email>?secret=…&issuer=SecureAI`.
    otpauth_uri: String,
}

/// A code from the authenticator app.
#[derive(Object)]
pub(crate) struct ConfirmTotp {
    /// Six digits.
    #[oai(write_only, validator(max_length = 64))]
    code: String,
}

/// Recovery codes, shown once: each signs in once when the app is not at
/// hand. A new set voids the earlier one.
#[derive(Object)]
pub(crate) struct RecoveryCodesDto {
    /// Ten codes.
    recovery_codes: Vec<String>,
}

#[derive(ApiResponse)]
pub(crate) enum TotpStarted {
    /// The secret, pending until confirmed with a code.
    #[oai(status = 201)]
    Created(Json<TotpSetupDto>, #[oai(header = "Cache-Control")] String),
}

#[derive(ApiResponse)]
pub(crate) enum RecoveryCodesIssued {
    /// The new recovery codes.
    #[oai(status = 200)]
    Issued(Json<RecoveryCodesDto>, #[oai(header = "Cache-Control")] String),
}

#[derive(ApiResponse)]
pub(crate) enum TotpRemoved {
    /// Removed, with the recovery codes.
    #[oai(status = 204)]
    Removed,
}

fn issued(codes: &[secrecy::SecretString]) -> RecoveryCodesIssued {
    let recovery_codes = codes.iter().map(|c| c.expose_secret().to_owned()).collect();
    RecoveryCodesIssued::Issued(Json(RecoveryCodesDto { recovery_codes }), NO_STORE.to_owned())
}

pub(crate) struct MfaApi(pub(crate) AppState);

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Auth")]
impl MfaApi {
    /// Your second factors.
    #[oai(path = "/me/mfa", method = "get")]
    async fn status(
        &self,
        auth: SessionAuth,
        req: &Request,
    ) -> Result<Json<MfaStatusDto>, ApiError> {
        let principal = self.0.enrolling_principal(&auth, req).await?;
        let status = self.0.service.mfa.status(principal.user()).await?;
        Ok(Json(MfaStatusDto {
            totp: status.totp,
            passkeys: status.passkeys,
            recovery_codes_left: status.recovery_codes_left,
        }))
    }

    /// Start setting up an authenticator app: a new secret, pending until
    /// confirmed (starting again replaces it). 409 `mfa_already_enrolled`
    /// if an app is set up; 409 `sso_user` for single sign-on users.
    #[oai(path = "/me/mfa/totp", method = "post")]
    async fn start_totp(&self, auth: SessionAuth, req: &Request) -> Result<TotpStarted, ApiError> {
        let principal = self.0.enrolling_principal(&auth, req).await?;
        let setup = self.0.service.mfa.start_totp(principal.user()).await?;
        Ok(TotpStarted::Created(
            Json(TotpSetupDto {
                secret: setup.secret.expose_base32().to_owned(),
                otpauth_uri: setup.otpauth_uri.expose_secret().to_owned(),
            }),
            NO_STORE.to_owned(),
        ))
    }

    /// Confirm the pending authenticator app with a current code: it asks
    /// for a code at every password sign-in from now on. Answers ten
    /// recovery codes, shown once (a new set). Next to a passkey you have,
    /// this changes your second factors: it needs a check from the last 10
    /// minutes (403 `mfa_step_up_required`). 422 `invalid_code` for a wrong
    /// code; 409 `mfa_not_pending` without a pending app.
    #[oai(path = "/me/mfa/totp/confirm", method = "post")]
    async fn confirm_totp(
        &self,
        auth: SessionAuth,
        body: Json<ConfirmTotp>,
        req: &Request,
    ) -> Result<RecoveryCodesIssued, ApiError> {
        let principal = self.0.enrolling_principal(&auth, req).await?;
        let codes = self
            .0
            .service
            .mfa
            .confirm_totp(&principal, &body.0.code, &request_context(req))
            .await?;
        Ok(issued(&codes))
    }

    /// Remove your authenticator app (and your recovery codes with it,
    /// unless a passkey is left). It needs a second-factor check from the
    /// last 10 minutes (403 `mfa_step_up_required`: `POST /auth/step-up`
    /// with a code from the old app, a passkey or a recovery code). Where
    /// your organisation requires a second factor and this was your last,
    /// it is replaced (a new phone): the session can then only set up the
    /// new one (`POST /me/mfa/totp`, then `/confirm`). 409
    /// `mfa_not_enrolled` when there is none.
    #[oai(path = "/me/mfa/totp", method = "delete")]
    async fn remove_totp(&self, auth: SessionAuth, req: &Request) -> Result<TotpRemoved, ApiError> {
        let principal = self.0.principal(&auth, req).await?;
        self.0.service.mfa.remove_totp(&principal, &request_context(req)).await?;
        Ok(TotpRemoved::Removed)
    }

    /// A new set of ten recovery codes, shown once; the earlier set stops
    /// working. Needs a second-factor check from the last 10 minutes (403
    /// `mfa_step_up_required`). 409 `mfa_not_enrolled` without a second
    /// factor.
    #[oai(path = "/me/recovery-codes", method = "post")]
    async fn regenerate_recovery_codes(
        &self,
        auth: SessionAuth,
        req: &Request,
    ) -> Result<RecoveryCodesIssued, ApiError> {
        let principal = self.0.principal(&auth, req).await?;
        let codes =
            self.0.service.mfa.regenerate_recovery_codes(&principal, &request_context(req)).await?;
        Ok(issued(&codes))
    }

    /// Reset another user's second factors (a lost phone): their
    /// authenticator app and recovery codes stop working, they are
    /// emailed, and where the policy requires one they set up a new one
    /// at their next sign-in. Audited as `mfa.reset`. 409 `mfa_reset_own`
    /// for your own; 409 `mfa_not_enrolled` when they have none.
    #[oai(path = "/users/:id/mfa", method = "delete", tag = "ApiTags::Users")]
    async fn reset(
        &self,
        auth: SessionAuth,
        /// The user's id.
        id: Path<String>,
        req: &Request,
    ) -> Result<TotpRemoved, ApiError> {
        let admin = self.0.principal(&auth, req).await?.admin()?;
        let id = super::users::parse_id(&id.0)?;
        self.0.service.mfa.reset(&admin, id, &request_context(req)).await?;
        Ok(TotpRemoved::Removed)
    }
}
