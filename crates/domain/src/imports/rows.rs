//! The rows of an import as the domain sees them, whatever the file's
//! format: each data row as written, with its line, and why a whole file is
//! refused. Reading a file into rows is an adapter's work
//! ([`super::ports::RowSource`]; CSV in `secureai-csv`).

/// Why a whole file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// No header row at all.
    #[error("the file is empty: it needs a header row naming the columns email, name and role")]
    Empty,
    /// Required columns are missing from the header.
    #[error("the header row has no {} column{}: the columns are email, name, role and optionally department (found: {found})", .missing.join(", "), if .missing.len() > 1 { "s" } else { "" })]
    MissingColumns {
        /// The missing columns.
        missing: Vec<&'static str>,
        /// The header as found.
        found: String,
    },
    /// A column appears twice.
    #[error("the header row names the {0} column twice")]
    DuplicateColumn(&'static str),
    /// Bytes that are not UTF-8.
    #[error(
        "line {line} is not valid UTF-8: save the file as UTF-8 (with or without BOM) and try again"
    )]
    NotUtf8 {
        /// Where.
        line: u64,
    },
    /// The CSV structure is broken.
    #[error("line {line}: {reason}")]
    Malformed {
        /// Where.
        line: u64,
        /// What.
        reason: String,
    },
    /// More rows than allowed.
    #[error("the file has more than {limit} rows, the most one import takes")]
    TooManyRows {
        /// The limit.
        limit: u64,
    },
}

/// One data row as written in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// Line in the file where the row starts (the header is line 1).
    pub line: u64,
    /// `email` as written.
    pub email: String,
    /// `name` as written.
    pub name: String,
    /// `role` as written.
    pub role: String,
    /// `department` as written (empty if the column is absent).
    pub department: String,
}
