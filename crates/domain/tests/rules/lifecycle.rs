//! Changing users after they exist: at least one active admin always (rules 3,
//! 14), deactivation and reactivation (rules 4, 8), erasure (rule 9),
//! password resets (rule 10) and the audit trail of it all (rule 13).

use secureai_domain::sessions::errors::{AuthenticateError, SignInError};
use secureai_domain::users::errors::{
    InviteUserError, SettingsError, UpdateUserError, WithdrawInvitationError,
};
use secureai_domain::users::lifecycle::UserUpdate;
use secureai_domain::{AuditAction, Clock, UserId, UserState, UserStatus};

use crate::kit::{
    active_user, audit_of, ctx, invite, latest_mailed_token, pw, sign_in, with_admin,
};

fn deactivate() -> UserUpdate {
    UserUpdate { active: Some(false), ..UserUpdate::default() }
}

fn reactivate() -> UserUpdate {
    UserUpdate { active: Some(true), ..UserUpdate::default() }
}

fn role(name: &str) -> UserUpdate {
    UserUpdate { role: Some(name.into()), ..UserUpdate::default() }
}

#[tokio::test]
async fn rule_3_the_last_active_admin_can_be_neither_demoted_nor_deactivated() {
    let (kit, admin) = with_admin().await;
    let own = admin.user().id;

    let demoted = kit.service.users.update_user(&admin, own, &role("user"), &ctx()).await;
    let deactivated = kit.service.users.update_user(&admin, own, &deactivate(), &ctx()).await;

    assert!(matches!(demoted, Err(UpdateUserError::LastAdmin)));
    assert!(matches!(deactivated, Err(UpdateUserError::LastAdmin)));
    assert!(kit.store.state().users[&own].is_active_admin());
    assert!(kit.store.state().audit.iter().all(|e| e.action != AuditAction::RoleChanged));
}

#[tokio::test]
async fn rule_14_an_admin_may_demote_themself_only_while_another_active_admin_exists() {
    let (kit, admin) = with_admin().await;
    let own = admin.user().id;
    let heir = active_user(&kit, &admin, "heir@example.com", "admin", "the heir's pw").await;
    kit.service.users.update_user(&admin, heir, &deactivate(), &ctx()).await.unwrap();
    let alone = kit.service.users.update_user(&admin, own, &role("user"), &ctx()).await;
    kit.service.users.update_user(&admin, heir, &reactivate(), &ctx()).await.unwrap();

    let with_heir = kit.service.users.update_user(&admin, own, &role("user"), &ctx()).await;

    assert!(matches!(alone, Err(UpdateUserError::LastAdmin)));
    assert_eq!(with_heir.unwrap().role, secureai_domain::Role::User);
}

#[tokio::test]
async fn rule_4_reactivation_needs_a_free_seat() {
    let (kit, admin) = with_admin().await;
    kit.service.users.set_seat_limit(&admin, Some(2), &ctx()).await.unwrap();
    let second = kit
        .service
        .invitations
        .invite_user(&admin, &invite("b@example.com", "user"), &ctx())
        .await
        .unwrap();
    kit.service.users.update_user(&admin, second.user.id, &deactivate(), &ctx()).await.unwrap();
    kit.service
        .invitations
        .invite_user(&admin, &invite("c@example.com", "user"), &ctx())
        .await
        .unwrap();

    let refused =
        kit.service.users.update_user(&admin, second.user.id, &reactivate(), &ctx()).await;

    assert!(matches!(refused, Err(UpdateUserError::SeatLimitReached { limit: 2 })));
    assert_eq!(kit.store.state().users[&second.user.id].status(), UserStatus::Deactivated);
}

#[tokio::test]
async fn a_seat_limit_of_zero_is_refused_naming_the_field() {
    let (kit, admin) = with_admin().await;

    let refused = kit.service.users.set_seat_limit(&admin, Some(0), &ctx()).await;

    assert!(matches!(refused, Err(SettingsError::Invalid(f)) if f.field == "limit"));
    assert_eq!(kit.store.state().seat_limit, None);
}

#[tokio::test]
async fn rule_8_deactivation_blocks_sign_in_ends_sessions_and_keeps_the_data() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "leaver@example.com", "user", "leaver's password").await;
    let session = kit
        .service
        .sessions
        .sign_in("leaver@example.com", &pw("leaver's password"), &ctx())
        .await
        .unwrap();

    kit.service.users.update_user(&admin, id, &deactivate(), &ctx()).await.unwrap();

    {
        let state = kit.store.state();
        let user = &state.users[&id];
        assert_eq!(user.state.deactivated_at(), Some(kit.clock.now()));
        assert!(user.state.activated_at().is_some(), "history is kept");
        assert!(state.passwords.contains_key(&id));
        assert!(state.sessions.iter().all(|s| s.user_id != id));
    }
    assert!(matches!(
        kit.service.sessions.authenticate(&session.token).await,
        Err(AuthenticateError::Unauthenticated)
    ));
    let refused =
        kit.service.sessions.sign_in("leaver@example.com", &pw("leaver's password"), &ctx()).await;
    assert!(matches!(refused, Err(SignInError::AccountDeactivated)));
}

#[tokio::test]
async fn rule_8_reactivation_restores_sign_in_with_history_intact() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "leaver@example.com", "user", "leaver's password").await;
    let activated_at = kit.store.state().users[&id].state.activated_at().unwrap();
    kit.service.users.update_user(&admin, id, &deactivate(), &ctx()).await.unwrap();

    let back = kit.service.users.update_user(&admin, id, &reactivate(), &ctx()).await.unwrap();

    assert_eq!(back.state, UserState::Active { activated_at });
    assert_eq!(sign_in(&kit, "leaver@example.com", "leaver's password").await.user().id, id);
}

