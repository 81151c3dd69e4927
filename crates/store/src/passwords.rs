//! The password port: reset links and password changes.

use async_trait::async_trait;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use secureai_domain::resets::models::PasswordReset;
use secureai_domain::resets::ports::{
    NewReset, PasswordChange, PasswordRepository, PasswordStoreError,
};
use secureai_domain::{StoreError, TokenHash, User};

use crate::audit::write_audit;
use crate::convert::ACTIVE;
use crate::convert::{db, micros, reset_from_row, reset_to_row, user_from_row};
use crate::entities::{outbox, password_resets, sessions, users};
use crate::outbox::mail_to_row;
use crate::{SqlStore, retry_transaction};

/// Touches the user row only if the user is active: checks that and locks
/// the row against a concurrent deactivation until the transaction ends.
async fn lock_active_user(
    txn: &sea_orm::DatabaseTransaction,
    user_id: &str,
) -> Result<bool, StoreError> {
    let touched = users::Entity::update_many()
        .col_expr(users::Column::Status, Expr::value(ACTIVE))
        .filter(users::Column::Id.eq(user_id))
        .filter(users::Column::Status.eq(ACTIVE))
        .exec(txn)
        .await
        .map_err(db("checking the user is active"))?;
    Ok(touched.rows_affected == 1)
}

#[async_trait]
impl PasswordRepository for SqlStore {
    async fn issue_reset(&self, new: NewReset) -> Result<(), PasswordStoreError> {
        let new = &new;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let user_id = new.reset.user_id.to_string();
            if !lock_active_user(&txn, &user_id).await? {
                return Err(PasswordStoreError::NoLongerApplicable);
            }
            password_resets::Entity::update_many()
                .col_expr(password_resets::Column::State, Expr::value("revoked"))
                .col_expr(
                    password_resets::Column::StateAt,
                    Expr::value(micros(new.reset.created_at)),
                )
                .filter(password_resets::Column::UserId.eq(user_id))
                .filter(password_resets::Column::State.eq("pending"))
                .exec(&txn)
                .await
                .map_err(db("voiding earlier reset links"))?;
            password_resets::Entity::insert(reset_to_row(&new.reset))
                .exec_without_returning(&txn)
                .await
                .map_err(db("storing a reset link"))?;
            outbox::Entity::insert(mail_to_row(&self.sealer, &new.mail))
                .exec_without_returning(&txn)
                .await
                .map_err(db("queueing the reset email"))?;
            write_audit(&txn, &new.audit).await?;
            txn.commit().await.map_err(db("committing a reset link"))?;
            Ok(())
        })
        .await
    }

    async fn find_reset(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(PasswordReset, User)>, StoreError> {
        let Some(reset) = password_resets::Entity::find()
            .filter(password_resets::Column::TokenHash.eq(hash.to_hex()))
            .one(&self.db)
            .await
            .map_err(db("reading a reset link"))?
        else {
            return Ok(None);
        };
        let user = users::Entity::find_by_id(reset.user_id.clone())
            .one(&self.db)
            .await
            .map_err(db("reading the user of a reset link"))?
            .ok_or_else(|| StoreError::msg("a reset link points to a missing user"))?;
        Ok(Some((reset_from_row(&reset)?, user_from_row(&user)?)))
    }

    async fn set_password(&self, change: PasswordChange) -> Result<(), PasswordStoreError> {
        let change = &change;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let user_id = change.user_id.to_string();
            if let Some(reset_id) = change.reset_id {
                let used = password_resets::Entity::update_many()
                    .col_expr(password_resets::Column::State, Expr::value("accepted"))
                    .col_expr(password_resets::Column::StateAt, Expr::value(micros(change.at)))
                    .filter(password_resets::Column::Id.eq(reset_id.to_string()))
                    .filter(password_resets::Column::State.eq("pending"))
                    .exec(&txn)
                    .await
                    .map_err(db("consuming a reset link"))?;
                if used.rows_affected != 1 {
                    return Err(PasswordStoreError::NoLongerApplicable);
                }
            }
            let updated = users::Entity::update_many()
                .col_expr(users::Column::PasswordHash, Expr::value(change.password_hash.as_phc()))
                .filter(users::Column::Id.eq(user_id.clone()))
                .filter(users::Column::Status.eq(ACTIVE))
                .exec(&txn)
                .await
                .map_err(db("setting a password"))?;
            if updated.rows_affected != 1 {
                return Err(PasswordStoreError::NoLongerApplicable);
            }
            let mut ending =
                sessions::Entity::delete_many().filter(sessions::Column::UserId.eq(user_id));
            if let Some(keep) = change.keep_session {
                ending = ending.filter(sessions::Column::Id.ne(keep.as_uuid().to_string()));
            }
            ending.exec(&txn).await.map_err(db("ending the user's other sessions"))?;
            write_audit(&txn, &change.audit).await?;
            txn.commit().await.map_err(db("committing a password change"))?;
            Ok(())
        })
        .await
    }
}
