//! Listing and searching users: one page in keyset order and its total.
//!
//! Planning counts each word's search-term rows up to a bound (an index
//! range read with a limit, whatever the database's planner thinks of the
//! word). A word with fewer rows than `selective_search` drives the query
//! from its range of the search-term index. A single word without other
//! filters, in creation, name or email order, has a wider bound,
//! `ordered_search`: its page is the first distinct users of the range in
//! that order, read from the search-term index alone (whose rows carry
//! those sort keys of their user: migrations 8 and 22), and only those
//! users are fetched. By last sign-in, which the terms do not carry, a
//! selective word alone sorts its matches' ids by sign-in time first and
//! fetches only the users shown, rather than sorting every match's whole
//! row. Broader words walk users in the requested order and
//! test each user's search text, which SQLite reads from the sort index
//! itself (migrations 7 and 21), so only the rows shown are fetched.
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
use secureai_domain::mail::models::INVITATION_KINDS;
use secureai_domain::users::ports::{
    InvitationFilter, SortValue, UserCursor, UserFilter, UserPage, UserQuery, UserSort, UserTotal,
};

use crate::SqlStore;
use crate::convert::{INVITED, micros, user_from_row};
use crate::directory::{
    TextTest, counted_rows, first_of_term, has_text, ids_matching, term_rows_upto, term_sort_key,
    term_users,
};
use crate::entities::{invitations, outbox, scim_group_members, users};
use crate::sqlite_reads::{SqliteReads, read_error};

