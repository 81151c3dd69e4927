//! The one place that turns failures into HTTP: every error body is
//! `{"code": "...", "message": "..."}` with a stable machine-readable code.
//! 5xx bodies reveal nothing; their cause chain is logged once, under an
//! error id the body repeats so support can find it.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};
use secureai_domain::StoreError;
use secureai_domain::access::Forbidden;
use secureai_domain::errors::FieldError;
use secureai_domain::invitations::errors::{
    AcceptInvitationError, CorrectEmailError, ResendInvitationError,
};
use secureai_domain::resets::errors::{ChangePasswordError, CompleteResetError, RequestResetError};
use secureai_domain::sessions::errors::{AuthenticateError, SignInError};
use secureai_domain::users::errors::{
    GetUserError, InviteUserError, ListUsersError, SettingsError, UpdateUserError,
    WithdrawInvitationError,
};

/// An error body.
#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `email_taken`.
    pub code: String,
    /// A human explanation.
    pub message: String,
    /// The request field at fault, for validation errors.
    #[oai(skip_serializing_if_is_none)]
    pub field: Option<String>,
}

/// Every error an endpoint can answer.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed (bad JSON, bad parameter).
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// No valid session: sign in first.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>, #[oai(header = "WWW-Authenticate")] String),
    /// Signed in, but not allowed.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such resource.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The request conflicts with the current state.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The resource existed but is gone (e.g. an expired link).
    #[oai(status = 410)]
    Gone(Json<ErrorBody>),
    /// The body is too large.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// A field is invalid.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// Too many attempts; retry after the given seconds.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
    /// Something failed on our side.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// At capacity (e.g. every password check slot busy); retry after the
    /// given seconds.
    #[oai(status = 503)]
    Busy(Json<ErrorBody>, #[oai(header = "Retry-After")] u64),
}

fn body(code: &str, message: impl ToString) -> Json<ErrorBody> {
    Json(ErrorBody { code: code.to_owned(), message: message.to_string(), field: None })
}

/// The challenge sent with every 401.
pub const WWW_AUTHENTICATE: &str = "Bearer realm=\"secureai\"";

