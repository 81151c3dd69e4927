//! CSV downloads, escaped against formula injection (OWASP ASVS 1.2.10): a
//! cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is
//! prefixed with `'` so spreadsheets show it instead of running it.

use std::sync::Arc;

use futures_util::stream;
use secureai_domain::UserManagement;
use secureai_domain::access::Admin;
use secureai_domain::audit::models::AuditEntry;
use secureai_domain::audit::service::AuditRequest;

/// A cell made safe for spreadsheets.
pub fn safe_cell(value: &str) -> std::borrow::Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}").into(),
        _ => value.into(),
    }
}

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

/// The header of a skipped-rows report.
pub const SKIPPED_ROWS_HEADER: [&str; 4] = ["line", "email", "field", "reason"];

/// Writes the skipped rows among `rows` as `line,email,field,reason`
/// (several problems of a row joined with `; `), formula-like cells defused.
/// The same report for the API's download and the command line's file.
///
/// # Errors
/// When the writer fails.
pub fn write_skipped_rows<W: std::io::Write>(
    writer: &mut csv::Writer<W>,
    rows: &[secureai_domain::imports::models::RowReport],
) -> csv::Result<()> {
    use secureai_domain::imports::models::RowOutcome;
    for row in rows {
        if let RowOutcome::Skipped(problems) = &row.outcome {
            let fields: Vec<&str> = problems.iter().map(|p| p.field).collect();
            let reasons: Vec<&str> = problems.iter().map(|p| p.reason.as_str()).collect();
            writer.write_record([
                row.line.to_string(),
                safe_cell(&row.email).into_owned(),
                fields.join("; "),
                safe_cell(&reasons.join("; ")).into_owned(),
            ])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::safe_cell;

    #[test]
    fn formula_like_cells_are_defused_and_others_untouched() {
        for dangerous in ["=SUM(A1)", "+1", "-2", "@cmd", "\tx", "\rx"] {
            assert_eq!(safe_cell(dangerous), format!("'{dangerous}"));
        }
        for harmless in ["ada@example.com", "user.invited", "", "2026-01-01"] {
            assert_eq!(safe_cell(harmless), harmless);
        }
    }
}
