//! [`UserRepository`](crate::users::ports::UserRepository): inserting
//! invited users, changing and erasing them.

use chrono::Duration;

use super::fixtures::{
    active, audit, audit_about, audit_of, change, deactivation, demotion, email, invite, join_all,
    new_invited, now, start_session,
};
use crate::audit::models::AuditAction;
use crate::audit::ports::AuditFilter;
use crate::invitations::models::InvitationState;
use crate::invitations::ports::InsertUserError;
use crate::service::Ports;
use crate::users::models::{DisplayName, Role, User, UserState, UserStatus};
use crate::users::ports::{ChangeUserError, Erasure, UserFilter, UserQuery, UserSort};

/// `insert_invited` MUST refuse with `EmailTaken` an email any user (any
/// status) has in another letter case, and write nothing: no user, no
/// invitation, no mail, no audit event.
pub async fn insert_refuses_an_email_taken_in_another_case(ports: Ports) {
    let ada = invite(&ports, "Ada.Lovelace@Example.com", Role::User).await;
    for attempt in 0..2 {
        let (twin, _) = new_invited(&ports, "ada.lovelace@EXAMPLE.COM", Role::Admin, None);
        let twin_id = twin.user.id;
        let result = ports.invitations.insert_invited(twin).await;
        assert!(
            matches!(result, Err(InsertUserError::EmailTaken)),
            "attempt {attempt}: {result:?}"
        );
        assert_eq!(ports.users.get(twin_id).await.unwrap(), None);
        assert!(ports.invitations.latest_for(twin_id).await.unwrap().is_none());
        assert!(ports.outbox.latest_for(twin_id, "invitation").await.unwrap().is_none());
        assert!(audit_about(&ports, twin_id).await.is_empty());
        let found = ports.users.find_by_email(&email("ADA.lovelace@example.com")).await.unwrap();
        assert_eq!(found.map(|u| u.id), Some(ada.user.id));
        // A deactivated user keeps their address too.
        if attempt == 0 {
            ports.users.apply_change(deactivation(&ports, &ada.user)).await.unwrap();
        }
    }
    assert_eq!(ports.users.count_seats().await.unwrap(), 0);
}

/// `insert_invited` MUST refuse with `SeatLimitReached` and write nothing
/// once invited + active users reach the limit; deactivated users hold no
/// seat, and no limit means no refusal.
pub async fn insert_refuses_past_the_seat_limit(ports: Ports) {
    let (first, _) = new_invited(&ports, "one@example.com", Role::User, Some(2));
    ports.invitations.insert_invited(first.clone()).await.unwrap();
    let (second, _) = new_invited(&ports, "two@example.com", Role::User, Some(2));
    ports.invitations.insert_invited(second).await.unwrap();
    let (third, _) = new_invited(&ports, "three@example.com", Role::User, Some(2));
    let third_id = third.user.id;
    let result = ports.invitations.insert_invited(third).await;
    assert!(matches!(result, Err(InsertUserError::SeatLimitReached { limit: 2 })), "{result:?}");
    assert_eq!(ports.users.get(third_id).await.unwrap(), None);
    assert_eq!(ports.users.find_by_email(&email("three@example.com")).await.unwrap(), None);
    assert!(ports.outbox.latest_for(third_id, "invitation").await.unwrap().is_none());
    assert!(audit_about(&ports, third_id).await.is_empty());
    assert_eq!(ports.users.count_seats().await.unwrap(), 2);

    let (unlimited, _) = new_invited(&ports, "four@example.com", Role::User, None);
    ports.invitations.insert_invited(unlimited).await.unwrap();
    assert_eq!(ports.users.count_seats().await.unwrap(), 3);

    ports.users.apply_change(deactivation(&ports, &first.user)).await.unwrap();
    assert_eq!(ports.users.count_seats().await.unwrap(), 2);
    let (fifth, _) = new_invited(&ports, "five@example.com", Role::User, Some(3));
    ports.invitations.insert_invited(fifth).await.unwrap();
    let (sixth, _) = new_invited(&ports, "six@example.com", Role::User, Some(3));
    let result = ports.invitations.insert_invited(sixth).await;
    assert!(matches!(result, Err(InsertUserError::SeatLimitReached { limit: 3 })), "{result:?}");
}

