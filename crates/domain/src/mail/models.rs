//! Outgoing mail model.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::secrets::PlainToken;
use crate::users::models::{DisplayName, EmailAddress};

/// What a message says. Rendering (templates, links) is the mail adapter's job.
#[derive(Debug, Clone)]
pub enum MailMessage {
    /// An invitation: for password users a link to set a password; for SSO
    /// users a notice that access is ready.
    Invitation {
        /// The invitation token (the link carries it).
        token: PlainToken,
        /// When the link stops working.
        expires_at: DateTime<Utc>,
        /// Who invited them (display name), if a person did.
        invited_by: Option<String>,
    },
    /// A password reset link.
    PasswordReset {
        /// The reset token (the link carries it).
        token: PlainToken,
        /// When the link stops working.
        expires_at: DateTime<Utc>,
    },
}

impl MailMessage {
    /// The stable kind name, for storage and the outbox API.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Invitation { .. } => "invitation",
            Self::PasswordReset { .. } => "password_reset",
        }
    }
}

/// A message waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    /// Identifier (also the idempotency key towards the transport).
    pub id: Uuid,
    /// Recipient address.
    pub to: EmailAddress,
    /// Recipient name.
    pub to_name: DisplayName,
    /// What to say.
    pub message: MailMessage,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
}

/// A message claimed from the outbox for a delivery attempt.
#[derive(Debug, Clone)]
pub struct QueuedMail {
    /// The message.
    pub mail: OutgoingMail,
    /// Attempts made before this one.
    pub attempts: u32,
}
