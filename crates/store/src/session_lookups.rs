//! Session lookups on PostgreSQL and MySQL/MariaDB, gathered: the lookups
//! of requests that arrive while earlier ones are being read go to the
//! database together, in one statement (`token_hash IN (…)`).
//!
//! Every request carrying a session reads it, with its user, from the
//! database (rule 7: a role change applies to the very next request; rule
//! 11: a termination applies at once on every instance), so under load the
//! session lookup is most of the statements the database runs. Gathering
//! them keeps that promise — a lookup is read by a statement sent after it
//! was asked for, so it sees every change committed before its request
//! arrived — while a busy instance sends one statement for many requests
//! instead of one each. An idle instance sends each lookup at once, alone.
//!
//! At most [`BATCHES_AT_ONCE`] statements are in flight; lookups asked for
//! meanwhile wait for the next one (up to [`MOST_PER_BATCH`] each). The
//! statements run in tasks of their own, so a request that goes away does
//! not take the others' answers with it; a failed statement is sent once
//! more before its lookups fail. A lookup not answered within the pool's
//! wait for a connection is answered "busy" (503); if the gathering task is
//! gone (its runtime ended) or [`MOST_WAITING`] lookups already wait, a
//! lookup runs on its own, as before.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, IdenStatic,
    QueryFilter, QueryTrait, SelectA, SelectB, Statement,
};
use secureai_domain::StoreError;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::entities::{sessions, users};

/// Statements in flight at once.
pub(crate) const BATCHES_AT_ONCE: usize = 2;

/// Lookups in one statement at most.
pub(crate) const MOST_PER_BATCH: usize = 64;

/// The lengths of the `IN (…)` lists sent.
const BATCH_LENGTHS: [usize; 4] = [4, 8, 16, MOST_PER_BATCH];

/// A session and its user as stored, or `None`; an error as text (one
/// statement's error goes to each lookup it carried).
pub(crate) type Found = Result<Option<(sessions::Model, users::Model)>, String>;

struct Asked {
    digest: String,
    answer: oneshot::Sender<Found>,
}

/// Lookups waiting at most; beyond, a lookup runs on its own (bounded by
/// the pool's own wait).
const MOST_WAITING: usize = 4_096;

/// The handle requests ask through; the gathering task ends when the last
/// handle is dropped.
#[derive(Debug)]
pub(crate) struct SessionLookups {
    asks: mpsc::Sender<Asked>,
    /// Longest wait for an answer (the pool's wait for a connection).
    patience: Duration,
    counts: Arc<Counts>,
}

/// Statements sent and lookups answered by them, since the start.
#[derive(Debug, Default)]
struct Counts {
    statements: AtomicU64,
    lookups: AtomicU64,
}

impl SessionLookups {
    /// Starts the gathering task on the current runtime; an answer not
    /// given within `patience` is a "busy" error.
    pub(crate) fn start(db: DatabaseConnection, patience: Duration) -> Self {
        let (asks, asked) = mpsc::channel(MOST_WAITING);
        let counts = Arc::new(Counts::default());
        tokio::spawn(gather(db, asked, counts.clone()));
        Self { asks, patience, counts }
    }

    /// The session whose token digest is `digest`, with its user, read by a
    /// statement sent after this call; `None` if it cannot be gathered now
    /// (the gathering task is gone, or too many lookups wait), for the
    /// caller to run it on its own.
    pub(crate) async fn find(&self, digest: String) -> Option<Result<Found, StoreError>> {
        let (answer, answered) = oneshot::channel();
        self.asks.try_send(Asked { digest, answer }).ok()?;
        tokio::select! {
            answered = answered => Some(Ok(answered.ok()?)),
            // The task ended after taking the lookup in: no answer comes.
            () = self.asks.closed() => None,
            () = tokio::time::sleep(self.patience) => Some(Err(StoreError::busy(
                "the database did not answer session lookups in time",
                BUSY_RETRY_AFTER_SECS,
            ))),
        }
    }

    /// Statements sent and lookups they answered, since the start.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (
            self.counts.statements.load(Ordering::Relaxed),
            self.counts.lookups.load(Ordering::Relaxed),
        )
    }
}

