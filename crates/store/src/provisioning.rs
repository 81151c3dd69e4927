//! The provisioning port: users created and changed together with their
//! SCIM identity (`externalId`, detached), and the identity provider's
//! reads, which leave out users it deleted.

use async_trait::async_trait;
use sea_orm::sea_query::Query;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use secureai_domain::invitations::ports::InsertUserError;
use secureai_domain::provisioning::models::{ProvisionedUser, RequestFailure, ScimIdentity};
use secureai_domain::provisioning::ports::{NewProvisionedUser, ProvisioningRepository};
use secureai_domain::users::ports::{ChangeUserError, UserChange};
use secureai_domain::{EmailAddress, StoreError, UserId};

use crate::convert::{db, instant, micros, user_from_row};
use crate::directory::counted;
use crate::entities::{scim_failures, scim_identities, users};
use crate::invitations::{NewUserParts, insert_in};
use crate::users::{apply_in, touch};
use crate::{SqlStore, is_unique_violation, retry_transaction};

fn identity_from_row(row: &scim_identities::Model) -> Result<ScimIdentity, StoreError> {
    Ok(ScimIdentity {
        external_id: row.external_id.clone(),
        user_name: row.user_name.clone(),
        detached_at: row.detached_at.map(instant).transpose()?,
    })
}

/// Users not detached: no identity row says the identity provider deleted
/// them.
fn not_detached() -> Condition {
    Condition::all().add(
        users::Column::Id.not_in_subquery(
            Query::select()
                .column(scim_identities::Column::UserId)
                .from(scim_identities::Entity)
                .and_where(scim_identities::Column::DetachedAt.is_not_null())
                .to_owned(),
        ),
    )
}

/// Why an identity was not written.
enum IdentityError {
    /// Another user's identity has the `user_name`.
    UserNameTaken,
    Unexpected(StoreError),
}

