//! The service-token and usage ports. A batch of events is written in one
//! transaction with every aggregate it changes, so the dashboards read
//! small pre-summed tables and never the raw events; the raw events only
//! serve idempotency until retention deletes them.

pub(crate) mod sql;
mod write;

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, TransactionTrait};
use secureai_domain::analytics::models::{
    ActivePoint, DayRange, DayUsage, ModelUsage, Period, Ranking, RecordedUsage, TopUsers, Usage,
    UsageEvent, UserUsage,
};
use secureai_domain::analytics::ports::UsageRepository;
use secureai_domain::{StoreError, UserId};

use crate::convert::{db, micros, opt_instant, user_id};
use crate::{SqlStore, is_retryable, is_unique_violation, retry_transaction};
use sql::{Sql, between, day_number, day_of, model_usage_of, sums, usage_of};
use write::record_active;

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
        // Marked today already (every sign-in after the day's first): the
        // day's row is there, and with it the week's and the month's, which
        // the same transaction wrote. One read instead of a transaction.
        let day = at.date_naive();
        let mut sql = Sql::new(self.backend(), "SELECT COUNT(*) FROM active_users WHERE period = ");
        sql.bind(Period::Day.as_str())
            .push(" AND start_day = ")
            .bind(day_number(Period::Day.start_of(day)))
            .push(" AND user_id = ")
            .bind(user.to_string());
        let marked = self.read_column::<i64>(sql.statement(), "reading activity").await?;
        if marked.first().is_some_and(|n| *n > 0) {
            return Ok(());
        }
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
