//! One test (at least) per numbered rule of the product specification,
//! against the in-memory adapters.

use chrono::Duration;
use secureai_domain::audit::models::AuditAction;
use secureai_domain::invitations::errors::AcceptInvitationError;
use secureai_domain::sessions::errors::{AuthenticateError, SignInError};
use secureai_domain::users::errors::{InviteUserError, UpdateUserError};
use secureai_domain::users::lifecycle::UserUpdate;
use secureai_domain::{Policy, Role, UserStatus};

use crate::kit::{active_user, ctx, invite, pw, sign_in, with_admin};

#[tokio::test]
async fn rule_1_every_user_has_exactly_one_role_from_the_invitation_on() {
    let (kit, admin) = with_admin().await;
    let bad = kit.service.invite_user(&admin, &invite("x@example.com", "user,admin"), &ctx()).await;
    assert!(matches!(bad, Err(InviteUserError::Invalid(f)) if f.field == "role"));
    let invited =
        kit.service.invite_user(&admin, &invite("x@example.com", "ADMIN"), &ctx()).await.unwrap();
    assert_eq!(invited.user.role, Role::Admin);
}

#[tokio::test]
async fn rule_2_emails_are_unique_case_insensitively_even_against_deactivated_users() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "Ada@Example.com", "user", "ada's password").await;
    let deactivate = UserUpdate { active: Some(false), ..UserUpdate::default() };
    kit.service.update_user(&admin, id, &deactivate, &ctx()).await.unwrap();
    let again = kit.service.invite_user(&admin, &invite("ada@EXAMPLE.com", "user"), &ctx()).await;
    assert!(matches!(again, Err(InviteUserError::EmailTaken)));
}

#[tokio::test]
async fn rule_3_the_last_active_admin_can_be_neither_demoted_nor_deactivated() {
    let (kit, admin) = with_admin().await;
    let own = admin.user().id;
    for update in [
        UserUpdate { role: Some("user".into()), ..UserUpdate::default() },
        UserUpdate { active: Some(false), ..UserUpdate::default() },
    ] {
        let refused = kit.service.update_user(&admin, own, &update, &ctx()).await;
        assert!(matches!(refused, Err(UpdateUserError::LastAdmin)));
    }
    assert!(kit.store.state().users[&own].is_active_admin());
}

#[tokio::test]
async fn rule_4_seats_are_held_by_invited_and_active_users_only() {
    let (kit, admin) = with_admin().await;
    kit.service.set_seat_limit(&admin, Some(2), &ctx()).await.unwrap();
    let second =
        kit.service.invite_user(&admin, &invite("b@example.com", "user"), &ctx()).await.unwrap();
    let third = kit.service.invite_user(&admin, &invite("c@example.com", "user"), &ctx()).await;
    assert!(matches!(third, Err(InviteUserError::SeatLimitReached { limit: 2 })));

    let deactivate = UserUpdate { active: Some(false), ..UserUpdate::default() };
    kit.service.update_user(&admin, second.user.id, &deactivate, &ctx()).await.unwrap();
    kit.service.invite_user(&admin, &invite("c@example.com", "user"), &ctx()).await.unwrap();
    let reactivate = UserUpdate { active: Some(true), ..UserUpdate::default() };
    let refused = kit.service.update_user(&admin, second.user.id, &reactivate, &ctx()).await;
    assert!(matches!(refused, Err(UpdateUserError::SeatLimitReached { limit: 2 })));
}

#[tokio::test]
async fn rule_5_an_invitation_expires_after_72_hours_and_a_resend_voids_the_old_link() {
    let (kit, admin) = with_admin().await;
    let first =
        kit.service.invite_user(&admin, &invite("late@example.com", "user"), &ctx()).await.unwrap();
    assert_eq!(kit.store.state().outbox.len(), 1);
    kit.clock.advance(Duration::hours(72));
    let expired = kit.service.accept_invitation(&first.token, pw("late password"), &ctx()).await;
    assert!(
        matches!(expired, Err(AcceptInvitationError::Expired { expired_at }) if expired_at == first.invitation.expires_at)
    );

    kit.service.resend_invitation(&admin, first.user.id, &ctx()).await.unwrap();
    let old = kit.service.accept_invitation(&first.token, pw("late password"), &ctx()).await;
    assert!(matches!(old, Err(AcceptInvitationError::Invalid)));
    assert_eq!(kit.store.state().outbox.len(), 2);
}

#[tokio::test]
async fn rule_7_a_role_change_applies_to_the_very_next_request() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "grace@example.com", "admin", "grace's password").await;
    let signed_in =
        kit.service.sign_in("grace@example.com", &pw("grace's password"), &ctx()).await.unwrap();
    assert!(kit.service.authenticate(&signed_in.token).await.unwrap().admin().is_ok());

    let demote = UserUpdate { role: Some("user".into()), ..UserUpdate::default() };
    kit.service.update_user(&admin, id, &demote, &ctx()).await.unwrap();

    assert!(kit.service.authenticate(&signed_in.token).await.unwrap().admin().is_err());
}

#[tokio::test]
async fn rule_8_deactivation_blocks_sign_in_ends_sessions_and_reactivation_restores_it() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "leaver@example.com", "user", "leaver's password").await;
    let session =
        kit.service.sign_in("leaver@example.com", &pw("leaver's password"), &ctx()).await.unwrap();

    let deactivate = UserUpdate { active: Some(false), ..UserUpdate::default() };
    kit.service.update_user(&admin, id, &deactivate, &ctx()).await.unwrap();

    assert!(matches!(
        kit.service.authenticate(&session.token).await,
        Err(AuthenticateError::Unauthenticated)
    ));
    let refused = kit.service.sign_in("leaver@example.com", &pw("leaver's password"), &ctx()).await;
    assert!(matches!(refused, Err(SignInError::AccountDeactivated)));
    let reactivate = UserUpdate { active: Some(true), ..UserUpdate::default() };
    let back = kit.service.update_user(&admin, id, &reactivate, &ctx()).await.unwrap();
    assert_eq!(back.status(), UserStatus::Active);
    sign_in(&kit, "leaver@example.com", "leaver's password").await;
}