/// Lists a page of users (see the module documentation).
pub(crate) async fn list(
    store: &SqlStore,
    query: &UserQuery,
    total_cap: u64,
) -> Result<UserPage, StoreError> {
    let selective = Bounds {
        selective: store.selective_search,
        ordered: store.ordered_search,
        walk: std::cmp::max(store.broad_walk, 1),
    };
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
            Self::Sqlite(reads) => {
                reads.users(&select.build(DbBackend::Sqlite)).map_err(read_error(context))
            }
        }
    }

    /// The sort value (text or integer) and id in the first row's first two
    /// columns, if there is a row.
    async fn sort_key(
        &self,
        statement: &SelectStatement,
        text: bool,
        context: &'static str,
    ) -> Result<Option<(SortValue, String)>, StoreError> {
        match self {
            Self::Pool(db) => {
                let Some(row) =
                    db.query_one(statement).await.map_err(crate::convert::db(context))?
                else {
                    return Ok(None);
                };
                let value = if text {
                    row.try_get_by_index::<String>(0).map(SortValue::Text)
                } else {
                    row.try_get_by_index::<i64>(0).map(SortValue::Micros)
                };
                let id = row.try_get_by_index::<String>(1);
                Ok(Some((
                    value.map_err(|e| StoreError::new(context, e))?,
                    id.map_err(|e| StoreError::new(context, e))?,
                )))
            }
            Self::Sqlite(reads) => Ok(reads
                .sort_keys(&DbBackend::Sqlite.build(statement), text)
                .map_err(read_error(context))?
                .into_iter()
                .next()),
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
            Self::Sqlite(reads) => {
                reads.column(&DbBackend::Sqlite.build(statement)).map_err(read_error(context))
            }
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

/// How many search-term rows make a word broad (see the module
/// documentation).
#[derive(Debug, Clone, Copy)]
struct Bounds {
    selective: u64,
    ordered: u64,
    /// Most users a broad search walks for one page.
    walk: u64,
}

async fn list_with(
    reader: &Reader<'_>,
    query: &UserQuery,
    bounds: Bounds,
    total_cap: u64,
) -> Result<UserPage, StoreError> {
    let column = match query.sort {
        UserSort::Name => users::Column::NameKey,
        UserSort::Email => users::Column::EmailKey,
        UserSort::Created => users::Column::CreatedAt,
        UserSort::LastSignIn => users::Column::LastLoginAt,
    };
    let ordered = is_ordered(query);
    let bound = if ordered { bounds.ordered } else { bounds.selective };
    let plan = plan_search(reader, &query.filter.words, bound).await?;
    // The page and its total are independent reads: on a pool they run at
    // once, on two connections (the database works on both while the
    // other is parsed and decoded); on the synchronous reader one after
    // the other, as neither waits.
    let (rows, total) = tokio::join!(
        page_rows(reader, query, &plan, column, bounds),
        total(reader, &query.filter, &plan, total_cap)
    );
    let (rows, stopped_at) = rows?;
    let fetched = u64::try_from(rows.len()).unwrap_or(u64::MAX);
    let items = rows.iter().map(user_from_row).collect::<Result<Vec<_>, _>>()?;
    let mut total = total?;
    if !total.exact {
        // A lower bound: at least the users this page fetched (its own and
        // the one that shows another page follows).
        total.count = std::cmp::max(total.count, fetched);
    }
    let mut page = UserPage::from_overfetch(items, query.limit, query.sort, total);
    if page.next.is_none() {
        page.next = stopped_at;
    }
    Ok(page)
}

/// The page's users (up to `limit + 1`) as planned and, for a broad
/// search whose walk stopped before filling the page, where it stopped.
async fn page_rows(
    reader: &Reader<'_>,
    query: &UserQuery,
    plan: &SearchPlan,
    column: users::Column,
    bounds: Bounds,
) -> Result<(Vec<users::Model>, Option<UserCursor>), StoreError> {
    let limit = u64::from(query.limit);
    match plan {
        SearchPlan::Selective { driver } => {
            let word = &query.filter.words[*driver];
            let page = match (alone(&query.filter), term_sort_key(query.sort)) {
                (true, Some(key)) => Some(first_of_term(word, query, key)),
                (true, None) => Some(first_by_sign_in(word, query, column)),
                (false, _) => None,
            };
            let select = match page {
                Some(page) => users::Entity::find().filter(users::Column::Id.in_subquery(page)),
                None => filtered(reader.text_test(), &query.filter, plan),
            };
            let select = in_order(select, query, column, false).limit(limit + 1);
            Ok((reader.users(select, "listing users").await?, None))
        }
        SearchPlan::None => {
            let select = filtered(reader.text_test(), &query.filter, plan);
            let select = in_order(select, query, column, true).limit(limit + 1);
            Ok((reader.users(select, "listing users").await?, None))
        }
        SearchPlan::Broad => {
            // Users in creation order lie in the table's own order; in any
            // other order each one walked is a read elsewhere: fewer of them.
            let walk = if query.sort == UserSort::Created { bounds.walk } else { bounds.walk / 4 };
            broad_page(reader, query, column, std::cmp::max(walk, 1)).await
        }
    }
}

/// `select` after the query's cursor, in its order. With a department
/// filter in creation order (and `by_department`), ordered by the
/// department first — the same order, as the department is fixed — so that
/// every database walks the department's index range rather than all users.
fn in_order(
    mut select: sea_orm::Select<users::Entity>,
    query: &UserQuery,
    column: users::Column,
    by_department: bool,
) -> sea_orm::Select<users::Entity> {
    if let Some(after) = &query.after {
        let value = stored(&after.value);
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
    if by_department && query.filter.department.is_some() && query.sort == UserSort::Created {
        select = select.order_by(users::Column::Department, order.clone());
    }
    select.order_by(column, order.clone()).order_by(users::Column::Id, order)
}

/// A sort value as the sort column holds it.
fn stored(value: &SortValue) -> sea_orm::Value {
    match value {
        SortValue::Text(text) => sea_orm::Value::from(text.clone()),
        SortValue::Micros(micros) => sea_orm::Value::from(*micros),
    }
}

/// A broad search's page: walks at most `walk` users after the cursor (in
/// order, with the filters other than words) and tests their search texts.
/// Returns the page's users (up to `limit + 1`) and, when the walk reached
/// its bound before filling the page, the position where it stopped: the
/// page ends early there, and the next one continues the search. Without
/// the bound, words that are common but rarely together (or a word whose
/// users are all at the far end of the order) would walk every user.
///
/// The bound is found first, from the sort index alone (the `walk`-th user
/// after the cursor), and closes the page's range: a derived table with a
/// limit would do it in one statement, but MySQL materialises one in full.
async fn broad_page(
    reader: &Reader<'_>,
    query: &UserQuery,
    column: users::Column,
    walk: u64,
) -> Result<(Vec<users::Model>, Option<UserCursor>), StoreError> {
    let limit = u64::from(query.limit);
    let others = UserFilter { words: Vec::new(), ..query.filter.clone() };
    let last_walked =
        in_order(filtered(reader.text_test(), &others, &SearchPlan::None), query, column, true)
            .select_only()
            .column(column)
            .column(users::Column::Id)
            .offset(walk.saturating_sub(1))
            .limit(1)
            .into_query();
    let text = matches!(query.sort, UserSort::Name | UserSort::Email);
    let last_walked = reader.sort_key(&last_walked, text, "listing users").await?;
    let mut select = in_order(
        filtered(reader.text_test(), &query.filter, &SearchPlan::Broad),
        query,
        column,
        true,
    );
    if let Some((value, id)) = &last_walked {
        let value = stored(value);
        // Up to and including the last user walked.
        let (within, before, id_within) = if query.descending {
            (
                Expr::col(column).gte(value.clone()),
                Expr::col(column).gt(value),
                users::Column::Id.gte(id.clone()),
            )
        } else {
            (
                Expr::col(column).lte(value.clone()),
                Expr::col(column).lt(value),
                users::Column::Id.lte(id.clone()),
            )
        };
        select = select.filter(within).filter(Condition::any().add(before).add(id_within));
    }
    let rows = reader.users(select.limit(limit + 1), "listing users").await?;
    if rows.len() as u64 > limit {
        return Ok((rows, None));
    }
    let stopped_at = match last_walked {
        Some((value, id)) => Some(UserCursor { value, id: crate::convert::user_id(&id)? }),
        None => None,
    };
    Ok((rows, stopped_at))
}

/// Search-term rows read to bound a broad word's total from below.
const BROAD_TOTAL_ROWS: u64 = 2_000;

/// How many users match `filter`: from the maintained counts when only
/// role and status filter; exactly for selective searches (for a single
/// word alone, from its search-term rows). For broad ones, a lower bound
/// (`exact: false`; the caller raises it to the users its page fetched):
/// for a single word alone, the distinct users among its first
/// [`BROAD_TOTAL_ROWS`] search-term rows (at most `cap`), else 0. A
/// department alone is counted up to `cap` (a lower bound beyond it).
async fn total(
    reader: &Reader<'_>,
    filter: &UserFilter,
    plan: &SearchPlan,
    cap: u64,
) -> Result<UserTotal, StoreError> {
    if filter.words.is_empty()
        && filter.department.is_none()
        && filter.invitation.is_none()
        && filter.group.is_none()
    {
        let statuses: Vec<&str> = filter.status.iter().map(|s| s.as_str()).collect();
        let rows = counted_rows(filter.role.map(|r| r.as_str()), &statuses);
        let counts = reader.integers(&rows, "counting users").await?;
        let count = counts.iter().map(|n| u64::try_from(*n).unwrap_or(0)).sum();
        return Ok(UserTotal { count, exact: true });
    }
    match (plan, alone(filter)) {
        (SearchPlan::Selective { .. }, true) => {
            let count = reader.count(&term_users(&filter.words[0], None), "counting users").await?;
            return Ok(UserTotal { count, exact: true });
        }
        (SearchPlan::Broad, _) => {
            // Counting every match of a broad search would cost more than
            // finding its page.
            let counted = if alone(filter) {
                let some = term_users(&filter.words[0], Some(BROAD_TOTAL_ROWS));
                std::cmp::min(reader.count(&some, "counting users").await?, cap)
            } else {
                0
            };
            return Ok(UserTotal { count: counted, exact: false });
        }
        _ => {}
    }
    let matching =
        filtered(reader.text_test(), filter, plan).select_only().column(users::Column::Id);
    // Beyond `cap`, a lower bound: a department's members are counted from
    // its index, not all of them.
    let capped = filter.words.is_empty();
    let matching =
        if capped { matching.limit(cap.saturating_add(1)) } else { matching }.into_query();
    let count = Query::select()
        .expr(Expr::cust("COUNT(*)"))
        .from_subquery(matching, Alias::new("matching"))
        .to_owned();
    let count = reader.count(&count, "counting users").await?;
    if capped && count > cap {
        return Ok(UserTotal { count: cap, exact: false });
    }
    Ok(UserTotal { count, exact: true })
}

/// How a search's words are applied.
enum SearchPlan {
    /// No words.
    None,
    /// Word `driver` has few search-term rows: start from its matches.
    Selective { driver: usize },
    /// Every word has many rows: walk users in order, check each.
    Broad,
}

/// Whether the filter is a single word and nothing else.
fn alone(filter: &UserFilter) -> bool {
    filter.words.len() == 1
        && filter.role.is_none()
        && filter.status.is_none()
        && filter.department.is_none()
        && filter.invitation.is_none()
        && filter.group.is_none()
}

/// Whether the listing is a single word without other filters in an order
/// the search terms carry, whose page the search-term index gives alone.
fn is_ordered(query: &UserQuery) -> bool {
    term_sort_key(query.sort).is_some() && alone(&query.filter)
}

/// Ids of the users of `query`'s page (a single selective word, no other
/// filters) in last-sign-in order: the word's users sorted as `(sign-in
/// time, id)` pairs, the first `limit + 1` of them; only those are then
/// fetched whole. Sorting every match's whole row instead cost a third
/// more on SQLite and MariaDB (a 1,000-user word at 1,000,000 users).
/// Wrapped in a derived table, as MySQL refuses a `LIMIT` directly inside
/// `IN (…)`.
fn first_by_sign_in(word: &str, query: &UserQuery, column: users::Column) -> SelectStatement {
    let matches = users::Entity::find()
        .select_only()
        .column_as(users::Column::Id, "user_id")
        .filter(users::Column::Id.in_subquery(ids_matching(word)));
    let page =
        in_order(matches, query, column, false).limit(u64::from(query.limit) + 1).into_query();
    Query::select().column(Alias::new("user_id")).from_subquery(page, Alias::new("page")).to_owned()
}

/// Counts each word's search-term rows, up to `bound` (a later word up to
/// the narrowest count so far: only a narrower word matters), and picks how
/// to apply the words.
async fn plan_search(
    reader: &Reader<'_>,
    words: &[String],
    bound: u64,
) -> Result<SearchPlan, StoreError> {
    let mut narrowest: Option<(usize, u64)> = None;
    for (i, word) in words.iter().enumerate() {
        let upto = narrowest.map_or(bound, |(_, rows)| rows);
        if upto == 0 {
            break;
        }
        let rows = reader.count(&term_rows_upto(word, upto), "planning a search").await?;
        if narrowest.is_none_or(|(_, best)| rows < best) {
            narrowest = Some((i, rows));
        }
    }
    Ok(match narrowest {
        None => SearchPlan::None,
        Some((driver, rows)) if rows < bound => SearchPlan::Selective { driver },
        Some(_) => SearchPlan::Broad,
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
            SearchPlan::Selective { driver, .. } if *driver == i => {
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
    if let Some(trouble) = filter.invitation {
        select = select.filter(users::Column::Status.eq(INVITED)).filter(in_trouble(trouble));
    }
    if let Some(group) = filter.group {
        let members = Query::select()
            .column(scim_group_members::Column::UserId)
            .from(scim_group_members::Entity)
            .and_where(Expr::col(scim_group_members::Column::GroupId).eq(group.to_string()))
            .to_owned();
        select = select.filter(users::Column::Id.in_subquery(members));
    }
    select
}

/// The invited users whose invitation is in `trouble` (see
/// [`InvitationFilter`]), from the invitation and outbox indexes by user.
fn in_trouble(trouble: InvitationFilter) -> Condition {
    match trouble {
        InvitationFilter::Expired { now } => {
            let expired = Query::select()
                .column(invitations::Column::UserId)
                .from(invitations::Entity)
                .and_where(Expr::col(invitations::Column::State).eq("pending"))
                .and_where(Expr::col(invitations::Column::ExpiresAt).lte(micros(now)))
                .to_owned();
            Condition::all()
                .add(users::Column::SignIn.eq("password"))
                .add(users::Column::Id.in_subquery(expired))
        }
        InvitationFilter::EmailFailed => {
            let (older, newer) = (Alias::new("older"), Alias::new("newer"));
            let col = |table: &Alias, column| Expr::col((table.clone(), column));
            let later = Query::select()
                .expr(Expr::cust("1"))
                .from_as(outbox::Entity, newer.clone())
                .and_where(
                    col(&newer, outbox::Column::UserId)
                        .equals((older.clone(), outbox::Column::UserId)),
                )
                .and_where(col(&newer, outbox::Column::Kind).is_in(INVITATION_KINDS))
                .cond_where(
                    Condition::any()
                        .add(
                            col(&newer, outbox::Column::CreatedAt)
                                .gt(col(&older, outbox::Column::CreatedAt)),
                        )
                        .add(
                            Condition::all()
                                .add(
                                    col(&newer, outbox::Column::CreatedAt)
                                        .eq(col(&older, outbox::Column::CreatedAt)),
                                )
                                .add(
                                    col(&newer, outbox::Column::Id)
                                        .gt(col(&older, outbox::Column::Id)),
                                ),
                        ),
                )
                .to_owned();
            let failed = Query::select()
                .column((older.clone(), outbox::Column::UserId))
                .from_as(outbox::Entity, older.clone())
                .and_where(col(&older, outbox::Column::Kind).is_in(INVITATION_KINDS))
                .and_where(col(&older, outbox::Column::Status).eq("failed"))
                .and_where(Expr::exists(later).not())
                .to_owned();
            Condition::all().add(users::Column::Id.in_subquery(failed))
        }
    }
}
