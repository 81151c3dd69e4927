//! The short reads every password sign-in waits on (its account, the
//! security policy, the passkey count, whether the user was active today),
//! on a SQLite file with rusqlite on the calling thread (`sqlite_reads.rs`)
//! and elsewhere through the pool.
//!
//! Through the pool, each SQLite statement is handed to the connection's
//! own thread and its answer handed back: two thread wake-ups around a few
//! microseconds of work. Under a burst of sign-ins those wake-ups preempt
//! the password hashing on the same cores (issue 19: ~75 context switches
//! per sign-in), so the reads a sign-in needs skip them. Each is a lookup
//! by key; in WAL mode it never waits for a writer and sees every committed
//! transaction.

use sea_orm::{ConnectionTrait, DbBackend, QueryTrait, Select, Statement, TryGetable};
use secureai_domain::StoreError;

use crate::SqlStore;
use crate::convert::db;
use crate::entities::users;

impl SqlStore {
    /// The users `select` selects.
    pub(crate) async fn read_users(
        &self,
        select: Select<users::Entity>,
        context: &'static str,
    ) -> Result<Vec<users::Model>, StoreError> {
        match &self.reads {
            Some(reads) => reads
                .users(&select.build(DbBackend::Sqlite))
                .map_err(crate::sqlite_reads::read_error(context)),
            None => select.all(&self.db).await.map_err(db(context)),
        }
    }

    /// The first column of the rows `statement` selects (`BIGINT` on
    /// PostgreSQL for an `i64`: `COUNT(*)`, say).
    pub(crate) async fn read_column<T>(
        &self,
        statement: Statement,
        context: &'static str,
    ) -> Result<Vec<T>, StoreError>
    where
        T: rusqlite::types::FromSql + TryGetable,
    {
        match &self.reads {
            Some(reads) => {
                reads.column(&statement).map_err(crate::sqlite_reads::read_error(context))
            }
            None => self
                .db
                .query_all_raw(statement)
                .await
                .map_err(db(context))?
                .iter()
                .map(|row| row.try_get_by_index::<T>(0).map_err(db(context)))
                .collect(),
        }
    }
}
