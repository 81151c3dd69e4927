//! Derived data kept beside the users, in the same transactions: search
//! terms (prefix search by index range), each user's search text (the same
//! terms in one column, tested while walking users in order) and
//! per-(role, status) counts (seat usage and list totals without counting
//! rows).

use sea_orm::ActiveValue::Set;
use sea_orm::Value;
use sea_orm::sea_query::Func;
use sea_orm::sea_query::{Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use secureai_domain::users::models::search_terms;
use secureai_domain::{DisplayName, EmailAddress, User};

use crate::entities::{user_counts, user_search_terms, users};

/// A user's search terms in one string, each preceded by a space: a term
/// starts with `word` exactly when the text contains `" " + word`, as no
/// term and no search word holds whitespace. Stored as `users.search_text`
/// (erased users have an empty text and no terms).
pub fn search_text(email: &EmailAddress, name: &DisplayName) -> String {
    search_terms(email, name).iter().fold(String::new(), |mut text, term| {
        text.push(' ');
        text.push_str(term);
        text
    })
}

/// How a statement tests a user's search text for a word.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TextTest {
    /// SQLite's and MySQL's `instr`.
    Instr,
    /// PostgreSQL's `strpos`.
    Strpos,
    /// The synchronous SQLite reader's substring search
    /// ([`crate::sqlite_reads::CONTAINS`]).
    SqliteReads,
}

/// "This user has a term starting with `word`", tested on the row's search
/// text (on SQLite, read from the sort index being walked).
pub(crate) fn has_text(test: TextTest, word: &str) -> sea_orm::sea_query::SimpleExpr {
    let text = Expr::col((users::Entity, users::Column::SearchText));
    let needle = Value::from(format!(" {word}"));
    match test {
        TextTest::Instr => Expr::expr(Func::cust("instr").arg(text).arg(needle)).gt(0),
        TextTest::Strpos => Expr::expr(Func::cust("strpos").arg(text).arg(needle)).gt(0),
        TextTest::SqliteReads => {
            Expr::expr(Func::cust(crate::sqlite_reads::CONTAINS).arg(text).arg(needle)).eq(1)
        }
    }
}

/// Replaces the search terms of `user`.
pub(crate) async fn index_user(txn: &impl ConnectionTrait, user: &User) -> Result<(), DbErr> {
    let id = user.id.to_string();
    user_search_terms::Entity::delete_many()
        .filter(user_search_terms::Column::UserId.eq(id.clone()))
        .exec(txn)
        .await?;
    let rows = search_terms(&user.email, &user.name).into_iter().map(|term| {
        user_search_terms::ActiveModel {
            term: Set(term.chars().take(254).collect()),
            user_id: Set(id.clone()),
        }
    });
    user_search_terms::Entity::insert_many(rows).exec_without_returning(txn).await?;
    Ok(())
}

/// Removes the search terms of a user (erasure).
pub(crate) async fn unindex_user(txn: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    user_search_terms::Entity::delete_many()
        .filter(user_search_terms::Column::UserId.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Adds `delta` to the count of users with this role and status.
pub(crate) async fn count_delta(
    txn: &impl ConnectionTrait,
    role: &str,
    status: &str,
    delta: i64,
) -> Result<(), DbErr> {
    user_counts::Entity::update_many()
        .col_expr(user_counts::Column::N, Expr::col(user_counts::Column::N).add(delta))
        .filter(user_counts::Column::Role.eq(role))
        .filter(user_counts::Column::Status.eq(status))
        .exec(txn)
        .await?;
    Ok(())
}

/// Moves a user between (role, status) counts, if either changed.
pub(crate) async fn count_move(
    txn: &impl ConnectionTrait,
    from: (&str, &str),
    to: (&str, &str),
) -> Result<(), DbErr> {
    if from != to {
        count_delta(txn, from.0, from.1, -1).await?;
        count_delta(txn, to.0, to.1, 1).await?;
    }
    Ok(())
}

/// The user counts of this role (if any) and these statuses (if any):
/// their `n` column, to be summed.
pub(crate) fn counted_rows(role: Option<&str>, statuses: &[&str]) -> SelectStatement {
    let mut select = Query::select();
    select.column(user_counts::Column::N).from(user_counts::Entity);
    if let Some(role) = role {
        select.and_where(user_counts::Column::Role.eq(role));
    }
    if !statuses.is_empty() {
        select.and_where(user_counts::Column::Status.is_in(statuses.iter().copied()));
    }
    select
}

/// Users with `role` (any if `None`) and one of `statuses` (any if empty).
pub(crate) async fn counted(
    conn: &impl ConnectionTrait,
    role: Option<&str>,
    statuses: &[&str],
) -> Result<u64, DbErr> {
    let rows = conn.query_all(&counted_rows(role, statuses)).await?;
    let mut total = 0;
    for row in rows {
        total += u64::try_from(row.try_get_by_index::<i64>(0)?).unwrap_or(0);
    }
    Ok(total)
}

/// The smallest string greater than every string starting with `prefix`
/// (its last character incremented), for an index range scan.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn term_range(query: &mut SelectStatement, word: &str) {
    query.and_where(
        Expr::col((user_search_terms::Entity, user_search_terms::Column::Term)).gte(word),
    );
    if let Some(end) = prefix_end(word) {
        query.and_where(
            Expr::col((user_search_terms::Entity, user_search_terms::Column::Term)).lt(end),
        );
    }
}

/// Ids of users with a search term starting with `word` (an index range).
pub(crate) fn ids_matching(word: &str) -> SelectStatement {
    let mut query = Query::select();
    query.column(user_search_terms::Column::UserId).from(user_search_terms::Entity);
    term_range(&mut query, word);
    query.to_owned()
}

/// Counts distinct users with a term starting with `word`, up to `cap`.
pub(crate) fn users_matching_upto(word: &str, cap: u64) -> SelectStatement {
    let mut inner = Query::select();
    inner.distinct().column(user_search_terms::Column::UserId).from(user_search_terms::Entity);
    term_range(&mut inner, word);
    inner.limit(cap);
    Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from_subquery(inner.to_owned(), sea_orm::sea_query::Alias::new("matches"))
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn the_prefix_end_bounds_every_extension_of_the_prefix() {
        assert_eq!(prefix_end("smi").as_deref(), Some("smj"));
        assert_eq!(prefix_end("zoë").as_deref(), Some("zoì"));
        assert!("smith" < "smj" && "smi" < "smith");
        assert_eq!(prefix_end(""), None);
    }
}
