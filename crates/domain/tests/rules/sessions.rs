//! Resolving a session on every request (rule 7), its timeouts, signing out
//! and ending sessions (rules 8, 11).

use chrono::Duration;
use secureai_domain::access::Forbidden;
use secureai_domain::secrets::PlainToken;
use secureai_domain::sessions::errors::AuthenticateError;
use secureai_domain::users::lifecycle::UserUpdate;
use secureai_domain::{Actor, AuditAction, Clock, Policy, Role};

use crate::kit::{
    ROOT_EMAIL, ROOT_PASSWORD, active_user, audit_of, ctx, deactivate_in_store, detail, pw,
    with_admin, with_admin_under,
};

fn unauthenticated<T>(outcome: Result<T, AuthenticateError>) -> bool {
    matches!(outcome, Err(AuthenticateError::Unauthenticated))
}

#[tokio::test]
async fn a_live_session_token_resolves_to_its_user_as_stored() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "ada@example.com", "user", "ada's own password").await;
    let signed_in = kit
        .service
        .sessions
        .sign_in("ada@example.com", &pw("ada's own password"), &ctx())
        .await
        .unwrap();

    let principal = kit.service.sessions.authenticate(&signed_in.token).await.unwrap();

    assert_eq!(*principal.user(), kit.store.state().users[&id]);
    assert_eq!(principal.session_id(), signed_in.session.id);
}

#[tokio::test]
async fn an_unknown_token_is_unauthenticated() {
    let (kit, _admin) = with_admin().await;

    let outcome = kit.service.sessions.authenticate(&PlainToken::presented("made-up-token")).await;

    assert!(unauthenticated(outcome));
}

#[tokio::test]
async fn a_role_changed_in_the_store_applies_to_the_very_next_request() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "grace@example.com", "admin", "grace's password").await;
    let signed_in = kit
        .service
        .sessions
        .sign_in("grace@example.com", &pw("grace's password"), &ctx())
        .await
        .unwrap();
    assert!(kit.service.sessions.authenticate(&signed_in.token).await.unwrap().admin().is_ok());
    kit.store.state().users.get_mut(&id).unwrap().role = Role::User;

    let principal = kit.service.sessions.authenticate(&signed_in.token).await.unwrap();

    assert_eq!(principal.user().role, Role::User);
    assert_eq!(principal.admin(), Err(Forbidden));
}

#[tokio::test]
async fn rule_7_a_demotion_by_another_admin_applies_to_the_very_next_request() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "grace@example.com", "admin", "grace's password").await;
    let signed_in = kit
        .service
        .sessions
        .sign_in("grace@example.com", &pw("grace's password"), &ctx())
        .await
        .unwrap();
    let demote = UserUpdate { role: Some("user".into()), ..UserUpdate::default() };
    kit.service.users.update_user(&admin, id, &demote, &ctx()).await.unwrap();

    let principal = kit.service.sessions.authenticate(&signed_in.token).await.unwrap();

    assert_eq!(principal.admin(), Err(Forbidden));
}

#[tokio::test]
async fn a_deactivated_users_session_no_longer_authenticates_and_is_ended() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "ada@example.com", "user", "ada's own password").await;
    let signed_in = kit
        .service
        .sessions
        .sign_in("ada@example.com", &pw("ada's own password"), &ctx())
        .await
        .unwrap();
    deactivate_in_store(&kit, id);

    let outcome = kit.service.sessions.authenticate(&signed_in.token).await;

    assert!(unauthenticated(outcome));
    assert!(kit.store.state().sessions.iter().all(|s| s.user_id != id));
}

#[tokio::test]
async fn a_session_unused_for_the_idle_timeout_ends() {
    let (kit, _admin) = with_admin().await;
    let signed_in =
        kit.service.sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    kit.clock.advance(Policy::default().session_idle_timeout);

    let outcome = kit.service.sessions.authenticate(&signed_in.token).await;

    assert!(unauthenticated(outcome));
    assert!(kit.store.state().sessions.iter().all(|s| s.id != signed_in.session.id));
}

#[tokio::test]
async fn a_session_used_just_within_the_idle_timeout_lives_on() {
    let (kit, _admin) = with_admin().await;
    let signed_in =
        kit.service.sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    kit.clock.advance(Policy::default().session_idle_timeout - Duration::seconds(1));

    let principal = kit.service.sessions.authenticate(&signed_in.token).await;

    assert!(principal.is_ok());
}

