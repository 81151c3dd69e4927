//! [`InvitationRepository`](crate::invitations::ports::InvitationRepository):
//! single-use invitation links.

use chrono::Duration;

use super::fixtures::{
    PASSWORD, acceptance, audit_of, event, invite, join_all, now, password_hash,
};
use crate::audit::models::AuditAction;
use crate::invitations::models::{Invitation, InvitationState};
use crate::invitations::ports::{AcceptStoreError, Reissue, ReissueError};
use crate::service::Ports;
use crate::users::models::{Role, UserState, UserStatus};

/// `accept` activates the user and marks the invitation accepted; a second
/// acceptance MUST answer `NoLongerPending` and change nothing.
pub async fn an_invitation_is_accepted_exactly_once(ports: Ports) {
    let invited = invite(&ports, "ada@example.com", Role::User).await;
    assert!(
        ports.invitations.find_by_token(&ports.tokens.generate().hash()).await.unwrap().is_none()
    );
    let (found, user) =
        ports.invitations.find_by_token(&invited.token.hash()).await.unwrap().unwrap();
    assert_eq!((found, user), (invited.invitation.clone(), invited.user.clone()));

    let at = now(&ports);
    let first = password_hash(&ports, PASSWORD).await;
    ports.invitations.accept(acceptance(&invited, at, first.clone())).await.unwrap();
    let (found, user) =
        ports.invitations.find_by_token(&invited.token.hash()).await.unwrap().unwrap();
    assert_eq!(found.state, InvitationState::Accepted { at });
    assert_eq!(user.state, UserState::Active { activated_at: at });

    let later = at + Duration::minutes(1);
    let second = password_hash(&ports, "another long passphrase").await;
    let result = ports.invitations.accept(acceptance(&invited, later, second)).await;
    assert!(matches!(result, Err(AcceptStoreError::NoLongerPending)), "{result:?}");
    let (_, user) = ports.invitations.find_by_token(&invited.token.hash()).await.unwrap().unwrap();
    assert_eq!(user.state, UserState::Active { activated_at: at });
    let (_, hash) = ports.sessions.find_credentials(&invited.user.email).await.unwrap().unwrap();
    assert_eq!(hash, Some(first));
    assert_eq!(audit_of(&ports, AuditAction::InvitationAccepted).await.len(), 1);
}

/// `accept` MUST be atomic: of two acceptances at once exactly one
/// succeeds.
pub async fn concurrent_acceptances_activate_once(ports: Ports) {
    let invited = invite(&ports, "ada@example.com", Role::User).await;
    let at = now(&ports);
    let mut tries = Vec::new();
    for password in [PASSWORD, "another long passphrase"] {
        let acceptance = acceptance(&invited, at, password_hash(&ports, password).await);
        let invitations = ports.invitations.clone();
        tries.push(async move { invitations.accept(acceptance).await });
    }
    let outcomes = join_all(tries).await;
    let accepted = outcomes.iter().filter(|o| o.is_ok()).count();
    let refused =
        outcomes.iter().filter(|o| matches!(o, Err(AcceptStoreError::NoLongerPending))).count();
    assert_eq!((accepted, refused), (1, 1), "{outcomes:?}");
    assert_eq!(audit_of(&ports, AuditAction::InvitationAccepted).await.len(), 1);
}

