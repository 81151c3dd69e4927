//! Settings > Email (`GET/PUT /settings/email`, `POST /settings/email/test`)
//! and the outbox (`GET /outbox`, `POST /outbox/{id}/retry`).

use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Enum, Object, OpenApi};
use secureai_domain::access::ApiScope;
use secureai_domain::errors::FieldError;
use secureai_domain::mail::admin::{RetryMailError, TestEmailError};
use secureai_domain::mail::settings::{
    EmailSettings, EmailSettingsUpdate, PasswordChange, SettingsSource, SmtpPassword, SmtpSecurity,
    SmtpServerUpdate,
};
use secureai_domain::{DisplayName, EmailAddress};

use super::ApiTags;
use crate::AppState;
use crate::auth::{SessionAuth, request_context};
use crate::dto::{MailStateDto, OutboxMessageDto};
use crate::errors::ApiError;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub(crate) enum SecurityDto {
    /// Plain text: only for a relay on the same host or a trusted network.
    None,
    /// STARTTLS, usually port 587.
    Starttls,
    /// Implicit TLS, usually port 465.
    Tls,
}

impl From<SmtpSecurity> for SecurityDto {
    fn from(security: SmtpSecurity) -> Self {
        match security {
            SmtpSecurity::None => Self::None,
            SmtpSecurity::Starttls => Self::Starttls,
            SmtpSecurity::Tls => Self::Tls,
        }
    }
}

impl From<SecurityDto> for SmtpSecurity {
    fn from(security: SecurityDto) -> Self {
        match security {
            SecurityDto::None => Self::None,
            SecurityDto::Starttls => Self::Starttls,
            SecurityDto::Tls => Self::Tls,
        }
    }
}

/// An SMTP server as shown: the password never leaves the server.
#[derive(Debug, Object)]
pub(crate) struct SmtpServerView {
    host: String,
    port: u16,
    security: SecurityDto,
    username: Option<String>,
    /// Whether a password is saved (it is never returned).
    password_set: bool,
}

/// The email settings in force.
#[derive(Debug, Object)]
pub(crate) struct EmailSettingsView {
    /// The SMTP server; `null` means messages are written as `.eml` files
    /// into the data folder's `mail` directory.
    smtp: Option<SmtpServerView>,
    /// Sender address.
    from_address: String,
    /// Sender name.
    from_name: String,
    /// `saved` (by an admin) or `configuration` (the operator's file or
    /// environment, until an admin saves settings).
    source: String,
}

impl EmailSettingsView {
    fn new(settings: &EmailSettings, source: SettingsSource) -> Self {
        Self {
            smtp: settings.smtp.as_ref().map(|s| SmtpServerView {
                host: s.host.clone(),
                port: s.port,
                security: s.security.into(),
                username: s.username.clone(),
                password_set: s.password.is_some(),
            }),
            from_address: settings.from_address.to_string(),
            from_name: settings.from_name.to_string(),
            source: source.as_str().to_owned(),
        }
    }
}

/// A new SMTP server.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct SmtpServerInput {
    /// Host name or IP address.
    host: String,
    /// Port, 1–65535.
    port: u16,
    /// `none`, `starttls` or `tls`.
    security: SecurityDto,
    /// User name, if the server wants a login.
    username: Option<String>,
    /// Write-only. Leave out to keep the saved password (for the same host
    /// and user name), `null` to remove it, a string to replace it.
    #[oai(write_only)]
    password: MaybeUndefined<String>,
}

/// New email settings.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct EmailSettingsInput {
    /// The SMTP server, or `null` for `.eml` files in the data folder.
    smtp: Option<SmtpServerInput>,
    /// Sender address.
    from_address: String,
    /// Sender name.
    from_name: String,
}

impl std::fmt::Debug for SmtpServerInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpServerInput")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

impl std::fmt::Debug for EmailSettingsInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSettingsInput")
            .field("smtp", &self.smtp)
            .field("from_address", &self.from_address)
            .field("from_name", &self.from_name)
            .finish()
    }
}

impl EmailSettingsInput {
    fn into_update(self) -> Result<EmailSettingsUpdate, FieldError> {
        let from_address = EmailAddress::parse(&self.from_address)
            .map_err(|e| FieldError::new("from_address", e))?;
        let from_name =
            DisplayName::parse(&self.from_name).map_err(|e| FieldError::new("from_name", e))?;
        let smtp = match self.smtp {
            None => None,
            Some(input) => Some(SmtpServerUpdate {
                host: input.host,
                port: input.port,
                security: input.security.into(),
                username: input.username,
                password: match input.password {
                    MaybeUndefined::Undefined => PasswordChange::Keep,
                    MaybeUndefined::Null => PasswordChange::Clear,
                    MaybeUndefined::Value(raw) => PasswordChange::Set(SmtpPassword::parse(&raw)?),
                },
            }),
        };
        Ok(EmailSettingsUpdate { smtp, from_address, from_name })
    }
}

/// What a test email did.
#[derive(Debug, Object)]
pub(crate) struct TestEmailResult {
    /// Whether the mail server accepted the message.
    delivered: bool,
    /// Where it went (the calling admin).
    to: String,
    /// The server's answer (e.g. `250 2.0.0 Ok: queued as …`), or what
    /// went wrong and what to check.
    message: String,
}

