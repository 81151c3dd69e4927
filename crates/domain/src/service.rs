//! [`UserManagement`]: every service of the domain, composed. The HTTP
//! front end and the command line hold one and call its services
//! (`service.invitations.invite_user(…)`); a service that embeds only a
//! slice of the domain builds just the services it needs from their own
//! ports (see `examples/` and `docs/ARCHITECTURE.md`).
//!
//! Each service holds only the ports it uses and is built from them. They
//! depend on each other one way only: no service calls another; what two
//! need (the seat limit and SSO settings in force) is a function of the
//! settings port in [`crate::settings`].

use std::collections::HashMap;
use std::sync::Arc;

use crate::access::Admin;
use crate::analytics::ports::{ServiceTokenRepository, UsageRepository};
use crate::analytics::service::{AnalyticsPorts, AnalyticsService};
use crate::audit::ports::AuditLog;
use crate::audit::service::{AuditPorts, AuditService};
use crate::clock::Clock;
use crate::housekeeping::{Housekeeping, HousekeepingPorts};
use crate::imports::ports::ImportRepository;
use crate::imports::service::{ImportPorts, ImportService};
use crate::invitations::models::InvitationStatus;
use crate::invitations::ports::InvitationRepository;
use crate::invitations::service::{InvitationPorts, InvitationService};
use crate::mail::admin::{MailPorts, MailService};
use crate::mail::models::OutboxEntry;
use crate::mail::ports::{MailTransport, OutboxRepository};
use crate::policy::Policy;
use crate::provisioning::service::{ProvisioningPorts, ProvisioningService};
use crate::resets::ports::PasswordRepository;
use crate::resets::service::{PasswordPorts, PasswordService};
use crate::secrets::{PasswordHasher, TokenGenerator};
use crate::service_tokens::service::{ServiceTokenPorts, ServiceTokenService};
use crate::sessions::ports::SessionRepository;
use crate::sessions::service::{SessionPorts, SessionService};
use crate::sessions::throttle::ThrottleRepository;
use crate::settings::ports::SettingsRepository;
use crate::setup::ports::SetupRepository;
use crate::setup::service::{SetupPorts, SetupService};
use crate::sso::ports::{IdentityProvider, SsoRepository};
use crate::sso::service::{SsoPorts, SsoService};
use crate::users::errors::GetUserError;
use crate::users::models::{User, UserId};
use crate::users::service::{UserPorts, UserService};

/// Every driven port, for the full composition. A store adapter that
/// implements every storage port fills it (`SqlStore::ports`,
/// `InMemoryStore::ports`); a service embedding a slice of the domain
/// needs none of this, only the ports of the services it builds.
#[derive(Clone)]
pub struct Ports {
    /// User storage.
    pub users: Arc<dyn UserRepository>,
    /// Invitation storage.
    pub invitations: Arc<dyn InvitationRepository>,
    /// Session storage.
    pub sessions: Arc<dyn SessionRepository>,
    /// First-admin setup storage.
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
    pub hasher: Arc<dyn PasswordHasher>,
    /// Password resets and password changes.
    pub resets: Arc<dyn PasswordRepository>,
    /// Sign-in attempt counts.
    pub throttle: Arc<dyn ThrottleRepository>,
    /// Bulk imports.
    pub imports: Arc<dyn ImportRepository>,
    /// The mail outbox.
    pub outbox: Arc<dyn OutboxRepository>,
    /// Mail delivery, for test messages sent now.
    pub transport: Arc<dyn MailTransport>,
    /// SSO sign-ins in flight, identity links, seen assertions.
    pub sso: Arc<dyn SsoRepository>,
    /// The SSO protocol adapter.
    pub identity: Arc<dyn IdentityProvider>,
    /// Service tokens.
    pub service_tokens: Arc<dyn ServiceTokenRepository>,
    /// Usage events and their aggregates.
    pub usage: Arc<dyn UsageRepository>,
    /// Users provisioned by an identity provider (SCIM).
    pub provisioning: Arc<dyn crate::provisioning::ports::ProvisioningRepository>,
    /// Groups pushed by an identity provider (SCIM).
    pub groups: Arc<dyn crate::provisioning::ports::GroupRepository>,
    /// Second factors.
    pub mfa: Arc<dyn crate::mfa::ports::MfaRepository>,
    /// Passkeys and their ceremonies in progress.
    pub passkeys: Arc<dyn crate::mfa::passkeys::PasskeyRepository>,
    /// The WebAuthn protocol.
    pub passkey_protocol: Arc<dyn crate::mfa::passkeys::PasskeyProtocol>,
    /// Personal API tokens.
    pub api_tokens: Arc<dyn crate::api_tokens::ports::ApiTokenRepository>,
    /// Webhook endpoints.
    pub webhooks: Arc<dyn crate::webhooks::ports::WebhookRepository>,
    /// Counts what operators watch (sign-in outcomes).
    pub meter: Arc<dyn crate::telemetry::Meter>,
}

