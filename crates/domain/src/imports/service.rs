//! The import use case: validate → preview → import the valid rows →
//! report. Rows stream through in batches; nothing but a fingerprint of each
//! email seen (for "repeated in this file") is kept per row.

use std::collections::HashMap;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::access::Admin;
use crate::audit::models::{Actor, AuditAction, AuditEvent, Change, RequestContext};
use crate::errors::StoreError;
use crate::imports::models::{
    ImportCounts, ImportMode, ImportRecord, RowOutcome, RowProblem, RowReport, ValidRow,
    already_a_user, check_row, no_seat,
};
use crate::imports::ports::{BatchInsert, ImportCandidate, RowReader, RowSource, SourceError};
use crate::imports::rows::{FileError, RawRow};
use crate::invitations::ports::NewInvitedUser;
use crate::users::models::{SignInMethod, User, UserId, UserState};

/// The ports ImportService uses, and no others.
#[derive(Clone)]
pub struct ImportPorts {
    /// User storage.
    pub users: std::sync::Arc<dyn crate::users::ports::UserRepository>,
    /// Bulk imports.
    pub imports: std::sync::Arc<dyn crate::imports::ports::ImportRepository>,
    /// Instance settings (seat limit, email, SSO).
    pub settings: std::sync::Arc<dyn crate::settings::ports::SettingsRepository>,
    /// Time.
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    /// Randomness.
    pub tokens: std::sync::Arc<dyn crate::secrets::TokenGenerator>,
    /// Second factors: the actions that need a recent check ask whether
    /// the admin has one (step-up).
    pub mfa: std::sync::Arc<dyn crate::mfa::ports::MfaRepository>,
}

/// Bulk import from a file (read by a [`RowSource`] adapter) or rows:
/// validate, preview, import the valid rows within the seat limit, report
/// the skipped ones. Rules (docs/RULES.md): 2 unique email, 4 seats, 15 a
/// bounded file.
pub struct ImportService {
    ports: ImportPorts,
    policy: std::sync::Arc<crate::policy::Policy>,
}

impl ImportService {
    /// The use cases over these ports and rules.
    #[must_use]
    pub fn new(ports: ImportPorts, policy: std::sync::Arc<crate::policy::Policy>) -> Self {
        Self { ports, policy }
    }
}

/// Rows checked and written per batch (one transaction each).
pub const BATCH: usize = 1000;

/// Why an import did not run (row problems are not errors: they are in the
/// report).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file as a whole is unusable.
    #[error(transparent)]
    File(#[from] FileError),
    /// Reading the input failed.
    #[error("cannot read the file: {0}")]
    Read(String),
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

impl From<SourceError> for ImportError {
    fn from(error: SourceError) -> Self {
        match error {
            SourceError::File(error) => Self::File(error),
            SourceError::Unreadable(reason) => Self::Read(reason),
        }
    }
}

/// How to run an import.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The file name, for the record and the audit log.
    pub file_name: String,
    /// Preview or commit.
    pub mode: ImportMode,
    /// Most data rows (`None` = no limit beyond streaming).
    pub max_rows: Option<u64>,
    /// Keep every row's report for paging (the API); otherwise only the
    /// skipped rows are kept (the command line, at millions of rows).
    pub keep_all_rows: bool,
}

/// Who runs an import.
enum Importer<'a> {
    Admin(&'a Admin),
    Operator,
}

impl Importer<'_> {
    fn actor(&self) -> Actor {
        match self {
            Self::Admin(admin) => admin.actor(),
            Self::Operator => Actor::Operator,
        }
    }
    fn invited_by(&self) -> Option<String> {
        match self {
            Self::Admin(admin) => Some(admin.user().name.to_string()),
            Self::Operator => None,
        }
    }
    fn email(&self) -> Option<String> {
        match self {
            Self::Admin(admin) => Some(admin.user().email.to_string()),
            Self::Operator => None,
        }
    }
}

/// The rows of an import, how many there are and the file's warnings.
struct Input<I> {
    rows: I,
    count: usize,
    warnings: Vec<String>,
}

/// Called after each batch with the rows done so far.
pub type Progress<'a> = &'a mut (dyn FnMut(u64) + Send);

