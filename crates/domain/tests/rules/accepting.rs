//! Using an invitation link (rule 5): it works once, for 72 hours, and a
//! re-send replaces it.

use chrono::Duration;
use secureai_domain::access::Admin;
use secureai_domain::invitations::errors::{
    AcceptInvitationError, CorrectEmailError, ResendInvitationError,
};
use secureai_domain::invitations::models::{InvitationState, InvitationStatus};
use secureai_domain::invitations::service::InvitationLookup;
use secureai_domain::invitations::service::Invited;
use secureai_domain::secrets::{PasswordPolicyError, PlainToken};
use secureai_domain::sessions::errors::SignInError;
use secureai_domain::testing::TestKit;
use secureai_domain::users::lifecycle::UserUpdate;
use secureai_domain::{Actor, AuditAction, Clock, UserId, UserState, UserStatus};

use crate::kit::{
    active_user, audit_of, counts, ctx, invite, latest_mailed_token, pw, sign_in, with_admin,
};

/// Ada, invited as a user by the admin.
async fn invite_ada(kit: &TestKit, admin: &Admin) -> Invited {
    kit.service
        .invitations
        .invite_user(admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap()
}

fn invitation_state(kit: &TestKit, user: UserId) -> InvitationState {
    kit.store.state().invitations.iter().find(|i| i.user_id == user).unwrap().state
}

#[tokio::test]
async fn accepting_an_invitation_activates_the_user_with_the_chosen_password() {
    let (kit, admin) = with_admin().await;
    let invited = invite_ada(&kit, &admin).await;
    kit.clock.advance(Duration::hours(5));

    let user = kit
        .service
        .invitations
        .accept_invitation(&invited.token, pw("ada's own password"), &ctx())
        .await
        .unwrap();

    let now = kit.clock.now();
    assert_eq!(user.state, UserState::Active { activated_at: now });
    assert_eq!(kit.store.state().users[&user.id].state, UserState::Active { activated_at: now });
    assert!(kit.store.state().passwords.contains_key(&user.id));
    assert_eq!(invitation_state(&kit, user.id), InvitationState::Accepted { at: now });
    let events = audit_of(&kit, AuditAction::InvitationAccepted);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor, Actor::user(&user));
    assert_eq!(events[0].target_id, Some(user.id));
    assert_eq!(sign_in(&kit, "ada@example.com", "ada's own password").await.user().id, user.id);
}

#[tokio::test]
async fn an_invitation_link_works_only_once() {
    let (kit, admin) = with_admin().await;
    let invited = invite_ada(&kit, &admin).await;
    kit.service
        .invitations
        .accept_invitation(&invited.token, pw("ada's own password"), &ctx())
        .await
        .unwrap();
    let before = counts(&kit);

    let again = kit
        .service
        .invitations
        .accept_invitation(&invited.token, pw("an intruder's pick"), &ctx())
        .await;

    assert!(matches!(again, Err(AcceptInvitationError::Invalid)));
    assert_eq!(counts(&kit), before);
    let intruder =
        kit.service.sessions.sign_in("ada@example.com", &pw("an intruder's pick"), &ctx()).await;
    assert!(matches!(intruder, Err(SignInError::InvalidCredentials)));
}

#[tokio::test]
async fn an_expired_invitation_is_refused_with_its_expiry() {
    let (kit, admin) = with_admin().await;
    let invited = invite_ada(&kit, &admin).await;
    kit.clock.advance(Duration::hours(72));

    let late = kit
        .service
        .invitations
        .accept_invitation(&invited.token, pw("ada's own password"), &ctx())
        .await;

    assert!(matches!(
        late,
        Err(AcceptInvitationError::Expired { expired_at }) if expired_at == invited.invitation.expires_at
    ));
    assert_eq!(kit.store.state().users[&invited.user.id].status(), UserStatus::Invited);
    assert_eq!(invitation_state(&kit, invited.user.id), InvitationState::Pending);
    assert!(!kit.store.state().passwords.contains_key(&invited.user.id));
    assert!(audit_of(&kit, AuditAction::InvitationAccepted).is_empty());
}

#[tokio::test]
async fn an_invitation_still_works_at_71_hours_59_minutes() {
    let (kit, admin) = with_admin().await;
    let invited = invite_ada(&kit, &admin).await;
    kit.clock.advance(Duration::hours(71) + Duration::minutes(59));

    let user = kit
        .service
        .invitations
        .accept_invitation(&invited.token, pw("ada's own password"), &ctx())
        .await;

    assert_eq!(user.unwrap().status(), UserStatus::Active);
}