/// A page of outbox messages.
#[derive(Debug, Object)]
pub(crate) struct OutboxPage {
    /// Newest first.
    items: Vec<OutboxMessageDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

pub(crate) struct MailApi(pub(crate) AppState);

pub(crate) fn parse_cursor(
    raw: &str,
) -> Result<(chrono::DateTime<chrono::Utc>, uuid::Uuid), ApiError> {
    let bad = || ApiError::bad_request("invalid_cursor", "the cursor is not one this API gave");
    let (micros, id) = raw.split_once('_').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let at = chrono::DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
    Ok((at, id.parse().map_err(|_| bad())?))
}

fn message_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("message_not_found", "no message has this id"))
}

#[OpenApi(prefix_path = "/v1")]
impl MailApi {
    /// The email settings in force (Settings > Email). The SMTP password is
    /// never returned; `password_set` tells whether one is saved.
    #[oai(path = "/settings/email", method = "get", tag = "ApiTags::Settings")]
    async fn email(
        &self,
        auth: SessionAuth,
        req: &Request,
    ) -> Result<Json<EmailSettingsView>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?.admin()?;
        let (settings, source) = self.0.service.mail.email_settings(&admin).await?;
        Ok(Json(EmailSettingsView::new(&settings, source)))
    }

    /// Save the email settings. Every instance uses them from its next
    /// message on, without a restart. The change is audited without the
    /// password.
    #[oai(path = "/settings/email", method = "put", tag = "ApiTags::Settings")]
    async fn set_email(
        &self,
        auth: SessionAuth,
        body: Json<EmailSettingsInput>,
        req: &Request,
    ) -> Result<Json<EmailSettingsView>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?.admin()?;
        let update = body.0.into_update().map_err(|e| ApiError::invalid_field(&e))?;
        let (settings, source) = self
            .0
            .service
            .mail
            .update_email_settings(&admin, update, &request_context(req))
            .await?;
        Ok(Json(EmailSettingsView::new(&settings, source)))
    }

    /// Send a test message to the calling admin now, through the settings in
    /// force, and report the mail server's answer or what went wrong (wrong
    /// port for the security mode, refused login, unreachable host).
    #[oai(path = "/settings/email/test", method = "post", tag = "ApiTags::Settings")]
    async fn test_email(
        &self,
        auth: SessionAuth,
        req: &Request,
    ) -> Result<Json<TestEmailResult>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?.admin()?;
        let to = admin.user().email.to_string();
        match self.0.service.mail.send_test_email(&admin, &request_context(req)).await {
            Ok(answer) => Ok(Json(TestEmailResult { delivered: true, to, message: answer })),
            Err(TestEmailError::NotDelivered(why)) => {
                Ok(Json(TestEmailResult { delivered: false, to, message: why }))
            }
            Err(TestEmailError::Unexpected(e)) => Err(e.into()),
        }
    }

    /// Messages in the outbox, newest first; `status=failed` lists those
    /// that kept failing, with their last error.
    #[oai(path = "/outbox", method = "get", tag = "ApiTags::Mail")]
    async fn outbox(
        &self,
        auth: SessionAuth,
        /// `queued`, `sent` or `failed`; all if absent.
        status: Query<Option<MailStateDto>>,
        /// Cursor from the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–200 (default 50).
        limit: Query<Option<u32>>,
        req: &Request,
    ) -> Result<Json<OutboxPage>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::UsersRead)).await?.admin()?;
        let before = cursor.0.as_deref().map(parse_cursor).transpose()?;
        let limit = limit.0.unwrap_or(50);
        let entries =
            self.0.service.mail.outbox(&admin, status.0.map(Into::into), before, limit).await?;
        let next_cursor = (entries.len() == limit as usize)
            .then(|| {
                entries.last().map(|e| format!("{}_{}", e.created_at.timestamp_micros(), e.id))
            })
            .flatten();
        Ok(Json(OutboxPage {
            items: entries.iter().map(OutboxMessageDto::from).collect(),
            next_cursor,
        }))
    }

    /// Put every failed message back in the queue ("Retry all"), each
    /// audited as `mail.retried`; at most one page (200) per call.
    #[oai(path = "/outbox/retry-failed", method = "post", tag = "ApiTags::Mail")]
    async fn retry_failed(
        &self,
        auth: SessionAuth,
        req: &Request,
    ) -> Result<Json<Requeued>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::UsersWrite)).await?.admin()?;
        let requeued = self.0.service.mail.retry_all_failed(&admin, &request_context(req)).await?;
        Ok(Json(Requeued { requeued }))
    }

    /// Put a failed message back in the queue for an attempt now.
    #[oai(path = "/outbox/:id/retry", method = "post", tag = "ApiTags::Mail")]
    async fn retry(
        &self,
        auth: SessionAuth,
        /// The message id.
        id: Path<String>,
        req: &Request,
    ) -> Result<Json<OutboxMessageDto>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::UsersWrite)).await?.admin()?;
        let id = message_id(&id.0)?;
        match self.0.service.mail.retry_mail(&admin, id, &request_context(req)).await {
            Ok(entry) => Ok(Json(OutboxMessageDto::from(&entry))),
            Err(RetryMailError::NotFound) => {
                Err(ApiError::not_found("message_not_found", "no message has this id"))
            }
            Err(error @ RetryMailError::NotFailed(_)) => {
                Err(ApiError::conflict("message_not_failed", error))
            }
            Err(RetryMailError::Unexpected(e)) => Err(e.into()),
        }
    }
}

/// How many failed messages went back in the queue.
#[derive(Debug, Clone, Object)]
pub struct Requeued {
    /// Messages requeued.
    pub requeued: u64,
}