#[tokio::test]
async fn reactivating_someone_who_never_activated_makes_them_invited_again() {
    let (kit, admin) = with_admin().await;
    let invited = kit
        .service
        .invitations
        .invite_user(&admin, &invite("b@example.com", "user"), &ctx())
        .await
        .unwrap();
    kit.service.users.update_user(&admin, invited.user.id, &deactivate(), &ctx()).await.unwrap();

    let back = kit.service.users.update_user(&admin, invited.user.id, &reactivate(), &ctx()).await;

    assert_eq!(back.unwrap().state, UserState::Invited);
}

#[tokio::test]
async fn changing_an_unknown_user_is_refused_as_not_found() {
    let (kit, admin) = with_admin().await;

    let refused =
        kit.service.users.update_user(&admin, UserId::generate(), &role("admin"), &ctx()).await;

    assert!(matches!(refused, Err(UpdateUserError::NotFound)));
}

#[tokio::test]
async fn rule_9_erasure_anonymises_keeps_the_row_and_is_audited() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "gone@example.com", "user", "gone's password").await;

    let erased =
        kit.service.users.erase_user_as_operator("gone@example.com", &ctx()).await.unwrap();

    assert_eq!(erased.id, id);
    let state = kit.store.state();
    assert_eq!(state.users[&id].status(), UserStatus::Deactivated);
    assert!(!state.users[&id].email.as_str().contains("gone"));
    assert!(!state.passwords.contains_key(&id));
    assert!(state.audit.iter().all(|e| e.target_email.as_deref() != Some("gone@example.com")));
    assert!(
        state.audit.iter().any(|e| e.action == AuditAction::UserErased && e.target_id == Some(id))
    );
}

#[tokio::test]
async fn rule_10_the_old_password_works_until_a_reset_is_completed() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "reset@example.com", "user", "old password!").await;
    let other = kit
        .service
        .sessions
        .sign_in("reset@example.com", &pw("old password!"), &ctx())
        .await
        .unwrap();
    kit.service.passwords.request_password_reset(&admin, id, &ctx()).await.unwrap();
    sign_in(&kit, "reset@example.com", "old password!").await;
    let token = latest_mailed_token(&kit);

    kit.service
        .passwords
        .complete_password_reset(&token, pw("new password!"), &ctx())
        .await
        .unwrap();

    let old = kit.service.sessions.sign_in("reset@example.com", &pw("old password!"), &ctx()).await;
    assert!(matches!(old, Err(SignInError::InvalidCredentials)));
    assert!(matches!(
        kit.service.sessions.authenticate(&other.token).await,
        Err(AuthenticateError::Unauthenticated)
    ));
    sign_in(&kit, "reset@example.com", "new password!").await;
}

#[tokio::test]
async fn rule_13_every_admin_action_and_security_event_is_audited() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "audited@example.com", "user", "audited pw 1").await;
    let _ = kit.service.sessions.sign_in("audited@example.com", &pw("wrong"), &ctx()).await;

    kit.service.users.update_user(&admin, id, &role("admin"), &ctx()).await.unwrap();

    let actions: Vec<AuditAction> = kit.store.state().audit.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::SetupCompleted,
            AuditAction::SignInSucceeded,
            AuditAction::UserInvited,
            AuditAction::InvitationAccepted,
            AuditAction::SignInFailed,
            AuditAction::RoleChanged,
        ]
    );
}

#[tokio::test]
async fn a_withdrawn_invitation_frees_the_seat_and_voids_the_link() {
    let (kit, admin) = with_admin().await;
    kit.service.users.set_seat_limit(&admin, Some(2), &ctx()).await.unwrap();
    let stale = kit
        .service
        .invitations
        .invite_user(&admin, &invite("stale@example.com", "user"), &ctx())
        .await
        .unwrap();
    let full = kit
        .service
        .invitations
        .invite_user(&admin, &invite("new@example.com", "user"), &ctx())
        .await;
    assert!(matches!(full, Err(InviteUserError::SeatLimitReached { limit: 2 })), "{full:?}");

    let withdrawn =
        kit.service.users.withdraw_invitation(&admin, stale.user.id, &ctx()).await.unwrap();

    assert_eq!(withdrawn.status(), UserStatus::Deactivated);
    let link = kit
        .service
        .invitations
        .accept_invitation(&stale.token, pw("a long password!"), &ctx())
        .await;
    assert!(link.is_err(), "the withdrawn link still worked: {link:?}");
    kit.service
        .invitations
        .invite_user(&admin, &invite("new@example.com", "user"), &ctx())
        .await
        .unwrap();
    let events = audit_of(&kit, AuditAction::InvitationWithdrawn);
    assert_eq!((events.len(), events[0].target_id), (1, Some(stale.user.id)));
    // Only an invitation can be withdrawn: once deactivated, or once joined, no.
    let again = kit.service.users.withdraw_invitation(&admin, stale.user.id, &ctx()).await;
    assert!(matches!(again, Err(WithdrawInvitationError::NotInvited)), "{again:?}");
    let root = admin.user().id;
    let joined = kit.service.users.withdraw_invitation(&admin, root, &ctx()).await;
    assert!(matches!(joined, Err(WithdrawInvitationError::NotInvited)), "{joined:?}");
}