/// The first 128 bits of an email key's SHA-256, as two words: a
/// `(u64, u64)` key beside a `u64` line is a 24-byte map entry, where a
/// `u128` (16-byte aligned) would make it 32. At a million rows that is
/// 48 MB instead of 64.
fn fingerprint(email_key: &str) -> (u64, u64) {
    let digest = Sha256::digest(email_key.as_bytes());
    let word = |range: std::ops::Range<usize>| {
        let mut bytes = [0_u8; 8];
        bytes.copy_from_slice(&digest[range]);
        u64::from_be_bytes(bytes)
    };
    (word(0..8), word(8..16))
}

impl ImportService {
    /// Imports a file as an admin (see [`ImportRequest`]). The whole file
    /// is read once to refuse a broken or oversized file before anything is
    /// written, then again to import it.
    ///
    /// # Errors
    /// [`ImportError::File`] for a file refused as a whole; row problems
    /// are reported, not returned.
    pub async fn import_file(
        &self,
        admin: &Admin,
        input: &mut dyn RowSource,
        request: &ImportRequest,
        context: &RequestContext,
        progress: Progress<'_>,
    ) -> Result<ImportRecord, ImportError> {
        self.read_and_import(Importer::Admin(admin), input, request, context, progress).await
    }

    /// Imports a file on the operator's behalf (command line).
    ///
    /// # Errors
    /// As [`ImportService::import_file`].
    pub async fn import_file_as_operator(
        &self,
        input: &mut dyn RowSource,
        request: &ImportRequest,
        context: &RequestContext,
        progress: Progress<'_>,
    ) -> Result<ImportRecord, ImportError> {
        self.read_and_import(Importer::Operator, input, request, context, progress).await
    }

    /// Imports rows given as data (the JSON body), numbered from 1.
    ///
    /// # Errors
    /// [`ImportError::File`] if there are more rows than allowed.
    pub async fn import_rows_as_admin(
        &self,
        admin: &Admin,
        rows: Vec<RawRow>,
        request: &ImportRequest,
        context: &RequestContext,
    ) -> Result<ImportRecord, ImportError> {
        if let Some(limit) = request.max_rows
            && rows.len() as u64 > limit
        {
            return Err(FileError::TooManyRows { limit }.into());
        }
        let count = rows.len();
        let rows = rows.into_iter().map(Ok);
        self.run_import(
            Importer::Admin(admin),
            Input { rows, count, warnings: Vec::new() },
            request,
            context,
            &mut |_| {},
        )
        .await
    }

    /// Whether the import may make admins: the operator may; an admin
    /// with a second factor needs a recent check (step-up), or the admin
    /// rows are skipped.
    async fn may_make_admins(
        &self,
        importer: &Importer<'_>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let Importer::Admin(admin) = importer else { return Ok(true) };
        match admin.require_recent_factor(self.ports.mfa.as_ref(), now).await {
            Ok(()) => Ok(true),
            Err(
                crate::errors::StepUpError::Required | crate::errors::StepUpError::SessionRequired,
            ) => Ok(false),
            Err(crate::errors::StepUpError::Unexpected(e)) => Err(e),
        }
    }

    async fn read_and_import(
        &self,
        importer: Importer<'_>,
        input: &mut dyn RowSource,
        request: &ImportRequest,
        context: &RequestContext,
        progress: Progress<'_>,
    ) -> Result<ImportRecord, ImportError> {
        // First pass: the file as a whole (structure, UTF-8, size), read no
        // further than one row past the limit.
        let mut count = 0_usize;
        for row in input.read()?.rows {
            row?;
            count += 1;
            if let Some(limit) = request.max_rows
                && count as u64 > limit
            {
                return Err(FileError::TooManyRows { limit }.into());
            }
        }
        let RowReader { warnings, rows } = input.read()?;
        let rows = rows.take(count);
        self.run_import(importer, Input { rows, count, warnings }, request, context, progress).await
    }

