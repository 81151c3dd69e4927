//! `GET /audit` and `GET /audit/export.csv` (admins only).

use chrono::{DateTime, Utc};
use poem::Request;
use poem_openapi::param::Query;
use poem_openapi::payload::{Binary, Json};
use poem_openapi::{ApiResponse, Object, OpenApi};
use secureai_domain::access::ApiScope;
use secureai_domain::audit::models::AuditEntry;
use secureai_domain::audit::service::AuditRequest;
use secureai_domain::dates::parse_instant;

use super::ApiTags;
use crate::AppState;
use crate::auth::SessionAuth;
use crate::csv_export;
use crate::errors::ApiError;

/// One field's change.
#[derive(Debug, Object)]
pub(crate) struct ChangeDto {
    /// Field or detail name.
    field: String,
    /// Value before.
    before: Option<String>,
    /// Value after.
    after: Option<String>,
}

/// One audit entry.
#[derive(Debug, Object)]
pub(crate) struct AuditEntryDto {
    /// Id.
    id: String,
    /// When.
    at: DateTime<Utc>,
    /// `user`, `operator`, `anonymous` or `service` (a service token, such
    /// as an identity provider provisioning over SCIM).
    actor_kind: String,
    /// The acting service token's id (kind `service`).
    actor_token_id: Option<String>,
    /// The acting service token's name (kind `service`).
    actor_token_name: Option<String>,
    /// Acting user's id.
    actor_id: Option<String>,
    /// Acting user's email at the time (absent once erased).
    actor_email: Option<String>,
    /// Stable action name, e.g. `user.role_changed`.
    action: String,
    /// Target user's id.
    target_id: Option<String>,
    /// Target's email at the time (absent once erased).
    target_email: Option<String>,
    /// Changed fields, before → after, and details.
    changes: Vec<ChangeDto>,
    /// Client IP.
    ip: Option<String>,
    /// Client user agent.
    user_agent: Option<String>,
}

impl From<&AuditEntry> for AuditEntryDto {
    fn from(e: &AuditEntry) -> Self {
        Self {
            id: e.id.to_string(),
            at: e.at,
            actor_kind: e.actor_kind.clone(),
            actor_token_id: e.actor_token.as_ref().map(|(id, _)| id.to_string()),
            actor_token_name: e.actor_token.as_ref().map(|(_, name)| name.clone()),
            actor_id: e.actor_id.map(|id| id.to_string()),
            actor_email: e.actor_email.clone(),
            action: e.action.as_str().to_owned(),
            target_id: e.target_id.map(|id| id.to_string()),
            target_email: e.target_email.clone(),
            changes: e
                .changes
                .iter()
                .map(|c| ChangeDto {
                    field: c.field.clone(),
                    before: c.before.clone(),
                    after: c.after.clone(),
                })
                .collect(),
            ip: e.context.ip.clone(),
            user_agent: e.context.user_agent.clone(),
        }
    }
}

/// A page of the audit log, newest first.
#[derive(Debug, Object)]
pub(crate) struct AuditPageDto {
    /// Entries.
    items: Vec<AuditEntryDto>,
    /// Pass as `cursor` for the next page; absent on the last.
    next_cursor: Option<String>,
}

#[derive(ApiResponse)]
pub(crate) enum CsvExport {
    /// Every matching entry as CSV (cells starting with `= + - @`, tab or
    /// CR are prefixed with `'` so spreadsheets do not run them).
    #[oai(status = 200, content_type = "text/csv; charset=utf-8")]
    Csv(Binary<poem::Body>, #[oai(header = "Content-Disposition")] String),
}

pub(crate) struct AuditApi(pub(crate) AppState);

/// An optional RFC 3339 query parameter inside the accepted years.
fn instant(text: Option<String>, field: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.map(|t| parse_instant(&t, field).map_err(|e| ApiError::invalid_date(&e))).transpose()
}

#[allow(clippy::too_many_arguments)]
#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Audit")]
impl AuditApi {
    /// The audit log, newest first, with filters and cursor paging.
    #[oai(path = "/audit", method = "get")]
    async fn list(
        &self,
        auth: SessionAuth,
        /// Acting user's id.
        actor: Query<Option<String>>,
        /// Target user's id.
        target: Query<Option<String>>,
        /// Action name, e.g. `user.deactivated`.
        action: Query<Option<String>>,
        /// At or after (RFC 3339, years 2000–9999).
        from: Query<Option<String>>,
        /// Before (RFC 3339, years 2000–9999).
        to: Query<Option<String>>,
        /// Cursor from the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–1000 (default 100).
        limit: Query<Option<u32>>,
        req: &Request,
    ) -> Result<Json<AuditPageDto>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::AuditRead)).await?.admin()?;
        let request = AuditRequest {
            actor: actor.0,
            target: target.0,
            action: action.0,
            from: instant(from.0, "from")?,
            to: instant(to.0, "to")?,
            limit: limit.0,
            cursor: cursor.0,
        };
        let page = self.0.service.audit.audit_log(&admin, &request).await?;
        Ok(Json(AuditPageDto {
            items: page.items.iter().map(AuditEntryDto::from).collect(),
            next_cursor: page.next_cursor,
        }))
    }

    /// Every matching audit entry as CSV, streamed.
    #[oai(path = "/audit/export.csv", method = "get")]
    async fn export(
        &self,
        auth: SessionAuth,
        /// Acting user's id.
        actor: Query<Option<String>>,
        /// Target user's id.
        target: Query<Option<String>>,
        /// Action name.
        action: Query<Option<String>>,
        /// At or after (RFC 3339, years 2000–9999).
        from: Query<Option<String>>,
        /// Before (RFC 3339, years 2000–9999).
        to: Query<Option<String>>,
        req: &Request,
    ) -> Result<CsvExport, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::AuditRead)).await?.admin()?;
        let request = AuditRequest {
            actor: actor.0,
            target: target.0,
            action: action.0,
            from: instant(from.0, "from")?,
            to: instant(to.0, "to")?,
            limit: Some(1000),
            cursor: None,
        };
        // Validate before streaming, so a bad filter is a 422, not a broken file.
        request.filter().map_err(|e| ApiError::invalid_field(&e))?;
        let body = csv_export::audit_stream(self.0.service.clone(), admin, request);
        Ok(CsvExport::Csv(Binary(body), "attachment; filename=\"secureai-audit.csv\"".to_owned()))
    }
}
