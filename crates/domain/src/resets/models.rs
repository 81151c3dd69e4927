//! Password reset model.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::invitations::models::{InvitationState, InvitationStatus};
use crate::secrets::TokenHash;
use crate::users::models::UserId;

/// A single-use password reset link, stored by the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordReset {
    /// Identifier.
    pub id: Uuid,
    /// Whose password.
    pub user_id: UserId,
    /// SHA-256 of the link's token.
    pub token_hash: TokenHash,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Stored state (`Accepted` = completed).
    pub state: InvitationState,
}

impl PasswordReset {
    /// What this link means at `now`.
    pub fn status_at(&self, now: DateTime<Utc>) -> InvitationStatus {
        self.state.status_at(self.expires_at, now)
    }
}
