//! Webhook endpoints (admins): `POST /webhooks` (the signing secret, once),
//! `GET /webhooks`, `GET|PATCH|DELETE /webhooks/{id}`, `POST
//! /webhooks/{id}/rotate-secret`, `POST /webhooks/{id}/test`, `GET
//! /webhooks/{id}/deliveries?status=failed` and `POST
//! /webhooks/{id}/deliveries/{delivery}/retry`. Deliveries follow the
//! Standard Webhooks specification (`docs/design/events.md`).

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};
use secureai_domain::access::ApiScope;
use secureai_domain::webhooks::deliveries::{Delivery, DeliveryState};
use secureai_domain::webhooks::models::{EventType, WebhookEndpoint};
use secureai_domain::webhooks::service::EndpointChange;

use super::ApiTags;
use crate::AppState;
use crate::auth::{SessionAuth, request_context};
use crate::errors::ApiError;

/// A new endpoint.
#[derive(Object)]
pub(crate) struct CreateWebhook {
    /// Where deliveries go: `https://` on a public address.
    #[oai(validator(max_length = 2000))]
    url: String,
    /// What it receives (at least one): `user.invited`, `user.activated`,
    /// `user.deactivated`, `user.reactivated`, `user.role_changed`,
    /// `user.sessions_terminated`, `user.erased`, `user.password_reset`,
    /// `sso.settings_changed`, `import.completed`, `signin.throttled`.
    #[oai(validator(max_items = 20, min_items = 1))]
    events: Vec<String>,
}

/// A change to an endpoint: what is given changes.
#[derive(Object)]
pub(crate) struct UpdateWebhook {
    /// A new address.
    #[oai(validator(max_length = 2000))]
    url: Option<String>,
    /// New events (at least one).
    #[oai(validator(max_items = 20, min_items = 1))]
    events: Option<Vec<String>>,
    /// `false` pauses deliveries (events meanwhile are not queued for it);
    /// `true` resumes, also after the receiver's 410 disabled it.
    enabled: Option<bool>,
}

/// A webhook endpoint (never its secret).
#[derive(Object)]
pub(crate) struct WebhookDto {
    /// Identifier.
    id: uuid::Uuid,
    /// Where deliveries go.
    url: String,
    /// What it receives.
    events: Vec<String>,
    /// Whether deliveries go out.
    enabled: bool,
    /// When and why deliveries stopped (paused, or the receiver answered
    /// 410 Gone).
    disabled_at: Option<DateTime<Utc>>,
    /// Why.
    disabled_reason: Option<String>,
    /// When it was added.
    created_at: DateTime<Utc>,
}

impl From<&WebhookEndpoint> for WebhookDto {
    fn from(endpoint: &WebhookEndpoint) -> Self {
        Self {
            id: endpoint.id,
            url: endpoint.url.clone(),
            events: endpoint.events.iter().map(|e| EventType::as_str(*e).to_owned()).collect(),
            enabled: endpoint.disabled.is_none(),
            disabled_at: endpoint.disabled.as_ref().map(|(at, _)| *at),
            disabled_reason: endpoint.disabled.as_ref().map(|(_, why)| why.clone()),
            created_at: endpoint.created_at,
        }
    }
}

/// An endpoint just created, or a secret just rotated.
#[derive(Object)]
pub(crate) struct WebhookSecretDto {
    /// The endpoint.
    webhook: WebhookDto,
    /// The signing secret (`whsec_…`), shown this once: give it to the
    /// receiver, which checks `webhook-signature` with it.
    secret: String,
}

