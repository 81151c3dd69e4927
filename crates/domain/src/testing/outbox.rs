//! The in-memory store's mail outbox. And a mail transport that records what it sends.

use crate::mail::models::INVITATION_KINDS;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::mail::models::{MailState, OutboxEntry, OutgoingMail, QueuedMail};
use crate::mail::ports::{DeliveryError, MailTransport, OutboxRepository};
use crate::mail::settings::EmailSettings;
use crate::users::models::UserId;

use super::{InMemoryStore, StoredMail, lock};

#[async_trait]
impl OutboxRepository for InMemoryStore {
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        let mut state = self.state();
        let mut claimed = Vec::new();
        for stored in &mut state.outbox {
            let free = stored.leased_until.is_none_or(|until| until <= now);
            if claimed.len() < limit as usize
                && stored.sent_at.is_none()
                && !stored.failed
                && stored.next_attempt_at <= now
                && free
            {
                stored.leased_until = Some(lease_until);
                claimed.push(QueuedMail { mail: stored.mail.clone(), attempts: stored.attempts });
            }
        }
        Ok(claimed)
    }

    async fn mark_sent(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        for stored in &mut self.state().outbox {
            if stored.mail.id == id {
                stored.sent_at = Some(at);
                stored.leased_until = None;
            }
        }
        Ok(())
    }

    async fn mark_attempt_failed(
        &self,
        id: Uuid,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        for stored in &mut self.state().outbox {
            if stored.mail.id == id {
                stored.attempts += 1;
                stored.last_error = Some(error.clone());
                stored.leased_until = None;
                match retry_at {
                    Some(at) => stored.next_attempt_at = at,
                    None => stored.failed = true,
                }
            }
        }
        Ok(())
    }

    async fn list(
        &self,
        state: Option<MailState>,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut entries: Vec<OutboxEntry> = self
            .state()
            .outbox
            .iter()
            .map(outbox_entry)
            .filter(|e| state.is_none_or(|s| e.state == s))
            .filter(|e| before.is_none_or(|b| (e.created_at, e.id) < b))
            .collect();
        entries.sort_by_key(|e| std::cmp::Reverse((e.created_at, e.id)));
        entries.truncate(limit as usize);
        Ok(entries)
    }

    async fn entry(&self, id: Uuid) -> Result<Option<OutboxEntry>, StoreError> {
        Ok(self.state().outbox.iter().find(|m| m.mail.id == id).map(outbox_entry))
    }

    async fn requeue_failed(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        let Some(stored) = state.outbox.iter_mut().find(|m| m.mail.id == id && m.failed) else {
            return Ok(false);
        };
        stored.failed = false;
        stored.attempts = 0;
        stored.next_attempt_at = at;
        stored.leased_until = None;
        state.audit.push(audit);
        Ok(true)
    }

    async fn latest_for(
        &self,
        user: UserId,
        kind: &str,
    ) -> Result<Option<OutboxEntry>, StoreError> {
        Ok(self
            .state()
            .outbox
            .iter()
            .filter(|m| m.mail.user_id == Some(user) && m.mail.message.kind() == kind)
            .max_by_key(|m| (m.mail.created_at, m.mail.id))
            .map(outbox_entry))
    }

    async fn latest_invitation_emails(
        &self,
        users: &[UserId],
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let state = self.state();
        Ok(users
            .iter()
            .filter_map(|user| {
                state
                    .outbox
                    .iter()
                    .filter(|m| m.mail.user_id == Some(*user))
                    .filter(|m| INVITATION_KINDS.contains(&m.mail.message.kind()))
                    .max_by_key(|m| (m.mail.created_at, m.mail.id))
                    .map(outbox_entry)
            })
            .collect())
    }
}

fn outbox_entry(stored: &StoredMail) -> OutboxEntry {
    let state = if stored.sent_at.is_some() {
        MailState::Sent
    } else if stored.failed {
        MailState::Failed
    } else {
        MailState::Queued
    };
    OutboxEntry {
        id: stored.mail.id,
        kind: stored.mail.message.kind().to_owned(),
        recipient: stored.mail.to.to_string(),
        user_id: stored.mail.user_id,
        state,
        attempts: stored.attempts,
        last_error: stored.last_error.clone(),
        created_at: stored.mail.created_at,
        next_attempt_at: stored.next_attempt_at,
        sent_at: stored.sent_at,
    }
}

/// A transport that records what it was given (and with which settings),
/// or fails on demand.
#[derive(Debug, Default)]
pub struct RecordingTransport {
    sent: Mutex<Vec<(EmailSettings, OutgoingMail)>>,
    failure: Mutex<Option<DeliveryError>>,
}

impl RecordingTransport {
    /// Messages delivered so far.
    pub fn sent(&self) -> Vec<OutgoingMail> {
        lock(&self.sent).iter().map(|(_, mail)| mail.clone()).collect()
    }
    /// Messages delivered so far, with the settings each was sent with.
    pub fn sent_with_settings(&self) -> Vec<(EmailSettings, OutgoingMail)> {
        lock(&self.sent).clone()
    }
    /// Makes every following send fail with `error` (or succeed with `None`).
    pub fn fail_with(&self, error: Option<DeliveryError>) {
        *lock(&self.failure) = error;
    }
}

#[async_trait]
impl MailTransport for RecordingTransport {
    async fn send(
        &self,
        settings: &EmailSettings,
        mail: &OutgoingMail,
    ) -> Result<String, DeliveryError> {
        if let Some(error) = lock(&self.failure).clone() {
            return Err(error);
        }
        lock(&self.sent).push((settings.clone(), mail.clone()));
        Ok(format!("250 2.0.0 Ok: queued as {}", mail.id))
    }
}
