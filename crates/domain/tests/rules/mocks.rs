//! Failures forced through `mockall` mocks of single ports, for what the
//! in-memory adapters rarely or never do: a database going down, a race lost
//! to a concurrent request.
//!
//! Needs the `mocks` feature: `cargo test -p secureai-domain --features mocks`
//! (`scripts/test.sh` enables it for the whole workspace).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Duration, Utc};
use secureai_domain::audit::ports::MockAuditLog;
use secureai_domain::clock::MockClock;
use secureai_domain::invitations::errors::AcceptInvitationError;
use secureai_domain::invitations::models::{Invitation, InvitationId, InvitationState};
use secureai_domain::invitations::ports::{
    AcceptStoreError, InsertUserError, MockInvitationRepository,
};

use secureai_domain::mail::ports::MockOutboxRepository;
use secureai_domain::mail::service::{DeliveryPolicy, OutboxDelivery};
use secureai_domain::secrets::PlainToken;
use secureai_domain::sessions::errors::{AuthenticateError, SignInError};
use secureai_domain::sessions::ports::MockSessionRepository;
use secureai_domain::testing::{
    FakeClock, FakeHasher, InMemoryStore, RecordingTransport, SequentialTokens,
};
use secureai_domain::users::errors::{InviteUserError, UpdateUserError};
use secureai_domain::users::lifecycle::UserUpdate;
use secureai_domain::users::ports::{ChangeUserError, MockUserRepository};
use secureai_domain::{
    Clock, DisplayName, EmailAddress, Role, SignInMethod, StoreError, User, UserId, UserState,
};
use secureai_domain::{Policy, Ports, UserManagement};

use crate::kit::{ctx, invite, pw, with_admin};

/// Every port on one in-memory store and a fake clock; tests swap one out.
fn ports(store: &Arc<InMemoryStore>) -> Ports {
    store.ports(
        Arc::new(FakeClock::new()),
        Arc::new(SequentialTokens::default()),
        Arc::new(FakeHasher),
        Arc::new(RecordingTransport::default()),
    )
}

/// An active user as a store would return them.
fn stored_user(role: Role) -> User {
    let at = FakeClock::new().now();
    User {
        id: UserId::generate(),
        email: EmailAddress::from_stored("someone@example.com"),
        name: DisplayName::parse("Someone").unwrap(),
        role,
        state: UserState::Active { activated_at: at },
        sign_in: SignInMethod::Password,
        department: None,
        created_at: at,
        last_login_at: None,
    }
}

#[tokio::test]
async fn a_store_failure_during_an_invitation_is_reported_as_unexpected_and_nothing_is_queued() {
    let (_kit, admin) = with_admin().await;
    let store = Arc::new(InMemoryStore::new());
    let mut invitations = MockInvitationRepository::new();
    invitations
        .expect_insert_invited()
        .returning(|_| Err(InsertUserError::Unexpected(StoreError::msg("db down"))));
    let service = UserManagement::new(
        Ports { invitations: Arc::new(invitations), ..ports(&store) },
        Policy::default(),
    );

    let outcome =
        service.invitations.invite_user(&admin, &invite("x@example.com", "user"), &ctx()).await;

    assert!(matches!(outcome, Err(InviteUserError::Unexpected(e)) if e.to_string() == "db down"));
    assert!(store.state().outbox.is_empty());
    assert!(store.state().audit.is_empty());
}

#[tokio::test]
async fn a_failing_audit_log_fails_the_sign_in_rather_than_losing_the_event() {
    let store = Arc::new(InMemoryStore::new());
    let mut audit = MockAuditLog::new();
    audit.expect_append().returning(|_| Err(StoreError::msg("audit table unavailable")));
    let service =
        UserManagement::new(Ports { audit: Arc::new(audit), ..ports(&store) }, Policy::default());

    let outcome = service.sessions.sign_in("nobody@example.com", &pw("whatever1"), &ctx()).await;

    assert!(matches!(outcome, Err(SignInError::Unexpected(_))));
}

#[tokio::test]
async fn an_invitation_expires_72_hours_after_the_clock_ports_now() {
    let (_kit, admin) = with_admin().await;
    let store = Arc::new(InMemoryStore::new());
    let fixed = DateTime::<Utc>::from_timestamp(1_900_000_000, 0).unwrap();
    let mut clock = MockClock::new();
    clock.expect_now().return_const(fixed);
    let service =
        UserManagement::new(Ports { clock: Arc::new(clock), ..ports(&store) }, Policy::default());

    let invited = service
        .invitations
        .invite_user(&admin, &invite("x@example.com", "user"), &ctx())
        .await
        .unwrap();

    assert_eq!(invited.user.created_at, fixed);
    assert_eq!(store.state().invitations[0].expires_at, fixed + Duration::hours(72));
    assert_eq!(store.state().outbox[0].next_attempt_at, fixed);
}

