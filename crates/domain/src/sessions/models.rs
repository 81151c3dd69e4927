//! Session model, and the capabilities a resolved session hands out.
//!
//! ```text
//! (sign-in) ──▶ live ──idle timeout──▶ expired
//!                │  └──absolute timeout──▶ expired
//!                └──sign-out / terminated / user deactivated──▶ ended (deleted)
//! ```

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::secrets::{PlainToken, TokenHash};
use crate::users::models::{User, UserId};

/// A session's identifier (not its token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(Uuid);

impl SessionId {
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

/// A signed-in session, stored by the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Identifier.
    pub id: SessionId,
    /// Whose session.
    pub user_id: UserId,
    /// SHA-256 of the session token.
    pub token_hash: TokenHash,
    /// When it started.
    pub created_at: DateTime<Utc>,
    /// When it was last used (updated at most once a minute).
    pub last_seen_at: DateTime<Utc>,
    /// Absolute end, whatever the activity.
    pub expires_at: DateTime<Utc>,
    /// The session can only set up a second factor: the security policy
    /// asks its user for one and they had none when they signed in.
    pub enrolment_only: bool,
    /// When the session's user last passed a second-factor check (at
    /// sign-in, enrolment or step-up); `None` if never in this session.
    pub second_factor_at: Option<DateTime<Utc>>,
}

/// Whether a session may still be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionValidity {
    /// Usable.
    Live,
    /// Unused for longer than the idle timeout.
    IdleExpired,
    /// Past its absolute lifetime.
    AbsoluteExpired,
}

impl Session {
    /// Whether the session may be used at `now`, given the idle timeout.
    pub fn validity(&self, now: DateTime<Utc>, idle_timeout: Duration) -> SessionValidity {
        if now >= self.expires_at {
            SessionValidity::AbsoluteExpired
        } else if now >= self.last_seen_at + idle_timeout {
            SessionValidity::IdleExpired
        } else {
            SessionValidity::Live
        }
    }
}

/// A password sign-in that waits for its second factor: its token goes to
/// the client once, and completes the sign-in once, within
/// [`SECOND_FACTOR_WAIT`].
#[derive(Debug)]
pub struct SecondFactorNeeded {
    /// The sign-in's token (`mfa_token`).
    pub token: PlainToken,
    /// The factors that complete it.
    pub methods: Vec<crate::mfa::models::MfaMethod>,
    /// Until when it waits.
    pub expires_at: DateTime<Utc>,
    /// The challenge for the user's passkeys (options for the browser's
    /// `navigator.credentials.get`, JSON), when they have one and passkeys
    /// work at this address.
    pub webauthn: Option<String>,
}

/// A challenge for a user's passkeys, waiting for the browser's answer.
#[derive(Debug)]
pub struct PasskeyChallenge {
    /// The answer comes back with it; it works once.
    pub token: PlainToken,
    /// For the browser's `navigator.credentials.get` (JSON).
    pub options: String,
    /// Until when it waits.
    pub expires_at: DateTime<Utc>,
}

/// How long a password sign-in waits for its second factor.
pub const SECOND_FACTOR_WAIT: Duration = Duration::minutes(5);

/// The result of a successful sign-in: the token is handed to the client
/// once (cookie or response body) and never stored in clear.
#[derive(Debug)]
pub struct SignedIn {
    /// The new session token.
    pub token: PlainToken,
    /// The session.
    pub session: Session,
    /// The signed-in user.
    pub user: User,
}

/// What a throttled check of a second-factor code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeCheck {
    /// Right, and now spent.
    Accepted,
    /// Wrong, spent or late (audited).
    Refused,
    /// Too many wrong codes lately: not checked.
    Throttled {
        /// Seconds until the next code is checked.
        retry_after_secs: u64,
    },
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn session(start: DateTime<Utc>) -> Session {
        Session {
            id: SessionId::generate(),
            user_id: UserId::generate(),
            token_hash: PlainToken::presented("t").hash(),
            created_at: start,
            last_seen_at: start,
            expires_at: start + Duration::hours(12),
            enrolment_only: false,
            second_factor_at: None,
        }
    }

    #[test]
    fn a_session_expires_when_idle_or_too_old() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 8, 0, 0).unwrap();
        let idle = Duration::hours(2);
        let mut s = session(start);
        assert_eq!(s.validity(start + Duration::minutes(119), idle), SessionValidity::Live);
        assert_eq!(s.validity(start + Duration::hours(2), idle), SessionValidity::IdleExpired);
        s.last_seen_at = start + Duration::hours(11);
        assert_eq!(s.validity(start + Duration::hours(12), idle), SessionValidity::AbsoluteExpired);
    }
}
