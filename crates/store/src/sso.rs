//! The SSO port: sign-ins in flight, identity links, seen assertions, and
//! recording a successful SSO sign-in (activation or creation, link,
//! session, audit) in one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait};
use secureai_domain::sso::models::{PendingLogin, SsoProtocol};
use secureai_domain::sso::ports::{SsoRepository, SsoSignIn, SsoSignInStoreError};
use secureai_domain::{StoreError, TokenHash, User, UserId};
use sha2::{Digest, Sha256};

use crate::audit::write_audit;
use crate::convert::{ACTIVE, INVITED};
use crate::convert::{db, instant, micros, session_to_row, token_hash, user_from_row, user_to_row};
use crate::directory::{count_delta, count_move, counted, index_user};
use crate::entities::{invitations, sessions, sso_assertions, sso_links, sso_logins, users};
use crate::users::SEAT_HOLDING;
use crate::{SqlStore, is_unique_violation, retry_transaction, take_guard};

/// A fixed-width key for two texts of any length.
fn pair_key(first: &str, second: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(first.as_bytes());
    digest.update([0u8]);
    digest.update(second.as_bytes());
    digest.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Housekeeping before a sign-in step: the rows of `E` whose `expires_at`
/// has passed are deleted, best effort. On MySQL/MariaDB the range delete
/// can lose a deadlock to a concurrent sign-in's statements; the rows are
/// then swept by the next sign-in, and the step itself never relies on
/// the sweep.
async fn forget_expired<E: EntityTrait>(
    db: &DatabaseConnection,
    expires_at: E::Column,
    now: DateTime<Utc>,
    what: &str,
) {
    if let Err(error) = E::delete_many().filter(expires_at.lte(micros(now))).exec(db).await {
        tracing::warn!(%error, "forgetting expired {what} failed; the next sign-in retries");
    }
}

#[async_trait]
impl SsoRepository for SqlStore {
    async fn save_login(&self, login: PendingLogin) -> Result<(), StoreError> {
        sso_logins::Entity::insert(sso_logins::ActiveModel {
            key: Set(login.key.to_hex()),
            protocol: Set(login.protocol.as_str().to_owned()),
            data: Set(login.data),
            created_at: Set(micros(login.created_at)),
            expires_at: Set(micros(login.expires_at)),
        })
        .exec_without_returning(&self.db)
        .await
        .map_err(db("remembering an SSO sign-in"))?;
        Ok(())
    }

    async fn take_login(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingLogin>, StoreError> {
        forget_expired::<sso_logins::Entity>(
            &self.db,
            sso_logins::Column::ExpiresAt,
            now,
            "SSO sign-ins",
        )
        .await;
        // An expired sign-in is never taken, whether or not it was swept.
        let Some(row) = sso_logins::Entity::find_by_id(key.to_hex())
            .filter(sso_logins::Column::ExpiresAt.gt(micros(now)))
            .one(&self.db)
            .await
            .map_err(db("reading an SSO sign-in"))?
        else {
            return Ok(None);
        };
        // Only the caller whose delete removed the row may use it: of two
        // concurrent answers with the same browser token, one wins. (A
        // delete aborted by a deadlock removed nothing: it runs again.)
        let deleted = retry_transaction(|| {
            sso_logins::Entity::delete_many()
                .filter(sso_logins::Column::Key.eq(row.key.clone()))
                .exec(&self.db)
        })
        .await
        .map_err(db("using an SSO sign-in"))?;
        if deleted.rows_affected != 1 {
            return Ok(None);
        }
        let protocol = SsoProtocol::parse(&row.protocol)
            .ok_or_else(|| StoreError::msg(format!("stored SSO protocol `{}`", row.protocol)))?;
        Ok(Some(PendingLogin {
            key: token_hash(&row.key)?,
            protocol,
            data: row.data,
            created_at: instant(row.created_at)?,
            expires_at: instant(row.expires_at)?,
        }))
    }

    async fn find_linked(&self, issuer: &str, subject: &str) -> Result<Option<User>, StoreError> {
        let Some(link) = sso_links::Entity::find_by_id(pair_key(issuer, subject))
            .one(&self.db)
            .await
            .map_err(db("reading an SSO link"))?
        else {
            return Ok(None);
        };
        users::Entity::find_by_id(link.user_id)
            .one(&self.db)
            .await
            .map_err(db("reading a linked user"))?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn links_of(&self, user: UserId) -> Result<Vec<(String, String)>, StoreError> {
        let links = sso_links::Entity::find()
            .filter(sso_links::Column::UserId.eq(user.to_string()))
            .all(&self.db)
            .await
            .map_err(db("reading a user's SSO links"))?;
        Ok(links.into_iter().map(|l| (l.issuer, l.subject)).collect())
    }

    async fn remember_assertion(
        &self,
        issuer: &str,
        id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        forget_expired::<sso_assertions::Entity>(
            &self.db,
            sso_assertions::Column::ExpiresAt,
            now,
            "SSO assertions",
        )
        .await;
        // The primary key makes the insert the check: a replay, even a
        // concurrent one on another instance, violates it.
        let key = pair_key(issuer, id);
        match retry_transaction(|| {
            sso_assertions::Entity::insert(sso_assertions::ActiveModel {
                key: Set(key.clone()),
                expires_at: Set(micros(expires_at)),
            })
            .exec_without_returning(&self.db)
        })
        .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(db("remembering an assertion")(e)),
        }
    }

    async fn forget_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let logins = retry_transaction(|| {
            sso_logins::Entity::delete_many()
                .filter(sso_logins::Column::ExpiresAt.lte(micros(now)))
                .exec(&self.db)
        })
        .await
        .map_err(db("forgetting expired SSO sign-ins"))?;
        let assertions = retry_transaction(|| {
            sso_assertions::Entity::delete_many()
                .filter(sso_assertions::Column::ExpiresAt.lte(micros(now)))
                .exec(&self.db)
        })
        .await
        .map_err(db("forgetting expired SSO assertions"))?;
        Ok(logins.rows_affected + assertions.rows_affected)
    }

    async fn record_sso_sign_in(&self, sign_in: SsoSignIn) -> Result<(), SsoSignInStoreError> {
        let sign_in = &sign_in;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let user = &sign_in.user;
            let id = user.id.to_string();
            let at = micros(sign_in.session.created_at);
            if let Some(limit) = sign_in.create {
                if let Some(limit) = limit {
                    take_guard(&txn).await.map_err(db("taking the guard"))?;
                    let used =
                        counted(&txn, None, &SEAT_HOLDING).await.map_err(db("counting seats"))?;
                    if !secureai_domain::users::models::SeatLimit::new(limit).admits(used) {
                        return Err(SsoSignInStoreError::SeatLimitReached { limit });
                    }
                }
                match users::Entity::insert(user_to_row(user, None))
                    .exec_without_returning(&txn)
                    .await
                {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => return Err(SsoSignInStoreError::Conflict),
                    Err(e) => return Err(db("inserting a user")(e).into()),
                }
                index_user(&txn, user).await.map_err(db("indexing a user for search"))?;
                count_delta(&txn, user.role.as_str(), ACTIVE, 1)
                    .await
                    .map_err(db("counting a new user"))?;
            } else if sign_in.activate {
                let activated = users::Entity::update_many()
                    .col_expr(users::Column::Status, Expr::value(ACTIVE))
                    .col_expr(users::Column::ActivatedAt, Expr::value(at))
                    .col_expr(users::Column::ModifiedAt, Expr::value(at))
                    .filter(users::Column::Id.eq(id.clone()))
                    .filter(users::Column::Status.eq(INVITED))
                    .exec(&txn)
                    .await
                    .map_err(db("activating a user"))?;
                if activated.rows_affected != 1 {
                    return Err(SsoSignInStoreError::Stale);
                }
                let role = users::Entity::find_by_id(id.clone())
                    .one(&txn)
                    .await
                    .map_err(db("reading the activated user"))?
                    .map(|u| u.role)
                    .ok_or(SsoSignInStoreError::Stale)?;
                count_move(&txn, (&role, INVITED), (&role, ACTIVE))
                    .await
                    .map_err(db("recounting users"))?;
                // The invitation was answered through the identity provider.
                invitations::Entity::update_many()
                    .col_expr(invitations::Column::State, Expr::value("accepted"))
                    .col_expr(invitations::Column::StateAt, Expr::value(at))
                    .filter(invitations::Column::UserId.eq(id.clone()))
                    .filter(invitations::Column::State.eq("pending"))
                    .exec(&txn)
                    .await
                    .map_err(db("closing the invitation"))?;
            } else {
                let current = users::Entity::find_by_id(id.clone())
                    .one(&txn)
                    .await
                    .map_err(db("reading the user signing in"))?;
                if current.is_none_or(|u| u.status != ACTIVE) {
                    return Err(SsoSignInStoreError::Stale);
                }
            }
            if let Some((issuer, subject)) = &sign_in.link {
                let link = sso_links::ActiveModel {
                    key: Set(pair_key(issuer, subject)),
                    issuer: Set(issuer.clone()),
                    subject: Set(subject.clone()),
                    user_id: Set(id.clone()),
                    linked_at: Set(at),
                };
                match sso_links::Entity::insert(link).exec_without_returning(&txn).await {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => return Err(SsoSignInStoreError::Conflict),
                    Err(e) => return Err(db("linking an SSO identity")(e).into()),
                }
            }
            sessions::Entity::insert(session_to_row(&sign_in.session))
                .exec_without_returning(&txn)
                .await
                .map_err(db("inserting a session"))?;
            users::Entity::update_many()
                .col_expr(users::Column::LastLoginAt, Expr::value(at))
                .filter(users::Column::Id.eq(id))
                .exec(&txn)
                .await
                .map_err(db("recording the sign-in time"))?;
            for event in &sign_in.audit {
                write_audit(&txn, event).await?;
            }
            txn.commit().await.map_err(db("committing an SSO sign-in"))?;
            Ok(())
        })
        .await
    }
}
