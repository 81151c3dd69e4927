//! CSV downloads, escaped against formula injection (OWASP ASVS 1.2.10): a
//! cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is
//! prefixed with `'` so spreadsheets show it instead of running it.

use std::sync::Arc;

use futures_util::stream;
use secureai_csv::safe_cell;
use secureai_domain::User;
use secureai_domain::UserManagement;
use secureai_domain::access::Admin;
use secureai_domain::audit::models::AuditEntry;
use secureai_domain::audit::service::AuditRequest;
use secureai_domain::users::listing::{ListUsersRequest, UsersPage};

const HEADER: [&str; 12] = [
    "id",
    "at",
    "actor_kind",
    "actor_id",
    "actor_email",
    "actor_token_name",
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
            e.actor_token.as_ref().map(|(_, name)| name.clone()).unwrap_or_default(),
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

/// The users export's columns: those an import takes, then the state.
const USER_HEADER: [&str; 7] =
    ["email", "name", "role", "department", "status", "created_at", "last_sign_in_at"];

fn user_rows(users: &[User], header: bool) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    if header {
        writer.write_record(USER_HEADER)?;
    }
    for user in users {
        let cells = [
            user.email.to_string(),
            user.name.to_string(),
            user.role.as_str().to_owned(),
            user.department.as_ref().map(ToString::to_string).unwrap_or_default(),
            user.status().as_str().to_owned(),
            user.created_at.to_rfc3339(),
            user.last_login_at.map(|at| at.to_rfc3339()).unwrap_or_default(),
        ];
        writer.write_record(cells.iter().map(|c| safe_cell(c).into_owned()))?;
    }
    writer.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Streams every user the list's filters match as CSV, starting with
/// `first` (read before the answer began, so a bad filter is a 422), then a
/// page at a time: the export never holds the directory in memory.
pub(crate) fn users_stream(
    service: Arc<UserManagement>,
    admin: Admin,
    request: ListUsersRequest,
    first: UsersPage,
) -> poem::Body {
    let head = user_rows(&first.items, true).map_err(std::io::Error::other);
    let rest = first.next_cursor.map(|cursor| ListUsersRequest { cursor: Some(cursor), ..request });
    let pages = stream::unfold((Some(head), rest), move |(head, next)| {
        let service = service.clone();
        let admin = admin.clone();
        async move {
            if let Some(head) = head {
                return Some((head, (None, next)));
            }
            let request = next?;
            let page = match service.users.list_users(&admin, &request).await {
                Ok(page) => page,
                Err(error) => {
                    tracing::error!(%error, "users export failed mid-stream");
                    let failed = Err(std::io::Error::other("users export failed"));
                    return Some((failed, (None, None)));
                }
            };
            let chunk = user_rows(&page.items, false).map_err(std::io::Error::other);
            let next =
                page.next_cursor.map(|cursor| ListUsersRequest { cursor: Some(cursor), ..request });
            Some((chunk, (None, next)))
        }
    });
    poem::Body::from_bytes_stream(pages)
}
