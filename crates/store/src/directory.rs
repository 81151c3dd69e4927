//! Derived data kept beside the users, in the same transactions: search
//! terms (prefix search by index range) and per-(role, status) counts
//! (seat usage and list totals without counting rows).

use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{
    Alias, Condition, DynIden, Expr, ExprTrait, IntoColumnRef, IntoIden, Order, Query,
    SelectStatement,
};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use secureai_domain::User;
use secureai_domain::users::models::search_terms;
use secureai_domain::users::ports::{UserFilter, UserSort};

use crate::convert::micros;
use crate::entities::{user_counts, user_search_terms, users};

/// The search-term rows of `user`: one per term, each carrying the values
/// a search filters and sorts by.
pub(crate) fn term_rows(user: &User) -> Vec<user_search_terms::ActiveModel> {
    let id = user.id.to_string();
    search_terms(&user.email, &user.name)
        .into_iter()
        .map(|term| user_search_terms::ActiveModel {
            term: Set(term.chars().take(254).collect()),
            user_id: Set(id.clone()),
            role: Set(user.role.as_str().to_owned()),
            status: Set(user.status().as_str().to_owned()),
            department: Set(user.department.as_ref().map(ToString::to_string)),
            created_at: Set(micros(user.created_at)),
            name_key: Set(user.name.sort_key()),
            email_key: Set(user.email.key().to_owned()),
            last_login_at: Set(user.last_login_at.map_or(0, micros)),
        })
        .collect()
}

/// Replaces the search terms of `user`.
pub(crate) async fn index_user(txn: &impl ConnectionTrait, user: &User) -> Result<(), DbErr> {
    user_search_terms::Entity::delete_many()
        .filter(user_search_terms::Column::UserId.eq(user.id.to_string()))
        .exec(txn)
        .await?;
    user_search_terms::Entity::insert_many(term_rows(user)).exec_without_returning(txn).await?;
    Ok(())
}

/// Copies the user's current role, status, department and last sign-in
/// onto their search terms: called in the transaction of every change to
/// those columns of `users`.
pub(crate) async fn sync_terms(txn: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    let from_user = |column: users::Column| {
        let mut select = Query::select();
        select.column((users::Entity, column)).from(users::Entity).and_where(
            Expr::col((users::Entity, users::Column::Id))
                .equals((user_search_terms::Entity, user_search_terms::Column::UserId)),
        );
        Expr::SubQuery(None, Box::new(select.to_owned().into()))
    };
    user_search_terms::Entity::update_many()
        .col_expr(user_search_terms::Column::Role, from_user(users::Column::Role))
        .col_expr(user_search_terms::Column::Status, from_user(users::Column::Status))
        .col_expr(user_search_terms::Column::Department, from_user(users::Column::Department))
        .col_expr(user_search_terms::Column::LastLoginAt, from_user(users::Column::LastLoginAt))
        .filter(user_search_terms::Column::UserId.eq(id))
        .exec(txn)
        .await?;
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
    term_range_of(query, user_search_terms::Entity.into_iden(), word);
}

fn term_range_of(query: &mut SelectStatement, table: DynIden, word: &str) {
    let term = || Expr::col((table.clone(), user_search_terms::Column::Term));
    query.and_where(term().gte(word));
    if let Some(end) = prefix_end(word) {
        query.and_where(term().lt(end));
    }
}

/// "This user has a term starting with `word`", checked per user row
/// through the (user_id, term) index.
pub(crate) fn has_term(word: &str) -> Expr {
    has_term_of(word, (users::Entity, users::Column::Id))
}

fn has_term_of(word: &str, user_id: impl IntoColumnRef) -> Expr {
    let mut query = Query::select();
    query.expr(Expr::val(1)).from(user_search_terms::Entity).and_where(
        Expr::col((user_search_terms::Entity, user_search_terms::Column::UserId)).equals(user_id),
    );
    term_range(&mut query, word);
    Expr::exists(query.to_owned())
}

