//! Admin Panel > Audit log: every admin action and security event, newest
//! first, filtered by action, user and time; with the CSV export of the
//! same filters.

use askama::Template;
use chrono::{DateTime, NaiveTime, Utc};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Request, Response, handler};
use secureai_domain::AuditAction;
use secureai_domain::audit::service::{AuditError, AuditRequest};
use secureai_domain::dates::parse_day;
use serde::Deserialize;

use super::shell::{Nav, admin_viewer, blank_to_none, link_with, sentence};
use super::{internal, page};
use crate::AppState;

#[derive(Deserialize, Default)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
}

struct Row {
    at: String,
    actor: String,
    action: &'static str,
    target: String,
    changes: String,
    ip: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Nav,
    error: Option<String>,
    actions: Vec<&'static str>,
    action: String,
    user: String,
    from: String,
    to: String,
    rows: Vec<Row>,
    next: Option<String>,
    export: String,
}

/// A date (`YYYY-MM-DD`, UTC midnight) from a date input.
fn day(text: &str, field: &str) -> Result<Option<DateTime<Utc>>, String> {
    match blank_to_none(text) {
        None => Ok(None),
        Some(text) => {
            parse_day(&text, field).map(|d| Some(d.and_time(NaiveTime::MIN).and_utc())).map_err(
                |_| format!("The {field} date must look like 2026-11-28 (years 2000 to 9999)."),
            )
        }
    }
}

/// `GET /admin/audit`.
#[handler]
pub(crate) async fn audit(
    state: Data<&AppState>,
    req: &Request,
    Query(query): Query<AuditQuery>,
) -> Response {
    let (viewer, admin) = match admin_viewer(&state, req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    // "To" is inclusive: the whole day.
    let dates = day(&query.from, "from").and_then(|from| {
        // 9999-12-31 plus a day is still inside chrono's calendar.
        day(&query.to, "to").map(|to| (from, to.map(|t| t + chrono::Days::new(1))))
    });
    let mut error = None;
    let (mut rows, mut next) = (Vec::new(), None);
    match dates {
        Err(message) => error = Some(message),
        Ok((from, to)) => {
            let request = AuditRequest {
                actor: None,
                target: blank_to_none(&query.user),
                action: blank_to_none(&query.action),
                from,
                to,
                limit: Some(50),
                cursor: blank_to_none(&query.cursor),
            };
            match state.service.audit.audit_log(&admin, &request).await {
                Ok(found) => {
                    rows = found
                        .items
                        .iter()
                        .map(|e| Row {
                            at: e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                            actor: match (&e.actor_email, &e.actor_token) {
                                (Some(email), _) => email.clone(),
                                (None, Some((_, name))) => format!("{name} (service token)"),
                                (None, None) => e.actor_kind.clone(),
                            },
                            action: e.action.as_str(),
                            target: e.target_email.clone().unwrap_or_default(),
                            changes: e
                                .changes
                                .iter()
                                .map(|c| match (&c.before, &c.after) {
                                    (Some(b), Some(a)) => format!("{}: {b} → {a}", c.field),
                                    (None, Some(a)) => format!("{}: {a}", c.field),
                                    (Some(b), None) => format!("{}: {b} → (none)", c.field),
                                    (None, None) => c.field.clone(),
                                })
                                .collect::<Vec<_>>()
                                .join("; "),
                            ip: e.context.ip.clone().unwrap_or_default(),
                        })
                        .collect();
                    next = found.next_cursor.map(|cursor| {
                        let params = [
                            ("action", query.action.as_str()),
                            ("user", query.user.as_str()),
                            ("from", query.from.as_str()),
                            ("to", query.to.as_str()),
                            ("cursor", cursor.as_str()),
                        ];
                        link_with("/admin/audit", &params)
                    });
                }
                Err(AuditError::Unexpected(e)) => return internal(&e),
                Err(other) => error = Some(sentence(&other.to_string())),
            }
        }
    }
    let export = link_with(
        "/api/v1/audit/export.csv",
        &[("action", query.action.as_str()), ("target", query.user.as_str())],
    );
    let template = AuditPage {
        nav: viewer.nav("audit"),
        error,
        actions: AuditAction::all().map(AuditAction::as_str).collect(),
        action: query.action,
        user: query.user,
        from: query.from,
        to: query.to,
        rows,
        next,
        export,
    };
    page(StatusCode::OK, &template)
}
