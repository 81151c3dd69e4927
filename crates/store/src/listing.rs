//! Listing and searching users: one page in keyset order and its total.
//!
//! A search word matching fewer than `selective_search` users drives the
//! query from its range of the search-term index; broader words walk users
//! in the requested order and test each user's search text, which SQLite
//! reads from the sort index itself (migration 7), so only the rows shown
//! are fetched.
//!
//! On a SQLite file the statements run with rusqlite on a blocking thread
//! ([`SqliteReads`]), where the text test is a SIMD substring search instead
//! of SQLite's byte-by-byte `instr`; elsewhere they run through the pool.
//! Both paths build the same statements.

use std::sync::Arc;

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, Order, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
};
use secureai_domain::StoreError;
use secureai_domain::users::ports::{
    SortValue, UserFilter, UserPage, UserQuery, UserSort, UserTotal,
};

use crate::SqlStore;
use crate::convert::user_from_row;
use crate::directory::{TextTest, counted_rows, has_text, ids_matching, users_matching_upto};
use crate::entities::users;
use crate::sqlite_reads::SqliteReads;

/// Lists a page of users (see the module documentation).
pub(crate) async fn list(
    store: &SqlStore,
    query: &UserQuery,
    total_cap: u64,
) -> Result<UserPage, StoreError> {
    let selective = store.selective_search;
    if let Some(reads) = &store.reads {
        let reads = Arc::clone(reads);
        let query = query.clone();
        let runtime = tokio::runtime::Handle::current();
        // Every read below completes without waiting: `block_on` only
        // drives the shared logic to its end, off the async workers.
        return tokio::task::spawn_blocking(move || {
            runtime.block_on(list_with(&Reader::Sqlite(&reads), &query, selective, total_cap))
        })
        .await
        .map_err(|e| StoreError::new("listing users", e))?;
    }
    list_with(&Reader::Pool(&store.db), query, selective, total_cap).await
}

