//! `GET/PUT /settings/seats`.

use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
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
}