use crate::users::ports::UserRepository;

/// A user and their activity summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    /// The user (with created, activated, deactivated and last sign-in times).
    pub user: User,
    /// Their latest invitation's status, if they were ever invited.
    pub invitation: Option<InvitationStatus>,
    /// Sessions still usable now.
    pub active_sessions: u64,
    /// Where the last invitation (or access-ready) email is: queued, sent
    /// or failed, with the last error.
    pub invitation_email: Option<crate::mail::models::OutboxEntry>,
    /// Until when sign-in is paused after failed attempts, if it is now.
    pub sign_in_paused_until: Option<chrono::DateTime<chrono::Utc>>,
    /// Where the last password-reset email is: queued, sent or failed,
    /// with the last error.
    pub reset_email: Option<crate::mail::models::OutboxEntry>,
}

/// Where an invited user's invitation stands: the users list's
/// Invitation column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationOverview {
    /// Pending until, expired, voided, or awaiting an SSO user's first
    /// sign-in.
    pub status: InvitationStatus,
    /// The newest invitation (or access-ready) email: waiting, sent or
    /// failed with the server's answer.
    pub email: Option<OutboxEntry>,
}

/// The user-management use cases: one service per subdomain.
pub struct UserManagement {
    /// List, look up, change and erase users; the seat limit.
    pub users: UserService,
    /// Invite, accept an invitation, re-send it.
    pub invitations: InvitationService,
    /// Sign in, resolve a session, sign out, end sessions.
    pub sessions: SessionService,
    /// Password resets and changes.
    pub passwords: PasswordService,
    /// First-admin setup.
    pub setup: SetupService,
    /// Single sign-on.
    pub sso: SsoService,
    /// Bulk CSV import.
    pub imports: ImportService,
    /// Settings > Email and the outbox.
    pub mail: MailService,
    /// The audit log.
    pub audit: AuditService,
    /// Usage analytics.
    pub analytics: AnalyticsService,
    /// Service tokens.
    pub service_tokens: ServiceTokenService,
    /// Deleting what can no longer matter.
    pub housekeeping: Housekeeping,
    /// The identity provider's side (SCIM provisioning).
    pub provisioning: ProvisioningService,
    /// Second factors.
    pub mfa: crate::mfa::service::MfaService,
    /// Personal API tokens.
    pub api_tokens: crate::api_tokens::service::ApiTokenService,
    /// Webhook endpoints and their deliveries.
    pub webhooks: crate::webhooks::service::WebhookService,
    ports: Ports,
    policy: Arc<Policy>,
}

