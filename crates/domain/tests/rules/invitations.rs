//! Inviting users (rules 1, 2, 4, 5): the invited user, their invitation, the
//! queued email and the audit record are written together or not at all.

use chrono::Duration;
use secureai_domain::access::Forbidden;
use secureai_domain::invitations::models::InvitationState;
use secureai_domain::mail::models::MailMessage;
use secureai_domain::users::errors::InviteUserError;
use secureai_domain::users::lifecycle::UserUpdate;
use secureai_domain::{Actor, AuditAction, Clock, Permission, Policy, Role, UserStatus};

use crate::kit::{
    active_user, audit_of, counts, ctx, deactivate_in_store, invite, sign_in, with_admin,
    with_admin_under,
};

#[tokio::test]
async fn inviting_creates_an_invited_user_with_one_pending_invitation_expiring_72_hours_later() {
    let (kit, admin) = with_admin().await;

    let invited = kit
        .service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();

    let now = kit.clock.now();
    let state = kit.store.state();
    let user = &state.users[&invited.user.id];
    assert_eq!(user.status(), UserStatus::Invited);
    assert_eq!(user.role, Role::User);
    assert_eq!(user.email.as_str(), "ada@example.com");
    assert_eq!(user.created_at, now);
    let invitations: Vec<_> =
        state.invitations.iter().filter(|i| i.user_id == invited.user.id).collect();
    assert_eq!(invitations.len(), 1);
    assert_eq!(invitations[0].state, InvitationState::Pending);
    assert_eq!(invitations[0].expires_at, now + Duration::hours(72));
    assert_eq!(invitations[0].token_hash, invited.token.hash());
}

#[tokio::test]
async fn inviting_queues_one_invitation_mail_to_the_invited_address() {
    let (kit, admin) = with_admin().await;

    let invited = kit
        .service
        .invitations
        .invite_user(&admin, &invite("Ada@Example.com", "user"), &ctx())
        .await
        .unwrap();

    let state = kit.store.state();
    assert_eq!(state.outbox.len(), 1);
    let queued = &state.outbox[0];
    assert_eq!(queued.mail.to.as_str(), "Ada@Example.com");
    assert_eq!(queued.mail.message.kind(), "invitation");
    assert_eq!(queued.attempts, 0);
    assert_eq!(queued.sent_at, None);
    assert_eq!(queued.next_attempt_at, kit.clock.now());
    match &queued.mail.message {
        MailMessage::Invitation { token, expires_at, invited_by } => {
            assert_eq!(token.hash(), invited.token.hash());
            assert_eq!(*expires_at, invited.invitation.expires_at);
            assert_eq!(invited_by.as_deref(), Some("Root"));
        }
        other => panic!("expected an invitation, got {}", other.kind()),
    }
}

#[tokio::test]
async fn inviting_is_audited_with_the_admin_as_actor() {
    let (kit, admin) = with_admin().await;

    let invited = kit
        .service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "admin"), &ctx())
        .await
        .unwrap();

    let events = audit_of(&kit, AuditAction::UserInvited);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor, Actor::user(admin.user()));
    assert_eq!(events[0].target_id, Some(invited.user.id));
    assert_eq!(events[0].target_email.as_deref(), Some("ada@example.com"));
    assert_eq!(crate::kit::detail(&events[0], "role"), Some("admin"));
    assert_eq!(crate::kit::detail(&events[0], "status"), Some("invited"));
}

#[tokio::test]
async fn rule_1_a_user_is_invited_with_exactly_one_role() {
    let (kit, admin) = with_admin().await;

    let two_roles = kit
        .service
        .invitations
        .invite_user(&admin, &invite("x@example.com", "user,admin"), &ctx())
        .await;
    let one_role = kit
        .service
        .invitations
        .invite_user(&admin, &invite("x@example.com", " ADMIN "), &ctx())
        .await;

    assert!(matches!(two_roles, Err(InviteUserError::Invalid(f)) if f.field == "role"));
    assert_eq!(one_role.unwrap().user.role, Role::Admin);
}

#[tokio::test]
async fn an_invitation_with_an_invalid_field_is_refused_naming_it_and_nothing_is_written() {
    let (kit, admin) = with_admin().await;
    let before = counts(&kit);
    let mut no_name = invite("ada@example.com", "user");
    no_name.name = "  ".into();

    let bad_email =
        kit.service.invitations.invite_user(&admin, &invite("ada@", "user"), &ctx()).await;
    let bad_name = kit.service.invitations.invite_user(&admin, &no_name, &ctx()).await;

    assert!(matches!(bad_email, Err(InviteUserError::Invalid(f)) if f.field == "email"));
    assert!(matches!(bad_name, Err(InviteUserError::Invalid(f)) if f.field == "name"));
    assert_eq!(counts(&kit), before);
}

#[tokio::test]
async fn an_email_already_in_use_in_another_letter_case_is_refused_and_nothing_is_written() {
    let (kit, admin) = with_admin().await;
    kit.service
        .invitations
        .invite_user(&admin, &invite("Ada@Example.com", "user"), &ctx())
        .await
        .unwrap();
    let before = counts(&kit);

    let again = kit
        .service
        .invitations
        .invite_user(&admin, &invite("ada@EXAMPLE.COM", "admin"), &ctx())
        .await;

    assert!(matches!(again, Err(InviteUserError::EmailTaken)));
    assert_eq!(counts(&kit), before);
}

