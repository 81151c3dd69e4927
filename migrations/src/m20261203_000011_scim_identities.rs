//! SCIM provisioning: each provisioned user's link to the identity
//! provider's record (its `externalId`, and when a SCIM `DELETE` detached
//! it), and audit events by a service token (its id and name).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Keys compared byte for byte, as `users.email_key` is (migration 1):
/// MariaDB's default collation would take `josé` for `jose`.
pub(crate) fn bytewise(
    backend: sea_orm_migration::sea_orm::DbBackend,
    mut def: ColumnDef,
) -> ColumnDef {
    use sea_orm_migration::sea_orm::DbBackend;
    match backend {
        DbBackend::MySql => def.extra("COLLATE utf8mb4_bin").to_owned(),
        DbBackend::Postgres => def.extra("COLLATE \"C\"").to_owned(),
        _ => def,
    }
}

#[derive(DeriveIden)]
enum ScimIdentities {
    Table,
    UserId,
    ExternalId,
    UserName,
    UserNameKey,
    DetachedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    ActorTokenId,
    ActorTokenName,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(ScimIdentities::Table)
                    .col(
                        ColumnDef::new(ScimIdentities::UserId)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    // RFC 7643 §3.1: case-exact, set by the client.
                    .col(bytewise(
                        backend,
                        ColumnDef::new(ScimIdentities::ExternalId)
                            .string_len(255)
                            .null()
                            .to_owned(),
                    ))
                    // `userName` as sent, when it is not the address itself
                    // (some directories send an account name); unique in
                    // any letter case, by its lowercase key.
                    .col(ColumnDef::new(ScimIdentities::UserName).string_len(254).null())
                    .col(bytewise(
                        backend,
                        ColumnDef::new(ScimIdentities::UserNameKey)
                            .string_len(254)
                            .null()
                            .to_owned(),
                    ))
                    .col(ColumnDef::new(ScimIdentities::DetachedAt).big_integer().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_scim_identities_user")
                            .from(ScimIdentities::Table, ScimIdentities::UserId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_scim_identities_external_id")
                    .table(ScimIdentities::Table)
                    .col(ScimIdentities::ExternalId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_scim_identities_user_name_key")
                    .table(ScimIdentities::Table)
                    .col(ScimIdentities::UserNameKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // One column per statement: SQLite alters one at a time.
        for (column, len) in [(AuditEvents::ActorTokenId, 36), (AuditEvents::ActorTokenName, 200)] {
            manager
                .alter_table(
                    Table::alter()
                        .table(AuditEvents::Table)
                        .add_column(ColumnDef::new(column).string_len(len).null())
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [AuditEvents::ActorTokenId, AuditEvents::ActorTokenName] {
            manager
                .alter_table(
                    Table::alter().table(AuditEvents::Table).drop_column(column).to_owned(),
                )
                .await?;
        }
        manager.drop_table(Table::drop().table(ScimIdentities::Table).to_owned()).await
    }
}