/// Seconds a request whose lookup timed out is told to wait.
const BUSY_RETRY_AFTER_SECS: u64 = 2;

async fn gather(db: DatabaseConnection, mut asked: mpsc::Receiver<Asked>, counts: Arc<Counts>) {
    let slots = Arc::new(Semaphore::new(BATCHES_AT_ONCE));
    while let Some(first) = asked.recv().await {
        // Waiting for a free slot is when the next lookups gather.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        // Requests already running on this thread may be about to ask:
        // they go first, and into this statement (`/me` on PostgreSQL went
        // from 30 to 36 % of `/healthz`, docs/PERFORMANCE.md). When nothing
        // else is ready, this returns at once.
        tokio::task::yield_now().await;
        let mut batch = vec![first];
        while batch.len() < MOST_PER_BATCH {
            match asked.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (db, counts) = (db.clone(), counts.clone());
        tokio::spawn(async move {
            answer(&db, batch, &counts).await;
            drop(slot);
        });
    }
}

/// Reads the sessions of `batch` in one statement and answers each.
async fn answer(db: &DatabaseConnection, mut batch: Vec<Asked>, counts: &Counts) {
    // Requests that went away need no answer.
    batch.retain(|asked| !asked.answer.is_closed());
    if batch.is_empty() {
        return;
    }
    let mut digests: Vec<&str> = batch.iter().map(|asked| asked.digest.as_str()).collect();
    digests.sort_unstable();
    digests.dedup();
    // Once more on failure (on another connection, or a new one): a pooled
    // connection the server ended fails its next statement, and that
    // would fail every request of the batch.
    let found = match read(db, &digests).await {
        Ok(found) => Ok(found),
        Err(_) => read(db, &digests).await,
    };
    counts.statements.fetch_add(1, Ordering::Relaxed);
    counts.lookups.fetch_add(batch.len() as u64, Ordering::Relaxed);
    for asked in batch {
        let found = match &found {
            Ok(rows) => Ok(rows.get(asked.digest.as_str()).cloned()),
            Err(error) => Err(error.clone()),
        };
        // The request may have gone away meanwhile.
        let _ = asked.answer.send(found);
    }
}

pub(crate) type Rows = HashMap<String, (sessions::Model, users::Model)>;

/// The sessions of `digests` (distinct) with their users, in one statement.
pub(crate) async fn read(db: &DatabaseConnection, digests: &[&str]) -> Result<Rows, String> {
    let backend = db.get_database_backend();
    let statement = if let [digest] = digests {
        // One lookup: the one statement every such lookup shares.
        Statement::from_sql_and_values(backend, one_sql(backend), [(*digest).into()])
    } else {
        // Padded (with the last digest again) to one of a few lengths: each
        // length is a statement every connection prepares and keeps, and a
        // length per batch size would crowd the others out of the
        // connections' statement caches.
        let padded = BATCH_LENGTHS.iter().copied().find(|n| *n >= digests.len());
        let padded = padded.unwrap_or(digests.len());
        let last = digests.last().copied().unwrap_or_default();
        let digests = digests.iter().copied().chain(std::iter::repeat(last));
        sessions::Entity::find()
            .filter(sessions::Column::TokenHash.is_in(digests.take(padded)))
            .find_also_related(users::Entity)
            .build(backend)
    };
    let rows = db.query_all_raw(statement).await.map_err(|e| e.to_string())?;
    let mut found = HashMap::with_capacity(rows.len());
    for row in rows {
        let session = sessions::Model::from_query_result(&row, SelectA.as_str())
            .map_err(|e| e.to_string())?;
        if let Some(user) = users::Model::from_query_result_optional(&row, SelectB.as_str())
            .map_err(|e| e.to_string())?
        {
            found.insert(session.token_hash.clone(), (session, user));
        }
    }
    Ok(found)
}

/// `SELECT` a session by its token digest (unique: no `LIMIT`), with its
/// user (sea-orm's `find_also_related`, columns aliased `A_…` and `B_…`),
/// as SQL for `backend` whose one parameter is the digest: built on first
/// use, then reused.
fn one_sql(backend: sea_orm::DbBackend) -> String {
    use std::sync::OnceLock;
    static SQL: [OnceLock<String>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = match backend {
        sea_orm::DbBackend::Sqlite => 0,
        sea_orm::DbBackend::Postgres => 1,
        _ => 2,
    };
    SQL[slot]
        .get_or_init(|| {
            sessions::Entity::find()
                .filter(sessions::Column::TokenHash.eq(""))
                .find_also_related(users::Entity)
                .build(backend)
                .sql
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sea_orm::{ConnectOptions, ConnectionTrait, Database};

    use super::*;
    use crate::test_databases::{Backend, TestDatabase};
    use crate::{SqlStore, StoreOptions};

    const PATIENCE: Duration = Duration::from_secs(1);

    fn digest(i: usize) -> String {
        format!("{i:064x}")
    }

    /// While another connection holds the sessions table, no lookup waits
    /// past its patience: the lookups taken in answer "busy", those past
    /// the queue's bound are handed back at once to run on their own; and
    /// once the table is free, lookups are answered again.
    async fn no_lookup_waits_past_its_bounds(backend: Backend) {
        let Some(database) = TestDatabase::create_or_skip(backend).await else { return };
        let store =
            SqlStore::connect_and_migrate(&database.url, &StoreOptions::default()).await.unwrap();
        let lookups = SessionLookups::start(store.connection().clone(), PATIENCE);
        let blocker =
            Database::connect(ConnectOptions::new(&database.url).max_connections(1).to_owned())
                .await
                .unwrap();
        let (lock, unlock): (&[&str], &str) = match backend {
            Backend::Postgres => {
                (&["BEGIN", "LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE"], "ROLLBACK")
            }
            _ => (&["LOCK TABLES sessions WRITE"], "UNLOCK TABLES"),
        };
        for statement in lock {
            blocker.execute_unprepared(statement).await.unwrap();
        }

        // Asked all at once: at most two statements and the lookup waiting
        // for a free one are out of the queue.
        let asked = MOST_WAITING + 2 * MOST_PER_BATCH + 1 + 200;
        let answers = futures::future::join_all((0..asked).map(|i| lookups.find(digest(i))));
        let answers = tokio::time::timeout(PATIENCE * 20, answers)
            .await
            .expect("a lookup waited past its patience");
        let alone = answers.iter().filter(|answer| answer.is_none()).count();
        let taken = 2 * MOST_PER_BATCH + 1;
        assert!(
            (asked - MOST_WAITING - taken..=asked - MOST_WAITING).contains(&alone),
            "{alone} of {asked} lookups handed back; the queue holds {MOST_WAITING} at most"
        );
        for answer in answers.into_iter().flatten() {
            let error = answer.expect_err("the sessions table is locked");
            assert_eq!(error.retry_after_secs(), Some(BUSY_RETRY_AFTER_SECS), "{error}");
        }

        blocker.execute_unprepared(unlock).await.unwrap();
        let found = tokio::time::timeout(PATIENCE * 20, lookups.find(digest(asked)))
            .await
            .expect("no answer once the table is free");
        assert!(matches!(found, Some(Ok(Ok(None)))), "{found:?}");
        let (statements, answered) = lookups.counts();
        assert!(statements >= 1 && answered >= 1, "{statements} statements, {answered} lookups");
    }

    #[tokio::test]
    async fn postgres_lookups_never_wait_past_their_bounds() {
        no_lookup_waits_past_its_bounds(Backend::Postgres).await;
    }

    #[tokio::test]
    async fn mariadb_lookups_never_wait_past_their_bounds() {
        no_lookup_waits_past_its_bounds(Backend::MySql).await;
    }

    /// The gathering task ended with its runtime: a lookup is handed back
    /// at once, to run on its own, instead of waiting for an answer that
    /// cannot come.
    #[test]
    fn a_lookup_runs_alone_once_the_gathering_task_is_gone() {
        let runtime =
            || tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let first = runtime();
        let lookups = first.block_on(async {
            let db = Database::connect("sqlite::memory:").await.unwrap();
            SessionLookups::start(db, PATIENCE)
        });
        drop(first);
        let found = runtime().block_on(lookups.find(digest(1)));
        assert!(found.is_none(), "{found:?}");
    }
}
