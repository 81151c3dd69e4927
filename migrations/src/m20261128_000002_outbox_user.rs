//! Release 0.2: each outbox message records the user it is about, so the
//! profile can say whether their invitation email was delivered. Messages
//! queued by release 0.1 keep no user (`NULL`) and are delivered as before.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::string_len_null;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    UserId,
    Kind,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(string_len_null(Outbox::UserId, 36))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_outbox_user")
                    .table(Outbox::Table)
                    .col(Outbox::UserId)
                    .col(Outbox::Kind)
                    .col(Outbox::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name("ix_outbox_user").table(Outbox::Table).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(Outbox::Table).drop_column(Outbox::UserId).to_owned())
            .await
    }
}
