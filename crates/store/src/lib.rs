//! The sea-orm persistence adapter: implements the domain's storage ports on
//! SQLite (the embedded default), PostgreSQL and MySQL/MariaDB.
//!
//! Instance-wide invariants (at least one active admin, the seat limit, a
//! single first admin) are enforced inside the transaction that changes them:
//! such a transaction first updates the one row of the `guard` table, which
//! serialises it against every other guarding transaction on all three
//! databases (a row lock on PostgreSQL and MySQL, the write lock on SQLite),
//! then checks the invariant against committed data. Single-use tokens are
//! consumed with conditional updates (`… WHERE state = 'pending'`) whose
//! affected-row count says who won.

mod api_tokens;
mod audit;
mod checkpoint;
mod convert;
mod directory;
mod entities;
mod groups;
mod imports;
mod invitations;
mod listing;
mod mfa;
mod operations;
mod outbox;
mod passkeys;
mod passwords;
mod point_reads;
mod provisioning;
mod scim_filter;
mod sealing;
mod service_tokens;
mod session_lookups;
mod sessions;
mod settings;
mod setup;
mod sqlite_reads;
mod sso;
#[cfg(any(test, feature = "test-databases"))]
pub mod test_databases;
mod throttle;
mod usage;
mod users;
mod webhook_deliveries;
mod webhooks;

pub use directory::search_text;
pub use operations::{StoredState, sqlite_file};
pub use sealing::{InvalidKey, SecretKey};
pub use settings::KeyCheck;

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement,
};
use secureai_domain::mail::ports::MailTransport;
use secureai_domain::sso::ports::NoIdentityProvider;
use secureai_domain::{Clock, PasswordHasher, Ports, StoreError, TokenGenerator};
use secureai_migrations::{Migrator, MigratorTrait};

use crate::entities::guard;

/// PostgreSQL plans from table statistics that only ANALYZE (or
/// autovacuum, a minute later at best, and never where it is off) brings
/// up to date. A bulk write into small tables would meanwhile be planned
/// for the tables it started with: an import's 1,000-email lookup then
/// scanned every user (2–3 s a batch at 60,000 users, against milliseconds
/// by the email index). After such a write, analyzes each table that holds
/// over twice as many rows as its statistics say (and over 1,000 more):
/// a handful of times over a million rows. Nothing on other databases.
///
/// Best effort: it runs after the batch committed, so a failure here is
/// logged and the batch still reported as written (which it is); the next
/// batch tries again.
pub(crate) async fn analyze_if_grown(db: &impl ConnectionTrait, tables: &[&str]) {
    if db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    if let Err(error) = analyze_grown_tables(db, tables).await {
        tracing::warn!(%error, ?tables, "refreshing table statistics failed; continuing");
    }
}

