//! Reading the audit log (admins only).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use crate::access::Admin;
use crate::audit::models::{AuditAction, AuditEntry};
use crate::audit::ports::{AuditCursor, AuditFilter};
use crate::errors::FieldError;
use crate::errors::StoreError;
use crate::users::models::UserId;

/// The ports AuditService uses, and no others.
#[derive(Clone)]
pub struct AuditPorts {
    /// Stand-alone audit events.
    pub audit: std::sync::Arc<dyn crate::audit::ports::AuditLog>,
}

/// Reading the audit log, filtered and paged: what rule 13 (docs/RULES.md)
/// writes with every change.
pub struct AuditService {
    ports: AuditPorts,
}

impl AuditService {
    /// The use cases over these ports and rules.
    #[must_use]
    pub fn new(ports: AuditPorts) -> Self {
        Self { ports }
    }
}

/// An audit page request as the API receives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditRequest {
    /// Acting user's id.
    pub actor: Option<String>,
    /// Target user's id.
    pub target: Option<String>,
    /// Stable action name, e.g. `user.role_changed`.
    pub action: Option<String>,
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// Before.
    pub to: Option<DateTime<Utc>>,
    /// Page size (1..=1000, default 100).
    pub limit: Option<u32>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

/// Why the audit log could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A filter is invalid.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The cursor is not one this service issued.
    #[error("the cursor is not valid; start again from the first page")]
    InvalidCursor,
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// A page of audit entries, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// The entries.
    pub items: Vec<AuditEntry>,
    /// Opaque cursor for the next page, if any.
    pub next_cursor: Option<String>,
}

fn user_id(field: &'static str, raw: Option<&str>) -> Result<Option<UserId>, FieldError> {
    raw.map(|r| {
        r.trim().parse().map_err(|_| FieldError::new(field, format!("`{r}` is not a user id")))
    })
    .transpose()
}

impl AuditRequest {
    /// The validated filter.
    ///
    /// # Errors
    /// [`FieldError`] naming the bad parameter.
    pub fn filter(&self) -> Result<AuditFilter, FieldError> {
        let action = self
            .action
            .as_deref()
            .map(|name| {
                AuditAction::parse(name.trim()).ok_or_else(|| {
                    let known: Vec<&str> = AuditAction::all().map(AuditAction::as_str).collect();
                    FieldError::new(
                        "action",
                        format!("`{name}` is not an action; use one of {}", known.join(", ")),
                    )
                })
            })
            .transpose()?;
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from > to
        {
            return Err(FieldError::new("from", "must not be after `to`"));
        }
        Ok(AuditFilter {
            actor: user_id("actor", self.actor.as_deref())?,
            target: user_id("target", self.target.as_deref())?,
            action,
            from: self.from,
            to: self.to,
        })
    }
}

fn encode(cursor: &AuditCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{}", cursor.at.timestamp_micros(), cursor.id))
}

fn decode(text: &str) -> Option<AuditCursor> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
    let (micros, id) = raw.split_once('|')?;
    Some(AuditCursor {
        at: DateTime::<Utc>::from_timestamp_micros(micros.parse().ok()?)?,
        id: id.parse().ok()?,
    })
}

impl AuditService {
    /// A page of the audit log, newest first.
    ///
    /// # Errors
    /// See [`AuditError`].
    pub async fn audit_log(
        &self,
        _admin: &Admin,
        request: &AuditRequest,
    ) -> Result<AuditPage, AuditError> {
        let filter = request.filter()?;
        let after = match request.cursor.as_deref() {
            Some(text) => Some(decode(text).ok_or(AuditError::InvalidCursor)?),
            None => None,
        };
        let limit = request.limit.unwrap_or(100).clamp(1, 1000);
        let mut items = self.ports.audit.list(&filter, after, limit + 1).await?;
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|e| encode(&AuditCursor { at: e.at, id: e.id }))
        } else {
            None
        };
        Ok(AuditPage { items, next_cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_filters_are_validated_and_cursors_round_trip() {
        let bad = AuditRequest { action: Some("user.exploded".into()), ..Default::default() };
        assert_eq!(bad.filter().unwrap_err().field, "action");
        let bad = AuditRequest { target: Some("nope".into()), ..Default::default() };
        assert_eq!(bad.filter().unwrap_err().field, "target");
        let ok = AuditRequest { action: Some("user.invited".into()), ..Default::default() };
        assert_eq!(ok.filter().unwrap().action, Some(AuditAction::UserInvited));
        let cursor = AuditCursor {
            at: DateTime::<Utc>::from_timestamp_micros(1_700_000_000_000_001).unwrap(),
            id: uuid::Uuid::new_v4(),
        };
        assert_eq!(decode(&encode(&cursor)), Some(cursor));
        assert_eq!(decode("zzz"), None);
    }
}
