//! The session lookup of every authenticated request and user listings, on
//! SQLite, without the async driver's thread hop.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every
//! statement to it over a channel; a point lookup then costs two thread
//! wake-ups (≈ 37 µs measured, `benches/authenticate.rs`) around a few
//! microseconds of SQLite work. This reader runs that one statement with
//! rusqlite on the calling thread instead. It reads the same database file
//! through SQLite's own locking, so it sees every transaction committed by
//! any connection or process the moment it commits: a role change,
//! deactivation or sign-out applies to the very next request, exactly as
//! through the pool.
//!
//! The session statement is a primary-key-sized lookup in WAL mode, where
//! readers never wait for writers, so it does not hold up the async worker
//! it runs on for longer than a few microseconds. Listings can take longer
//! and run on a blocking thread (`listing.rs`). Connections are opened on
//! demand and reused; at most one per thread running reads is in use.
//!
//! Connections here carry one function of their own, [`CONTAINS`]: a
//! SIMD substring test (memchr) that searches walk with, where SQLite's
//! `instr` compares at every byte.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use memchr::memmem::Finder;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params_from_iter};
use sea_orm::sqlx::sqlite::SqliteConnectOptions;
use sea_orm::{Statement, Value};

use secureai_domain::StoreError;
use secureai_domain::users::ports::SortValue;

use crate::entities::{sessions, users};

/// Idle connections kept for reuse (more than the runtime has threads).
const KEEP_IDLE: usize = 16;

/// `contains(text, needle)`: 1 if `needle` occurs in `text`, else 0 (NULL
/// if either is NULL).
pub(crate) const CONTAINS: &str = "secureai_contains";

/// Prepared statements kept per connection (listings vary in shape).
const STATEMENT_CACHE: usize = 64;

const SESSION_WITH_USER: &str = "SELECT s.id, s.user_id, s.token_hash, s.created_at, \
     s.last_seen_at, s.expires_at, s.enrolment_only, s.second_factor_at, u.id, u.email, u.email_key, u.name, u.name_key, u.role, \
     u.status, u.sign_in, u.department, u.password_hash, u.created_at, u.activated_at, \
     u.deactivated_at, u.last_login_at \
     FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1";

/// A read's error as a [`StoreError`]; SQLite busy or locked (another
/// process held the file past the busy timeout) is marked busy, answered
/// 503 with `Retry-After` rather than 500.
pub(crate) fn read_error(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| {
        let busy = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        crate::convert::contended(StoreError::new(context, e), busy)
    }
}

/// The database file a SQLite URL names, or `None` for an in-memory
/// database (each connection would see a database of its own).
pub(crate) fn file_path(url: &str) -> Option<PathBuf> {
    let options = SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename().to_path_buf();
    if url.contains(":memory:") || url.contains("mode=memory") || !path.is_file() {
        return None;
    }
    Some(path)
}

