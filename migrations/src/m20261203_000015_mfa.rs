//! Second factors (issue 23): a user's authenticator app (its secret
//! sealed with the operator key, pending until confirmed, and the last
//! time step accepted), their recovery codes (SHA-256 digests, each used
//! once), and password sign-ins waiting for their second factor (under the
//! digest of their token, for five minutes).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MfaTotp {
    Table,
    UserId,
    Secret,
    CreatedAt,
    ConfirmedAt,
    LastStep,
}

#[derive(DeriveIden)]
enum MfaRecoveryCodes {
    Table,
    UserId,
    Digest,
    UsedAt,
}

#[derive(DeriveIden)]
enum MfaSignIns {
    Table,
    TokenHash,
    UserId,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MfaTotp::Table)
                    .col(ColumnDef::new(MfaTotp::UserId).string_len(36).not_null().primary_key())
                    .col(ColumnDef::new(MfaTotp::Secret).string_len(400).not_null())
                    .col(ColumnDef::new(MfaTotp::CreatedAt).big_integer().not_null())
                    .col(ColumnDef::new(MfaTotp::ConfirmedAt).big_integer().null())
                    .col(ColumnDef::new(MfaTotp::LastStep).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MfaRecoveryCodes::Table)
                    .col(ColumnDef::new(MfaRecoveryCodes::UserId).string_len(36).not_null())
                    .col(ColumnDef::new(MfaRecoveryCodes::Digest).string_len(64).not_null())
                    .col(ColumnDef::new(MfaRecoveryCodes::UsedAt).big_integer().null())
                    .primary_key(
                        Index::create().col(MfaRecoveryCodes::UserId).col(MfaRecoveryCodes::Digest),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MfaSignIns::Table)
                    .col(
                        ColumnDef::new(MfaSignIns::TokenHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(MfaSignIns::UserId).string_len(36).not_null())
                    .col(ColumnDef::new(MfaSignIns::ExpiresAt).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_sign_ins_expires_at")
                    .table(MfaSignIns::Table)
                    .col(MfaSignIns::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(MfaSignIns::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(MfaRecoveryCodes::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(MfaTotp::Table).to_owned()).await
    }
}
