//! The invitation port: lookup by token hash, single-use acceptance.

use async_trait::async_trait;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};
use secureai_domain::invitations::models::Invitation;
use secureai_domain::invitations::ports::{
    AcceptStoreError, Acceptance, InsertUserError, InvitationRepository, NewInvitedUser, Reissue,
    ReissueError,
};
use secureai_domain::mail::models::INVITATION_KINDS;
use secureai_domain::{EmailAddress, StoreError, TokenHash, User, UserId};

use crate::audit::write_audit;
use crate::convert::user_to_row;
use crate::convert::{ACTIVE, INVITED};
use crate::convert::{db, invitation_from_row, invitation_to_row, micros, user_from_row};
use crate::directory::count_move;
use crate::directory::{count_delta, counted, index_user, search_text};
use crate::entities::{invitations, outbox, users};
use crate::outbox::mail_to_row;
use crate::users::{SEAT_HOLDING, drop_unsent_links};
use crate::{SqlStore, is_unique_violation, retry_transaction, take_guard};
use secureai_domain::users::models::SeatLimit;

#[async_trait]
impl InvitationRepository for SqlStore {
    async fn insert_invited(&self, new: NewInvitedUser) -> Result<(), InsertUserError> {
        let new = &new;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let parts = NewUserParts {
                user: &new.user,
                invitation: &new.invitation,
                mail: Some(&new.mail),
                audit: &new.audit,
                seat_limit: new.seat_limit,
            };
            insert_in(&txn, &self.sealer, &parts).await?;
            txn.commit().await.map_err(db("committing a new user"))?;
            Ok(())
        })
        .await
    }

    async fn find_by_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<(Invitation, User)>, StoreError> {
        let Some(invitation) = invitations::Entity::find()
            .filter(invitations::Column::TokenHash.eq(hash.to_hex()))
            .one(&self.db)
            .await
            .map_err(db("reading an invitation"))?
        else {
            return Ok(None);
        };
        let user = users::Entity::find_by_id(invitation.user_id.clone())
            .one(&self.db)
            .await
            .map_err(db("reading the invited user"))?
            .ok_or_else(|| StoreError::msg("an invitation points to a missing user"))?;
        Ok(Some((invitation_from_row(&invitation)?, user_from_row(&user)?)))
    }

    async fn reissue(&self, reissue: Reissue) -> Result<(), ReissueError> {
        let reissue = &reissue;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let user_id = reissue.invitation.user_id.to_string();
            // Touch the user row only if still invited: this both checks and
            // locks it against a concurrent acceptance or deactivation.
            let still_invited = users::Entity::update_many()
                .col_expr(users::Column::Status, Expr::value(INVITED))
                .filter(users::Column::Id.eq(user_id.clone()))
                .filter(users::Column::Status.eq(INVITED))
                .exec(&txn)
                .await
                .map_err(db("checking the invited user"))?;
            if still_invited.rows_affected != 1 {
                return Err(ReissueError::NotInvited);
            }
            if let Some(email) = &reissue.new_email {
                // Under the guard, as every other change of a user: a change
                // worked out from the old address is then refused as stale.
                take_guard(&txn).await.map_err(db("taking the guard"))?;
                change_email(&txn, &user_id, email, micros(reissue.invitation.created_at)).await?;
            }
            // Unsent invitation emails of the user carry links void from now.
            let now = micros(reissue.invitation.created_at);
            drop_unsent_links(&txn, &user_id, &INVITATION_KINDS, now).await?;
            invitations::Entity::update_many()
                .col_expr(invitations::Column::State, Expr::value("revoked"))
                .col_expr(
                    invitations::Column::StateAt,
                    Expr::value(micros(reissue.invitation.created_at)),
                )
                .filter(invitations::Column::UserId.eq(user_id))
                .filter(invitations::Column::State.eq("pending"))
                .exec(&txn)
                .await
                .map_err(db("voiding earlier invitations"))?;
            invitations::Entity::insert(invitation_to_row(&reissue.invitation))
                .exec_without_returning(&txn)
                .await
                .map_err(db("inserting an invitation"))?;
            outbox::Entity::insert(mail_to_row(&self.sealer, &reissue.mail))
                .exec_without_returning(&txn)
                .await
                .map_err(db("queueing the invitation email"))?;
            write_audit(&txn, &reissue.audit).await?;
            txn.commit().await.map_err(db("committing a re-sent invitation"))?;
            Ok(())
        })
        .await
    }

    async fn latest_for(&self, user: UserId) -> Result<Option<Invitation>, StoreError> {
        let rows = invitations::Entity::find()
            .filter(invitations::Column::UserId.eq(user.to_string()))
            .order_by_desc(invitations::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(db("reading invitations"))?;
        let chosen = rows.iter().find(|r| r.state == "pending").or(rows.first());
        chosen.map(invitation_from_row).transpose()
    }

    async fn latest_for_users(&self, users: &[UserId]) -> Result<Vec<Invitation>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let rows = invitations::Entity::find()
            .filter(invitations::Column::UserId.is_in(users.iter().map(ToString::to_string)))
            .order_by_desc(invitations::Column::CreatedAt)
            .all(&self.db)
            .await
            .map_err(db("reading invitations"))?;
        // As `latest_for`: the pending one, else the newest.
        let mut chosen: std::collections::HashMap<&str, &invitations::Model> =
            std::collections::HashMap::new();
        for row in &rows {
            let slot = chosen.entry(row.user_id.as_str()).or_insert(row);
            if slot.state != "pending" && row.state == "pending" {
                *slot = row;
            }
        }
        chosen.into_values().map(invitation_from_row).collect()
    }

    async fn accept(&self, acceptance: Acceptance) -> Result<(), AcceptStoreError> {
        let acceptance = &acceptance;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let at = micros(acceptance.at);
            // Conditional updates: of two concurrent acceptances only one sees
            // the row still pending.
            let used = invitations::Entity::update_many()
                .col_expr(invitations::Column::State, Expr::value("accepted"))
                .col_expr(invitations::Column::StateAt, Expr::value(at))
                .filter(invitations::Column::Id.eq(acceptance.invitation_id.as_uuid().to_string()))
                .filter(invitations::Column::State.eq("pending"))
                .exec(&txn)
                .await
                .map_err(db("consuming an invitation"))?;
            if used.rows_affected != 1 {
                return Err(AcceptStoreError::NoLongerPending);
            }
            let activated = users::Entity::update_many()
                .col_expr(users::Column::Status, Expr::value(ACTIVE))
                .col_expr(users::Column::ActivatedAt, Expr::value(at))
                .col_expr(users::Column::ModifiedAt, Expr::value(at))
                .col_expr(
                    users::Column::PasswordHash,
                    Expr::value(acceptance.password_hash.as_ref().map(|h| h.as_phc().to_owned())),
                )
                .filter(users::Column::Id.eq(acceptance.user_id.to_string()))
                .filter(users::Column::Status.eq(INVITED))
                .exec(&txn)
                .await
                .map_err(db("activating a user"))?;
            if activated.rows_affected != 1 {
                return Err(AcceptStoreError::NoLongerPending);
            }
            let role = users::Entity::find_by_id(acceptance.user_id.to_string())
                .one(&txn)
                .await
                .map_err(db("reading the activated user"))?
                .map(|u| u.role)
                .ok_or_else(|| StoreError::msg("the activated user vanished"))?;
            count_move(&txn, (&role, INVITED), (&role, ACTIVE))
                .await
                .map_err(db("recounting users"))?;
            write_audit(&txn, &acceptance.audit).await?;
            txn.commit().await.map_err(db("committing an acceptance"))?;
            Ok(())
        })
        .await
    }
}

