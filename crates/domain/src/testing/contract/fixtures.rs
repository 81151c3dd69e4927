//! What the contracts arrange, through the ports only: users in each state,
//! sessions, audit events — and a way to run several futures at once
//! without a runtime of our own.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use chrono::{DateTime, Duration, Utc};
use secrecy::SecretString;
use uuid::Uuid;

use crate::audit::models::{Actor, AuditAction, AuditEntry, AuditEvent, Change, RequestContext};
use crate::audit::ports::AuditFilter;
use crate::invitations::models::Invitation;
use crate::invitations::ports::Acceptance;
use crate::invitations::ports::NewInvitedUser;
use crate::secrets::{Password, PasswordHash, PlainToken};
use crate::service::Ports;
use crate::sessions::models::{Session, SessionId};
use crate::users::models::{
    DisplayName, EmailAddress, Role, SignInMethod, User, UserId, UserState,
};
use crate::users::ports::UserChange;

/// A password every arranged user gets.
pub(super) const PASSWORD: &str = "correct horse battery staple";

/// The clock's time, cut to the microsecond (what SQL stores keep).
pub(super) fn now(ports: &Ports) -> DateTime<Utc> {
    let now = ports.clock.now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// A request from nowhere in particular.
pub(super) fn ctx() -> RequestContext {
    RequestContext::default()
}

/// A valid address.
pub(super) fn email(raw: &str) -> EmailAddress {
    EmailAddress::parse(raw).unwrap()
}

/// An event the operator caused at `at`.
pub(super) fn event(at: DateTime<Utc>, action: AuditAction) -> AuditEvent {
    AuditEvent::new(at, Actor::Operator, action, &ctx())
}

/// An invited password user (not stored), with the rest of what
/// `insert_invited` writes, as the invitation use case builds it.
pub(super) fn new_invited(
    ports: &Ports,
    address: &str,
    role: Role,
    seat_limit: Option<u32>,
) -> (NewInvitedUser, PlainToken) {
    let at = now(ports);
    let user = User {
        id: UserId::generate(),
        email: email(address),
        name: DisplayName::parse(&format!("Name of {address}")).unwrap(),
        role,
        state: UserState::Invited,
        sign_in: SignInMethod::Password,
        department: None,
        created_at: at,
        last_login_at: None,
    };
    let token = ports.tokens.generate();
    let (invitation, mail) =
        Invitation::issue(&user, &token, Duration::hours(72), Some("Root".into()), at);
    let audit = event(at, AuditAction::UserInvited)
        .target(&user)
        .change(Change::new("role", None, Some(role.as_str())))
        .change(Change::new("status", None, Some("invited")));
    (NewInvitedUser { user, invitation, mail, audit, seat_limit }, token)
}

/// An invited user as stored.
pub(super) struct Invited {
    /// The user.
    pub user: User,
    /// Their pending invitation.
    pub invitation: Invitation,
    /// Its link's token.
    pub token: PlainToken,
    /// The id of the invitation email.
    pub mail: Uuid,
}

/// Stores an invited user (no seat limit).
pub(super) async fn invite(ports: &Ports, address: &str, role: Role) -> Invited {
    let (new, token) = new_invited(ports, address, role, None);
    let invited = Invited {
        user: new.user.clone(),
        invitation: new.invitation.clone(),
        token,
        mail: new.mail.id,
    };
    ports.invitations.insert_invited(new).await.unwrap();
    invited
}

/// A password hash from the hasher port.
pub(super) async fn password_hash(ports: &Ports, text: &str) -> PasswordHash {
    let password = Password::new(SecretString::from(text.to_owned())).unwrap();
    ports.hasher.hash(&password).await.unwrap()
}

/// Accepting `invited`'s invitation at `at` with this password hash.
pub(super) fn acceptance(invited: &Invited, at: DateTime<Utc>, hash: PasswordHash) -> Acceptance {
    let activated = User { state: UserState::Active { activated_at: at }, ..invited.user.clone() };
    let audit =
        AuditEvent::new(at, Actor::user(&activated), AuditAction::InvitationAccepted, &ctx())
            .target(&activated)
            .change(Change::new("status", Some("invited"), Some("active")));
    Acceptance {
        invitation_id: invited.invitation.id,
        user_id: activated.id,
        password_hash: Some(hash),
        at,
        audit,
    }
}

/// Stores an active user (invited, then accepted with [`PASSWORD`]).
pub(super) async fn active(ports: &Ports, address: &str, role: Role) -> User {
    let invited = invite(ports, address, role).await;
    let at = now(ports);
    let hash = password_hash(ports, PASSWORD).await;
    ports.invitations.accept(acceptance(&invited, at, hash)).await.unwrap();
    User { state: UserState::Active { activated_at: at }, ..invited.user }
}

/// A change of `before` into `after`, audited as `action`, asking for
/// nothing else.
pub(super) fn change(ports: &Ports, before: &User, after: User, action: AuditAction) -> UserChange {
    UserChange {
        before: before.clone(),
        after,
        audit: vec![event(now(ports), action).target(before)],
        end_sessions: false,
        revoke_links: false,
        keep_an_admin: false,
        takes_seat: None,
    }
}

/// An admin made a user, keeping an admin.
pub(super) fn demotion(ports: &Ports, admin: &User) -> UserChange {
    let after = User { role: Role::User, ..admin.clone() };
    UserChange { keep_an_admin: true, ..change(ports, admin, after, AuditAction::RoleChanged) }
}

/// A user deactivated as the use case does it: sessions end, links void,
/// and an active admin must leave another.
pub(super) fn deactivation(ports: &Ports, user: &User) -> UserChange {
    let state = UserState::Deactivated {
        activated_at: user.state.activated_at(),
        deactivated_at: now(ports),
    };
    let after = User { state, ..user.clone() };
    UserChange {
        end_sessions: true,
        revoke_links: true,
        keep_an_admin: user.is_active_admin(),
        ..change(ports, user, after, AuditAction::UserDeactivated)
    }
}

/// A session of `user` starting at `at` (not stored), lasting 12 hours.
pub(super) fn new_session(ports: &Ports, user: &User, at: DateTime<Utc>) -> (Session, PlainToken) {
    let token = ports.tokens.generate();
    let session = Session {
        id: SessionId::generate(),
        user_id: user.id,
        token_hash: token.hash(),
        created_at: at,
        last_seen_at: at,
        expires_at: at + Duration::hours(12),
        enrolment_only: false,
        second_factor_at: None,
    };
    (session, token)
}

/// Starts a session of `user` at `at`.
pub(super) async fn start_session(
    ports: &Ports,
    user: &User,
    at: DateTime<Utc>,
) -> (Session, PlainToken) {
    let (session, token) = new_session(ports, user, at);
    let audit =
        AuditEvent::new(at, Actor::user(user), AuditAction::SignInSucceeded, &ctx()).target(user);
    ports.sessions.start(session.clone(), audit).await.unwrap();
    (session, token)
}

/// Every audit entry matching `filter`, newest first.
pub(super) async fn audit(ports: &Ports, filter: AuditFilter) -> Vec<AuditEntry> {
    ports.audit.list(&filter, None, 1000).await.unwrap()
}

/// Every audit entry about `target`.
pub(super) async fn audit_about(ports: &Ports, target: UserId) -> Vec<AuditEntry> {
    audit(ports, AuditFilter { target: Some(target), ..AuditFilter::default() }).await
}

/// Every audit entry of `action`.
pub(super) async fn audit_of(ports: &Ports, action: AuditAction) -> Vec<AuditEntry> {
    audit(ports, AuditFilter { action: Some(action), ..AuditFilter::default() }).await
}

/// Runs the futures at once (interleaved on this task, so that the store
/// sees them overlap) and returns their outputs in order.
pub(super) async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut running: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = running.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (future, output) in running.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => done = false,
                }
            }
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
