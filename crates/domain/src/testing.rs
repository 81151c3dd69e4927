//! In-memory adapters for every driven port, a fake clock, predictable
//! tokens and a fast fake password hasher: for behaviour tests of this crate
//! and of services that embed it.
//!
//! They keep the same promises as the real adapters (see each port's
//! `# Errors`), with one lock standing in for a database transaction.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::audit::models::AuditEvent;
use crate::clock::Clock;
use crate::errors::StoreError;
use crate::imports::models::{ImportRecord, RowReport};
use crate::invitations::models::{Invitation, InvitationState};
use crate::mail::models::OutgoingMail;
use crate::mail::ports::MailTransport;
use crate::mail::settings::EmailSettings;
use crate::policy::Policy;
use crate::resets::models::PasswordReset;
use crate::secrets::{
    Password, PasswordHash, PasswordHasher, PlainToken, TOKEN_BYTES, TokenGenerator, TokenHash,
};
use crate::service::{Ports, UserManagement};
use crate::sessions::models::Session;
use crate::sessions::throttle::FailureCount;
use crate::settings::ports::StoredSeatLimit;
use crate::sso::models::PendingLogin;
use crate::sso::ports::NoIdentityProvider;
use crate::sso::settings::SsoSettings;
use crate::telemetry::{SignInMethod, SignInOutcome};
use crate::users::models::{EmailAddress, User, UserId};
use crate::users::ports::InvitationFilter;

mod api_tokens;
mod audit;
pub mod contract;
mod imports;
mod invitations;
mod mfa;
mod outbox;
mod passkeys;
pub mod webhooks;
pub use passkeys::FakePasskeys;
mod passwords;
mod provisioning;
mod sessions;
mod settings;
mod setup;
mod sso;
mod throttle;
mod usage;
mod users;

pub use outbox::RecordingTransport;
pub use sso::FakeIdentityProvider;
pub use usage::MemoryUsage;

/// A clock that stands still until moved.
#[derive(Debug)]
pub struct FakeClock(Mutex<DateTime<Utc>>);

impl FakeClock {
    /// A clock at 2026-01-05 09:00 UTC.
    pub fn new() -> Self {
        Self::at(Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).single().unwrap_or_default())
    }
    /// A clock at `now`.
    pub fn at(now: DateTime<Utc>) -> Self {
        Self(Mutex::new(now))
    }
    /// Moves time forward.
    pub fn advance(&self, by: Duration) {
        let mut now = lock(&self.0);
        *now += by;
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.0)
    }
}

/// Distinct, predictable tokens (not random: tests only).
#[derive(Debug, Default)]
pub struct SequentialTokens(AtomicU64);

impl TokenGenerator for SequentialTokens {
    fn generate(&self) -> PlainToken {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        let mut bytes = [0u8; TOKEN_BYTES];
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        PlainToken::from_random_bytes(bytes)
    }
}

/// A fast, insecure stand-in for argon2 (tests only).
#[derive(Debug, Default)]
pub struct FakeHasher;