impl UserManagement {
    /// Every service over these ports and rules.
    #[must_use]
    pub fn new(ports: Ports, policy: Policy) -> Self {
        let policy = Arc::new(policy);
        let p = ports.clone();
        let rules = || Arc::clone(&policy);
        Self {
            users: UserService::new(
                UserPorts {
                    users: p.users.clone(),
                    settings: p.settings.clone(),
                    mfa: p.mfa.clone(),
                    clock: p.clock.clone(),
                },
                rules(),
            ),
            invitations: InvitationService::new(
                InvitationPorts {
                    users: p.users.clone(),
                    invitations: p.invitations.clone(),
                    settings: p.settings.clone(),
                    clock: p.clock.clone(),
                    tokens: p.tokens.clone(),
                    hasher: p.hasher.clone(),
                    mfa: p.mfa.clone(),
                },
                rules(),
            ),
            sessions: SessionService::new(
                SessionPorts {
                    users: p.users.clone(),
                    sessions: p.sessions.clone(),
                    throttle: p.throttle.clone(),
                    audit: p.audit.clone(),
                    usage: p.usage.clone(),
                    clock: p.clock.clone(),
                    tokens: p.tokens.clone(),
                    hasher: p.hasher.clone(),
                    mfa: p.mfa.clone(),
                    settings: p.settings.clone(),
                    passkeys: p.passkeys.clone(),
                    passkey_protocol: p.passkey_protocol.clone(),
                    meter: p.meter.clone(),
                },
                rules(),
            ),
            passwords: PasswordService::new(
                PasswordPorts {
                    users: p.users.clone(),
                    resets: p.resets.clone(),
                    sessions: p.sessions.clone(),
                    clock: p.clock.clone(),
                    tokens: p.tokens.clone(),
                    hasher: p.hasher.clone(),
                    throttle: p.throttle.clone(),
                },
                rules(),
            ),
            setup: SetupService::new(
                SetupPorts {
                    setup: p.setup.clone(),
                    clock: p.clock.clone(),
                    tokens: p.tokens.clone(),
                    hasher: p.hasher.clone(),
                },
                rules(),
            ),
            sso: SsoService::new(
                SsoPorts {
                    users: p.users.clone(),
                    sso: p.sso.clone(),
                    identity: p.identity.clone(),
                    settings: p.settings.clone(),
                    audit: p.audit.clone(),
                    usage: p.usage.clone(),
                    clock: p.clock.clone(),
                    tokens: p.tokens.clone(),
                    mfa: p.mfa.clone(),
                    meter: p.meter.clone(),
                },
                rules(),
            ),
            imports: ImportService::new(
                ImportPorts {
                    users: p.users.clone(),
                    imports: p.imports.clone(),
                    settings: p.settings.clone(),
                    clock: p.clock.clone(),
                    tokens: p.tokens.clone(),
                    mfa: p.mfa.clone(),
                },
                rules(),
            ),
            mail: MailService::new(
                MailPorts {
                    outbox: p.outbox.clone(),
                    transport: p.transport.clone(),
                    settings: p.settings.clone(),
                    audit: p.audit.clone(),
                    clock: p.clock.clone(),
                    mfa: p.mfa.clone(),
                },
                rules(),
            ),
            audit: AuditService::new(AuditPorts { audit: p.audit.clone() }),
            analytics: AnalyticsService::new(
                AnalyticsPorts {
                    usage: p.usage.clone(),
                    users: p.users.clone(),
                    clock: p.clock.clone(),
                },
                rules(),
            ),
            api_tokens: crate::api_tokens::service::ApiTokenService::new(
                crate::api_tokens::service::ApiTokenPorts {
                    api_tokens: p.api_tokens.clone(),
                    users: p.users.clone(),
                    mfa: p.mfa.clone(),
                    settings: p.settings.clone(),
                    clock: p.clock.clone(),
                    tokens: p.tokens.clone(),
                },
            ),
            webhooks: crate::webhooks::service::WebhookService::new(
                crate::webhooks::service::WebhookPorts {
                    webhooks: p.webhooks.clone(),
                    mfa: p.mfa.clone(),
                    clock: p.clock.clone(),
                    tokens: p.tokens.clone(),
                },
                policy.webhooks,
            ),
            service_tokens: ServiceTokenService::new(ServiceTokenPorts {
                service_tokens: p.service_tokens.clone(),
                clock: p.clock.clone(),
                tokens: p.tokens.clone(),
                mfa: p.mfa.clone(),
            }),
            provisioning: ProvisioningService::new(
                ProvisioningPorts {
                    users: p.users.clone(),
                    provisioning: p.provisioning.clone(),
                    groups: p.groups.clone(),
                    settings: p.settings.clone(),
                    clock: p.clock.clone(),
                    tokens: p.tokens.clone(),
                    audit: p.audit.clone(),
                    mfa: p.mfa.clone(),
                },
                rules(),
            ),
            mfa: crate::mfa::service::MfaService::new(crate::mfa::service::MfaPorts {
                mfa: p.mfa.clone(),
                passkeys: p.passkeys.clone(),
                passkey_protocol: p.passkey_protocol.clone(),
                audit: p.audit.clone(),
                clock: p.clock.clone(),
                tokens: p.tokens.clone(),
                sessions: p.sessions.clone(),
                settings: p.settings.clone(),
                users: p.users.clone(),
            }),
            housekeeping: Housekeeping::new(
                HousekeepingPorts {
                    throttle: p.throttle,
                    sso: p.sso,
                    mfa: p.mfa,
                    passkeys: p.passkeys,
                    webhooks: p.webhooks.clone(),
                    clock: p.clock,
                },
                rules(),
            ),
            ports,
            policy,
        }
    }