#[tokio::test]
async fn activity_keeps_a_session_alive_only_until_the_absolute_timeout() {
    let (kit, _admin) = with_admin_under(Policy {
        session_idle_timeout: Duration::minutes(30),
        session_absolute_timeout: Duration::hours(2),
        ..Policy::default()
    })
    .await;
    let signed_in =
        kit.service.sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    for _ in 0..4 {
        kit.clock.advance(Duration::minutes(25));
        kit.service.sessions.authenticate(&signed_in.token).await.unwrap();
    }
    kit.clock.advance(Duration::minutes(19));
    kit.service.sessions.authenticate(&signed_in.token).await.unwrap();
    kit.clock.advance(Duration::minutes(1));

    let outcome = kit.service.sessions.authenticate(&signed_in.token).await;

    assert!(unauthenticated(outcome), "two hours after sign-in, however active");
    assert!(kit.store.state().sessions.iter().all(|s| s.id != signed_in.session.id));
}

#[tokio::test]
async fn activity_is_recorded_at_most_once_per_touch_interval() {
    let (kit, _admin) = with_admin().await;
    let signed_in =
        kit.service.sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    let last_seen = |kit: &secureai_domain::testing::TestKit| {
        kit.store
            .state()
            .sessions
            .iter()
            .find(|s| s.id == signed_in.session.id)
            .unwrap()
            .last_seen_at
    };
    let start = kit.clock.now();

    kit.clock.advance(Duration::seconds(30));
    kit.service.sessions.authenticate(&signed_in.token).await.unwrap();
    let after_30_seconds = last_seen(&kit);
    kit.clock.advance(Duration::seconds(30));
    kit.service.sessions.authenticate(&signed_in.token).await.unwrap();
    let after_a_minute = last_seen(&kit);

    assert_eq!(after_30_seconds, start);
    assert_eq!(after_a_minute, start + Duration::minutes(1));
}

#[tokio::test]
async fn signing_out_ends_only_that_session_and_is_audited() {
    let (kit, _admin) = with_admin().await;
    let here = kit.service.sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    let elsewhere =
        kit.service.sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    let principal = kit.service.sessions.authenticate(&here.token).await.unwrap();

    kit.service.sessions.sign_out(&principal, &ctx()).await.unwrap();

    assert!(unauthenticated(kit.service.sessions.authenticate(&here.token).await));
    assert!(kit.service.sessions.authenticate(&elsewhere.token).await.is_ok());
    assert!(kit.store.state().sessions.iter().all(|s| s.id != here.session.id));
    let events = audit_of(&kit, AuditAction::SignedOut);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor, Actor::user(principal.user()));
    assert_eq!(events[0].target_id, Some(principal.user().id));
}

#[tokio::test]
async fn rule_11_terminating_sessions_invalidates_every_one_at_once() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "many@example.com", "user", "many sessions").await;
    let a = kit
        .service
        .sessions
        .sign_in("many@example.com", &pw("many sessions"), &ctx())
        .await
        .unwrap();
    let b = kit
        .service
        .sessions
        .sign_in("many@example.com", &pw("many sessions"), &ctx())
        .await
        .unwrap();

    let ended = kit.service.sessions.terminate_sessions(&admin, id, &ctx()).await.unwrap();

    assert_eq!(ended, 2);
    assert!(unauthenticated(kit.service.sessions.authenticate(&a.token).await));
    assert!(unauthenticated(kit.service.sessions.authenticate(&b.token).await));
    let event = audit_of(&kit, AuditAction::SessionsTerminated).pop().unwrap();
    assert_eq!((event.target_id, detail(&event, "by")), (Some(id), Some("admin")));
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session_of_the_caller_only() {
    let (kit, admin) = with_admin().await;
    active_user(&kit, &admin, "ada@example.com", "user", "ada's own password").await;
    let ada = kit
        .service
        .sessions
        .sign_in("ada@example.com", &pw("ada's own password"), &ctx())
        .await
        .unwrap();
    let here = kit.service.sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    let principal = kit.service.sessions.authenticate(&here.token).await.unwrap();

    let ended = kit.service.sessions.sign_out_everywhere(&principal, &ctx()).await.unwrap();

    assert_eq!(ended, 2, "this session and the one from setting up the kit");
    assert!(unauthenticated(kit.service.sessions.authenticate(&here.token).await));
    assert!(kit.service.sessions.authenticate(&ada.token).await.is_ok());
}
