//! Driven ports of single sign-on: the protocol adapter and the storage of
//! sign-ins in flight, identity links and seen assertions.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::models::AuditEvent;
use crate::errors::FieldError;
use crate::errors::StoreError;
use crate::secrets::TokenHash;
use crate::sessions::models::Session;
use crate::sso::models::{PendingLogin, SsoFailure, SsoIdentity, SsoResponse, SsoStart};
use crate::sso::settings::SsoSettings;
use crate::users::models::{User, UserId};

/// The protocol adapter (OpenID Connect, SAML): builds the request to the
/// identity provider and verifies its answer.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// Checks settings against the real provider before they are saved:
    /// OIDC discovery must load; SAML metadata (fetched from its URL when
    /// one is given) must parse and carry a signing certificate. Returns the
    /// settings to save (with fetched metadata filled in).
    ///
    /// # Errors
    /// [`FieldError`] naming the field at fault and why.
    async fn check(&self, settings: SsoSettings) -> Result<SsoSettings, FieldError>;

    /// Starts a sign-in: where to send the browser and what to remember.
    /// `relay_state` is the browser token; a protocol that carries it
    /// through the provider (SAML's `RelayState`) sends it along.
    ///
    /// # Errors
    /// [`SsoFailure`] when the provider cannot be reached or the settings
    /// no longer work.
    async fn begin(
        &self,
        settings: &SsoSettings,
        relay_state: &str,
    ) -> Result<SsoStart, SsoFailure>;

    /// Verifies the provider's answer against the sign-in it belongs to
    /// (`None` for an answer nobody asked for: SAML IdP-initiated).
    ///
    /// # Errors
    /// [`SsoFailure`] with the reason the answer was refused.
    async fn complete(
        &self,
        settings: &SsoSettings,
        pending: Option<PendingLogin>,
        response: &SsoResponse,
        now: DateTime<Utc>,
    ) -> Result<SsoIdentity, SsoFailure>;

    /// Our SAML service provider metadata (XML), when SAML is configured.
    ///
    /// # Errors
    /// [`SsoFailure`] when it cannot be built.
    fn service_provider_metadata(&self, settings: &SsoSettings) -> Result<String, SsoFailure>;
}

/// What an SSO sign-in writes, in one transaction.
#[derive(Debug, Clone)]
pub struct SsoSignIn {
    /// The user as they are after this sign-in.
    pub user: User,
    /// Create the user (just-in-time provisioning) within this seat limit
    /// (`Some(None)`: no limit); `None`: the user exists.
    pub create: Option<Option<u32>>,
    /// Activate an invited user (first sign-in); the store refuses with
    /// [`SsoSignInStoreError::Stale`] if they are no longer invited.
    pub activate: bool,
    /// Link the provider's subject to the user: `(issuer, subject)`.
    pub link: Option<(String, String)>,
    /// The new session.
    pub session: Session,
    /// Audit events (activation or creation, then the sign-in).
    pub audit: Vec<AuditEvent>,
}

/// Why the store did not record an SSO sign-in.
#[derive(Debug, thiserror::Error)]
pub enum SsoSignInStoreError {
    /// The user changed meanwhile (deactivated, or no longer invited).
    #[error("the user changed while signing in")]
    Stale,
    /// The subject was linked to a user meanwhile, or the email was taken.
    #[error("the identity was linked meanwhile")]
    Conflict,
    /// Creating the user would pass the seat limit.
    #[error("the seat limit of {limit} is reached")]
    SeatLimitReached {
        /// The limit.
        limit: u32,
    },
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Storage of sign-ins in flight, identity links and seen assertions.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait SsoRepository: Send + Sync {
    /// Remembers a sign-in the browser started.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn save_login(&self, login: PendingLogin) -> Result<(), StoreError>;

    /// Takes (removes and returns) the sign-in stored under this key, if any;
    /// an answer can use it once. Also forgets sign-ins that expired before
    /// `now`.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn take_login(
        &self,
        key: &TokenHash,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingLogin>, StoreError>;

    /// The user this provider subject is linked to.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn find_linked(&self, issuer: &str, subject: &str) -> Result<Option<User>, StoreError>;

    /// Every (issuer, subject) the user is linked to.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn links_of(&self, user: UserId) -> Result<Vec<(String, String)>, StoreError>;

    /// Records a one-time assertion id until it expires; `false` if it was
    /// seen before (a replay). Forgets ids that expired before `now`.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn remember_assertion(
        &self,
        issuer: &str,
        id: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Deletes the sign-ins in flight and the remembered assertion ids that
    /// expired at or before `now`; returns how many rows went. Called on a
    /// schedule, so that rows anonymous visitors create do not pile up.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn forget_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Records a successful SSO sign-in atomically (see [`SsoSignIn`]).
    ///
    /// # Errors
    /// See [`SsoSignInStoreError`].
    async fn record_sso_sign_in(&self, sign_in: SsoSignIn) -> Result<(), SsoSignInStoreError>;
}

/// The adapter of a build without SSO: refuses every setting and sign-in.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoIdentityProvider;

#[async_trait]
impl IdentityProvider for NoIdentityProvider {
    async fn check(&self, _settings: SsoSettings) -> Result<SsoSettings, FieldError> {
        Err(FieldError::new("mode", "this build of SecureAI has no SSO adapter"))
    }

    async fn begin(
        &self,
        _settings: &SsoSettings,
        _relay_state: &str,
    ) -> Result<SsoStart, SsoFailure> {
        Err(SsoFailure::new("sso_unavailable", "this build has no SSO adapter"))
    }

    async fn complete(
        &self,
        _settings: &SsoSettings,
        _pending: Option<PendingLogin>,
        _response: &SsoResponse,
        _now: DateTime<Utc>,
    ) -> Result<SsoIdentity, SsoFailure> {
        Err(SsoFailure::new("sso_unavailable", "this build has no SSO adapter"))
    }

    fn service_provider_metadata(&self, _settings: &SsoSettings) -> Result<String, SsoFailure> {
        Err(SsoFailure::new("sso_unavailable", "this build has no SSO adapter"))
    }
}
