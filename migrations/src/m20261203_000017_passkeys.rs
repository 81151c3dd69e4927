//! Passkeys (issue 23): each user's registered WebAuthn credentials (the
//! public key and counter as the adapter keeps them — no secret — and the
//! SHA-256 of the credential id, unique, as MariaDB indexes no long text),
//! and the ceremonies waiting for the browser's answer (under the digest of
//! the token the client holds, for five minutes).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MfaPasskeys {
    Table,
    Id,
    UserId,
    Name,
    CredentialDigest,
    CredentialId,
    Credential,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum MfaCeremonies {
    Table,
    KeyHash,
    UserId,
    Purpose,
    State,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MfaPasskeys::Table)
                    .col(ColumnDef::new(MfaPasskeys::Id).string_len(36).not_null().primary_key())
                    .col(ColumnDef::new(MfaPasskeys::UserId).string_len(36).not_null())
                    .col(ColumnDef::new(MfaPasskeys::Name).string_len(255).not_null())
                    .col(ColumnDef::new(MfaPasskeys::CredentialDigest).string_len(64).not_null())
                    .col(ColumnDef::new(MfaPasskeys::CredentialId).text().not_null())
                    .col(ColumnDef::new(MfaPasskeys::Credential).text().not_null())
                    .col(ColumnDef::new(MfaPasskeys::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(MfaPasskeys::LastUsedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_passkeys_credential")
                    .table(MfaPasskeys::Table)
                    .col(MfaPasskeys::CredentialDigest)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_passkeys_user")
                    .table(MfaPasskeys::Table)
                    .col(MfaPasskeys::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MfaCeremonies::Table)
                    .col(
                        ColumnDef::new(MfaCeremonies::KeyHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(MfaCeremonies::UserId).string_len(36).not_null())
                    .col(ColumnDef::new(MfaCeremonies::Purpose).string_len(16).not_null())
                    .col(ColumnDef::new(MfaCeremonies::State).text().not_null())
                    .col(ColumnDef::new(MfaCeremonies::ExpiresAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_ceremonies_expires_at")
                    .table(MfaCeremonies::Table)
                    .col(MfaCeremonies::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(MfaCeremonies::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(MfaPasskeys::Table).to_owned()).await
    }
}
