//! Release 0.2 (with 000002 and 000003): single sign-on — sign-ins in flight (what the identity
//! provider's answer must match), links from a provider's subject to a
//! user, and the one-time assertions already seen (replay defence).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, string_len, text};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SsoLogins {
    Table,
    Key,
    Protocol,
    Data,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum SsoLinks {
    Table,
    Key,
    Issuer,
    Subject,
    UserId,
    LinkedAt,
}

#[derive(DeriveIden)]
enum SsoAssertions {
    Table,
    Key,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SsoLogins::Table)
                    .col(string_len(SsoLogins::Key, 64).primary_key())
                    .col(string_len(SsoLogins::Protocol, 8))
                    .col(text(SsoLogins::Data))
                    .col(big_integer(SsoLogins::CreatedAt))
                    .col(big_integer(SsoLogins::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_sso_logins_expiry")
                    .table(SsoLogins::Table)
                    .col(SsoLogins::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        // The key is the SHA-256 of issuer and subject: both can be long
        // URLs, and a fixed-width key indexes the same on every database.
        manager
            .create_table(
                Table::create()
                    .table(SsoLinks::Table)
                    .col(string_len(SsoLinks::Key, 64).primary_key())
                    .col(text(SsoLinks::Issuer))
                    .col(text(SsoLinks::Subject))
                    .col(string_len(SsoLinks::UserId, 36))
                    .col(big_integer(SsoLinks::LinkedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_sso_links_user")
                    .table(SsoLinks::Table)
                    .col(SsoLinks::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SsoAssertions::Table)
                    .col(string_len(SsoAssertions::Key, 64).primary_key())
                    .col(big_integer(SsoAssertions::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_sso_assertions_expiry")
                    .table(SsoAssertions::Table)
                    .col(SsoAssertions::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SsoAssertions::Table.into_iden(),
            SsoLinks::Table.into_iden(),
            SsoLogins::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