async fn analyze_grown_tables(db: &impl ConnectionTrait, tables: &[&str]) -> Result<(), DbErr> {
    // One round trip for every table (this runs after each bulk batch).
    let placeholders: Vec<String> = (1..=tables.len()).map(|i| format!("${i}::regclass")).collect();
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT c.relname::text AS name, s.n_live_tup AS live, \
                 GREATEST(c.reltuples, 0)::BIGINT AS planned \
                 FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid \
                 WHERE c.oid IN ({})",
                placeholders.join(", ")
            ),
            tables.iter().map(|t| (*t).into()),
        ))
        .await?;
    for row in rows {
        let name: String = row.try_get("", "name")?;
        let live: i64 = row.try_get("", "live")?;
        let planned: i64 = row.try_get("", "planned")?;
        if live > planned.saturating_mul(2).saturating_add(1000) {
            db.execute_unprepared(&format!("ANALYZE {name}")).await?;
        }
    }
    Ok(())
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Most connections in the pool.
    pub max_connections: u32,
    /// How long to wait for a free connection.
    pub acquire_timeout: Duration,
    /// Search words with fewer search-term rows than this drive a search
    /// from their index range; broader ones walk users in sort order.
    pub selective_search: u64,
    /// The same bound for a single word without other filters, in
    /// creation, name or email order: that page is read from the
    /// search-term index alone, so wider ranges stay cheap.
    pub ordered_search: u64,
    /// Most users a broad search examines for one page (in creation order;
    /// a quarter of it in other orders); a page that reaches it ends early,
    /// with a cursor to continue from. `None`: the database's default,
    /// 5,000 users, or 1,500 on MySQL/MariaDB, where each user walked is a
    /// lookup in the table's id order.
    pub broad_walk: Option<u64>,
    /// On a SQLite file, resolve sessions and list users with rusqlite on
    /// the calling (or a blocking) thread instead of through the pool
    /// (`sqlite_reads.rs`). On by default; off only to compare the two.
    pub synchronous_reads: bool,
    /// The operator's key that seals secrets at rest (`sealing.rs`). Without
    /// one the store makes up a key of its own, which dies with it: for
    /// tests and throw-away stores only — the application always passes
    /// the operator's key.
    pub secret_key: Option<SecretKey>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            selective_search: 2_000,
            ordered_search: 4_000,
            broad_walk: None,
            synchronous_reads: true,
            secret_key: None,
        }
    }
}

/// The database-backed store. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct SqlStore {
    db: DatabaseConnection,
    selective_search: u64,
    ordered_search: u64,
    broad_walk: u64,
    /// On a SQLite file, the synchronous reader of sessions and listings.
    reads: Option<Arc<sqlite_reads::SqliteReads>>,
    /// On a SQLite file, the thread copying the write-ahead log back.
    _checkpoints: Option<Arc<checkpoint::Checkpointer>>,
    /// Elsewhere, session lookups gathered into shared statements.
    lookups: Option<Arc<session_lookups::SessionLookups>>,
    /// Seals and opens secrets at rest.
    sealer: Arc<sealing::Sealer>,
    /// On SQLite, the turn of this process's provisioning writes (see
    /// [`SqlStore::write_turn`]).
    write_gate: Arc<tokio::sync::Mutex<()>>,
}

impl SqlStore {
    /// Every port of the domain's full composition, storage from this
    /// store; no identity provider (SSO settings are refused) unless the
    /// caller puts one in.
    pub fn ports(
        self: &Arc<Self>,
        clock: Arc<dyn Clock>,
        tokens: Arc<dyn TokenGenerator>,
        hasher: Arc<dyn PasswordHasher>,
        transport: Arc<dyn MailTransport>,
    ) -> Ports {
        Ports {
            users: self.clone(),
            invitations: self.clone(),
            sessions: self.clone(),
            setup: self.clone(),
            audit: self.clone(),
            settings: self.clone(),
            resets: self.clone(),
            throttle: self.clone(),
            imports: self.clone(),
            outbox: self.clone(),
            sso: self.clone(),
            service_tokens: self.clone(),
            api_tokens: self.clone(),
            webhooks: self.clone(),
            meter: Arc::new(secureai_domain::telemetry::NoMeter),
            usage: self.clone(),
            provisioning: self.clone(),
            groups: self.clone(),
            mfa: self.clone(),
            passkeys: self.clone(),
            passkey_protocol: Arc::new(secureai_domain::mfa::passkeys::NoPasskeys(
                "passkeys are not set up in this composition".to_owned(),
            )),
            identity: Arc::new(NoIdentityProvider),
            clock,
            tokens,
            hasher,
            transport,
        }
    }