/// Synchronous reads of one SQLite database file.
#[derive(Debug)]
pub(crate) struct SqliteReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteReads {
    /// A reader of the database file at `path` (see [`file_path`]).
    pub(crate) fn new(path: PathBuf) -> Self {
        Self { path, idle: Mutex::new(Vec::new()) }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(Duration::from_secs(30))?;
        // Reads only, whatever a future caller passes.
        connection.pragma_update(None, "query_only", true)?;
        connection.pragma_update(None, "cache_size", -8192)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        connection.create_scalar_function(
            CONTAINS,
            2,
            FunctionFlags::SQLITE_UTF8
                | FunctionFlags::SQLITE_DETERMINISTIC
                | FunctionFlags::SQLITE_INNOCUOUS,
            |context| {
                let (text, needle) = (context.get_raw(0), context.get_raw(1));
                let (Ok(text), Ok(needle)) = (text.as_bytes(), needle.as_bytes()) else {
                    return Ok(None);
                };
                // The needle is the same for every row of a statement:
                // build its searcher once (SQLite's auxiliary data).
                let finder = match context.get_aux::<Finder<'static>>(1)? {
                    Some(finder) if finder.needle() == needle => finder,
                    _ => context.set_aux(1, Finder::new(needle).into_owned())?,
                };
                Ok(Some(i64::from(finder.find(text).is_some())))
            },
        )?;
        Ok(connection)
    }

    /// Runs `read` on an idle connection (or a new one).
    fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.open()?,
        };
        let result = read(&connection);
        if result.is_ok() {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < KEEP_IDLE {
                idle.push(connection);
            }
        }
        result
    }

    /// The session whose token has this digest, with its user.
    pub(crate) fn session_with_user(
        &self,
        token_hash: &str,
    ) -> rusqlite::Result<Option<(sessions::Model, users::Model)>> {
        self.read(|connection| {
            connection
                .prepare_cached(SESSION_WITH_USER)?
                .query_row([token_hash], |row| Ok((session_of(row)?, user_of(row, 8)?)))
                .optional()
        })
    }

    /// The users a statement selects (every column of `users`, in order).
    pub(crate) fn users(&self, statement: &Statement) -> rusqlite::Result<Vec<users::Model>> {
        self.rows(statement, |row| user_of(row, 0))
    }

    /// The sort value (text or integer) and id of each row a statement
    /// selects, in its first two columns.
    pub(crate) fn sort_keys(
        &self,
        statement: &Statement,
        text: bool,
    ) -> rusqlite::Result<Vec<(SortValue, String)>> {
        self.rows(statement, |row| {
            let value =
                if text { SortValue::Text(row.get(0)?) } else { SortValue::Micros(row.get(0)?) };
            Ok((value, row.get(1)?))
        })
    }

    /// The first column of each row a statement selects.
    pub(crate) fn column<T: rusqlite::types::FromSql>(
        &self,
        statement: &Statement,
    ) -> rusqlite::Result<Vec<T>> {
        self.rows(statement, |row| row.get(0))
    }

    fn rows<T>(
        &self,
        statement: &Statement,
        mut decode: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        let values = statement
            .values
            .iter()
            .flat_map(|values| values.0.iter())
            .map(sql_value)
            .collect::<rusqlite::Result<Vec<_>>>()?;
        self.read(|connection| {
            let mut prepared = connection.prepare_cached(&statement.sql)?;
            let mut rows = prepared.query(params_from_iter(values))?;
            let mut decoded = Vec::new();
            while let Some(row) = rows.next()? {
                decoded.push(decode(row)?);
            }
            Ok(decoded)
        })
    }
}

/// A value bound by a statement built with sea-query, for rusqlite.
fn sql_value(value: &Value) -> rusqlite::Result<SqlValue> {
    let integer = |n: Option<i64>| n.map_or(SqlValue::Null, SqlValue::Integer);
    Ok(match value {
        Value::Bool(b) => integer(b.map(i64::from)),
        Value::TinyInt(n) => integer(n.map(i64::from)),
        Value::SmallInt(n) => integer(n.map(i64::from)),
        Value::Int(n) => integer(n.map(i64::from)),
        Value::BigInt(n) => integer(*n),
        Value::TinyUnsigned(n) => integer(n.map(i64::from)),
        Value::SmallUnsigned(n) => integer(n.map(i64::from)),
        Value::Unsigned(n) => integer(n.map(i64::from)),
        Value::BigUnsigned(n) => match n {
            Some(n) => SqlValue::Integer(
                i64::try_from(*n).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?,
            ),
            None => SqlValue::Null,
        },
        Value::Float(x) => x.map_or(SqlValue::Null, |x| SqlValue::Real(f64::from(x))),
        Value::Double(x) => x.map_or(SqlValue::Null, SqlValue::Real),
        Value::String(text) => text.clone().map_or(SqlValue::Null, SqlValue::Text),
        Value::Char(c) => c.map_or(SqlValue::Null, |c| SqlValue::Text(c.to_string())),
        Value::Bytes(bytes) => bytes.clone().map_or(SqlValue::Null, SqlValue::Blob),
        other => {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                format!("no SQLite binding for {other:?}").into(),
            ));
        }
    })
}

