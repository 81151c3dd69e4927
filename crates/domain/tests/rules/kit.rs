//! Shared arrangements: a kit with its first admin, users in each state, and
//! small readers of the in-memory store's state.

use secrecy::SecretString;
use secureai_domain::access::{Admin, Principal};
use secureai_domain::audit::models::AuditEvent;
use secureai_domain::invitations::service::InviteRequest;
use secureai_domain::mail::models::MailMessage;
use secureai_domain::mfa::policy::{AdminMfa, SecurityPolicy, UserMfa};
use secureai_domain::secrets::PlainToken;
use secureai_domain::testing::TestKit;
use secureai_domain::{AuditAction, Policy, RequestContext, UserId, UserState};

/// The first admin's credentials.
pub const ROOT_EMAIL: &str = "root@example.com";
pub const ROOT_PASSWORD: &str = "a long admin passphrase";

pub fn pw(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

pub fn ctx() -> RequestContext {
    RequestContext::default()
}

pub fn invite(email: &str, role: &str) -> InviteRequest {
    InviteRequest {
        email: email.into(),
        name: format!("Name of {email}"),
        role: role.into(),
        department: None,
        sign_in: None,
    }
}

/// A kit whose first admin is set up and signed in.
pub async fn with_admin() -> (TestKit, Admin) {
    with_admin_under(Policy::default()).await
}

/// A kit with this policy whose first admin is set up and signed in.
pub async fn with_admin_under(policy: Policy) -> (TestKit, Admin) {
    let kit = TestKit::with_policy(policy);
    let token = kit.service.setup.prepare_setup().await.unwrap().unwrap();
    kit.service
        .setup
        .complete_setup(&token, ROOT_EMAIL, "Root", pw(ROOT_PASSWORD), &ctx())
        .await
        .unwrap();
    // Rules about something else run with second factors optional for
    // everyone; `mfa_policy.rs` tests the default, which requires one of
    // admins.
    kit.store.state().security_policy =
        SecurityPolicy { admin_mfa: AdminMfa::Optional, user_mfa: UserMfa::Optional };
    let admin = sign_in(&kit, ROOT_EMAIL, ROOT_PASSWORD).await.admin().unwrap();
    (kit, admin)
}

/// Signs in and resolves the session, as the next request would.
pub async fn sign_in(kit: &TestKit, email: &str, password: &str) -> Principal {
    let signed_in = kit.service.sessions.sign_in(email, &pw(password), &ctx()).await.unwrap();
    kit.service.sessions.authenticate(&signed_in.token).await.unwrap()
}

/// Invites and activates a user; returns their id.
pub async fn active_user(
    kit: &TestKit,
    admin: &Admin,
    email: &str,
    role: &str,
    password: &str,
) -> UserId {
    let invited =
        kit.service.invitations.invite_user(admin, &invite(email, role), &ctx()).await.unwrap();
    kit.service.invitations.accept_invitation(&invited.token, pw(password), &ctx()).await.unwrap();
    invited.user.id
}

/// Deactivates a user by writing the store directly (no use case involved).
pub fn deactivate_in_store(kit: &TestKit, id: UserId) {
    let now = secureai_domain::Clock::now(kit.clock.as_ref());
    let mut state = kit.store.state();
    let user = state.users.get_mut(&id).unwrap();
    user.state =
        UserState::Deactivated { activated_at: user.state.activated_at(), deactivated_at: now };
}

/// Every audit event of this kind, oldest first.
pub fn audit_of(kit: &TestKit, action: AuditAction) -> Vec<AuditEvent> {
    kit.store.state().audit.iter().filter(|e| e.action == action).cloned().collect()
}

/// The value of a detail (or the new value of a change) in an audit event.
pub fn detail<'e>(event: &'e AuditEvent, field: &str) -> Option<&'e str> {
    event.changes.iter().find(|c| c.field == field).and_then(|c| c.after.as_deref())
}

/// The link token carried by the newest outbox message.
pub fn latest_mailed_token(kit: &TestKit) -> PlainToken {
    let state = kit.store.state();
    match &state.outbox.last().unwrap().mail.message {
        MailMessage::Invitation { token, .. } | MailMessage::PasswordReset { token, .. } => {
            token.clone()
        }
        other => panic!("the newest message carries no link: {other:?}"),
    }
}

/// How many rows each table of the store holds, to show that a refused
/// operation wrote nothing.
#[derive(Debug, PartialEq, Eq)]
pub struct Counts {
    pub users: usize,
    pub invitations: usize,
    pub outbox: usize,
    pub audit: usize,
    pub sessions: usize,
}

pub fn counts(kit: &TestKit) -> Counts {
    let state = kit.store.state();
    Counts {
        users: state.users.len(),
        invitations: state.invitations.len(),
        outbox: state.outbox.len(),
        audit: state.audit.len(),
        sessions: state.sessions.len(),
    }
}