/// `insert_invited` MUST check the seat limit atomically: of many inserts
/// at once with one seat left, exactly one succeeds.
pub async fn concurrent_inserts_never_overshoot_the_seat_limit(ports: Ports) {
    invite(&ports, "holder@example.com", Role::User).await;
    let attempts: Vec<_> = (0..8)
        .map(|i| {
            let (new, _) =
                new_invited(&ports, &format!("racer{i}@example.com"), Role::User, Some(2));
            let invitations = ports.invitations.clone();
            async move { invitations.insert_invited(new).await }
        })
        .collect();
    let outcomes = join_all(attempts).await;
    let created = outcomes.iter().filter(|o| o.is_ok()).count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Err(InsertUserError::SeatLimitReached { limit: 2 })))
        .count();
    assert_eq!((created, refused), (1, 7), "{outcomes:?}");
    assert_eq!(ports.users.count_seats().await.unwrap(), 2);
}

/// `apply_change` with `keep_an_admin` MUST refuse with `LastAdmin`, and
/// write nothing, when no *other* active admin exists (an invited admin
/// does not count).
pub async fn apply_change_keeps_an_active_admin(ports: Ports) {
    let root = active(&ports, "root@example.com", Role::Admin).await;
    let result = ports.users.apply_change(demotion(&ports, &root)).await;
    assert!(matches!(result, Err(ChangeUserError::LastAdmin)), "{result:?}");
    let result = ports.users.apply_change(deactivation(&ports, &root)).await;
    assert!(matches!(result, Err(ChangeUserError::LastAdmin)), "{result:?}");
    assert_eq!(ports.users.get(root.id).await.unwrap(), Some(root.clone()));
    assert!(audit_of(&ports, AuditAction::RoleChanged).await.is_empty());
    assert!(audit_of(&ports, AuditAction::UserDeactivated).await.is_empty());

    invite(&ports, "next@example.com", Role::Admin).await;
    let result = ports.users.apply_change(demotion(&ports, &root)).await;
    assert!(matches!(result, Err(ChangeUserError::LastAdmin)), "{result:?}");

    let other = active(&ports, "other@example.com", Role::Admin).await;
    ports.users.apply_change(demotion(&ports, &root)).await.unwrap();
    assert_eq!(ports.users.get(root.id).await.unwrap().map(|u| u.role), Some(Role::User));
    assert_eq!(audit_of(&ports, AuditAction::RoleChanged).await.len(), 1);
    let result = ports.users.apply_change(demotion(&ports, &other)).await;
    assert!(matches!(result, Err(ChangeUserError::LastAdmin)), "{result:?}");
}

/// `apply_change` MUST check `keep_an_admin` atomically: two admins
/// demoting each other at once leave one admin.
pub async fn concurrent_demotions_leave_an_admin(ports: Ports) {
    let a = active(&ports, "a@example.com", Role::Admin).await;
    let b = active(&ports, "b@example.com", Role::Admin).await;
    let demotions: Vec<_> = [demotion(&ports, &a), demotion(&ports, &b)]
        .into_iter()
        .map(|c| {
            let users = ports.users.clone();
            async move { users.apply_change(c).await }
        })
        .collect();
    let outcomes = join_all(demotions).await;
    let done = outcomes.iter().filter(|o| o.is_ok()).count();
    let refused = outcomes.iter().filter(|o| matches!(o, Err(ChangeUserError::LastAdmin))).count();
    assert_eq!((done, refused), (1, 1), "{outcomes:?}");
    let mut admins = 0;
    for id in [a.id, b.id] {
        admins += usize::from(ports.users.get(id).await.unwrap().unwrap().is_active_admin());
    }
    assert_eq!(admins, 1);
}

/// `apply_change` MUST refuse with `Stale`, and write nothing, when the
/// stored role or status differs from `before`.
pub async fn apply_change_refuses_a_stale_before(ports: Ports) {
    let ada = active(&ports, "ada@example.com", Role::User).await;
    let renamed = User { name: DisplayName::parse("Ada King").unwrap(), ..ada.clone() };
    let stale_status = User { state: UserState::Invited, ..ada.clone() };
    let stale_role = User { role: Role::Admin, ..ada.clone() };
    let stale_email = User { email: email("ada@old.example"), ..ada.clone() };
    for before in [stale_status, stale_role, stale_email] {
        let mut stale = change(&ports, &ada, renamed.clone(), AuditAction::ProfileChanged);
        stale.before = before;
        let result = ports.users.apply_change(stale).await;
        assert!(matches!(result, Err(ChangeUserError::Stale)), "{result:?}");
    }
    assert_eq!(ports.users.get(ada.id).await.unwrap(), Some(ada.clone()));
    assert!(audit_of(&ports, AuditAction::ProfileChanged).await.is_empty());

    let fresh = change(&ports, &ada, renamed.clone(), AuditAction::ProfileChanged);
    ports.users.apply_change(fresh).await.unwrap();
    assert_eq!(ports.users.get(ada.id).await.unwrap(), Some(renamed));
    assert_eq!(audit_of(&ports, AuditAction::ProfileChanged).await.len(), 1);
}

