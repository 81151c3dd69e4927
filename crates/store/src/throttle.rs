//! The throttle port: sign-in failure counts per key.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use secureai_domain::StoreError;
use secureai_domain::sessions::throttle::{FailureCount, ThrottleRepository};

use crate::SqlStore;
use crate::convert::{db, instant, micros};
use crate::entities::throttles;

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

    async fn record_failure(
        &self,
        key: &str,
        at: DateTime<Utc>,
        window: Duration,
    ) -> Result<(), StoreError> {
        let key = key_of(key);
        // A count older than the window starts over.
        throttles::Entity::delete_many()
            .filter(throttles::Column::Key.eq(key.clone()))
            .filter(throttles::Column::LastFailureAt.lte(micros(at - window)))
            .exec(&self.db)
            .await
            .map_err(db("expiring sign-in failures"))?;
        // One statement, so concurrent failures all count.
        throttles::Entity::insert(throttles::ActiveModel {
            key: Set(key),
            failures: Set(1),
            last_failure_at: Set(micros(at)),
        })
        .on_conflict(
            OnConflict::column(throttles::Column::Key)
                .value(
                    throttles::Column::Failures,
                    Expr::col((throttles::Entity, throttles::Column::Failures)).add(1),
                )
                .value(throttles::Column::LastFailureAt, Expr::value(micros(at)))
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await
        .map_err(db("recording a sign-in failure"))?;
        Ok(())
    }

    async fn clear(&self, key: &str) -> Result<(), StoreError> {
        throttles::Entity::delete_many()
            .filter(throttles::Column::Key.eq(key_of(key)))
            .exec(&self.db)
            .await
            .map_err(db("clearing sign-in failures"))?;
        Ok(())
    }
}
