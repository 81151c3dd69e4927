//! Failures forced through `mockall` mocks of single ports.

use std::sync::Arc;

use secureai_domain::StoreError;
use secureai_domain::audit::ports::MockAuditLog;
use secureai_domain::clock::MockClock;
use secureai_domain::service::{Policy, Ports, UserManagement};
use secureai_domain::sessions::errors::SignInError;
use secureai_domain::testing::{FakeClock, FakeHasher, InMemoryStore, SequentialTokens};
use secureai_domain::users::errors::InviteUserError;
use secureai_domain::users::ports::{InsertUserError, MockUserRepository};

use crate::kit::{ctx, invite, pw, with_admin};

fn ports(store: &Arc<InMemoryStore>) -> Ports {
    Ports {
        users: store.clone(),
        invitations: store.clone(),
        sessions: store.clone(),
        setup: store.clone(),
        audit: store.clone(),
        settings: store.clone(),
        clock: Arc::new(FakeClock::new()),
        tokens: Arc::new(SequentialTokens::default()),
        passwords: Arc::new(FakeHasher),
        passwords_store: store.clone(),
        throttle: store.clone(),
    }
}

#[tokio::test]
async fn a_store_failure_during_an_invitation_is_reported_as_unexpected_and_nothing_is_claimed() {
    let (_kit, admin) = with_admin().await;
    let store = Arc::new(InMemoryStore::new());
    let mut users = MockUserRepository::new();
    users
        .expect_insert_invited()
        .returning(|_| Err(InsertUserError::Unexpected(StoreError::msg("database down"))));
    let service =
        UserManagement::new(Ports { users: Arc::new(users), ..ports(&store) }, Policy::default());

    let outcome = service.invite_user(&admin, &invite("x@example.com", "user"), &ctx()).await;

    assert!(
        matches!(outcome, Err(InviteUserError::Unexpected(e)) if e.to_string() == "database down")
    );
    assert!(store.state().outbox.is_empty());
}

#[tokio::test]
async fn a_failing_audit_log_fails_the_sign_in_rather_than_losing_the_event() {
    let store = Arc::new(InMemoryStore::new());
    let mut audit = MockAuditLog::new();
    audit.expect_append().returning(|_| Err(StoreError::msg("audit table unavailable")));
    let service =
        UserManagement::new(Ports { audit: Arc::new(audit), ..ports(&store) }, Policy::default());

    let outcome = service.sign_in("nobody@example.com", &pw("whatever1"), &ctx()).await;

    assert!(matches!(outcome, Err(SignInError::Unexpected(_))));
}

#[tokio::test]
async fn time_comes_only_from_the_clock_port() {
    let store = Arc::new(InMemoryStore::new());
    let fixed = chrono::DateTime::<chrono::Utc>::from_timestamp(1_900_000_000, 0).unwrap();
    let mut clock = MockClock::new();
    clock.expect_now().return_const(fixed);
    let service =
        UserManagement::new(Ports { clock: Arc::new(clock), ..ports(&store) }, Policy::default());

    service.prepare_setup().await.unwrap().unwrap();

    let (_, expires_at) = store.state().setup_token.unwrap();
    assert_eq!(expires_at, fixed + Policy::default().setup_ttl);
}
