//! `GET/PUT /settings/seats` and `/settings/provisioning`.

use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use secureai_domain::provisioning::models::ProvisioningSettings;
use secureai_domain::users::lifecycle::SeatUsage;

use super::ApiTags;
use crate::AppState;
use crate::auth::{SessionAuth, request_context};
use crate::errors::ApiError;

/// Seat limit and usage.
#[derive(Debug, Object)]
pub(crate) struct Seats {
    /// Invited + active users allowed; `null` = unlimited.
    limit: Option<u32>,
    /// Invited + active users now.
    used: u64,
}

impl From<SeatUsage> for Seats {
    fn from(usage: SeatUsage) -> Self {
        Self { limit: usage.limit, used: usage.used }
    }
}

/// A new seat limit.
#[derive(Debug, Object)]
pub(crate) struct SetSeats {
    /// Invited + active users allowed; `null` = unlimited.
    limit: Option<u32>,
}

/// Settings › Provisioning (SCIM).
#[derive(Debug, Object)]
pub(crate) struct ProvisioningSettingsDto {
    /// The id of the group whose members are admins (SSO users; a password
    /// break-glass admin keeps their role); `null`: none.
    admin_group: Option<String>,
    /// Whether users created over SCIM get the access-ready email.
    send_access_email: bool,
}

impl From<ProvisioningSettings> for ProvisioningSettingsDto {
    fn from(settings: ProvisioningSettings) -> Self {
        Self {
            admin_group: settings.admin_group.map(|id| id.to_string()),
            send_access_email: settings.send_access_email,
        }
    }
}

pub(crate) struct SettingsApi(pub(crate) AppState);

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Settings")]
impl SettingsApi {
    /// The seat limit and the seats in use (invited and active users hold a
    /// seat; deactivated users do not).
    #[oai(path = "/settings/seats", method = "get")]
    async fn seats(&self, auth: SessionAuth, req: &Request) -> Result<Json<Seats>, ApiError> {
        let admin = self.0.principal(&auth, req).await?.admin()?;
        Ok(Json(self.0.service.users.seat_usage(&admin).await?.into()))
    }

    /// Set the seat limit. Takes effect at once on every instance.
    #[oai(path = "/settings/seats", method = "put")]
    async fn set_seats(
        &self,
        auth: SessionAuth,
        body: Json<SetSeats>,
        req: &Request,
    ) -> Result<Json<Seats>, ApiError> {
        let admin = self.0.principal(&auth, req).await?.admin()?;
        let usage = self
            .0
            .service
            .users
            .set_seat_limit(&admin, body.0.limit, &request_context(req))
            .await?;
        Ok(Json(usage.into()))
    }

    /// Settings › Provisioning: the admin group and the access-ready email
    /// of users created over SCIM.
    #[oai(path = "/settings/provisioning", method = "get")]
    async fn provisioning(
        &self,
        auth: SessionAuth,
        req: &Request,
    ) -> Result<Json<ProvisioningSettingsDto>, ApiError> {
        let admin = self.0.principal(&auth, req).await?.admin()?;
        Ok(Json(self.0.service.provisioning.settings(&admin).await?.into()))
    }

    /// Save Settings › Provisioning. Naming an admin group makes its SSO
    /// members admins at once; from then on joining or leaving it sets
    /// their role (the last active admin is always kept).
    #[oai(path = "/settings/provisioning", method = "put")]
    async fn set_provisioning(
        &self,
        auth: SessionAuth,
        body: Json<ProvisioningSettingsDto>,
        req: &Request,
    ) -> Result<Json<ProvisioningSettingsDto>, ApiError> {
        let admin = self.0.principal(&auth, req).await?.admin()?;
        let admin_group = match body.0.admin_group.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(id) => Some(uuid::Uuid::parse_str(id).map_err(|_| {
                ApiError::invalid_field(&secureai_domain::errors::FieldError::new(
                    "admin_group",
                    "must be a group id",
                ))
            })?),
        };
        let settings =
            ProvisioningSettings { admin_group, send_access_email: body.0.send_access_email };
        let saved = self
            .0
            .service
            .provisioning
            .set_settings(&admin, &settings, &request_context(req))
            .await?;
        Ok(Json(saved.into()))
    }
}