#[derive(ApiResponse)]
pub(crate) enum WebhookCreated {
    /// Created; keep the secret now, it is never shown again.
    #[oai(status = 201)]
    Created(Json<WebhookSecretDto>, #[oai(header = "Cache-Control")] String),
}

#[derive(ApiResponse)]
pub(crate) enum SecretRotated {
    /// The new secret, shown this once; the previous one still signs for
    /// 24 hours (every delivery carries both signatures meanwhile).
    #[oai(status = 200)]
    Rotated(Json<WebhookSecretDto>, #[oai(header = "Cache-Control")] String),
}

#[derive(ApiResponse)]
pub(crate) enum WebhookDone {
    /// Done.
    #[oai(status = 204)]
    Done,
}

#[derive(ApiResponse)]
pub(crate) enum TestQueued {
    /// Queued: the worker sends it within a second; its outcome is in the
    /// deliveries.
    #[oai(status = 202)]
    Queued(Json<DeliveryDto>),
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub(crate) enum DeliveryStateDto {
    /// Waiting for its first attempt or a retry.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up (three days, 410 Gone, or the address no longer allowed).
    Failed,
}

impl From<DeliveryStateDto> for DeliveryState {
    fn from(state: DeliveryStateDto) -> Self {
        match state {
            DeliveryStateDto::Pending => Self::Pending,
            DeliveryStateDto::Delivered => Self::Delivered,
            DeliveryStateDto::Failed => Self::Failed,
        }
    }
}

/// One event on its way to the endpoint.
#[derive(Object)]
pub(crate) struct DeliveryDto {
    /// Identifier (for a retry).
    id: uuid::Uuid,
    /// The `webhook-id` header, the same on every attempt.
    message_id: String,
    /// The event (`user.deactivated`, `webhook.test`).
    event_type: String,
    /// Whom it is about.
    user_id: Option<uuid::Uuid>,
    /// `pending`, `delivered` or `failed`.
    status: String,
    /// Attempts made.
    attempts: u32,
    /// When the event happened.
    created_at: DateTime<Utc>,
    /// When the next attempt is due (pending ones).
    next_attempt_at: Option<DateTime<Utc>>,
    /// When the last attempt was made.
    last_attempt_at: Option<DateTime<Utc>>,
    /// The receiver's last HTTP status.
    last_status: Option<u16>,
    /// Why the last attempt failed.
    last_error: Option<String>,
    /// When the receiver accepted it.
    delivered_at: Option<DateTime<Utc>>,
}

impl From<&Delivery> for DeliveryDto {
    fn from(d: &Delivery) -> Self {
        Self {
            id: d.id,
            message_id: d.message_id.clone(),
            event_type: d.event_type.clone(),
            user_id: d.user_id.map(|u| u.as_uuid()),
            status: d.state.as_str().to_owned(),
            attempts: d.attempts,
            created_at: d.created_at,
            next_attempt_at: (d.state == DeliveryState::Pending).then_some(d.next_attempt_at),
            last_attempt_at: d.last_attempt_at,
            last_status: d.last_status,
            last_error: d.last_error.clone(),
            delivered_at: d.delivered_at,
        }
    }
}

/// A page of deliveries.
#[derive(Object)]
pub(crate) struct DeliveryPage {
    /// Newest first.
    items: Vec<DeliveryDto>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

pub(crate) struct WebhooksApi(pub(crate) AppState);

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Settings")]
impl WebhooksApi {
    /// Add a webhook endpoint (admins). Needs a signed-in session and, if
    /// you have a second factor, a check from the last 10 minutes (403
    /// `mfa_step_up_required`; a token gets 403 `session_required`). The
    /// signing secret is shown once. 422 `invalid_url` (not https, a
    /// private or reserved address, credentials in it), `invalid_events`;
    /// 409 `too_many_webhooks` at 20.
    #[oai(path = "/webhooks", method = "post")]
    async fn create(
        &self,
        auth: SessionAuth,
        body: Json<CreateWebhook>,
        req: &Request,
    ) -> Result<WebhookCreated, ApiError> {
        let principal = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?;
        let (endpoint, secret) = self
            .0
            .service
            .webhooks
            .create(&principal, &body.0.url, &body.0.events, &request_context(req))
            .await?;
        Ok(WebhookCreated::Created(
            Json(WebhookSecretDto {
                webhook: WebhookDto::from(&endpoint),
                secret: secret.expose().to_owned(),
            }),
            "no-store".to_owned(),
        ))
    }

    /// Every webhook endpoint, oldest first (never a secret).
    #[oai(path = "/webhooks", method = "get")]
    async fn list(
        &self,
        auth: SessionAuth,
        req: &Request,
    ) -> Result<Json<Vec<WebhookDto>>, ApiError> {
        let principal = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?;
        let endpoints = self.0.service.webhooks.endpoints(&principal).await?;
        Ok(Json(endpoints.iter().map(WebhookDto::from).collect()))
    }

    /// One webhook endpoint. 404 `webhook_not_found`.
    #[oai(path = "/webhooks/:id", method = "get")]
    async fn get(
        &self,
        auth: SessionAuth,
        id: Path<uuid::Uuid>,
        req: &Request,
    ) -> Result<Json<WebhookDto>, ApiError> {
        let principal = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?;
        let endpoint = self.0.service.webhooks.endpoint(&principal, id.0).await?;
        Ok(Json(WebhookDto::from(&endpoint)))
    }

