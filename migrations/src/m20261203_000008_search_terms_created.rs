//! Search terms carry their user's creation time (`user_search_terms.
//! created_at`, never changed after the user is created) with the index
//! `(term, created_at, user_id)`: a search word's first page in creation
//! order — the users list's default — is read from that index alone (the
//! distinct users of the word's range, the first page of them sorted), and
//! only the page's users are fetched, instead of every matching user.
//!
//! The department index gains the creation time, `(department, created_at,
//! id)`: a department's users in the default order are an index range, and
//! a search within a department walks only that department.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Department,
    CreatedAt,
    Id,
}

#[derive(DeriveIden)]
enum UserSearchTerms {
    Table,
    Term,
    UserId,
    CreatedAt,
}

const INDEX: &str = "ix_user_search_terms_created";
const DEPARTMENT_INDEX: &str = "ix_users_department";

/// The department index with these columns after the department.
fn department_index(created: bool) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(DEPARTMENT_INDEX).table(Users::Table).col(Users::Department);
    if created {
        index.col(Users::CreatedAt);
    }
    index.col(Users::Id).to_owned()
}

async fn replace_department_index(manager: &SchemaManager<'_>, created: bool) -> Result<(), DbErr> {
    let index = department_index(created);
    crate::indexes::replace_index(manager, "users", DEPARTMENT_INDEX, &index).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(UserSearchTerms::Table)
                    .add_column(
                        ColumnDef::new(UserSearchTerms::CreatedAt)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE user_search_terms SET created_at = COALESCE((SELECT u.created_at \
                 FROM users u WHERE u.id = user_search_terms.user_id), 0)",
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(UserSearchTerms::Table)
                    .col(UserSearchTerms::Term)
                    .col(UserSearchTerms::CreatedAt)
                    .col(UserSearchTerms::UserId)
                    .to_owned(),
            )
            .await?;
        replace_department_index(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace_department_index(manager, false).await?;
        manager
            .drop_index(Index::drop().name(INDEX).table(UserSearchTerms::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(UserSearchTerms::Table)
                    .drop_column(UserSearchTerms::CreatedAt)
                    .to_owned(),
            )
            .await
    }
}
