//! SCIM provisioning: the requests the server refused, for Settings ›
//! Provisioning (the newest 100 are kept).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ScimFailures {
    Table,
    Id,
    At,
    Method,
    Path,
    Status,
    Detail,
    Token,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ScimFailures::Table)
                    .col(ColumnDef::new(ScimFailures::Id).string_len(36).not_null().primary_key())
                    .col(ColumnDef::new(ScimFailures::At).big_integer().not_null())
                    .col(ColumnDef::new(ScimFailures::Method).string_len(10).not_null())
                    .col(ColumnDef::new(ScimFailures::Path).string_len(200).not_null())
                    .col(ColumnDef::new(ScimFailures::Status).integer().not_null())
                    .col(ColumnDef::new(ScimFailures::Detail).string_len(500).not_null())
                    .col(ColumnDef::new(ScimFailures::Token).string_len(100).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_scim_failures_at")
                    .table(ScimFailures::Table)
                    .col(ScimFailures::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ScimFailures::Table).to_owned()).await
    }
}