/// Gives an invited user a corrected address (unique in any case) and
/// re-indexes them for search.
async fn change_email(
    txn: &sea_orm::DatabaseTransaction,
    user_id: &str,
    email: &EmailAddress,
    at: i64,
) -> Result<(), ReissueError> {
    let row = users::Entity::find_by_id(user_id.to_owned())
        .one(txn)
        .await
        .map_err(db("reading the invited user"))?
        .ok_or_else(|| StoreError::msg("the invited user vanished"))?;
    let mut user = user_from_row(&row)?;
    user.email = email.clone();
    let changed = users::Entity::update_many()
        .col_expr(users::Column::Email, Expr::value(email.as_str()))
        .col_expr(users::Column::EmailKey, Expr::value(email.key()))
        .col_expr(users::Column::SearchText, Expr::value(search_text(&user.email, &user.name)))
        .col_expr(users::Column::ModifiedAt, Expr::value(at))
        .filter(users::Column::Id.eq(user_id.to_owned()))
        .exec(txn)
        .await;
    match changed {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(ReissueError::EmailTaken),
        Err(e) => return Err(db("changing an address")(e).into()),
    }
    index_user(txn, &user).await.map_err(db("re-indexing a user for search"))?;
    Ok(())
}

/// A new user and what is written with them.
pub(crate) struct NewUserParts<'a> {
    pub(crate) user: &'a User,
    pub(crate) invitation: &'a Invitation,
    pub(crate) mail: Option<&'a secureai_domain::mail::models::OutgoingMail>,
    pub(crate) audit: &'a secureai_domain::AuditEvent,
    pub(crate) seat_limit: Option<u32>,
}

/// [`InvitationRepository::insert_invited`] inside a transaction the
/// caller commits, for ports that write a new user with more.
pub(crate) async fn insert_in(
    txn: &sea_orm::DatabaseTransaction,
    sealer: &crate::sealing::Sealer,
    new: &NewUserParts<'_>,
) -> Result<(), InsertUserError> {
    if let Some(limit) = new.seat_limit {
        take_guard(txn).await.map_err(db("taking the guard"))?;
        let used = counted(txn, None, &SEAT_HOLDING).await.map_err(db("counting seats"))?;
        if !SeatLimit::new(limit).admits(used) {
            return Err(InsertUserError::SeatLimitReached { limit });
        }
    }
    match users::Entity::insert(user_to_row(new.user, None)).exec_without_returning(txn).await {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(InsertUserError::EmailTaken),
        Err(e) => return Err(db("inserting a user")(e).into()),
    }
    index_user(txn, new.user).await.map_err(db("indexing a user for search"))?;
    count_delta(txn, new.user.role.as_str(), new.user.status().as_str(), 1)
        .await
        .map_err(db("counting a new user"))?;
    invitations::Entity::insert(invitation_to_row(new.invitation))
        .exec_without_returning(txn)
        .await
        .map_err(db("inserting an invitation"))?;
    if let Some(mail) = new.mail {
        outbox::Entity::insert(mail_to_row(sealer, mail))
            .exec_without_returning(txn)
            .await
            .map_err(db("queueing the invitation email"))?;
    }
    write_audit(txn, new.audit).await?;
    Ok(())
}