#[tokio::test]
async fn rule_2_an_email_stays_taken_by_a_deactivated_user() {
    let (kit, admin) = with_admin().await;
    let id = active_user(&kit, &admin, "Ada@Example.com", "user", "ada's password").await;
    let deactivate = UserUpdate { active: Some(false), ..UserUpdate::default() };
    kit.service.users.update_user(&admin, id, &deactivate, &ctx()).await.unwrap();

    let again = kit
        .service
        .invitations
        .invite_user(&admin, &invite("ada@EXAMPLE.com", "user"), &ctx())
        .await;

    assert!(matches!(again, Err(InviteUserError::EmailTaken)));
}

#[tokio::test]
async fn the_invitation_past_the_seat_limit_is_refused_and_nothing_is_written() {
    let (kit, admin) = with_admin_under(Policy { seat_limit: Some(3), ..Policy::default() }).await;
    for email in ["b@example.com", "c@example.com"] {
        kit.service.invitations.invite_user(&admin, &invite(email, "user"), &ctx()).await.unwrap();
    }
    let before = counts(&kit);

    let fourth =
        kit.service.invitations.invite_user(&admin, &invite("d@example.com", "user"), &ctx()).await;

    assert!(matches!(fourth, Err(InviteUserError::SeatLimitReached { limit: 3 })));
    assert_eq!(counts(&kit), before);
}

#[tokio::test]
async fn deactivated_users_do_not_hold_seats() {
    let (kit, admin) = with_admin_under(Policy { seat_limit: Some(2), ..Policy::default() }).await;
    let second = kit
        .service
        .invitations
        .invite_user(&admin, &invite("b@example.com", "user"), &ctx())
        .await
        .unwrap();
    let full =
        kit.service.invitations.invite_user(&admin, &invite("c@example.com", "user"), &ctx()).await;
    assert!(matches!(full, Err(InviteUserError::SeatLimitReached { limit: 2 })));
    deactivate_in_store(&kit, second.user.id);

    let third =
        kit.service.invitations.invite_user(&admin, &invite("c@example.com", "user"), &ctx()).await;

    assert_eq!(third.unwrap().user.status(), UserStatus::Invited);
    assert_eq!(kit.service.users.seat_usage(&admin).await.unwrap().used, 2);
}

#[tokio::test]
async fn a_seat_limit_set_by_an_admin_replaces_the_configured_one() {
    let (kit, admin) = with_admin_under(Policy { seat_limit: Some(10), ..Policy::default() }).await;

    let usage = kit.service.users.set_seat_limit(&admin, Some(1), &ctx()).await.unwrap();
    let refused =
        kit.service.invitations.invite_user(&admin, &invite("b@example.com", "user"), &ctx()).await;

    assert_eq!((usage.used, usage.limit), (1, Some(1)));
    assert!(matches!(refused, Err(InviteUserError::SeatLimitReached { limit: 1 })));
    assert_eq!(kit.store.state().seat_limit, Some(Some(1)));
    assert_eq!(audit_of(&kit, AuditAction::SeatLimitChanged).len(), 1);
}

#[tokio::test]
async fn a_signed_in_user_who_is_not_an_admin_gets_no_admin_capability() {
    let (kit, admin) = with_admin().await;
    active_user(&kit, &admin, "grace@example.com", "user", "grace's password").await;

    let principal = sign_in(&kit, "grace@example.com", "grace's password").await;

    assert_eq!(principal.admin(), Err(Forbidden));
    assert!(principal.permissions().contains(&Permission::UseAssistant));
    assert!(!principal.permissions().contains(&Permission::ManageUsers));
}

#[tokio::test]
async fn the_operator_can_invite_an_admin_from_the_command_line() {
    let kit = secureai_domain::testing::TestKit::new();

    let invited = kit
        .service
        .invitations
        .invite_admin_as_operator(
            "ops@example.com",
            "Ops",
            &secureai_domain::RequestContext::command_line(),
        )
        .await
        .unwrap();

    {
        let state = kit.store.state();
        let user = &state.users[&invited.user.id];
        assert_eq!((user.role, user.status()), (Role::Admin, UserStatus::Invited));
        assert!(matches!(
            &state.outbox[0].mail.message,
            MailMessage::Invitation { invited_by: None, .. }
        ));
    }
    let events = audit_of(&kit, AuditAction::UserInvited);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor, Actor::Operator);
    assert_eq!(events[0].target_id, Some(invited.user.id));
}

#[tokio::test]
async fn the_operator_is_refused_an_invalid_email_naming_the_field() {
    let kit = secureai_domain::testing::TestKit::new();

    let refused =
        kit.service.invitations.invite_admin_as_operator("not an email", "Ops", &ctx()).await;

    assert!(matches!(refused, Err(InviteUserError::Invalid(f)) if f.field == "email"));
    assert!(kit.store.state().users.is_empty());
}
