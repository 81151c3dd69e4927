//! The users list's "Invitation expired" filter reads pending invitations
//! by expiry: an index `(state, expires_at, user_id)` makes that a range
//! read instead of a scan of every invitation ever sent.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Invitations {
    Table,
    State,
    ExpiresAt,
    UserId,
}

const INDEX: &str = "ix_invitations_state_expiry";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Invitations::Table)
                    .col(Invitations::State)
                    .col(Invitations::ExpiresAt)
                    .col(Invitations::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(INDEX).table(Invitations::Table).to_owned()).await
    }
}
