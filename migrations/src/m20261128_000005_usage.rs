//! Usage analytics: service tokens, raw usage events (kept for the
//! retention period), conversations' first events, and the aggregates the
//! dashboards read (kept): per user-day-model, per user-day, per
//! model-day, and active users per day, week and month.
//!
//! Days are whole UTC days counted from 1970-01-01.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, integer, string_len, string_len_null,
};
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ServiceTokens {
    Table,
    Id,
    Name,
    TokenHash,
    CreatedBy,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum UsageEvents {
    Table,
    EventId,
    UserId,
    ConversationId,
    Model,
    Provider,
    InputTokens,
    OutputTokens,
    OccurredAt,
}

#[derive(DeriveIden)]
enum UsageConversations {
    Table,
    UserId,
    ConversationId,
    LastAt,
}

#[derive(DeriveIden)]
enum UsageDaily {
    Table,
    UserId,
    Day,
    Model,
    Provider,
    LastAt,
}

#[derive(DeriveIden)]
enum UsageUserDays {
    Table,
    Day,
    UserId,
}

#[derive(DeriveIden)]
enum UsageModelDays {
    Table,
    Day,
    Model,
    Provider,
}

#[derive(DeriveIden)]
enum ActiveUsers {
    Table,
    Period,
    StartDay,
    UserId,
}

#[derive(DeriveIden)]
enum Sums {
    Events,
    InputTokens,
    OutputTokens,
    Conversations,
}

fn bytewise(backend: DbBackend, mut def: ColumnDef) -> ColumnDef {
    match backend {
        DbBackend::MySql => def.extra("COLLATE utf8mb4_bin").to_owned(),
        DbBackend::Postgres => def.extra("COLLATE \"C\"").to_owned(),
        _ => def,
    }
}

/// The four sums every aggregate row carries.
fn with_sums(table: &mut TableCreateStatement) -> &mut TableCreateStatement {
    table
        .col(big_integer(Sums::Events))
        .col(big_integer(Sums::InputTokens))
        .col(big_integer(Sums::OutputTokens))
        .col(big_integer(Sums::Conversations))
}

/// Creates `table`; on SQLite clustered by its primary key (`WITHOUT
/// ROWID`), so a dashboard's range over the key reads consecutive rows
/// instead of one table lookup per index entry.
async fn create_clustered(
    manager: &SchemaManager<'_>,
    table: TableCreateStatement,
) -> Result<(), DbErr> {
    if manager.get_database_backend() == DbBackend::Sqlite {
        let sql = format!("{} WITHOUT ROWID", table.to_string(SqliteQueryBuilder));
        manager.get_connection().execute_unprepared(&sql).await?;
        Ok(())
    } else {
        manager.create_table(table).await
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(ServiceTokens::Table)
                    .col(string_len(ServiceTokens::Id, 36).primary_key())
                    .col(string_len(ServiceTokens::Name, 100))
                    .col(string_len(ServiceTokens::TokenHash, 64))
                    .col(string_len_null(ServiceTokens::CreatedBy, 36))
                    .col(big_integer(ServiceTokens::CreatedAt))
                    .col(big_integer_null(ServiceTokens::LastUsedAt))
                    .col(big_integer_null(ServiceTokens::RevokedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_service_tokens_hash")
                    .table(ServiceTokens::Table)
                    .col(ServiceTokens::TokenHash)
                    .unique()
                    .to_owned(),
            )
            .await?;

        // Raw events: the id is the sender's idempotency key (case matters).
        manager
            .create_table(
                Table::create()
                    .table(UsageEvents::Table)
                    .col(bytewise(backend, string_len(UsageEvents::EventId, 128)).primary_key())
                    .col(string_len(UsageEvents::UserId, 36))
                    .col(bytewise(backend, string_len(UsageEvents::ConversationId, 128)))
                    .col(bytewise(backend, string_len(UsageEvents::Model, 100)))
                    .col(bytewise(backend, string_len(UsageEvents::Provider, 100)))
                    .col(big_integer(UsageEvents::InputTokens))
                    .col(big_integer(UsageEvents::OutputTokens))
                    .col(big_integer(UsageEvents::OccurredAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_usage_events_occurred")
                    .table(UsageEvents::Table)
                    .col(UsageEvents::OccurredAt)
                    .to_owned(),
            )
            .await?;

        create_clustered(
            manager,
            Table::create()
                .table(UsageConversations::Table)
                .col(string_len(UsageConversations::UserId, 36))
                .col(bytewise(backend, string_len(UsageConversations::ConversationId, 128)))
                .col(big_integer(UsageConversations::LastAt))
                .primary_key(
                    Index::create()
                        .col(UsageConversations::UserId)
                        .col(UsageConversations::ConversationId),
                )
                .to_owned(),
        )
        .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_usage_conversations_last")
                    .table(UsageConversations::Table)
                    .col(UsageConversations::LastAt)
                    .to_owned(),
            )
            .await?;

        // Per user, day and model: a user's activity (their profile).
        create_clustered(
            manager,
            with_sums(
                Table::create()
                    .table(UsageDaily::Table)
                    .col(string_len(UsageDaily::UserId, 36))
                    .col(integer(UsageDaily::Day))
                    .col(bytewise(backend, string_len(UsageDaily::Model, 100)))
                    .col(bytewise(backend, string_len(UsageDaily::Provider, 100)))
                    .col(big_integer(UsageDaily::LastAt)),
            )
            .primary_key(
                Index::create()
                    .col(UsageDaily::UserId)
                    .col(UsageDaily::Day)
                    .col(UsageDaily::Model)
                    .col(UsageDaily::Provider),
            )
            .to_owned(),
        )
        .await?;
        // Per day and user: top users over a range.
        create_clustered(
            manager,
            with_sums(
                Table::create()
                    .table(UsageUserDays::Table)
                    .col(integer(UsageUserDays::Day))
                    .col(string_len(UsageUserDays::UserId, 36)),
            )
            .primary_key(Index::create().col(UsageUserDays::Day).col(UsageUserDays::UserId))
            .to_owned(),
        )
        .await?;
        // Per day and model: usage by day and by model.
        create_clustered(
            manager,
            with_sums(
                Table::create()
                    .table(UsageModelDays::Table)
                    .col(integer(UsageModelDays::Day))
                    .col(bytewise(backend, string_len(UsageModelDays::Model, 100)))
                    .col(bytewise(backend, string_len(UsageModelDays::Provider, 100))),
            )
            .primary_key(
                Index::create()
                    .col(UsageModelDays::Day)
                    .col(UsageModelDays::Model)
                    .col(UsageModelDays::Provider),
            )
            .to_owned(),
        )
        .await?;
        // One row per user active in a period (`day`, `week`, `month`).
        manager
            .create_table(
                Table::create()
                    .table(ActiveUsers::Table)
                    .col(string_len(ActiveUsers::Period, 5))
                    .col(integer(ActiveUsers::StartDay))
                    .col(string_len(ActiveUsers::UserId, 36))
                    .primary_key(
                        Index::create()
                            .col(ActiveUsers::Period)
                            .col(ActiveUsers::StartDay)
                            .col(ActiveUsers::UserId),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ActiveUsers::Table.into_iden(),
            UsageModelDays::Table.into_iden(),
            UsageUserDays::Table.into_iden(),
            UsageDaily::Table.into_iden(),
            UsageConversations::Table.into_iden(),
            UsageEvents::Table.into_iden(),
            ServiceTokens::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
