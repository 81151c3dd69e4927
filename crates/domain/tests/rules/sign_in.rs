//! Signing in with a password. A stranger learns nothing: an unknown email, a
//! wrong password and a not yet activated account answer alike; admins see
//! the real reason in the audit log.

use chrono::Duration;
use secureai_domain::sessions::errors::SignInError;
use secureai_domain::testing::TestKit;
use secureai_domain::{Actor, AuditAction, AuditEvent, Clock, Policy, RequestContext};

use crate::kit::{
    ROOT_EMAIL, ROOT_PASSWORD, active_user, audit_of, ctx, deactivate_in_store, detail, invite,
    latest_mailed_token, pw, with_admin,
};

/// The newest failed sign-in in the audit log.
fn last_failure(kit: &TestKit) -> AuditEvent {
    audit_of(kit, AuditAction::SignInFailed).pop().expect("a failed sign-in was audited")
}

#[tokio::test]
async fn signing_in_returns_a_token_whose_hash_is_stored_as_a_session() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "ada@example.com", "user", "ada's own password").await;
    kit.clock.advance(Duration::hours(1));

    let signed_in = kit
        .service
        .sessions
        .sign_in("ada@example.com", &pw("ada's own password"), &ctx())
        .await
        .unwrap();

    let now = kit.clock.now();
    let state = kit.store.state();
    let stored: Vec<_> = state.sessions.iter().filter(|s| s.user_id == id).collect();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].token_hash, signed_in.token.hash());
    assert_eq!(stored[0].created_at, now);
    assert_eq!(stored[0].expires_at, now + Policy::default().session_absolute_timeout);
    assert_eq!(state.users[&id].last_login_at, Some(now));
    assert_eq!(signed_in.user.last_login_at, Some(now));
}

#[tokio::test]
async fn a_successful_sign_in_is_audited() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "ada@example.com", "user", "ada's own password").await;

    let signed_in = kit
        .service
        .sessions
        .sign_in("ada@example.com", &pw("ada's own password"), &ctx())
        .await
        .unwrap();

    let event = audit_of(&kit, AuditAction::SignInSucceeded).pop().unwrap();
    assert_eq!(event.actor, Actor::user(&signed_in.user));
    assert_eq!(event.target_id, Some(id));
    assert_eq!(detail(&event, "method"), Some("password"));
}

#[tokio::test]
async fn signing_in_ignores_the_letter_case_of_the_email() {
    let (kit, _admin) = with_admin().await;

    let signed_in =
        kit.service.sessions.sign_in(" ROOT@Example.COM ", &pw(ROOT_PASSWORD), &ctx()).await;

    assert_eq!(signed_in.unwrap().user.email.as_str(), ROOT_EMAIL);
}

#[tokio::test]
async fn an_unknown_email_is_refused_as_invalid_credentials_and_audited() {
    let (kit, _admin) = with_admin().await;
    let sessions = kit.store.state().sessions.len();

    let refused =
        kit.service.sessions.sign_in("ghost@example.com", &pw("any password"), &ctx()).await;

    assert!(matches!(refused, Err(SignInError::InvalidCredentials)));
    let event = last_failure(&kit);
    assert_eq!(detail(&event, "reason"), Some("unknown_email"));
    assert_eq!(event.actor, Actor::Anonymous);
    assert_eq!(event.target_id, None);
    assert_eq!(event.target_email.as_deref(), Some("ghost@example.com"));
    assert_eq!(kit.store.state().sessions.len(), sessions);
}

#[tokio::test]
async fn a_wrong_password_is_refused_as_invalid_credentials_and_audited() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "ada@example.com", "user", "ada's own password").await;

    let refused =
        kit.service.sessions.sign_in("ada@example.com", &pw("a wrong guess"), &ctx()).await;

    assert!(matches!(refused, Err(SignInError::InvalidCredentials)));
    let event = last_failure(&kit);
    assert_eq!(detail(&event, "reason"), Some("wrong_password"));
    assert_eq!(event.target_id, Some(id));
    assert!(kit.store.state().sessions.iter().all(|s| s.user_id != id));
    assert_eq!(kit.store.state().users[&id].last_login_at, None);
}

#[tokio::test]
async fn an_invited_user_cannot_sign_in_before_activating_and_the_audit_says_why() {
    let (kit, admin) = with_admin().await;
    let invited = kit
        .service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();

    let refused =
        kit.service.sessions.sign_in("ada@example.com", &pw("ada's own password"), &ctx()).await;

    assert!(matches!(refused, Err(SignInError::InvalidCredentials)));
    let event = last_failure(&kit);
    assert_eq!(detail(&event, "reason"), Some("not_activated"));
    assert_eq!(event.target_id, Some(invited.user.id));
    assert!(kit.store.state().sessions.iter().all(|s| s.user_id != invited.user.id));
}

#[tokio::test]
async fn a_deactivated_user_with_the_right_password_is_told_the_account_is_deactivated() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "ada@example.com", "user", "ada's own password").await;
    deactivate_in_store(&kit, id);

    let refused =
        kit.service.sessions.sign_in("ada@example.com", &pw("ada's own password"), &ctx()).await;

    assert!(matches!(refused, Err(SignInError::AccountDeactivated)));
    let event = last_failure(&kit);
    assert_eq!(detail(&event, "reason"), Some("account_deactivated"));
    assert_eq!(event.target_id, Some(id));
    assert!(kit.store.state().sessions.iter().all(|s| s.user_id != id));
}

