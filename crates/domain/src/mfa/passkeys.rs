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
    /// Passkeys cannot be used at this service's address (or build).
    #[error("{0}")]
    Unavailable(String),
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

/// What a WebAuthn ceremony in progress is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyPurpose {
    /// Registering a new passkey.
    Register,
    /// The second step of a password sign-in.
    SignIn,
    /// A step-up: the signed-in user confirms it is them.
    StepUp,
}

impl CeremonyPurpose {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::SignIn => "sign_in",
            Self::StepUp => "step_up",
        }
    }
}

/// A ceremony waiting for the browser's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCeremony {
    /// Whose.
    pub user_id: UserId,
    /// What for.
    pub purpose: CeremonyPurpose,
    /// The adapter's state (JSON).
    pub state: String,
    /// Until when it waits.
    pub expires_at: DateTime<Utc>,
}

/// Where passkeys and the ceremonies in progress are kept.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait::async_trait]
pub trait PasskeyRepository: Send + Sync {
    /// The user's passkeys, oldest first.
    ///
    /// # Errors
    /// [`crate::StoreError`] only on failure.
    async fn passkeys(&self, user: UserId) -> Result<Vec<Passkey>, crate::StoreError>;

    /// Keeps a new passkey and writes `audit`; with `codes`, replaces the
    /// user's recovery codes (their first second factor), in one
    /// transaction. `false` and nothing written if its credential id is
    /// any user's passkey already.
    ///
    /// # Errors
    /// [`crate::StoreError`] only on failure.
    async fn add_passkey(
        &self,
        passkey: &Passkey,
        codes: Option<Vec<crate::TokenHash>>,
        audit: crate::AuditEvent,
    ) -> Result<bool, crate::StoreError>;

    /// Renames one of the user's passkeys; `false` if they have no such.
    ///
    /// # Errors
    /// [`crate::StoreError`] only on failure.
    async fn rename_passkey(
        &self,
        user: UserId,
        id: Uuid,
        name: &str,
    ) -> Result<bool, crate::StoreError>;

    /// Removes one of the user's passkeys, with `codes_too` their recovery
    /// codes, and writes `audit`, in one transaction; `false` if they have
    /// no such passkey.
    ///
    /// # Errors
    /// [`crate::StoreError`] only on failure.
    async fn remove_passkey(
        &self,
        user: UserId,
        id: Uuid,
        codes_too: bool,
        audit: crate::AuditEvent,
    ) -> Result<bool, crate::StoreError>;

    /// Records a use of the user's passkey `credential_id` at `at`, with
    /// its new state when it changed.
    ///
    /// # Errors
    /// [`crate::StoreError`] only on failure.
    async fn passkey_used(
        &self,
        user: UserId,
        credential_id: &str,
        credential: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<(), crate::StoreError>;

    /// Keeps a ceremony's state under `key` (the digest of the token its
    /// client holds) until it is taken or expires.
    ///
    /// # Errors
    /// [`crate::StoreError`] only on failure.
    async fn begin_ceremony(
        &self,
        key: &crate::TokenHash,
        ceremony: &PendingCeremony,
    ) -> Result<(), crate::StoreError>;

    /// Takes (deletes and returns) the ceremony under `key` — once, for
    /// one of concurrent calls: a challenge is answered once. Expired ones
    /// may be returned: the caller checks.
    ///
    /// # Errors
    /// [`crate::StoreError`] only on failure.
    async fn take_ceremony(
        &self,
        key: &crate::TokenHash,
    ) -> Result<Option<PendingCeremony>, crate::StoreError>;

    /// Deletes the ceremonies that stopped waiting before `now`; how many.
    ///
    /// # Errors
    /// [`crate::StoreError`] only on failure.
    async fn forget_expired_ceremonies(&self, now: DateTime<Utc>)
    -> Result<u64, crate::StoreError>;
}

/// The protocol of a build or an address without passkeys: every ceremony
/// is refused with the reason.
#[derive(Debug, Clone, Default)]
pub struct NoPasskeys(pub String);

impl PasskeyProtocol for NoPasskeys {
    fn start_registration(
        &self,
        _: &User,
        _: &[Passkey],
    ) -> Result<Ceremony, PasskeyProtocolError> {
        Err(PasskeyProtocolError::Unavailable(self.0.clone()))
    }
    fn finish_registration(
        &self,
        _: &str,
        _: &str,
    ) -> Result<RegisteredCredential, PasskeyProtocolError> {
        Err(PasskeyProtocolError::Unavailable(self.0.clone()))
    }
    fn start_authentication(&self, _: &[Passkey]) -> Result<Ceremony, PasskeyProtocolError> {
        Err(PasskeyProtocolError::Unavailable(self.0.clone()))
    }
    fn finish_authentication(
        &self,
        _: &str,
        _: &str,
        _: &[Passkey],
    ) -> Result<UsedCredential, PasskeyProtocolError> {
        Err(PasskeyProtocolError::Unavailable(self.0.clone()))
    }
}
