//! The passkey port: registered WebAuthn credentials (no secret: a public
//! key and a counter), unique by the digest of their id, and the
//! ceremonies waiting for the browser's answer, each taken once by one
//! conditional `DELETE`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};
use secureai_domain::mfa::passkeys::{
    CeremonyPurpose, Passkey, PasskeyRepository, PendingCeremony,
};
use secureai_domain::{AuditEvent, StoreError, TokenHash, UserId};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::audit::write_audit;
use crate::convert::{db, instant, micros, opt_instant, user_id};
use crate::entities::{mfa_ceremonies, mfa_passkeys, mfa_recovery_codes};
use crate::mfa::insert_codes;
use crate::{SqlStore, is_unique_violation, retry_transaction};

fn digest(credential_id: &str) -> String {
    Sha256::digest(credential_id.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn passkey_from_row(row: mfa_passkeys::Model) -> Result<Passkey, StoreError> {
    Ok(Passkey {
        id: Uuid::parse_str(&row.id).map_err(|e| StoreError::new("reading a passkey's id", e))?,
        user_id: user_id(&row.user_id)?,
        name: row.name,
        credential_id: row.credential_id,
        credential: row.credential,
        created_at: instant(row.created_at)?,
        last_used_at: opt_instant(row.last_used_at)?,
    })
}

fn purpose(text: &str) -> Result<CeremonyPurpose, StoreError> {
    match text {
        "register" => Ok(CeremonyPurpose::Register),
        "sign_in" => Ok(CeremonyPurpose::SignIn),
        "step_up" => Ok(CeremonyPurpose::StepUp),
        other => Err(StoreError::msg(format!("unknown ceremony purpose `{other}`"))),
    }
}

#[async_trait]
impl PasskeyRepository for SqlStore {
    async fn passkeys(&self, user: UserId) -> Result<Vec<Passkey>, StoreError> {
        mfa_passkeys::Entity::find()
            .filter(mfa_passkeys::Column::UserId.eq(user.to_string()))
            .order_by_asc(mfa_passkeys::Column::CreatedAt)
            .order_by_asc(mfa_passkeys::Column::Id)
            .all(&self.db)
            .await
            .map_err(db("reading passkeys"))?
            .into_iter()
            .map(passkey_from_row)
            .collect()
    }

    async fn add_passkey(
        &self,
        passkey: &Passkey,
        codes: Option<Vec<TokenHash>>,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let (audit, codes) = (&audit, &codes);
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let row = mfa_passkeys::ActiveModel {
                id: Set(passkey.id.to_string()),
                user_id: Set(passkey.user_id.to_string()),
                name: Set(passkey.name.clone()),
                credential_digest: Set(digest(&passkey.credential_id)),
                credential_id: Set(passkey.credential_id.clone()),
                credential: Set(passkey.credential.clone()),
                created_at: Set(micros(passkey.created_at)),
                last_used_at: Set(passkey.last_used_at.map(micros)),
            };
            match mfa_passkeys::Entity::insert(row).exec_without_returning(&txn).await {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Ok(false),
                Err(e) => return Err(db("keeping a passkey")(e)),
            }
            if let Some(codes) = codes {
                insert_codes(&txn, &passkey.user_id.to_string(), codes).await?;
            }
            write_audit(&txn, audit).await?;
            txn.commit().await.map_err(db("committing a passkey"))?;
            Ok(true)
        })
        .await
    }

    async fn rename_passkey(&self, user: UserId, id: Uuid, name: &str) -> Result<bool, StoreError> {
        let renamed = mfa_passkeys::Entity::update_many()
            .col_expr(mfa_passkeys::Column::Name, Expr::value(name))
            .filter(mfa_passkeys::Column::UserId.eq(user.to_string()))
            .filter(mfa_passkeys::Column::Id.eq(id.to_string()))
            .exec(&self.db)
            .await
            .map_err(db("renaming a passkey"))?;
        Ok(renamed.rows_affected == 1)
    }

    async fn remove_passkey(
        &self,
        user: UserId,
        id: Uuid,
        codes_too: bool,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let audit = &audit;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let removed = mfa_passkeys::Entity::delete_many()
                .filter(mfa_passkeys::Column::UserId.eq(user.to_string()))
                .filter(mfa_passkeys::Column::Id.eq(id.to_string()))
                .exec(&txn)
                .await
                .map_err(db("removing a passkey"))?;
            if removed.rows_affected == 0 {
                return Ok(false);
            }
            if codes_too {
                mfa_recovery_codes::Entity::delete_many()
                    .filter(mfa_recovery_codes::Column::UserId.eq(user.to_string()))
                    .exec(&txn)
                    .await
                    .map_err(db("removing recovery codes"))?;
            }
            write_audit(&txn, audit).await?;
            txn.commit().await.map_err(db("committing a passkey's removal"))?;
            Ok(true)
        })
        .await
    }

    async fn passkey_used(
        &self,
        user: UserId,
        credential_id: &str,
        credential: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut update = mfa_passkeys::Entity::update_many()
            .col_expr(mfa_passkeys::Column::LastUsedAt, Expr::value(micros(at)));
        if let Some(credential) = credential {
            update = update.col_expr(mfa_passkeys::Column::Credential, Expr::value(credential));
        }
        update
            .filter(mfa_passkeys::Column::UserId.eq(user.to_string()))
            .filter(mfa_passkeys::Column::CredentialDigest.eq(digest(credential_id)))
            .exec(&self.db)
            .await
            .map_err(db("recording a passkey's use"))?;
        Ok(())
    }

    async fn begin_ceremony(
        &self,
        key: &TokenHash,
        ceremony: &PendingCeremony,
    ) -> Result<(), StoreError> {
        let row = mfa_ceremonies::ActiveModel {
            key_hash: Set(key.to_hex()),
            user_id: Set(ceremony.user_id.to_string()),
            purpose: Set(ceremony.purpose.as_str().to_owned()),
            state: Set(ceremony.state.clone()),
            expires_at: Set(micros(ceremony.expires_at)),
        };
        mfa_ceremonies::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(db("keeping a passkey ceremony"))?;
        Ok(())
    }

    async fn take_ceremony(&self, key: &TokenHash) -> Result<Option<PendingCeremony>, StoreError> {
        let Some(row) = mfa_ceremonies::Entity::find_by_id(key.to_hex())
            .one(&self.db)
            .await
            .map_err(db("reading a passkey ceremony"))?
        else {
            return Ok(None);
        };
        // Only the request whose DELETE removed it may use it.
        let taken = mfa_ceremonies::Entity::delete_many()
            .filter(mfa_ceremonies::Column::KeyHash.eq(key.to_hex()))
            .exec(&self.db)
            .await
            .map_err(db("taking a passkey ceremony"))?;
        if taken.rows_affected != 1 {
            return Ok(None);
        }
        Ok(Some(PendingCeremony {
            user_id: user_id(&row.user_id)?,
            purpose: purpose(&row.purpose)?,
            state: row.state,
            expires_at: instant(row.expires_at)?,
        }))
    }

    async fn forget_expired_ceremonies(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let gone = mfa_ceremonies::Entity::delete_many()
            .filter(mfa_ceremonies::Column::ExpiresAt.lt(micros(now)))
            .exec(&self.db)
            .await
            .map_err(db("deleting expired passkey ceremonies"))?;
        Ok(gone.rows_affected)
    }
}