/// Where the statements run.
enum Reader<'a> {
    Pool(&'a sea_orm::DatabaseConnection),
    Sqlite(&'a SqliteReads),
}

impl Reader<'_> {
    fn text_test(&self) -> TextTest {
        match self {
            Self::Sqlite(_) => TextTest::SqliteReads,
            Self::Pool(db) => match db.get_database_backend() {
                DbBackend::Postgres => TextTest::Strpos,
                _ => TextTest::Instr,
            },
        }
    }

    async fn users(
        &self,
        select: sea_orm::Select<users::Entity>,
        context: &'static str,
    ) -> Result<Vec<users::Model>, StoreError> {
        match self {
            Self::Pool(db) => select.all(*db).await.map_err(crate::convert::db(context)),
            Self::Sqlite(reads) => reads
                .users(&select.build(DbBackend::Sqlite))
                .map_err(|e| StoreError::new(context, e)),
        }
    }

    /// The first column of every row, as integers.
    async fn integers(
        &self,
        statement: &SelectStatement,
        context: &'static str,
    ) -> Result<Vec<i64>, StoreError> {
        match self {
            Self::Pool(db) => {
                let rows = db.query_all(statement).await.map_err(crate::convert::db(context))?;
                rows.iter()
                    .map(|row| row.try_get_by_index::<i64>(0))
                    .collect::<Result<_, _>>()
                    .map_err(|e| StoreError::new(context, e))
            }
            Self::Sqlite(reads) => reads
                .integers(&DbBackend::Sqlite.build(statement))
                .map_err(|e| StoreError::new(context, e)),
        }
    }

    async fn count(
        &self,
        statement: &SelectStatement,
        context: &'static str,
    ) -> Result<u64, StoreError> {
        let n = self.integers(statement, context).await?.first().copied().unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

async fn list_with(
    reader: &Reader<'_>,
    query: &UserQuery,
    selective: u64,
    total_cap: u64,
) -> Result<UserPage, StoreError> {
    let column = match query.sort {
        UserSort::Name => users::Column::NameKey,
        UserSort::Email => users::Column::EmailKey,
        UserSort::Created => users::Column::CreatedAt,
        UserSort::LastSignIn => users::Column::LastLoginAt,
    };
    let plan = plan_search(reader, &query.filter.words, selective).await?;
    let mut select = filtered(reader.text_test(), &query.filter, &plan);
    if let Some(after) = &query.after {
        let value = match &after.value {
            SortValue::Text(text) => sea_orm::Value::from(text.clone()),
            SortValue::Micros(micros) => sea_orm::Value::from(*micros),
        };
        let id = after.id.to_string();
        // `col >= v AND (col > v OR id > last)`: the first conjunct lets
        // every database start an index range at the cursor.
        let (start, beyond, id_beyond) = if query.descending {
            (
                Expr::col(column).lte(value.clone()),
                Expr::col(column).lt(value),
                users::Column::Id.lt(id),
            )
        } else {
            (
                Expr::col(column).gte(value.clone()),
                Expr::col(column).gt(value),
                users::Column::Id.gt(id),
            )
        };
        select = select.filter(start).filter(Condition::any().add(beyond).add(id_beyond));
    }
    let order = if query.descending { Order::Desc } else { Order::Asc };
    let select = select
        .order_by(column, order.clone())
        .order_by(users::Column::Id, order)
        .limit(u64::from(query.limit) + 1);
    let rows = reader.users(select, "listing users").await?;
    let fetched = u64::try_from(rows.len()).unwrap_or(u64::MAX);
    let items = rows.iter().map(user_from_row).collect::<Result<Vec<_>, _>>()?;
    let total = total(reader, &query.filter, &plan, total_cap, fetched).await?;
    Ok(UserPage::from_overfetch(items, query.limit, query.sort, total))
}

/// How many users match `filter`: from the maintained counts when only
/// role and status filter, exactly for selective searches. For broad ones,
/// a lower bound: the users this page `fetched` (its own and the one that
/// shows another page follows) or, for a single word without other
/// filters, the matches planning counted before it stopped (at most
/// `cap`), whichever is more.
async fn total(
    reader: &Reader<'_>,
    filter: &UserFilter,
    plan: &SearchPlan,
    cap: u64,
    fetched: u64,
) -> Result<UserTotal, StoreError> {
    if filter.words.is_empty() && filter.department.is_none() {
        let statuses: Vec<&str> = filter.status.iter().map(|s| s.as_str()).collect();
        let rows = counted_rows(filter.role.map(|r| r.as_str()), &statuses);
        let counts = reader.integers(&rows, "counting users").await?;
        let count = counts.iter().map(|n| u64::try_from(*n).unwrap_or(0)).sum();
        return Ok(UserTotal { count, exact: true });
    }
    if let SearchPlan::Broad { matches } = *plan {
        // Counting every match of a broad search would cost more than
        // finding its page.
        let alone = filter.words.len() == 1
            && filter.role.is_none()
            && filter.status.is_none()
            && filter.department.is_none();
        let counted = if alone { std::cmp::min(matches, cap) } else { 0 };
        return Ok(UserTotal { count: std::cmp::max(counted, fetched), exact: false });
    }
    let matching = filtered(reader.text_test(), filter, plan)
        .select_only()
        .column(users::Column::Id)
        .into_query();
    let count = Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from_subquery(matching, Alias::new("matching"))
        .to_owned();
    Ok(UserTotal { count: reader.count(&count, "counting users").await?, exact: true })
}

/// How a search's words are applied.
enum SearchPlan {
    /// No words.
    None,
    /// Word `driver` matches few users: start from its matches.
    Selective { driver: usize },
    /// Every word matches many users: walk users in order, check each.
    /// Each word matches at least `matches` users (where counting stopped).
    Broad { matches: u64 },
}

/// Counts each word's matches, up to `selective` (a later word up to the
/// narrowest count so far: only a narrower word matters), and picks how to
/// apply them.
async fn plan_search(
    reader: &Reader<'_>,
    words: &[String],
    selective: u64,
) -> Result<SearchPlan, StoreError> {
    let mut narrowest: Option<(usize, u64)> = None;
    for (i, word) in words.iter().enumerate() {
        let upto = narrowest.map_or(selective, |(_, best)| best);
        if upto == 0 {
            break;
        }
        let n = reader.count(&users_matching_upto(word, upto), "planning a search").await?;
        if narrowest.is_none_or(|(_, best)| n < best) {
            narrowest = Some((i, n));
        }
    }
    Ok(match narrowest {
        None => SearchPlan::None,
        Some((driver, n)) if n < selective => SearchPlan::Selective { driver },
        Some((_, n)) => SearchPlan::Broad { matches: n },
    })
}

/// The users matching a filter, applying search words as planned.
fn filtered(
    test: TextTest,
    filter: &UserFilter,
    plan: &SearchPlan,
) -> sea_orm::Select<users::Entity> {
    let mut select = users::Entity::find();
    for (i, word) in filter.words.iter().enumerate() {
        select = match plan {
            SearchPlan::Selective { driver } if *driver == i => {
                select.filter(users::Column::Id.in_subquery(ids_matching(word)))
            }
            _ => select.filter(has_text(test, word)),
        };
    }
    if let Some(role) = filter.role {
        select = select.filter(users::Column::Role.eq(role.as_str()));
    }
    if let Some(status) = filter.status {
        select = select.filter(users::Column::Status.eq(status.as_str()));
    }
    if let Some(department) = &filter.department {
        select = select.filter(users::Column::Department.eq(department.clone()));
    }
    select
}