    /// Connects to `url` (`sqlite://path?mode=rwc`, `postgres://…`,
    /// `mysql://…`) without migrating.
    ///
    /// # Errors
    /// [`StoreError`] with advice when the database cannot be reached.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let mut connect = ConnectOptions::new(url.to_owned());
        connect
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .sqlx_logging(false)
            // Pinging every connection on every acquire doubles the round
            // trips of a one-query request; ping only connections that sat
            // idle long enough to have been dropped by a server or proxy.
            .test_before_acquire_if_idle_for(Duration::from_secs(30))
            .map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(30))
                    .foreign_keys(true)
                    .create_if_missing(true)
                    // SQLite's default page cache is 2 MB per connection; with
                    // random keys (UUIDs, token digests) every insert into a
                    // large index then misses it. 32 MB each keeps the hot
                    // index pages of a million-user directory in memory.
                    .pragma("cache_size", "-32768")
                    .pragma("temp_store", "memory")
                    // Checkpoint the WAL every ~40 MB instead of every 4 MB:
                    // a page rewritten by successive transactions (aggregate
                    // rows, hot index pages) is copied back and synced once
                    // instead of at nearly every commit of a bulk writer.
                    .pragma("wal_autocheckpoint", "10000")
            });
        let db = Database::connect(connect).await.map_err(|e| {
            StoreError::new(
                format!(
                    "cannot connect to the database at {}: check SECUREAI_DATABASE_URL, that the \
                     server is running and that the database exists",
                    redact_url(url)
                ),
                e,
            )
        })?;
        // A SQLite file (not an in-memory database) gets the synchronous
        // reader and the checkpoint thread.
        let file = (db.get_database_backend() == DbBackend::Sqlite)
            .then(|| sqlite_reads::file_path(url))
            .flatten();
        let reads = file
            .clone()
            .filter(|_| options.synchronous_reads)
            .map(|path| Arc::new(sqlite_reads::SqliteReads::new(path)));
        let checkpoints = file.and_then(checkpoint::Checkpointer::start).map(Arc::new);
        let lookups = (db.get_database_backend() != DbBackend::Sqlite)
            .then(|| session_lookups::SessionLookups::start(db.clone(), options.acquire_timeout))
            .map(Arc::new);
        let key = options.secret_key.clone().unwrap_or_else(SecretKey::generate);
        let broad_walk = options.broad_walk.unwrap_or(match db.get_database_backend() {
            DbBackend::MySql => 1_500,
            _ => 5_000,
        });
        Ok(Self {
            db,
            selective_search: options.selective_search,
            ordered_search: options.ordered_search,
            broad_walk,
            reads,
            _checkpoints: checkpoints,
            lookups,
            sealer: Arc::new(sealing::Sealer::new(&key)),
            write_gate: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// On SQLite, waits for this process's earlier provisioning writes to
    /// finish: bursts of concurrent writes (an identity provider creating
    /// thousands of users) queue here, woken the moment the one before
    /// commits, instead of in SQLite's busy handler, which sleeps in steps
    /// of up to 100 ms. Other databases lock rows: no turn.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        if self.db.get_database_backend() == DbBackend::Sqlite {
            Some(self.write_gate.lock().await)
        } else {
            None
        }
    }

    /// Connects and applies every pending migration.
    ///
    /// # Errors
    /// [`StoreError`] if connecting or migrating fails.
    pub async fn connect_and_migrate(
        url: &str,
        options: &StoreOptions,
    ) -> Result<Self, StoreError> {
        let store = Self::connect(url, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Applies every pending migration.
    ///
    /// # Errors
    /// [`StoreError`] if a migration fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None)
            .await
            .map_err(|e| StoreError::new("database migration failed", e))
    }

    /// Names of migrations applied and pending, in order.
    ///
    /// # Errors
    /// [`StoreError`] if the migration table cannot be read.
    pub async fn migration_status(&self) -> Result<Vec<(String, bool)>, StoreError> {
        let applied = Migrator::get_applied_migrations(&self.db)
            .await
            .map_err(|e| StoreError::new("cannot read the migration table", e))?;
        let applied: Vec<String> = applied.iter().map(|m| m.name().to_owned()).collect();
        Ok(Migrator::migrations()
            .iter()
            .map(|m| {
                let name = m.name().to_owned();
                let done = applied.contains(&name);
                (name, done)
            })
            .collect())
    }

    /// The underlying connection, for operations and tests that need plain SQL.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Whether sessions are resolved on the calling thread (SQLite files;
    /// see `sqlite_reads`) rather than through the pool.
    pub fn resolves_sessions_synchronously(&self) -> bool {
        self.reads.is_some()
    }

    /// On PostgreSQL and MariaDB, how many statements the gathered session
    /// lookups sent and how many lookups they answered, since the start.
    pub fn gathered_session_lookups(&self) -> Option<(u64, u64)> {
        self.lookups.as_ref().map(|lookups| lookups.counts())
    }

    /// Which database this is.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Checks the database answers (for readiness probes).
    ///
    /// # Errors
    /// [`StoreError`] if it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await.map_err(|e| StoreError::new("the database does not answer", e))
    }

    /// Closes the pool.
    ///
    /// # Errors
    /// [`StoreError`] if closing fails.
    pub async fn close(self) -> Result<(), StoreError> {
        self.db.close().await.map_err(|e| StoreError::new("closing the database failed", e))
    }
}

