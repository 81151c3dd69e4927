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
    Usage, UsageEvent, UserUsage,
};
use secureai_domain::analytics::ports::{ServiceTokenRepository, UsageRepository};
use secureai_domain::{AuditEvent, StoreError, TokenHash, UserId};
use uuid::Uuid;

use crate::audit::write_audit;
use crate::convert::{db, instant, micros, opt_instant, user_id};
use crate::{SqlStore, is_unique_violation, take_guard};

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
        write_audit(&txn, &audit).await?;
        txn.commit().await.map_err(db("committing a service token"))
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
        let backend = self.backend();
        let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
        let mut revoke = Sql::new(backend, "UPDATE service_tokens SET revoked_at = ");
        revoke.bind(micros(at)).push(" WHERE id = ").bind(id.to_string());
        revoke.push(" AND revoked_at IS NULL");
        let revoked = txn.execute_raw(revoke.statement()).await.map_err(db("revoking a token"))?;
        if revoked.rows_affected() == 1 {
            write_audit(&txn, &audit).await?;
        }
        let mut read =
            Sql::new(backend, &format!("SELECT {TOKEN_COLUMNS} FROM service_tokens WHERE id = "));
        read.bind(id.to_string());
        let row = txn.query_one_raw(read.statement()).await.map_err(db("reading a token"))?;
        let token = row.as_ref().map(token_from_row).transpose()?;
        txn.commit().await.map_err(db("committing a revocation"))?;
        Ok(token)
    }

    async fn touch_service_token(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut sql = Sql::new(self.backend(), "UPDATE service_tokens SET last_used_at = ");
        sql.bind(micros(at)).push(" WHERE id = ").bind(id.to_string());
        self.db.execute_raw(sql.statement()).await.map_err(db("recording token use"))?;
        Ok(())
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
        self.usage = self.usage.plus(Usage {
            events: 1,
            input_tokens: event.input_tokens,
            output_tokens: event.output_tokens,
            conversations: u64::from(started),
        });
        self.last_at = self.last_at.max(micros(event.occurred_at));
    }

    fn values(&self) -> [Value; 4] {
        [
            u64_value(self.usage.events),
            u64_value(self.usage.input_tokens),
            u64_value(self.usage.output_tokens),
            u64_value(self.usage.conversations),
        ]
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

fn activity_rows(pairs: &BTreeSet<(UserId, NaiveDate)>) -> Vec<Vec<Value>> {
    let mut rows = BTreeSet::new();
    for (user, day) in pairs {
        for period in [Period::Day, Period::Week, Period::Month] {
            rows.insert((period, day_number(period.start_of(*day)), *user));
        }
    }
    rows.into_iter()
        .map(|(period, start, user)| {
            vec![period.as_str().into(), start.into(), user.to_string().into()]
        })
        .collect()
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
        let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
        let seen = existing(&txn, "usage_events", "event_id", &ids).await?;
        let users: Vec<String> = events
            .iter()
            .map(|e| e.user_id.to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let known = existing(&txn, "users", "id", &users).await?;
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
        let mut user_days: BTreeMap<(i32, String), Sum> = BTreeMap::new();
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
            user_days.entry((day, user.clone())).or_default().add(event, started);
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
            "usage_user_days",
            &["day", "user_id"],
            false,
            user_days
                .into_iter()
                .map(|((day, user), sum)| {
                    let mut row: Vec<Value> = vec![day.into(), user.into()];
                    row.extend(sum.values());
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
        statements.extend(insert_ignoring(
            backend,
            "active_users",
            &["period", "start_day", "user_id"],
            activity_rows(&active),
        ));
        for statement in statements {
            txn.execute_raw(statement).await?;
        }
        txn.commit().await?;
        Ok(recorded)
    }

    async fn query(&self, sql: Sql, context: &'static str) -> Result<Vec<QueryResult>, StoreError> {
        self.db.query_all_raw(sql.statement()).await.map_err(db(context))
    }
}

/// Whether the database aborted the transaction to break a deadlock
/// (PostgreSQL `40P01`, MySQL/MariaDB 1213).
fn is_deadlock(error: &DbErr) -> bool {
    error.to_string().to_ascii_lowercase().contains("deadlock")
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
                Ok(recorded) => return Ok(recorded),
                // Another batch recorded some of these meanwhile: on the
                // next attempt they are duplicates. (A deadlock the database
                // broke — gap locks on MySQL — is retried the same way.)
                Err(e) if (is_unique_violation(&e) || is_deadlock(&e)) && attempts < 5 => {}
                Err(e) => return Err(StoreError::new("recording usage events", e)),
            }
        }
    }

    async fn mark_active(&self, user: UserId, at: DateTime<Utc>) -> Result<(), StoreError> {
        let pairs = BTreeSet::from([(user, at.date_naive())]);
        for statement in insert_ignoring(
            self.backend(),
            "active_users",
            &["period", "start_day", "user_id"],
            activity_rows(&pairs),
        ) {
            self.db.execute_raw(statement).await.map_err(db("recording activity"))?;
        }
        Ok(())
    }

    async fn active_users(
        &self,
        period: Period,
        range: DayRange,
    ) -> Result<Vec<ActivePoint>, StoreError> {
        let mut sql = Sql::new(
            self.backend(),
            "SELECT start_day, COUNT(*) AS users FROM active_users WHERE period = ",
        );
        sql.bind(period.as_str())
            .push(" AND start_day >= ")
            .bind(day_number(period.start_of(range.from)))
            .push(" AND start_day <= ")
            .bind(day_number(range.to))
            .push(" GROUP BY start_day ORDER BY start_day");
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

    async fn top_users(
        &self,
        range: DayRange,
        ranking: Ranking,
        limit: u32,
    ) -> Result<Vec<UserUsage>, StoreError> {
        let backend = self.backend();
        let score = match ranking {
            Ranking::Tokens => sum(backend, "input_tokens + output_tokens"),
            Ranking::Conversations => sum(backend, "conversations"),
        };
        let mut sql = Sql::new(
            backend,
            &format!("SELECT user_id, {}, {score} AS score FROM usage_user_days", sums(backend)),
        );
        between(&mut sql, "day", range);
        sql.push(&format!(
            " GROUP BY user_id HAVING {score} > 0 ORDER BY score DESC, user_id LIMIT "
        ))
        .bind(i64::from(limit));
        let rows = self.query(sql, "ranking users").await?;
        let mut users = Vec::with_capacity(rows.len());
        for row in &rows {
            let id = row.try_get::<String>("", "user_id").map_err(db("reading top users"))?;
            users.push(UserUsage {
                user_id: user_id(&id)?,
                usage: usage_of(row).map_err(db("reading top users"))?,
                user: None,
            });
        }
        Ok(users)
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
