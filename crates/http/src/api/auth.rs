//! `POST /auth/login`, `/auth/mfa`, `/auth/step-up`, `/auth/logout`, `GET /me`.

use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use secrecy::SecretString;
use secureai_domain::mfa::models::MfaMethod;
use secureai_domain::secrets::PlainToken;
use secureai_domain::sessions::errors::SignInError;

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
    /// `true` when the security policy asks this user for a second factor
    /// they have not set up: the session can only set one up
    /// (`POST /me/mfa/totp`, then `/me/mfa/totp/confirm`); every other
    /// request answers 403 `mfa_enrolment_required` until then.
    mfa_enrolment_required: bool,
}

/// The password checked out and the account has a second factor: no
/// session yet. Send `mfa_token` with a code to `POST /auth/mfa` within
/// five minutes.
#[derive(Object)]
pub(crate) struct SecondFactorRequired {
    /// Always `true`.
    mfa_required: bool,
    /// The sign-in waiting for its second factor; works once.
    mfa_token: String,
    /// What completes it: `webauthn` (a passkey) first when the user has
    /// one, `totp`, `recovery_code`.
    methods: Vec<SecondFactorMethod>,
    /// With `webauthn`: the options for `navigator.credentials.get`
    /// (`{"publicKey": {...}}`, binary fields base64url). The signed
    /// answer goes to `POST /auth/mfa` as `credential`; the challenge is
    /// answered once.
    webauthn: Option<serde_json::Value>,
}

/// A second factor.
#[derive(poem_openapi::Enum, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub(crate) enum SecondFactorMethod {
    /// The authenticator app's six digits.
    Totp,
    /// A recovery code.
    RecoveryCode,
    /// A passkey's signed answer to the sign-in's challenge.
    Webauthn,
}

impl From<MfaMethod> for SecondFactorMethod {
    fn from(method: MfaMethod) -> Self {
        match method {
            MfaMethod::Totp => Self::Totp,
            MfaMethod::RecoveryCode => Self::RecoveryCode,
            MfaMethod::Webauthn => Self::Webauthn,
        }
    }
}

impl From<SecondFactorMethod> for MfaMethod {
    fn from(method: SecondFactorMethod) -> Self {
        match method {
            SecondFactorMethod::Totp => Self::Totp,
            SecondFactorMethod::RecoveryCode => Self::RecoveryCode,
            SecondFactorMethod::Webauthn => Self::Webauthn,
        }
    }
}

/// A factor that confirms the session (step-up).
#[derive(poem_openapi::Enum, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub(crate) enum StepUpMethod {
    /// The authenticator app's six digits.
    Totp,
    /// A recovery code.
    RecoveryCode,
    /// A passkey's answer to a challenge of `POST /auth/step-up/passkey`.
    Webauthn,
}

impl From<StepUpMethod> for MfaMethod {
    fn from(method: StepUpMethod) -> Self {
        match method {
            StepUpMethod::Totp => Self::Totp,
            StepUpMethod::RecoveryCode => Self::RecoveryCode,
            StepUpMethod::Webauthn => Self::Webauthn,
        }
    }
}

/// A second-factor check for the current session (step-up).
#[derive(Object)]
pub(crate) struct StepUpRequest {
    /// Which factor confirms it.
    method: StepUpMethod,
    /// `totp`: the authenticator app's six digits; `recovery_code`: a
    /// recovery code.
    #[oai(write_only, validator(max_length = 100))]
    code: Option<String>,
    /// `webauthn`: the `challenge_token` of `POST /auth/step-up/passkey`.
    #[oai(write_only, validator(max_length = 100))]
    challenge_token: Option<String>,
    /// `webauthn`: the passkey's answer (`navigator.credentials.get`'s
    /// `PublicKeyCredential`, binary fields base64url).
    credential: Option<serde_json::Value>,
}

/// A challenge for your passkeys, for a step-up.
#[derive(Object)]
pub(crate) struct StepUpChallengeDto {
    /// Send it back with the passkey's answer, within five minutes; works
    /// once.
    challenge_token: String,
    /// For `navigator.credentials.get` (`{"publicKey": {...}}`, binary
    /// fields base64url).
    options: serde_json::Value,
    /// Until when it waits.
    expires_at: chrono::DateTime<chrono::Utc>,
}