#[tokio::test]
async fn a_weak_password_is_refused_and_changes_nothing() {
    let (kit, admin) = with_admin().await;
    let invited = invite_ada(&kit, &admin).await;
    let before = counts(&kit);

    let weak = kit.service.invitations.accept_invitation(&invited.token, pw("short"), &ctx()).await;

    assert!(matches!(
        weak,
        Err(AcceptInvitationError::WeakPassword(PasswordPolicyError::TooShort { min: 8 }))
    ));
    assert_eq!(counts(&kit), before);
    assert_eq!(kit.store.state().users[&invited.user.id].status(), UserStatus::Invited);
    assert_eq!(invitation_state(&kit, invited.user.id), InvitationState::Pending);
    assert!(!kit.store.state().passwords.contains_key(&invited.user.id));
    kit.service
        .invitations
        .accept_invitation(&invited.token, pw("ada's own password"), &ctx())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unknown_invitation_token_is_invalid() {
    let (kit, _admin) = with_admin().await;
    let before = counts(&kit);

    let unknown = kit
        .service
        .invitations
        .accept_invitation(
            &PlainToken::presented("made-up-token"),
            pw("ada's own password"),
            &ctx(),
        )
        .await;

    assert!(matches!(unknown, Err(AcceptInvitationError::Invalid)));
    assert_eq!(counts(&kit), before);
}

#[tokio::test]
async fn looking_up_a_pending_invitation_shows_the_user_and_expiry_without_using_it() {
    let (kit, admin) = with_admin().await;
    let invited = invite_ada(&kit, &admin).await;

    let lookup = kit.service.invitations.look_up_invitation(&invited.token).await.unwrap();

    assert_eq!(
        lookup,
        InvitationLookup::Pending {
            user: invited.user.clone(),
            status: InvitationStatus::Pending { expires_at: invited.invitation.expires_at },
        }
    );
    assert_eq!(invitation_state(&kit, invited.user.id), InvitationState::Pending);
}

#[tokio::test]
async fn looking_up_an_expired_invitation_says_when_it_expired() {
    let (kit, admin) = with_admin().await;
    let invited = invite_ada(&kit, &admin).await;
    kit.clock.advance(Duration::hours(80));

    let lookup = kit.service.invitations.look_up_invitation(&invited.token).await.unwrap();

    assert_eq!(
        lookup,
        InvitationLookup::Expired(InvitationStatus::Expired {
            expired_at: invited.invitation.expires_at
        })
    );
}

#[tokio::test]
async fn looking_up_a_used_or_unknown_invitation_finds_it_invalid() {
    let (kit, admin) = with_admin().await;
    let invited = invite_ada(&kit, &admin).await;
    kit.service
        .invitations
        .accept_invitation(&invited.token, pw("ada's own password"), &ctx())
        .await
        .unwrap();

    let used = kit.service.invitations.look_up_invitation(&invited.token).await.unwrap();
    let unknown = kit
        .service
        .invitations
        .look_up_invitation(&PlainToken::presented("made-up"))
        .await
        .unwrap();

    assert_eq!(used, InvitationLookup::Invalid);
    assert_eq!(unknown, InvitationLookup::Invalid);
}

#[tokio::test]
async fn resending_issues_a_new_72_hour_link_and_voids_the_old_one() {
    let (kit, admin) = with_admin().await;
    let first = invite_ada(&kit, &admin).await;
    kit.clock.advance(Duration::hours(80));

    let second =
        kit.service.invitations.resend_invitation(&admin, first.user.id, &ctx()).await.unwrap();

    let now = kit.clock.now();
    assert_eq!(second.expires_at, now + Duration::hours(72));
    let old = kit
        .service
        .invitations
        .accept_invitation(&first.token, pw("ada's own password"), &ctx())
        .await;
    assert!(matches!(old, Err(AcceptInvitationError::Invalid)));
    {
        let state = kit.store.state();
        let old_one = state.invitations.iter().find(|i| i.id == first.invitation.id).unwrap();
        assert_eq!(old_one.state, InvitationState::Revoked { at: now });
        // The first email, never sent, is dropped: its link is void.
        assert_eq!(state.outbox.len(), 1);
        assert_eq!(state.outbox[0].mail.to.as_str(), "ada@example.com");
    }
    let events = audit_of(&kit, AuditAction::InvitationResent);
    assert_eq!((events.len(), events[0].target_id), (1, Some(first.user.id)));
    let new_token = latest_mailed_token(&kit);
    assert_eq!(new_token.hash(), second.token_hash);
    kit.service
        .invitations
        .accept_invitation(&new_token, pw("ada's own password"), &ctx())
        .await
        .unwrap();
}

#[tokio::test]
async fn only_invited_users_can_be_sent_a_new_link() {
    let (kit, admin) = with_admin().await;
    let active = active_user(&kit, &admin, "grace@example.com", "user", "grace's password").await;
    let before = counts(&kit);

    let to_active = kit.service.invitations.resend_invitation(&admin, active, &ctx()).await;
    let to_nobody =
        kit.service.invitations.resend_invitation(&admin, UserId::generate(), &ctx()).await;

    assert!(matches!(to_active, Err(ResendInvitationError::NotInvited)));
    assert!(matches!(to_nobody, Err(ResendInvitationError::NotFound)));
    assert_eq!(counts(&kit), before);
}

#[tokio::test]
async fn deactivating_an_invited_user_voids_their_link() {
    let (kit, admin) = with_admin().await;
    let invited = invite_ada(&kit, &admin).await;
    let deactivate = UserUpdate { active: Some(false), ..UserUpdate::default() };
    kit.service.users.update_user(&admin, invited.user.id, &deactivate, &ctx()).await.unwrap();

    let refused = kit
        .service
        .invitations
        .accept_invitation(&invited.token, pw("ada's own password"), &ctx())
        .await;

    assert!(matches!(refused, Err(AcceptInvitationError::Invalid)));
    assert!(matches!(invitation_state(&kit, invited.user.id), InvitationState::Revoked { .. }));
    assert_eq!(kit.store.state().users[&invited.user.id].status(), UserStatus::Deactivated);
}

#[tokio::test]
async fn an_invited_users_mistyped_email_is_corrected_and_the_new_address_gets_the_link() {
    let (kit, admin) = with_admin().await;
    let typo = kit
        .service
        .invitations
        .invite_user(&admin, &invite("ada@exmaple.com", "user"), &ctx())
        .await
        .unwrap();
    active_user(&kit, &admin, "grace@example.com", "user", "grace's own password").await;
    let invitations = &kit.service.invitations;

    let before = counts(&kit);
    for (address, refused) in
        [("not an address", "invalid"), ("GRACE@example.com", "taken"), (" ", "invalid")]
    {
        let result = invitations.correct_email(&admin, typo.user.id, address, &ctx()).await;
        match (refused, result) {
            ("invalid", Err(CorrectEmailError::Invalid(e))) => assert_eq!(e.field, "email"),
            ("taken", Err(CorrectEmailError::EmailTaken)) => {}
            (_, other) => panic!("{address}: {other:?}"),
        }
    }
    assert_eq!(counts(&kit), before, "a refused correction writes nothing");

    let corrected =
        invitations.correct_email(&admin, typo.user.id, "ada@example.com", &ctx()).await.unwrap();
    assert_eq!((corrected.id, corrected.email.as_str()), (typo.user.id, "ada@example.com"));
    let old = invitations.accept_invitation(&typo.token, pw("ada's own password"), &ctx()).await;
    assert!(matches!(old, Err(AcceptInvitationError::Invalid)), "{old:?}");
    let mailed_to = kit.store.state().outbox.last().unwrap().mail.to.as_str().to_owned();
    assert_eq!(mailed_to, "ada@example.com");
    let events = audit_of(&kit, AuditAction::EmailChanged);
    assert_eq!(events.len(), 1);
    let change = &events[0].changes[0];
    assert_eq!(
        (change.field.as_str(), change.before.as_deref(), change.after.as_deref()),
        ("email", Some("ada@exmaple.com"), Some("ada@example.com"))
    );
    let token = latest_mailed_token(&kit);
    invitations.accept_invitation(&token, pw("ada's own password"), &ctx()).await.unwrap();
    sign_in(&kit, "ada@example.com", "ada's own password").await;

    // Once they have joined, the address is the person's.
    let joined = invitations.correct_email(&admin, typo.user.id, "ada@corp.example", &ctx()).await;
    assert!(matches!(joined, Err(CorrectEmailError::NotInvited)), "{joined:?}");
}
