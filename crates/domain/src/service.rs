//! [`UserManagement`]: the driving side of the domain. The HTTP front end,
//! the command line and embedding services call its methods; each method is
//! one use case, implemented in its subdomain's `service.rs`.

use std::sync::Arc;

use chrono::Duration;

use crate::analytics::ports::{ServiceTokenRepository, UsageRepository};
use crate::analytics::service::AnalyticsPolicy;
use crate::audit::ports::AuditLog;
use crate::clock::Clock;
use crate::imports::ports::ImportRepository;
use crate::invitations::ports::InvitationRepository;
use crate::mail::ports::{MailTransport, OutboxRepository};
use crate::mail::settings::EmailSettings;
use crate::resets::ports::PasswordRepository;
use crate::secrets::{PasswordHasher, TokenGenerator};
use crate::sessions::ports::SessionRepository;
use crate::sessions::throttle::{ThrottlePolicy, ThrottleRepository};
use crate::settings::ports::SettingsRepository;
use crate::setup::ports::SetupRepository;
use crate::sso::ports::{IdentityProvider, NoIdentityProvider, SsoRepository};
use crate::sso::settings::SsoSettings;
use crate::users::ports::UserRepository;

/// The driven ports the use cases need.
#[derive(Clone)]
pub struct Ports {
    /// User storage.
    pub users: Arc<dyn UserRepository>,
    /// Invitation storage.
    pub invitations: Arc<dyn InvitationRepository>,
    /// Session storage.
    pub sessions: Arc<dyn SessionRepository>,
    /// Setup storage.
    pub setup: Arc<dyn SetupRepository>,
    /// Stand-alone audit events.
    pub audit: Arc<dyn AuditLog>,
    /// Instance settings.
    pub settings: Arc<dyn SettingsRepository>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness.
    pub tokens: Arc<dyn TokenGenerator>,
    /// Password hashing.
    pub passwords: Arc<dyn PasswordHasher>,
    /// Password resets and password changes.
    pub passwords_store: Arc<dyn PasswordRepository>,
    /// Sign-in failure counts.
    pub throttle: Arc<dyn ThrottleRepository>,
    /// Bulk imports.
    pub imports: Arc<dyn ImportRepository>,
    /// The outbox, for its admin views.
    pub outbox: Arc<dyn OutboxRepository>,
    /// Mail delivery, for test messages sent now.
    pub mail: Arc<dyn MailTransport>,
    /// Sign-ins in flight, identity links, seen assertions.
    pub sso: Arc<dyn SsoRepository>,
    /// The SSO protocol adapter.
    pub identity: Arc<dyn IdentityProvider>,
    /// Service tokens.
    pub service_tokens: Arc<dyn ServiceTokenRepository>,
    /// Usage events and their aggregates.
    pub usage: Arc<dyn UsageRepository>,
}

/// Every storage port at once: what a single store adapter implements.
pub trait Store:
    UserRepository
    + InvitationRepository
    + SessionRepository
    + SetupRepository
    + AuditLog
    + SettingsRepository
    + PasswordRepository
    + ThrottleRepository
    + OutboxRepository
    + ImportRepository
    + SsoRepository
    + ServiceTokenRepository
    + UsageRepository
    + 'static
{
}

impl<S> Store for S where
    S: UserRepository
        + InvitationRepository
        + SessionRepository
        + SetupRepository
        + AuditLog
        + SettingsRepository
        + PasswordRepository
        + ThrottleRepository
        + OutboxRepository
        + ImportRepository
        + SsoRepository
        + ServiceTokenRepository
        + UsageRepository
        + 'static
{
}

impl Ports {
    /// Every storage port from one store, with the given clock, token
    /// generator and password hasher.
    pub fn from_store<S: Store>(
        store: Arc<S>,
        clock: Arc<dyn Clock>,
        tokens: Arc<dyn TokenGenerator>,
        passwords: Arc<dyn PasswordHasher>,
        mail: Arc<dyn MailTransport>,
    ) -> Self {
        Self {
            outbox: store.clone(),
            sso: store.clone(),
            service_tokens: store.clone(),
            usage: store.clone(),
            identity: Arc::new(NoIdentityProvider),
            imports: store.clone(),
            mail,
            users: store.clone(),
            invitations: store.clone(),
            sessions: store.clone(),
            setup: store.clone(),
            audit: store.clone(),
            settings: store.clone(),
            passwords_store: store.clone(),
            throttle: store,
            clock,
            tokens,
            passwords,
        }
    }
}

impl Ports {
    /// These ports with this SSO protocol adapter (the default has none and
    /// refuses every SSO setting).
    #[must_use]
    pub fn with_identity_provider(mut self, identity: Arc<dyn IdentityProvider>) -> Self {
        self.identity = identity;
        self
    }
}

/// Tunable rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// How long an invitation link works (72 hours).
    pub invitation_ttl: Duration,
    /// How long a first-admin setup link works.
    pub setup_ttl: Duration,
    /// A session unused this long ends.
    pub session_idle_timeout: Duration,
    /// A session ends this long after sign-in, whatever the activity.
    pub session_absolute_timeout: Duration,
    /// Activity is recorded at most this often per session.
    pub session_touch_interval: Duration,
    /// Invited + active users allowed when no admin has set a limit;
    /// `None` = unlimited.
    pub seat_limit: Option<u32>,
    /// Largest page of users.
    pub max_page_size: u32,
    /// Brute-force throttling of sign-in.
    pub throttle: ThrottlePolicy,
    /// Email settings in force until an admin saves others.
    pub email: EmailSettings,
    /// SSO settings in force until an admin saves others.
    pub sso: SsoSettings,
    /// Usage analytics: batch size, retention.
    pub analytics: AnalyticsPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            invitation_ttl: Duration::hours(72),
            setup_ttl: Duration::hours(24),
            session_idle_timeout: Duration::hours(2),
            session_absolute_timeout: Duration::hours(12),
            session_touch_interval: Duration::minutes(1),
            seat_limit: None,
            max_page_size: 200,
            throttle: ThrottlePolicy::default(),
            email: EmailSettings::embedded_default(),
            sso: SsoSettings::disabled(),
            analytics: AnalyticsPolicy::default(),
        }
    }
}

/// The user-management use cases.
pub struct UserManagement {
    pub(crate) ports: Ports,
    pub(crate) policy: Policy,
}

impl UserManagement {
    /// The use cases over these ports and rules.
    pub fn new(ports: Ports, policy: Policy) -> Self {
        Self { ports, policy }
    }

    /// The rules in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The seat limit in force: the one an admin set, else the configured one.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn seat_limit(&self) -> Result<Option<u32>, crate::StoreError> {
        Ok(self.ports.settings.seat_limit().await?.unwrap_or(self.policy.seat_limit))
    }
}
