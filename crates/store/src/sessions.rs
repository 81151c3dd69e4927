//! The session port: credentials lookup, starting, resolving, touching and
//! ending sessions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, TransactionTrait};
use secureai_domain::sessions::models::{Session, SessionId};
use secureai_domain::sessions::ports::SessionRepository;
use secureai_domain::{
    AuditEvent, EmailAddress, PasswordHash, StoreError, TokenHash, User, UserId,
};

use crate::audit::write_audit;
use crate::convert::{db, micros, session_from_row, session_to_row, user_from_row};
use crate::entities::{sessions, users};
use crate::{SqlStore, retry_transaction};

#[async_trait]
impl SessionRepository for SqlStore {
    async fn find_credentials(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<(User, Option<PasswordHash>)>, StoreError> {
        let select = users::Entity::find().filter(users::Column::EmailKey.eq(email.key()));
        // The key is unique: one row at most.
        let Some(row) = self.read_users(select, "reading credentials").await?.pop() else {
            return Ok(None);
        };
        let hash = row.password_hash.clone().map(PasswordHash::from_phc);
        Ok(Some((user_from_row(&row)?, hash)))
    }

    async fn start(&self, session: Session, audit: AuditEvent) -> Result<(), StoreError> {
        let session = &session;
        let audit = &audit;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            sessions::Entity::insert(session_to_row(session))
                .exec_without_returning(&txn)
                .await
                .map_err(db("inserting a session"))?;
            users::Entity::update_many()
                .col_expr(users::Column::LastLoginAt, Expr::value(micros(session.created_at)))
                .filter(users::Column::Id.eq(session.user_id.to_string()))
                .exec(&txn)
                .await
                .map_err(db("recording the sign-in time"))?;
            write_audit(&txn, audit).await?;
            txn.commit().await.map_err(db("committing a sign-in"))
        })
        .await
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<(Session, User)>, StoreError> {
        if let Some(reads) = &self.reads {
            let found = reads
                .session_with_user(&hash.to_hex())
                .map_err(crate::sqlite_reads::read_error("resolving a session"))?;
            return found
                .map(|(session, user)| Ok((session_from_row(&session)?, user_from_row(&user)?)))
                .transpose();
        }
        let digest = hash.to_hex();
        let found = match &self.lookups {
            Some(lookups) => lookups.find(digest.clone()).await,
            None => None,
        };
        let found = match found {
            Some(found) => {
                found?.map_err(|e| StoreError::msg(format!("resolving a session: {e}")))?
            }
            // SQLite in memory, or the gathering task is gone: on its own.
            None => crate::session_lookups::read(&self.db, &[&digest])
                .await
                .map_err(|e| StoreError::msg(format!("resolving a session: {e}")))?
                .remove(&digest),
        };
        found
            .map(|(session, user)| Ok((session_from_row(&session)?, user_from_row(&user)?)))
            .transpose()
    }

    async fn touch(&self, id: SessionId, at: DateTime<Utc>) -> Result<(), StoreError> {
        sessions::Entity::update_many()
            .col_expr(sessions::Column::LastSeenAt, Expr::value(micros(at)))
            .filter(sessions::Column::Id.eq(id.as_uuid().to_string()))
            .exec(&self.db)
            .await
            .map_err(db("touching a session"))?;
        Ok(())
    }

    async fn second_factor_checked(
        &self,
        id: SessionId,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sessions::Entity::update_many()
            .col_expr(sessions::Column::EnrolmentOnly, Expr::value(false))
            .col_expr(sessions::Column::SecondFactorAt, Expr::value(micros(at)))
            .filter(sessions::Column::Id.eq(id.as_uuid().to_string()))
            .exec(&self.db)
            .await
            .map_err(db("recording a second-factor check"))?;
        Ok(())
    }

    async fn enrolment_required(&self, id: SessionId) -> Result<(), StoreError> {
        sessions::Entity::update_many()
            .col_expr(sessions::Column::EnrolmentOnly, Expr::value(true))
            .col_expr(sessions::Column::SecondFactorAt, Expr::value(Option::<i64>::None))
            .filter(sessions::Column::Id.eq(id.as_uuid().to_string()))
            .exec(&self.db)
            .await
            .map_err(db("limiting a session to a second factor's setup"))?;
        Ok(())
    }

    async fn count_live(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        idle_since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        sessions::Entity::find()
            .filter(sessions::Column::UserId.eq(user.to_string()))
            .filter(sessions::Column::ExpiresAt.gt(micros(now)))
            .filter(sessions::Column::LastSeenAt.gt(micros(idle_since)))
            .count(&self.db)
            .await
            .map_err(db("counting sessions"))
    }

    async fn end_all(&self, user: UserId, audit: AuditEvent) -> Result<u64, StoreError> {
        let audit = &audit;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let ended = sessions::Entity::delete_many()
                .filter(sessions::Column::UserId.eq(user.to_string()))
                .exec(&txn)
                .await
                .map_err(db("ending sessions"))?;
            write_audit(&txn, audit).await?;
            txn.commit().await.map_err(db("committing ended sessions"))?;
            Ok(ended.rows_affected)
        })
        .await
    }

    async fn end(&self, id: SessionId, audit: Option<AuditEvent>) -> Result<(), StoreError> {
        let audit = &audit;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            sessions::Entity::delete_many()
                .filter(sessions::Column::Id.eq(id.as_uuid().to_string()))
                .exec(&txn)
                .await
                .map_err(db("ending a session"))?;
            if let Some(audit) = audit {
                write_audit(&txn, audit).await?;
            }
            txn.commit().await.map_err(db("committing a sign-out"))
        })
        .await
    }
}