    /// Change an endpoint's address or events, pause it or resume it. A
    /// recent second-factor check, as for adding one.
    #[oai(path = "/webhooks/:id", method = "patch")]
    async fn update(
        &self,
        auth: SessionAuth,
        id: Path<uuid::Uuid>,
        body: Json<UpdateWebhook>,
        req: &Request,
    ) -> Result<Json<WebhookDto>, ApiError> {
        let principal = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?;
        let change =
            EndpointChange { url: body.0.url, events: body.0.events, enabled: body.0.enabled };
        let endpoint = self
            .0
            .service
            .webhooks
            .update(&principal, id.0, &change, &request_context(req))
            .await?;
        Ok(Json(WebhookDto::from(&endpoint)))
    }

    /// Delete an endpoint and its deliveries. A recent check.
    #[oai(path = "/webhooks/:id", method = "delete")]
    async fn delete(
        &self,
        auth: SessionAuth,
        id: Path<uuid::Uuid>,
        req: &Request,
    ) -> Result<WebhookDone, ApiError> {
        let principal = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?;
        self.0.service.webhooks.delete(&principal, id.0, &request_context(req)).await?;
        Ok(WebhookDone::Done)
    }

    /// A new signing secret, shown once; the previous one still signs for
    /// 24 hours. A recent check.
    #[oai(path = "/webhooks/:id/rotate-secret", method = "post")]
    async fn rotate(
        &self,
        auth: SessionAuth,
        id: Path<uuid::Uuid>,
        req: &Request,
    ) -> Result<SecretRotated, ApiError> {
        let principal = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?;
        let context = request_context(req);
        let secret = self.0.service.webhooks.rotate_secret(&principal, id.0, &context).await?;
        let endpoint = self.0.service.webhooks.endpoint(&principal, id.0).await?;
        Ok(SecretRotated::Rotated(
            Json(WebhookSecretDto {
                webhook: WebhookDto::from(&endpoint),
                secret: secret.expose().to_owned(),
            }),
            "no-store".to_owned(),
        ))
    }

    /// Send a `webhook.test` event to the endpoint ("Send test event").
    #[oai(path = "/webhooks/:id/test", method = "post")]
    async fn test(
        &self,
        auth: SessionAuth,
        id: Path<uuid::Uuid>,
        req: &Request,
    ) -> Result<TestQueued, ApiError> {
        let principal = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?;
        let delivery = self.0.service.webhooks.send_test(&principal, id.0).await?;
        Ok(TestQueued::Queued(Json(DeliveryDto::from(&delivery))))
    }

    /// The endpoint's deliveries, newest first; `status=failed` lists those
    /// given up, with the last error.
    #[oai(path = "/webhooks/:id/deliveries", method = "get")]
    async fn deliveries(
        &self,
        auth: SessionAuth,
        id: Path<uuid::Uuid>,
        /// `pending`, `delivered` or `failed`; all if absent.
        status: Query<Option<DeliveryStateDto>>,
        /// Cursor from the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–200 (default 50).
        limit: Query<Option<u32>>,
        req: &Request,
    ) -> Result<Json<DeliveryPage>, ApiError> {
        let principal = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?;
        let before = cursor.0.as_deref().map(super::mail::parse_cursor).transpose()?;
        let limit = limit.0.unwrap_or(50).clamp(1, 200);
        let found = self
            .0
            .service
            .webhooks
            .deliveries(&principal, id.0, status.0.map(Into::into), before, limit)
            .await?;
        let next_cursor = (found.len() == limit as usize)
            .then(|| found.last().map(|d| format!("{}_{}", d.created_at.timestamp_micros(), d.id)))
            .flatten();
        Ok(Json(DeliveryPage { items: found.iter().map(DeliveryDto::from).collect(), next_cursor }))
    }

    /// Send a failed delivery again, now, with three more days of retries.
    /// 409 `delivery_not_failed` for a pending or delivered one.
    #[oai(path = "/webhooks/:id/deliveries/:delivery/retry", method = "post")]
    async fn retry(
        &self,
        auth: SessionAuth,
        id: Path<uuid::Uuid>,
        delivery: Path<uuid::Uuid>,
        req: &Request,
    ) -> Result<WebhookDone, ApiError> {
        let principal = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?;
        self.0.service.webhooks.retry(&principal, id.0, delivery.0, &request_context(req)).await?;
        Ok(WebhookDone::Done)
    }
}
