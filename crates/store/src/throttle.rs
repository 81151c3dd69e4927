//! The throttle port: sign-in failure counts per key.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use secureai_domain::sessions::throttle::{
    AttemptKey, FailureCount, ThrottlePolicy, ThrottleRepository,
};
use secureai_domain::{AuditEvent, StoreError};

use crate::audit::write_audit;
use crate::convert::{db, instant, micros};
use crate::entities::throttles;
use crate::{SqlStore, retry_transaction};

fn key_of(key: &str) -> String {
    key.chars().take(300).collect()
}

#[async_trait]
impl ThrottleRepository for SqlStore {
    async fn failures(&self, key: &str) -> Result<Option<FailureCount>, StoreError> {
        let Some(row) = throttles::Entity::find_by_id(key_of(key))
            .one(&self.db)
            .await
            .map_err(db("reading sign-in failures"))?
        else {
            return Ok(None);
        };
        Ok(Some(FailureCount {
            failures: u32::try_from(row.failures).unwrap_or(0),
            last_failure_at: instant(row.last_failure_at)?,
        }))
    }

    async fn reserve(
        &self,
        keys: &[AttemptKey],
        now: DateTime<Utc>,
        policy: &ThrottlePolicy,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let conn = &self.db;
        retry_transaction(move || async move {
            let txn = conn.begin().await?;
            // Lock each key's row first (creating it if new), always in
            // the caller's order: a row lock on PostgreSQL and MySQL, the
            // write lock on SQLite. Every concurrent reservation of the
            // same key then waits here and reads the count this one
            // leaves.
            let mut admitted = Vec::with_capacity(keys.len());
            let mut wait = None;
            for key in keys {
                let key_text = key_of(&key.key);
                throttles::Entity::insert(throttles::ActiveModel {
                    key: Set(key_text.clone()),
                    failures: Set(0),
                    last_failure_at: Set(0),
                })
                .on_conflict(
                    OnConflict::column(throttles::Column::Key)
                        .value(
                            throttles::Column::Failures,
                            Expr::col((throttles::Entity, throttles::Column::Failures)),
                        )
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
                let row = throttles::Entity::find_by_id(key_text.clone()).one(&txn).await?;
                let count = row.and_then(|row| {
                    Some(FailureCount {
                        failures: u32::try_from(row.failures).ok()?,
                        last_failure_at: instant(row.last_failure_at).ok()?,
                    })
                });
                match policy.admit(count, key.free, now) {
                    Ok(failures) => admitted.push((key_text, failures)),
                    Err(until) => wait = Ord::max(wait, Some(until)),
                }
            }
            if wait.is_some() {
                // Nothing is counted; the rollback also drops new rows.
                txn.rollback().await?;
                return Ok(wait);
            }
            for (key, failures) in admitted {
                throttles::Entity::update_many()
                    .col_expr(
                        throttles::Column::Failures,
                        Expr::value(i32::try_from(failures).unwrap_or(i32::MAX)),
                    )
                    .col_expr(throttles::Column::LastFailureAt, Expr::value(micros(now)))
                    .filter(throttles::Column::Key.eq(key))
                    .exec(&txn)
                    .await?;
            }
            txn.commit().await?;
            Ok(None)
        })
        .await
        .map_err(db("reserving a sign-in attempt"))
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        throttles::Entity::update_many()
            .col_expr(throttles::Column::Failures, Expr::col(throttles::Column::Failures).sub(1))
            .filter(throttles::Column::Key.eq(key_of(key)))
            .filter(throttles::Column::Failures.gt(0))
            .exec(&self.db)
            .await
            .map_err(db("taking back a sign-in attempt"))?;
        Ok(())
    }

    async fn forget_stale(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let deleted = retry_transaction(|| {
            throttles::Entity::delete_many()
                .filter(
                    throttles::Column::LastFailureAt
                        .lte(micros(before))
                        .or(throttles::Column::Failures.lte(0)),
                )
                .exec(&self.db)
        })
        .await
        .map_err(db("forgetting stale sign-in counts"))?;
        Ok(deleted.rows_affected)
    }

    async fn clear(&self, key: &str) -> Result<(), StoreError> {
        throttles::Entity::delete_many()
            .filter(throttles::Column::Key.eq(key_of(key)))
            .exec(&self.db)
            .await
            .map_err(db("clearing sign-in failures"))?;
        Ok(())
    }

    async fn allow_again(&self, key: &str, audit: AuditEvent) -> Result<(), StoreError> {
        let (key, audit) = (&key_of(key), &audit);
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            throttles::Entity::delete_many()
                .filter(throttles::Column::Key.eq(key.clone()))
                .exec(&txn)
                .await
                .map_err(db("clearing sign-in failures"))?;
            write_audit(&txn, audit).await?;
            txn.commit().await.map_err(db("committing a lifted pause"))
        })
        .await
    }
}
