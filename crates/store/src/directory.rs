//! Derived data kept beside the users, in the same transactions: search
//! terms (prefix search by index range), each user's search text (the same
//! terms in one column, tested while walking users in order) and
//! per-(role, status) counts (seat usage and list totals without counting
//! rows).

use sea_orm::ActiveValue::Set;
use sea_orm::Value;
use sea_orm::sea_query::Func;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use secureai_domain::users::models::search_terms;
use secureai_domain::users::ports::{SortValue, UserQuery, UserSort};
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

/// The search-term rows of `user`.
pub(crate) fn term_rows(user: &User) -> impl Iterator<Item = user_search_terms::ActiveModel> {
    let id = user.id.to_string();
    let created_at = crate::convert::micros(user.created_at);
    let (name_key, email_key) = (user.name.sort_key(), user.email.key().to_owned());
    search_terms(&user.email, &user.name).into_iter().map(move |term| {
        user_search_terms::ActiveModel {
            term: Set(term.chars().take(254).collect()),
            user_id: Set(id.clone()),
            created_at: Set(created_at),
            name_key: Set(name_key.clone()),
            email_key: Set(email_key.clone()),
        }
    })
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

/// Counts the search-term rows starting with `word`, up to `cap`: an index
/// range read with a limit, which every database runs the same way whatever
/// its estimate of the word (a `DISTINCT` with a limit led PostgreSQL to
/// walk the whole by-user index for rare words).
pub(crate) fn term_rows_upto(word: &str, cap: u64) -> SelectStatement {
    let mut rows = Query::select();
    rows.expr(Expr::cust("1")).from(user_search_terms::Entity);
    term_range(&mut rows, word);
    rows.limit(cap);
    Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from_subquery(rows.to_owned(), Alias::new("matches"))
        .to_owned()
}

/// Counts the distinct users among the search-term rows starting with
/// `word` (the first `rows` of them, if given), grouped by hashing rather
/// than sorting the ids.
pub(crate) fn term_users(word: &str, rows: Option<u64>) -> SelectStatement {
    let mut matches = Query::select();
    matches.column(user_search_terms::Column::UserId).from(user_search_terms::Entity);
    term_range(&mut matches, word);
    if let Some(rows) = rows {
        matches.limit(rows);
    }
    let users = Query::select()
        .column(Alias::new("user_id"))
        .from_subquery(matches.to_owned(), Alias::new("matches"))
        .group_by_col(Alias::new("user_id"))
        .to_owned();
    Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from_subquery(users, Alias::new("users"))
        .to_owned()
}

/// The column of the search terms that carries the sort key of `sort`, if
/// they carry it (all but the last sign-in: migrations 8 and 22).
pub(crate) fn term_sort_key(sort: UserSort) -> Option<user_search_terms::Column> {
    match sort {
        UserSort::Created => Some(user_search_terms::Column::CreatedAt),
        UserSort::Name => Some(user_search_terms::Column::NameKey),
        UserSort::Email => Some(user_search_terms::Column::EmailKey),
        UserSort::LastSignIn => None,
    }
}

/// Ids of the users of `query`'s page (a single word, no other filters, an
/// order whose `key` the terms carry) from the search-term index alone: the
/// distinct `(key, user_id)` pairs of the word's range after the cursor,
/// the first `limit + 1` of them in the page's order. Wrapped in a derived
/// table, as MySQL refuses a `LIMIT` directly inside `IN (…)`.
pub(crate) fn first_of_term(
    word: &str,
    query: &UserQuery,
    key: user_search_terms::Column,
) -> SelectStatement {
    let column = || Expr::col((user_search_terms::Entity, key));
    let user_id = || Expr::col((user_search_terms::Entity, user_search_terms::Column::UserId));
    let mut page = Query::select();
    page.column(user_search_terms::Column::UserId).column(key).from(user_search_terms::Entity);
    term_range(&mut page, word);
    if let Some(after) = &query.after {
        // The domain decodes a cursor by its sort, so its value is of the
        // key's kind.
        let value = match &after.value {
            SortValue::Micros(micros) => Value::from(*micros),
            SortValue::Text(text) => Value::from(text.clone()),
        };
        let id = after.id.to_string();
        if query.descending {
            page.and_where(column().lte(value.clone()));
            page.and_where(column().lt(value).or(user_id().lt(id)));
        } else {
            page.and_where(column().gte(value.clone()));
            page.and_where(column().gt(value).or(user_id().gt(id)));
        }
    }
    let order = if query.descending { Order::Desc } else { Order::Asc };
    // Grouped in the page's order, so one sort both groups and orders.
    page.group_by_col(key)
        .group_by_col(user_search_terms::Column::UserId)
        .order_by(key, order.clone())
        .order_by(user_search_terms::Column::UserId, order)
        .limit(u64::from(query.limit) + 1);
    Query::select()
        .column(Alias::new("user_id"))
        .from_subquery(page.to_owned(), Alias::new("page"))
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

    /// A broad search walks one of these indexes and tests each user's
    /// search text: on SQLite every one of them ends with that text, so the
    /// walk reads index entries and fetches only the rows it returns
    /// (migrations 7 and 21).
    #[tokio::test]
    async fn every_index_a_walk_follows_on_sqlite_carries_the_search_text() {
        use sea_orm::ConnectionTrait;

        use crate::test_databases::{Backend, TestDatabase};
        use crate::{SqlStore, StoreOptions};

        let database = TestDatabase::create_or_skip(Backend::Sqlite).await.expect("SQLite");
        let store = SqlStore::connect_and_migrate(&database.url, &StoreOptions::default())
            .await
            .expect("migrated");
        for index in
            ["ix_users_created", "ix_users_name", "ix_users_last_login", "ix_users_department"]
        {
            let rows = store
                .connection()
                .query_all_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Sqlite,
                    format!("SELECT name FROM pragma_index_info('{index}') ORDER BY seqno"),
                ))
                .await
                .expect("index columns");
            let columns: Vec<String> =
                rows.iter().map(|row| row.try_get_by_index(0).expect("a name")).collect();
            assert_eq!(
                columns.last().map(String::as_str),
                Some("search_text"),
                "{index}: {columns:?}"
            );
        }
    }
}