/// `reissue` voids the user's pending invitations and stores the new one;
/// it MUST answer `NotInvited`, and write nothing, once the user is no
/// longer invited.
pub async fn reissue_voids_earlier_links_and_needs_an_invited_user(ports: Ports) {
    let invited = invite(&ports, "ada@example.com", Role::User).await;
    let reissue = |at| {
        let token = ports.tokens.generate();
        let (invitation, mail) =
            Invitation::issue(&invited.user, &token, Duration::hours(72), None, at);
        let audit = event(at, AuditAction::InvitationResent).target(&invited.user);
        (Reissue { invitation, mail, audit, new_email: None }, token)
    };
    let at = now(&ports) + Duration::minutes(1);
    let (second, second_token) = reissue(at);
    let second_invitation = second.invitation.clone();
    let second_mail = second.mail.id;
    ports.invitations.reissue(second).await.unwrap();

    let (old, _) = ports.invitations.find_by_token(&invited.token.hash()).await.unwrap().unwrap();
    assert!(matches!(old.state, InvitationState::Revoked { .. }), "{old:?}");
    assert_eq!(
        ports.invitations.latest_for(invited.user.id).await.unwrap(),
        Some(second_invitation.clone())
    );
    let mail = ports.outbox.latest_for(invited.user.id, "invitation").await.unwrap().unwrap();
    assert_eq!(mail.id, second_mail);
    let hash = password_hash(&ports, PASSWORD).await;
    let result = ports.invitations.accept(acceptance(&invited, at, hash.clone())).await;
    assert!(matches!(result, Err(AcceptStoreError::NoLongerPending)), "{result:?}");

    let current = super::fixtures::Invited {
        invitation: second_invitation,
        token: second_token,
        user: invited.user.clone(),
        mail: second_mail,
    };
    ports.invitations.accept(acceptance(&current, at, hash)).await.unwrap();
    let (third, third_token) = reissue(at + Duration::minutes(1));
    let result = ports.invitations.reissue(third).await;
    assert!(matches!(result, Err(ReissueError::NotInvited)), "{result:?}");
    assert!(ports.invitations.find_by_token(&third_token.hash()).await.unwrap().is_none());
    let mail = ports.outbox.latest_for(invited.user.id, "invitation").await.unwrap().unwrap();
    assert_eq!(mail.id, second_mail);
    assert_eq!(audit_of(&ports, AuditAction::InvitationResent).await.len(), 1);
    let user = ports.users.get(invited.user.id).await.unwrap().unwrap();
    assert_eq!(user.status(), UserStatus::Active);
}

/// `reissue` with a corrected address moves the user to it (found by it,
/// searchable by it, the new email addressed to it) and drops the unsent
/// emails of void links; it MUST answer `EmailTaken`, and write nothing,
/// when another user has the address in any letter case.
pub async fn reissue_to_a_corrected_address_keeps_addresses_unique(ports: Ports) {
    let typo = invite(&ports, "ada@exmaple.com", Role::User).await;
    invite(&ports, "grace@example.com", Role::User).await;
    let reissue = |address: &str, at| {
        let new_email = super::fixtures::email(address);
        let user = crate::users::models::User { email: new_email.clone(), ..typo.user.clone() };
        let token = ports.tokens.generate();
        let (invitation, mail) = Invitation::issue(&user, &token, Duration::hours(72), None, at);
        let audit = event(at, AuditAction::EmailChanged).target(&user);
        (Reissue { invitation, mail, audit, new_email: Some(new_email) }, token)
    };
    let at = now(&ports) + Duration::minutes(1);

    let (taken, taken_token) = reissue("Grace@Example.com", at);
    let result = ports.invitations.reissue(taken).await;
    assert!(matches!(result, Err(ReissueError::EmailTaken)), "{result:?}");
    assert!(ports.invitations.find_by_token(&taken_token.hash()).await.unwrap().is_none());
    let (old, user) = ports.invitations.find_by_token(&typo.token.hash()).await.unwrap().unwrap();
    assert_eq!(old.state, InvitationState::Pending);
    assert_eq!(user.email.as_str(), "ada@exmaple.com");
    assert!(audit_of(&ports, AuditAction::EmailChanged).await.is_empty());
    let unsent = ports.outbox.latest_for(typo.user.id, "invitation").await.unwrap().unwrap();
    assert_eq!(unsent.id, typo.mail);

    let (corrected, token) = reissue("Ada@Example.com", at);
    let mail = corrected.mail.id;
    ports.invitations.reissue(corrected).await.unwrap();
    let (old, _) = ports.invitations.find_by_token(&typo.token.hash()).await.unwrap().unwrap();
    assert!(matches!(old.state, InvitationState::Revoked { .. }), "{old:?}");
    let (_, user) = ports.invitations.find_by_token(&token.hash()).await.unwrap().unwrap();
    assert_eq!(user.email.as_str(), "Ada@Example.com");
    let typo_address = super::fixtures::email("ada@exmaple.com");
    assert!(ports.users.find_by_email(&typo_address).await.unwrap().is_none());
    let found = ports.users.find_by_email(&super::fixtures::email("ada@example.com")).await;
    assert_eq!(found.unwrap().map(|u| u.id), Some(typo.user.id));
    let entries = ports.outbox.list(None, None, 100).await.unwrap();
    let of_ada: Vec<_> = entries.iter().filter(|e| e.user_id == Some(typo.user.id)).collect();
    assert_eq!(of_ada.len(), 1, "the unsent email of the void link is dropped: {of_ada:?}");
    assert_eq!((of_ada[0].id, of_ada[0].recipient.as_str()), (mail, "Ada@Example.com"));
    let search = |word: &str| crate::users::ports::UserQuery {
        filter: crate::users::ports::UserFilter {
            words: vec![word.to_owned()],
            ..Default::default()
        },
        sort: crate::users::ports::UserSort::Created,
        descending: false,
        limit: 10,
        after: None,
    };
    let by_new = ports.users.list(&search("example.com"), 100).await.unwrap();
    assert_eq!(by_new.items.len(), 2, "{:?}", by_new.items);
    let by_typo = ports.users.list(&search("exmaple"), 100).await.unwrap();
    assert!(by_typo.items.is_empty(), "{:?}", by_typo.items);
    assert_eq!(audit_of(&ports, AuditAction::EmailChanged).await.len(), 1);
}

