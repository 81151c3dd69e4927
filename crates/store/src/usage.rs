//! The service-token and usage ports. A batch of events is written in one
//! transaction with every aggregate it changes, so the dashboards read
//! small pre-summed tables and never the raw events; the raw events only
//! serve idempotency until retention deletes them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, QueryResult, Statement,
    TransactionTrait, Value,
};
use secureai_domain::analytics::models::{
    ActivePoint, DayRange, DayUsage, ModelUsage, Period, Ranking, RecordedUsage, ServiceToken,
    TopUsers, Usage, UsageEvent, UserUsage,
};
use secureai_domain::analytics::ports::{ServiceTokenRepository, UsageRepository};
use secureai_domain::{AuditEvent, StoreError, TokenHash, UserId};
use uuid::Uuid;

use crate::audit::write_audit;
use crate::convert::{db, instant, micros, opt_instant, user_id};
use crate::{SqlStore, is_retryable, is_unique_violation, retry_transaction, take_guard};

/// Rows per multi-row statement: under every database's parameter limit
/// for the widest row (9 values).
const ROWS_PER_STATEMENT: usize = 500;

/// Builds one statement's SQL with the backend's placeholders.
struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    fn new(backend: DbBackend, text: &str) -> Self {
        Self { backend, text: text.to_owned(), values: Vec::new() }
    }

    /// Appends `text`.
    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        if self.backend == DbBackend::Postgres {
            self.text.push_str(&format!("${}", self.values.len()));
        } else {
            self.text.push('?');
        }
        self
    }

    /// Binds `value` to a numbered placeholder and returns it, to be
    /// written (once or several times) where needed: PostgreSQL only.
    fn numbered(&mut self, value: impl Into<Value>) -> String {
        debug_assert_eq!(self.backend, DbBackend::Postgres);
        self.values.push(value.into());
        format!("${}", self.values.len())
    }

    /// Appends `(?, ?, …)` for one row.
    fn row(&mut self, values: Vec<Value>) -> &mut Self {
        self.text.push('(');
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            self.bind(value);
        }
        self.text.push(')');
        self
    }

    /// Appends `(…),(…)` for several rows.
    fn rows(&mut self, rows: &[Vec<Value>]) -> &mut Self {
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            self.row(row.clone());
        }
        self
    }

    /// Appends `(?, ?, …)` for a list.
    fn list(&mut self, values: impl IntoIterator<Item = Value>) -> &mut Self {
        self.row(values.into_iter().collect())
    }

    fn statement(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}

/// `SUM(col)` as a BIGINT on every database (PostgreSQL and MySQL widen
/// sums of BIGINT to NUMERIC/DECIMAL).
fn sum(backend: DbBackend, expr: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("CAST(SUM({expr}) AS BIGINT)"),
        DbBackend::MySql => format!("CAST(SUM({expr}) AS SIGNED)"),
        _ => format!("SUM({expr})"),
    }
}

