//! Webhook deliveries: written with the audit events that cause them (in
//! the change's transaction), claimed with a lease, recorded per attempt.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, TransactionTrait, Value};
use secureai_domain::webhooks::deliveries::{
    AttemptOutcome, Delivery, DeliveryState, DueDelivery, GIVE_UP_AFTER,
};
use secureai_domain::webhooks::events::{WebhookEvent, event_of};
use secureai_domain::{AuditEvent, StoreError};
use uuid::Uuid;

use crate::audit::write_audit;
use crate::convert::{db, instant, micros, opt_instant, user_id};
use crate::usage::sql::{ROWS_PER_STATEMENT, Sql};
use crate::{SqlStore, retry_transaction};

const COLUMNS: &str = "d.id, d.endpoint_id, d.message_id, d.event_type, d.user_id, d.created_at, \
                       d.status, d.attempts, d.next_attempt_at, d.give_up_at, d.last_attempt_at, \
                       d.last_status, d.last_error, d.delivered_at";

const INSERT: &str = "INSERT INTO webhook_deliveries (id, endpoint_id, message_id, event_type, \
                      user_id, dedupe_key, body, created_at, status, attempts, next_attempt_at, \
                      give_up_at) VALUES ";

fn delivery_row(delivery: &Delivery, dedupe: Option<&str>, body: &str) -> Vec<Value> {
    vec![
        delivery.id.to_string().into(),
        delivery.endpoint_id.to_string().into(),
        delivery.message_id.clone().into(),
        delivery.event_type.clone().into(),
        delivery.user_id.map(|u| u.to_string()).into(),
        dedupe.map(str::to_owned).into(),
        body.to_owned().into(),
        micros(delivery.created_at).into(),
        delivery.state.as_str().into(),
        i32::try_from(delivery.attempts).unwrap_or(i32::MAX).into(),
        micros(delivery.next_attempt_at).into(),
        micros(delivery.give_up_at).into(),
    ]
}

fn delivery_from(row: &QueryResult) -> Result<Delivery, StoreError> {
    let read = || db("reading a webhook delivery");
    let id: String = row.try_get("", "id").map_err(read())?;
    let endpoint: String = row.try_get("", "endpoint_id").map_err(read())?;
    let user: Option<String> = row.try_get("", "user_id").map_err(read())?;
    let status: String = row.try_get("", "status").map_err(read())?;
    let attempts: i32 = row.try_get("", "attempts").map_err(read())?;
    let last_status: Option<i32> = row.try_get("", "last_status").map_err(read())?;
    let corrupt = || StoreError::msg("a webhook delivery is corrupt");
    Ok(Delivery {
        id: Uuid::parse_str(&id).map_err(|_| corrupt())?,
        endpoint_id: Uuid::parse_str(&endpoint).map_err(|_| corrupt())?,
        message_id: row.try_get("", "message_id").map_err(read())?,
        event_type: row.try_get("", "event_type").map_err(read())?,
        user_id: user.map(|u| user_id(&u)).transpose()?,
        created_at: instant(row.try_get("", "created_at").map_err(read())?)?,
        state: DeliveryState::parse(&status).ok_or_else(corrupt)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt_at: instant(row.try_get("", "next_attempt_at").map_err(read())?)?,
        last_attempt_at: opt_instant(row.try_get("", "last_attempt_at").map_err(read())?)?,
        last_status: last_status.and_then(|s| u16::try_from(s).ok()),
        last_error: row.try_get("", "last_error").map_err(read())?,
        delivered_at: opt_instant(row.try_get("", "delivered_at").map_err(read())?)?,
        give_up_at: instant(row.try_get("", "give_up_at").map_err(read())?)?,
    })
}

