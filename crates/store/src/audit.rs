//! The stand-alone audit port.

use async_trait::async_trait;
use sea_orm::EntityTrait;
use secureai_domain::audit::ports::AuditLog;
use secureai_domain::{AuditEvent, StoreError};

use crate::SqlStore;
use crate::convert::{audit_to_row, db};
use crate::entities::audit_events;

#[async_trait]
impl AuditLog for SqlStore {
    async fn append(&self, event: AuditEvent) -> Result<(), StoreError> {
        audit_events::Entity::insert(audit_to_row(&event))
            .exec_without_returning(&self.db)
            .await
            .map_err(db("writing an audit event"))?;
        Ok(())
    }
}
