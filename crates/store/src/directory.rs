//! Derived data kept beside the users, in the same transactions: search
//! terms (prefix search by index range) and per-(role, status) counts
//! (seat usage and list totals without counting rows).

use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use secureai_domain::User;
use secureai_domain::users::models::search_terms;

use crate::entities::{user_counts, user_search_terms};

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

/// Users with `role` (any if `None`) and one of `statuses` (any if empty).
pub(crate) async fn counted(
    conn: &impl ConnectionTrait,
    role: Option<&str>,
    statuses: &[&str],
) -> Result<u64, DbErr> {
    let mut select = user_counts::Entity::find();
    if let Some(role) = role {
        select = select.filter(user_counts::Column::Role.eq(role));
    }
    if !statuses.is_empty() {
        select = select.filter(user_counts::Column::Status.is_in(statuses.iter().copied()));
    }
    let rows = select.all(conn).await?;
    Ok(rows.iter().map(|r| u64::try_from(r.n).unwrap_or(0)).sum())
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

/// "This user has a term starting with `word`", checked per user row
/// through the (user_id, term) index.
pub(crate) fn has_term(word: &str) -> sea_orm::sea_query::SimpleExpr {
    let mut query = Query::select();
    query.expr(Expr::val(1)).from(user_search_terms::Entity).and_where(
        Expr::col((user_search_terms::Entity, user_search_terms::Column::UserId))
            .equals((crate::entities::users::Entity, crate::entities::users::Column::Id)),
    );
    term_range(&mut query, word);
    Expr::exists(query.to_owned())
}

/// Distinct users with a term starting with `word`, counted up to `cap`.
pub(crate) async fn users_matching_upto(
    conn: &impl ConnectionTrait,
    word: &str,
    cap: u64,
) -> Result<u64, DbErr> {
    let mut inner = Query::select();
    inner.distinct().column(user_search_terms::Column::UserId).from(user_search_terms::Entity);
    term_range(&mut inner, word);
    inner.limit(cap);
    let outer = Query::select()
        .expr_as(Expr::cust("COUNT(*)"), sea_orm::sea_query::Alias::new("n"))
        .from_subquery(inner.to_owned(), sea_orm::sea_query::Alias::new("matches"))
        .to_owned();
    let row = conn.query_one(&outer).await?;
    Ok(row
        .and_then(|r| r.try_get::<i64>("", "n").ok())
        .map_or(0, |n| u64::try_from(n).unwrap_or(0)))
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
