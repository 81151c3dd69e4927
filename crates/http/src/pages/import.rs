//! Admin Panel > Users > Import Users: upload a CSV → preview every row
//! with its outcome → Import → the report, with the skipped rows as a CSV
//! download. The same use cases as the API; no rule lives here.
//!
//! The file travels back with the Import button (a hidden field of the
//! preview page's multipart form), so no upload is kept on the server
//! between the two steps and any instance can take the second one.

use secureai_csv::CsvFile;
use std::io::Cursor;

use askama::Template;
use poem::http::StatusCode;
use poem::web::{Data, Multipart};
use poem::{Request, Response, handler};
use secureai_domain::imports::models::{ImportMode, RowOutcome};
use secureai_domain::imports::service::{ImportError, ImportRequest};

use super::shell::{Nav, admin_viewer, refuse_form, sentence};
use super::{internal, page};
use crate::AppState;
use crate::auth::request_context;

/// Rows shown on the page; the rest are in the CSV download.
const ROWS_SHOWN: u32 = 200;

#[derive(Template)]
#[template(path = "import.html")]
struct ImportPage {
    nav: Nav,
    error: Option<String>,
    /// `upload`, `preview` or `report`.
    step: &'static str,
    file_name: String,
    csv: String,
    rows: u64,
    valid: u64,
    skipped: u64,
    warnings: Vec<String>,
    lines: Vec<Line>,
    more: bool,
    report_id: String,
}

struct Line {
    line: u64,
    email: String,
    ok: bool,
    outcome: String,
}

fn upload_page(nav: Nav, error: Option<String>) -> ImportPage {
    ImportPage {
        nav,
        error,
        step: "upload",
        file_name: String::new(),
        csv: String::new(),
        rows: 0,
        valid: 0,
        skipped: 0,
        warnings: Vec::new(),
        lines: Vec::new(),
        more: false,
        report_id: String::new(),
    }
}

/// `GET /admin/users/import`.
#[handler]
pub(crate) async fn show(state: Data<&AppState>, req: &Request) -> Response {
    match admin_viewer(&state, req).await {
        Ok((viewer, _)) => page(StatusCode::OK, &upload_page(viewer.nav("users"), None)),
        Err(response) => response,
    }
}

/// `POST /admin/users/import`: preview (`mode=preview`, the uploaded file)
/// or import (`mode=commit`, the file sent back by the preview page).
#[handler]
pub(crate) async fn submit(state: Data<&AppState>, req: &Request, mut form: Multipart) -> Response {
    let (viewer, admin) = match admin_viewer(&state, req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let (mut csrf, mut mode, mut file_name, mut bytes) =
        (String::new(), String::new(), String::new(), Vec::new());
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                if name == "file" {
                    file_name = field.file_name().unwrap_or("upload.csv").to_owned();
                }
                let Ok(value) = field.bytes().await else {
                    let error = Some("The upload was interrupted; try again.".to_owned());
                    return page(StatusCode::BAD_REQUEST, &upload_page(viewer.nav("users"), error));
                };
                match name.as_str() {
                    "csrf" => csrf = String::from_utf8_lossy(&value).into_owned(),
                    "mode" => mode = String::from_utf8_lossy(&value).into_owned(),
                    "file_name" => file_name = String::from_utf8_lossy(&value).into_owned(),
                    "file" | "csv" if !value.is_empty() => bytes = value,
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(_) => {
                let error = Some("The upload could not be read; try again.".to_owned());
                return page(StatusCode::BAD_REQUEST, &upload_page(viewer.nav("users"), error));
            }
        }
    }
    if let Some(refused) = refuse_form(&state, req, &viewer, &csrf) {
        return refused;
    }
    if bytes.is_empty() {
        let error = Some("Choose a CSV file to import.".to_owned());
        return page(StatusCode::UNPROCESSABLE_ENTITY, &upload_page(viewer.nav("users"), error));
    }
    let mode = if mode == "commit" { ImportMode::Commit } else { ImportMode::Preview };
    let request = ImportRequest {
        file_name: if file_name.is_empty() { "upload.csv".into() } else { file_name.clone() },
        mode,
        max_rows: Some(state.import_limits.max_rows),
        keep_all_rows: true,
    };
    let record = match state
        .service
        .imports
        .import_file(
            &admin,
            &mut CsvFile::new(Cursor::new(bytes.clone())),
            &request,
            &request_context(req),
            &mut |_| {},
        )
        .await
    {
        Ok(record) => record,
        Err(ImportError::Unexpected(e)) => return internal(&e),
        Err(error) => {
            let error = Some(sentence(&error.to_string()));
            return page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &upload_page(viewer.nav("users"), error),
            );
        }
    };
    let reports = match state
        .service
        .imports
        .import_report_rows(&admin, record.id, 0, ROWS_SHOWN + 1, mode == ImportMode::Commit)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return internal(&e),
    };
    let more = reports.len() > ROWS_SHOWN as usize;
    let lines = reports
        .into_iter()
        .take(ROWS_SHOWN as usize)
        .map(|r| {
            let (ok, outcome) = match r.outcome {
                RowOutcome::Valid => (true, "will be invited".to_owned()),
                RowOutcome::Created(_) => (true, "invited".to_owned()),
                RowOutcome::Skipped(problems) => (
                    false,
                    problems
                        .iter()
                        .map(|p| format!("{}: {}", p.field, p.reason))
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            };
            Line { line: r.line, email: r.email, ok, outcome }
        })
        .collect();
    let template = ImportPage {
        nav: viewer.nav("users"),
        error: None,
        step: if mode == ImportMode::Commit { "report" } else { "preview" },
        file_name: request.file_name,
        csv: if mode == ImportMode::Preview {
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            String::new()
        },
        rows: record.counts.rows,
        valid: record.counts.valid,
        skipped: record.counts.skipped,
        warnings: record.warnings,
        lines,
        more,
        report_id: record.id.to_string(),
    };
    page(StatusCode::OK, &template)
}