/// Search-term entries starting with `word`, counted up to `cap`: what
/// reading that word's index range costs.
pub(crate) async fn entries_upto(
    conn: &impl ConnectionTrait,
    word: &str,
    cap: u64,
) -> Result<u64, DbErr> {
    let mut inner = Query::select();
    inner.expr(Expr::val(1)).from(user_search_terms::Entity);
    term_range(&mut inner, word);
    inner.limit(cap);
    count_rows_of(conn, inner).await
}

async fn count_rows_of(conn: &impl ConnectionTrait, inner: SelectStatement) -> Result<u64, DbErr> {
    let outer = Query::select()
        .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
        .from_subquery(inner, Alias::new("matches"))
        .to_owned();
    let row = conn.query_one(&outer).await?;
    Ok(row
        .and_then(|r| r.try_get::<i64>("", "n").ok())
        .map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}

/// The search-term column holding a sort's key.
fn sort_column(sort: UserSort) -> user_search_terms::Column {
    match sort {
        UserSort::Name => user_search_terms::Column::NameKey,
        UserSort::Email => user_search_terms::Column::EmailKey,
        UserSort::Created => user_search_terms::Column::CreatedAt,
        UserSort::LastSignIn => user_search_terms::Column::LastLoginAt,
    }
}

/// Term rows of `filter.words[driver]` that satisfy the whole filter: the
/// other words through the (user_id, term) index, role, status and
/// department from the term rows themselves.
fn covered(filter: &UserFilter, driver: usize) -> SelectStatement {
    let t: DynIden = Alias::new("t").into_iden();
    let col = |c: user_search_terms::Column| Expr::col((t.clone(), c));
    let mut query = Query::select();
    query.from_as(user_search_terms::Entity, t.clone());
    term_range_of(&mut query, t.clone(), &filter.words[driver]);
    for (i, word) in filter.words.iter().enumerate() {
        if i != driver {
            query.and_where(has_term_of(word, (t.clone(), user_search_terms::Column::UserId)));
        }
    }
    if let Some(role) = filter.role {
        query.and_where(col(user_search_terms::Column::Role).eq(role.as_str()));
    }
    if let Some(status) = filter.status {
        query.and_where(col(user_search_terms::Column::Status).eq(status.as_str()));
    }
    if let Some(department) = &filter.department {
        query.and_where(col(user_search_terms::Column::Department).eq(department.clone()));
    }
    query
}

/// Ids of one page of a covered search, in order: read from the driving
/// word's index range, sorted there, no user row read.
pub(crate) async fn covered_page(
    conn: &impl ConnectionTrait,
    filter: &UserFilter,
    driver: usize,
    sort: UserSort,
    descending: bool,
    after: Option<(sea_orm::Value, String)>,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    let t: DynIden = Alias::new("t").into_iden();
    let key = || Expr::col((t.clone(), sort_column(sort)));
    let id = || Expr::col((t.clone(), user_search_terms::Column::UserId));
    let mut query = covered(filter, driver);
    query.distinct().expr_as(key(), Alias::new("k")).expr_as(id(), Alias::new("id"));
    if let Some((value, last)) = after {
        // Same shape as the users query: an index-friendly start, then the
        // tie-break on the id.
        let (start, beyond, id_beyond) = if descending {
            (key().lte(value.clone()), key().lt(value), id().lt(last))
        } else {
            (key().gte(value.clone()), key().gt(value), id().gt(last))
        };
        query.and_where(start).cond_where(Condition::any().add(beyond).add(id_beyond));
    }
    let order = if descending { Order::Desc } else { Order::Asc };
    query.order_by_expr(key(), order.clone()).order_by_expr(id(), order).limit(limit);
    let rows = conn.query_all(&query).await?;
    rows.iter().map(|r| r.try_get::<String>("", "id")).collect()
}

/// Exact number of users a covered search matches.
pub(crate) async fn covered_total(
    conn: &impl ConnectionTrait,
    filter: &UserFilter,
    driver: usize,
) -> Result<u64, DbErr> {
    let mut inner = covered(filter, driver);
    inner.distinct().column((Alias::new("t"), user_search_terms::Column::UserId));
    count_rows_of(conn, inner).await
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
    count_rows_of(conn, inner).await
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
