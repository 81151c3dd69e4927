//! The webhook endpoint port: endpoints with their signing secrets sealed
//! by the operator key.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, QueryResult, TransactionTrait, Value};
use secureai_domain::webhooks::deliveries::{AttemptOutcome, Delivery, DeliveryState, DueDelivery};
use secureai_domain::webhooks::models::{EventType, WebhookEndpoint};
use secureai_domain::webhooks::ports::WebhookRepository;
use secureai_domain::webhooks::signature::WebhookSecret;
use secureai_domain::{AuditEvent, StoreError};
use uuid::Uuid;

use crate::audit::write_audit;
use crate::convert::{db, instant, micros, opt_instant, user_id};
use crate::usage::sql::Sql;
use crate::{SqlStore, retry_transaction};

/// The sealing purpose of a secret: bound to its endpoint, so a sealed
/// secret copied to another row does not open.
fn purpose(id: Uuid) -> String {
    format!("webhook.secret:{id}")
}

const COLUMNS: &str = "id, url, events, created_at, created_by, disabled_at, disabled_reason";

fn endpoint_from_row(row: &QueryResult) -> Result<WebhookEndpoint, StoreError> {
    let read = || db("reading a webhook endpoint");
    let id: String = row.try_get("", "id").map_err(read())?;
    let events: String = row.try_get("", "events").map_err(read())?;
    let created_by: Option<String> = row.try_get("", "created_by").map_err(read())?;
    let disabled_at = opt_instant(row.try_get("", "disabled_at").map_err(read())?)?;
    let reason: Option<String> = row.try_get("", "disabled_reason").map_err(read())?;
    Ok(WebhookEndpoint {
        id: Uuid::parse_str(&id)
            .map_err(|_| StoreError::msg("a webhook endpoint id is corrupt"))?,
        url: row.try_get("", "url").map_err(read())?,
        // Events this version does not know (a newer one wrote them) are
        // not delivered here.
        events: events.split_whitespace().filter_map(EventType::parse).collect(),
        created_at: instant(row.try_get("", "created_at").map_err(read())?)?,
        created_by: created_by.map(|id| user_id(&id)).transpose()?,
        disabled: disabled_at.map(|at| (at, reason.unwrap_or_default())),
    })
}

fn events_to(endpoint: &WebhookEndpoint) -> String {
    endpoint.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(" ")
}

