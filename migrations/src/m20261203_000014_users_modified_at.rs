//! When each user last changed as SCIM shows them (`meta.lastModified`):
//! any change of address, name, department, role or status, or of their
//! link to the identity provider. A sign-in or a new password is no change
//! of the resource. Existing users take the latest time their rows record.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    ModifiedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(
                        ColumnDef::new(Users::ModifiedAt).big_integer().not_null().default(0),
                    )
                    .to_owned(),
            )
            .await?;
        // Portable over the three databases (no GREATEST in SQLite, and
        // MariaDB's answers NULL when one argument is).
        let db = manager.get_connection();
        for statement in [
            "UPDATE users SET modified_at = created_at",
            "UPDATE users SET modified_at = activated_at WHERE activated_at > modified_at",
            "UPDATE users SET modified_at = deactivated_at WHERE deactivated_at > modified_at",
        ] {
            db.execute_unprepared(statement).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_users_modified_at")
                    .table(Users::Table)
                    .col(Users::ModifiedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("idx_users_modified_at").table(Users::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter().table(Users::Table).drop_column(Users::ModifiedAt).to_owned(),
            )
            .await
    }
}