/// The users list's invitation filters MUST find exactly the invited users
/// in that trouble: `Expired` the password users whose pending link ran
/// out by `now` (not SSO users, not users re-invited since); `EmailFailed`
/// those whose newest invitation email failed (not once a newer one is
/// queued). The page reads give each listed user's newest invitation and
/// invitation email.
pub async fn invitation_filters_find_the_invitations_in_trouble(ports: Ports) {
    use crate::users::models::SignInMethod;
    use crate::users::ports::{InvitationFilter, UserFilter, UserQuery, UserSort};

    let start = now(&ports);
    let fresh = invite(&ports, "fresh@example.com", Role::User).await;
    let lapsed = invite(&ports, "lapsed@example.com", Role::User).await;
    let (mut sso, _) = super::fixtures::new_invited(&ports, "sso@example.com", Role::User, None);
    sso.user.sign_in = SignInMethod::Sso;
    let sso_id = sso.user.id;
    ports.invitations.insert_invited(sso).await.unwrap();
    let joined = super::fixtures::active(&ports, "joined@example.com", Role::User).await;
    // Re-invited two days later: its link runs for 72 hours from then.
    let later = start + Duration::hours(48);
    let token = ports.tokens.generate();
    let (invitation, mail) =
        Invitation::issue(&fresh.user, &token, Duration::hours(72), None, later);
    let audit = event(later, AuditAction::InvitationResent).target(&fresh.user);
    let reissued_mail = mail.id;
    ports.invitations.reissue(Reissue { invitation, mail, audit, new_email: None }).await.unwrap();

    let list = |trouble| {
        let ports = ports.clone();
        async move {
            let query = UserQuery {
                filter: UserFilter { invitation: Some(trouble), ..UserFilter::default() },
                sort: UserSort::Email,
                descending: false,
                limit: 50,
                after: None,
            };
            let page = ports.users.list(&query, 100).await.unwrap();
            let emails: Vec<String> =
                page.items.iter().map(|u| u.email.as_str().to_owned()).collect();
            assert_eq!(page.total.count, emails.len() as u64, "{emails:?}");
            emails
        }
    };
    let expired_at = |hours| InvitationFilter::Expired { now: start + Duration::hours(hours) };
    assert!(list(expired_at(71)).await.is_empty());
    assert_eq!(list(expired_at(72)).await, ["lapsed@example.com"]);
    assert_eq!(list(expired_at(200)).await, ["fresh@example.com", "lapsed@example.com"]);

    assert!(list(InvitationFilter::EmailFailed).await.is_empty());
    let at = start + Duration::hours(49);
    ports.outbox.claim_due(at, at + Duration::minutes(5), 10).await.unwrap();
    for mail in [lapsed.mail, reissued_mail] {
        ports.outbox.mark_attempt_failed(mail, "550 no such user".into(), None).await.unwrap();
    }
    assert_eq!(
        list(InvitationFilter::EmailFailed).await,
        ["fresh@example.com", "lapsed@example.com"]
    );
    // A newer invitation email for Fresh is waiting: theirs is no longer failed.
    let token = ports.tokens.generate();
    let (invitation, mail) = Invitation::issue(&fresh.user, &token, Duration::hours(72), None, at);
    let audit = event(at, AuditAction::InvitationResent).target(&fresh.user);
    let newest = mail.id;
    ports.invitations.reissue(Reissue { invitation, mail, audit, new_email: None }).await.unwrap();
    assert_eq!(list(InvitationFilter::EmailFailed).await, ["lapsed@example.com"]);

    let ids = [fresh.user.id, lapsed.user.id, sso_id, joined.id];
    let mut latest = ports.invitations.latest_for_users(&ids).await.unwrap();
    latest.sort_by_key(|i| i.created_at);
    assert_eq!(latest.len(), 4, "{latest:?}");
    let of_fresh = latest.iter().find(|i| i.user_id == fresh.user.id).unwrap();
    assert_eq!((of_fresh.created_at, of_fresh.state), (at, InvitationState::Pending));
    let emails = ports.outbox.latest_invitation_emails(&ids).await.unwrap();
    let of = |user| emails.iter().find(|e| e.user_id == Some(user)).map(|e| (e.id, e.state));
    assert_eq!(of(fresh.user.id), Some((newest, crate::mail::models::MailState::Queued)));
    assert_eq!(of(lapsed.user.id), Some((lapsed.mail, crate::mail::models::MailState::Failed)));
    assert!(ports.invitations.latest_for_users(&[]).await.unwrap().is_empty());
}