/// Takes the instance-wide guard inside a transaction (see the crate docs).
pub(crate) async fn take_guard(txn: &impl ConnectionTrait) -> Result<(), DbErr> {
    let stmt = Query::update()
        .table(guard::Entity)
        .value(guard::Column::Version, Expr::col(guard::Column::Version).add(1))
        .and_where(Expr::col(guard::Column::Id).eq(1))
        .to_owned();
    txn.execute(&stmt).await?;
    Ok(())
}

/// Whether the database aborted a statement or transaction for a reason
/// that running it again cures: a deadlock (PostgreSQL `40P01`,
/// MySQL/MariaDB 1213), a serialization failure (PostgreSQL `40001`), a
/// lock wait timeout (MySQL/MariaDB 1205), or SQLite busy or locked.
pub(crate) fn is_retryable(error: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx};
    let database_error = match error {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => match e.as_ref() {
            sqlx::Error::Database(e) => Some(e),
            _ => None,
        },
        _ => None,
    };
    if let Some(code) = database_error.and_then(|e| e.code())
        && matches!(code.as_ref(), "40P01" | "40001" | "1213" | "1205" | "5" | "6" | "517")
    {
        return true;
    }
    // Other wrappings (a failed commit) keep only the text.
    let text = error.to_string().to_ascii_lowercase();
    text.contains("deadlock")
        || text.contains("database is locked")
        || text.contains("lock wait timeout")
}

/// An error that may stand for a database abort a later run cures.
pub(crate) trait Retryable {
    /// Whether running the work again may succeed.
    fn retryable(&self) -> bool;
}

impl Retryable for DbErr {
    fn retryable(&self) -> bool {
        is_retryable(self)
    }
}

impl Retryable for StoreError {
    fn retryable(&self) -> bool {
        std::error::Error::source(self)
            .and_then(|source| source.downcast_ref::<DbErr>())
            .is_some_and(is_retryable)
    }
}

/// The port errors whose `Unexpected` variant wraps a [`StoreError`].
macro_rules! retryable_through_unexpected {
    ($($error:ty),* $(,)?) => {$(
        impl Retryable for $error {
            fn retryable(&self) -> bool {
                matches!(self, Self::Unexpected(e) if e.retryable())
            }
        }
    )*};
}

retryable_through_unexpected!(
    secureai_domain::users::ports::ChangeUserError,
    secureai_domain::invitations::ports::InsertUserError,
    secureai_domain::invitations::ports::AcceptStoreError,
    secureai_domain::invitations::ports::ReissueError,
    secureai_domain::resets::ports::PasswordStoreError,
    secureai_domain::setup::ports::CompleteSetupStoreError,
    secureai_domain::sso::ports::SsoSignInStoreError,
    secureai_domain::provisioning::ports::GroupWriteError,
    secureai_domain::mfa::ports::ConfirmTotpError,
);