#[tokio::test]
async fn rule_9_erasure_anonymises_and_is_audited_and_keeps_the_row() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "gone@example.com", "user", "gone's password").await;
    let erased = kit.service.erase_user_as_operator("gone@example.com", &ctx()).await.unwrap();
    assert_eq!(erased.id, id);
    let state = kit.store.state();
    assert!(state.users.contains_key(&id));
    assert!(!state.users[&id].email.as_str().contains("gone"));
    assert!(state.audit.iter().all(|e| e.target_email.as_deref() != Some("gone@example.com")));
    assert!(
        state.audit.iter().any(|e| e.action == AuditAction::UserErased && e.target_id == Some(id))
    );
}

#[tokio::test]
async fn rule_10_the_old_password_works_until_a_reset_is_completed() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "reset@example.com", "user", "old password!").await;
    let other =
        kit.service.sign_in("reset@example.com", &pw("old password!"), &ctx()).await.unwrap();
    kit.service.request_password_reset(&admin, id, &ctx()).await.unwrap();
    sign_in(&kit, "reset@example.com", "old password!").await;
    let token = {
        let state = kit.store.state();
        match &state.outbox.last().unwrap().mail.message {
            secureai_domain::mail::models::MailMessage::PasswordReset { token, .. } => {
                token.clone()
            }
            other => panic!("expected a reset mail, got {}", other.kind()),
        }
    };

    kit.service.complete_password_reset(&token, pw("new password!"), &ctx()).await.unwrap();

    assert!(kit.service.sign_in("reset@example.com", &pw("old password!"), &ctx()).await.is_err());
    assert!(kit.service.authenticate(&other.token).await.is_err());
    sign_in(&kit, "reset@example.com", "new password!").await;
}

#[tokio::test]
async fn rule_11_terminating_sessions_invalidates_every_one_at_once() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "many@example.com", "user", "many sessions").await;
    let a = kit.service.sign_in("many@example.com", &pw("many sessions"), &ctx()).await.unwrap();
    let b = kit.service.sign_in("many@example.com", &pw("many sessions"), &ctx()).await.unwrap();
    assert_eq!(kit.service.terminate_sessions(&admin, id, &ctx()).await.unwrap(), 2);
    assert!(kit.service.authenticate(&a.token).await.is_err());
    assert!(kit.service.authenticate(&b.token).await.is_err());
}

#[tokio::test]
async fn rule_13_every_admin_action_and_security_event_is_audited() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "audited@example.com", "user", "audited pw 1").await;
    let _ = kit.service.sign_in("audited@example.com", &pw("wrong"), &ctx()).await;
    let promote = UserUpdate { role: Some("admin".into()), ..UserUpdate::default() };
    kit.service.update_user(&admin, id, &promote, &ctx()).await.unwrap();
    let actions: Vec<AuditAction> = kit.store.state().audit.iter().map(|e| e.action).collect();
    for expected in [
        AuditAction::SetupCompleted,
        AuditAction::UserInvited,
        AuditAction::InvitationAccepted,
        AuditAction::SignInSucceeded,
        AuditAction::SignInFailed,
        AuditAction::RoleChanged,
    ] {
        assert!(actions.contains(&expected), "{expected:?} missing");
    }
}

#[tokio::test]
async fn rule_14_an_admin_may_demote_themself_only_while_another_active_admin_exists() {
    let (kit, admin) = with_admin().await;
    let own = admin.user().id;
    let demote = UserUpdate { role: Some("user".into()), ..UserUpdate::default() };
    let other = active_user(&kit, &admin, "heir@example.com", "admin", "the heir's pw").await;
    let deactivate = UserUpdate { active: Some(false), ..UserUpdate::default() };
    kit.service.update_user(&admin, other, &deactivate, &ctx()).await.unwrap();
    assert!(matches!(
        kit.service.update_user(&admin, own, &demote, &ctx()).await,
        Err(UpdateUserError::LastAdmin)
    ));

    let reactivate = UserUpdate { active: Some(true), ..UserUpdate::default() };
    kit.service.update_user(&admin, other, &reactivate, &ctx()).await.unwrap();
    kit.service.update_user(&admin, own, &demote, &ctx()).await.unwrap();
}

#[tokio::test]
async fn idle_and_absolute_session_timeouts_follow_the_policy() {
    let kit = secureai_domain::testing::TestKit::with_policy(Policy {
        session_idle_timeout: Duration::minutes(30),
        session_absolute_timeout: Duration::hours(2),
        ..Policy::default()
    });
    let token = kit.service.prepare_setup().await.unwrap().unwrap();
    kit.service
        .complete_setup(&token, "root@example.com", "Root", pw("a long admin passphrase"), &ctx())
        .await
        .unwrap();
    let session = kit
        .service
        .sign_in("root@example.com", &pw("a long admin passphrase"), &ctx())
        .await
        .unwrap();
    for _ in 0..4 {
        kit.clock.advance(Duration::minutes(25));
        kit.service.authenticate(&session.token).await.unwrap();
    }
    kit.clock.advance(Duration::minutes(25));
    assert!(kit.service.authenticate(&session.token).await.is_err(), "past the absolute timeout");
}
