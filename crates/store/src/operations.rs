//! What operators need from the store beyond the ports: whether the schema
//! is this version's (readiness), copies of a SQLite database (backups),
//! counts for their reports, and the state their metrics show.

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use secureai_domain::StoreError;
use secureai_migrations::{Migrator, MigratorTrait};

use crate::SqlStore;

impl SqlStore {
    /// Whether the database has exactly the migrations this version
    /// knows: `Err` with the reason when some are pending (the database is
    /// older: `secureai migrate`) or unknown (a newer version migrated it).
    /// Reads the migration table only (creates nothing).
    ///
    /// # Errors
    /// The reason, in words.
    pub async fn migrations_ready(&self) -> Result<(), String> {
        let rows = self
            .db
            .query_all_raw(Statement::from_string(
                self.backend(),
                "SELECT version FROM seaql_migrations".to_owned(),
            ))
            .await
            .map_err(|_| {
                "no migration table: not a SecureAI database, or never migrated".to_owned()
            })?;
        let mut applied = std::collections::BTreeSet::new();
        for row in &rows {
            let version: String = row
                .try_get("", "version")
                .map_err(|e| format!("unreadable migration table: {e}"))?;
            applied.insert(version);
        }
        let known: Vec<String> =
            Migrator::migrations().iter().map(|m| m.name().to_owned()).collect();
        let unknown = applied.iter().filter(|v| !known.contains(v)).count();
        if unknown > 0 {
            return Err(format!(
                "the database has {unknown} migration(s) this version does not know: a newer version migrated it"
            ));
        }
        let pending = known.iter().filter(|name| !applied.contains(*name)).count();
        if pending > 0 {
            return Err(format!("{pending} migration(s) pending: run `secureai migrate`"));
        }
        Ok(())
    }

    /// SQLite's own check of a database file (`PRAGMA integrity_check`).
    ///
    /// # Errors
    /// What SQLite found, or why it could not look.
    pub async fn integrity_check(&self) -> Result<(), String> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.backend(),
                "PRAGMA integrity_check".to_owned(),
            ))
            .await
            .map_err(|e| format!("cannot check the database: {e}"))?
            .ok_or_else(|| "the check answered nothing".to_owned())?;
        let verdict: String = row.try_get_by_index(0).map_err(|e| format!("the check: {e}"))?;
        if verdict == "ok" { Ok(()) } else { Err(format!("the database is damaged: {verdict}")) }
    }

    /// Copies a SQLite database, consistent as of one moment, into `file`
    /// while the service keeps running (`VACUUM INTO`: a read transaction;
    /// writers go on). `file` must not exist.
    ///
    /// # Errors
    /// [`StoreError`] on another database, or if the copy fails.
    pub async fn backup_sqlite_into(&self, file: &std::path::Path) -> Result<(), StoreError> {
        if self.backend() != DbBackend::Sqlite {
            return Err(StoreError::msg("only a SQLite database is copied this way"));
        }
        let path = file.to_str().ok_or_else(|| StoreError::msg("the backup path is not UTF-8"))?;
        let quoted = path.replace('\'', "''");
        self.db
            .execute_unprepared(&format!("VACUUM INTO '{quoted}'"))
            .await
            .map_err(|e| StoreError::new("the backup failed", e))?;
        Ok(())
    }

    /// How many users the database holds (any status): for the operator's
    /// backup and restore reports.
    ///
    /// # Errors
    /// [`StoreError`] when there is no users table.
    pub async fn count_all_users(&self) -> Result<u64, StoreError> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.backend(),
                "SELECT COUNT(*) AS n FROM users".to_owned(),
            ))
            .await
            .map_err(|e| StoreError::new("not a SecureAI database: no users table", e))?
            .ok_or_else(|| StoreError::msg("counting users answered nothing"))?;
        let n: i64 = row.try_get("", "n").map_err(|e| StoreError::new("counting users", e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// What operators watch of the stored state, read at each metrics scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredState {
    /// Users by status (`invited`, `active`, `deactivated`), from the
    /// counts the store keeps beside the users table.
    pub users_by_status: Vec<(String, u64)>,
    /// Mail messages queued, and when the oldest was queued.
    pub mail_waiting: (u64, Option<chrono::DateTime<chrono::Utc>>),
    /// Webhook deliveries pending, and when the oldest was made.
    pub webhooks_waiting: (u64, Option<chrono::DateTime<chrono::Utc>>),
    /// Pool connections in use.
    pub pool_in_use: u64,
    /// Pool connections idle.
    pub pool_idle: u64,
}

impl SqlStore {
    /// Users by status, backlogs, the pool (cheap: kept counts and indexed
    /// reads of what waits).
    ///
    /// # Errors
    /// [`StoreError`] when the database does not answer.
    pub async fn stored_state(&self) -> Result<StoredState, StoreError> {
        let rows = self
            .db
            .query_all_raw(Statement::from_string(
                self.backend(),
                "SELECT status, n FROM user_counts".to_owned(),
            ))
            .await
            .map_err(|e| StoreError::new("counting users by status", e))?;
        // One row per role and status: summed here, the same on every
        // database.
        let mut users_by_status: Vec<(String, u64)> = Vec::new();
        for row in rows {
            let status: String =
                row.try_get("", "status").map_err(|e| StoreError::new("counting users", e))?;
            let n = count_of(&row)?;
            match users_by_status.iter_mut().find(|(s, _)| *s == status) {
                Some((_, total)) => *total += n,
                None => users_by_status.push((status, n)),
            }
        }
        let (pool_in_use, pool_idle) = self.pool_state();
        Ok(StoredState {
            users_by_status,
            mail_waiting: self
                .waiting(
                    "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox \
                          WHERE status = 'queued'",
                )
                .await?,
            webhooks_waiting: self
                .waiting(
                    "SELECT COUNT(*) AS n, MIN(created_at) AS oldest \
                          FROM webhook_deliveries WHERE status = 'pending'",
                )
                .await?,
            pool_in_use,
            pool_idle,
        })
    }

    async fn waiting(
        &self,
        sql: &str,
    ) -> Result<(u64, Option<chrono::DateTime<chrono::Utc>>), StoreError> {
        let row = self
            .db
            .query_one_raw(Statement::from_string(self.backend(), sql.to_owned()))
            .await
            .map_err(|e| StoreError::new("reading what waits", e))?
            .ok_or_else(|| StoreError::msg("counting what waits answered nothing"))?;
        let oldest: Option<i64> =
            row.try_get("", "oldest").map_err(|e| StoreError::new("reading what waits", e))?;
        Ok((count_of(&row)?, oldest.map(crate::convert::instant).transpose()?))
    }

    /// Connections of the pool in use and idle.
    fn pool_state(&self) -> (u64, u64) {
        let (size, idle) = match self.backend() {
            DbBackend::Sqlite => {
                let pool = self.db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle())
            }
            DbBackend::Postgres => {
                let pool = self.db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle())
            }
            _ => {
                let pool = self.db.get_mysql_connection_pool();
                (pool.size(), pool.num_idle())
            }
        };
        let idle = u64::try_from(idle).unwrap_or(0);
        (u64::from(size).saturating_sub(idle), idle)
    }
}

/// A count read as `n`.
fn count_of(row: &sea_orm::QueryResult) -> Result<u64, StoreError> {
    let n: i64 = row.try_get("", "n").map_err(|e| StoreError::new("reading a count", e))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The file of a `sqlite://` database URL (`None` for another database or
/// an in-memory one).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr as _;
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    Some(options.get_filename().to_path_buf())
}