#[async_trait]
impl PasswordHasher for FakeHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, StoreError> {
        Ok(PasswordHash::from_phc(format!("$fake${}", password.expose())))
    }
    async fn verify(
        &self,
        presented: &SecretString,
        hash: Option<PasswordHash>,
    ) -> Result<bool, StoreError> {
        Ok(hash.is_some_and(|h| h.as_phc() == format!("$fake${}", presented.expose_secret())))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another test thread panicked; the data is
    // still what it was.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An outbox message as the in-memory store keeps it.
#[derive(Debug, Clone)]
pub struct StoredMail {
    /// The message.
    pub mail: OutgoingMail,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not before this time.
    pub next_attempt_at: DateTime<Utc>,
    /// Leased to a worker until.
    pub leased_until: Option<DateTime<Utc>>,
    /// When delivered.
    pub sent_at: Option<DateTime<Utc>>,
    /// Gave up.
    pub failed: bool,
    /// Last error.
    pub last_error: Option<String>,
}

/// A recovery code as kept: its digest, and when it was used.
pub type StoredRecoveryCode = (crate::TokenHash, Option<DateTime<Utc>>);

/// Everything the in-memory store holds; public so tests can look inside.
#[derive(Debug, Default)]
pub struct MemoryState {
    /// Users by id.
    pub users: HashMap<UserId, User>,
    /// Password hashes by user.
    pub passwords: HashMap<UserId, PasswordHash>,
    /// Invitations.
    pub invitations: Vec<Invitation>,
    /// Sessions.
    pub sessions: Vec<Session>,
    /// Outbox.
    pub outbox: Vec<StoredMail>,
    /// Audit log, in order.
    pub audit: Vec<AuditEvent>,
    /// Users erased: their past actions keep the id, not the email.
    pub erased_actors: std::collections::HashSet<UserId>,
    /// The setup token, if any.
    pub setup_token: Option<(TokenHash, DateTime<Utc>)>,
    /// The seat limit an admin set.
    pub seat_limit: StoredSeatLimit,
    /// Saved email settings.
    pub email_settings: Option<EmailSettings>,
    /// Imports and their row reports.
    pub imports: HashMap<Uuid, (ImportRecord, Vec<RowReport>)>,
    /// Password reset links.
    pub resets: Vec<PasswordReset>,
    /// Sign-in failure counts by key.
    pub failures: HashMap<String, FailureCount>,
    /// Saved SSO settings.
    pub sso_settings: Option<SsoSettings>,
    /// SSO sign-ins in flight.
    pub pending_logins: Vec<PendingLogin>,
    /// Identity links: (issuer, subject) → user.
    pub sso_links: HashMap<(String, String), UserId>,
    /// Seen assertion ids: (issuer, id) → until when they are kept.
    pub assertions: HashMap<(String, String), DateTime<Utc>>,
    /// Service tokens, usage events and their aggregates.
    pub usage: MemoryUsage,
    /// When each user last changed, for those changed since created.
    pub modified: HashMap<UserId, DateTime<Utc>>,
    /// Provisioned users' links to the identity provider's records.
    pub scim_identities: HashMap<UserId, crate::provisioning::models::ScimIdentity>,
    /// Groups pushed by the identity provider, by id.
    pub groups: HashMap<Uuid, crate::provisioning::models::Group>,
    /// Settings › Provisioning.
    pub provisioning_settings: crate::provisioning::models::ProvisioningSettings,
    /// Settings › Security.
    pub security_policy: crate::mfa::policy::SecurityPolicy,
    /// Refused SCIM requests, newest first.
    pub scim_failures: Vec<crate::provisioning::models::RequestFailure>,
    /// Authenticator apps by user.
    pub totp: HashMap<UserId, crate::mfa::models::TotpEnrolment>,
    /// Recovery codes by user.
    pub recovery_codes: HashMap<UserId, Vec<StoredRecoveryCode>>,
    /// Sign-ins waiting for a second factor: token digest → user, until.
    pub mfa_sign_ins: HashMap<crate::TokenHash, (UserId, DateTime<Utc>)>,
    /// Passkeys, oldest first.
    pub passkeys: Vec<crate::mfa::passkeys::Passkey>,
    /// WebAuthn ceremonies waiting for their answer, by token digest.
    pub ceremonies: HashMap<crate::TokenHash, crate::mfa::passkeys::PendingCeremony>,
    /// Personal API tokens with their digests, oldest first.
    pub api_tokens: Vec<(crate::api_tokens::models::ApiToken, crate::TokenHash)>,
    /// Webhook endpoints with their secrets, oldest first.
    pub webhooks:
        Vec<(crate::webhooks::models::WebhookEndpoint, crate::webhooks::signature::WebhookSecret)>,
    /// Webhook deliveries and what the store keeps beside them.
    pub webhook_deliveries: Vec<webhooks::StoredDelivery>,
    /// Previous signing secrets during a rotation, with their end.
    pub webhook_previous:
        HashMap<uuid::Uuid, (crate::webhooks::signature::WebhookSecret, DateTime<Utc>)>,
    /// Audit events already turned into deliveries.
    pub webhook_audit_seen: usize,
}

impl MemoryState {
    pub(crate) fn queue(&mut self, mail: OutgoingMail) {
        let next_attempt_at = mail.created_at;
        self.outbox.push(StoredMail {
            mail,
            attempts: 0,
            next_attempt_at,
            leased_until: None,
            sent_at: None,
            failed: false,
            last_error: None,
        });
    }

    /// Drops the user's unsent emails of `kinds` that no worker is sending
    /// at `now`: their links are void.
    fn drop_unsent_links(&mut self, user: UserId, kinds: &[&str], now: DateTime<Utc>) {
        self.outbox.retain(|stored| {
            stored.mail.user_id != Some(user)
                || stored.sent_at.is_some()
                || stored.leased_until.is_some_and(|until| until >= now)
                || !kinds.contains(&stored.mail.message.kind())
        });
    }

    fn revoke_pending_links(&mut self, user: UserId, at: DateTime<Utc>) {
        let links = self.invitations.iter_mut().map(|i| (i.user_id, &mut i.state));
        let resets = self.resets.iter_mut().map(|r| (r.user_id, &mut r.state));
        for (owner, state) in links.chain(resets) {
            if owner == user && *state == InvitationState::Pending {
                *state = InvitationState::Revoked { at };
            }
        }
    }

    /// Whether `user` is an invited user whose invitation is as `filter` says.
    fn invitation_in_trouble(&self, user: &User, filter: InvitationFilter) -> bool {
        if user.status() != crate::users::models::UserStatus::Invited {
            return false;
        }
        match filter {
            InvitationFilter::Expired { now } => {
                user.sign_in == crate::users::models::SignInMethod::Password
                    && self.invitations.iter().any(|i| {
                        i.user_id == user.id
                            && i.state == InvitationState::Pending
                            && i.expires_at <= now
                    })
            }
            InvitationFilter::EmailFailed => self
                .outbox
                .iter()
                .filter(|m| m.mail.user_id == Some(user.id))
                .filter(|m| crate::mail::models::INVITATION_KINDS.contains(&m.mail.message.kind()))
                .max_by_key(|m| (m.mail.created_at, m.mail.id))
                .is_some_and(|m| m.failed && m.sent_at.is_none()),
        }
    }

    fn email_taken(&self, email: &EmailAddress) -> bool {
        self.users.values().any(|u| u.email == *email)
    }
    fn seats_used(&self) -> usize {
        self.users.values().filter(|u| u.status().holds_seat()).count()
    }
}

/// An in-memory store implementing every storage port.
#[derive(Debug, Default)]
pub struct InMemoryStore(Mutex<MemoryState>);

impl InMemoryStore {
    /// Every port of the full composition, storage from this store; no
    /// identity provider (SSO settings are refused) unless replaced.
    pub fn ports(
        self: &Arc<Self>,
        clock: Arc<dyn Clock>,
        tokens: Arc<dyn TokenGenerator>,
        hasher: Arc<dyn PasswordHasher>,
        transport: Arc<dyn MailTransport>,
    ) -> Ports {
        Ports {
            users: self.clone(),
            invitations: self.clone(),
            sessions: self.clone(),
            setup: self.clone(),
            audit: self.clone(),
            settings: self.clone(),
            resets: self.clone(),
            throttle: self.clone(),
            imports: self.clone(),
            outbox: self.clone(),
            sso: self.clone(),
            service_tokens: self.clone(),
            usage: self.clone(),
            provisioning: self.clone(),
            groups: self.clone(),
            mfa: self.clone(),
            passkeys: self.clone(),
            api_tokens: self.clone(),
            webhooks: self.clone(),
            meter: Arc::new(crate::telemetry::NoMeter),
            passkey_protocol: Arc::new(crate::mfa::passkeys::NoPasskeys(
                "passkeys are not set up in this composition".to_owned(),
            )),
            identity: Arc::new(NoIdentityProvider),
            clock,
            tokens,
            hasher,
            transport,
        }
    }

    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    /// Looks at (or changes) the stored state.
    pub fn state(&self) -> MutexGuard<'_, MemoryState> {
        lock(&self.0)
    }
}

