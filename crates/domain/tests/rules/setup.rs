//! First-admin setup through a one-time link.

use chrono::Duration;
use secureai_domain::secrets::PasswordPolicyError;
use secureai_domain::sessions::errors::AuthenticateError;
use secureai_domain::setup::errors::SetupError;
use secureai_domain::testing::TestKit;
use secureai_domain::{
    Actor, AuditAction, Clock, Policy, RequestContext, Role, UserState, UserStatus,
};

use crate::kit::{
    ROOT_EMAIL, ROOT_PASSWORD, audit_of, counts, ctx, deactivate_in_store, pw, with_admin,
};

#[tokio::test]
async fn a_fresh_instance_offers_a_setup_link_stored_only_as_a_hash() {
    let kit = TestKit::new();

    let token =
        kit.service.setup.prepare_setup().await.unwrap().expect("a fresh instance has no admin");

    let (hash, expires_at) = kit.store.state().setup_token.unwrap();
    assert_eq!(hash, token.hash());
    assert_eq!(expires_at, kit.clock.now() + Policy::default().setup_ttl);
    assert!(kit.service.setup.setup_link_valid(&token).await.unwrap());
}

#[tokio::test]
async fn no_setup_link_is_offered_once_an_active_admin_exists() {
    let (kit, _admin) = with_admin().await;

    let offered = kit.service.setup.prepare_setup().await.unwrap();

    assert!(offered.is_none());
    assert!(kit.store.state().setup_token.is_none());
}

#[tokio::test]
async fn a_setup_link_is_offered_again_when_no_admin_is_active_any_more() {
    let (kit, admin) = with_admin().await;
    deactivate_in_store(&kit, admin.user().id);

    let offered = kit.service.setup.prepare_setup().await.unwrap();

    assert!(offered.is_some());
}

#[tokio::test]
async fn completing_setup_creates_an_active_admin_and_audits_it() {
    let kit = TestKit::new();
    let token = kit.service.setup.prepare_setup().await.unwrap().unwrap();

    let admin = kit
        .service
        .setup
        .complete_setup(&token, " Root@Example.com ", "Root", pw(ROOT_PASSWORD), &ctx())
        .await
        .unwrap();

    let now = kit.clock.now();
    assert_eq!(admin.role, Role::Admin);
    assert_eq!(admin.state, UserState::Active { activated_at: now });
    assert_eq!(admin.email.as_str(), "Root@Example.com");
    {
        let state = kit.store.state();
        assert_eq!(state.users.get(&admin.id), Some(&admin));
        assert!(state.passwords.contains_key(&admin.id));
        assert!(state.setup_token.is_none(), "the link is consumed");
    }
    let events = audit_of(&kit, AuditAction::SetupCompleted);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor, Actor::Operator);
    assert_eq!(events[0].target_id, Some(admin.id));
    // The first admin signs in to a session that can only set up their
    // second factor (admins need one by default).
    let signed_in =
        kit.service.sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap();
    assert!(signed_in.session.enrolment_only);
    let refused = kit.service.sessions.authenticate(&signed_in.token).await;
    assert!(matches!(refused, Err(AuthenticateError::EnrolmentRequired)), "{refused:?}");
    let enrolling =
        kit.service.sessions.authenticate_for_enrolment(&signed_in.token).await.unwrap();
    assert_eq!(enrolling.user().id, admin.id);
    assert!(enrolling.admin().is_err(), "no admin capability before the second factor");
}

#[tokio::test]
async fn a_setup_link_works_only_once() {
    let kit = TestKit::new();
    let token = kit.service.setup.prepare_setup().await.unwrap().unwrap();
    kit.service
        .setup
        .complete_setup(&token, ROOT_EMAIL, "Root", pw(ROOT_PASSWORD), &ctx())
        .await
        .unwrap();
    let before = counts(&kit);

    let again = kit
        .service
        .setup
        .complete_setup(
            &token,
            "second@example.com",
            "Second",
            pw("another long passphrase"),
            &ctx(),
        )
        .await;

    assert!(matches!(again, Err(SetupError::InvalidLink)));
    assert_eq!(counts(&kit), before);
}

