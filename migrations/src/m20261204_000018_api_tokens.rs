//! Personal API tokens (issue 24): an admin's tokens, kept as the SHA-256
//! digest of their secret (unique), with scopes (names, space-separated),
//! expiry, last use (time and address) and revocation.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    UserId,
    Name,
    TokenHash,
    Scopes,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
    LastUsedIp,
    RevokedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .col(ColumnDef::new(ApiTokens::Id).string_len(36).not_null().primary_key())
                    .col(ColumnDef::new(ApiTokens::UserId).string_len(36).not_null())
                    .col(ColumnDef::new(ApiTokens::Name).string_len(255).not_null())
                    .col(ColumnDef::new(ApiTokens::TokenHash).string_len(64).not_null())
                    .col(ColumnDef::new(ApiTokens::Scopes).string_len(255).not_null())
                    .col(ColumnDef::new(ApiTokens::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(ApiTokens::ExpiresAt).big_integer().not_null())
                    .col(ColumnDef::new(ApiTokens::LastUsedAt).big_integer().null())
                    .col(ColumnDef::new(ApiTokens::LastUsedIp).string_len(64).null())
                    .col(ColumnDef::new(ApiTokens::RevokedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_tokens_hash")
                    .table(ApiTokens::Table)
                    .col(ApiTokens::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_api_tokens_user")
                    .table(ApiTokens::Table)
                    .col(ApiTokens::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ApiTokens::Table).to_owned()).await
    }
}