/// `apply_change` with `takes_seat` MUST refuse with `SeatLimitReached`,
/// and write nothing, when invited + active users reach the limit.
pub async fn reactivation_refuses_past_the_seat_limit(ports: Ports) {
    let ada = active(&ports, "ada@example.com", Role::User).await;
    let off = deactivation(&ports, &ada);
    let deactivated = off.after.clone();
    ports.users.apply_change(off).await.unwrap();
    invite(&ports, "bob@example.com", Role::User).await;
    let activated_at = deactivated.state.activated_at().unwrap();
    let back = User { state: UserState::Active { activated_at }, ..deactivated.clone() };
    let mut reactivation = change(&ports, &deactivated, back.clone(), AuditAction::UserReactivated);
    reactivation.takes_seat = Some(Some(1));
    let result = ports.users.apply_change(reactivation.clone()).await;
    assert!(matches!(result, Err(ChangeUserError::SeatLimitReached { limit: 1 })), "{result:?}");
    assert_eq!(ports.users.get(ada.id).await.unwrap(), Some(deactivated));
    assert_eq!(ports.users.count_seats().await.unwrap(), 1);

    reactivation.takes_seat = Some(Some(2));
    ports.users.apply_change(reactivation).await.unwrap();
    assert_eq!(ports.users.get(ada.id).await.unwrap(), Some(back));
    assert_eq!(ports.users.count_seats().await.unwrap(), 2);
}

/// `apply_change` MUST end the user's sessions and void their pending
/// invitation and reset links when asked (deactivation).
pub async fn deactivation_ends_sessions_and_voids_links(ports: Ports) {
    let at = now(&ports);
    let ada = active(&ports, "ada@example.com", Role::User).await;
    let bob = active(&ports, "bob@example.com", Role::User).await;
    let (_, ada_token) = start_session(&ports, &ada, at).await;
    let (_, bob_token) = start_session(&ports, &bob, at).await;
    let (reset, _) = super::resets::issue(&ports, &ada).await;
    // Dan's invitation email is being sent (leased by a worker); Carol's
    // waits.
    let dan = invite(&ports, "dan@example.com", Role::User).await;
    ports.outbox.claim_due(at, at + Duration::hours(1), 10).await.unwrap();
    let carol = invite(&ports, "carol@example.com", Role::User).await;

    ports.users.apply_change(deactivation(&ports, &ada)).await.unwrap();
    ports.users.apply_change(deactivation(&ports, &carol.user)).await.unwrap();
    ports.users.apply_change(deactivation(&ports, &dan.user)).await.unwrap();
    let unsent = ports.outbox.latest_for(carol.user.id, "invitation").await.unwrap();
    assert!(unsent.is_none(), "the email of a void link is dropped: {unsent:?}");
    let leased = ports.outbox.latest_for(dan.user.id, "invitation").await.unwrap();
    assert_eq!(leased.map(|e| e.id), Some(dan.mail), "one being sent is left to its worker");

    assert!(ports.sessions.find(&ada_token.hash()).await.unwrap().is_none());
    assert!(ports.sessions.find(&bob_token.hash()).await.unwrap().is_some());
    let (reset, _) = ports.resets.find_reset(&reset.token_hash).await.unwrap().unwrap();
    assert_ne!(reset.state, InvitationState::Pending);
    let (invitation, user) =
        ports.invitations.find_by_token(&carol.token.hash()).await.unwrap().unwrap();
    assert_ne!(invitation.state, InvitationState::Pending);
    assert_eq!(user.status(), UserStatus::Deactivated);
}

