//! Replacing an index, shared by the migrations that widen or narrow one.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Drops index `name` of `table` and creates `index` in its place, on one
/// connection (SQLite and MySQL run migrations outside transactions, on any
/// connection of the pool).
pub(crate) async fn replace_index(
    manager: &SchemaManager<'_>,
    table: &str,
    name: &str,
    index: &IndexCreateStatement,
) -> Result<(), DbErr> {
    let drop = match manager.get_database_backend() {
        DbBackend::MySql => format!("DROP INDEX {name} ON {table}"),
        _ => format!("DROP INDEX {name}"),
    };
    let txn = manager.begin().await?;
    let db = txn.get_connection();
    db.execute_unprepared(&drop).await?;
    db.execute(index).await?;
    txn.commit().await
}