#[derive(ApiResponse)]
pub(crate) enum StepUpChallengeResult {
    /// The challenge.
    #[oai(status = 201)]
    Created(Json<StepUpChallengeDto>, #[oai(header = "Cache-Control")] String),
}

/// The session's second factor was checked now.
#[derive(Object)]
pub(crate) struct StepUpResponse {
    /// When the check passed.
    second_factor_at: chrono::DateTime<chrono::Utc>,
    /// Until when the actions that need a recent check are open.
    valid_until: chrono::DateTime<chrono::Utc>,
}

/// A sign-in's answer: a session, or a second factor to ask for.
#[derive(poem_openapi::Union)]
#[oai(one_of = true)]
pub(crate) enum LoginAnswer {
    /// Signed in.
    SignedIn(LoginResponse),
    /// A second factor completes the sign-in.
    SecondFactor(SecondFactorRequired),
}

#[derive(ApiResponse)]
pub(crate) enum LoginResult {
    /// Signed in (`token`, `user`, and the session cookie), or a second
    /// factor is needed (`mfa_required`, `mfa_token`, `methods`, no cookie).
    #[oai(status = 200)]
    Ok(Json<LoginAnswer>, #[oai(header = "Set-Cookie")] Option<String>),
}

/// The second step of a sign-in. (No `Debug`: it holds a code.)
#[derive(Object)]
pub(crate) struct SecondFactorRequest {
    /// From the sign-in's answer.
    #[oai(write_only, validator(max_length = 100))]
    mfa_token: String,
    /// Which factor completes it.
    method: SecondFactorMethod,
    /// `totp`: the authenticator app's six digits; `recovery_code`: a
    /// recovery code.
    #[oai(write_only, validator(max_length = 100))]
    code: Option<String>,
    /// `webauthn`: the passkey's answer (`navigator.credentials.get`'s
    /// `PublicKeyCredential`, binary fields base64url).
    credential: Option<serde_json::Value>,
}

#[derive(ApiResponse)]
pub(crate) enum SecondFactorResult {
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
        let signed_in =
            self.0.service.sessions.sign_in(&body.0.email, &password, &request_context(req)).await;
        match signed_in {
            Ok(signed_in) => {
                let cookie = self.0.session_cookie(&signed_in.token).to_string();
                Ok(LoginResult::Ok(
                    Json(LoginAnswer::SignedIn(LoginResponse {
                        token: signed_in.token.expose().to_owned(),
                        user: MeDto::from(&signed_in.user),
                        mfa_enrolment_required: signed_in.session.enrolment_only,
                    })),
                    Some(cookie),
                ))
            }
            Err(SignInError::SecondFactorRequired(needed)) => Ok(LoginResult::Ok(
                Json(LoginAnswer::SecondFactor(SecondFactorRequired {
                    mfa_required: true,
                    mfa_token: needed.token.expose().to_owned(),
                    methods: needed.methods.iter().map(|m| SecondFactorMethod::from(*m)).collect(),
                    webauthn: needed.webauthn.and_then(|o| serde_json::from_str(&o).ok()),
                })),
                None,
            )),
            Err(error) => Err(error.into()),
        }
    }

    /// The second step of a sign-in whose answer was `mfa_required`: the
    /// `mfa_token` and a code from the authenticator app (`totp`) or a
    /// recovery code (`recovery_code`). 422 `invalid_code` for a wrong or
    /// used code (the sign-in still waits; wrong codes are throttled as
    /// wrong passwords are); 401 `mfa_token_expired` when the sign-in is
    /// used, unknown or older than five minutes.
    #[oai(path = "/auth/mfa", method = "post")]
    async fn second_factor(
        &self,
        body: Json<SecondFactorRequest>,
        req: &Request,
    ) -> Result<SecondFactorResult, ApiError> {
        let method = MfaMethod::from(body.0.method);
        // What is missing is a wrong answer, after the sign-in's token is
        // checked (401 for a stale one comes first).
        let code = match (method, body.0.code, body.0.credential) {
            (MfaMethod::Webauthn, _, Some(credential)) if !credential.is_null() => {
                credential.to_string()
            }
            (MfaMethod::Webauthn, _, _) | (_, None, _) => String::new(),
            (_, Some(code), _) => code,
        };
        let token = PlainToken::presented(body.0.mfa_token);
        let signed_in = self
            .0
            .service
            .sessions
            .complete_sign_in(&token, method, &code, &request_context(req))
            .await?;
        let cookie = self.0.session_cookie(&signed_in.token).to_string();
        Ok(SecondFactorResult::Ok(
            Json(LoginResponse {
                token: signed_in.token.expose().to_owned(),
                user: MeDto::from(&signed_in.user),
                mfa_enrolment_required: signed_in.session.enrolment_only,
            }),
            cookie,
        ))
    }