    /// The rules in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Where the invitation of each invited user among `users` stands, in
    /// two reads whatever their number (a page of the users list); users
    /// who are not invited are left out.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn invitation_overviews(
        &self,
        _admin: &Admin,
        users: &[User],
    ) -> Result<HashMap<UserId, InvitationOverview>, crate::StoreError> {
        let invited: Vec<&User> =
            users.iter().filter(|u| u.status() == crate::UserStatus::Invited).collect();
        if invited.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<UserId> = invited.iter().map(|u| u.id).collect();
        let now = self.ports.clock.now();
        let mut emails: HashMap<UserId, OutboxEntry> = HashMap::new();
        for entry in self.ports.outbox.latest_invitation_emails(&ids).await? {
            if let Some(user) = entry.user_id {
                emails.insert(user, entry);
            }
        }
        let mut overviews = HashMap::new();
        for invitation in self.ports.invitations.latest_for_users(&ids).await? {
            let Some(user) = invited.iter().find(|u| u.id == invitation.user_id) else {
                continue;
            };
            let status = invitation.status_for(user.sign_in, now);
            overviews
                .insert(user.id, InvitationOverview { status, email: emails.remove(&user.id) });
        }
        Ok(overviews)
    }

    /// One user with their activity summary: invitation state and live
    /// sessions (the profile page).
    ///
    /// # Errors
    /// See [`GetUserError`].
    pub async fn user_profile(
        &self,
        admin: &Admin,
        id: UserId,
    ) -> Result<UserProfile, GetUserError> {
        let user = self.users.get_user(admin, id).await?;
        let now = self.ports.clock.now();
        let latest = self.ports.invitations.latest_for(id).await?;
        let invitation = latest.map(|i| i.status_for(user.sign_in, now));
        let active_sessions =
            self.ports.sessions.count_live(id, now, now - self.policy.session_idle_timeout).await?;
        let mut invitation_email: Option<OutboxEntry> = None;
        for kind in crate::mail::models::INVITATION_KINDS {
            let latest = self.ports.outbox.latest_for(id, kind).await?;
            if let Some(entry) = latest
                && invitation_email.as_ref().is_none_or(|e| e.created_at < entry.created_at)
            {
                invitation_email = Some(entry);
            }
        }
        let sign_in_paused_until = self.sessions.sign_in_paused_until(admin, &user).await?;
        let reset_email = self.ports.outbox.latest_for(id, "password_reset").await?;
        Ok(UserProfile {
            user,
            invitation,
            active_sessions,
            invitation_email,
            sign_in_paused_until,
            reset_email,
        })
    }
}
