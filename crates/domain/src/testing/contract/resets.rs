//! [`PasswordRepository`](crate::resets::ports::PasswordRepository):
//! single-use reset links and password changes.

use chrono::Duration;
use uuid::Uuid;

use super::fixtures::{
    PASSWORD, active, audit_of, event, invite, now, password_hash, start_session,
};
use crate::audit::models::AuditAction;
use crate::invitations::models::InvitationState;
use crate::mail::models::{MailMessage, OutgoingMail};
use crate::resets::models::PasswordReset;
use crate::resets::ports::{NewReset, PasswordChange, PasswordStoreError};
use crate::secrets::PlainToken;
use crate::service::Ports;
use crate::sessions::models::SessionId;
use crate::users::models::{Role, User, UserId};

/// A pending reset link for `user` (not stored), as the use case builds it.
fn new_reset(ports: &Ports, user: &User) -> (NewReset, PlainToken) {
    let at = now(ports);
    let token = ports.tokens.generate();
    let reset = PasswordReset {
        id: crate::record_id(),
        user_id: user.id,
        token_hash: token.hash(),
        created_at: at,
        expires_at: at + Duration::hours(72),
        state: InvitationState::Pending,
    };
    let mail = OutgoingMail {
        id: crate::record_id(),
        user_id: Some(user.id),
        to: user.email.clone(),
        to_name: user.name.clone(),
        message: MailMessage::PasswordReset { token: token.clone(), expires_at: reset.expires_at },
        created_at: at,
    };
    let audit = event(at, AuditAction::PasswordResetRequested).target(user);
    (NewReset { reset, mail, audit }, token)
}

/// Stores a reset link for an active `user`.
pub(super) async fn issue(ports: &Ports, user: &User) -> (PasswordReset, PlainToken) {
    let (new, token) = new_reset(ports, user);
    let reset = new.reset.clone();
    ports.resets.issue_reset(new).await.unwrap();
    (reset, token)
}

async fn password_change(
    ports: &Ports,
    user: UserId,
    password: &str,
    reset_id: Option<Uuid>,
    keep_session: Option<SessionId>,
) -> PasswordChange {
    let at = now(ports) + Duration::minutes(1);
    PasswordChange {
        user_id: user,
        password_hash: password_hash(ports, password).await,
        reset_id,
        keep_session,
        at,
        audit: event(at, AuditAction::PasswordResetCompleted),
    }
}

/// A new link voids the user's pending ones; `set_password` consumes the
/// link once — a second use, or a voided link, MUST answer
/// `NoLongerApplicable` and write nothing — and ends every session but the
/// one kept.
pub async fn a_reset_link_is_consumed_once(ports: Ports) {
    let ada = active(&ports, "ada@example.com", Role::User).await;
    let (kept, kept_token) = start_session(&ports, &ada, now(&ports)).await;
    let (_, other_token) = start_session(&ports, &ada, now(&ports)).await;
    assert!(ports.resets.find_reset(&ports.tokens.generate().hash()).await.unwrap().is_none());
    let (first, first_token) = issue(&ports, &ada).await;
    let (found, user) = ports.resets.find_reset(&first_token.hash()).await.unwrap().unwrap();
    assert_eq!((found, user.id), (first.clone(), ada.id));
    let (second, second_token) = issue(&ports, &ada).await;
    let (found, _) = ports.resets.find_reset(&first_token.hash()).await.unwrap().unwrap();
    assert!(matches!(found.state, InvitationState::Revoked { .. }), "{found:?}");
    let mail = ports.outbox.latest_for(ada.id, "password_reset").await.unwrap();
    assert!(mail.is_some());

    let voided =
        password_change(&ports, ada.id, "the voided passphrase", Some(first.id), None).await;
    let result = ports.resets.set_password(voided).await;
    assert!(matches!(result, Err(PasswordStoreError::NoLongerApplicable)), "{result:?}");
    assert!(ports.sessions.find(&other_token.hash()).await.unwrap().is_some());

    let used =
        password_change(&ports, ada.id, "a new long passphrase", Some(second.id), Some(kept.id))
            .await;
    let at = used.at;
    let new_hash = used.password_hash.clone();
    ports.resets.set_password(used).await.unwrap();
    let (found, _) = ports.resets.find_reset(&second_token.hash()).await.unwrap().unwrap();
    assert_eq!(found.state, InvitationState::Accepted { at });
    assert!(ports.sessions.find(&kept_token.hash()).await.unwrap().is_some());
    assert!(ports.sessions.find(&other_token.hash()).await.unwrap().is_none());

    let again =
        password_change(&ports, ada.id, "yet another passphrase", Some(second.id), None).await;
    let result = ports.resets.set_password(again).await;
    assert!(matches!(result, Err(PasswordStoreError::NoLongerApplicable)), "{result:?}");
    let (_, hash) = ports.sessions.find_credentials(&ada.email).await.unwrap().unwrap();
    assert_eq!(hash, Some(new_hash));
    assert!(ports.sessions.find(&kept_token.hash()).await.unwrap().is_some());
    assert_eq!(audit_of(&ports, AuditAction::PasswordResetCompleted).await.len(), 1);
}

/// `issue_reset` and `set_password` MUST answer `NoLongerApplicable`, and
/// write nothing, for a user who is not active.
pub async fn resets_need_an_active_user(ports: Ports) {
    let invited = invite(&ports, "bob@example.com", Role::User).await;
    let (new, token) = new_reset(&ports, &invited.user);
    let result = ports.resets.issue_reset(new).await;
    assert!(matches!(result, Err(PasswordStoreError::NoLongerApplicable)), "{result:?}");
    assert!(ports.resets.find_reset(&token.hash()).await.unwrap().is_none());
    assert!(ports.outbox.latest_for(invited.user.id, "password_reset").await.unwrap().is_none());
    let change = password_change(&ports, invited.user.id, PASSWORD, None, None).await;
    let result = ports.resets.set_password(change).await;
    assert!(matches!(result, Err(PasswordStoreError::NoLongerApplicable)), "{result:?}");
    let (_, hash) = ports.sessions.find_credentials(&invited.user.email).await.unwrap().unwrap();
    assert_eq!(hash, None);

    // A link issued while active no longer works once the user is not.
    let ada = active(&ports, "ada@example.com", Role::User).await;
    let (reset, token) = issue(&ports, &ada).await;
    let off = super::fixtures::deactivation(&ports, &ada);
    let off = crate::users::ports::UserChange { revoke_links: false, end_sessions: false, ..off };
    ports.users.apply_change(off).await.unwrap();
    let change =
        password_change(&ports, ada.id, "a new long passphrase", Some(reset.id), None).await;
    let result = ports.resets.set_password(change).await;
    assert!(matches!(result, Err(PasswordStoreError::NoLongerApplicable)), "{result:?}");
    let (found, _) = ports.resets.find_reset(&token.hash()).await.unwrap().unwrap();
    assert_eq!(found.state, InvitationState::Pending);
    assert_eq!(audit_of(&ports, AuditAction::PasswordResetCompleted).await.len(), 0);
}