/// Runs `work` — a statement, or a whole transaction from `begin` to
/// `commit` — again when the database aborted it for a reason a later run
/// cures ([`is_retryable`]): at most five runs in all, with a short random
/// pause between them so that the transactions that collided do not
/// collide again. The one place the store retries; every write transaction
/// that concurrent requests can make collide runs through it.
pub(crate) async fn retry_transaction<T, E, F, Fut>(mut work: F) -> Result<T, E>
where
    E: Retryable + std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    const RUNS: u32 = 5;
    let mut run = 0;
    loop {
        run += 1;
        match work().await {
            Err(e) if run < RUNS && e.retryable() => {
                tracing::debug!(error = %e, run, "transaction aborted by the database; running it again");
                let most = 5_u64 << run;
                let pause = rand::random_range(1..=most);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            result => return result,
        }
    }
}

/// Whether a database error is a unique-key violation.
pub(crate) fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// Hides the password of a database URL for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use sea_orm::{ConnectionTrait, TransactionTrait};

    use super::*;
    use crate::test_databases::{Backend, TestDatabase};

    /// Two transactions that lock two rows in opposite orders: the database
    /// aborts one to break the deadlock, and `retry_transaction` runs it
    /// again, so both commit.
    async fn a_deadlocked_transaction_runs_again_and_both_commit(backend: Backend) {
        let Some(database) = TestDatabase::create_or_skip(backend).await else { return };
        let store =
            SqlStore::connect_and_migrate(&database.url, &StoreOptions::default()).await.unwrap();
        let db = store.connection().clone();
        for key in ["lock_a", "lock_b"] {
            db.execute_unprepared(
                &format!("INSERT INTO settings (`key`, value) VALUES ('{key}', '0')")
                    .replace('`', if backend == Backend::Postgres { "\"" } else { "`" }),
            )
            .await
            .unwrap();
        }
        let both_locked_one = Arc::new(tokio::sync::Barrier::new(2));
        let runs = Arc::new(AtomicU32::new(0));
        let task = |first: &'static str, second: &'static str| {
            let (db, barrier, runs) = (db.clone(), both_locked_one.clone(), runs.clone());
            tokio::spawn(async move {
                let waited = Arc::new(AtomicU32::new(0));
                retry_transaction(|| {
                    let (db, barrier, runs, waited) =
                        (db.clone(), barrier.clone(), runs.clone(), waited.clone());
                    async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        let txn = db.begin().await?;
                        let update = |key: &str| {
                            let sql = format!(
                                "UPDATE settings SET value = 'x' WHERE {k} = '{key}'",
                                k = if backend == Backend::Postgres { "\"key\"" } else { "`key`" }
                            );
                            sql
                        };
                        txn.execute_unprepared(&update(first)).await?;
                        // Only the first run waits for the other to hold its row.
                        if waited.fetch_add(1, Ordering::SeqCst) == 0 {
                            barrier.wait().await;
                        }
                        txn.execute_unprepared(&update(second)).await?;
                        txn.commit().await
                    }
                })
                .await
            })
        };
        let one = task("lock_a", "lock_b");
        let two = task("lock_b", "lock_a");
        one.await.unwrap().unwrap();
        two.await.unwrap().unwrap();
        assert!(runs.load(Ordering::SeqCst) >= 3, "no deadlock happened, so nothing was retried");
    }

    #[tokio::test]
    async fn postgres_deadlocks_are_retried() {
        a_deadlocked_transaction_runs_again_and_both_commit(Backend::Postgres).await;
    }

    #[tokio::test]
    async fn mariadb_deadlocks_are_retried() {
        a_deadlocked_transaction_runs_again_and_both_commit(Backend::MySql).await;
    }
}
