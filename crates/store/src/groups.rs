//! The group port: SCIM groups and their members, one row per membership.
//! A change first updates the group's row, which holds its lock until the
//! commit: changes to one group run one after the other, so that two
//! adding different members keep both, on every database.

use std::collections::HashSet;

use async_trait::async_trait;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use secureai_domain::provisioning::models::{Group, GroupSummary};
use secureai_domain::provisioning::ports::{GroupRepository, GroupWrite, GroupWriteError};
use secureai_domain::users::ports::UserChange;
use secureai_domain::{AuditEvent, StoreError, UserId};

use crate::audit::write_audit;
use crate::convert::{db, instant, micros, user_id};
use crate::entities::{scim_group_members, scim_groups, users};
use crate::users::apply_in;
use crate::{SqlStore, is_unique_violation, retry_transaction};

fn group_id(text: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::parse_str(text).map_err(|e| StoreError::new("a group id is not a UUID", e))
}

/// Every one of `members` is a user.
async fn all_users(
    txn: &sea_orm::DatabaseTransaction,
    members: &[UserId],
) -> Result<bool, GroupWriteError> {
    for chunk in members.chunks(500) {
        let ids: Vec<String> = chunk.iter().map(ToString::to_string).collect();
        let found = users::Entity::find()
            .filter(users::Column::Id.is_in(ids))
            .count(txn)
            .await
            .map_err(db("checking group members"))?;
        if found != chunk.len() as u64 {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn insert_members(
    txn: &sea_orm::DatabaseTransaction,
    group: &str,
    members: &[UserId],
) -> Result<(), StoreError> {
    for chunk in members.chunks(500) {
        let rows = chunk.iter().map(|m| scim_group_members::ActiveModel {
            group_id: sea_orm::ActiveValue::Set(group.to_owned()),
            user_id: sea_orm::ActiveValue::Set(m.to_string()),
        });
        scim_group_members::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await
            .map_err(db("adding group members"))?;
    }
    Ok(())
}

async fn members_of(
    conn: &impl sea_orm::ConnectionTrait,
    group: &str,
) -> Result<Vec<UserId>, StoreError> {
    scim_group_members::Entity::find()
        .filter(scim_group_members::Column::GroupId.eq(group))
        .all(conn)
        .await
        .map_err(db("reading group members"))?
        .iter()
        .map(|row| user_id(&row.user_id))
        .collect()
}

async fn finish(
    txn: &sea_orm::DatabaseTransaction,
    role_changes: &[UserChange],
    audit: &[AuditEvent],
) -> Result<(), GroupWriteError> {
    for change in role_changes {
        apply_in(txn, change).await?;
    }
    for event in audit {
        write_audit(txn, event).await?;
    }
    Ok(())
}

fn dedup(members: impl IntoIterator<Item = UserId>) -> Vec<UserId> {
    let mut seen = HashSet::new();
    members.into_iter().filter(|m| seen.insert(*m)).collect()
}

impl SqlStore {
    async fn with_members(&self, row: &scim_groups::Model) -> Result<Group, StoreError> {
        Ok(Group {
            id: group_id(&row.id)?,
            name: row.name.clone(),
            external_id: row.external_id.clone(),
            created_at: instant(row.created_at)?,
            updated_at: instant(row.updated_at)?,
            members: members_of(&self.db, &row.id).await?,
        })
    }
}

#[async_trait]
impl GroupRepository for SqlStore {
    async fn create_group(&self, write: GroupWrite) -> Result<(), GroupWriteError> {
        let _turn = self.write_turn().await;
        let write = &write;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let group = &write.group;
            let id = group.id.to_string();
            let row = scim_groups::ActiveModel {
                id: sea_orm::ActiveValue::Set(id.clone()),
                name: sea_orm::ActiveValue::Set(group.name.clone()),
                name_key: sea_orm::ActiveValue::Set(group.name.to_lowercase()),
                external_id: sea_orm::ActiveValue::Set(group.external_id.clone()),
                created_at: sea_orm::ActiveValue::Set(micros(group.created_at)),
                updated_at: sea_orm::ActiveValue::Set(micros(group.updated_at)),
            };
            match scim_groups::Entity::insert(row).exec_without_returning(&txn).await {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(GroupWriteError::NameTaken),
                Err(e) => return Err(db("inserting a group")(e).into()),
            }
            let removed: HashSet<UserId> = write.members.remove.iter().copied().collect();
            let members =
                dedup(write.members.replace.iter().flatten().chain(&write.members.add).copied());
            let members: Vec<UserId> =
                members.into_iter().filter(|m| !removed.contains(m)).collect();
            if !all_users(&txn, &members).await? {
                return Err(GroupWriteError::UnknownMember);
            }
            insert_members(&txn, &id, &members).await?;
            finish(&txn, &write.role_changes, &write.audit).await?;
            txn.commit().await.map_err(db("committing a group"))?;
            Ok(())
        })
        .await
    }

    async fn change_group(&self, write: GroupWrite) -> Result<(), GroupWriteError> {
        let _turn = self.write_turn().await;
        let write = &write;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let group = &write.group;
            let id = group.id.to_string();
            // First: the group's row, whose lock orders changes to it.
            let updated = scim_groups::Entity::update_many()
                .col_expr(scim_groups::Column::Name, Expr::value(group.name.clone()))
                .col_expr(scim_groups::Column::NameKey, Expr::value(group.name.to_lowercase()))
                .col_expr(scim_groups::Column::ExternalId, Expr::value(group.external_id.clone()))
                .col_expr(scim_groups::Column::UpdatedAt, Expr::value(micros(group.updated_at)))
                .filter(scim_groups::Column::Id.eq(id.clone()))
                .exec(&txn)
                .await;
            match updated {
                Ok(result) if result.rows_affected == 0 => {
                    // MySQL counts only changed rows: look before refusing.
                    let exists = scim_groups::Entity::find_by_id(id.clone())
                        .count(&txn)
                        .await
                        .map_err(db("reading a group"))?;
                    if exists == 0 {
                        return Err(GroupWriteError::NotFound);
                    }
                }
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Err(GroupWriteError::NameTaken),
                Err(e) => return Err(db("changing a group")(e).into()),
            }
            let change = &write.members;
            let joining = dedup(change.replace.iter().flatten().chain(&change.add).copied());
            if !all_users(&txn, &joining).await? {
                return Err(GroupWriteError::UnknownMember);
            }
            let current: HashSet<UserId> = members_of(&txn, &id).await?.into_iter().collect();
            if let Some(expected) = &write.expected_members
                && expected.iter().copied().collect::<HashSet<_>>() != current
            {
                return Err(GroupWriteError::Stale);
            }
            let mut after: HashSet<UserId> = match &change.replace {
                Some(list) => list.iter().copied().collect(),
                None => current.clone(),
            };
            after.extend(change.add.iter().copied());
            for member in &change.remove {
                after.remove(member);
            }
            let leaving: Vec<String> =
                current.difference(&after).map(ToString::to_string).collect();
            for chunk in leaving.chunks(500) {
                scim_group_members::Entity::delete_many()
                    .filter(scim_group_members::Column::GroupId.eq(id.clone()))
                    .filter(scim_group_members::Column::UserId.is_in(chunk.to_vec()))
                    .exec(&txn)
                    .await
                    .map_err(db("removing group members"))?;
            }
            let arriving: Vec<UserId> = after.difference(&current).copied().collect();
            insert_members(&txn, &id, &arriving).await?;
            finish(&txn, &write.role_changes, &write.audit).await?;
            txn.commit().await.map_err(db("committing a group change"))?;
            Ok(())
        })
        .await
    }

    async fn delete_group(
        &self,
        id: uuid::Uuid,
        expected_members: Option<Vec<UserId>>,
        role_changes: Vec<UserChange>,
        audit: AuditEvent,
    ) -> Result<(), GroupWriteError> {
        let (role_changes, audit, expected) = (&role_changes, &audit, &expected_members);
        let _turn = self.write_turn().await;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let id = id.to_string();
            // The group's row first: its lock orders this after changes
            // in flight.
            let locked = scim_groups::Entity::update_many()
                .col_expr(scim_groups::Column::Id, Expr::col(scim_groups::Column::Id))
                .filter(scim_groups::Column::Id.eq(id.clone()))
                .exec(&txn)
                .await
                .map_err(db("locking a group"))?;
            let _ = locked;
            if let Some(expected) = expected {
                let current: HashSet<UserId> = members_of(&txn, &id).await?.into_iter().collect();
                if expected.iter().copied().collect::<HashSet<_>>() != current {
                    return Err(GroupWriteError::Stale);
                }
            }
            scim_group_members::Entity::delete_many()
                .filter(scim_group_members::Column::GroupId.eq(id.clone()))
                .exec(&txn)
                .await
                .map_err(db("removing group members"))?;
            let deleted = scim_groups::Entity::delete_by_id(id)
                .exec(&txn)
                .await
                .map_err(db("deleting a group"))?;
            if deleted.rows_affected == 0 {
                return Err(GroupWriteError::NotFound);
            }
            finish(&txn, role_changes, std::slice::from_ref(audit)).await?;
            txn.commit().await.map_err(db("committing a group deletion"))?;
            Ok(())
        })
        .await
    }

    async fn group(&self, id: uuid::Uuid) -> Result<Option<Group>, StoreError> {
        let row = scim_groups::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await
            .map_err(db("reading a group"))?;
        match row {
            Some(row) => Ok(Some(self.with_members(&row).await?)),
            None => Ok(None),
        }
    }

    async fn group_by_name(&self, name: &str) -> Result<Option<Group>, StoreError> {
        let row = scim_groups::Entity::find()
            .filter(scim_groups::Column::NameKey.eq(name.to_lowercase()))
            .one(&self.db)
            .await
            .map_err(db("reading a group by name"))?;
        match row {
            Some(row) => Ok(Some(self.with_members(&row).await?)),
            None => Ok(None),
        }
    }

    async fn groups_by_position(
        &self,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<Group>, u64), StoreError> {
        let rows = scim_groups::Entity::find()
            .order_by_asc(scim_groups::Column::CreatedAt)
            .order_by_asc(scim_groups::Column::Id)
            .offset(offset)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(db("reading groups"))?;
        let total =
            scim_groups::Entity::find().count(&self.db).await.map_err(db("counting groups"))?;
        let mut groups = Vec::with_capacity(rows.len());
        for row in &rows {
            groups.push(self.with_members(row).await?);
        }
        Ok((groups, total))
    }

    async fn groups_of(&self, user: UserId) -> Result<Vec<GroupSummary>, StoreError> {
        let ids: Vec<String> = scim_group_members::Entity::find()
            .filter(scim_group_members::Column::UserId.eq(user.to_string()))
            .all(&self.db)
            .await
            .map_err(db("reading a user's groups"))?
            .into_iter()
            .map(|row| row.group_id)
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = scim_groups::Entity::find()
            .filter(scim_groups::Column::Id.is_in(ids))
            .order_by_asc(scim_groups::Column::NameKey)
            .all(&self.db)
            .await
            .map_err(db("reading a user's groups"))?;
        rows.iter()
            .map(|row| Ok(GroupSummary { id: group_id(&row.id)?, name: row.name.clone() }))
            .collect()
    }

    async fn group_names(&self, limit: u32) -> Result<Vec<GroupSummary>, StoreError> {
        let rows = scim_groups::Entity::find()
            .order_by_asc(scim_groups::Column::NameKey)
            .order_by_asc(scim_groups::Column::Id)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(db("reading group names"))?;
        rows.iter()
            .map(|row| Ok(GroupSummary { id: group_id(&row.id)?, name: row.name.clone() }))
            .collect()
    }
}