    async fn run_import(
        &self,
        importer: Importer<'_>,
        input: Input<impl Iterator<Item = Result<RawRow, FileError>> + Send>,
        request: &ImportRequest,
        context: &RequestContext,
        progress: Progress<'_>,
    ) -> Result<ImportRecord, ImportError> {
        let now = self.ports.clock.now();
        let record = ImportRecord {
            id: crate::record_id(),
            at: now,
            actor_email: importer.email(),
            file_name: request.file_name.chars().take(255).collect(),
            mode: request.mode,
            counts: ImportCounts::default(),
            warnings: input.warnings,
            finished: false,
        };
        let admins_allowed = self.may_make_admins(&importer, now).await?;
        self.ports.imports.start_import(&record).await?;
        let limit = self.seat_limit().await?;
        let mut free = match limit {
            Some(limit) => {
                Some(u64::from(limit).saturating_sub(self.ports.users.count_seats().await?))
            }
            None => None,
        };
        // Sized once for every row: growing would hold the old table and
        // the new (twice as large) at once.
        let mut seen: HashMap<(u64, u64), u64> = HashMap::with_capacity(input.count);
        let mut rows = input.rows;
        let mut done = 0_u64;
        let (mut created, mut skipped_total) = (0_u64, 0_u64);
        loop {
            let batch: Vec<RawRow> = rows.by_ref().take(BATCH).collect::<Result<_, _>>()?;
            if batch.is_empty() {
                break;
            }
            done += batch.len() as u64;
            let mut reports = Vec::with_capacity(batch.len());
            let mut candidates: Vec<ValidRow> = Vec::new();
            for raw in &batch {
                match check_row(raw) {
                    Err(problems) => reports.push(skipped(raw.line, &raw.email, problems)),
                    Ok(valid) => match seen.get(&fingerprint(valid.email.key())) {
                        Some(first) => reports.push(skipped(
                            raw.line,
                            &raw.email,
                            vec![RowProblem::new(
                                "email",
                                format!("this email is repeated: it is first on line {first}"),
                            )],
                        )),
                        None => {
                            seen.insert(fingerprint(valid.email.key()), raw.line);
                            candidates.push(valid);
                        }
                    },
                }
            }
            // A commit's batch insert checks existing users itself, under the
            // guard; a preview asks the directory.
            let existing = if request.mode == ImportMode::Preview {
                let keys: Vec<String> =
                    candidates.iter().map(|c| c.email.key().to_owned()).collect();
                self.ports.imports.existing_statuses(&keys).await?
            } else {
                HashMap::new()
            };
            let mut accepted = Vec::with_capacity(candidates.len());
            for candidate in candidates {
                if let Some(status) = existing.get(candidate.email.key()) {
                    reports.push(skipped(
                        candidate.line,
                        &candidate.written,
                        vec![already_a_user(*status)],
                    ));
                } else if candidate.role == crate::users::models::Role::Admin && !admins_allowed {
                    reports.push(skipped(
                        candidate.line,
                        &candidate.written,
                        vec![step_up_first()],
                    ));
                } else if request.mode == ImportMode::Preview && free == Some(0) {
                    let limit = limit.unwrap_or_default();
                    reports.push(skipped(candidate.line, &candidate.written, vec![no_seat(limit)]));
                } else {
                    if let Some(left) = free.as_mut() {
                        *left = left.saturating_sub(1);
                    }
                    accepted.push(candidate);
                }
            }
            match request.mode {
                ImportMode::Preview => {
                    let valid = accepted.len() as u64;
                    reports.extend(accepted.into_iter().map(|c| RowReport {
                        line: c.line,
                        email: c.written,
                        outcome: RowOutcome::Valid,
                    }));
                    let skipped_rows = reports.len() as u64 - valid;
                    reports.sort_by_key(|r| r.line);
                    if !request.keep_all_rows {
                        reports.retain(|r| matches!(r.outcome, RowOutcome::Skipped(_)));
                    }
                    let counts =
                        ImportCounts { rows: batch.len() as u64, valid, skipped: skipped_rows };
                    self.ports.imports.record_rows(record.id, reports, counts).await?;
                }
                ImportMode::Commit => {
                    let sign_in = self.default_sign_in().await?;
                    let candidates: Vec<ImportCandidate> = accepted
                        .into_iter()
                        .map(|c| self.candidate(&importer, c, sign_in, limit, record.id, context))
                        .collect();
                    reports.sort_by_key(|r| r.line);
                    let pre_skipped = reports.len() as u64;
                    let outcomes = self
                        .ports
                        .imports
                        .insert_batch(
                            record.id,
                            candidates,
                            reports,
                            batch.len() as u64,
                            request.keep_all_rows,
                        )
                        .await?;
                    let made = outcomes.iter().filter(|o| **o == BatchInsert::Created).count();
                    created += made as u64;
                    skipped_total += pre_skipped + (outcomes.len() - made) as u64;
                }
            }
            progress(done);
        }
        let audit = (request.mode == ImportMode::Commit).then(|| {
            AuditEvent::new(
                self.ports.clock.now(),
                importer.actor(),
                AuditAction::UsersImported,
                context,
            )
            .change(Change::detail("import", &record.id.to_string()))
            .change(Change::detail("file", &record.file_name))
            .change(Change::detail("rows", &done.to_string()))
            .change(Change::detail("created", &created.to_string()))
            .change(Change::detail("skipped", &skipped_total.to_string()))
        });
        self.ports.imports.finish_import(record.id, audit).await?;
        self.ports
            .imports
            .import(record.id)
            .await?
            .ok_or_else(|| StoreError::msg("the import record vanished").into())
    }