#[tokio::test]
async fn restarting_replaces_the_setup_link_and_voids_the_old_one() {
    let kit = TestKit::new();
    let old = kit.service.setup.prepare_setup().await.unwrap().unwrap();
    let new = kit.service.setup.prepare_setup().await.unwrap().unwrap();

    let with_old =
        kit.service.setup.complete_setup(&old, ROOT_EMAIL, "Root", pw(ROOT_PASSWORD), &ctx()).await;

    assert!(matches!(with_old, Err(SetupError::InvalidLink)));
    assert!(kit.store.state().users.is_empty());
    assert!(!kit.service.setup.setup_link_valid(&old).await.unwrap());
    assert!(kit.service.setup.setup_link_valid(&new).await.unwrap());
    kit.service
        .setup
        .complete_setup(&new, ROOT_EMAIL, "Root", pw(ROOT_PASSWORD), &ctx())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_expired_setup_link_is_refused() {
    let kit = TestKit::new();
    let token = kit.service.setup.prepare_setup().await.unwrap().unwrap();
    kit.clock.advance(Policy::default().setup_ttl);

    let late = kit
        .service
        .setup
        .complete_setup(&token, ROOT_EMAIL, "Root", pw(ROOT_PASSWORD), &ctx())
        .await;

    assert!(matches!(late, Err(SetupError::InvalidLink)));
    assert!(kit.store.state().users.is_empty());
    assert!(!kit.service.setup.setup_link_valid(&token).await.unwrap());
}

#[tokio::test]
async fn a_setup_link_still_works_a_second_before_it_expires() {
    let kit = TestKit::new();
    let token = kit.service.setup.prepare_setup().await.unwrap().unwrap();
    kit.clock.advance(Policy::default().setup_ttl - Duration::seconds(1));

    let admin = kit
        .service
        .setup
        .complete_setup(&token, ROOT_EMAIL, "Root", pw(ROOT_PASSWORD), &ctx())
        .await;

    assert_eq!(admin.unwrap().status(), UserStatus::Active);
}

#[tokio::test]
async fn setup_with_an_invalid_email_is_refused_naming_the_field() {
    let kit = TestKit::new();
    let token = kit.service.setup.prepare_setup().await.unwrap().unwrap();

    let refused = kit
        .service
        .setup
        .complete_setup(&token, "root@localhost", "Root", pw(ROOT_PASSWORD), &ctx())
        .await;

    assert!(matches!(refused, Err(SetupError::Invalid(f)) if f.field == "email"));
    assert!(kit.store.state().users.is_empty());
    assert!(kit.service.setup.setup_link_valid(&token).await.unwrap(), "the link is not consumed");
}

#[tokio::test]
async fn setup_with_a_blank_name_is_refused_naming_the_field() {
    let kit = TestKit::new();
    let token = kit.service.setup.prepare_setup().await.unwrap().unwrap();

    let refused = kit
        .service
        .setup
        .complete_setup(&token, ROOT_EMAIL, "   ", pw(ROOT_PASSWORD), &ctx())
        .await;

    assert!(matches!(refused, Err(SetupError::Invalid(f)) if f.field == "name"));
    assert!(kit.store.state().users.is_empty());
}

#[tokio::test]
async fn setup_with_a_weak_password_is_refused_and_the_link_stays_usable() {
    let kit = TestKit::new();
    let token = kit.service.setup.prepare_setup().await.unwrap().unwrap();

    let short =
        kit.service.setup.complete_setup(&token, ROOT_EMAIL, "Root", pw("short"), &ctx()).await;
    let common = kit
        .service
        .setup
        .complete_setup(&token, ROOT_EMAIL, "Root", pw("Password123"), &ctx())
        .await;

    assert!(matches!(
        short,
        Err(SetupError::WeakPassword(PasswordPolicyError::TooShort { min: 8 }))
    ));
    assert!(matches!(common, Err(SetupError::WeakPassword(PasswordPolicyError::TooCommon))));
    assert!(kit.store.state().users.is_empty());
    assert!(kit.service.setup.setup_link_valid(&token).await.unwrap());
}

#[tokio::test]
async fn setup_is_refused_as_complete_when_an_admin_became_active_meanwhile() {
    let kit = TestKit::new();
    let token = kit.service.setup.prepare_setup().await.unwrap().unwrap();
    let invited = kit
        .service
        .invitations
        .invite_admin_as_operator("ops@example.com", "Ops", &RequestContext::command_line())
        .await
        .unwrap();
    kit.service
        .invitations
        .accept_invitation(&invited.token, pw("the ops passphrase"), &ctx())
        .await
        .unwrap();

    let refused = kit
        .service
        .setup
        .complete_setup(&token, ROOT_EMAIL, "Root", pw(ROOT_PASSWORD), &ctx())
        .await;

    assert!(matches!(refused, Err(SetupError::AlreadyComplete)));
    assert_eq!(kit.store.state().users.len(), 1);
    assert!(!kit.service.setup.setup_link_valid(&token).await.unwrap());
}

#[tokio::test]
async fn setup_with_the_email_of_an_invited_user_is_refused() {
    let kit = TestKit::new();
    let token = kit.service.setup.prepare_setup().await.unwrap().unwrap();
    kit.service
        .invitations
        .invite_admin_as_operator("Root@Example.com", "Root", &ctx())
        .await
        .unwrap();

    let refused = kit
        .service
        .setup
        .complete_setup(&token, ROOT_EMAIL, "Root", pw(ROOT_PASSWORD), &ctx())
        .await;

    assert!(matches!(refused, Err(SetupError::EmailTaken)));
    assert_eq!(kit.store.state().users.len(), 1);
    assert!(audit_of(&kit, AuditAction::SetupCompleted).is_empty());
}
