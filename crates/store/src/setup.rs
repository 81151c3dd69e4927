//! The setup port: the one-time first-admin link.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, TransactionTrait};
use secureai_domain::setup::ports::{CompleteSetupStoreError, SetupCompletion, SetupRepository};
use secureai_domain::{StoreError, TokenHash};

use crate::audit::write_audit;
use crate::convert::{ACTIVE, ADMIN};
use crate::convert::{db, micros, user_to_row};
use crate::directory::{count_delta, counted, index_user};
use crate::entities::{setup_tokens, users};
use crate::{SqlStore, is_unique_violation, retry_transaction, take_guard};

const SETUP_ROW: i32 = 1;

#[async_trait]
impl SetupRepository for SqlStore {
    async fn has_active_admin(&self) -> Result<bool, StoreError> {
        let admins =
            counted(&self.db, Some(ADMIN), &[ACTIVE]).await.map_err(db("counting admins"))?;
        Ok(admins > 0)
    }

    async fn replace_setup_token(
        &self,
        hash: TokenHash,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let hash = &hash;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            setup_tokens::Entity::delete_many()
                .exec(&txn)
                .await
                .map_err(db("voiding setup links"))?;
            setup_tokens::Entity::insert(setup_tokens::ActiveModel {
                id: Set(SETUP_ROW),
                token_hash: Set(hash.to_hex()),
                expires_at: Set(micros(expires_at)),
            })
            .exec_without_returning(&txn)
            .await
            .map_err(db("storing the setup link"))?;
            txn.commit().await.map_err(db("committing the setup link"))
        })
        .await
    }

    async fn setup_token_valid(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let found = setup_tokens::Entity::find()
            .filter(setup_tokens::Column::TokenHash.eq(hash.to_hex()))
            .filter(setup_tokens::Column::ExpiresAt.gt(micros(now)))
            .count(&self.db)
            .await
            .map_err(db("checking the setup link"))?;
        Ok(found > 0)
    }

    async fn complete_setup(
        &self,
        completion: SetupCompletion,
    ) -> Result<(), CompleteSetupStoreError> {
        let completion = &completion;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            take_guard(&txn).await.map_err(db("taking the guard"))?;
            let consumed = setup_tokens::Entity::delete_many()
                .filter(setup_tokens::Column::TokenHash.eq(completion.token_hash.to_hex()))
                .filter(setup_tokens::Column::ExpiresAt.gt(micros(completion.at)))
                .exec(&txn)
                .await
                .map_err(db("consuming the setup link"))?;
            if consumed.rows_affected != 1 {
                return Err(CompleteSetupStoreError::InvalidToken);
            }
            let admins =
                counted(&txn, Some(ADMIN), &[ACTIVE]).await.map_err(db("counting admins"))?;
            if admins > 0 {
                return Err(CompleteSetupStoreError::AdminExists);
            }
            let row =
                user_to_row(&completion.admin, Some(completion.password_hash.as_phc().to_owned()));
            match users::Entity::insert(row).exec_without_returning(&txn).await {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    return Err(CompleteSetupStoreError::EmailTaken);
                }
                Err(e) => return Err(db("inserting the first admin")(e).into()),
            }
            index_user(&txn, &completion.admin).await.map_err(db("indexing the first admin"))?;
            count_delta(&txn, ADMIN, ACTIVE, 1).await.map_err(db("counting the first admin"))?;
            write_audit(&txn, &completion.audit).await?;
            txn.commit().await.map_err(db("committing setup"))?;
            Ok(())
        })
        .await
    }
}
