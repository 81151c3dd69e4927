//! The settings port: key/value rows, read on use so every instance agrees.

use async_trait::async_trait;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, TransactionTrait};
use secureai_domain::settings::ports::{SettingsRepository, StoredSeatLimit};
use secureai_domain::{AuditEvent, StoreError};

use crate::SqlStore;
use crate::audit::write_audit;
use crate::convert::db;
use crate::entities::settings;

const SEAT_LIMIT: &str = "seat_limit";
const UNLIMITED: &str = "unlimited";

#[async_trait]
impl SettingsRepository for SqlStore {
    async fn seat_limit(&self) -> Result<StoredSeatLimit, StoreError> {
        let Some(row) = settings::Entity::find_by_id(SEAT_LIMIT.to_owned())
            .one(&self.db)
            .await
            .map_err(db("reading the seat limit"))?
        else {
            return Ok(None);
        };
        if row.value == UNLIMITED {
            return Ok(Some(None));
        }
        row.value.parse::<u32>().map(|n| Some(Some(n))).map_err(|e| {
            StoreError::new(format!("stored seat limit `{}` is invalid", row.value), e)
        })
    }

    async fn set_seat_limit(
        &self,
        limit: Option<u32>,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let value = limit.map_or_else(|| UNLIMITED.to_owned(), |n| n.to_string());
        let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
        settings::Entity::insert(settings::ActiveModel {
            key: Set(SEAT_LIMIT.to_owned()),
            value: Set(value),
        })
        .on_conflict(
            OnConflict::column(settings::Column::Key)
                .update_column(settings::Column::Value)
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await
        .map_err(db("storing the seat limit"))?;
        write_audit(&txn, &audit).await?;
        txn.commit().await.map_err(db("committing the seat limit"))
    }
}
