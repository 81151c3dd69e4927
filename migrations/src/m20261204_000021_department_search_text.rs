//! On SQLite, the department index ends with the search text, as the
//! created, name and last-sign-in indexes do since migration 7: a search
//! within a department walks the department's users in creation order and
//! tests each one's text, and now reads it from the index instead of
//! fetching every row walked (a first name within a department, 1,000,000
//! users: 15 ms → 3–5 ms for the walk in the sqlite3 shell). PostgreSQL and
//! MariaDB keep the narrow index: they test the row, as for every walk.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "ix_users_department";

async fn replace(manager: &SchemaManager<'_>, columns: &[&str]) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Sqlite {
        return Ok(());
    }
    let mut index = Index::create();
    index.name(INDEX).table(Alias::new("users"));
    for column in columns {
        index.col(Alias::new(*column));
    }
    crate::indexes::replace_index(manager, "users", INDEX, &index).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace(manager, &["department", "created_at", "id", "search_text"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace(manager, &["department", "created_at", "id"]).await
    }
}