/// Two invited users corrected to the same address at once: `reissue`
/// MUST let exactly one have it and answer `EmailTaken` to the other.
pub async fn concurrent_corrections_to_one_address_give_it_once(ports: Ports) {
    let ada = invite(&ports, "ada@exmaple.com", Role::User).await;
    let bob = invite(&ports, "ada@exmalpe.com", Role::User).await;
    let at = now(&ports) + Duration::minutes(1);
    let mut tries = Vec::new();
    for user in [&ada.user, &bob.user] {
        let new_email = super::fixtures::email("ada@example.com");
        let corrected = crate::users::models::User { email: new_email.clone(), ..user.clone() };
        let token = ports.tokens.generate();
        let (invitation, mail) =
            Invitation::issue(&corrected, &token, Duration::hours(72), None, at);
        let audit = event(at, AuditAction::EmailChanged).target(&corrected);
        let reissue = Reissue { invitation, mail, audit, new_email: Some(new_email) };
        let invitations = ports.invitations.clone();
        tries.push(async move { invitations.reissue(reissue).await });
    }
    let outcomes = super::fixtures::join_all(tries).await;
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    let refused = outcomes.iter().filter(|o| matches!(o, Err(ReissueError::EmailTaken))).count();
    assert_eq!((won, refused), (1, 1), "{outcomes:?}");
    let holder = ports.users.find_by_email(&super::fixtures::email("ADA@example.com")).await;
    assert!(holder.unwrap().is_some());
    assert_eq!(audit_of(&ports, AuditAction::EmailChanged).await.len(), 1);
}
