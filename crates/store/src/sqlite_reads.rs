//! The session lookup of every authenticated request, on SQLite, without the
//! async driver's thread hop.
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
//! The statement is a primary-key-sized lookup in WAL mode, where readers
//! never wait for writers, so it does not hold up the async worker it runs
//! on for longer than a few microseconds. Connections are opened on demand
//! and reused; since a lookup never yields, at most one connection per
//! runtime thread is in use at once.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};
use sea_orm::sqlx::sqlite::SqliteConnectOptions;

use crate::entities::{sessions, users};

/// Idle connections kept for reuse (more than the runtime has threads).
const KEEP_IDLE: usize = 16;

const SESSION_WITH_USER: &str = "SELECT s.id, s.user_id, s.token_hash, s.created_at, \
     s.last_seen_at, s.expires_at, u.id, u.email, u.email_key, u.name, u.name_key, u.role, \
     u.status, u.sign_in, u.department, u.password_hash, u.created_at, u.activated_at, \
     u.deactivated_at, u.last_login_at \
     FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?1";

/// Synchronous reads of one SQLite database file.
#[derive(Debug)]
pub(crate) struct SqliteReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteReads {
    /// A reader for the database file `url` names, or `None` for an
    /// in-memory database (each connection would see a database of its own).
    pub(crate) fn for_url(url: &str) -> Option<Self> {
        let options = SqliteConnectOptions::from_str(url).ok()?;
        let path = options.get_filename().to_path_buf();
        if url.contains(":memory:") || url.contains("mode=memory") || !path.is_file() {
            return None;
        }
        Some(Self { path, idle: Mutex::new(Vec::new()) })
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
                .query_row([token_hash], |row| Ok((session_of(row)?, user_of(row, 6)?)))
                .optional()
        })
    }
}

fn session_of(row: &Row<'_>) -> rusqlite::Result<sessions::Model> {
    Ok(sessions::Model {
        id: row.get(0)?,
        user_id: row.get(1)?,
        token_hash: row.get(2)?,
        created_at: row.get(3)?,
        last_seen_at: row.get(4)?,
        expires_at: row.get(5)?,
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
    })
}
