//! Another Rust service that embeds two slices of the domain, invitations
//! and sessions, with adapters of its choosing: its own clock, the OS
//! random source and argon2 from `secureai-system`, and in-memory storage.
//! It never builds `UserManagement`, nor any port these two do not use.

use secureai_domain::mfa::passkeys::NoPasskeys;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use secureai_domain::audit::models::{Actor, AuditAction, AuditEvent};
use secureai_domain::invitations::service::{InvitationPorts, InvitationService, InviteRequest};
use secureai_domain::mfa::policy::{AdminMfa, SecurityPolicy};
use secureai_domain::sessions::errors::AuthenticateError;
use secureai_domain::sessions::service::{SessionPorts, SessionService};
use secureai_domain::settings::ports::SettingsRepository as _;
use secureai_domain::testing::InMemoryStore;
use secureai_domain::{Clock, Policy, RequestContext};
use secureai_system::{Argon2Cost, Argon2Hasher, HashingLimits, OsTokens};

/// This service's own adapter of the `Clock` port.
struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let store = Arc::new(InMemoryStore::new());
    let clock: Arc<dyn Clock> = Arc::new(WallClock);
    let tokens = Arc::new(OsTokens);
    let hasher = Arc::new(Argon2Hasher::new(Argon2Cost::OWASP, HashingLimits::default())?);
    let policy = Arc::new(Policy::default());
    let invitations = InvitationService::new(
        InvitationPorts {
            users: store.clone(),
            invitations: store.clone(),
            settings: store.clone(),
            clock: clock.clone(),
            tokens: tokens.clone(),
            hasher: hasher.clone(),
            mfa: store.clone(),
        },
        policy.clone(),
    );
    let sessions = SessionService::new(
        SessionPorts {
            users: store.clone(),
            sessions: store.clone(),
            throttle: store.clone(),
            audit: store.clone(),
            usage: store.clone(),
            clock,
            tokens,
            hasher,
            mfa: store.clone(),
            settings: store.clone(),
            passkeys: store.clone(),
            passkey_protocol: Arc::new(NoPasskeys("no passkeys in this example".to_owned())),
            // Counts sign-ins for operators; nothing to count here.
            meter: Arc::new(secureai_domain::telemetry::NoMeter),
        },
        policy,
    );
    let here = RequestContext::command_line();

    // The operator invites the first admin; the admin accepts and signs in.
    let first = invitations.invite_admin_as_operator("ada@example.com", "Ada", &here).await?;
    let secret = SecretString::from("ada's long password");
    invitations.accept_invitation(&first.token, secret.clone(), &here).await?;
    // By default a password admin needs a second factor: without one the
    // session can only set one up, and `authenticate` refuses it.
    let first_try = sessions.sign_in("ada@example.com", &secret, &here).await?;
    let refused = sessions.authenticate(&first_try.token).await;
    assert!(matches!(refused, Err(AuthenticateError::EnrolmentRequired)));
    // This service's admins sign in through its own identity provider's
    // second factor, so it makes them optional in its own database.
    let relaxed = SecurityPolicy { admin_mfa: AdminMfa::Optional, ..SecurityPolicy::default() };
    let audit =
        AuditEvent::new(Utc::now(), Actor::Anonymous, AuditAction::SecuritySettingsChanged, &here);
    store.set_security_policy(&relaxed, audit).await?;
    let signed_in = sessions.sign_in("ada@example.com", &secret, &here).await?;
    let admin = sessions.authenticate(&signed_in.token).await?.admin()?;

    // Only a resolved session yields `Admin`: the admin invites a colleague.
    let ask = InviteRequest {
        email: "grace@example.com".into(),
        name: "Grace".into(),
        role: "user".into(),
        ..InviteRequest::default()
    };
    let invited = invitations.invite_user(&admin, &ask, &here).await?;
    let secret = SecretString::from("grace's own passphrase");
    invitations.accept_invitation(&invited.token, secret.clone(), &here).await?;
    let grace = sessions.sign_in("grace@example.com", &secret, &here).await?;
    let who = sessions.authenticate(&grace.token).await?;
    println!("signed in: {} ({})", who.user().email, who.user().role.as_str());
    Ok(())
}
