//! SCIM provisioning: groups the identity provider pushes, and their
//! members (one row per membership, so that concurrent changes adding
//! different members keep all of them).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ScimGroups {
    Table,
    Id,
    Name,
    NameKey,
    ExternalId,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ScimGroupMembers {
    Table,
    GroupId,
    UserId,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(ScimGroups::Table)
                    .col(ColumnDef::new(ScimGroups::Id).string_len(36).not_null().primary_key())
                    .col(ColumnDef::new(ScimGroups::Name).string_len(255).not_null())
                    // Unique in any letter case, by its lowercase key.
                    .col(super::m20261203_000011_scim_identities::bytewise(
                        backend,
                        ColumnDef::new(ScimGroups::NameKey)
                            .string_len(255)
                            .not_null()
                            .unique_key()
                            .to_owned(),
                    ))
                    .col(super::m20261203_000011_scim_identities::bytewise(
                        backend,
                        ColumnDef::new(ScimGroups::ExternalId).string_len(255).null().to_owned(),
                    ))
                    .col(ColumnDef::new(ScimGroups::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(ScimGroups::UpdatedAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ScimGroupMembers::Table)
                    .col(ColumnDef::new(ScimGroupMembers::GroupId).string_len(36).not_null())
                    .col(ColumnDef::new(ScimGroupMembers::UserId).string_len(36).not_null())
                    .primary_key(
                        Index::create()
                            .col(ScimGroupMembers::GroupId)
                            .col(ScimGroupMembers::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_scim_group_members_group")
                            .from(ScimGroupMembers::Table, ScimGroupMembers::GroupId)
                            .to(ScimGroups::Table, ScimGroups::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_scim_group_members_user")
                            .from(ScimGroupMembers::Table, ScimGroupMembers::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_scim_group_members_user")
                    .table(ScimGroupMembers::Table)
                    .col(ScimGroupMembers::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ScimGroupMembers::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(ScimGroups::Table).to_owned()).await
    }
}