    fn candidate(
        &self,
        importer: &Importer<'_>,
        row: ValidRow,
        sign_in: SignInMethod,
        seat_limit: Option<u32>,
        import: Uuid,
        context: &RequestContext,
    ) -> ImportCandidate {
        let now = self.ports.clock.now();
        let user = User {
            id: UserId::generate(),
            email: row.email,
            name: row.name,
            role: row.role,
            state: UserState::Invited,
            sign_in,
            department: row.department,
            created_at: now,
            last_login_at: None,
        };
        let token = self.ports.tokens.generate();
        let ttl = self.policy.invitation_ttl;
        let (invitation, mail) = crate::invitations::models::Invitation::issue(
            &user,
            &token,
            ttl,
            importer.invited_by(),
            now,
        );
        let audit = AuditEvent::new(now, importer.actor(), AuditAction::UserInvited, context)
            .target(&user)
            .change(Change::new("role", None, Some(user.role.as_str())))
            .change(Change::new("status", None, Some(user.status().as_str())))
            .change(Change::detail("import", &import.to_string()));
        ImportCandidate {
            line: row.line,
            written: row.written,
            user: NewInvitedUser { user, invitation, mail, audit, seat_limit },
        }
    }

    /// An import's record.
    ///
    /// # Errors
    /// [`StoreError`] on failure.
    pub async fn import_record(
        &self,
        _admin: &Admin,
        id: Uuid,
    ) -> Result<Option<ImportRecord>, StoreError> {
        self.ports.imports.import(id).await
    }

    /// The skipped rows of an import on the operator's behalf (the command
    /// line's report), after `after_line`, in file order.
    ///
    /// # Errors
    /// [`StoreError`] on failure.
    pub async fn skipped_rows_as_operator(
        &self,
        id: Uuid,
        after_line: u64,
        limit: u32,
    ) -> Result<Vec<RowReport>, StoreError> {
        self.ports.imports.import_rows(id, after_line, limit, true).await
    }

    /// An import's row reports after `after_line`, in file order.
    ///
    /// # Errors
    /// [`StoreError`] on failure.
    pub async fn import_report_rows(
        &self,
        _admin: &Admin,
        id: Uuid,
        after_line: u64,
        limit: u32,
        skipped_only: bool,
    ) -> Result<Vec<RowReport>, StoreError> {
        self.ports.imports.import_rows(id, after_line, limit, skipped_only).await
    }
}

fn skipped(line: u64, email: &str, problems: Vec<RowProblem>) -> RowReport {
    RowReport { line, email: email.to_owned(), outcome: RowOutcome::Skipped(problems) }
}

impl ImportService {
    async fn seat_limit(&self) -> Result<Option<u32>, StoreError> {
        crate::settings::seat_limit_in_force(&*self.ports.settings, &self.policy).await
    }

    async fn default_sign_in(&self) -> Result<SignInMethod, StoreError> {
        crate::settings::default_sign_in(&*self.ports.settings, &self.policy).await
    }
}

/// An admin row skipped because the importing admin's second-factor check
/// is too old.
fn step_up_first() -> RowProblem {
    RowProblem::new(
        "role",
        "making someone an admin needs a second-factor check from the last 10 minutes: \
         confirm it is you (your authenticator app), then import this row again",
    )
}