/// Writes, in the caller's transaction, one pending delivery per enabled
/// endpoint subscribed to the event each audit event maps to (none for
/// most audit events, and none at all while no endpoint exists).
pub(crate) async fn fan_out(
    txn: &impl ConnectionTrait,
    audits: &[&AuditEvent],
) -> Result<(), StoreError> {
    let events: Vec<(WebhookEvent, DateTime<Utc>)> =
        audits.iter().filter_map(|a| event_of(a).map(|e| (e, a.at))).collect();
    if events.is_empty() {
        return Ok(());
    }
    let backend = txn.get_database_backend();
    let sql =
        Sql::new(backend, "SELECT id, events FROM webhook_endpoints WHERE disabled_at IS NULL");
    let endpoints = txn.query_all_raw(sql.statement()).await.map_err(db("reading endpoints"))?;
    if endpoints.is_empty() {
        return Ok(());
    }
    let mut subscribed = Vec::with_capacity(endpoints.len());
    for row in &endpoints {
        let id: String = row.try_get("", "id").map_err(db("reading endpoints"))?;
        let names: String = row.try_get("", "events").map_err(db("reading endpoints"))?;
        let id = Uuid::parse_str(&id).map_err(|_| StoreError::msg("an endpoint id is corrupt"))?;
        subscribed.push((id, names));
    }
    let mut rows = Vec::new();
    for (event, at) in &events {
        for (endpoint, names) in &subscribed {
            if !names.split_whitespace().any(|n| n == event.event_type.as_str()) {
                continue;
            }
            let delivery = Delivery {
                id: secureai_domain::record_id(),
                endpoint_id: *endpoint,
                message_id: event.message_id.clone(),
                event_type: event.event_type.as_str().to_owned(),
                user_id: event.user_id,
                created_at: *at,
                state: DeliveryState::Pending,
                attempts: 0,
                next_attempt_at: *at,
                last_attempt_at: None,
                last_status: None,
                last_error: None,
                delivered_at: None,
                give_up_at: *at + GIVE_UP_AFTER,
            };
            let row = delivery_row(&delivery, event.dedupe_key.as_deref(), &event.body);
            if event.dedupe_key.is_some() {
                // At most one per endpoint and key (a unique index), also
                // when concurrent refusals race: the second is dropped.
                let (start, end) = match backend {
                    DbBackend::MySql => ("INSERT IGNORE", ""),
                    _ => ("INSERT", " ON CONFLICT DO NOTHING"),
                };
                let mut once = Sql::new(backend, &INSERT.replacen("INSERT", start, 1));
                once.row(row).push(end);
                txn.execute_raw(once.statement()).await.map_err(db("queueing a delivery"))?;
            } else {
                rows.push(row);
            }
        }
    }
    for chunk in rows.chunks(ROWS_PER_STATEMENT / 2) {
        let mut insert = Sql::new(backend, INSERT);
        insert.rows(chunk);
        txn.execute_raw(insert.statement()).await.map_err(db("queueing webhook deliveries"))?;
    }
    Ok(())
}

/// The update recording one attempt, only while `lease` holds it: a
/// worker whose lease ran out and was taken over must not overwrite the
/// other's outcome.
fn attempt_statement(
    backend: DbBackend,
    id: Uuid,
    lease: &str,
    outcome: AttemptOutcome,
) -> sea_orm::Statement {
    let mut sql = Sql::new(
        backend,
        "UPDATE webhook_deliveries SET attempts = attempts + 1, leased_until = NULL, \
         lease_token = NULL, status = ",
    );
    let (state, at, status, error, next, delivered) = match outcome {
        AttemptOutcome::Delivered { at, status } => {
            (DeliveryState::Delivered, at, Some(status), None, None, Some(at))
        }
        AttemptOutcome::Retry { at, retry_at, status, error } => {
            (DeliveryState::Pending, at, status, Some(error), Some(retry_at), None)
        }
        AttemptOutcome::Failed { at, status, error } => {
            (DeliveryState::Failed, at, status, Some(error), None, None)
        }
    };
    sql.bind(state.as_str()).push(", last_attempt_at = ").bind(micros(at));
    sql.push(", last_status = ").bind(Value::from(status.map(i32::from)));
    let error = error.map(|e| e.chars().take(500).collect::<String>());
    sql.push(", last_error = ").bind(Value::from(error));
    sql.push(", delivered_at = ").bind(Value::from(delivered.map(micros)));
    if let Some(next) = next {
        sql.push(", next_attempt_at = ").bind(micros(next));
    }
    sql.push(" WHERE id = ").bind(id.to_string());
    sql.push(" AND lease_token = ").bind(lease.to_owned());
    sql.statement()
}

