//! Recording a batch of usage events: one transaction writes the events
//! and every aggregate they change, retried when another batch recorded
//! some of them meanwhile.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement, TransactionTrait, Value,
};
use secureai_domain::UserId;
use secureai_domain::analytics::models::{Period, RecordedUsage, Usage, UsageEvent};

use super::sql::{ROWS_PER_STATEMENT, Sql, day_number, u64_value, usage_of};
use crate::convert::micros;
use crate::{SqlStore, take_guard};

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
pub(super) async fn record_active(
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
    pub(super) async fn try_record(&self, events: &[UsageEvent]) -> Result<RecordedUsage, DbErr> {
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
}
