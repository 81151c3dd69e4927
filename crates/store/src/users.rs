//! The user port: inserting invited users (with invitation, outbox message
//! and audit event, atomically, within the seat limit), lookups, listing.

use async_trait::async_trait;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use secureai_domain::users::ports::{
    ChangeUserError, InsertUserError, NewInvitedUser, UserChange, UserPage, UserQuery,
    UserRepository,
};
use secureai_domain::{EmailAddress, StoreError, User, UserId};

use crate::convert::{audit_to_row, db, invitation_to_row, micros, user_from_row, user_to_row};
use crate::entities::{audit_events, invitations, outbox, sessions, users};
use crate::outbox::mail_to_row;
use crate::{SqlStore, is_unique_violation, take_guard};

/// Statuses that hold a seat.
pub(crate) const SEAT_HOLDING: [&str; 2] = ["invited", "active"];

#[async_trait]
impl UserRepository for SqlStore {
    async fn insert_invited(&self, new: NewInvitedUser) -> Result<(), InsertUserError> {
        let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
        if let Some(limit) = new.seat_limit {
            take_guard(&txn).await.map_err(db("taking the guard"))?;
            let used = users::Entity::find()
                .filter(users::Column::Status.is_in(SEAT_HOLDING))
                .count(&txn)
                .await
                .map_err(db("counting seats"))?;
            if used >= u64::from(limit) {
                return Err(InsertUserError::SeatLimitReached { limit });
            }
        }
        match users::Entity::insert(user_to_row(&new.user, None)).exec_without_returning(&txn).await
        {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(InsertUserError::EmailTaken),
            Err(e) => return Err(db("inserting a user")(e).into()),
        }
        invitations::Entity::insert(invitation_to_row(&new.invitation))
            .exec_without_returning(&txn)
            .await
            .map_err(db("inserting an invitation"))?;
        outbox::Entity::insert(mail_to_row(&new.mail))
            .exec_without_returning(&txn)
            .await
            .map_err(db("queueing the invitation email"))?;
        audit_events::Entity::insert(audit_to_row(&new.audit))
            .exec_without_returning(&txn)
            .await
            .map_err(db("writing the audit event"))?;
        txn.commit().await.map_err(db("committing a new user"))?;
        Ok(())
    }

    async fn apply_change(&self, change: UserChange) -> Result<(), ChangeUserError> {
        let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
        take_guard(&txn).await.map_err(db("taking the guard"))?;
        let id = change.before.id.to_string();
        let current = users::Entity::find_by_id(id.clone())
            .one(&txn)
            .await
            .map_err(db("reading the user to change"))?
            .ok_or(ChangeUserError::Stale)?;
        if current.role != change.before.role.as_str()
            || current.status != change.before.status().as_str()
        {
            return Err(ChangeUserError::Stale);
        }
        if change.keep_an_admin {
            let others = users::Entity::find()
                .filter(users::Column::Role.eq("admin"))
                .filter(users::Column::Status.eq("active"))
                .filter(users::Column::Id.ne(id.clone()))
                .count(&txn)
                .await
                .map_err(db("counting admins"))?;
            if others == 0 {
                return Err(ChangeUserError::LastAdmin);
            }
        }
        if let Some(Some(limit)) = change.takes_seat {
            let used = users::Entity::find()
                .filter(users::Column::Status.is_in(SEAT_HOLDING))
                .count(&txn)
                .await
                .map_err(db("counting seats"))?;
            if used >= u64::from(limit) {
                return Err(ChangeUserError::SeatLimitReached { limit });
            }
        }
        let after = &change.after;
        users::Entity::update_many()
            .col_expr(users::Column::Name, Expr::value(after.name.to_string()))
            .col_expr(
                users::Column::Department,
                Expr::value(after.department.as_ref().map(ToString::to_string)),
            )
            .col_expr(users::Column::Role, Expr::value(after.role.as_str()))
            .col_expr(users::Column::Status, Expr::value(after.status().as_str()))
            .col_expr(
                users::Column::ActivatedAt,
                Expr::value(after.state.activated_at().map(micros)),
            )
            .col_expr(
                users::Column::DeactivatedAt,
                Expr::value(after.state.deactivated_at().map(micros)),
            )
            .filter(users::Column::Id.eq(id.clone()))
            .exec(&txn)
            .await
            .map_err(db("changing a user"))?;
        if change.end_sessions {
            sessions::Entity::delete_many()
                .filter(sessions::Column::UserId.eq(id.clone()))
                .exec(&txn)
                .await
                .map_err(db("ending the user's sessions"))?;
        }
        if change.revoke_links {
            let at = change.audit.first().map(|e| micros(e.at));
            invitations::Entity::update_many()
                .col_expr(invitations::Column::State, Expr::value("revoked"))
                .col_expr(invitations::Column::StateAt, Expr::value(at))
                .filter(invitations::Column::UserId.eq(id.clone()))
                .filter(invitations::Column::State.eq("pending"))
                .exec(&txn)
                .await
                .map_err(db("voiding the user's links"))?;
        }
        for event in &change.audit {
            audit_events::Entity::insert(audit_to_row(event))
                .exec_without_returning(&txn)
                .await
                .map_err(db("writing the audit event"))?;
        }
        txn.commit().await.map_err(db("committing a user change"))?;
        Ok(())
    }

    async fn count_seats(&self) -> Result<u64, StoreError> {
        users::Entity::find()
            .filter(users::Column::Status.is_in(SEAT_HOLDING))
            .count(&self.db)
            .await
            .map_err(db("counting seats"))
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

    async fn list(&self, query: &UserQuery) -> Result<UserPage, StoreError> {
        let mut select = users::Entity::find()
            .order_by_asc(users::Column::CreatedAt)
            .order_by_asc(users::Column::Id)
            .limit(u64::from(query.limit) + 1);
        if let Some(after) = &query.after {
            let at = micros(after.created_at);
            select = select.filter(
                Condition::any().add(users::Column::CreatedAt.gt(at)).add(
                    Condition::all()
                        .add(users::Column::CreatedAt.eq(at))
                        .add(users::Column::Id.gt(after.id.to_string())),
                ),
            );
        }
        let rows = select.all(&self.db).await.map_err(db("listing users"))?;
        let items = rows.iter().map(user_from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(UserPage::from_overfetch(items, query.limit))
    }
}
