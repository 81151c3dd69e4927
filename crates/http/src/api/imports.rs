//! Bulk import: `POST /users/import?mode=preview|commit` (CSV body,
//! multipart upload or JSON rows), `GET /imports/{id}` (the report, paged),
//! `GET /imports/{id}/errors.csv` (the skipped rows).

use secureai_csv::CsvFile;
use secureai_domain::access::ApiScope;
use std::io::Cursor;

use poem::Request;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::{Binary, Json};
use poem_openapi::types::multipart::Upload;
use poem_openapi::{ApiRequest, Enum, Multipart, Object, OpenApi};
use secureai_domain::imports::models::{ImportMode, ImportRecord, RowOutcome, RowReport};
use secureai_domain::imports::rows::{FileError, RawRow};
use secureai_domain::imports::service::{ImportError, ImportRequest};

use super::ApiTags;
use crate::AppState;
use crate::auth::{SessionAuth, request_context};
use crate::errors::ApiError;
use secureai_csv::{SKIPPED_ROWS_HEADER, write_skipped_rows};

/// Preview (write nothing) or commit (create the valid rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub(crate) enum ModeDto {
    /// Check every row; write nothing.
    Preview,
    /// Create every valid row as an invited user; skip the rest.
    Commit,
}

/// One row given as JSON (fields missing are reported per row).
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct ImportRowDto {
    email: Option<String>,
    name: Option<String>,
    role: Option<String>,
    department: Option<String>,
}

/// A file upload (the `file` part and nothing else).
#[derive(Debug, Multipart)]
#[oai(deny_unknown_fields)]
pub(crate) struct ImportUpload {
    /// The CSV file.
    file: Upload,
}

/// The import body: a CSV file, a form upload, or rows as JSON.
#[derive(Debug, ApiRequest)]
pub(crate) enum ImportBody {
    /// A CSV file as the body.
    #[oai(content_type = "text/csv")]
    Csv(Binary<Vec<u8>>),
    /// A form upload with the CSV in the `file` field.
    Upload(ImportUpload),
    /// Rows as JSON, for scripts; numbered from 1.
    Json(Json<Vec<ImportRowDto>>),
}

/// What needs fixing in a row.
#[derive(Debug, Object)]
pub(crate) struct ProblemDto {
    /// `email`, `name`, `role`, `department` or `seats`.
    field: String,
    /// Why, in words.
    reason: String,
}

/// What happened to one row.
#[derive(Debug, Object)]
pub(crate) struct RowDto {
    /// Line in the file (JSON rows: position from 1).
    line: u64,
    /// The email as written.
    email: String,
    /// `valid` (preview), `created` or `skipped`.
    outcome: String,
    /// The created user.
    user_id: Option<String>,
    /// Why it was skipped.
    problems: Vec<ProblemDto>,
}

impl From<&RowReport> for RowDto {
    fn from(row: &RowReport) -> Self {
        let (outcome, user_id, problems) = match &row.outcome {
            RowOutcome::Valid => ("valid", None, Vec::new()),
            RowOutcome::Created(id) => ("created", Some(id.to_string()), Vec::new()),
            RowOutcome::Skipped(problems) => (
                "skipped",
                None,
                problems
                    .iter()
                    .map(|p| ProblemDto { field: p.field.to_owned(), reason: p.reason.clone() })
                    .collect(),
            ),
        };
        Self {
            line: row.line,
            email: row.email.clone(),
            outcome: outcome.to_owned(),
            user_id,
            problems,
        }
    }
}

/// An import's report.
#[derive(Debug, Object)]
pub(crate) struct ImportReportDto {
    /// Identifier: page the rows with `GET /imports/{id}`, download the
    /// skipped rows from `GET /imports/{id}/errors.csv`.
    id: String,
    /// `preview` or `commit`.
    mode: String,
    /// The file name given.
    file_name: String,
    /// Data rows read.
    rows: u64,
    /// Rows valid (preview) or created (commit).
    valid: u64,
    /// Rows skipped.
    skipped: u64,
    /// Whole-file warnings (unknown columns).
    warnings: Vec<String>,
    /// Whether it ran to the end.
    finished: bool,
    /// Address of the skipped rows as CSV.
    errors_csv: String,
    /// Row outcomes in file order, one page.
    items: Vec<RowDto>,
    /// Pass as `cursor` to `GET /imports/{id}` for the next page.
    next_cursor: Option<String>,
}

