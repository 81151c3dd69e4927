//! Driven port for bulk imports.

use std::collections::HashMap;

use async_trait::async_trait;
use uuid::Uuid;

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::imports::models::{ImportCounts, ImportRecord, RowReport};
use crate::imports::rows::{FileError, RawRow};
use crate::invitations::ports::NewInvitedUser;
use crate::users::models::UserStatus;

/// What the store did with one user of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchInsert {
    /// Created with its invitation, mail and audit event.
    Created,
    /// A user with this email exists (maybe created since the check).
    Taken(UserStatus),
    /// No seat was left.
    NoSeat {
        /// The limit in force.
        limit: u32,
    },
}

impl From<crate::imports::models::BatchInsertSkip> for BatchInsert {
    fn from(skip: crate::imports::models::BatchInsertSkip) -> Self {
        use crate::imports::models::BatchInsertSkip;
        match skip {
            BatchInsertSkip::Taken(status) => Self::Taken(status),
            BatchInsertSkip::NoSeat(limit) => Self::NoSeat { limit },
        }
    }
}

/// A row to create: where it came from, and the user to insert.
#[derive(Debug, Clone)]
pub struct ImportCandidate {
    /// Line in the file.
    pub line: u64,
    /// Email as written.
    pub written: String,
    /// The user with invitation, mail and audit event (and the seat limit).
    pub user: NewInvitedUser,
}

/// Storage of imports.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait ImportRepository: Send + Sync {
    /// The status of each existing user among these email keys.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn existing_statuses(
        &self,
        email_keys: &[String],
    ) -> Result<HashMap<String, UserStatus>, StoreError>;

    /// Records a new import (counts zero, not finished).
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn start_import(&self, record: &ImportRecord) -> Result<(), StoreError>;

    /// Creates a batch of invited users in one transaction, in order: each
    /// with its invitation, outbox mail and audit event, or not at all — an
    /// email taken (by anyone, at any time) or a seat limit reached (checked
    /// under the same guard as single invitations) skips that user. In the
    /// same transaction: the reports of the rows skipped before (`skipped`)
    /// and here, the created rows' reports if `keep_created_rows`, and the
    /// import's counts (`batch_rows` read, created, skipped) — so after any
    /// failure the import record says exactly which rows were created, and
    /// a batch costs one commit.
    ///
    /// # Errors
    /// [`StoreError`] on failure; then nothing of the batch was written.
    async fn insert_batch(
        &self,
        import: Uuid,
        candidates: Vec<ImportCandidate>,
        skipped: Vec<RowReport>,
        batch_rows: u64,
        keep_created_rows: bool,
    ) -> Result<Vec<BatchInsert>, StoreError>;

    /// Stores row reports (skipped rows; valid ones of a preview) and adds
    /// `counts` to the import's counts.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn record_rows(
        &self,
        import: Uuid,
        rows: Vec<RowReport>,
        counts: ImportCounts,
    ) -> Result<(), StoreError>;

    /// Marks the import finished with its audit event (commit mode).
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn finish_import(
        &self,
        import: Uuid,
        audit: Option<AuditEvent>,
    ) -> Result<(), StoreError>;

    /// An import.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn import(&self, id: Uuid) -> Result<Option<ImportRecord>, StoreError>;

    /// Row reports of an import after `after_line`, in file order; only
    /// skipped rows if `skipped_only`.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn import_rows(
        &self,
        id: Uuid,
        after_line: u64,
        limit: u32,
        skipped_only: bool,
    ) -> Result<Vec<RowReport>, StoreError>;
}

/// Why a file could not be read into rows.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file as a whole is refused (structure, encoding, columns).
    #[error(transparent)]
    File(#[from] FileError),
    /// Reading failed (the upload or disk), not the file's content.
    #[error("cannot read the file: {0}")]
    Unreadable(String),
}

/// A file's rows, read from the start: the file's warnings (unknown
/// columns, once each) and its data rows one at a time. An error ends the
/// rows; the import refuses the whole file then.
pub struct RowReader<'a> {
    /// Warnings about the file as a whole.
    pub warnings: Vec<String>,
    /// The data rows, in file order.
    pub rows: Box<dyn Iterator<Item = Result<RawRow, FileError>> + Send + 'a>,
}

/// Where an import's rows come from: a file an adapter reads (CSV in
/// `secureai-csv`). The domain does no I/O of its own.
///
/// The import calls [`RowSource::read`] twice — once to refuse a broken or
/// oversized file before anything is written, once to import it — and stops
/// reading past the row limit. Each call MUST start from the file's first
/// row and give the same rows in the same order.
pub trait RowSource: Send {
    /// The rows from the start.
    ///
    /// # Errors
    /// [`SourceError::File`] when the header is refused (empty file, missing
    /// or repeated columns, not UTF-8); [`SourceError::Unreadable`] when the
    /// input cannot be read.
    fn read(&mut self) -> Result<RowReader<'_>, SourceError>;
}
