//! Invitation model and lifecycle.
//!
//! ```text
//! pending ──accept (before expiry)──▶ accepted
//!    │ └──────time passes──────▶ expired (derived from the clock, not stored)
//!    └──re-send──▶ revoked (a new pending invitation replaces it)
//! ```

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::mail::models::{MailMessage, OutgoingMail};
use crate::secrets::{PlainToken, TokenHash};
use crate::users::models::{SignInMethod, User, UserId};

/// An invitation's identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvitationId(Uuid);

impl InvitationId {
    /// A new identifier (see [`crate::record_id`]).
    pub fn generate() -> Self {
        Self(crate::record_id())
    }
    /// Wraps an identifier read from storage.
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }
    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

/// The stored state of an invitation. Expiry is not stored: it follows from
/// `expires_at` and the clock, see [`Invitation::status_at`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationState {
    /// Sent, not yet used.
    Pending,
    /// Used to activate the account.
    Accepted {
        /// When.
        at: DateTime<Utc>,
    },
    /// Replaced by a newer invitation.
    Revoked {
        /// When.
        at: DateTime<Utc>,
    },
}

/// What an invitation means at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationStatus {
    /// Usable until `expires_at`.
    Pending {
        /// End of validity.
        expires_at: DateTime<Utc>,
    },
    /// Was pending, but its time ran out.
    Expired {
        /// When it expired.
        expired_at: DateTime<Utc>,
    },
    /// Already used.
    Accepted {
        /// When.
        at: DateTime<Utc>,
    },
    /// Voided by a re-send.
    Revoked {
        /// When.
        at: DateTime<Utc>,
    },
    /// An SSO user's invitation: they got no link, only "your access is
    /// ready", so nothing expires; their first SSO sign-in activates them.
    AwaitingFirstSignIn,
}

/// A single-use invitation link, stored by the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Identifier.
    pub id: InvitationId,
    /// The invited user.
    pub user_id: UserId,
    /// SHA-256 of the link's token.
    pub token_hash: TokenHash,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// Stored state.
    pub state: InvitationState,
}

impl Invitation {
    /// Issues a pending invitation for `user`, valid for `ttl` from `now`,
    /// and its email: a link carrying `token` for password users; for SSO
    /// users, who sign in through the identity provider and cannot set a
    /// password, an access-ready email without a link.
    pub fn issue(
        user: &User,
        token: &PlainToken,
        ttl: Duration,
        invited_by: Option<String>,
        now: DateTime<Utc>,
    ) -> (Self, OutgoingMail) {
        let invitation = Self {
            id: InvitationId::generate(),
            user_id: user.id,
            token_hash: token.hash(),
            created_at: now,
            expires_at: now + ttl,
            state: InvitationState::Pending,
        };
        let mail = OutgoingMail {
            id: crate::record_id(),
            user_id: Some(user.id),
            to: user.email.clone(),
            to_name: user.name.clone(),
            message: match user.sign_in {
                SignInMethod::Password => MailMessage::Invitation {
                    token: token.clone(),
                    expires_at: invitation.expires_at,
                    invited_by,
                },
                SignInMethod::Sso => MailMessage::AccessReady { invited_by },
            },
            created_at: now,
        };
        (invitation, mail)
    }
}

impl InvitationState {
    /// What a one-time link in this state, valid until `expires_at`, means
    /// at `now` (invitation and password-reset links alike).
    pub fn status_at(self, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> InvitationStatus {
        match self {
            Self::Pending if now >= expires_at => {
                InvitationStatus::Expired { expired_at: expires_at }
            }
            Self::Pending => InvitationStatus::Pending { expires_at },
            Self::Accepted { at } => InvitationStatus::Accepted { at },
            Self::Revoked { at } => InvitationStatus::Revoked { at },
        }
    }
}

impl Invitation {
    /// What this invitation's link means at `now`.
    pub fn status_at(&self, now: DateTime<Utc>) -> InvitationStatus {
        self.state.status_at(self.expires_at, now)
    }

    /// What this invitation means for a user who signs in with `sign_in`,
    /// at `now`: a pending one of an SSO user awaits their first sign-in,
    /// however old it is.
    pub fn status_for(&self, sign_in: SignInMethod, now: DateTime<Utc>) -> InvitationStatus {
        match (self.state, sign_in) {
            (InvitationState::Pending, SignInMethod::Sso) => InvitationStatus::AwaitingFirstSignIn,
            _ => self.status_at(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::secrets::PlainToken;

    #[test]
    fn a_pending_invitation_expires_exactly_at_its_deadline() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        let invitation = Invitation {
            id: InvitationId::generate(),
            user_id: UserId::generate(),
            token_hash: PlainToken::presented("t").hash(),
            created_at: start,
            expires_at: start + Duration::hours(72),
            state: InvitationState::Pending,
        };
        let just_before = start + Duration::hours(72) - Duration::seconds(1);
        assert!(matches!(invitation.status_at(just_before), InvitationStatus::Pending { .. }));
        assert_eq!(
            invitation.status_at(start + Duration::hours(72)),
            InvitationStatus::Expired { expired_at: start + Duration::hours(72) }
        );
    }
}