impl ApiError {
    /// 400 with a code.
    pub fn bad_request(code: &str, message: impl ToString) -> Self {
        Self::BadRequest(body(code, message))
    }
    /// 401.
    pub fn unauthorized(code: &str, message: impl ToString) -> Self {
        Self::Unauthorized(body(code, message), WWW_AUTHENTICATE.to_owned())
    }
    /// 403 with a code.
    pub fn forbidden(code: &str, message: impl ToString) -> Self {
        Self::Forbidden(body(code, message))
    }
    /// 404 with a code.
    pub fn not_found(code: &str, message: impl ToString) -> Self {
        Self::NotFound(body(code, message))
    }
    /// 409 with a code.
    pub fn conflict(code: &str, message: impl ToString) -> Self {
        Self::Conflict(body(code, message))
    }
    /// 422 naming the field.
    pub fn invalid_field(error: &FieldError) -> Self {
        Self::Unprocessable(Json(ErrorBody {
            code: format!("invalid_{}", error.field),
            message: error.to_string(),
            field: Some(error.field.to_owned()),
        }))
    }
    /// 400 `invalid_date` naming the field.
    pub fn invalid_date(error: &secureai_domain::dates::DateError) -> Self {
        Self::BadRequest(Json(ErrorBody {
            code: "invalid_date".to_owned(),
            message: error.to_string(),
            field: Some(error.field.clone()),
        }))
    }
    /// 500: logs the cause chain once and answers an opaque body.
    pub fn internal(error: &(dyn std::error::Error + 'static)) -> Self {
        let id = uuid::Uuid::new_v4();
        let mut chain = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::error!(error_id = %id, error = %chain, "request failed");
        Self::Internal(body(
            "internal_error",
            format!("something went wrong on our side; the error was logged with id {id}"),
        ))
    }
}

/// Logs a busy error with a cause (the database's contention outlasted the
/// store's retries), unlike a full hashing queue (no cause): load as meant.
pub(crate) fn log_contention(error: &StoreError) {
    if let Some(cause) = std::error::Error::source(error) {
        tracing::warn!(error = %error, cause = %cause, "answered busy: the database is contended");
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error.retry_after_secs() {
            Some(seconds) => {
                log_contention(&error);
                Self::Busy(body("busy", "the service is busy; try again in a few seconds"), seconds)
            }
            None => Self::internal(&error),
        }
    }
}

impl From<Forbidden> for ApiError {
    fn from(error: Forbidden) -> Self {
        Self::forbidden("forbidden", error)
    }
}

impl From<AuthenticateError> for ApiError {
    fn from(error: AuthenticateError) -> Self {
        match error {
            AuthenticateError::Unauthenticated => Self::unauthorized("unauthenticated", error),
            AuthenticateError::EnrolmentRequired => {
                Self::forbidden("mfa_enrolment_required", error)
            }
            AuthenticateError::Unexpected(e) => e.into(),
        }
    }
}

impl From<secureai_domain::api_tokens::errors::ApiTokenAuthError> for ApiError {
    fn from(error: secureai_domain::api_tokens::errors::ApiTokenAuthError) -> Self {
        use secureai_domain::api_tokens::errors::ApiTokenAuthError;
        match error {
            ApiTokenAuthError::Invalid => Self::unauthorized("invalid_token", error),
            ApiTokenAuthError::EnrolmentRequired => {
                Self::forbidden("mfa_enrolment_required", error)
            }
            ApiTokenAuthError::Unexpected(e) => e.into(),
        }
    }
}

impl From<secureai_domain::api_tokens::errors::ApiTokenError> for ApiError {
    fn from(error: secureai_domain::api_tokens::errors::ApiTokenError) -> Self {
        use secureai_domain::api_tokens::errors::ApiTokenError;
        match error {
            ApiTokenError::Forbidden => Self::forbidden("forbidden", error),
            ApiTokenError::InvalidName => Self::invalid_field(&FieldError::new("name", error)),
            ApiTokenError::InvalidLifetime => {
                Self::invalid_field(&FieldError::new("expires_in_days", error))
            }
            ApiTokenError::InvalidScopes(_) => {
                Self::invalid_field(&FieldError::new("scopes", error))
            }
            ApiTokenError::TooMany => Self::conflict("too_many_tokens", error),
            ApiTokenError::NotFound => Self::not_found("token_not_found", error),
            ApiTokenError::StepUp(e) => e.into(),
            ApiTokenError::Unexpected(e) => e.into(),
        }
    }
}

impl From<secureai_domain::webhooks::service::WebhookError> for ApiError {
    fn from(error: secureai_domain::webhooks::service::WebhookError) -> Self {
        use secureai_domain::webhooks::service::WebhookError;
        match error {
            WebhookError::Forbidden => Self::forbidden("forbidden", error),
            WebhookError::InvalidUrl(_) => Self::invalid_field(&FieldError::new("url", error)),
            WebhookError::InvalidEvents { .. } => {
                Self::invalid_field(&FieldError::new("events", error))
            }
            WebhookError::TooMany => Self::conflict("too_many_webhooks", error),
            WebhookError::NotFound => Self::not_found("webhook_not_found", error),
            WebhookError::NotFailed => Self::conflict("delivery_not_failed", error),
            WebhookError::Superseded => Self::conflict("delivery_superseded", error),
            WebhookError::Disabled => Self::conflict("webhook_disabled", error),
            WebhookError::StepUp(e) => e.into(),
            WebhookError::Unexpected(e) => e.into(),
        }
    }
}

impl From<SignInError> for ApiError {
    fn from(error: SignInError) -> Self {
        match error {
            SignInError::InvalidCredentials => Self::unauthorized("invalid_credentials", error),
            SignInError::AccountDeactivated => Self::forbidden("account_deactivated", error),
            SignInError::Throttled { retry_after_secs } => {
                Self::TooManyRequests(body("too_many_attempts", &error), retry_after_secs)
            }
            // Answered by the sign-in endpoints themselves, never as an error.
            SignInError::SecondFactorRequired(_) => Self::unauthorized("mfa_required", error),
            SignInError::Unexpected(e) => e.into(),
        }
    }
}

impl From<secureai_domain::sessions::errors::SecondFactorError> for ApiError {
    fn from(error: secureai_domain::sessions::errors::SecondFactorError) -> Self {
        use secureai_domain::sessions::errors::SecondFactorError;
        match error {
            SecondFactorError::Expired => Self::unauthorized("mfa_token_expired", error),
            SecondFactorError::WrongCode => Self::invalid_field(&FieldError::new("code", error)),
            SecondFactorError::Throttled { retry_after_secs } => {
                Self::TooManyRequests(body("too_many_attempts", &error), retry_after_secs)
            }
            SecondFactorError::Unexpected(e) => e.into(),
        }
    }
}

impl From<secureai_domain::mfa::check::StepUpError> for ApiError {
    fn from(error: secureai_domain::mfa::check::StepUpError) -> Self {
        use secureai_domain::mfa::check::StepUpError;
        match error {
            StepUpError::Required => Self::forbidden("mfa_step_up_required", error),
            StepUpError::SessionRequired => Self::forbidden("session_required", error),
            StepUpError::Unexpected(e) => e.into(),
        }
    }
}

impl From<secureai_domain::sessions::errors::StepUpCheckError> for ApiError {
    fn from(error: secureai_domain::sessions::errors::StepUpCheckError) -> Self {
        use secureai_domain::sessions::errors::StepUpCheckError;
        match error {
            StepUpCheckError::NotEnrolled => Self::conflict("mfa_not_enrolled", error),
            StepUpCheckError::WrongCode => Self::invalid_field(&FieldError::new("code", error)),
            StepUpCheckError::Throttled { retry_after_secs } => {
                Self::TooManyRequests(body("too_many_attempts", &error), retry_after_secs)
            }
            StepUpCheckError::Unexpected(e) => e.into(),
        }
    }
}

impl From<InviteUserError> for ApiError {
    fn from(error: InviteUserError) -> Self {
        match error {
            InviteUserError::Invalid(field) => Self::invalid_field(&field),
            InviteUserError::EmailTaken => Self::conflict("email_taken", error),
            InviteUserError::SeatLimitReached { .. } => Self::conflict("seat_limit_reached", error),
            InviteUserError::Unexpected(e) => e.into(),
            InviteUserError::StepUp(e) => e.into(),
        }
    }
}

impl From<GetUserError> for ApiError {
    fn from(error: GetUserError) -> Self {
        match error {
            GetUserError::NotFound => Self::not_found("user_not_found", error),
            GetUserError::Unexpected(e) => e.into(),
        }
    }
}

impl From<ListUsersError> for ApiError {
    fn from(error: ListUsersError) -> Self {
        match error {
            ListUsersError::InvalidCursor => Self::bad_request("invalid_cursor", error),
            ListUsersError::Invalid(field) => Self::invalid_field(&field),
            ListUsersError::Unexpected(e) => e.into(),
        }
    }
}

impl From<AcceptInvitationError> for ApiError {
    fn from(error: AcceptInvitationError) -> Self {
        match error {
            AcceptInvitationError::Invalid => Self::not_found("invitation_invalid", error),
            AcceptInvitationError::Expired { .. } => Self::Gone(body("invitation_expired", error)),
            AcceptInvitationError::WeakPassword(policy) => {
                Self::invalid_field(&FieldError::new("password", policy))
            }
            AcceptInvitationError::Unexpected(e) => e.into(),
        }
    }
}

impl From<UpdateUserError> for ApiError {
    fn from(error: UpdateUserError) -> Self {
        match error {
            UpdateUserError::NotFound => Self::not_found("user_not_found", error),
            UpdateUserError::Invalid(field) => Self::invalid_field(&field),
            UpdateUserError::LastAdmin => Self::conflict("last_admin", error),
            UpdateUserError::SeatLimitReached { .. } => Self::conflict("seat_limit_reached", error),
            UpdateUserError::Unexpected(e) => e.into(),
            UpdateUserError::StepUp(e) => e.into(),
        }
    }
}

impl From<SettingsError> for ApiError {
    fn from(error: SettingsError) -> Self {
        match error {
            SettingsError::Invalid(field) => Self::invalid_field(&field),
            SettingsError::Unexpected(e) => e.into(),
            SettingsError::StepUp(e) => e.into(),
        }
    }
}

impl From<secureai_domain::sso::errors::SsoSettingsError> for ApiError {
    fn from(error: secureai_domain::sso::errors::SsoSettingsError) -> Self {
        use secureai_domain::sso::errors::SsoSettingsError;
        match error {
            SsoSettingsError::Invalid(field) => Self::invalid_field(&field),
            SsoSettingsError::Unexpected(e) => e.into(),
            SsoSettingsError::StepUp(e) => e.into(),
        }
    }
}

impl From<CorrectEmailError> for ApiError {
    fn from(error: CorrectEmailError) -> Self {
        match error {
            CorrectEmailError::NotFound => Self::not_found("user_not_found", error),
            CorrectEmailError::Invalid(field) => Self::invalid_field(&field),
            CorrectEmailError::NotInvited => Self::conflict("email_not_changeable", error),
            CorrectEmailError::EmailTaken => Self::conflict("email_taken", error),
            CorrectEmailError::StepUp(e) => e.into(),
            CorrectEmailError::Unexpected(e) => e.into(),
        }
    }
}

impl From<WithdrawInvitationError> for ApiError {
    fn from(error: WithdrawInvitationError) -> Self {
        match error {
            WithdrawInvitationError::NotFound => Self::not_found("user_not_found", error),
            WithdrawInvitationError::NotInvited => Self::conflict("not_invited", error),
            WithdrawInvitationError::Unexpected(e) => e.into(),
        }
    }
}

impl From<ResendInvitationError> for ApiError {
    fn from(error: ResendInvitationError) -> Self {
        match error {
            ResendInvitationError::NotFound => Self::not_found("user_not_found", error),
            ResendInvitationError::NotInvited => Self::conflict("not_invited", error),
            ResendInvitationError::Unexpected(e) => e.into(),
        }
    }
}

impl From<RequestResetError> for ApiError {
    fn from(error: RequestResetError) -> Self {
        match error {
            RequestResetError::NotFound => Self::not_found("user_not_found", error),
            RequestResetError::SsoUser => Self::conflict("sso_user", error),
            RequestResetError::NotActive(_) => Self::conflict("user_not_active", error),
            RequestResetError::Unexpected(e) => e.into(),
        }
    }
}

impl From<CompleteResetError> for ApiError {
    fn from(error: CompleteResetError) -> Self {
        match error {
            CompleteResetError::Invalid => Self::not_found("reset_invalid", error),
            CompleteResetError::Expired { .. } => Self::Gone(body("reset_expired", error)),
            CompleteResetError::WeakPassword(policy) => {
                Self::invalid_field(&FieldError::new("password", policy))
            }
            CompleteResetError::Unexpected(e) => e.into(),
        }
    }
}

impl From<ChangePasswordError> for ApiError {
    fn from(error: ChangePasswordError) -> Self {
        match error {
            ChangePasswordError::WrongPassword => {
                Self::invalid_field(&FieldError::new("current_password", error))
            }
            ChangePasswordError::SsoUser => Self::conflict("sso_user", error),
            ChangePasswordError::WeakPassword(policy) => {
                Self::invalid_field(&FieldError::new("new_password", policy))
            }
            ChangePasswordError::Unexpected(e) => e.into(),
        }
    }
}

impl From<secureai_domain::mfa::service::MfaError> for ApiError {
    fn from(error: secureai_domain::mfa::service::MfaError) -> Self {
        use secureai_domain::mfa::service::MfaError;
        match error {
            MfaError::AlreadyEnrolled => Self::conflict("mfa_already_enrolled", error),
            MfaError::SsoUser => Self::conflict("sso_user", error),
            MfaError::NotPending => Self::conflict("mfa_not_pending", error),
            MfaError::NotEnrolled => Self::conflict("mfa_not_enrolled", error),
            MfaError::NotOffered => Self::conflict("mfa_not_offered", error),
            MfaError::StepUp(e) => e.into(),
            MfaError::WrongCode => Self::invalid_field(&FieldError::new("code", error)),
            MfaError::InvalidPasskeyName => Self::invalid_field(&FieldError::new("name", error)),
            MfaError::TooManyPasskeys => Self::conflict("too_many_passkeys", error),
            MfaError::NoSuchPasskey => Self::not_found("passkey_not_found", error),
            MfaError::CeremonyExpired => Self::conflict("passkey_registration_expired", error),
            MfaError::PasskeyRefused(_) => {
                Self::invalid_field(&FieldError::new("credential", error))
            }
            MfaError::PasskeyTaken => Self::conflict("passkey_taken", error),
            MfaError::PasskeysUnavailable(_) => Self::conflict("passkeys_unavailable", error),
            MfaError::Unexpected(e) => e.into(),
        }
    }
}

impl From<secureai_domain::mfa::service::ResetMfaError> for ApiError {
    fn from(error: secureai_domain::mfa::service::ResetMfaError) -> Self {
        use secureai_domain::mfa::service::ResetMfaError;
        match error {
            ResetMfaError::NotFound => Self::not_found("user_not_found", error),
            ResetMfaError::Own => Self::conflict("mfa_reset_own", error),
            ResetMfaError::NotEnrolled => Self::conflict("mfa_not_enrolled", error),
            ResetMfaError::Unexpected(e) => e.into(),
            ResetMfaError::StepUp(e) => e.into(),
        }
    }
}

impl From<secureai_domain::audit::service::AuditError> for ApiError {
    fn from(error: secureai_domain::audit::service::AuditError) -> Self {
        use secureai_domain::audit::service::AuditError;
        match error {
            AuditError::Invalid(field) => Self::invalid_field(&field),
            AuditError::InvalidCursor => Self::bad_request("invalid_cursor", error),
            AuditError::Unexpected(e) => e.into(),
        }
    }
}

/// Turns errors raised outside our handlers (malformed JSON, unknown route,
/// oversized body, missing credentials) into the same JSON shape.
pub async fn render_any_error(error: poem::Error) -> Response {
    if error.is_from_response() {
        return error.into_response();
    }
    let message = error.to_string();
    let status = error.status();
    let api_error = if error.is::<poem_openapi::error::ParseRequestPayloadError>()
        || error.is::<poem_openapi::error::ContentTypeError>()
    {
        ApiError::bad_request("invalid_body", format!("the request body is not valid: {message}"))
    } else if error.is::<poem_openapi::error::ParseParamError>()
        || error.is::<poem_openapi::error::ParsePathError>()
    {
        ApiError::bad_request("invalid_parameter", message)
    } else if error.is::<poem_openapi::error::AuthorizationError>() {
        ApiError::unauthorized(
            "unauthenticated",
            "sign in first: send the session cookie or an `Authorization: Bearer` token",
        )
    } else {
        match status {
            StatusCode::NOT_FOUND => {
                ApiError::not_found("not_found", "there is nothing at this address")
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                return (
                    status,
                    Json(ErrorBody {
                        code: "method_not_allowed".into(),
                        message: "this address does not accept this method".into(),
                        field: None,
                    }),
                )
                    .into_response();
            }
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(body(
                "body_too_large",
                "the request body is larger than this endpoint accepts",
            )),
            StatusCode::LENGTH_REQUIRED => {
                return (
                    status,
                    Json(ErrorBody {
                        code: "length_required".into(),
                        message: "send a Content-Length header with the body".into(),
                        field: None,
                    }),
                )
                    .into_response();
            }
            s if s.is_client_error() => {
                return (s, Json(ErrorBody { code: "bad_request".into(), message, field: None }))
                    .into_response();
            }
            _ => ApiError::internal(&error),
        }
    };
    api_error.into_response()
}

impl From<secureai_domain::provisioning::service::ProvisioningError> for ApiError {
    fn from(error: secureai_domain::provisioning::service::ProvisioningError) -> Self {
        use secureai_domain::provisioning::service::ProvisioningError as E;
        match error {
            E::Invalid(e) => Self::invalid_field(&e),
            E::Unexpected(e) => Self::internal(&e),
            E::Forbidden => Self::forbidden("forbidden", error),
            E::NotFound | E::GroupNotFound => Self::not_found("not_found", error),
            E::EmailTaken | E::GroupNameTaken => Self::conflict("taken", error),
            E::LastAdmin => Self::conflict("last_admin", error),
            E::SeatLimitReached { .. } => Self::conflict("seat_limit_reached", error),
            E::StepUp(e) => e.into(),
        }
    }
}

impl From<secureai_domain::analytics::errors::ServiceTokenError> for ApiError {
    fn from(error: secureai_domain::analytics::errors::ServiceTokenError) -> Self {
        use secureai_domain::analytics::errors::ServiceTokenError as E;
        match error {
            E::InvalidName => Self::invalid_field(&FieldError::new("name", error.to_string())),
            E::InvalidScopes(reason) => Self::invalid_field(&FieldError::new("scopes", reason)),
            E::NotFound => Self::not_found("service_token_not_found", error),
            E::StepUp(e) => e.into(),
            E::Unexpected(e) => e.into(),
        }
    }
}

impl From<secureai_domain::analytics::errors::ServiceAuthError> for ApiError {
    fn from(error: secureai_domain::analytics::errors::ServiceAuthError) -> Self {
        use secureai_domain::analytics::errors::ServiceAuthError as E;
        match error {
            E::InvalidToken => Self::unauthorized("invalid_service_token", error),
            E::MissingScope { .. } => Self::forbidden("insufficient_scope", error),
            E::Unexpected(e) => e.into(),
        }
    }
}

impl From<secureai_domain::analytics::errors::IngestError> for ApiError {
    fn from(error: secureai_domain::analytics::errors::IngestError) -> Self {
        use secureai_domain::analytics::errors::IngestError as E;
        match error {
            E::TooLarge { .. } => Self::PayloadTooLarge(body("batch_too_large", &error)),
            E::Unexpected(e) => e.into(),
        }
    }
}

impl From<secureai_domain::analytics::errors::AnalyticsError> for ApiError {
    fn from(error: secureai_domain::analytics::errors::AnalyticsError) -> Self {
        use secureai_domain::analytics::errors::AnalyticsError as E;
        match error {
            E::InvalidRange { .. } => Self::bad_request("invalid_range", error),
            E::Unexpected(e) => e.into(),
        }
    }
}