    /// Confirms the signed-in user with a second factor now (step-up) — a
    /// code, or a passkey's answer to `POST /auth/step-up/passkey`:
    /// for the next 10 minutes the session may make someone an admin,
    /// change Settings › Security, single sign-on and email settings,
    /// create tokens and reset someone's second factor — which answer 403
    /// `mfa_step_up_required` otherwise, to users who have a second factor.
    /// 422 `invalid_code` for a wrong or used code (throttled as wrong
    /// passwords are: 429 `too_many_attempts`); 409 `mfa_not_enrolled`
    /// without a second factor.
    #[oai(path = "/auth/step-up", method = "post")]
    async fn step_up(
        &self,
        auth: SessionAuth,
        body: Json<StepUpRequest>,
        req: &Request,
    ) -> Result<Json<StepUpResponse>, ApiError> {
        let principal = self.0.principal(&auth, req).await?;
        let method = MfaMethod::from(body.0.method);
        let context = request_context(req);
        let sessions = &self.0.service.sessions;
        let body = body.0;
        let at = if method == MfaMethod::Webauthn {
            let challenge = PlainToken::presented(body.challenge_token.unwrap_or_default());
            let answer = body.credential.filter(|c| !c.is_null()).map(|c| c.to_string());
            let answer = answer.unwrap_or_default();
            sessions.step_up_with_passkey(&principal, &challenge, &answer, &context).await?
        } else {
            let code = body.code.unwrap_or_default();
            sessions.step_up(&principal, method, &code, &context).await?
        };
        Ok(Json(StepUpResponse {
            second_factor_at: at,
            valid_until: at + secureai_domain::mfa::check::STEP_UP_WINDOW,
        }))
    }

    /// A challenge for your passkeys, to confirm it is you (step-up) with
    /// one: answer it through `POST /auth/step-up` with `method`
    /// `webauthn`, the `challenge_token` and the passkey's `credential`,
    /// within five minutes; it is answered once. 409 `no_passkey` when you
    /// have none (or passkeys cannot be used at this address).
    #[oai(path = "/auth/step-up/passkey", method = "post")]
    async fn step_up_challenge(
        &self,
        auth: SessionAuth,
        req: &Request,
    ) -> Result<StepUpChallengeResult, ApiError> {
        let principal = self.0.principal(&auth, req).await?;
        let Some(challenge) = self.0.service.sessions.step_up_challenge(&principal).await? else {
            return Err(ApiError::conflict(
                "no_passkey",
                "you have no passkey that can be used here: confirm with a code",
            ));
        };
        let options = serde_json::from_str(&challenge.options)
            .map_err(|e| ApiError::internal(&secureai_domain::StoreError::msg(e.to_string())))?;
        Ok(StepUpChallengeResult::Created(
            Json(StepUpChallengeDto {
                challenge_token: challenge.token.expose().to_owned(),
                options,
                expires_at: challenge.expires_at,
            }),
            "no-store".to_owned(),
        ))
    }

    /// Sign out: ends the session used for this request.
    #[oai(path = "/auth/logout", method = "post")]
    async fn logout(&self, auth: SessionAuth, req: &Request) -> Result<LogoutResult, ApiError> {
        let principal = self.0.enrolling_principal(&auth, req).await?;
        self.0.service.sessions.sign_out(&principal, &request_context(req)).await?;
        Ok(LogoutResult::SignedOut(self.0.cleared_session_cookie().to_string()))
    }

    /// The signed-in user, their role and permissions — read fresh on every
    /// request.
    #[oai(path = "/me", method = "get")]
    async fn me(&self, auth: SessionAuth, req: &Request) -> Result<Json<MeDto>, ApiError> {
        let principal = self.0.caller(&auth, req, None).await?;
        Ok(Json(MeDto::from(principal.user())))
    }
}
