//! The user port: inserting invited users (with invitation, outbox message
//! and audit event, atomically, within the seat limit), lookups, listing.

use async_trait::async_trait;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use secureai_domain::mail::models::LINK_KINDS;
use secureai_domain::users::ports::{
    ChangeUserError, Erasure, UserChange, UserPage, UserQuery, UserRepository,
};
use secureai_domain::{EmailAddress, StoreError, User, UserId};

use crate::audit::write_audit;
use crate::convert::{ACTIVE, ADMIN};
use crate::convert::{db, micros, user_from_row, user_to_row};
use secureai_domain::users::models::SeatLimit;

use crate::directory::{count_move, counted, index_user, search_text, unindex_user};
use crate::entities::{
    audit_events, invitations, mfa_recovery_codes, mfa_sign_ins, mfa_totp, outbox, password_resets,
    sessions, users,
};
use crate::{SqlStore, is_unique_violation, retry_transaction, take_guard};

/// Statuses that hold a seat.
/// The domain's seat-holding statuses, as stored.
pub(crate) const SEAT_HOLDING: [&str; 2] = [
    secureai_domain::users::models::SEAT_HOLDING[0].as_str(),
    secureai_domain::users::models::SEAT_HOLDING[1].as_str(),
];

#[async_trait]
impl UserRepository for SqlStore {
    async fn apply_change(&self, change: UserChange) -> Result<(), ChangeUserError> {
        let change = &change;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            apply_in(&txn, change).await?;
            txn.commit().await.map_err(db("committing a user change"))?;
            Ok(())
        })
        .await
    }

    async fn erase(&self, erasure: Erasure) -> Result<(), ChangeUserError> {
        let erasure = &erasure;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let before = &erasure.before;
            guard_unchanged(&txn, before, before.is_active_admin()).await?;
            let id = before.id.to_string();
            let mut row = user_to_row(&erasure.after, None);
            row.created_at = sea_orm::ActiveValue::NotSet;
            row.last_login_at = sea_orm::ActiveValue::NotSet;
            row.modified_at = sea_orm::ActiveValue::Set(micros(erasure.audit.at));
            // Not to be found by search, as it has no search terms either.
            row.search_text = sea_orm::ActiveValue::Set(String::new());
            users::Entity::update(row).exec(&txn).await.map_err(db("anonymising the user"))?;
            unindex_user(&txn, &id).await.map_err(db("removing search terms"))?;
            count_move(
                &txn,
                (before.role.as_str(), before.status().as_str()),
                (erasure.after.role.as_str(), erasure.after.status().as_str()),
            )
            .await
            .map_err(db("recounting users"))?;
            sessions::Entity::delete_many()
                .filter(sessions::Column::UserId.eq(id.clone()))
                .exec(&txn)
                .await
                .map_err(db("ending sessions"))?;
            revoke_pending_links(&txn, &id, micros(erasure.audit.at)).await?;
            // Their second factors go with them.
            mfa_totp::Entity::delete_many()
                .filter(mfa_totp::Column::UserId.eq(id.clone()))
                .exec(&txn)
                .await
                .map_err(db("removing second factors"))?;
            mfa_recovery_codes::Entity::delete_many()
                .filter(mfa_recovery_codes::Column::UserId.eq(id.clone()))
                .exec(&txn)
                .await
                .map_err(db("removing recovery codes"))?;
            mfa_sign_ins::Entity::delete_many()
                .filter(mfa_sign_ins::Column::UserId.eq(id.clone()))
                .exec(&txn)
                .await
                .map_err(db("removing sign-ins waiting for a second factor"))?;
            crate::entities::mfa_passkeys::Entity::delete_many()
                .filter(crate::entities::mfa_passkeys::Column::UserId.eq(id.clone()))
                .exec(&txn)
                .await
                .map_err(db("removing passkeys"))?;
            crate::entities::mfa_ceremonies::Entity::delete_many()
                .filter(crate::entities::mfa_ceremonies::Column::UserId.eq(id.clone()))
                .exec(&txn)
                .await
                .map_err(db("removing passkey ceremonies"))?;
            let mut tokens = crate::usage::sql::Sql::new(
                self.backend(),
                "DELETE FROM api_tokens WHERE user_id = ",
            );
            tokens.bind(id.clone());
            sea_orm::ConnectionTrait::execute_raw(&txn, tokens.statement())
                .await
                .map_err(db("removing API tokens"))?;
            // Webhook bodies about them carry their address; the erasure's
            // own event (written with the audit below) carries none.
            let mut hooks = crate::usage::sql::Sql::new(
                self.backend(),
                "DELETE FROM webhook_deliveries WHERE user_id = ",
            );
            hooks.bind(id.clone());
            sea_orm::ConnectionTrait::execute_raw(&txn, hooks.statement())
                .await
                .map_err(db("removing webhook deliveries"))?;
            // Unsent mail carries the address and the person's name.
            outbox::Entity::delete_many()
                .filter(outbox::Column::Recipient.eq(before.email.as_str()))
                .filter(outbox::Column::Status.ne("sent"))
                .exec(&txn)
                .await
                .map_err(db("dropping queued mail"))?;
            outbox::Entity::update_many()
                .col_expr(outbox::Column::Recipient, Expr::value(erasure.after.email.as_str()))
                .col_expr(outbox::Column::RecipientName, Expr::value(erasure.after.name.as_ref()))
                .filter(outbox::Column::Recipient.eq(before.email.as_str()))
                .exec(&txn)
                .await
                .map_err(db("anonymising sent mail"))?;
            // The audit trail keeps ids, loses the person's data.
            audit_events::Entity::update_many()
                .col_expr(audit_events::Column::TargetEmail, Expr::value(Option::<String>::None))
                .col_expr(audit_events::Column::Changes, Expr::value("[]"))
                .filter(audit_events::Column::TargetId.eq(id.clone()))
                .exec(&txn)
                .await
                .map_err(db("anonymising audit events"))?;
            audit_events::Entity::update_many()
                .col_expr(audit_events::Column::ActorEmail, Expr::value(Option::<String>::None))
                .filter(audit_events::Column::ActorId.eq(id.clone()))
                .exec(&txn)
                .await
                .map_err(db("anonymising audit events"))?;
            audit_events::Entity::update_many()
                .col_expr(audit_events::Column::TargetEmail, Expr::value(Option::<String>::None))
                .filter(audit_events::Column::TargetEmail.eq(before.email.as_str()))
                .exec(&txn)
                .await
                .map_err(db("anonymising failed sign-ins"))?;
            write_audit(&txn, &erasure.audit).await?;
            txn.commit().await.map_err(db("committing an erasure"))?;
            Ok(())
        })
        .await
    }

    async fn count_seats(&self) -> Result<u64, StoreError> {
        counted(&self.db, None, &SEAT_HOLDING).await.map_err(db("counting seats"))
    }

    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError> {
        users::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await
            .map_err(db("reading a user"))?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn find_by_email(&self, email: &EmailAddress) -> Result<Option<User>, StoreError> {
        users::Entity::find()
            .filter(users::Column::EmailKey.eq(email.key()))
            .one(&self.db)
            .await
            .map_err(db("reading a user by email"))?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn list(&self, query: &UserQuery, total_cap: u64) -> Result<UserPage, StoreError> {
        crate::listing::list(self, query, total_cap).await
    }
}

/// Voids every pending invitation and password-reset link of a user, so
/// that none works again after a deactivation or erasure.
async fn revoke_pending_links(
    txn: &sea_orm::DatabaseTransaction,
    user_id: &str,
    at: i64,
) -> Result<(), StoreError> {
    invitations::Entity::update_many()
        .col_expr(invitations::Column::State, Expr::value("revoked"))
        .col_expr(invitations::Column::StateAt, Expr::value(at))
        .filter(invitations::Column::UserId.eq(user_id))
        .filter(invitations::Column::State.eq("pending"))
        .exec(txn)
        .await
        .map_err(db("voiding invitation links"))?;
    password_resets::Entity::update_many()
        .col_expr(password_resets::Column::State, Expr::value("revoked"))
        .col_expr(password_resets::Column::StateAt, Expr::value(at))
        .filter(password_resets::Column::UserId.eq(user_id))
        .filter(password_resets::Column::State.eq("pending"))
        .exec(txn)
        .await
        .map_err(db("voiding password reset links"))?;
    Ok(())
}

/// Deletes the user's emails of `kinds` not sent yet and not being sent
/// (a worker's lease runs past `now`): their links are void, so they must
/// not go out, nor stay in "Retry all".
pub(crate) async fn drop_unsent_links(
    txn: &sea_orm::DatabaseTransaction,
    user_id: &str,
    kinds: &[&str],
    now: i64,
) -> Result<(), StoreError> {
    outbox::Entity::delete_many()
        .filter(outbox::Column::UserId.eq(user_id))
        .filter(outbox::Column::Kind.is_in(kinds.iter().copied()))
        .filter(outbox::Column::Status.ne("sent"))
        .filter(
            sea_orm::Condition::any()
                .add(outbox::Column::LeasedUntil.is_null())
                .add(outbox::Column::LeasedUntil.lt(now)),
        )
        .exec(txn)
        .await
        .map_err(db("dropping unsent emails of void links"))?;
    Ok(())
}

/// Takes the guard, then checks that the user's role, status and address
/// are still those of `before` (else `Stale`: the change was worked out
/// from an older user, and would write their old address back into the
/// search index) and, if `keep_an_admin`, that another active admin exists
/// (else `LastAdmin`). An address changes only under the guard too
/// (`InvitationRepository::reissue`).
async fn guard_unchanged(
    txn: &sea_orm::DatabaseTransaction,
    before: &User,
    keep_an_admin: bool,
) -> Result<(), ChangeUserError> {
    take_guard(txn).await.map_err(db("taking the guard"))?;
    let current = users::Entity::find_by_id(before.id.to_string())
        .one(txn)
        .await
        .map_err(db("reading the user to change"))?
        .ok_or(ChangeUserError::Stale)?;
    if current.role != before.role.as_str()
        || current.status != before.status().as_str()
        || current.email_key != before.email.key()
    {
        return Err(ChangeUserError::Stale);
    }
    if keep_an_admin {
        // `before` is an active admin (checked above): the others are every
        // active admin but this one.
        let admins = counted(txn, Some(ADMIN), &[ACTIVE]).await.map_err(db("counting admins"))?;
        if admins <= 1 {
            return Err(ChangeUserError::LastAdmin);
        }
    }
    Ok(())
}

/// When a change happens: the time of its audit event (the domain's
/// clock), or now for a change that audits nothing.
fn change_time(change: &UserChange) -> chrono::DateTime<chrono::Utc> {
    change.audit.first().map_or_else(chrono::Utc::now, |event| event.at)
}

/// Records that the user changed at `at` without changing their row's
/// attributes (their link to the identity provider).
pub(crate) async fn touch(
    txn: &sea_orm::DatabaseTransaction,
    id: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), sea_orm::DbErr> {
    users::Entity::update_many()
        .col_expr(users::Column::ModifiedAt, Expr::value(micros(at)))
        .filter(users::Column::Id.eq(id))
        .exec(txn)
        .await
        .map(|_| ())
}

/// [`UserRepository::apply_change`] inside a transaction the caller
/// commits, for ports that write a user change with more.
pub(crate) async fn apply_in(
    txn: &sea_orm::DatabaseTransaction,
    change: &UserChange,
) -> Result<(), ChangeUserError> {
    guard_unchanged(txn, &change.before, change.keep_an_admin).await?;
    let id = change.before.id.to_string();
    if let Some(Some(limit)) = change.takes_seat {
        let used = counted(txn, None, &SEAT_HOLDING).await.map_err(db("counting seats"))?;
        if !SeatLimit::new(limit).admits(used) {
            return Err(ChangeUserError::SeatLimitReached { limit });
        }
    }
    let after = &change.after;
    let changed = users::Entity::update_many()
        .col_expr(users::Column::Email, Expr::value(after.email.as_str()))
        .col_expr(users::Column::EmailKey, Expr::value(after.email.key()))
        .col_expr(users::Column::Name, Expr::value(after.name.to_string()))
        .col_expr(
            users::Column::Department,
            Expr::value(after.department.as_ref().map(ToString::to_string)),
        )
        .col_expr(users::Column::Role, Expr::value(after.role.as_str()))
        .col_expr(users::Column::Status, Expr::value(after.status().as_str()))
        .col_expr(users::Column::ActivatedAt, Expr::value(after.state.activated_at().map(micros)))
        .col_expr(
            users::Column::DeactivatedAt,
            Expr::value(after.state.deactivated_at().map(micros)),
        )
        .col_expr(users::Column::SignIn, Expr::value(after.sign_in.as_str()))
        .col_expr(users::Column::NameKey, Expr::value(after.name.sort_key()))
        .col_expr(users::Column::SearchText, Expr::value(search_text(&after.email, &after.name)))
        .col_expr(users::Column::ModifiedAt, Expr::value(micros(change_time(change))))
        .filter(users::Column::Id.eq(id.clone()))
        .exec(txn)
        .await;
    match changed {
        Ok(_) => {}
        // The new address is another user's.
        Err(e) if is_unique_violation(&e) => return Err(ChangeUserError::EmailTaken),
        Err(e) => return Err(db("changing a user")(e).into()),
    }
    if after.name != change.before.name || after.email.as_str() != change.before.email.as_str() {
        index_user(txn, after).await.map_err(db("re-indexing a user for search"))?;
    }
    if after.sign_in != change.before.sign_in {
        // Switched to single sign-on: the password goes.
        users::Entity::update_many()
            .col_expr(users::Column::PasswordHash, Expr::value(Option::<String>::None))
            .filter(users::Column::Id.eq(id.clone()))
            .exec(txn)
            .await
            .map_err(db("removing a password"))?;
    }
    count_move(
        txn,
        (change.before.role.as_str(), change.before.status().as_str()),
        (after.role.as_str(), after.status().as_str()),
    )
    .await
    .map_err(db("recounting users"))?;
    if change.end_sessions {
        sessions::Entity::delete_many()
            .filter(sessions::Column::UserId.eq(id.clone()))
            .exec(txn)
            .await
            .map_err(db("ending the user's sessions"))?;
    }
    if change.revoke_links {
        let at = change.audit.first().map_or(0, |e| micros(e.at));
        revoke_pending_links(txn, &id, at).await?;
        drop_unsent_links(txn, &id, &LINK_KINDS, at).await?;
    }
    for event in &change.audit {
        write_audit(txn, event).await?;
    }
    Ok(())
}
