//! The in-memory store's audit log.

use async_trait::async_trait;

use crate::audit::models::{AuditEntry, AuditEvent};
use crate::audit::ports::{AuditCursor, AuditFilter, AuditLog};
use crate::errors::StoreError;
use crate::identity::UserId;

use super::InMemoryStore;

#[async_trait]
impl AuditLog for InMemoryStore {
    async fn append(&self, event: AuditEvent) -> Result<(), StoreError> {
        self.state().audit.push(event);
        Ok(())
    }

    async fn list(
        &self,
        filter: &AuditFilter,
        after: Option<AuditCursor>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let state = self.state();
        let mut events: Vec<&AuditEvent> = state
            .audit
            .iter()
            .filter(|e| {
                let actor_id = match &e.actor {
                    crate::Actor::User { id, .. } | crate::Actor::UserToken { id, .. } => Some(*id),
                    _ => None,
                };
                filter.actor.is_none_or(|a| actor_id == Some(a))
                    && filter.target.is_none_or(|t| e.target_id == Some(t))
                    && filter.action.is_none_or(|a| e.action == a)
                    && filter.from.is_none_or(|f| e.at >= f)
                    && filter.to.is_none_or(|t| e.at < t)
                    && after.is_none_or(|c| (e.at, e.id) < (c.at, c.id))
            })
            .collect();
        events.sort_by_key(|e| std::cmp::Reverse((e.at, e.id)));
        Ok(events
            .into_iter()
            .take(limit as usize)
            .map(|e| entry(e, &state.erased_actors))
            .collect())
    }
}

fn entry(event: &AuditEvent, erased: &std::collections::HashSet<UserId>) -> AuditEntry {
    let (actor_kind, actor_id, actor_email) = match &event.actor {
        crate::Actor::User { id, email } | crate::Actor::UserToken { id, email, .. } => {
            ("user", Some(*id), (!erased.contains(id)).then(|| email.to_string()))
        }
        crate::Actor::Operator => ("operator", None, None),
        crate::Actor::Anonymous | crate::Actor::Service { .. } => (event.actor.kind(), None, None),
    };
    AuditEntry {
        id: event.id,
        at: event.at,
        actor_kind: actor_kind.to_owned(),
        actor_token: match &event.actor {
            crate::Actor::Service { token_id, name }
            | crate::Actor::UserToken { token_id, name, .. } => Some((*token_id, name.clone())),
            _ => None,
        },
        actor_id,
        actor_email,
        action: event.action,
        target_id: event.target_id,
        target_email: event.target_email.clone(),
        changes: event.changes.clone(),
        context: event.context.clone(),
    }
}
