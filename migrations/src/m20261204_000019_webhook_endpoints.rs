//! Webhook endpoints (issue 24): where security events go, what each
//! receives (event names, space-separated), its signing secret sealed with
//! the operator key, and whether deliveries stopped (when, why).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
    Url,
    Events,
    Secret,
    CreatedAt,
    CreatedBy,
    DisabledAt,
    DisabledReason,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpoints::Table)
                    .col(
                        ColumnDef::new(WebhookEndpoints::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(WebhookEndpoints::Url).text().not_null())
                    .col(ColumnDef::new(WebhookEndpoints::Events).text().not_null())
                    .col(ColumnDef::new(WebhookEndpoints::Secret).text().not_null())
                    .col(ColumnDef::new(WebhookEndpoints::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(WebhookEndpoints::CreatedBy).string_len(36).null())
                    .col(ColumnDef::new(WebhookEndpoints::DisabledAt).big_integer().null())
                    .col(ColumnDef::new(WebhookEndpoints::DisabledReason).string_len(255).null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(WebhookEndpoints::Table).to_owned()).await
    }
}
