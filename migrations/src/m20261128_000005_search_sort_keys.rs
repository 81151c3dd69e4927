//! Search terms carry what a search is sorted and filtered by (role,
//! status, department, created, name, email, last sign-in), clustered by
//! (term, user): a word matching thousands of users is answered from its
//! own index range, sorted there, and only the users shown are read.
//!
//! The table is rebuilt (SQLite cannot change a primary key): clustered
//! `WITHOUT ROWID` on SQLite, InnoDB's clustered primary key on MySQL, a
//! primary key index `INCLUDE`-ing the other columns on PostgreSQL (index-
//! only scans). Existing terms are copied with their user's values.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, string_len, string_len_null};
use sea_orm_migration::sea_orm::{DbBackend, TransactionTrait};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UserSearchTerms {
    Table,
    Term,
    UserId,
}

#[derive(DeriveIden)]
enum UserSearchIndex {
    Table,
    Term,
    UserId,
    Role,
    Status,
    Department,
    CreatedAt,
    NameKey,
    EmailKey,
    LastLoginAt,
}

const CARRIED: &str = "role, status, department, created_at, name_key, email_key, last_login_at";

fn bytewise(backend: DbBackend, mut def: ColumnDef) -> ColumnDef {
    match backend {
        DbBackend::MySql => def.extra("COLLATE utf8mb4_bin").to_owned(),
        DbBackend::Postgres => def.extra("COLLATE \"C\"").to_owned(),
        _ => def,
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        // One connection throughout: on SQLite the migrator runs statements
        // on any pooled connection, and one still reading the old table
        // would not see it dropped.
        let db = manager.get_connection().begin().await?;
        let mut create = Table::create()
            .table(UserSearchIndex::Table)
            .col(bytewise(backend, string_len(UserSearchIndex::Term, 254)))
            .col(string_len(UserSearchIndex::UserId, 36))
            .col(string_len(UserSearchIndex::Role, 16))
            .col(string_len(UserSearchIndex::Status, 16))
            .col(string_len_null(UserSearchIndex::Department, 100))
            .col(big_integer(UserSearchIndex::CreatedAt))
            .col(bytewise(backend, string_len(UserSearchIndex::NameKey, 200)))
            .col(bytewise(backend, string_len(UserSearchIndex::EmailKey, 254)))
            .col(big_integer(UserSearchIndex::LastLoginAt))
            .to_owned();
        match backend {
            DbBackend::Sqlite => {
                create.primary_key(
                    Index::create().col(UserSearchIndex::Term).col(UserSearchIndex::UserId),
                );
                let sql = format!("{} WITHOUT ROWID", create.to_string(SqliteQueryBuilder));
                db.execute_unprepared(&sql).await?;
            }
            DbBackend::Postgres => {
                db.execute(&create).await?;
                db.execute_unprepared(&format!(
                    "ALTER TABLE user_search_index ADD PRIMARY KEY (term, user_id) \
                     INCLUDE ({CARRIED})"
                ))
                .await?;
            }
            _ => {
                create.primary_key(
                    Index::create().col(UserSearchIndex::Term).col(UserSearchIndex::UserId),
                );
                db.execute(&create).await?;
            }
        }
        db.execute_unprepared(&format!(
            "INSERT INTO user_search_index (term, user_id, {CARRIED}) \
             SELECT t.term, t.user_id, u.role, u.status, u.department, u.created_at, \
             u.name_key, u.email_key, u.last_login_at \
             FROM user_search_terms t JOIN users u ON u.id = t.user_id"
        ))
        .await?;
        replace_terms_table(&db).await?;
        db.commit().await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection().begin().await?;
        db.execute(
            &Table::create()
                .table(UserSearchIndex::Table)
                .col(bytewise(backend, string_len(UserSearchIndex::Term, 254)))
                .col(string_len(UserSearchIndex::UserId, 36))
                .primary_key(
                    Index::create().col(UserSearchIndex::Term).col(UserSearchIndex::UserId),
                )
                .to_owned(),
        )
        .await?;
        db.execute_unprepared(
            "INSERT INTO user_search_index (term, user_id) \
             SELECT term, user_id FROM user_search_terms",
        )
        .await?;
        replace_terms_table(&db).await?;
        db.commit().await
    }
}

/// Drops the old terms table and puts `user_search_index` in its place.
async fn replace_terms_table(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    db.execute(&Table::drop().table(UserSearchTerms::Table).to_owned()).await?;
    db.execute(&Table::rename().table(UserSearchIndex::Table, UserSearchTerms::Table).to_owned())
        .await?;
    db.execute(
        &Index::create()
            .name("ix_user_search_terms_user")
            .table(UserSearchTerms::Table)
            .col(UserSearchTerms::UserId)
            .col(UserSearchTerms::Term)
            .to_owned(),
    )
    .await?;
    Ok(())
}