impl SqlStore {
    pub(crate) async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let backend = self.backend();
        let now = micros(now);
        // Due, free deliveries to enabled endpoints, those about a user
        // first (a flood of anonymous events does not hold back a
        // deactivation), oldest first.
        let mut find = Sql::new(
            backend,
            "SELECT d.id, d.endpoint_id, d.user_id, d.seq FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.status = 'pending' AND e.disabled_at IS NULL AND d.next_attempt_at <= ",
        );
        find.bind(now).push(" AND (d.leased_until IS NULL OR d.leased_until <= ").bind(now);
        find.push(") ORDER BY CASE WHEN d.user_id IS NULL THEN 1 ELSE 0 END, d.seq LIMIT ");
        find.bind(i64::from(limit));
        let found =
            self.db.query_all_raw(find.statement()).await.map_err(db("finding due deliveries"))?;
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let read = || db("finding due deliveries");
        let mut candidates = Vec::with_capacity(found.len());
        for row in &found {
            let id: String = row.try_get("", "id").map_err(read())?;
            let endpoint: String = row.try_get("", "endpoint_id").map_err(read())?;
            let user: Option<String> = row.try_get("", "user_id").map_err(read())?;
            let seq: i64 = row.try_get("", "seq").map_err(read())?;
            candidates.push((id, endpoint, user, seq));
        }
        // Only the oldest pending delivery per endpoint and user goes: a
        // user's events arrive in order. One read for the candidates'
        // users (an older one may be pending but not due: a retry).
        let users: std::collections::BTreeSet<&String> =
            candidates.iter().filter_map(|(_, _, user, _)| user.as_ref()).collect();
        let mut heads = std::collections::HashMap::new();
        if !users.is_empty() {
            let mut oldest = Sql::new(
                backend,
                "SELECT endpoint_id, user_id, MIN(seq) AS head FROM webhook_deliveries \
                 WHERE status = 'pending' AND user_id IN ",
            );
            oldest.list(users.iter().map(|u| Value::from((*u).clone())));
            oldest.push(" GROUP BY endpoint_id, user_id");
            let rows = self.db.query_all_raw(oldest.statement()).await.map_err(read())?;
            for row in &rows {
                let endpoint: String = row.try_get("", "endpoint_id").map_err(read())?;
                let user: String = row.try_get("", "user_id").map_err(read())?;
                let head: i64 = row.try_get("", "head").map_err(read())?;
                heads.insert((endpoint, user), head);
            }
        }
        let ids: Vec<Value> = candidates
            .into_iter()
            .filter(|(_, endpoint, user, seq)| match user {
                None => true,
                Some(user) => heads.get(&(endpoint.clone(), user.clone())) == Some(seq),
            })
            .map(|(id, ..)| Value::from(id))
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Take the leases of those nobody took since: the token tells
        // which are ours.
        let token = secureai_domain::record_id().to_string();
        let mut lease = Sql::new(backend, "UPDATE webhook_deliveries SET leased_until = ");
        lease.bind(micros(lease_until)).push(", lease_token = ").bind(token.clone());
        lease.push(" WHERE status = 'pending' AND next_attempt_at <= ").bind(now);
        lease.push(" AND (leased_until IS NULL OR leased_until <= ").bind(now);
        lease.push(") AND id IN ").list(ids);
        self.db.execute_raw(lease.statement()).await.map_err(db("leasing deliveries"))?;
        let mut claimed = Sql::new(
            backend,
            &format!(
                "SELECT {COLUMNS}, d.body, e.url FROM webhook_deliveries d \
                 JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                 WHERE d.status = 'pending' AND d.lease_token = "
            ),
        );
        claimed.bind(token.clone()).push(" ORDER BY d.seq");
        let rows = self
            .db
            .query_all_raw(claimed.statement())
            .await
            .map_err(db("reading claimed deliveries"))?;
        rows.iter()
            .map(|row| {
                Ok(DueDelivery {
                    delivery: delivery_from(row)?,
                    url: row.try_get("", "url").map_err(db("reading a delivery"))?,
                    body: row.try_get("", "body").map_err(db("reading a delivery"))?,
                    lease: token.clone(),
                })
            })
            .collect()
    }

    pub(crate) async fn record_delivery_attempt(
        &self,
        id: Uuid,
        lease: &str,
        outcome: AttemptOutcome,
    ) -> Result<(), StoreError> {
        let statement = attempt_statement(self.backend(), id, lease, outcome);
        self.db.execute_raw(statement).await.map_err(db("recording a delivery"))?;
        Ok(())
    }

    /// A round's outcomes in one transaction: one commit, however many.
    pub(crate) async fn record_delivery_attempts(
        &self,
        attempts: Vec<(Uuid, String, AttemptOutcome)>,
    ) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let attempts = &attempts;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            for (id, lease, outcome) in attempts {
                let statement = attempt_statement(self.backend(), *id, lease, outcome.clone());
                txn.execute_raw(statement).await.map_err(db("recording a delivery"))?;
            }
            txn.commit().await.map_err(db("committing deliveries"))
        })
        .await
    }

    pub(crate) async fn find_delivery(
        &self,
        endpoint: Uuid,
        id: Uuid,
    ) -> Result<Option<(Delivery, bool)>, StoreError> {
        let mut sql = Sql::new(
            self.backend(),
            &format!("SELECT {COLUMNS}, d.seq FROM webhook_deliveries d WHERE d.id = "),
        );
        sql.bind(id.to_string()).push(" AND d.endpoint_id = ").bind(endpoint.to_string());
        let row = self.db.query_one_raw(sql.statement()).await.map_err(db("reading a delivery"))?;
        let Some(row) = row else { return Ok(None) };
        let found = delivery_from(&row)?;
        let Some(user) = found.user_id else { return Ok(Some((found, false))) };
        let seq: i64 = row.try_get("", "seq").map_err(db("reading a delivery"))?;
        let mut later = Sql::new(
            self.backend(),
            "SELECT seq FROM webhook_deliveries WHERE status = 'delivered' AND endpoint_id = ",
        );
        later.bind(endpoint.to_string()).push(" AND user_id = ").bind(user.to_string());
        later.push(" AND seq > ").bind(seq).push(" LIMIT 1");
        let later =
            self.db.query_one_raw(later.statement()).await.map_err(db("reading deliveries"))?;
        Ok(Some((found, later.is_some())))
    }

    pub(crate) async fn list_deliveries(
        &self,
        endpoint: Uuid,
        state: Option<DeliveryState>,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut sql = Sql::new(
            self.backend(),
            &format!("SELECT {COLUMNS} FROM webhook_deliveries d WHERE d.endpoint_id = "),
        );
        sql.bind(endpoint.to_string());
        if let Some(state) = state {
            sql.push(" AND d.status = ").bind(state.as_str());
        }
        if let Some((at, id)) = before {
            sql.push(" AND (d.created_at < ").bind(micros(at));
            sql.push(" OR (d.created_at = ").bind(micros(at));
            sql.push(" AND d.id < ").bind(id.to_string()).push("))");
        }
        sql.push(" ORDER BY d.created_at DESC, d.id DESC LIMIT ").bind(i64::from(limit));
        let rows =
            self.db.query_all_raw(sql.statement()).await.map_err(db("listing deliveries"))?;
        rows.iter().map(delivery_from).collect()
    }

    pub(crate) async fn requeue_delivery(
        &self,
        endpoint: Uuid,
        id: Uuid,
        at: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let audit = &audit;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let mut sql = Sql::new(
                self.backend(),
                "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = ",
            );
            sql.bind(micros(at)).push(", give_up_at = ").bind(micros(at + GIVE_UP_AFTER));
            sql.push(" WHERE status = 'failed' AND id = ").bind(id.to_string());
            sql.push(" AND endpoint_id = ").bind(endpoint.to_string());
            let done = txn.execute_raw(sql.statement()).await.map_err(db("retrying a delivery"))?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            write_audit(&txn, audit).await?;
            txn.commit().await.map_err(db("committing a retry"))?;
            Ok(true)
        })
        .await
    }

    pub(crate) async fn insert_delivery(
        &self,
        delivery: &Delivery,
        body: &str,
    ) -> Result<(), StoreError> {
        let mut sql = Sql::new(self.backend(), INSERT);
        sql.row(delivery_row(delivery, None, body));
        self.db.execute_raw(sql.statement()).await.map_err(db("queueing a delivery"))?;
        Ok(())
    }
}
