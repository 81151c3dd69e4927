//! Dashboards over any range in time independent of its length:
//!
//! - `usage_user_totals` replaces `usage_user_days`: one row per user and
//!   day they were active, holding the user's totals from their first
//!   event to the end of that day. A user's usage over a range is then the
//!   difference of two rows (the last on or before its end, the last before
//!   its start) instead of a sum over every day of it. Clustered by (user,
//!   day) on SQLite.
//! - `usage_users`: every user with usage — the users a ranking goes
//!   through — with their last running totals (their last active day's
//!   row), so a range ending on or after that day needs no lookup for its
//!   end.
//! - `active_counts`: how many users were active in each day, week and
//!   month, kept with the `active_users` rows they count.
//!
//! Existing aggregates are carried over (running sums by window function).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, integer, string_len};
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UsageUserTotals {
    Table,
    UserId,
    Day,
}

#[derive(DeriveIden)]
enum UsageUsers {
    Table,
    UserId,
    LastDay,
}

#[derive(DeriveIden)]
enum ActiveCounts {
    Table,
    Period,
    StartDay,
    Users,
}

#[derive(DeriveIden)]
enum UsageUserDays {
    Table,
    Day,
    UserId,
}

#[derive(DeriveIden)]
enum Sums {
    Events,
    InputTokens,
    OutputTokens,
    Conversations,
}

const SUMS: [&str; 4] = ["events", "input_tokens", "output_tokens", "conversations"];

fn with_sums(table: &mut TableCreateStatement) -> &mut TableCreateStatement {
    table
        .col(big_integer(Sums::Events))
        .col(big_integer(Sums::InputTokens))
        .col(big_integer(Sums::OutputTokens))
        .col(big_integer(Sums::Conversations))
}

/// Creates `table`, clustered by its primary key on SQLite.
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

/// A window sum as a BIGINT on every database.
fn running(backend: DbBackend, column: &str) -> String {
    let sum = format!("SUM({column}) OVER (PARTITION BY user_id ORDER BY day)");
    match backend {
        DbBackend::Postgres => format!("CAST({sum} AS BIGINT)"),
        DbBackend::MySql => format!("CAST({sum} AS SIGNED)"),
        _ => sum,
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection();
        create_clustered(
            manager,
            with_sums(
                Table::create()
                    .table(UsageUserTotals::Table)
                    .col(string_len(UsageUserTotals::UserId, 36))
                    .col(integer(UsageUserTotals::Day)),
            )
            .primary_key(Index::create().col(UsageUserTotals::UserId).col(UsageUserTotals::Day))
            .to_owned(),
        )
        .await?;
        manager
            .create_table(
                with_sums(
                    Table::create()
                        .table(UsageUsers::Table)
                        .col(string_len(UsageUsers::UserId, 36).primary_key())
                        .col(integer(UsageUsers::LastDay)),
                )
                .to_owned(),
            )
            .await?;
        create_clustered(
            manager,
            Table::create()
                .table(ActiveCounts::Table)
                .col(string_len(ActiveCounts::Period, 5))
                .col(integer(ActiveCounts::StartDay))
                .col(big_integer(ActiveCounts::Users))
                .primary_key(Index::create().col(ActiveCounts::Period).col(ActiveCounts::StartDay))
                .to_owned(),
        )
        .await?;
        let columns = SUMS.join(", ");
        let sums: Vec<String> =
            SUMS.iter().map(|c| format!("{} AS {c}", running(backend, c))).collect();
        db.execute_unprepared(&format!(
            "INSERT INTO usage_user_totals (user_id, day, {columns}) \
             SELECT user_id, day, {} FROM usage_user_days",
            sums.join(", ")
        ))
        .await?;
        db.execute_unprepared(&format!(
            "INSERT INTO usage_users (user_id, last_day, {columns}) \
             SELECT t.user_id, t.day, {columns} FROM usage_user_totals t \
             WHERE t.day = (SELECT MAX(m.day) FROM usage_user_totals m WHERE m.user_id = t.user_id)"
        ))
        .await?;
        db.execute_unprepared(
            "INSERT INTO active_counts (period, start_day, users) \
             SELECT period, start_day, COUNT(*) FROM active_users GROUP BY period, start_day",
        )
        .await?;
        manager.drop_table(Table::drop().table(UsageUserDays::Table).to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
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
        let columns = SUMS.join(", ");
        let days: Vec<String> = SUMS
            .iter()
            .map(|c| {
                let earlier =
                    format!("COALESCE(LAG({c}) OVER (PARTITION BY user_id ORDER BY day), 0)");
                match backend {
                    DbBackend::MySql => format!("CAST({c} - {earlier} AS SIGNED)"),
                    _ => format!("{c} - {earlier}"),
                }
            })
            .collect();
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "INSERT INTO usage_user_days (day, user_id, {columns}) \
                 SELECT day, user_id, {} FROM usage_user_totals",
                days.join(", ")
            ))
            .await?;
        for table in [
            ActiveCounts::Table.into_iden(),
            UsageUsers::Table.into_iden(),
            UsageUserTotals::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