/// The four sums of an aggregate table, as `events, input_tokens, …`.
fn sums(backend: DbBackend) -> String {
    ["events", "input_tokens", "output_tokens", "conversations"]
        .iter()
        .map(|c| format!("{} AS {c}", sum(backend, c)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn usage_of(row: &QueryResult) -> Result<Usage, DbErr> {
    let n = |column: &str| row.try_get::<i64>("", column).map(|v| v.max(0).unsigned_abs());
    Ok(Usage {
        events: n("events")?,
        input_tokens: n("input_tokens")?,
        output_tokens: n("output_tokens")?,
        conversations: n("conversations")?,
    })
}

fn model_usage_of(row: &QueryResult) -> Result<ModelUsage, DbErr> {
    Ok(ModelUsage {
        model: row.try_get("", "model")?,
        provider: row.try_get("", "provider")?,
        usage: usage_of(row)?,
    })
}

/// Days since 1970-01-01.
fn day_number(day: NaiveDate) -> i32 {
    i32::try_from((day - NaiveDate::default()).num_days()).unwrap_or(i32::MAX)
}

fn day_of(number: i32) -> NaiveDate {
    NaiveDate::default() + chrono::Duration::days(i64::from(number))
}

fn u64_value(n: u64) -> Value {
    Value::from(i64::try_from(n).unwrap_or(i64::MAX))
}

fn token_from_row(row: &QueryResult) -> Result<ServiceToken, StoreError> {
    let get = |column: &str| row.try_get::<String>("", column).map_err(db("reading a token"));
    let get_opt =
        |column: &str| row.try_get::<Option<i64>>("", column).map_err(db("reading a token"));
    let id = get("id")?;
    Ok(ServiceToken {
        id: Uuid::parse_str(&id).map_err(|_| StoreError::msg("a service token id is corrupt"))?,
        name: get("name")?,
        created_by: row
            .try_get::<Option<String>>("", "created_by")
            .map_err(db("reading a token"))?
            .map(|id| user_id(&id))
            .transpose()?,
        created_at: instant(row.try_get::<i64>("", "created_at").map_err(db("reading a token"))?)?,
        last_used_at: opt_instant(get_opt("last_used_at")?)?,
        revoked_at: opt_instant(get_opt("revoked_at")?)?,
    })
}

const TOKEN_COLUMNS: &str = "id, name, created_by, created_at, last_used_at, revoked_at";

#[async_trait]
impl ServiceTokenRepository for SqlStore {
    async fn insert_service_token(
        &self,
        token: ServiceToken,
        hash: TokenHash,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let token = &token;
        let hash = &hash;
        let audit = &audit;
        retry_transaction(move || async move {
            let backend = self.backend();
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let mut sql = Sql::new(
                backend,
                "INSERT INTO service_tokens (id, name, token_hash, created_by, created_at, \
                 last_used_at, revoked_at) VALUES ",
            );
            sql.row(vec![
                token.id.to_string().into(),
                token.name.clone().into(),
                hash.to_hex().into(),
                token.created_by.map(|id| id.to_string()).into(),
                micros(token.created_at).into(),
                Value::from(Option::<i64>::None),
                Value::from(Option::<i64>::None),
            ]);
            txn.execute_raw(sql.statement()).await.map_err(db("storing a service token"))?;
            write_audit(&txn, audit).await?;
            txn.commit().await.map_err(db("committing a service token"))
        })
        .await
    }

    async fn service_tokens(&self) -> Result<Vec<ServiceToken>, StoreError> {
        let sql = Sql::new(
            self.backend(),
            &format!(
                "SELECT {TOKEN_COLUMNS} FROM service_tokens ORDER BY created_at DESC, id DESC"
            ),
        );
        let rows = self.db.query_all_raw(sql.statement()).await.map_err(db("listing tokens"))?;
        rows.iter().map(token_from_row).collect()
    }

    async fn service_token_by_hash(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<ServiceToken>, StoreError> {
        let mut sql = Sql::new(
            self.backend(),
            &format!("SELECT {TOKEN_COLUMNS} FROM service_tokens WHERE token_hash = "),
        );
        sql.bind(hash.to_hex());
        let row = self.db.query_one_raw(sql.statement()).await.map_err(db("finding a token"))?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn revoke_service_token(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<Option<ServiceToken>, StoreError> {
        let audit = &audit;
        retry_transaction(move || async move {
            let backend = self.backend();
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let mut revoke = Sql::new(backend, "UPDATE service_tokens SET revoked_at = ");
            revoke.bind(micros(at)).push(" WHERE id = ").bind(id.to_string());
            revoke.push(" AND revoked_at IS NULL");
            let revoked =
                txn.execute_raw(revoke.statement()).await.map_err(db("revoking a token"))?;
            if revoked.rows_affected() == 1 {
                write_audit(&txn, audit).await?;
            }
            let mut read = Sql::new(
                backend,
                &format!("SELECT {TOKEN_COLUMNS} FROM service_tokens WHERE id = "),
            );
            read.bind(id.to_string());
            let row = txn.query_one_raw(read.statement()).await.map_err(db("reading a token"))?;
            let token = row.as_ref().map(token_from_row).transpose()?;
            txn.commit().await.map_err(db("committing a revocation"))?;
            Ok(token)
        })
        .await
    }

    async fn touch_service_token(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut sql = Sql::new(self.backend(), "UPDATE service_tokens SET last_used_at = ");
        sql.bind(micros(at)).push(" WHERE id = ").bind(id.to_string());
        self.db.execute_raw(sql.statement()).await.map_err(db("recording token use"))?;
        Ok(())
    }
}

/// What one event adds (`started`: it starts its conversation).
fn usage_of_event(event: &UsageEvent, started: bool) -> Usage {
    Usage {
        events: 1,
        input_tokens: event.input_tokens,
        output_tokens: event.output_tokens,
        conversations: u64::from(started),
    }
}

/// Sums keyed by something, with the latest event seen.
#[derive(Default)]
struct Sum {
    usage: Usage,
    last_at: i64,
}

impl Sum {
    fn add(&mut self, event: &UsageEvent, started: bool) {
        self.usage = self.usage.plus(usage_of_event(event, started));
        self.last_at = self.last_at.max(micros(event.occurred_at));
    }

    fn values(&self) -> [Value; 4] {
        usage_values(self.usage)
    }
}

/// `INSERT … ON CONFLICT … DO UPDATE` adding to the sums (and keeping the
/// latest `last_at`, when the table has one).
fn upsert_add(
    backend: DbBackend,
    table: &str,
    keys: &[&str],
    has_last_at: bool,
    rows: Vec<Vec<Value>>,
) -> Vec<Statement> {
    let mut added = vec!["events", "input_tokens", "output_tokens", "conversations"];
    let mut columns: Vec<&str> = keys.to_vec();
    columns.extend(&added);
    if has_last_at {
        columns.push("last_at");
    }
    let mut assignments: Vec<String> = Vec::new();
    for column in added.drain(..) {
        assignments.push(match backend {
            DbBackend::MySql => format!("{column} = {column} + VALUES({column})"),
            _ => format!("{column} = {table}.{column} + excluded.{column}"),
        });
    }
    if has_last_at {
        assignments.push(match backend {
            DbBackend::MySql => "last_at = GREATEST(last_at, VALUES(last_at))".to_owned(),
            DbBackend::Postgres => format!("last_at = GREATEST({table}.last_at, excluded.last_at)"),
            _ => format!("last_at = MAX({table}.last_at, excluded.last_at)"),
        });
    }
    upsert(backend, table, keys, &columns, &assignments, &rows)
}

/// `INSERT INTO table (columns) VALUES … ON CONFLICT (keys) DO UPDATE SET
/// assignments` (MySQL: `ON DUPLICATE KEY UPDATE`), in statements of at most
/// [`ROWS_PER_STATEMENT`] rows.
fn upsert(
    backend: DbBackend,
    table: &str,
    keys: &[&str],
    columns: &[&str],
    assignments: &[String],
    rows: &[Vec<Value>],
) -> Vec<Statement> {
    let tail = match backend {
        DbBackend::MySql => format!(" ON DUPLICATE KEY UPDATE {}", assignments.join(", ")),
        _ => format!(" ON CONFLICT ({}) DO UPDATE SET {}", keys.join(", "), assignments.join(", ")),
    };
    rows.chunks(ROWS_PER_STATEMENT)
        .map(|chunk| {
            let mut sql =
                Sql::new(backend, &format!("INSERT INTO {table} ({}) VALUES ", columns.join(", ")));
            sql.rows(chunk);
            sql.push(&tail);
            sql.statement()
        })
        .collect()
}

/// `INSERT … ON CONFLICT … DO UPDATE` replacing the `values` columns of an
/// existing row with the new row's (each row: `keys`, then `values`).
fn upsert_replacing(
    backend: DbBackend,
    table: &str,
    keys: &[&str],
    values: &[&str],
    rows: &[Vec<Value>],
) -> Vec<Statement> {
    let assignments: Vec<String> = values
        .iter()
        .map(|c| match backend {
            DbBackend::MySql => format!("{c} = VALUES({c})"),
            _ => format!("{c} = excluded.{c}"),
        })
        .collect();
    let columns: Vec<&str> = keys.iter().chain(values).copied().collect();
    upsert(backend, table, keys, &columns, &assignments, rows)
}

/// `INSERT` that skips rows whose key exists.
fn insert_ignoring(
    backend: DbBackend,
    table: &str,
    columns: &[&str],
    rows: Vec<Vec<Value>>,
) -> Vec<Statement> {
    let (head, tail) = match backend {
        DbBackend::MySql => ("INSERT IGNORE INTO", ""),
        _ => ("INSERT INTO", " ON CONFLICT DO NOTHING"),
    };
    rows.chunks(ROWS_PER_STATEMENT)
        .map(|chunk| {
            let mut sql =
                Sql::new(backend, &format!("{head} {table} ({}) VALUES ", columns.join(", ")));
            sql.rows(chunk);
            sql.push(tail);
            sql.statement()
        })
        .collect()
}

/// Which of `candidates` exist in `table.column`.
async fn existing(
    txn: &DatabaseTransaction,
    table: &str,
    column: &str,
    candidates: &[String],
) -> Result<HashSet<String>, DbErr> {
    let mut found = HashSet::new();
    for chunk in candidates.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::new(
            txn.get_database_backend(),
            &format!("SELECT {column} FROM {table} WHERE {column} IN "),
        );
        sql.list(chunk.iter().map(|c| Value::from(c.clone())));
        for row in txn.query_all_raw(sql.statement()).await? {
            found.insert(row.try_get::<String>("", column)?);
        }
    }
    Ok(found)
}

/// The (period, first day) → users rows that `pairs` of users and days
/// make active.
fn activity_rows(pairs: &BTreeSet<(UserId, NaiveDate)>) -> BTreeMap<(Period, i32), Vec<String>> {
    let mut rows: BTreeMap<(Period, i32), BTreeSet<String>> = BTreeMap::new();
    for (user, day) in pairs {
        for period in [Period::Day, Period::Week, Period::Month] {
            rows.entry((period, day_number(period.start_of(*day))))
                .or_default()
                .insert(user.to_string());
        }
    }
    rows.into_iter().map(|(key, users)| (key, users.into_iter().collect())).collect()
}

/// Marks users active in periods, and adds the users new to each period to
/// its count. The insert skips rows already there (waiting, on PostgreSQL
/// and MySQL, for a concurrent transaction inserting the same row), so its
/// affected-row count is exactly the number of users new to the period.
async fn record_active(
    txn: &DatabaseTransaction,
    pairs: &BTreeSet<(UserId, NaiveDate)>,
) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    let mut added: Vec<Vec<Value>> = Vec::new();
    for ((period, start), users) in activity_rows(pairs) {
        let rows: Vec<Vec<Value>> = users
            .into_iter()
            .map(|user| vec![period.as_str().into(), start.into(), user.into()])
            .collect();
        let mut new = 0;
        for statement in
            insert_ignoring(backend, "active_users", &["period", "start_day", "user_id"], rows)
        {
            new += txn.execute_raw(statement).await?.rows_affected();
        }
        if new > 0 {
            added.push(vec![period.as_str().into(), start.into(), u64_value(new)]);
        }
    }
    let tail = match backend {
        DbBackend::MySql => " ON DUPLICATE KEY UPDATE users = users + VALUES(users)",
        _ => {
            " ON CONFLICT (period, start_day) DO UPDATE SET users = active_counts.users + excluded.users"
        }
    };
    for chunk in added.chunks(ROWS_PER_STATEMENT) {
        let mut sql =
            Sql::new(backend, "INSERT INTO active_counts (period, start_day, users) VALUES ");
        sql.rows(chunk);
        sql.push(tail);
        txn.execute_raw(sql.statement()).await?;
    }
    Ok(())
}

fn minus(a: Usage, b: Usage) -> Usage {
    Usage {
        events: a.events.saturating_sub(b.events),
        input_tokens: a.input_tokens.saturating_sub(b.input_tokens),
        output_tokens: a.output_tokens.saturating_sub(b.output_tokens),
        conversations: a.conversations.saturating_sub(b.conversations),
    }
}

fn usage_values(usage: Usage) -> [Value; 4] {
    [
        u64_value(usage.events),
        u64_value(usage.input_tokens),
        u64_value(usage.output_tokens),
        u64_value(usage.conversations),
    ]
}

/// Locks the rows of `users` that exist (in id order, so two batches take
/// them in the same order) and returns their ids. Batches for the same user
/// are serialised by it, so each reads the running totals the previous one
/// wrote. SQLite needs no lock: its writers are serialised already.
async fn lock_users(txn: &DatabaseTransaction, users: &[String]) -> Result<HashSet<String>, DbErr> {
    let backend = txn.get_database_backend();
    let lock = match backend {
        // Not FOR UPDATE: that would also block sessions and other rows
        // whose foreign key names the user.
        DbBackend::Postgres => " ORDER BY id FOR NO KEY UPDATE",
        DbBackend::MySql => " ORDER BY id FOR UPDATE",
        _ => "",
    };
    let mut found = HashSet::new();
    for chunk in users.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::new(backend, "SELECT id FROM users WHERE id IN ");
        sql.list(chunk.iter().map(|c| Value::from(c.clone())));
        sql.push(lock);
        for row in txn.query_all_raw(sql.statement()).await? {
            found.insert(row.try_get::<String>("", "id")?);
        }
    }
    Ok(found)
}

/// Adds a batch's usage per (user, day) to the users' running totals:
/// each row from the batch's first day on is rewritten with the totals
/// through its day. Events arrive in time order, so this is usually the
/// user's last row (updated) or a new one after it; an event for an
/// earlier day rewrites the user's rows since that day.
async fn add_to_running_totals(
    txn: &DatabaseTransaction,
    deltas: BTreeMap<(String, i32), Usage>,
) -> Result<(), DbErr> {
    let backend = txn.get_database_backend();
    let Some(first_day) = deltas.keys().map(|(_, day)| *day).min() else {
        return Ok(());
    };
    let users: Vec<String> =
        deltas.keys().map(|(user, _)| user.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    // Each user's rows from the batch's first day, and the last before it.
    let mut rows: HashMap<String, BTreeMap<i32, Usage>> = HashMap::new();
    let mut before: HashMap<String, Usage> = HashMap::new();
    for chunk in users.chunks(ROWS_PER_STATEMENT) {
        let mut later = Sql::new(
            backend,
            "SELECT user_id, day, events, input_tokens, output_tokens, conversations \
             FROM usage_user_totals WHERE user_id IN ",
        );
        later.list(chunk.iter().map(|u| Value::from(u.clone())));
        later.push(" AND day >= ").bind(first_day);
        for row in txn.query_all_raw(later.statement()).await? {
            rows.entry(row.try_get("", "user_id")?)
                .or_default()
                .insert(row.try_get("", "day")?, usage_of(&row)?);
        }
        // Driven from the users (one row each), so that each user's last
        // day is looked up once and its row found by the primary key;
        // PostgreSQL otherwise ran the MAX subquery for every row of theirs.
        let mut last = Sql::new(
            backend,
            "SELECT t.user_id, t.events, t.input_tokens, t.output_tokens, t.conversations \
             FROM (SELECT u.user_id, (SELECT MAX(m.day) FROM usage_user_totals m \
             WHERE m.user_id = u.user_id AND m.day < ",
        );
        last.bind(first_day)
            .push(") AS day FROM usage_users u WHERE u.user_id IN ")
            .list(chunk.iter().map(|u| Value::from(u.clone())))
            .push(") b JOIN usage_user_totals t ON t.user_id = b.user_id AND t.day = b.day");
        for row in txn.query_all_raw(last.statement()).await? {
            before.insert(row.try_get("", "user_id")?, usage_of(&row)?);
        }
    }
    let mut writes: Vec<Vec<Value>> = Vec::new();
    let mut latest: Vec<Vec<Value>> = Vec::new();
    for user in &users {
        let stored = rows.remove(user).unwrap_or_default();
        let added: BTreeMap<i32, Usage> = deltas
            .range((user.clone(), i32::MIN)..=(user.clone(), i32::MAX))
            .map(|((_, day), usage)| (*day, *usage))
            .collect();
        let Some(first_added) = added.keys().next().copied() else { continue };
        let days: BTreeSet<i32> = stored.keys().chain(added.keys()).copied().collect();
        let mut previous_stored = before.get(user).copied().unwrap_or_default();
        let mut total = previous_stored;
        for day in days {
            let own = stored.get(&day).map_or(Usage::default(), |cumulative| {
                let own = minus(*cumulative, previous_stored);
                previous_stored = *cumulative;
                own
            });
            total = total.plus(own).plus(added.get(&day).copied().unwrap_or_default());
            if day >= first_added {
                let mut row: Vec<Value> = vec![user.clone().into(), day.into()];
                row.extend(usage_values(total));
                writes.push(row);
            }
        }
        // Every row from the batch's first day was read: the last one is
        // the user's last.
        if let Some(last) = writes.last() {
            latest.push(last.clone());
        }
    }
    let sums = ["events", "input_tokens", "output_tokens", "conversations"];
    let mut statements =
        upsert_replacing(backend, "usage_user_totals", &["user_id", "day"], &sums, &writes);
    let mut last_columns = vec!["last_day"];
    last_columns.extend(sums);
    statements.extend(upsert_replacing(
        backend,
        "usage_users",
        &["user_id"],
        &last_columns,
        &latest,
    ));
    for statement in statements {
        txn.execute_raw(statement).await?;
    }
    Ok(())
}

impl SqlStore {
    /// One attempt at recording a batch; a unique violation means another
    /// batch recorded one of these events (or conversations) meanwhile.
    async fn try_record(&self, events: &[UsageEvent]) -> Result<RecordedUsage, DbErr> {
        let backend = self.backend();
        let txn = self.db.begin().await?;
        if backend == DbBackend::Sqlite {
            // Write first: SQLite has one writer, and a transaction that read
            // before another writer committed could not write at all.
            take_guard(&txn).await?;
        }
        let users: Vec<String> = events
            .iter()
            .map(|e| e.user_id.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Users first: a batch waiting here for another one with the same
        // users then sees that batch's events as recorded.
        let known = lock_users(&txn, &users).await?;
        let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
        let seen = existing(&txn, "usage_events", "event_id", &ids).await?;
        let mut recorded = RecordedUsage::default();
        let mut fresh: Vec<&UsageEvent> = Vec::new();
        for event in events {
            if seen.contains(&event.id) {
                recorded.duplicates.push(event.id.clone());
            } else if !known.contains(&event.user_id.to_string()) {
                recorded.unknown_users.push(event.id.clone());
            } else {
                fresh.push(event);
            }
        }
        if fresh.is_empty() {
            txn.commit().await?;
            return Ok(recorded);
        }
        // Every batch writes its rows in key order (events here, the
        // aggregates from sorted maps below), so two racing batches lock
        // them in the same order and cannot deadlock each other.
        fresh.sort_by(|a, b| a.id.cmp(&b.id));

        // Conversations seen before: their first event is already counted.
        // Looked up by exact (user, conversation) pairs: the primary key.
        let pairs: Vec<(String, String)> = fresh
            .iter()
            .map(|e| (e.user_id.to_string(), e.conversation_id.clone()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut known_conversations = HashSet::new();
        for chunk in pairs.chunks(ROWS_PER_STATEMENT) {
            let mut sql = Sql::new(
                backend,
                "SELECT user_id, conversation_id FROM usage_conversations \
                 WHERE (user_id, conversation_id) IN (",
            );
            for (i, (user, conversation)) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(",");
                }
                sql.row(vec![user.clone().into(), conversation.clone().into()]);
            }
            sql.push(")");
            for row in txn.query_all_raw(sql.statement()).await? {
                known_conversations.insert((
                    row.try_get::<String>("", "user_id")?,
                    row.try_get::<String>("", "conversation_id")?,
                ));
            }
        }
        // The first event of each new conversation in this batch starts it.
        let mut first_of: HashMap<(String, &str), (i64, &str)> = HashMap::new();
        let mut last_of: BTreeMap<(String, &str), i64> = BTreeMap::new();
        for event in &fresh {
            let key = (event.user_id.to_string(), event.conversation_id.as_str());
            let at = micros(event.occurred_at);
            let last = last_of.entry(key.clone()).or_insert(at);
            *last = (*last).max(at);
            if known_conversations.contains(&(key.0.clone(), key.1.to_owned())) {
                continue;
            }
            let first = first_of.entry(key).or_insert((at, event.id.as_str()));
            if (at, event.id.as_str()) < *first {
                *first = (at, event.id.as_str());
            }
        }
        let starters: HashSet<&str> = first_of.values().map(|(_, id)| *id).collect();

        let mut raw = Vec::with_capacity(fresh.len());
        let mut daily: BTreeMap<(String, i32, &str, &str), Sum> = BTreeMap::new();
        let mut user_days: BTreeMap<(String, i32), Usage> = BTreeMap::new();
        let mut model_days: BTreeMap<(i32, &str, &str), Sum> = BTreeMap::new();
        let mut active: BTreeSet<(UserId, NaiveDate)> = BTreeSet::new();
        for event in &fresh {
            let started = starters.contains(event.id.as_str());
            let user = event.user_id.to_string();
            let day = day_number(event.day());
            daily
                .entry((user.clone(), day, &event.model, &event.provider))
                .or_default()
                .add(event, started);
            let added = user_days.entry((user.clone(), day)).or_default();
            *added = added.plus(usage_of_event(event, started));
            model_days.entry((day, &event.model, &event.provider)).or_default().add(event, started);
            active.insert((event.user_id, event.day()));
            raw.push(vec![
                event.id.clone().into(),
                user.into(),
                event.conversation_id.clone().into(),
                event.model.clone().into(),
                event.provider.clone().into(),
                u64_value(event.input_tokens),
                u64_value(event.output_tokens),
                micros(event.occurred_at).into(),
            ]);
        }

        let mut statements = Vec::new();
        for chunk in raw.chunks(ROWS_PER_STATEMENT) {
            let mut sql = Sql::new(
                backend,
                "INSERT INTO usage_events (event_id, user_id, conversation_id, model, provider, \
                 input_tokens, output_tokens, occurred_at) VALUES ",
            );
            sql.rows(chunk);
            statements.push(sql.statement());
        }
        // New conversations are inserted (a concurrent batch starting the
        // same one makes this a unique violation, and the batch is retried);
        // known ones get their latest event.
        let mut new_conversations = Vec::new();
        let mut old_conversations = Vec::new();
        for ((user, conversation), last) in &last_of {
            let row: Vec<Value> =
                vec![user.clone().into(), (*conversation).to_owned().into(), (*last).into()];
            if known_conversations.contains(&(user.clone(), (*conversation).to_owned())) {
                old_conversations.push(row);
            } else {
                new_conversations.push(row);
            }
        }
        let last_at = match backend {
            DbBackend::MySql => "last_at = GREATEST(last_at, VALUES(last_at))".to_owned(),
            DbBackend::Postgres => {
                "last_at = GREATEST(usage_conversations.last_at, excluded.last_at)".to_owned()
            }
            _ => "last_at = MAX(usage_conversations.last_at, excluded.last_at)".to_owned(),
        };
        let on_conflict = match backend {
            DbBackend::MySql => format!(" ON DUPLICATE KEY UPDATE {last_at}"),
            _ => format!(" ON CONFLICT (user_id, conversation_id) DO UPDATE SET {last_at}"),
        };
        for (rows, tail) in [(new_conversations, ""), (old_conversations, on_conflict.as_str())] {
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut sql = Sql::new(
                    backend,
                    "INSERT INTO usage_conversations (user_id, conversation_id, last_at) VALUES ",
                );
                sql.rows(chunk);
                sql.push(tail);
                statements.push(sql.statement());
            }
        }
        statements.extend(upsert_add(
            backend,
            "usage_daily",
            &["user_id", "day", "model", "provider"],
            true,
            daily
                .into_iter()
                .map(|((user, day, model, provider), sum)| {
                    let mut row: Vec<Value> = vec![
                        user.into(),
                        day.into(),
                        model.to_owned().into(),
                        provider.to_owned().into(),
                    ];
                    row.extend(sum.values());
                    row.push(sum.last_at.into());
                    row
                })
                .collect(),
        ));
        statements.extend(upsert_add(
            backend,
            "usage_model_days",
            &["day", "model", "provider"],
            false,
            model_days
                .into_iter()
                .map(|((day, model, provider), sum)| {
                    let mut row: Vec<Value> =
                        vec![day.into(), model.to_owned().into(), provider.to_owned().into()];
                    row.extend(sum.values());
                    row
                })
                .collect(),
        ));
        for statement in statements {
            txn.execute_raw(statement).await?;
        }
        add_to_running_totals(&txn, user_days).await?;
        record_active(&txn, &active).await?;
        txn.commit().await?;
        Ok(recorded)
    }

    async fn query(&self, sql: Sql, context: &'static str) -> Result<Vec<QueryResult>, StoreError> {
        self.db.query_all_raw(sql.statement()).await.map_err(db(context))
    }
}

fn between(sql: &mut Sql, column: &str, range: DayRange) {
    sql.push(&format!(" WHERE {column} >= "))
        .bind(day_number(range.from))
        .push(&format!(" AND {column} <= "))
        .bind(day_number(range.to));
}

#[async_trait]
impl UsageRepository for SqlStore {
    async fn record_usage(&self, events: Vec<UsageEvent>) -> Result<RecordedUsage, StoreError> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.try_record(&events).await {
                Ok(recorded) => {
                    crate::analyze_if_grown(
                        &self.db,
                        &["usage_events", "usage_conversations", "usage_user_totals"],
                    )
                    .await;
                    return Ok(recorded);
                }
                // Another batch recorded some of these meanwhile: on the
                // next attempt they are duplicates. (A deadlock the database
                // broke — gap locks on MySQL — is retried the same way.)
                Err(e) if (is_unique_violation(&e) || is_retryable(&e)) && attempts < 5 => {}
                Err(e) => return Err(StoreError::new("recording usage events", e)),
            }
        }
    }

    async fn mark_active(&self, user: UserId, at: DateTime<Utc>) -> Result<(), StoreError> {
        retry_transaction(move || async move {
            let pairs = BTreeSet::from([(user, at.date_naive())]);
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            record_active(&txn, &pairs).await.map_err(db("recording activity"))?;
            txn.commit().await.map_err(db("committing activity"))
        })
        .await
    }

    async fn active_users(
        &self,
        period: Period,
        range: DayRange,
    ) -> Result<Vec<ActivePoint>, StoreError> {
        let mut sql =
            Sql::new(self.backend(), "SELECT start_day, users FROM active_counts WHERE period = ");
        sql.bind(period.as_str())
            .push(" AND start_day >= ")
            .bind(day_number(period.start_of(range.from)))
            .push(" AND start_day <= ")
            .bind(day_number(range.to))
            .push(" ORDER BY start_day");
        let rows = self.query(sql, "counting active users").await?;
        rows.iter()
            .map(|row| {
                Ok(ActivePoint {
                    start: day_of(row.try_get::<i32>("", "start_day")?),
                    users: row.try_get::<i64>("", "users")?.max(0).unsigned_abs(),
                })
            })
            .collect::<Result<_, DbErr>>()
            .map_err(db("reading active users"))
    }

    async fn usage_by_day(&self, range: DayRange) -> Result<Vec<DayUsage>, StoreError> {
        let backend = self.backend();
        let mut sql =
            Sql::new(backend, &format!("SELECT day, {} FROM usage_model_days", sums(backend)));
        between(&mut sql, "day", range);
        sql.push(" GROUP BY day ORDER BY day");
        let rows = self.query(sql, "summing usage by day").await?;
        rows.iter()
            .map(|row| Ok(DayUsage { day: day_of(row.try_get("", "day")?), usage: usage_of(row)? }))
            .collect::<Result<_, DbErr>>()
            .map_err(db("reading usage by day"))
    }

    async fn usage_by_model(&self, range: DayRange) -> Result<Vec<ModelUsage>, StoreError> {
        let backend = self.backend();
        let mut sql = Sql::new(
            backend,
            &format!("SELECT model, provider, {} FROM usage_model_days", sums(backend)),
        );
        between(&mut sql, "day", range);
        sql.push(" GROUP BY model, provider");
        let rows = self.query(sql, "summing usage by model").await?;
        rows.iter()
            .map(model_usage_of)
            .collect::<Result<_, DbErr>>()
            .map_err(db("reading usage by model"))
    }

    async fn top_users(&self, range: DayRange, limit: u32) -> Result<TopUsers, StoreError> {
        let backend = self.backend();
        let (to, from) = (day_number(range.to), day_number(range.from));
        // A user's usage over the range is their running totals at its end
        // minus those before its start. The end is their last totals (kept
        // in usage_users) when the range ends on or after their last active
        // day — a range ending today — and otherwise the last row on or
        // before it; the start is the last row before it. Both rankings
        // are taken from one pass over users.
        let mut sql = Sql::new(
            backend,
            &format!(
                "WITH per_user AS {}(SELECT u.user_id",
                if backend == DbBackend::MySql { "" } else { "MATERIALIZED " }
            ),
        );
        const COLUMNS: [&str; 4] = ["events", "input_tokens", "output_tokens", "conversations"];
        if backend == DbBackend::Postgres {
            // PostgreSQL would hash-join every running-totals row to find
            // the start rows (an equality on a correlated MAX); a LATERAL
            // lookup is one index probe per user, and the end's lookup runs
            // only for users active after the range.
            let (to, from) = (sql.numbered(to), sql.numbered(from));
            for column in COLUMNS {
                sql.push(&format!(
                    ", CASE WHEN u.last_day <= {to} THEN u.{column} \
                     ELSE COALESCE(e.{column}, 0) END - COALESCE(l.{column}, 0) AS {column}"
                ));
            }
            let last_row = |bound: &str| {
                format!(
                    "(SELECT h.events, h.input_tokens, h.output_tokens, h.conversations \
                     FROM usage_user_totals h WHERE h.user_id = u.user_id AND {bound} \
                     ORDER BY h.day DESC LIMIT 1)"
                )
            };
            sql.push(&format!(
                " FROM usage_users u LEFT JOIN LATERAL {} e ON TRUE \
                 LEFT JOIN LATERAL {} l ON TRUE)",
                last_row(&format!("u.last_day > {to} AND h.day <= {to}")),
                last_row(&format!("h.day < {from}")),
            ));
        } else {
            for column in COLUMNS {
                sql.push(", CASE WHEN u.last_day <= ")
                    .bind(to)
                    .push(&format!(
                        " THEN u.{column} ELSE COALESCE((SELECT h.{column} FROM \
                         usage_user_totals h WHERE h.user_id = u.user_id AND h.day <= "
                    ))
                    .bind(to)
                    .push(&format!(
                        " ORDER BY h.day DESC LIMIT 1), 0) END - COALESCE(l.{column}, 0) AS \
                         {column}"
                    ));
            }
            // Two index seeks per user: the MAX, then its row.
            sql.push(
                " FROM usage_users u LEFT JOIN usage_user_totals l ON l.user_id = u.user_id \
                 AND l.day = (SELECT MAX(m.day) FROM usage_user_totals m \
                 WHERE m.user_id = u.user_id AND m.day < ",
            )
            .bind(from)
            .push("))");
        }
        for (i, (name, score)) in
            [("tokens", "input_tokens + output_tokens"), ("conversations", "conversations")]
                .into_iter()
                .enumerate()
        {
            sql.push(if i == 0 { " " } else { " UNION ALL " });
            sql.push(&format!(
                "SELECT '{name}' AS ranking, r.* FROM (SELECT * FROM per_user \
                 WHERE {score} > 0 ORDER BY {score} DESC, user_id LIMIT "
            ))
            .bind(i64::from(limit))
            .push(") r");
        }
        let rows = self.query(sql, "ranking users").await?;
        let mut top = TopUsers::default();
        for row in &rows {
            let read = |row: &QueryResult| -> Result<(String, String, Usage), DbErr> {
                Ok((row.try_get("", "ranking")?, row.try_get("", "user_id")?, usage_of(row)?))
            };
            let (ranking, id, usage) = read(row).map_err(db("reading top users"))?;
            let entry = UserUsage { user_id: user_id(&id)?, usage, user: None };
            if ranking == "tokens" {
                top.by_tokens.push(entry);
            } else {
                top.by_conversations.push(entry);
            }
        }
        // UNION ALL keeps each side's rows but not their order.
        for (list, ranking) in [
            (&mut top.by_tokens, Ranking::Tokens),
            (&mut top.by_conversations, Ranking::Conversations),
        ] {
            list.sort_by(|a, b| {
                ranking
                    .score(&b.usage)
                    .cmp(&ranking.score(&a.usage))
                    .then_with(|| a.user_id.to_string().cmp(&b.user_id.to_string()))
            });
        }
        Ok(top)
    }

    async fn user_usage(
        &self,
        user: UserId,
        range: DayRange,
    ) -> Result<(Option<DateTime<Utc>>, Vec<ModelUsage>), StoreError> {
        let backend = self.backend();
        let mut last =
            Sql::new(backend, "SELECT MAX(last_at) AS last_at FROM usage_daily WHERE user_id = ");
        last.bind(user.to_string());
        let row = self.query(last, "reading last activity").await?;
        let last_at = row
            .first()
            .map(|r| r.try_get::<Option<i64>>("", "last_at"))
            .transpose()
            .map_err(db("reading last activity"))?
            .flatten();
        let mut sql = Sql::new(
            backend,
            &format!("SELECT model, provider, {} FROM usage_daily WHERE user_id = ", sums(backend)),
        );
        sql.bind(user.to_string())
            .push(" AND day >= ")
            .bind(day_number(range.from))
            .push(" AND day <= ")
            .bind(day_number(range.to))
            .push(" GROUP BY model, provider");
        let rows = self.query(sql, "summing a user's usage").await?;
        let models = rows
            .iter()
            .map(model_usage_of)
            .collect::<Result<_, DbErr>>()
            .map_err(db("reading a user's usage"))?;
        Ok((opt_instant(last_at)?, models))
    }

    async fn purge_usage_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let backend = self.backend();
        let mut events = Sql::new(backend, "DELETE FROM usage_events WHERE occurred_at < ");
        events.bind(micros(before));
        let deleted =
            self.db.execute_raw(events.statement()).await.map_err(db("deleting old events"))?;
        let mut conversations =
            Sql::new(backend, "DELETE FROM usage_conversations WHERE last_at < ");
        conversations.bind(micros(before));
        self.db
            .execute_raw(conversations.statement())
            .await
            .map_err(db("deleting old conversations"))?;
        Ok(deleted.rows_affected())
    }
}
