//! Broad searches read their words beside the sort keys:
//!
//! - `users.search_text`: the user's search terms in one string, each
//!   preceded by a space (` ada.love@example.com example.com ada love`),
//!   so "a term starts with `w`" is "the text contains ` w`". A search
//!   whose words match thousands of users walks users in the requested
//!   order and tests this column instead of probing the terms table for
//!   every user walked.
//! - On SQLite the created, name and last-sign-in indexes carry the text
//!   as a last column, so that walk reads only the index and fetches just
//!   the rows it returns. (PostgreSQL and MySQL cap index entry sizes; there
//!   the column is read from the row.)
//! - A user's whole-name term (`ada love`) is dropped: query words hold no
//!   spaces, so a word starts the whole name exactly when it starts its
//!   first word, which is a term of its own. Fewer rows to write and count.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    SearchText,
}

/// The sort indexes rebuilt on SQLite: name and leading columns.
const SORT_INDEXES: [(&str, &str); 3] = [
    ("ix_users_created", "created_at, id"),
    ("ix_users_name", "name_key, id"),
    ("ix_users_last_login", "last_login_at, id"),
];

/// Longest text: an email (254), its domain (< 254) and name words (< 200
/// characters in all), with their separating spaces.
const SEARCH_TEXT_LEN: u32 = 1024;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let mut column = ColumnDef::new(Users::SearchText);
        column.string_len(SEARCH_TEXT_LEN).not_null().default("");
        // Compared as bytes, as the terms are (migration 1's `bytewise`).
        match backend {
            DbBackend::MySql => column.extra("COLLATE utf8mb4_bin"),
            DbBackend::Postgres => column.extra("COLLATE \"C\""),
            _ => &mut column,
        };
        manager
            .alter_table(Table::alter().table(Users::Table).add_column(column).to_owned())
            .await?;
        // One transaction, so one connection: SQLite and MySQL run
        // migrations outside transactions, on any connection of the pool.
        let txn = manager.begin().await?;
        let db = txn.get_connection();
        db.execute_unprepared("DELETE FROM user_search_terms WHERE term LIKE '% %'").await?;
        match backend {
            DbBackend::MySql => {
                // GROUP_CONCAT stops at `group_concat_max_len` (1024 bytes by
                // default): raise it for this connection.
                db.execute_unprepared("SET SESSION group_concat_max_len = 65536").await?;
                db.execute_unprepared(
                    "UPDATE users SET search_text = COALESCE((SELECT CONCAT(' ', \
                     GROUP_CONCAT(t.term ORDER BY t.term SEPARATOR ' ')) FROM user_search_terms t \
                     WHERE t.user_id = users.id), '')",
                )
                .await?;
            }
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "UPDATE users SET search_text = COALESCE((SELECT ' ' || \
                     string_agg(t.term, ' ' ORDER BY t.term) FROM user_search_terms t \
                     WHERE t.user_id = users.id), '')",
                )
                .await?;
            }
            _ => {
                db.execute_unprepared(
                    "UPDATE users SET search_text = COALESCE((SELECT ' ' || \
                     group_concat(t.term, ' ' ORDER BY t.term) FROM user_search_terms t \
                     WHERE t.user_id = users.id), '')",
                )
                .await?;
                for (name, columns) in SORT_INDEXES {
                    db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
                    db.execute_unprepared(&format!(
                        "CREATE INDEX {name} ON users ({columns}, search_text)"
                    ))
                    .await?;
                }
            }
        }
        txn.commit().await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let txn = manager.begin().await?;
        let db = txn.get_connection();
        if backend == DbBackend::Sqlite {
            for (name, columns) in SORT_INDEXES {
                db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
                db.execute_unprepared(&format!("CREATE INDEX {name} ON users ({columns})")).await?;
            }
        }
        // Whole names with several words come back as terms, for the users
        // who still have terms (erased users have none).
        db.execute_unprepared(
            "INSERT INTO user_search_terms (term, user_id) SELECT name_key, id FROM users \
             WHERE name_key LIKE '% %' AND search_text <> ''",
        )
        .await?;
        txn.commit().await?;
        manager
            .alter_table(
                Table::alter().table(Users::Table).drop_column(Users::SearchText).to_owned(),
            )
            .await?;
        Ok(())
    }
}