pub(crate) struct ImportsApi(pub(crate) AppState);

fn too_large(what: &str) -> ApiError {
    ApiError::PayloadTooLarge(Json(crate::errors::ErrorBody {
        code: "import_too_large".into(),
        message: what.to_owned(),
        field: None,
    }))
}

impl ImportsApi {
    async fn report(
        &self,
        admin: &secureai_domain::access::Admin,
        record: ImportRecord,
        after_line: u64,
        limit: u32,
    ) -> Result<ImportReportDto, ApiError> {
        let rows = self
            .0
            .service
            .imports
            .import_report_rows(admin, record.id, after_line, limit, false)
            .await?;
        let next_cursor = (rows.len() == limit as usize)
            .then(|| rows.last().map(|r| r.line.to_string()))
            .flatten();
        Ok(ImportReportDto {
            id: record.id.to_string(),
            mode: record.mode.as_str().to_owned(),
            file_name: record.file_name,
            rows: record.counts.rows,
            valid: record.counts.valid,
            skipped: record.counts.skipped,
            warnings: record.warnings,
            finished: record.finished,
            errors_csv: format!("/api/v1/imports/{}/errors.csv", record.id),
            items: rows.iter().map(RowDto::from).collect(),
            next_cursor,
        })
    }
}

fn file_error(error: ImportError, max_rows: u64) -> ApiError {
    match error {
        ImportError::File(FileError::TooManyRows { .. }) => too_large(&format!(
            "the import has more than {max_rows} rows, the most one import through the API takes; \
             split the file or use `secureai users import` on the server"
        )),
        ImportError::File(error) => ApiError::Unprocessable(Json(crate::errors::ErrorBody {
            code: "invalid_file".into(),
            message: error.to_string(),
            field: Some("file".into()),
        })),
        ImportError::Read(why) => ApiError::bad_request("unreadable_body", why),
        ImportError::Unexpected(e) => e.into(),
    }
}

