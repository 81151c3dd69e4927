//! Release 0.2 (with 000002): bulk imports — one row per import (who, file, counts) and
//! its row reports (line, email as written, outcome, problems) for paging
//! and the skipped-rows CSV.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, string_len, string_len_null, text, text_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Imports {
    Table,
    Id,
    At,
    ActorEmail,
    FileName,
    Mode,
    Rows,
    Valid,
    Skipped,
    Warnings,
    Finished,
}

#[derive(DeriveIden)]
enum ImportRows {
    Table,
    ImportId,
    Line,
    Email,
    Outcome,
    UserId,
    Problems,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Imports::Table)
                    .col(string_len(Imports::Id, 36).primary_key())
                    .col(big_integer(Imports::At))
                    .col(string_len_null(Imports::ActorEmail, 254))
                    .col(string_len(Imports::FileName, 255))
                    .col(string_len(Imports::Mode, 16))
                    .col(big_integer(Imports::Rows))
                    .col(big_integer(Imports::Valid))
                    .col(big_integer(Imports::Skipped))
                    .col(text(Imports::Warnings))
                    .col(boolean(Imports::Finished))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ImportRows::Table)
                    .col(string_len(ImportRows::ImportId, 36))
                    .col(big_integer(ImportRows::Line))
                    .col(text(ImportRows::Email))
                    .col(string_len(ImportRows::Outcome, 16))
                    .col(string_len_null(ImportRows::UserId, 36))
                    .col(text_null(ImportRows::Problems))
                    .primary_key(Index::create().col(ImportRows::ImportId).col(ImportRows::Line))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ImportRows::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Imports::Table).to_owned()).await
    }
}
