//! Driven ports for mail delivery: the outbox store and the transport.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::identity::UserId;
use crate::mail::models::{MailState, OutboxEntry, OutgoingMail, QueuedMail};
use crate::mail::settings::EmailSettings;

/// Storage of the outbox.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait OutboxRepository: Send + Sync {
    /// Claims up to `limit` queued messages whose next attempt is due at
    /// `now`, leasing them until `lease_until` so that no other worker (in this
    /// or another instance) claims them meanwhile.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<QueuedMail>, StoreError>;

    /// Marks a message sent and erases its rendered secrets (the link).
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn mark_sent(&self, id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Records a failed attempt: retry at `retry_at`, or give up when `None`.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn mark_attempt_failed(
        &self,
        id: Uuid,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;

    /// Up to `limit` messages in `state` (any if `None`), newest first,
    /// created before `before` if given (paging).
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn list(
        &self,
        state: Option<MailState>,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// One message.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn entry(&self, id: Uuid) -> Result<Option<OutboxEntry>, StoreError>;

    /// Puts a failed message back in the queue, due at `at`, with its attempts
    /// counted from zero, with its audit event. Returns `false` (and changes
    /// nothing) unless it was failed, so two admins retrying at once queue
    /// it once.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn requeue_failed(
        &self,
        id: Uuid,
        at: DateTime<Utc>,
        audit: AuditEvent,
    ) -> Result<bool, StoreError>;

    /// The newest message of `kind` about `user`.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn latest_for(&self, user: UserId, kind: &str)
    -> Result<Option<OutboxEntry>, StoreError>;

    /// The newest invitation email (of
    /// [`crate::mail::models::INVITATION_KINDS`]) about each of `users`
    /// that has one, in one read (a page of the users list).
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn latest_invitation_emails(
        &self,
        users: &[UserId],
    ) -> Result<Vec<OutboxEntry>, StoreError>;
}

/// Why a transport did not deliver a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying (connection refused, timeout, 4xx from SMTP).
    #[error("temporary delivery failure: {0}")]
    Transient(String),
    /// Will never work (5xx from SMTP, invalid recipient).
    #[error("permanent delivery failure: {0}")]
    Permanent(String),
}

/// Hands a message to a mail system (SMTP server, files).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait MailTransport: Send + Sync {
    /// Renders and sends one message with `settings` (server and sender),
    /// returning the server's answer (e.g. `250 2.0.0 Ok: queued as …`).
    ///
    /// # Errors
    /// [`DeliveryError`] saying whether a retry may help, in words an
    /// operator can act on.
    async fn send(
        &self,
        settings: &EmailSettings,
        mail: &OutgoingMail,
    ) -> Result<String, DeliveryError>;
}
