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
        (Reissue { invitation, mail, audit }, token)
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