fn import_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found("import_not_found", "no import has this id"))
}

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Users")]
impl ImportsApi {
    /// Import users from a CSV file (`text/csv` body or a `file` form
    /// upload; columns `email`, `name`, `role`, optional `department`, any
    /// order) or from JSON rows. `mode=preview` checks every row and writes
    /// nothing; `mode=commit` creates each valid row as an invited user with
    /// its invitation email and skips the rest. Either way the answer is the
    /// report: counts, then every row's outcome (first page).
    #[oai(path = "/users/import", method = "post")]
    async fn import(
        &self,
        auth: SessionAuth,
        /// `preview` (default) or `commit`.
        mode: Query<Option<ModeDto>>,
        /// The file name to record (uploads carry their own).
        file_name: Query<Option<String>>,
        body: ImportBody,
        req: &Request,
    ) -> Result<Json<ImportReportDto>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::UsersWrite)).await?.admin()?;
        let limits = self.0.import_limits;
        let mode = match mode.0.unwrap_or(ModeDto::Preview) {
            ModeDto::Preview => ImportMode::Preview,
            ModeDto::Commit => ImportMode::Commit,
        };
        let request = |name: Option<String>| ImportRequest {
            file_name: name.filter(|n| !n.trim().is_empty()).unwrap_or_else(|| "upload.csv".into()),
            mode,
            max_rows: Some(limits.max_rows),
            keep_all_rows: true,
        };
        let context = request_context(req);
        let service = &self.0.service;
        let record = match body {
            ImportBody::Csv(bytes) => {
                let request = request(file_name.0);
                service.imports.import_file(&admin, &mut CsvFile::new(Cursor::new(bytes.0)), &request, &context, &mut |_| {}).await
            }
            ImportBody::Upload(form) => {
                let name = form.file.file_name().map(str::to_owned).or(file_name.0);
                if form.file.size() > limits.max_bytes {
                    return Err(too_large(&format!(
                        "the file is larger than {} bytes, the most one import through the API takes",
                        limits.max_bytes
                    )));
                }
                let bytes = form
                    .file
                    .into_vec()
                    .await
                    .map_err(|e| ApiError::bad_request("unreadable_body", e))?;
                let request = request(name);
                service.imports.import_file(&admin, &mut CsvFile::new(Cursor::new(bytes)), &request, &context, &mut |_| {}).await
            }
            ImportBody::Json(rows) => {
                let rows = rows
                    .0
                    .into_iter()
                    .zip(1_u64..)
                    .map(|(row, line)| RawRow {
                        line,
                        email: row.email.unwrap_or_default(),
                        name: row.name.unwrap_or_default(),
                        role: row.role.unwrap_or_default(),
                        department: row.department.unwrap_or_default(),
                    })
                    .collect();
                let request = request(file_name.0.or_else(|| Some("rows.json".into())));
                service.imports.import_rows_as_admin(&admin, rows, &request, &context).await
            }
        }
        .map_err(|e| file_error(e, limits.max_rows))?;
        Ok(Json(self.report(&admin, record, 0, 100).await?))
    }

    /// An import's report: counts and one page of row outcomes in file order.
    #[oai(path = "/imports/:id", method = "get")]
    async fn get(
        &self,
        auth: SessionAuth,
        /// The import id.
        id: Path<String>,
        /// The `next_cursor` of the previous page.
        cursor: Query<Option<String>>,
        /// Page size, 1–1000 (default 100).
        limit: Query<Option<u32>>,
        req: &Request,
    ) -> Result<Json<ImportReportDto>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::UsersRead)).await?.admin()?;
        let id = import_id(&id.0)?;
        let after = match cursor.0.as_deref() {
            Some(raw) => raw.parse::<u64>().map_err(|_| {
                ApiError::bad_request("invalid_cursor", "the cursor is not one this API gave")
            })?,
            None => 0,
        };
        let limit = limit.0.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(ApiError::invalid_field(&secureai_domain::errors::FieldError::new(
                "limit",
                "must be between 1 and 1000",
            )));
        }
        let record = self
            .0
            .service
            .imports
            .import_record(&admin, id)
            .await?
            .ok_or_else(|| ApiError::not_found("import_not_found", "no import has this id"))?;
        Ok(Json(self.report(&admin, record, after, limit).await?))
    }

    /// The skipped rows of an import as CSV (`line,email,field,reason`),
    /// cells that a spreadsheet would run as formulas defused.
    #[oai(path = "/imports/:id/errors.csv", method = "get")]
    async fn errors_csv(
        &self,
        auth: SessionAuth,
        /// The import id.
        id: Path<String>,
        req: &Request,
    ) -> Result<super::audit::CsvExport, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::UsersRead)).await?.admin()?;
        let id = import_id(&id.0)?;
        let record = self
            .0
            .service
            .imports
            .import_record(&admin, id)
            .await?
            .ok_or_else(|| ApiError::not_found("import_not_found", "no import has this id"))?;
        let mut writer = csv::Writer::from_writer(Vec::new());
        let csv_error = |e: csv::Error| ApiError::internal(&e);
        writer.write_record(SKIPPED_ROWS_HEADER).map_err(csv_error)?;
        let mut after = 0;
        loop {
            let rows =
                self.0.service.imports.import_report_rows(&admin, id, after, 1000, true).await?;
            let Some(last) = rows.last() else { break };
            after = last.line;
            write_skipped_rows(&mut writer, &rows).map_err(csv_error)?;
        }
        let bytes = writer.into_inner().map_err(|e| ApiError::internal(e.error()))?;
        // A header value must be ASCII: anything else becomes `_`.
        let stem: String = record
            .file_name
            .trim_end_matches(".csv")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "-_. ".contains(c) { c } else { '_' })
            .collect();
        Ok(super::audit::CsvExport::Csv(
            Binary(poem::Body::from(bytes)),
            format!("attachment; filename=\"{stem}-skipped-rows.csv\""),
        ))
    }
}
