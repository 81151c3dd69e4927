//! The throttle port: sign-in failure counts per key.

use std::collections::HashMap;

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
        let texts: Vec<String> = keys.iter().map(|key| key_of(&key.key)).collect();
        // Each row once per statement (PostgreSQL refuses to change a row
        // twice in one `ON CONFLICT`), in the caller's order.
        let mut distinct: Vec<String> = Vec::with_capacity(texts.len());
        for text in &texts {
            if !distinct.contains(text) {
                distinct.push(text.clone());
            }
        }
        if distinct.is_empty() {
            return Ok(None);
        }
        let (texts, distinct) = (&texts, &distinct);
        retry_transaction(move || async move {
            let txn = conn.begin().await?;
            // Lock each key's row first (creating it if new), always in
            // the caller's order: a row lock on PostgreSQL and MySQL, the
            // write lock on SQLite. Every concurrent reservation of the
            // same key then waits here and reads the count this one
            // leaves. Three statements whatever the number of keys (a
            // sign-in has two: its account and its address).
            throttles::Entity::insert_many(distinct.iter().map(|key| throttles::ActiveModel {
                key: Set(key.clone()),
                failures: Set(0),
                last_failure_at: Set(0),
            }))
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
            let mut rows: HashMap<String, throttles::Model> = throttles::Entity::find()
                .filter(throttles::Column::Key.is_in(distinct.iter().cloned()))
                .all(&txn)
                .await?
                .into_iter()
                .map(|row| (row.key.clone(), row))
                .collect();
            // A key whose row came back spelled otherwise: on MySQL/MariaDB
            // the column's collation folds accents and trailing spaces, so
            // `víctim` locked and will write `victim`'s row. Its count is
            // that row's, read as the database matches it — never none.
            for text in distinct {
                if !rows.contains_key(text)
                    && let Some(row) = throttles::Entity::find_by_id(text.clone()).one(&txn).await?
                {
                    rows.insert(text.clone(), row);
                }
            }
            let mut admitted = Vec::with_capacity(keys.len());
            let mut wait = None;
            for (key, text) in keys.iter().zip(texts) {
                let count = rows.get(text).and_then(|row| {
                    Some(FailureCount {
                        failures: u32::try_from(row.failures).ok()?,
                        last_failure_at: instant(row.last_failure_at).ok()?,
                    })
                });
                match policy.admit(count, key.free, now) {
                    Ok(_)
                        if admitted
                            .iter()
                            .any(|row: &throttles::ActiveModel| row.key.as_ref() == text) => {}
                    Ok(failures) => admitted.push(throttles::ActiveModel {
                        key: Set(text.clone()),
                        failures: Set(i32::try_from(failures).unwrap_or(i32::MAX)),
                        last_failure_at: Set(micros(now)),
                    }),
                    Err(until) => wait = Ord::max(wait, Some(until)),
                }
            }
            if wait.is_some() {
                // Nothing is counted; the rollback also drops new rows.
                txn.rollback().await?;
                return Ok(wait);
            }
            // Every row exists and is locked: this writes each key's count.
            throttles::Entity::insert_many(admitted)
                .on_conflict(
                    OnConflict::column(throttles::Column::Key)
                        .update_columns([
                            throttles::Column::Failures,
                            throttles::Column::LastFailureAt,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await?;
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
