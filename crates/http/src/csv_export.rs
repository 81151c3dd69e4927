//! CSV downloads, escaped against formula injection (OWASP ASVS 1.2.10): a
//! cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is
//! prefixed with `'` so spreadsheets show it instead of running it.

use std::sync::Arc;

use futures_util::stream;
use secureai_csv::safe_cell;
use secureai_domain::UserManagement;
use secureai_domain::access::Admin;
use secureai_domain::audit::models::AuditEntry;
use secureai_domain::audit::service::AuditRequest;

const HEADER: [&str; 11] = [
    "id",
    "at",
    "actor_kind",
    "actor_id",
    "actor_email",
    "action",
    "target_id",
    "target_email",
    "changes",
    "ip",
    "user_agent",
];

fn rows(entries: &[AuditEntry], header: bool) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    if header {
        writer.write_record(HEADER)?;
    }
    for e in entries {
        let changes = e
            .changes
            .iter()
            .map(|c| {
                format!(
                    "{}: {} -> {}",
                    c.field,
                    c.before.as_deref().unwrap_or("-"),
                    c.after.as_deref().unwrap_or("-")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let cells = [
            e.id.to_string(),
            e.at.to_rfc3339(),
            e.actor_kind.clone(),
            e.actor_id.map(|id| id.to_string()).unwrap_or_default(),
            e.actor_email.clone().unwrap_or_default(),
            e.action.as_str().to_owned(),
            e.target_id.map(|id| id.to_string()).unwrap_or_default(),
            e.target_email.clone().unwrap_or_default(),
            changes,
            e.context.ip.clone().unwrap_or_default(),
            e.context.user_agent.clone().unwrap_or_default(),
        ];
        writer.write_record(cells.iter().map(|c| safe_cell(c).into_owned()))?;
    }
    writer.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Streams every matching audit entry as CSV, a page at a time, so the
/// export never holds the whole log in memory.
pub(crate) fn audit_stream(
    service: Arc<UserManagement>,
    admin: Admin,
    request: AuditRequest,
) -> poem::Body {
    let pages = stream::unfold(Some((request, true)), move |state| {
        let service = service.clone();
        let admin = admin.clone();
        async move {
            let (request, first) = state?;
            let page = match service.audit.audit_log(&admin, &request).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::error!(%error, "audit export failed mid-stream");
                    return Some((Err(std::io::Error::other("audit export failed")), None));
                }
            };
            let chunk = rows(&page.items, first).map_err(std::io::Error::other);
            let next = page
                .next_cursor
                .map(|cursor| (AuditRequest { cursor: Some(cursor), ..request }, false));
            Some((chunk, next))
        }
    });
    poem::Body::from_bytes_stream(pages)
}