fn session_of(row: &Row<'_>) -> rusqlite::Result<sessions::Model> {
    Ok(sessions::Model {
        id: row.get(0)?,
        user_id: row.get(1)?,
        token_hash: row.get(2)?,
        created_at: row.get(3)?,
        last_seen_at: row.get(4)?,
        expires_at: row.get(5)?,
        enrolment_only: row.get(6)?,
        second_factor_at: row.get(7)?,
    })
}

/// The users columns starting at column `at`.
fn user_of(row: &Row<'_>, at: usize) -> rusqlite::Result<users::Model> {
    Ok(users::Model {
        id: row.get(at)?,
        email: row.get(at + 1)?,
        email_key: row.get(at + 2)?,
        name: row.get(at + 3)?,
        name_key: row.get(at + 4)?,
        role: row.get(at + 5)?,
        status: row.get(at + 6)?,
        sign_in: row.get(at + 7)?,
        department: row.get(at + 8)?,
        password_hash: row.get(at + 9)?,
        created_at: row.get(at + 10)?,
        activated_at: row.get(at + 11)?,
        deactivated_at: row.get(at + 12)?,
        last_login_at: row.get(at + 13)?,
        // Only searches read it; a session lookup has no use for it.
        search_text: String::new(),
        // Only SCIM reads it, through sea-orm.
        modified_at: 0,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rusqlite::Connection;
    use sea_orm::{ConnectOptions, ConnectionTrait, Database};

    use super::read_error;

    /// A database file and a connection that will hold it exclusively
    /// (rollback journal, so that readers wait too).
    fn database() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("busy.db");
        let holder = Connection::open(&path).expect("opened");
        holder.execute_batch("CREATE TABLE t (x INTEGER);").expect("created");
        (dir, path, holder)
    }

    #[test]
    fn a_read_refused_as_busy_is_answered_busy_and_other_errors_are_not() {
        let (_dir, path, holder) = database();
        holder.execute_batch("BEGIN EXCLUSIVE;").expect("locked");
        let reader = Connection::open(&path).expect("opened");
        reader.busy_timeout(Duration::ZERO).expect("no wait");
        let busy = reader.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0));
        let error = read_error("reading")(busy.expect_err("the file is locked"));
        assert_eq!(error.retry_after_secs(), Some(crate::convert::BUSY_RETRY_AFTER_SECS));

        let other = Connection::open_in_memory().expect("opened").execute("SELEC", []);
        assert_eq!(read_error("reading")(other.expect_err("bad SQL")).retry_after_secs(), None);
    }

    #[tokio::test]
    async fn a_pool_statement_refused_as_busy_is_answered_busy_and_other_errors_are_not() {
        let (_dir, path, holder) = database();
        let mut options = ConnectOptions::new(format!("sqlite://{}", path.display()));
        options.max_connections(1).map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Delete)
                .busy_timeout(Duration::ZERO)
        });
        let db = Database::connect(options).await.expect("connected");
        db.execute_unprepared("SELECT count(*) FROM t").await.expect("not locked yet");
        holder.execute_batch("BEGIN EXCLUSIVE;").expect("locked");
        let busy = db.execute_unprepared("SELECT count(*) FROM t").await;
        let error = crate::convert::db("reading")(busy.expect_err("the file is locked"));
        assert_eq!(error.retry_after_secs(), Some(crate::convert::BUSY_RETRY_AFTER_SECS));

        let other = db.execute_unprepared("SELEC").await;
        assert_eq!(
            crate::convert::db("reading")(other.expect_err("bad SQL")).retry_after_secs(),
            None
        );
    }
}
