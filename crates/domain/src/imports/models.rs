//! Import reports: what happened to each row, and to the file as a whole.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::users::models::{Department, DisplayName, EmailAddress, Role, UserId, UserStatus};

use super::rows::RawRow;

/// Preview (write nothing) or commit (create the valid rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    /// Validate and report only.
    Preview,
    /// Create every valid row as an invited user.
    Commit,
}

impl ImportMode {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Preview => "preview",
            Self::Commit => "commit",
        }
    }
}

/// What a row needs fixed: the field and a human reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// `email`, `name`, `role`, `department` or `seats`.
    pub field: &'static str,
    /// Why, in words.
    pub reason: String,
}

impl RowProblem {
    /// A problem with `field`.
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self { field, reason: reason.into() }
    }
}

/// What happened to one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowOutcome {
    /// Valid (preview): it would be created.
    Valid,
    /// Created as an invited user, invitation queued.
    Created(UserId),
    /// Skipped for these reasons.
    Skipped(Vec<RowProblem>),
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowReport {
    /// Line in the file where the row starts (JSON rows count from 1).
    pub line: u64,
    /// The email as written.
    pub email: String,
    /// What happened.
    pub outcome: RowOutcome,
}

/// The counts of an import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// Data rows read.
    pub rows: u64,
    /// Rows that are valid (preview) or were created (commit).
    pub valid: u64,
    /// Rows skipped.
    pub skipped: u64,
}

/// An import as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRecord {
    /// Identifier (for the report's pages and its CSV).
    pub id: Uuid,
    /// When it started.
    pub at: DateTime<Utc>,
    /// Who ran it (email at the time), if a user did.
    pub actor_email: Option<String>,
    /// The file name given.
    pub file_name: String,
    /// Preview or commit.
    pub mode: ImportMode,
    /// Counts so far (final once `finished`).
    pub counts: ImportCounts,
    /// Whole-file warnings (unknown columns).
    pub warnings: Vec<String>,
    /// Whether it ran to the end.
    pub finished: bool,
}

/// A row that passed its own checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidRow {
    /// Line.
    pub line: u64,
    /// Email as written.
    pub written: String,
    /// Email.
    pub email: EmailAddress,
    /// Name.
    pub name: DisplayName,
    /// Role.
    pub role: Role,
    /// Department.
    pub department: Option<Department>,
}

/// Checks one row on its own (not against the file or the directory):
/// every problem of the row, not only the first.
///
/// # Errors
/// The problems, each naming its field.
pub fn check_row(row: &RawRow) -> Result<ValidRow, Vec<RowProblem>> {
    let mut problems = Vec::new();
    let email = EmailAddress::parse(&row.email)
        .map_err(|e| problems.push(RowProblem::new("email", e.to_string())))
        .ok();
    let name = match row.name.trim() {
        "" => {
            problems.push(RowProblem::new("name", "the name is missing"));
            None
        }
        _ => DisplayName::parse(&row.name)
            .map_err(|e| problems.push(RowProblem::new("name", e.to_string())))
            .ok(),
    };
    let role = Role::parse(&row.role)
        .map_err(|_| {
            let shown: String = row.role.chars().take(40).collect();
            problems.push(RowProblem::new(
                "role",
                if shown.trim().is_empty() {
                    "the role is missing: use user or admin".to_owned()
                } else {
                    format!("`{shown}` is not a role: use user or admin")
                },
            ));
        })
        .ok();
    let department = Department::parse(&row.department)
        .map_err(|e| problems.push(RowProblem::new("department", e.to_string())))
        .ok();
    match (email, name, role, department) {
        (Some(email), Some(name), Some(role), Some(department)) if problems.is_empty() => {
            Ok(ValidRow {
                line: row.line,
                written: row.email.clone(),
                email,
                name,
                role,
                department,
            })
        }
        _ => Err(problems),
    }
}

/// "Already a user", saying which status.
pub fn already_a_user(status: UserStatus) -> RowProblem {
    let what = match status {
        UserStatus::Invited => "already invited",
        UserStatus::Active => "already an active user",
        UserStatus::Deactivated => "already a user (deactivated; reactivate them instead)",
    };
    RowProblem::new("email", format!("this email is {what}"))
}

impl RowReport {
    /// The report of a row the store skipped in a batch.
    pub fn for_batch_skip(line: u64, email: &str, outcome: BatchInsertSkip) -> Self {
        let problem = match outcome {
            BatchInsertSkip::Taken(status) => already_a_user(status),
            BatchInsertSkip::NoSeat(limit) => no_seat(limit),
        };
        Self { line, email: email.to_owned(), outcome: RowOutcome::Skipped(vec![problem]) }
    }
}

/// Why the store skipped a row of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchInsertSkip {
    /// The email is taken.
    Taken(UserStatus),
    /// No seat left under this limit.
    NoSeat(u32),
}

/// "Seat limit reached".
pub fn no_seat(limit: u32) -> RowProblem {
    RowProblem::new(
        "seats",
        format!(
            "the seat limit of {limit} is reached: free seats or raise the limit, then import the rest"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(email: &str, name: &str, role: &str, department: &str) -> RawRow {
        RawRow {
            line: 7,
            email: email.into(),
            name: name.into(),
            role: role.into(),
            department: department.into(),
        }
    }

    #[test]
    fn a_valid_row_is_normalised() {
        let valid = check_row(&raw(" Ada@Example.com ", "Ada", "ADMIN", "")).unwrap();
        assert_eq!(
            (valid.email.key(), valid.role, valid.department),
            ("ada@example.com", Role::Admin, None)
        );
        assert_eq!(valid.written, " Ada@Example.com ");
    }

    #[test]
    fn every_problem_of_a_row_is_reported_with_its_field() {
        let long = "x".repeat(101);
        let problems = check_row(&raw("not-an-email", "", "owner", &long)).unwrap_err();
        let fields: Vec<_> = problems.iter().map(|p| p.field).collect();
        assert_eq!(fields, ["email", "name", "role", "department"]);
        assert!(problems[2].reason.contains("`owner` is not a role"));
        let too_long = check_row(&raw("a@example.com", &"n".repeat(201), "user", "")).unwrap_err();
        assert_eq!(too_long[0].field, "name");
        assert!(
            check_row(&raw("a@example.com", "A", "", "")).unwrap_err()[0]
                .reason
                .contains("missing")
        );
    }
}
