//! Each search term carries its user's name and email sort keys, besides
//! the creation time of migration 8, and the term index covers them:
//! `(term, created_at, user_id, name_key, email_key)`. A single word with
//! few matches then finds its page by name or email from that index alone,
//! and fetches only the users shown, instead of fetching every match to
//! sort them (a 1,000-user surname sorted by name at 1,000,000 users:
//! ~1,000 primary-key reads, 11–17 ms p95 on PostgreSQL and MariaDB).
//!
//! The last sign-in time is not carried: every sign-in would rewrite its
//! user's terms, and on PostgreSQL the pages those writes leave
//! not-all-visible turn the index-only reads of every search into heap
//! reads until the next vacuum (measured right after this migration's own
//! rewrite: searches at 1,000,000 users went from 3–7 ms to 30–540 ms, with
//! sequential scans chosen, until `VACUUM ANALYZE`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261203_000011_scim_identities::bytewise;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UserSearchTerms {
    Table,
    Term,
    UserId,
    CreatedAt,
    NameKey,
    EmailKey,
}

const INDEX: &str = "ix_user_search_terms_created";

fn index(wide: bool) -> IndexCreateStatement {
    let mut index = Index::create();
    index
        .name(INDEX)
        .table(UserSearchTerms::Table)
        .col(UserSearchTerms::Term)
        .col(UserSearchTerms::CreatedAt)
        .col(UserSearchTerms::UserId);
    if wide {
        index.col(UserSearchTerms::NameKey).col(UserSearchTerms::EmailKey);
    }
    index.to_owned()
}

async fn replace_index(manager: &SchemaManager<'_>, wide: bool) -> Result<(), DbErr> {
    crate::indexes::replace_index(manager, "user_search_terms", INDEX, &index(wide)).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let columns = [
            // Compared as bytes, as `users.name_key` and `users.email_key` are.
            bytewise(
                backend,
                ColumnDef::new(UserSearchTerms::NameKey)
                    .string_len(200)
                    .not_null()
                    .default("")
                    .to_owned(),
            ),
            bytewise(
                backend,
                ColumnDef::new(UserSearchTerms::EmailKey)
                    .string_len(254)
                    .not_null()
                    .default("")
                    .to_owned(),
            ),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter().table(UserSearchTerms::Table).add_column(&mut column).to_owned(),
                )
                .await?;
        }
        let fill = match backend {
            DbBackend::MySql => {
                "UPDATE user_search_terms t JOIN users u ON u.id = t.user_id \
                 SET t.name_key = u.name_key, t.email_key = u.email_key"
            }
            _ => {
                "UPDATE user_search_terms SET \
                 name_key = u.name_key, email_key = u.email_key \
                 FROM users u WHERE u.id = user_search_terms.user_id"
            }
        };
        manager.get_connection().execute_unprepared(fill).await?;
        replace_index(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace_index(manager, false).await?;
        for column in [UserSearchTerms::NameKey, UserSearchTerms::EmailKey] {
            manager
                .alter_table(
                    Table::alter().table(UserSearchTerms::Table).drop_column(column).to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