#[tokio::test]
async fn a_deactivated_user_with_a_wrong_password_learns_nothing_about_the_account() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "ada@example.com", "user", "ada's own password").await;
    deactivate_in_store(&kit, id);

    let refused =
        kit.service.sessions.sign_in("ada@example.com", &pw("a wrong guess"), &ctx()).await;

    assert!(matches!(refused, Err(SignInError::InvalidCredentials)));
    assert_eq!(detail(&last_failure(&kit), "reason"), Some("wrong_password"));
}

#[tokio::test]
async fn repeated_failures_throttle_the_account_even_for_the_right_password() {
    let (kit, _admin) = with_admin().await;
    for _ in 0..5 {
        let _ = kit.service.sessions.sign_in(ROOT_EMAIL, &pw("a wrong guess"), &ctx()).await;
    }

    let blocked = kit.service.sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await;

    assert!(matches!(blocked, Err(SignInError::Throttled { retry_after_secs: 2 })));
    assert_eq!(audit_of(&kit, AuditAction::SignInThrottled).len(), 1);
}

#[tokio::test]
async fn no_audit_event_ever_contains_a_password() {
    let kit = TestKit::new();
    let setup = kit.service.setup.prepare_setup().await.unwrap().unwrap();
    let admin_password = "first-admin-secret-PW";
    kit.service
        .setup
        .complete_setup(&setup, ROOT_EMAIL, "Root", pw(admin_password), &ctx())
        .await
        .unwrap();
    kit.store.state().security_policy.admin_mfa = secureai_domain::mfa::policy::AdminMfa::Optional;
    let admin =
        kit.service.sessions.sign_in(ROOT_EMAIL, &pw(admin_password), &ctx()).await.unwrap();
    let admin = kit.service.sessions.authenticate(&admin.token).await.unwrap().admin().unwrap();
    let user_password = "invited-user-secret-PW";
    active_user(&kit, &admin, "ada@example.com", "user", user_password).await;
    let web = RequestContext {
        ip: Some("203.0.113.7".into()),
        user_agent: Some("test".into()),
        ..RequestContext::default()
    };
    let guesses = ["wrong-guess-secret-PW", "ghost-secret-PW"];
    let _ = kit.service.sessions.sign_in("ada@example.com", &pw(guesses[0]), &web).await;
    let _ = kit.service.sessions.sign_in("ghost@example.com", &pw(guesses[1]), &web).await;
    kit.service.sessions.sign_in("ada@example.com", &pw(user_password), &web).await.unwrap();

    let audit = kit.store.state().audit.clone();

    assert!(audit.len() >= 6);
    for event in &audit {
        let text = format!("{event:?}");
        for secret in [admin_password, user_password, guesses[0], guesses[1]] {
            assert!(!text.contains(secret), "{:?} holds a password", event.action);
        }
    }
}

/// The guide's "cannot log in": an admin sees that a user's sign-in is
/// paused after failed attempts, and until when, and lets them in again
/// (audited); a completed password reset lifts the pause too.
#[tokio::test]
async fn a_paused_sign_in_is_shown_to_admins_and_lifted_by_them_or_by_a_reset() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "ada@example.com", "user", "ada's own password").await;
    let free = Policy::default().throttle.free_account_failures;
    let fail_enough = || async {
        for _ in 0..=free {
            let wrong = kit.service.sessions.sign_in("Ada@Example.com", &pw("guess"), &ctx()).await;
            assert!(wrong.is_err());
        }
    };
    assert_eq!(kit.service.user_profile(&admin, id).await.unwrap().sign_in_paused_until, None);
    fail_enough().await;
    let until = kit.service.user_profile(&admin, id).await.unwrap().sign_in_paused_until;
    let until = until.expect("the profile says sign-in is paused");
    assert!(until > kit.clock.now());
    let (own, here) = (pw("ada's own password"), ctx());
    let right = kit.service.sessions.sign_in("ada@example.com", &own, &here).await;
    assert!(matches!(right, Err(SignInError::Throttled { .. })));

    kit.service.sessions.allow_sign_in(&admin, id, &ctx()).await.unwrap();
    assert_eq!(kit.service.user_profile(&admin, id).await.unwrap().sign_in_paused_until, None);
    let allowed = audit_of(&kit, AuditAction::SignInAllowed);
    assert_eq!(allowed.len(), 1);
    assert_eq!((allowed[0].target_id, &allowed[0].actor), (Some(id), &admin.actor()));
    assert!(kit.service.sessions.sign_in("ada@example.com", &own, &here).await.is_ok());

    // Paused again; the admin sends a reset and Ada completes it.
    fail_enough().await;
    assert!(kit.service.user_profile(&admin, id).await.unwrap().sign_in_paused_until.is_some());
    kit.service.passwords.request_password_reset(&admin, id, &ctx()).await.unwrap();
    let token = latest_mailed_token(&kit);
    let new = pw("a brand new password");
    kit.service.passwords.complete_password_reset(&token, new, &ctx()).await.unwrap();
    assert_eq!(kit.service.user_profile(&admin, id).await.unwrap().sign_in_paused_until, None);
    let new = pw("a brand new password");
    assert!(kit.service.sessions.sign_in("ada@example.com", &new, &here).await.is_ok());
}
