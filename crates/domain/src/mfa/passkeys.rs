//! Passkeys and security keys (WebAuthn): what the domain keeps of them,
//! and the protocol port an adapter implements. The domain sees the
//! ceremonies' options, states and answers as JSON text only: it needs no
//! WebAuthn types, and the adapter does every cryptographic check.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::users::models::{User, UserId};

/// The most passkeys one user may have.
pub const MAX_PASSKEYS: usize = 10;

/// The longest name of a passkey, in characters.
pub const PASSKEY_NAME_MAX: usize = 64;

/// A user's passkey or security key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passkey {
    /// Identifier.
    pub id: Uuid,
    /// Whose.
    pub user_id: UserId,
    /// The name its user gave it ("YubiKey", "Work laptop").
    pub name: String,
    /// The credential's id as the browser names it (base64url).
    pub credential_id: String,
    /// The credential as the protocol adapter keeps it (public key,
    /// signature counter): opaque JSON, no secret.
    pub credential: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last signed its user in or confirmed them.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A ceremony begun: the options for the browser's
/// `navigator.credentials.create` / `.get` (JSON), and the state the server
/// keeps until the answer comes back (JSON, never sent to the browser).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    /// For the browser.
    pub options: String,
    /// Kept server-side.
    pub state: String,
}

/// A credential the browser just registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredCredential {
    /// Its id (base64url).
    pub credential_id: String,
    /// What to keep of it (JSON).
    pub credential: String,
}

/// A credential that just signed a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedCredential {
    /// Which one (base64url).
    pub credential_id: String,
    /// Its new state when it changed (the signature counter).
    pub credential: Option<String>,
}

/// Why the protocol refused.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyProtocolError {
    /// The browser's answer is malformed or fails a check (challenge,
    /// origin, signature, user verification, a replayed counter).
    #[error("the passkey's answer was refused: {0}")]
    Refused(String),
    /// The ceremony could not be set up (a stored state or credential the
    /// adapter cannot read).
    #[error("{0}")]
    Unexpected(String),
}

/// The WebAuthn protocol (W3C Web Authentication Level 2): registration
/// and authentication ceremonies with user verification.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait PasskeyProtocol: Send + Sync {
    /// Options to register a new passkey for `user` (the ones they have
    /// are excluded, so one authenticator is not registered twice).
    ///
    /// # Errors
    /// [`PasskeyProtocolError::Unexpected`] on failure.
    fn start_registration(
        &self,
        user: &User,
        existing: &[Passkey],
    ) -> Result<Ceremony, PasskeyProtocolError>;

    /// Checks the browser's answer to a registration against its state.
    ///
    /// # Errors
    /// [`PasskeyProtocolError::Refused`] for an answer that fails.
    fn finish_registration(
        &self,
        state: &str,
        answer: &str,
    ) -> Result<RegisteredCredential, PasskeyProtocolError>;

    /// Options to sign a challenge with one of `passkeys`.
    ///
    /// # Errors
    /// [`PasskeyProtocolError::Unexpected`] on failure.
    fn start_authentication(&self, passkeys: &[Passkey]) -> Result<Ceremony, PasskeyProtocolError>;

    /// Checks the browser's signed answer against the state and the user's
    /// passkeys.
    ///
    /// # Errors
    /// [`PasskeyProtocolError::Refused`] for an answer that fails.
    fn finish_authentication(
        &self,
        state: &str,
        answer: &str,
        passkeys: &[Passkey],
    ) -> Result<UsedCredential, PasskeyProtocolError>;
}