impl From<IdentityError> for InsertUserError {
    fn from(error: IdentityError) -> Self {
        match error {
            IdentityError::UserNameTaken => Self::EmailTaken,
            IdentityError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl From<IdentityError> for ChangeUserError {
    fn from(error: IdentityError) -> Self {
        match error {
            IdentityError::UserNameTaken => Self::EmailTaken,
            IdentityError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

async fn write_identity(
    txn: &sea_orm::DatabaseTransaction,
    user: &str,
    identity: &ScimIdentity,
) -> Result<(), IdentityError> {
    let row = scim_identities::ActiveModel {
        user_id: sea_orm::ActiveValue::Set(user.to_owned()),
        external_id: sea_orm::ActiveValue::Set(identity.external_id.clone()),
        user_name: sea_orm::ActiveValue::Set(identity.user_name.clone()),
        user_name_key: sea_orm::ActiveValue::Set(
            identity.user_name.as_deref().map(str::to_lowercase),
        ),
        detached_at: sea_orm::ActiveValue::Set(identity.detached_at.map(micros)),
    };
    // Not an upsert: MySQL's ON DUPLICATE KEY UPDATE fires on any unique
    // key, and would rewrite the other user's row whose `user_name` this is.
    let exists = scim_identities::Entity::find_by_id(user.to_owned())
        .one(txn)
        .await
        .map_err(|e| IdentityError::Unexpected(db("reading a SCIM identity")(e)))?
        .is_some();
    let written = if exists {
        scim_identities::Entity::update(row).exec(txn).await.map(|_| ())
    } else {
        scim_identities::Entity::insert(row).exec_without_returning(txn).await.map(|_| ())
    };
    match written {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(IdentityError::UserNameTaken),
        Err(e) => Err(IdentityError::Unexpected(db("writing a SCIM identity")(e))),
    }
}

impl SqlStore {
    /// The users of these rows with their identities, leaving out detached
    /// ones, in the rows' order.
    async fn with_identities(
        &self,
        rows: &[users::Model],
    ) -> Result<Vec<ProvisionedUser>, StoreError> {
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let identities = if ids.is_empty() {
            Vec::new()
        } else {
            scim_identities::Entity::find()
                .filter(scim_identities::Column::UserId.is_in(ids))
                .all(&self.db)
                .await
                .map_err(db("reading SCIM identities"))?
        };
        let mut provisioned = Vec::with_capacity(rows.len());
        for row in rows {
            let identity = identities
                .iter()
                .find(|i| i.user_id == row.id)
                .map(identity_from_row)
                .transpose()?
                .unwrap_or_default();
            if identity.detached_at.is_none() {
                provisioned.push(ProvisionedUser {
                    user: user_from_row(row)?,
                    modified_at: instant(row.modified_at)?,
                    external_id: identity.external_id,
                    user_name: identity.user_name,
                });
            }
        }
        Ok(provisioned)
    }
}

#[async_trait]
impl ProvisioningRepository for SqlStore {
    async fn create(&self, new: NewProvisionedUser) -> Result<(), InsertUserError> {
        let _turn = self.write_turn().await;
        let new = &new;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let parts = NewUserParts {
                user: &new.user,
                invitation: &new.invitation,
                mail: new.mail.as_ref(),
                audit: &new.audit,
                seat_limit: new.seat_limit,
            };
            insert_in(&txn, &self.sealer, &parts).await?;
            let identity = ScimIdentity {
                external_id: new.external_id.clone(),
                user_name: new.user_name.clone(),
                detached_at: None,
            };
            write_identity(&txn, &new.user.id.to_string(), &identity).await?;
            txn.commit().await.map_err(db("committing a provisioned user"))?;
            Ok(())
        })
        .await
    }

    async fn update(
        &self,
        user: UserId,
        change: Option<UserChange>,
        identity: ScimIdentity,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), ChangeUserError> {
        let (change, identity) = (&change, &identity);
        let _turn = self.write_turn().await;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let id = user.to_string();
            match change {
                Some(change) => apply_in(&txn, change).await?,
                None => {
                    users::Entity::find_by_id(id.clone())
                        .one(&txn)
                        .await
                        .map_err(db("reading the user to change"))?
                        .ok_or(ChangeUserError::Stale)?;
                }
            }
            touch(&txn, &id, at).await.map_err(db("recording when the user changed"))?;
            write_identity(&txn, &id, identity).await?;
            txn.commit().await.map_err(db("committing a provisioning change"))?;
            Ok(())
        })
        .await
    }

    async fn identity(&self, user: UserId) -> Result<Option<ScimIdentity>, StoreError> {
        scim_identities::Entity::find_by_id(user.to_string())
            .one(&self.db)
            .await
            .map_err(db("reading a SCIM identity"))?
            .as_ref()
            .map(identity_from_row)
            .transpose()
    }

    async fn get(&self, user: UserId) -> Result<Option<ProvisionedUser>, StoreError> {
        let rows = users::Entity::find_by_id(user.to_string())
            .all(&self.db)
            .await
            .map_err(db("reading a user"))?;
        Ok(self.with_identities(&rows).await?.pop())
    }

    async fn find_by_email(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<ProvisionedUser>, StoreError> {
        let rows = users::Entity::find()
            .filter(users::Column::EmailKey.eq(email.key()))
            .all(&self.db)
            .await
            .map_err(db("reading a user by email"))?;
        Ok(self.with_identities(&rows).await?.pop())
    }

    async fn search(
        &self,
        filter: &secureai_domain::provisioning::filter::ScimFilter,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<ProvisionedUser>, u64), StoreError> {
        let matching = Condition::all()
            .add(not_detached())
            .add(crate::scim_filter::condition(filter, self.db.get_database_backend()));
        let rows = users::Entity::find()
            .filter(matching.clone())
            .order_by_asc(users::Column::CreatedAt)
            .order_by_asc(users::Column::Id)
            .offset(offset)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(db("searching users"))?;
        let total = users::Entity::find()
            .filter(matching)
            .count(&self.db)
            .await
            .map_err(db("counting matches"))?;
        Ok((self.with_identities(&rows).await?, total))
    }

    async fn record_failure(&self, failure: &RequestFailure, keep: u32) -> Result<(), StoreError> {
        let cut = |text: &str, max: usize| text.chars().take(max).collect::<String>();
        let row = scim_failures::ActiveModel {
            id: sea_orm::ActiveValue::Set(secureai_domain::record_id().to_string()),
            at: sea_orm::ActiveValue::Set(micros(failure.at)),
            method: sea_orm::ActiveValue::Set(cut(&failure.method, 10)),
            path: sea_orm::ActiveValue::Set(cut(&failure.path, 200)),
            status: sea_orm::ActiveValue::Set(i32::from(failure.status)),
            detail: sea_orm::ActiveValue::Set(cut(&failure.detail, 500)),
            token: sea_orm::ActiveValue::Set(cut(&failure.token, 100)),
        };
        scim_failures::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
            .map_err(db("recording a refused SCIM request"))?;
        // Only the newest `keep`: the oldest one kept says where to cut.
        let oldest_kept = scim_failures::Entity::find()
            .order_by_desc(scim_failures::Column::At)
            .order_by_desc(scim_failures::Column::Id)
            .offset(u64::from(keep.saturating_sub(1)))
            .one(&self.db)
            .await
            .map_err(db("reading refused SCIM requests"))?;
        if let Some(oldest) = oldest_kept {
            scim_failures::Entity::delete_many()
                .filter(scim_failures::Column::At.lt(oldest.at))
                .exec(&self.db)
                .await
                .map_err(db("forgetting old refused SCIM requests"))?;
        }
        Ok(())
    }

    async fn recent_failures(&self, limit: u32) -> Result<Vec<RequestFailure>, StoreError> {
        scim_failures::Entity::find()
            .order_by_desc(scim_failures::Column::At)
            .order_by_desc(scim_failures::Column::Id)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(db("reading refused SCIM requests"))?
            .iter()
            .map(|row| {
                Ok(RequestFailure {
                    at: instant(row.at)?,
                    method: row.method.clone(),
                    path: row.path.clone(),
                    status: u16::try_from(row.status).unwrap_or(0),
                    detail: row.detail.clone(),
                    token: row.token.clone(),
                })
            })
            .collect()
    }

    async fn find_by_user_name(
        &self,
        user_name: &str,
    ) -> Result<Option<ProvisionedUser>, StoreError> {
        let Some(identity) = scim_identities::Entity::find()
            .filter(scim_identities::Column::UserNameKey.eq(user_name.to_lowercase()))
            .one(&self.db)
            .await
            .map_err(db("reading a user by userName"))?
        else {
            return Ok(None);
        };
        let rows = users::Entity::find_by_id(identity.user_id)
            .all(&self.db)
            .await
            .map_err(db("reading a user"))?;
        Ok(self.with_identities(&rows).await?.pop())
    }

    async fn find_by_external_id(
        &self,
        external_id: &str,
        limit: u32,
    ) -> Result<Vec<ProvisionedUser>, StoreError> {
        let ids: Vec<String> = scim_identities::Entity::find()
            .filter(scim_identities::Column::ExternalId.eq(external_id))
            .filter(scim_identities::Column::DetachedAt.is_null())
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(db("reading users by external id"))?
            .into_iter()
            // MySQL compares case-insensitively; externalId is case-exact.
            .filter(|row| row.external_id.as_deref() == Some(external_id))
            .map(|row| row.user_id)
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = users::Entity::find()
            .filter(users::Column::Id.is_in(ids))
            .order_by_asc(users::Column::CreatedAt)
            .order_by_asc(users::Column::Id)
            .all(&self.db)
            .await
            .map_err(db("reading users by external id"))?;
        self.with_identities(&rows).await
    }

    async fn by_position(
        &self,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<ProvisionedUser>, u64), StoreError> {
        // The positions from the creation-order index alone, then only the
        // page's rows: an OFFSET deep into the directory walks the index,
        // not the rows.
        let ids: Vec<String> = users::Entity::find()
            .select_only()
            .column(users::Column::Id)
            .filter(not_detached())
            .order_by_asc(users::Column::CreatedAt)
            .order_by_asc(users::Column::Id)
            .offset(offset)
            .limit(u64::from(limit))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(db("reading users by position"))?;
        let rows = if ids.is_empty() {
            Vec::new()
        } else {
            users::Entity::find()
                .filter(users::Column::Id.is_in(ids))
                .order_by_asc(users::Column::CreatedAt)
                .order_by_asc(users::Column::Id)
                .all(&self.db)
                .await
                .map_err(db("reading users by position"))?
        };
        let statuses = ["invited", "active", "deactivated"];
        let all = counted(&self.db, None, &statuses).await.map_err(db("counting users"))?;
        let detached = scim_identities::Entity::find()
            .filter(scim_identities::Column::DetachedAt.is_not_null())
            .count(&self.db)
            .await
            .map_err(db("counting detached users"))?;
        Ok((self.with_identities(&rows).await?, all.saturating_sub(detached)))
    }
}
