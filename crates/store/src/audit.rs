//! The audit port: appending stand-alone events and reading the log back.

use async_trait::async_trait;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use secureai_domain::audit::models::{AuditAction, AuditEntry, Change, RequestContext};
use secureai_domain::audit::ports::{AuditCursor, AuditFilter, AuditLog};
use secureai_domain::{AuditEvent, StoreError};
use serde::Deserialize;

use crate::SqlStore;
use crate::convert::{audit_to_row, db, instant, micros, user_id};
use crate::entities::audit_events;

#[derive(Deserialize)]
struct StoredChange {
    field: String,
    before: Option<String>,
    after: Option<String>,
}

fn entry_from_row(row: &audit_events::Model) -> Result<AuditEntry, StoreError> {
    let changes: Vec<StoredChange> = serde_json::from_str(&row.changes).map_err(|e| {
        StoreError::new(format!("audit event {} has unreadable changes", row.id), e)
    })?;
    Ok(AuditEntry {
        id: uuid::Uuid::parse_str(&row.id)
            .map_err(|e| StoreError::new("audit id is not a UUID", e))?,
        at: instant(row.at)?,
        actor_kind: row.actor_kind.clone(),
        actor_token: match (&row.actor_token_id, &row.actor_token_name) {
            (Some(id), Some(name)) => Some((
                uuid::Uuid::parse_str(id)
                    .map_err(|e| StoreError::new("audit actor token id is not a UUID", e))?,
                name.clone(),
            )),
            _ => None,
        },
        actor_id: row.actor_id.as_deref().map(user_id).transpose()?,
        actor_email: row.actor_email.clone(),
        action: AuditAction::parse(&row.action).ok_or_else(|| {
            StoreError::msg(format!("stored audit action `{}` is unknown", row.action))
        })?,
        target_id: row.target_id.as_deref().map(user_id).transpose()?,
        target_email: row.target_email.clone(),
        changes: changes
            .into_iter()
            .map(|c| Change { field: c.field, before: c.before, after: c.after })
            .collect(),
        context: RequestContext {
            ip: row.ip.clone(),
            user_agent: row.user_agent.clone(),
            ..RequestContext::default()
        },
    })
}

/// Appends an audit event inside the transaction of the change it records.
pub(crate) async fn write_audit(
    txn: &impl sea_orm::ConnectionTrait,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    audit_events::Entity::insert(audit_to_row(event))
        .exec_without_returning(txn)
        .await
        .map_err(db("writing the audit event"))?;
    // The webhook deliveries it causes commit (or not) with it.
    crate::webhook_deliveries::fan_out(txn, &[event]).await?;
    // The request's log line names it.
    event.context.audit_ids.note(event.id);
    Ok(())
}

#[async_trait]
impl AuditLog for SqlStore {
    async fn append(&self, event: AuditEvent) -> Result<(), StoreError> {
        if secureai_domain::webhooks::events::event_of(&event).is_none() {
            audit_events::Entity::insert(audit_to_row(&event))
                .exec_without_returning(&self.db)
                .await
                .map_err(db("writing an audit event"))?;
            event.context.audit_ids.note(event.id);
            return Ok(());
        }
        let event = &event;
        crate::retry_transaction(move || async move {
            let txn = self.db.begin().await.map_err(db("starting a transaction"))?;
            write_audit(&txn, event).await?;
            txn.commit().await.map_err(db("committing an audit event"))
        })
        .await
    }

    async fn list(
        &self,
        filter: &AuditFilter,
        after: Option<AuditCursor>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut select = audit_events::Entity::find();
        if let Some(actor) = filter.actor {
            select = select.filter(audit_events::Column::ActorId.eq(actor.to_string()));
        }
        if let Some(target) = filter.target {
            select = select.filter(audit_events::Column::TargetId.eq(target.to_string()));
        }
        if let Some(action) = filter.action {
            select = select.filter(audit_events::Column::Action.eq(action.as_str()));
        }
        if let Some(from) = filter.from {
            select = select.filter(audit_events::Column::At.gte(micros(from)));
        }
        if let Some(to) = filter.to {
            select = select.filter(audit_events::Column::At.lt(micros(to)));
        }
        if let Some(cursor) = after {
            let at = micros(cursor.at);
            select = select.filter(audit_events::Column::At.lte(at)).filter(
                Condition::any()
                    .add(audit_events::Column::At.lt(at))
                    .add(audit_events::Column::Id.lt(cursor.id.to_string())),
            );
        }
        let rows = select
            .order_by_desc(audit_events::Column::At)
            .order_by_desc(audit_events::Column::Id)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(db("reading the audit log"))?;
        rows.iter().map(entry_from_row).collect()
    }
}