#[tokio::test]
async fn the_loser_of_two_concurrent_acceptances_is_told_the_link_is_invalid() {
    let store = Arc::new(InMemoryStore::new());
    let token = PlainToken::presented("the-link");
    let mut user = stored_user(Role::User);
    user.state = UserState::Invited;
    let now = FakeClock::new().now();
    let invitation = Invitation {
        id: InvitationId::generate(),
        user_id: user.id,
        token_hash: token.hash(),
        created_at: now,
        expires_at: now + Duration::hours(72),
        state: InvitationState::Pending,
    };
    let mut invitations = MockInvitationRepository::new();
    invitations
        .expect_find_by_token()
        .returning(move |_| Ok(Some((invitation.clone(), user.clone()))));
    // The other request accepted between our read and our write.
    invitations.expect_accept().returning(|_| Err(AcceptStoreError::NoLongerPending));
    let service = UserManagement::new(
        Ports { invitations: Arc::new(invitations), ..ports(&store) },
        Policy::default(),
    );

    let outcome =
        service.invitations.accept_invitation(&token, pw("a fine password"), &ctx()).await;

    assert!(matches!(outcome, Err(AcceptInvitationError::Invalid)));
}

#[tokio::test]
async fn a_user_changed_meanwhile_is_read_again_and_the_change_retried() {
    let (_kit, admin) = with_admin().await;
    let store = Arc::new(InMemoryStore::new());
    let target = stored_user(Role::User);
    let id = target.id;
    let attempts = Arc::new(AtomicU32::new(0));
    let mut users = MockUserRepository::new();
    users.expect_get().returning(move |_| Ok(Some(target.clone())));
    let counted = attempts.clone();
    users.expect_apply_change().returning(move |_| {
        // The first write finds the user changed by someone else.
        match counted.fetch_add(1, Ordering::SeqCst) {
            0 => Err(ChangeUserError::Stale),
            _ => Ok(()),
        }
    });
    let service =
        UserManagement::new(Ports { users: Arc::new(users), ..ports(&store) }, Policy::default());
    let promote = UserUpdate { role: Some("admin".into()), ..UserUpdate::default() };

    let updated = service.users.update_user(&admin, id, &promote, &ctx()).await;

    assert_eq!(updated.unwrap().role, Role::Admin);
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_user_who_keeps_changing_is_reported_as_unexpected_after_a_few_tries() {
    let (_kit, admin) = with_admin().await;
    let store = Arc::new(InMemoryStore::new());
    let target = stored_user(Role::User);
    let id = target.id;
    let mut users = MockUserRepository::new();
    users.expect_get().returning(move |_| Ok(Some(target.clone())));
    users.expect_apply_change().returning(|_| Err(ChangeUserError::Stale));
    let service =
        UserManagement::new(Ports { users: Arc::new(users), ..ports(&store) }, Policy::default());
    let promote = UserUpdate { role: Some("admin".into()), ..UserUpdate::default() };

    let outcome = service.users.update_user(&admin, id, &promote, &ctx()).await;

    assert!(matches!(outcome, Err(UpdateUserError::Unexpected(_))));
}

#[tokio::test]
async fn a_session_store_failure_is_unexpected_not_unauthenticated() {
    let store = Arc::new(InMemoryStore::new());
    let mut sessions = MockSessionRepository::new();
    sessions.expect_find().returning(|_| Err(StoreError::msg("connection reset")));
    let service = UserManagement::new(
        Ports { sessions: Arc::new(sessions), ..ports(&store) },
        Policy::default(),
    );

    let outcome = service.sessions.authenticate(&PlainToken::presented("a-session")).await;

    assert!(
        matches!(outcome, Err(AuthenticateError::Unexpected(e)) if e.to_string() == "connection reset")
    );
}

#[tokio::test]
async fn an_unreadable_outbox_fails_the_round_and_sends_nothing() {
    let mut outbox = MockOutboxRepository::new();
    outbox.expect_claim_due().returning(|_, _, _| Err(StoreError::msg("outbox locked")));
    let transport = Arc::new(RecordingTransport::default());
    let delivery = OutboxDelivery::new(
        Arc::new(outbox),
        Arc::new(InMemoryStore::new()),
        transport.clone(),
        Arc::new(FakeClock::new()),
        DeliveryPolicy::default(),
    );

    let outcome = delivery.deliver_due().await;

    assert_eq!(outcome.unwrap_err().to_string(), "outbox locked");
    assert!(transport.sent().is_empty());
}