/// `erase` MUST refuse the only active admin (`LastAdmin`) and a stale
/// `before` (`Stale`); otherwise the row becomes `after` without a
/// password, sessions end, queued mail to them is dropped, search no longer
/// finds them, and audit entries keep their target id but lose the email.
pub async fn erase_anonymises_but_keeps_the_last_admin(ports: Ports) {
    let root = active(&ports, "root@example.com", Role::Admin).await;
    let erasure = |before: &User| {
        let mut after = before.clone();
        after.email = crate::users::models::EmailAddress::from_stored(format!(
            "erased-{}@erased.invalid",
            before.id
        ));
        after.name = DisplayName::parse("Erased user").unwrap();
        after.state = UserState::Deactivated {
            activated_at: before.state.activated_at(),
            deactivated_at: now(&ports),
        };
        let mut audit = super::fixtures::event(now(&ports), AuditAction::UserErased);
        audit.target_id = Some(before.id);
        Erasure { before: before.clone(), after, audit }
    };
    let result = ports.users.erase(erasure(&root)).await;
    assert!(matches!(result, Err(ChangeUserError::LastAdmin)), "{result:?}");
    assert_eq!(ports.users.get(root.id).await.unwrap(), Some(root.clone()));

    let ada = active(&ports, "ada.lovelace@example.com", Role::User).await;
    let stale = Erasure { before: User { role: Role::Admin, ..ada.clone() }, ..erasure(&ada) };
    let result = ports.users.erase(stale).await;
    assert!(matches!(result, Err(ChangeUserError::Stale)), "{result:?}");
    assert_eq!(ports.users.get(ada.id).await.unwrap(), Some(ada.clone()));

    let (_, token) = start_session(&ports, &ada, now(&ports)).await;
    // As the use case does: erase the user as stored now.
    let ada = ports.users.get(ada.id).await.unwrap().unwrap();
    let erased = erasure(&ada);
    let after = erased.after.clone();
    // Something she did, and a failed sign-in with her email typed.
    let mut acted = super::fixtures::event(now(&ports), AuditAction::PasswordChanged);
    acted.actor = crate::audit::models::Actor::user(&ada);
    ports.audit.append(acted.clone()).await.unwrap();
    let mut typed = super::fixtures::event(now(&ports), AuditAction::SignInFailed);
    typed.target_email = Some(ada.email.as_str().to_owned());
    ports.audit.append(typed.clone()).await.unwrap();
    let ids_before: Vec<_> = audit_about(&ports, ada.id).await.iter().map(|e| e.id).collect();
    assert!(!ids_before.is_empty());
    ports.users.erase(erased).await.unwrap();

    assert_eq!(ports.users.get(ada.id).await.unwrap(), Some(after.clone()));
    assert_eq!(ports.users.find_by_email(&ada.email).await.unwrap(), None);
    let (_, hash) = ports.sessions.find_credentials(&after.email).await.unwrap().unwrap();
    assert_eq!(hash, None);
    assert!(ports.sessions.find(&token.hash()).await.unwrap().is_none());
    let later = now(&ports) + Duration::days(1);
    let queued = ports.outbox.claim_due(later, later + Duration::minutes(5), 100).await.unwrap();
    assert!(queued.iter().all(|m| m.mail.user_id != Some(ada.id) && m.mail.to != ada.email));
    let query = UserQuery {
        filter: UserFilter { words: vec!["ada".into()], ..UserFilter::default() },
        sort: UserSort::Created,
        descending: false,
        limit: 10,
        after: None,
    };
    let page = ports.users.list(&query, 1000).await.unwrap();
    assert!(page.items.iter().all(|u| u.id != ada.id), "{:?}", page.items);

    let ids_after: Vec<_> = audit_about(&ports, ada.id).await.iter().map(|e| e.id).collect();
    assert!(ids_before.iter().all(|id| ids_after.contains(id)));
    for entry in audit(&ports, AuditFilter::default()).await {
        let mentions = |e: &Option<String>| {
            e.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(ada.email.as_str()))
        };
        assert!(!mentions(&entry.actor_email) && !mentions(&entry.target_email), "{entry:?}");
        if entry.target_id == Some(ada.id) {
            assert!(entry.changes.is_empty(), "{entry:?}");
        }
        // Her past actions keep her id, as a user, without her email.
        if entry.id == acted.id {
            assert_eq!((entry.actor_kind.as_str(), entry.actor_id), ("user", Some(ada.id)));
            assert_eq!(entry.actor_email, None);
        }
        if entry.id == typed.id {
            assert_eq!(entry.target_email, None, "the email typed at a failed sign-in");
        }
    }
    let listed = audit(&ports, AuditFilter::default()).await;
    assert!(listed.iter().any(|e| e.id == acted.id) && listed.iter().any(|e| e.id == typed.id));
}
