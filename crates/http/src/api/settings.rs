//! `GET/PUT /settings/seats`, `/settings/provisioning` and
//! `/settings/security`.

use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use secureai_domain::access::ApiScope;
use secureai_domain::mfa::policy::{AdminMfa, SecurityPolicy, UserMfa};
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

/// Second factors for admins.
#[derive(poem_openapi::Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub(crate) enum AdminMfaDto {
    /// Every password admin must have one (the default).
    Required,
    /// Admins may set one up.
    Optional,
}

/// Second factors for users.
#[derive(poem_openapi::Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub(crate) enum UserMfaDto {
    /// Not offered (the default); one already set up still works.
    Off,
    /// Users may set one up.
    Optional,
    /// Every password user must have one.
    Required,
}

/// Settings › Security: who must have a second factor. Single sign-on
/// users are never asked (their identity provider's policy applies).
#[derive(Debug, Object)]
pub(crate) struct SecuritySettingsDto {
    /// For password admins.
    admin_mfa: AdminMfaDto,
    /// For password users.
    user_mfa: UserMfaDto,
}

impl From<SecurityPolicy> for SecuritySettingsDto {
    fn from(policy: SecurityPolicy) -> Self {
        Self {
            admin_mfa: match policy.admin_mfa {
                AdminMfa::Required => AdminMfaDto::Required,
                AdminMfa::Optional => AdminMfaDto::Optional,
            },
            user_mfa: match policy.user_mfa {
                UserMfa::Off => UserMfaDto::Off,
                UserMfa::Optional => UserMfaDto::Optional,
                UserMfa::Required => UserMfaDto::Required,
            },
        }
    }
}

impl From<SecuritySettingsDto> for SecurityPolicy {
    fn from(dto: SecuritySettingsDto) -> Self {
        Self {
            admin_mfa: match dto.admin_mfa {
                AdminMfaDto::Required => AdminMfa::Required,
                AdminMfaDto::Optional => AdminMfa::Optional,
            },
            user_mfa: match dto.user_mfa {
                UserMfaDto::Off => UserMfa::Off,
                UserMfaDto::Optional => UserMfa::Optional,
                UserMfaDto::Required => UserMfa::Required,
            },
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
        let admin = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?.admin()?;
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
        let admin = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?.admin()?;
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
        let admin = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?.admin()?;
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
        let admin = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?.admin()?;
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

    /// Settings › Security: who must have a second factor.
    #[oai(path = "/settings/security", method = "get")]
    async fn security(
        &self,
        auth: SessionAuth,
        req: &Request,
    ) -> Result<Json<SecuritySettingsDto>, ApiError> {
        self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?.admin()?;
        Ok(Json(self.0.service.mfa.security_policy().await?.into()))
    }

    /// Save Settings › Security. A requirement applies at each person's
    /// next password sign-in: without a second factor they get a session
    /// that can only set one up.
    #[oai(path = "/settings/security", method = "put")]
    async fn set_security(
        &self,
        auth: SessionAuth,
        body: Json<SecuritySettingsDto>,
        req: &Request,
    ) -> Result<Json<SecuritySettingsDto>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?.admin()?;
        let policy = SecurityPolicy::from(body.0);
        let saved =
            self.0.service.mfa.set_security_policy(&admin, policy, &request_context(req)).await?;
        Ok(Json(saved.into()))
    }
}
