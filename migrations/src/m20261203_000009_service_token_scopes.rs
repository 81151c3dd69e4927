//! Service tokens gain scopes: what each opens (`usage` reporting, `scim`
//! provisioning), space-separated. Tokens made before open what they always
//! did: `usage`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ServiceTokens {
    Table,
    Scopes,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ServiceTokens::Table)
                    .add_column(
                        ColumnDef::new(ServiceTokens::Scopes)
                            .string_len(100)
                            .not_null()
                            .default("usage"),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ServiceTokens::Table)
                    .drop_column(ServiceTokens::Scopes)
                    .to_owned(),
            )
            .await
    }
}
