//! The personal API token port: an admin's tokens, kept as digests.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, QueryResult, TransactionTrait, Value};
use secureai_domain::access::ApiScope;
use secureai_domain::api_tokens::models::ApiToken;
use secureai_domain::api_tokens::ports::ApiTokenRepository;
use secureai_domain::users::models::UserId;
use secureai_domain::{AuditEvent, StoreError, TokenHash};
use uuid::Uuid;

use crate::audit::write_audit;
use crate::convert::{db, instant, micros, opt_instant, user_id};
use crate::usage::sql::Sql;
use crate::{SqlStore, retry_transaction};

const COLUMNS: &str =
    "id, user_id, name, scopes, created_at, expires_at, last_used_at, last_used_ip, revoked_at";

fn token_from_row(row: &QueryResult) -> Result<ApiToken, StoreError> {
    let text = |column: &str| row.try_get::<String>("", column).map_err(db("reading a token"));
    let time = |column: &str| row.try_get::<i64>("", column).map_err(db("reading a token"));
    let opt_time =
        |column: &str| row.try_get::<Option<i64>>("", column).map_err(db("reading a token"));
    let id = text("id")?;
    Ok(ApiToken {
        id: Uuid::parse_str(&id).map_err(|_| StoreError::msg("an API token id is corrupt"))?,
        user_id: user_id(&text("user_id")?)?,
        name: text("name")?,
        // Scopes this version does not know (a newer one wrote them) open
        // nothing here.
        scopes: text("scopes")?.split_whitespace().filter_map(ApiScope::parse).collect(),
        created_at: instant(time("created_at")?)?,
        expires_at: instant(time("expires_at")?)?,
        last_used_at: opt_instant(opt_time("last_used_at")?)?,
        last_used_ip: row
            .try_get::<Option<String>>("", "last_used_ip")
            .map_err(db("reading a token"))?,
        revoked_at: opt_instant(opt_time("revoked_at")?)?,
    })
}

#[async_trait]
impl ApiTokenRepository for SqlStore {
    async fn insert_api_token(
        &self,
        token: ApiToken,
        hash: TokenHash,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let token = &token;
        let hash = &hash;
        let audit = &audit;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let mut sql = Sql::new(
                self.backend(),
                "INSERT INTO api_tokens (id, user_id, name, token_hash, scopes, created_at, \
                 expires_at, last_used_at, last_used_ip, revoked_at) VALUES ",
            );
            let scopes: Vec<&str> = token.scopes.iter().map(|s| s.as_str()).collect();
            sql.row(vec![
                token.id.to_string().into(),
                token.user_id.to_string().into(),
                token.name.clone().into(),
                hash.to_hex().into(),
                scopes.join(" ").into(),
                micros(token.created_at).into(),
                micros(token.expires_at).into(),
                Value::from(Option::<i64>::None),
                Value::from(Option::<String>::None),
                Value::from(Option::<i64>::None),
            ]);
            txn.execute_raw(sql.statement()).await.map_err(db("storing an API token"))?;
            write_audit(&txn, audit).await?;
            txn.commit().await.map_err(db("committing an API token"))
        })
        .await
    }

    async fn api_token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
        let mut sql = Sql::new(
            self.backend(),
            &format!("SELECT {COLUMNS} FROM api_tokens WHERE token_hash = "),
        );
        sql.bind(hash.to_hex());
        let row = self.db.query_one_raw(sql.statement()).await.map_err(db("finding a token"))?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn api_tokens(&self, user: Option<UserId>) -> Result<Vec<ApiToken>, StoreError> {
        let mut sql = Sql::new(self.backend(), &format!("SELECT {COLUMNS} FROM api_tokens"));
        if let Some(user) = user {
            sql.push(" WHERE user_id = ").bind(user.to_string());
        }
        sql.push(" ORDER BY created_at DESC, id DESC");
        let rows = self.db.query_all_raw(sql.statement()).await.map_err(db("listing tokens"))?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_api_token(
        &self,
        id: Uuid,
        owner: Option<UserId>,
        now: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<Option<ApiToken>, StoreError> {
        let audit = &audit;
        retry_transaction(move || async move {
            let backend = self.backend();
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let mut revoke = Sql::new(backend, "UPDATE api_tokens SET revoked_at = ");
            revoke.bind(micros(now)).push(" WHERE id = ").bind(id.to_string());
            revoke.push(" AND revoked_at IS NULL");
            if let Some(owner) = owner {
                revoke.push(" AND user_id = ").bind(owner.to_string());
            }
            let revoked =
                txn.execute_raw(revoke.statement()).await.map_err(db("revoking a token"))?;
            if revoked.rows_affected() != 1 {
                return Ok(None);
            }
            write_audit(&txn, audit).await?;
            let mut read =
                Sql::new(backend, &format!("SELECT {COLUMNS} FROM api_tokens WHERE id = "));
            read.bind(id.to_string());
            let row = txn.query_one_raw(read.statement()).await.map_err(db("reading a token"))?;
            let token = row.as_ref().map(token_from_row).transpose()?;
            txn.commit().await.map_err(db("committing a revocation"))?;
            Ok(token)
        })
        .await
    }

    async fn touch_api_token(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        ip: Option<String>,
    ) -> Result<(), StoreError> {
        let mut sql = Sql::new(self.backend(), "UPDATE api_tokens SET last_used_at = ");
        let ip: Option<String> = ip.map(|ip| ip.chars().take(64).collect());
        sql.bind(micros(at)).push(", last_used_ip = ").bind(ip);
        sql.push(" WHERE id = ").bind(id.to_string());
        self.db.execute_raw(sql.statement()).await.map_err(db("recording token use"))?;
        Ok(())
    }
}