/// A complete in-memory setup: the use cases, and handles on the store and
/// clock to arrange and inspect.
pub struct TestKit {
    /// The use cases.
    pub service: UserManagement,
    /// The store behind them.
    pub store: Arc<InMemoryStore>,
    /// The clock behind them.
    pub clock: Arc<FakeClock>,
    /// The transport test messages go through.
    pub transport: Arc<RecordingTransport>,
    /// The identity provider SSO sign-ins go through.
    pub identity: Arc<FakeIdentityProvider>,
    /// What the use cases told their meter.
    pub meter: Arc<RecordingMeter>,
}

/// A meter that keeps every sign-in outcome it is told, in order.
#[derive(Debug, Default)]
pub struct RecordingMeter(std::sync::Mutex<Vec<(SignInMethod, SignInOutcome)>>);

impl RecordingMeter {
    /// The sign-ins told so far.
    pub fn sign_ins(&self) -> Vec<(SignInMethod, SignInOutcome)> {
        lock(&self.0).clone()
    }
}

impl crate::telemetry::Meter for RecordingMeter {
    fn sign_in(&self, method: SignInMethod, outcome: SignInOutcome) {
        lock(&self.0).push((method, outcome));
    }
}

impl TestKit {
    /// Use cases over a fresh in-memory store with the given policy.
    pub fn with_policy(policy: Policy) -> Self {
        let store = Arc::new(InMemoryStore::new());
        let clock = Arc::new(FakeClock::new());
        let transport = Arc::new(RecordingTransport::default());
        let identity = Arc::new(FakeIdentityProvider::default());
        let meter = Arc::new(RecordingMeter::default());
        let ports = Ports {
            identity: identity.clone(),
            meter: meter.clone(),
            passkey_protocol: Arc::new(FakePasskeys::default()),
            ..store.ports(
                clock.clone(),
                Arc::new(SequentialTokens::default()),
                Arc::new(FakeHasher),
                transport.clone(),
            )
        };
        let service = UserManagement::new(ports, policy);
        Self { service, store, clock, transport, identity, meter }
    }

    /// Use cases over a fresh in-memory store with the default policy.
    pub fn new() -> Self {
        Self::with_policy(Policy::default())
    }
}

impl Default for TestKit {
    fn default() -> Self {
        Self::new()
    }
}
