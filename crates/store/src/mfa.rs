//! The second-factor port: authenticator-app secrets sealed with the
//! operator key, recovery codes as digests, and the spending of a time
//! step or a code as one conditional `UPDATE` (so of concurrent requests,
//! on any instance, one wins).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use sea_orm::{Condition, TransactionTrait};
use sea_orm::{QuerySelect, QueryTrait};
use secureai_domain::mail::models::OutgoingMail;
use secureai_domain::mfa::models::{TotpEnrolment, TotpSecret};
use secureai_domain::mfa::ports::{ConfirmTotpError, MfaRepository};
use secureai_domain::{AuditEvent, StoreError, TokenHash, UserId};

use crate::audit::write_audit;
use crate::convert::{db, instant, micros, opt_instant, user_id};
use crate::entities::{mfa_recovery_codes, mfa_sign_ins, mfa_totp, outbox};
use crate::outbox::mail_to_row;
use crate::{SqlStore, is_unique_violation, retry_transaction};

/// The sealing purpose of TOTP secrets.
const TOTP_SECRET: &str = "totp secret";

fn step_value(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

impl SqlStore {
    fn enrolment_from_row(&self, row: &mfa_totp::Model) -> Result<TotpEnrolment, StoreError> {
        let secret = self.sealer.open(TOTP_SECRET, &row.secret)?;
        Ok(TotpEnrolment {
            user_id: user_id(&row.user_id)?,
            secret: TotpSecret::from_base32(&secret)
                .ok_or_else(|| StoreError::msg("a TOTP secret is corrupt"))?,
            created_at: instant(row.created_at)?,
            confirmed_at: opt_instant(row.confirmed_at)?,
            last_step: row.last_step.and_then(|s| u64::try_from(s).ok()),
        })
    }
}

/// Replaces the user's recovery codes with `codes` (digests) inside `txn`.
pub(crate) async fn insert_codes(
    txn: &sea_orm::DatabaseTransaction,
    user: &str,
    codes: &[TokenHash],
) -> Result<(), StoreError> {
    mfa_recovery_codes::Entity::delete_many()
        .filter(mfa_recovery_codes::Column::UserId.eq(user))
        .exec(txn)
        .await
        .map_err(db("voiding recovery codes"))?;
    if codes.is_empty() {
        return Ok(());
    }
    let rows = codes.iter().map(|code| mfa_recovery_codes::ActiveModel {
        user_id: Set(user.to_owned()),
        digest: Set(code.to_hex()),
        used_at: Set(None),
    });
    mfa_recovery_codes::Entity::insert_many(rows)
        .exec_without_returning(txn)
        .await
        .map_err(db("keeping recovery codes"))?;
    Ok(())
}

#[async_trait]
impl MfaRepository for SqlStore {
    async fn totp(&self, user: UserId) -> Result<Option<TotpEnrolment>, StoreError> {
        let row = mfa_totp::Entity::find_by_id(user.to_string())
            .one(&self.db)
            .await
            .map_err(db("reading an authenticator app"))?;
        row.map(|row| self.enrolment_from_row(&row)).transpose()
    }

    async fn begin_totp(&self, enrolment: &TotpEnrolment) -> Result<bool, StoreError> {
        let id = enrolment.user_id.to_string();
        let sealed = self.sealer.seal(TOTP_SECRET, enrolment.secret.expose_base32());
        let created_at = micros(enrolment.created_at);
        // A pending secret is replaced; a confirmed one stays. Two tries:
        // a concurrent first enrolment may insert between them.
        for _ in 0..2 {
            let replaced = mfa_totp::Entity::update_many()
                .col_expr(mfa_totp::Column::Secret, Expr::value(sealed.clone()))
                .col_expr(mfa_totp::Column::CreatedAt, Expr::value(created_at))
                .col_expr(mfa_totp::Column::LastStep, Expr::value(Option::<i64>::None))
                .filter(mfa_totp::Column::UserId.eq(id.clone()))
                .filter(mfa_totp::Column::ConfirmedAt.is_null())
                .exec(&self.db)
                .await
                .map_err(db("replacing a pending authenticator app"))?;
            if replaced.rows_affected == 1 {
                return Ok(true);
            }
            let row = mfa_totp::ActiveModel {
                user_id: Set(id.clone()),
                secret: Set(sealed.clone()),
                created_at: Set(created_at),
                confirmed_at: Set(None),
                last_step: Set(None),
            };
            match mfa_totp::Entity::insert(row).exec_without_returning(&self.db).await {
                Ok(_) => return Ok(true),
                Err(e) if is_unique_violation(&e) => {
                    let confirmed = mfa_totp::Entity::find_by_id(id.clone())
                        .one(&self.db)
                        .await
                        .map_err(db("reading an authenticator app"))?
                        .is_some_and(|row| row.confirmed_at.is_some());
                    if confirmed {
                        return Ok(false);
                    }
                }
                Err(e) => return Err(db("keeping a pending authenticator app")(e)),
            }
        }
        Err(StoreError::msg("the pending authenticator app kept changing"))
    }

    async fn confirm_totp(
        &self,
        user: UserId,
        created_at: DateTime<Utc>,
        step: u64,
        codes: &[TokenHash],
        audit: AuditEvent,
    ) -> Result<(), ConfirmTotpError> {
        let audit = &audit;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let id = user.to_string();
            let confirmed = mfa_totp::Entity::update_many()
                .col_expr(mfa_totp::Column::ConfirmedAt, Expr::value(micros(audit.at)))
                .col_expr(mfa_totp::Column::LastStep, Expr::value(step_value(step)))
                .filter(mfa_totp::Column::UserId.eq(id.clone()))
                .filter(mfa_totp::Column::ConfirmedAt.is_null())
                .filter(mfa_totp::Column::CreatedAt.eq(micros(created_at)))
                .exec(&txn)
                .await
                .map_err(db("confirming an authenticator app"))?;
            if confirmed.rows_affected != 1 {
                return Err(ConfirmTotpError::NotPending);
            }
            insert_codes(&txn, &id, codes).await?;
            write_audit(&txn, audit).await?;
            txn.commit().await.map_err(db("committing an authenticator app"))?;
            Ok(())
        })
        .await
    }

    async fn accept_totp_step(&self, user: UserId, step: u64) -> Result<bool, StoreError> {
        let step = step_value(step);
        let spent = mfa_totp::Entity::update_many()
            .col_expr(mfa_totp::Column::LastStep, Expr::value(step))
            .filter(mfa_totp::Column::UserId.eq(user.to_string()))
            .filter(mfa_totp::Column::ConfirmedAt.is_not_null())
            .filter(
                Condition::any()
                    .add(mfa_totp::Column::LastStep.is_null())
                    .add(mfa_totp::Column::LastStep.lt(step)),
            )
            .exec(&self.db)
            .await
            .map_err(db("spending a code's time step"))?;
        Ok(spent.rows_affected == 1)
    }

    async fn remove_totp(
        &self,
        user: UserId,
        codes_too: bool,
        audit: AuditEvent,
        notice: Option<OutgoingMail>,
    ) -> Result<bool, StoreError> {
        let audit = &audit;
        let notice = &notice;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let id = user.to_string();
            let removed = mfa_totp::Entity::delete_many()
                .filter(mfa_totp::Column::UserId.eq(id.clone()))
                .exec(&txn)
                .await
                .map_err(db("removing an authenticator app"))?;
            if removed.rows_affected == 0 {
                return Ok(false);
            }
            if codes_too {
                insert_codes(&txn, &id, &[]).await?;
            }
            write_audit(&txn, audit).await?;
            if let Some(mail) = notice {
                outbox::Entity::insert(mail_to_row(&self.sealer, mail))
                    .exec(&txn)
                    .await
                    .map_err(db("queueing a second-factor notice"))?;
            }
            txn.commit().await.map_err(db("committing a removal"))?;
            Ok(true)
        })
        .await
    }

    async fn recovery_code_used(
        &self,
        audit: AuditEvent,
        notice: OutgoingMail,
    ) -> Result<(), StoreError> {
        let (audit, notice) = (&audit, &notice);
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            write_audit(&txn, audit).await?;
            outbox::Entity::insert(mail_to_row(&self.sealer, notice))
                .exec(&txn)
                .await
                .map_err(db("queueing a recovery-code notice"))?;
            txn.commit().await.map_err(db("committing a recovery-code notice"))?;
            Ok(())
        })
        .await
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        codes: &[TokenHash],
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let audit = &audit;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            insert_codes(&txn, &user.to_string(), codes).await?;
            write_audit(&txn, audit).await?;
            txn.commit().await.map_err(db("committing recovery codes"))?;
            Ok(())
        })
        .await
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &TokenHash,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let used = mfa_recovery_codes::Entity::update_many()
            .col_expr(mfa_recovery_codes::Column::UsedAt, Expr::value(micros(at)))
            .filter(mfa_recovery_codes::Column::UserId.eq(user.to_string()))
            .filter(mfa_recovery_codes::Column::Digest.eq(code.to_hex()))
            .filter(mfa_recovery_codes::Column::UsedAt.is_null())
            .exec(&self.db)
            .await
            .map_err(db("using a recovery code"))?;
        Ok(used.rows_affected == 1)
    }

    async fn passkey_count(&self, user: UserId) -> Result<u32, StoreError> {
        use crate::entities::mfa_passkeys;
        // Asked by every sign-in: without the pool's thread hop on SQLite.
        let count = mfa_passkeys::Entity::find()
            .select_only()
            .column_as(Expr::expr(Func::count(Expr::col(mfa_passkeys::Column::UserId))), "n")
            .filter(mfa_passkeys::Column::UserId.eq(user.to_string()))
            .build(self.backend());
        let count = self.read_column::<i64>(count, "counting passkeys").await?.pop().unwrap_or(0);
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    async fn recovery_codes_left(&self, user: UserId) -> Result<u32, StoreError> {
        let left = mfa_recovery_codes::Entity::find()
            .filter(mfa_recovery_codes::Column::UserId.eq(user.to_string()))
            .filter(mfa_recovery_codes::Column::UsedAt.is_null())
            .count(&self.db)
            .await
            .map_err(db("counting recovery codes"))?;
        Ok(u32::try_from(left).unwrap_or(u32::MAX))
    }

    async fn begin_sign_in(
        &self,
        token: &TokenHash,
        user: UserId,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let row = mfa_sign_ins::ActiveModel {
            token_hash: Set(token.to_hex()),
            user_id: Set(user.to_string()),
            expires_at: Set(micros(expires_at)),
        };
        mfa_sign_ins::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(db("keeping a sign-in for its second factor"))?;
        Ok(())
    }

    async fn sign_in_waiting(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(UserId, DateTime<Utc>)>, StoreError> {
        let row = mfa_sign_ins::Entity::find_by_id(token.to_hex())
            .one(&self.db)
            .await
            .map_err(db("reading a sign-in waiting for its second factor"))?;
        row.map(|row| Ok((user_id(&row.user_id)?, instant(row.expires_at)?))).transpose()
    }

    async fn take_sign_in(&self, token: &TokenHash) -> Result<bool, StoreError> {
        let taken = mfa_sign_ins::Entity::delete_many()
            .filter(mfa_sign_ins::Column::TokenHash.eq(token.to_hex()))
            .exec(&self.db)
            .await
            .map_err(db("ending a sign-in waiting for its second factor"))?;
        Ok(taken.rows_affected == 1)
    }

    async fn forget_expired_sign_ins(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let gone = mfa_sign_ins::Entity::delete_many()
            .filter(mfa_sign_ins::Column::ExpiresAt.lt(micros(now)))
            .exec(&self.db)
            .await
            .map_err(db("deleting expired sign-ins"))?;
        Ok(gone.rows_affected)
    }
}
