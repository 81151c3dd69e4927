//! Outgoing mail model.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::identity::{DisplayName, EmailAddress, UserId};
use crate::secrets::PlainToken;

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
    /// For users who sign in through the company's identity provider: their
    /// access is ready; no password, no link to set one.
    AccessReady {
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
    /// Settings > Email > "Send test email": proves the settings work.
    Test,
    /// An admin (named) or the operator (`None`) reset the user's second
    /// factors; `required`: they must set up a new one at their next
    /// sign-in.
    SecondFactorReset {
        /// The admin's display name, if an admin did it.
        reset_by: Option<String>,
        /// The security policy requires a second factor of them.
        required: bool,
    },
    /// A recovery code signed the user in (when: the message's time).
    RecoveryCodeUsed {
        /// Recovery codes left.
        codes_left: u32,
    },
}

impl MailMessage {
    /// The stable kind name, for storage and the outbox API.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Invitation { .. } => "invitation",
            Self::AccessReady { .. } => "access_ready",
            Self::PasswordReset { .. } => "password_reset",
            Self::Test => "test",
            Self::SecondFactorReset { .. } => "second_factor_reset",
            Self::RecoveryCodeUsed { .. } => "recovery_code_used",
        }
    }
}

/// The kinds of message that invite someone: a link for password users,
/// "your access is ready" for SSO users.
pub const INVITATION_KINDS: [&str; 2] = ["invitation", "access_ready"];

/// The kinds of message that carry (or announce) a link a deactivation
/// voids: invitations and password resets.
pub const LINK_KINDS: [&str; 3] = ["invitation", "access_ready", "password_reset"];

/// A message waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    /// Identifier (also the idempotency key towards the transport).
    pub id: Uuid,
    /// The user it is about, if any (for the profile's delivery status).
    pub user_id: Option<UserId>,
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

/// Where a message is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailState {
    /// Waiting for its (next) attempt.
    Queued,
    /// Accepted by the mail server.
    Sent,
    /// Given up on after repeated or permanent failures.
    Failed,
}

impl MailState {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    /// Parses a stable name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "queued" => Some(Self::Queued),
            "sent" => Some(Self::Sent),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A message as admins see it in the outbox: never its content (the links
/// it carries are secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Identifier.
    pub id: Uuid,
    /// Its kind (`invitation`, `password_reset`, …).
    pub kind: String,
    /// Recipient address.
    pub recipient: String,
    /// The user it is about, if any.
    pub user_id: Option<UserId>,
    /// Where it is.
    pub state: MailState,
    /// Attempts made.
    pub attempts: u32,
    /// The last failure, as the mail server or network said it.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due (queued messages).
    pub next_attempt_at: DateTime<Utc>,
    /// When the server accepted it.
    pub sent_at: Option<DateTime<Utc>>,
}