#[async_trait]
impl WebhookRepository for SqlStore {
    async fn insert_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        secret: &WebhookSecret,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let audit = &audit;
        let sealed = self.sealer.seal(&purpose(endpoint.id), secret.expose());
        let sealed = &sealed;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let mut sql = Sql::new(
                self.backend(),
                "INSERT INTO webhook_endpoints (id, url, events, secret, created_at, created_by, \
                 disabled_at, disabled_reason) VALUES ",
            );
            sql.row(vec![
                endpoint.id.to_string().into(),
                endpoint.url.clone().into(),
                events_to(endpoint).into(),
                sealed.clone().into(),
                micros(endpoint.created_at).into(),
                endpoint.created_by.map(|id| id.to_string()).into(),
                endpoint.disabled.as_ref().map(|(at, _)| micros(*at)).into(),
                endpoint.disabled.as_ref().map(|(_, why)| why.clone()).into(),
            ]);
            txn.execute_raw(sql.statement()).await.map_err(db("storing a webhook endpoint"))?;
            write_audit(&txn, audit).await?;
            txn.commit().await.map_err(db("committing a webhook endpoint"))
        })
        .await
    }

    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let sql = Sql::new(
            self.backend(),
            &format!("SELECT {COLUMNS} FROM webhook_endpoints ORDER BY created_at, id"),
        );
        let rows = self
            .db
            .query_all_raw(sql.statement())
            .await
            .map_err(db("listing webhook endpoints"))?;
        rows.iter().map(endpoint_from_row).collect()
    }

    async fn endpoint_secret(&self, id: Uuid) -> Result<Option<WebhookSecret>, StoreError> {
        let mut sql = Sql::new(self.backend(), "SELECT secret FROM webhook_endpoints WHERE id = ");
        sql.bind(id.to_string());
        let row = self.db.query_one_raw(sql.statement()).await.map_err(db("reading a secret"))?;
        let Some(row) = row else { return Ok(None) };
        let sealed: String = row.try_get("", "secret").map_err(db("reading a secret"))?;
        let opened = self.sealer.open(&purpose(id), &sealed)?;
        WebhookSecret::parse(&opened)
            .map(Some)
            .map_err(|_| StoreError::msg("a webhook secret is corrupt"))
    }

    async fn signing_secrets(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<WebhookSecret>, StoreError> {
        let mut sql = Sql::new(
            self.backend(),
            "SELECT secret, previous_secret, previous_until FROM webhook_endpoints WHERE id = ",
        );
        sql.bind(id.to_string());
        let row = self.db.query_one_raw(sql.statement()).await.map_err(db("reading a secret"))?;
        let Some(row) = row else { return Ok(Vec::new()) };
        let read = || db("reading a secret");
        let current: String = row.try_get("", "secret").map_err(read())?;
        let previous: Option<String> = row.try_get("", "previous_secret").map_err(read())?;
        let until = opt_instant(row.try_get("", "previous_until").map_err(read())?)?;
        let mut secrets = Vec::with_capacity(2);
        let open = |sealed: &str| {
            let opened = self.sealer.open(&purpose(id), sealed)?;
            WebhookSecret::parse(&opened)
                .map_err(|_| StoreError::msg("a webhook secret is corrupt"))
        };
        secrets.push(open(&current)?);
        if let (Some(previous), Some(until)) = (previous, until)
            && now < until
        {
            secrets.push(open(&previous)?);
        }
        Ok(secrets)
    }

    async fn rotate_secret(
        &self,
        id: Uuid,
        secret: &WebhookSecret,
        previous_until: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let audit = &audit;
        let sealed = self.sealer.seal(&purpose(id), secret.expose());
        let sealed = &sealed;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            // MySQL assigns left to right: the old secret is copied first.
            let mut sql = Sql::new(
                self.backend(),
                "UPDATE webhook_endpoints SET previous_secret = secret, secret = ",
            );
            sql.bind(sealed.clone()).push(", previous_until = ").bind(micros(previous_until));
            sql.push(" WHERE id = ").bind(id.to_string());
            let done = txn.execute_raw(sql.statement()).await.map_err(db("rotating a secret"))?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            write_audit(&txn, audit).await?;
            txn.commit().await.map_err(db("committing a rotation"))?;
            Ok(true)
        })
        .await
    }

    async fn update_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let audit = &audit;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let mut sql = Sql::new(self.backend(), "UPDATE webhook_endpoints SET url = ");
            sql.bind(endpoint.url.clone()).push(", events = ").bind(events_to(endpoint));
            sql.push(", disabled_at = ");
            sql.bind(Value::from(endpoint.disabled.as_ref().map(|(at, _)| micros(*at))));
            sql.push(", disabled_reason = ");
            sql.bind(Value::from(endpoint.disabled.as_ref().map(|(_, why)| why.clone())));
            sql.push(" WHERE id = ").bind(endpoint.id.to_string());
            let done =
                txn.execute_raw(sql.statement()).await.map_err(db("updating an endpoint"))?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            write_audit(&txn, audit).await?;
            txn.commit().await.map_err(db("committing an endpoint"))?;
            Ok(true)
        })
        .await
    }

    async fn delete_endpoint(&self, id: Uuid, audit: AuditEvent) -> Result<bool, StoreError> {
        let audit = &audit;
        retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            let mut sql = Sql::new(self.backend(), "DELETE FROM webhook_endpoints WHERE id = ");
            sql.bind(id.to_string());
            let done =
                txn.execute_raw(sql.statement()).await.map_err(db("deleting an endpoint"))?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            let mut sql =
                Sql::new(self.backend(), "DELETE FROM webhook_deliveries WHERE endpoint_id = ");
            sql.bind(id.to_string());
            txn.execute_raw(sql.statement()).await.map_err(db("deleting deliveries"))?;
            write_audit(&txn, audit).await?;
            txn.commit().await.map_err(db("committing a deletion"))?;
            Ok(true)
        })
        .await
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        self.claim_deliveries(now, lease_until, limit).await
    }

    async fn record_attempt(
        &self,
        id: Uuid,
        lease: &str,
        outcome: AttemptOutcome,
    ) -> Result<(), StoreError> {
        self.record_delivery_attempt(id, lease, outcome).await
    }

    async fn record_attempts(
        &self,
        attempts: Vec<(Uuid, String, AttemptOutcome)>,
    ) -> Result<(), StoreError> {
        self.record_delivery_attempts(attempts).await
    }

    async fn delivery(
        &self,
        endpoint: Uuid,
        id: Uuid,
    ) -> Result<Option<(Delivery, bool)>, StoreError> {
        self.find_delivery(endpoint, id).await
    }

    async fn disable_endpoint(
        &self,
        id: Uuid,
        url: &str,
        at: DateTime<Utc>,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let mut sql = Sql::new(self.backend(), "UPDATE webhook_endpoints SET disabled_at = ");
        sql.bind(micros(at)).push(", disabled_reason = ").bind(reason.to_owned());
        sql.push(" WHERE disabled_at IS NULL AND id = ").bind(id.to_string());
        sql.push(" AND url = ").bind(url.to_owned());
        let done =
            self.db.execute_raw(sql.statement()).await.map_err(db("stopping an endpoint"))?;
        Ok(done.rows_affected() == 1)
    }

    async fn deliveries(
        &self,
        endpoint: Uuid,
        state: Option<DeliveryState>,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.list_deliveries(endpoint, state, before, limit).await
    }

    async fn retry_delivery(
        &self,
        endpoint: Uuid,
        id: Uuid,
        at: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        self.requeue_delivery(endpoint, id, at, audit).await
    }

    async fn forget_old_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut sql = Sql::new(
            self.backend(),
            "DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < ",
        );
        sql.bind(micros(before));
        let done =
            self.db.execute_raw(sql.statement()).await.map_err(db("forgetting deliveries"))?;
        Ok(done.rows_affected())
    }

    async fn queue_delivery(&self, delivery: &Delivery, body: &str) -> Result<(), StoreError> {
        self.insert_delivery(delivery, body).await
    }
}
