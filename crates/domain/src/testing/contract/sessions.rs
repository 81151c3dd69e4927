//! [`SessionRepository`](crate::sessions::ports::SessionRepository):
//! credentials, sessions and their end.

use chrono::Duration;

use super::fixtures::{
    PASSWORD, active, audit_about, change, email, event, invite, new_session, now, start_session,
};
use crate::audit::models::AuditAction;
use crate::service::Ports;
use crate::users::models::{DisplayName, Role, User};

/// `find_credentials` finds the user by email in any letter case, with
/// their password hash (none for an invited user), and MUST answer
/// `Ok(None)` for an unknown email.
pub async fn find_credentials_matches_the_email_in_any_case(ports: Ports) {
    let ada = active(&ports, "Ada@Example.com", Role::User).await;
    let invited = invite(&ports, "bob@example.com", Role::User).await;
    let (user, hash) =
        ports.sessions.find_credentials(&email("ADA@example.COM")).await.unwrap().unwrap();
    assert_eq!(user, ada);
    let presented = secrecy::SecretString::from(PASSWORD.to_owned());
    assert!(hash.is_some());
    assert!(ports.hasher.verify(&presented, hash).await.unwrap());
    let (user, hash) = ports.sessions.find_credentials(&invited.user.email).await.unwrap().unwrap();
    assert_eq!((user, hash), (invited.user, None));
    assert!(ports.sessions.find_credentials(&email("nobody@example.com")).await.unwrap().is_none());
}

/// `find` returns the session with its user as stored right now (`start`
/// set their last sign-in) and MUST answer `Ok(None)` for an unknown hash;
/// after `end` the session is gone, and ending or touching it again is not
/// an error.
pub async fn a_session_carries_its_user_as_stored_now_until_it_ends(ports: Ports) {
    let at = now(&ports);
    let ada = active(&ports, "ada@example.com", Role::User).await;
    let (session, token) = start_session(&ports, &ada, at).await;
    let (found, user) = ports.sessions.find(&token.hash()).await.unwrap().unwrap();
    assert_eq!(found, session);
    assert_eq!(user, User { last_login_at: Some(at), ..ada.clone() });
    assert!(ports.sessions.find(&ports.tokens.generate().hash()).await.unwrap().is_none());

    let renamed = User { name: DisplayName::parse("Ada King").unwrap(), ..user.clone() };
    let rename = change(&ports, &user, renamed.clone(), AuditAction::ProfileChanged);
    ports.users.apply_change(rename).await.unwrap();
    let seen = at + Duration::minutes(5);
    ports.sessions.touch(session.id, seen).await.unwrap();
    let (found, user) = ports.sessions.find(&token.hash()).await.unwrap().unwrap();
    assert_eq!(found.last_seen_at, seen);
    assert_eq!(user, renamed);

    let signed_out = event(seen, AuditAction::SignedOut).target(&ada);
    ports.sessions.end(session.id, Some(signed_out)).await.unwrap();
    assert!(ports.sessions.find(&token.hash()).await.unwrap().is_none());
    ports.sessions.end(session.id, None).await.unwrap();
    ports.sessions.touch(session.id, seen).await.unwrap();
    let signed_out = audit_about(&ports, ada.id).await;
    assert_eq!(signed_out.iter().filter(|e| e.action == AuditAction::SignedOut).count(), 1);
}

/// `second_factor_checked` records the time of a check and clears the
/// enrolment-only flag; `enrolment_required` sets the flag and forgets the
/// time. Each touches that session only.
pub async fn a_second_factor_check_frees_a_session_and_a_replacement_limits_it_again(ports: Ports) {
    let at = now(&ports);
    let ada = active(&ports, "ada@example.com", Role::Admin).await;
    let (session, token) = start_session(&ports, &ada, at).await;
    let (other, other_token) = start_session(&ports, &ada, at).await;
    let checked = at + Duration::minutes(3);
    ports.sessions.second_factor_checked(session.id, checked).await.unwrap();
    let (found, _) = ports.sessions.find(&token.hash()).await.unwrap().unwrap();
    assert_eq!((found.enrolment_only, found.second_factor_at), (false, Some(checked)));
    ports.sessions.enrolment_required(session.id).await.unwrap();
    let (found, _) = ports.sessions.find(&token.hash()).await.unwrap().unwrap();
    assert_eq!((found.enrolment_only, found.second_factor_at), (true, None));
    let (untouched, _) = ports.sessions.find(&other_token.hash()).await.unwrap().unwrap();
    assert_eq!(untouched, other);
}

/// `count_live` counts only the user's sessions not past `expires_at` and
/// used since `idle_since`; `end_all` ends every session of the user (and
/// no other) and says how many.
pub async fn end_all_ends_every_session_of_the_user(ports: Ports) {
    let at = now(&ports);
    let ada = active(&ports, "ada@example.com", Role::User).await;
    let bob = active(&ports, "bob@example.com", Role::User).await;
    let (_, live) = start_session(&ports, &ada, at).await;
    let (idle, idle_token) = start_session(&ports, &ada, at - Duration::hours(3)).await;
    let (mut old, old_token) = new_session(&ports, &ada, at - Duration::hours(11));
    old.expires_at = at - Duration::minutes(1);
    old.last_seen_at = at - Duration::minutes(10);
    let audit = event(old.created_at, AuditAction::SignInSucceeded).target(&ada);
    ports.sessions.start(old, audit).await.unwrap();
    let (_, bobs) = start_session(&ports, &bob, at).await;

    assert_eq!(ports.sessions.count_live(ada.id, at, at - Duration::hours(2)).await.unwrap(), 1);
    assert_eq!(ports.sessions.count_live(ada.id, at, at - Duration::hours(4)).await.unwrap(), 2);
    ports.sessions.touch(idle.id, at - Duration::minutes(1)).await.unwrap();
    assert_eq!(ports.sessions.count_live(ada.id, at, at - Duration::hours(2)).await.unwrap(), 2);
    assert_eq!(ports.sessions.count_live(bob.id, at, at - Duration::hours(2)).await.unwrap(), 1);

    let audit = event(at, AuditAction::SessionsTerminated).target(&ada);
    assert_eq!(ports.sessions.end_all(ada.id, audit).await.unwrap(), 3);
    for token in [live, idle_token, old_token] {
        assert!(ports.sessions.find(&token.hash()).await.unwrap().is_none());
    }
    assert!(ports.sessions.find(&bobs.hash()).await.unwrap().is_some());
    assert_eq!(ports.sessions.count_live(ada.id, at, at - Duration::hours(4)).await.unwrap(), 0);
    let terminated = audit_about(&ports, ada.id).await;
    assert_eq!(
        terminated.iter().filter(|e| e.action == AuditAction::SessionsTerminated).count(),
        1
    );
}
