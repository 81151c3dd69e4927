//! The SQL the usage tables need, written once for the three databases:
//! a statement builder with each backend's placeholders, and the sums and
//! day numbers the aggregate tables keep.

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};
use secureai_domain::StoreError;
use secureai_domain::analytics::models::{DayRange, ModelUsage, Usage};

use crate::SqlStore;
use crate::convert::db;

/// Rows per multi-row statement: under every database's parameter limit
/// for the widest row (9 values).
pub(crate) const ROWS_PER_STATEMENT: usize = 500;

/// Builds one statement's SQL with the backend's placeholders.
pub(crate) struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    pub(crate) fn new(backend: DbBackend, text: &str) -> Self {
        Self { backend, text: text.to_owned(), values: Vec::new() }
    }

    /// Appends `text`.
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub(crate) fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
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
    pub(crate) fn numbered(&mut self, value: impl Into<Value>) -> String {
        debug_assert_eq!(self.backend, DbBackend::Postgres);
        self.values.push(value.into());
        format!("${}", self.values.len())
    }

    /// Appends `(?, ?, …)` for one row.
    pub(crate) fn row(&mut self, values: Vec<Value>) -> &mut Self {
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
    pub(crate) fn rows(&mut self, rows: &[Vec<Value>]) -> &mut Self {
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            self.row(row.clone());
        }
        self
    }

    /// Appends `(?, ?, …)` for a list.
    pub(crate) fn list(&mut self, values: impl IntoIterator<Item = Value>) -> &mut Self {
        self.row(values.into_iter().collect())
    }

    pub(crate) fn statement(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}

/// `SUM(col)` as a BIGINT on every database (PostgreSQL and MySQL widen
/// sums of BIGINT to NUMERIC/DECIMAL).
pub(crate) fn sum(backend: DbBackend, expr: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("CAST(SUM({expr}) AS BIGINT)"),
        DbBackend::MySql => format!("CAST(SUM({expr}) AS SIGNED)"),
        _ => format!("SUM({expr})"),
    }
}

/// The four sums of an aggregate table, as `events, input_tokens, …`.
pub(crate) fn sums(backend: DbBackend) -> String {
    ["events", "input_tokens", "output_tokens", "conversations"]
        .iter()
        .map(|c| format!("{} AS {c}", sum(backend, c)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn usage_of(row: &QueryResult) -> Result<Usage, DbErr> {
    let n = |column: &str| row.try_get::<i64>("", column).map(|v| v.max(0).unsigned_abs());
    Ok(Usage {
        events: n("events")?,
        input_tokens: n("input_tokens")?,
        output_tokens: n("output_tokens")?,
        conversations: n("conversations")?,
    })
}

pub(crate) fn model_usage_of(row: &QueryResult) -> Result<ModelUsage, DbErr> {
    Ok(ModelUsage {
        model: row.try_get("", "model")?,
        provider: row.try_get("", "provider")?,
        usage: usage_of(row)?,
    })
}

/// Days since 1970-01-01.
pub(crate) fn day_number(day: NaiveDate) -> i32 {
    i32::try_from((day - NaiveDate::default()).num_days()).unwrap_or(i32::MAX)
}

pub(crate) fn day_of(number: i32) -> NaiveDate {
    NaiveDate::default() + chrono::Duration::days(i64::from(number))
}

pub(crate) fn u64_value(n: u64) -> Value {
    Value::from(i64::try_from(n).unwrap_or(i64::MAX))
}

pub(crate) fn between(sql: &mut Sql, column: &str, range: DayRange) {
    sql.push(&format!(" WHERE {column} >= "))
        .bind(day_number(range.from))
        .push(&format!(" AND {column} <= "))
        .bind(day_number(range.to));
}

impl SqlStore {
    pub(crate) async fn query(
        &self,
        sql: Sql,
        context: &'static str,
    ) -> Result<Vec<QueryResult>, StoreError> {
        self.db.query_all_raw(sql.statement()).await.map_err(db(context))
    }
}
