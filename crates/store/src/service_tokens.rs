//! The service-token port: tokens other SecureAI services present to
//! report usage, kept as digests.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, QueryResult, TransactionTrait, Value};
use secureai_domain::analytics::models::{ServiceToken, TokenScope};
use secureai_domain::analytics::ports::ServiceTokenRepository;
use secureai_domain::{AuditEvent, StoreError, TokenHash};
use uuid::Uuid;

use crate::audit::write_audit;
use crate::convert::{db, instant, micros, opt_instant, user_id};
use crate::usage::sql::Sql;
use crate::{SqlStore, retry_transaction};

fn token_from_row(row: &QueryResult) -> Result<ServiceToken, StoreError> {
    let get = |column: &str| row.try_get::<String>("", column).map_err(db("reading a token"));
    let get_opt =
        |column: &str| row.try_get::<Option<i64>>("", column).map_err(db("reading a token"));
    let id = get("id")?;
    Ok(ServiceToken {
        id: Uuid::parse_str(&id).map_err(|_| StoreError::msg("a service token id is corrupt"))?,
        name: get("name")?,
        created_by: row
            .try_get::<Option<String>>("", "created_by")
            .map_err(db("reading a token"))?
            .map(|id| user_id(&id))
            .transpose()?,
        created_at: instant(row.try_get::<i64>("", "created_at").map_err(db("reading a token"))?)?,
        last_used_at: opt_instant(get_opt("last_used_at")?)?,
        revoked_at: opt_instant(get_opt("revoked_at")?)?,
        scopes: scopes_from(&get("scopes")?)?,
    })
}

/// Scopes as stored: their names, space-separated.
fn scopes_to(scopes: &[TokenScope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
}

/// Scopes this version does not know (written by a newer one) open
/// nothing here.
fn scopes_from(stored: &str) -> Result<Vec<TokenScope>, StoreError> {
    Ok(stored.split_whitespace().filter_map(TokenScope::parse).collect())
}

const TOKEN_COLUMNS: &str = "id, name, created_by, created_at, last_used_at, revoked_at, scopes";

#[async_trait]
impl ServiceTokenRepository for SqlStore {
    async fn insert_service_token(
        &self,
        token: ServiceToken,
        hash: TokenHash,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let token = &token;
        let hash = &hash;
        let audit = &audit;
        retry_transaction(move || async move {
            let backend = self.backend();
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let mut sql = Sql::new(
                backend,
                "INSERT INTO service_tokens (id, name, token_hash, created_by, created_at, \
                 last_used_at, revoked_at, scopes) VALUES ",
            );
            sql.row(vec![
                token.id.to_string().into(),
                token.name.clone().into(),
                hash.to_hex().into(),
                token.created_by.map(|id| id.to_string()).into(),
                micros(token.created_at).into(),
                Value::from(Option::<i64>::None),
                Value::from(Option::<i64>::None),
                scopes_to(&token.scopes).into(),
            ]);
            txn.execute_raw(sql.statement()).await.map_err(db("storing a service token"))?;
            write_audit(&txn, audit).await?;
            txn.commit().await.map_err(db("committing a service token"))
        })
        .await
    }

    async fn service_tokens(&self) -> Result<Vec<ServiceToken>, StoreError> {
        let sql = Sql::new(
            self.backend(),
            &format!(
                "SELECT {TOKEN_COLUMNS} FROM service_tokens ORDER BY created_at DESC, id DESC"
            ),
        );
        let rows = self.db.query_all_raw(sql.statement()).await.map_err(db("listing tokens"))?;
        rows.iter().map(token_from_row).collect()
    }

    async fn service_token_by_hash(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<ServiceToken>, StoreError> {
        let mut sql = Sql::new(
            self.backend(),
            &format!("SELECT {TOKEN_COLUMNS} FROM service_tokens WHERE token_hash = "),
        );
        sql.bind(hash.to_hex());
        let row = self.db.query_one_raw(sql.statement()).await.map_err(db("finding a token"))?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn revoke_service_token(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<Option<ServiceToken>, StoreError> {
        let audit = &audit;
        retry_transaction(move || async move {
            let backend = self.backend();
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let mut revoke = Sql::new(backend, "UPDATE service_tokens SET revoked_at = ");
            revoke.bind(micros(at)).push(" WHERE id = ").bind(id.to_string());
            revoke.push(" AND revoked_at IS NULL");
            let revoked =
                txn.execute_raw(revoke.statement()).await.map_err(db("revoking a token"))?;
            if revoked.rows_affected() == 1 {
                write_audit(&txn, audit).await?;
            }
            let mut read = Sql::new(
                backend,
                &format!("SELECT {TOKEN_COLUMNS} FROM service_tokens WHERE id = "),
            );
            read.bind(id.to_string());
            let row = txn.query_one_raw(read.statement()).await.map_err(db("reading a token"))?;
            let token = row.as_ref().map(token_from_row).transpose()?;
            txn.commit().await.map_err(db("committing a revocation"))?;
            Ok(token)
        })
        .await
    }

    async fn touch_service_token(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut sql = Sql::new(self.backend(), "UPDATE service_tokens SET last_used_at = ");
        sql.bind(micros(at)).push(" WHERE id = ").bind(id.to_string());
        self.db.execute_raw(sql.statement()).await.map_err(db("recording token use"))?;
        Ok(())
    }
}
