//! The domain's use cases, end to end over the real store.

use chrono::Duration;
use sea_orm::{ConnectionTrait, Statement};
use secrecy::SecretString;
use secureai_domain::access::Admin;
use secureai_domain::invitations::errors::AcceptInvitationError;
use secureai_domain::invitations::service::InviteRequest;
use secureai_domain::mail::models::MailMessage;
use secureai_domain::mail::ports::OutboxRepository;
use secureai_domain::sessions::errors::{AuthenticateError, SignInError};
use secureai_domain::users::errors::InviteUserError;
use secureai_domain::users::listing::ListUsersRequest;
use secureai_domain::{
    Clock, PlainToken, Policy, RequestContext, Role, UserManagement, UserStatus,
};

use crate::support::TestDb;

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

pub async fn count(db: &TestDb, sql: &str) -> i64 {
    let backend = db.store.connection().get_database_backend();
    let row = db
        .store
        .connection()
        .query_one_raw(Statement::from_string(backend, sql.to_owned()))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// Runs setup and signs the first admin in: as admins need a second
/// factor, they set up an authenticator app, then make second factors
/// optional (Settings › Security, stored in the database under test) so
/// that the admins these tests add sign in with a password alone.
pub async fn first_admin(service: &UserManagement) -> Admin {
    let ctx = RequestContext::default();
    let token = service.setup.prepare_setup().await.unwrap().expect("fresh instance issues a link");
    service
        .setup
        .complete_setup(
            &token,
            "root@example.com",
            "Root Admin",
            secret("a long admin passphrase"),
            &ctx,
        )
        .await
        .unwrap();
    let signed_in = service
        .sessions
        .sign_in("ROOT@example.com", &secret("a long admin passphrase"), &ctx)
        .await
        .unwrap();
    let admin = enrol(service, &signed_in).await;
    let optional = secureai_domain::mfa::policy::SecurityPolicy {
        admin_mfa: secureai_domain::mfa::policy::AdminMfa::Optional,
        user_mfa: secureai_domain::mfa::policy::UserMfa::Optional,
    };
    let saved = service.mfa.set_security_policy(&admin, optional, &ctx).await.unwrap();
    assert_eq!(service.mfa.security_policy().await.unwrap(), saved, "read back from the store");
    let principal = service.sessions.authenticate(&signed_in.token).await.unwrap();
    assert!(!service.mfa.remove_totp(&principal, &ctx).await.unwrap());
    admin
}

/// An admin's session that may only set up a second factor sets up an
/// authenticator app (its code computed as the app would): the session's
/// admin capability.
pub async fn enrol(
    service: &UserManagement,
    signed_in: &secureai_domain::sessions::models::SignedIn,
) -> Admin {
    let ctx = RequestContext::default();
    assert!(signed_in.session.enrolment_only);
    let enrolling = service.sessions.authenticate_for_enrolment(&signed_in.token).await.unwrap();
    let setup = service.mfa.start_totp(enrolling.user()).await.unwrap();
    let bytes = totp_rs::Secret::Encoded(setup.secret.expose_base32().to_owned()).to_bytes();
    let app = totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes.unwrap(),
        None,
        String::new(),
    );
    // The session started now (the service's clock).
    let now = signed_in.session.created_at.timestamp().unsigned_abs();
    service.mfa.confirm_totp(&enrolling, &app.generate(now), &ctx).await.unwrap();
    service.sessions.authenticate(&signed_in.token).await.unwrap().admin().unwrap()
}

pub fn invite(email: &str) -> InviteRequest {
    InviteRequest {
        email: email.to_owned(),
        name: format!("Name of {email}"),
        role: "user".to_owned(),
        department: Some("Research".to_owned()),
        sign_in: None,
    }
}

pub async fn a_newcomer_sets_up_invites_and_the_invited_user_signs_in(db: TestDb) {
    let (service, _clock) = db.service(Policy::default());
    let ctx = RequestContext::default();
    let admin = first_admin(&service).await;

    let invited =
        service.invitations.invite_user(&admin, &invite("Grace@Example.com"), &ctx).await.unwrap();
    assert_eq!(invited.user.status(), UserStatus::Invited);

    let now = service_now(&service);
    let queued = db.store.claim_due(now, now + Duration::minutes(5), 10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].mail.to.as_str(), "Grace@Example.com");
    let MailMessage::Invitation { token, .. } = &queued[0].mail.message else {
        panic!("expected an invitation, got {:?}", queued[0].mail.message.kind());
    };
    let token = PlainToken::presented(token.expose());

    let user = service
        .invitations
        .accept_invitation(&token, secret("grace's own secret"), &ctx)
        .await
        .unwrap();
    assert_eq!(user.status(), UserStatus::Active);
    let signed_in = service
        .sessions
        .sign_in("grace@example.com", &secret("grace's own secret"), &ctx)
        .await
        .unwrap();
    let principal = service.sessions.authenticate(&signed_in.token).await.unwrap();
    assert_eq!(principal.user().role, Role::User);
    assert!(principal.admin().is_err());
    assert!(principal.user().last_login_at.is_some());

    // Rule 13: each step left its audit record.
    for action in ["setup.completed", "user.invited", "invitation.accepted", "sign_in.succeeded"] {
        let sql = format!("SELECT COUNT(*) FROM audit_events WHERE action = '{action}'");
        assert!(count(&db, &sql).await >= 1, "no audit event {action}");
    }
    // No secret in the audit log.
    let leaks = count(
        &db,
        "SELECT COUNT(*) FROM audit_events WHERE changes LIKE '%secret%' OR changes LIKE '%passphrase%'",
    )
    .await;
    assert_eq!(leaks, 0);
}

fn service_now(_service: &UserManagement) -> chrono::DateTime<chrono::Utc> {
    // The fake clock starts here and the tests above do not move it.
    secureai_domain::testing::FakeClock::new().now()
}

pub async fn an_email_taken_in_another_case_is_refused_and_nothing_is_written(db: TestDb) {
    let (service, _clock) = db.service(Policy::default());
    let ctx = RequestContext::default();
    let admin = first_admin(&service).await;
    service.invitations.invite_user(&admin, &invite("ada@example.com"), &ctx).await.unwrap();

    let again = service.invitations.invite_user(&admin, &invite("  ADA@EXAMPLE.COM "), &ctx).await;

    assert!(matches!(again, Err(InviteUserError::EmailTaken)));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users").await, 2);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM invitations").await, 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM outbox").await, 1);
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM audit_events WHERE action = 'user.invited'").await,
        1
    );
}

pub async fn an_invitation_expires_after_72_hours_and_works_once(db: TestDb) {
    let (service, clock) = db.service(Policy::default());
    let ctx = RequestContext::default();
    let admin = first_admin(&service).await;
    let late =
        service.invitations.invite_user(&admin, &invite("late@example.com"), &ctx).await.unwrap();
    let prompt =
        service.invitations.invite_user(&admin, &invite("prompt@example.com"), &ctx).await.unwrap();

    clock.advance(Duration::hours(71) + Duration::minutes(59));
    service
        .invitations
        .accept_invitation(&prompt.token, secret("prompt password 1"), &ctx)
        .await
        .unwrap();
    let reused = service
        .invitations
        .accept_invitation(&prompt.token, secret("prompt password 2"), &ctx)
        .await;
    assert!(matches!(reused, Err(AcceptInvitationError::Invalid)));

    clock.advance(Duration::minutes(1));
    let expired =
        service.invitations.accept_invitation(&late.token, secret("late password 1"), &ctx).await;
    assert!(
        matches!(expired, Err(AcceptInvitationError::Expired { expired_at }) if expired_at == late.invitation.expires_at)
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users WHERE status = 'invited'").await, 1);
}

pub async fn sign_in_failures_look_alike_and_are_audited(db: TestDb) {
    let (service, _clock) = db.service(Policy::default());
    let ctx = RequestContext::default();
    let admin = first_admin(&service).await;
    service.invitations.invite_user(&admin, &invite("pending@example.com"), &ctx).await.unwrap();

    let unknown =
        service.sessions.sign_in("nobody@example.com", &secret("whatever123"), &ctx).await;
    let wrong =
        service.sessions.sign_in("root@example.com", &secret("not the password"), &ctx).await;
    let invited =
        service.sessions.sign_in("pending@example.com", &secret("whatever123"), &ctx).await;

    for outcome in [unknown, wrong, invited] {
        assert!(matches!(outcome, Err(SignInError::InvalidCredentials)));
    }
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM audit_events WHERE action = 'sign_in.failed'").await,
        3
    );
}

pub async fn a_deactivated_user_cannot_sign_in_and_their_session_stops_working(db: TestDb) {
    let (service, _clock) = db.service(Policy::default());
    let ctx = RequestContext::default();
    let admin = first_admin(&service).await;
    let invited =
        service.invitations.invite_user(&admin, &invite("leaver@example.com"), &ctx).await.unwrap();
    service
        .invitations
        .accept_invitation(&invited.token, secret("leaver password"), &ctx)
        .await
        .unwrap();
    let session = service
        .sessions
        .sign_in("leaver@example.com", &secret("leaver password"), &ctx)
        .await
        .unwrap();

    let backend = db.store.connection().get_database_backend();
    db.store
        .connection()
        .execute_raw(Statement::from_string(
            backend,
            "UPDATE users SET status = 'deactivated', deactivated_at = 1 WHERE email_key = 'leaver@example.com'",
        ))
        .await
        .unwrap();

    assert!(matches!(
        service.sessions.authenticate(&session.token).await,
        Err(AuthenticateError::Unauthenticated)
    ));
    let again =
        service.sessions.sign_in("leaver@example.com", &secret("leaver password"), &ctx).await;
    assert!(matches!(again, Err(SignInError::AccountDeactivated)));
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM sessions").await,
        1,
        "only the admin's session is left"
    );
}

pub async fn signing_out_ends_the_session(db: TestDb) {
    let (service, _clock) = db.service(Policy::default());
    let ctx = RequestContext::default();
    first_admin(&service).await;
    let signed_in = service
        .sessions
        .sign_in("root@example.com", &secret("a long admin passphrase"), &ctx)
        .await
        .unwrap();
    let principal = service.sessions.authenticate(&signed_in.token).await.unwrap();

    service.sessions.sign_out(&principal, &ctx).await.unwrap();

    assert!(matches!(
        service.sessions.authenticate(&signed_in.token).await,
        Err(AuthenticateError::Unauthenticated)
    ));
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM audit_events WHERE action = 'session.signed_out'").await,
        1
    );
}

pub async fn an_idle_session_expires(db: TestDb) {
    let (service, clock) = db.service(Policy::default());
    let ctx = RequestContext::default();
    first_admin(&service).await;
    let signed_in = service
        .sessions
        .sign_in("root@example.com", &secret("a long admin passphrase"), &ctx)
        .await
        .unwrap();

    clock.advance(Duration::minutes(90));
    service.sessions.authenticate(&signed_in.token).await.unwrap();
    clock.advance(Duration::minutes(119));
    service.sessions.authenticate(&signed_in.token).await.unwrap();
    clock.advance(Duration::minutes(121));

    assert!(matches!(
        service.sessions.authenticate(&signed_in.token).await,
        Err(AuthenticateError::Unauthenticated)
    ));
}

pub async fn users_are_listed_page_by_page_in_creation_order(db: TestDb) {
    let (service, clock) = db.service(Policy::default());
    let ctx = RequestContext::default();
    let admin = first_admin(&service).await;
    for i in 0..6 {
        clock.advance(Duration::seconds(1));
        service
            .invitations
            .invite_user(&admin, &invite(&format!("u{i}@example.com")), &ctx)
            .await
            .unwrap();
    }

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = service
            .users
            .list_users(
                &admin,
                &ListUsersRequest { limit: Some(3), cursor: cursor.clone(), ..Default::default() },
            )
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|u| u.email.to_string()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }

    let expected: Vec<String> = std::iter::once("root@example.com".to_owned())
        .chain((0..6).map(|i| format!("u{i}@example.com")))
        .collect();
    assert_eq!(seen, expected);
}

pub async fn erasing_a_user_anonymises_them_everywhere_but_keeps_ids_and_counts(db: TestDb) {
    use secureai_domain::users::errors::EraseUserError;
    let (service, _clock) = db.service(Policy::default());
    let ctx = RequestContext::default();
    let admin = first_admin(&service).await;
    let invited = service
        .invitations
        .invite_user(&admin, &invite("Gone.Person@example.com"), &ctx)
        .await
        .unwrap();
    service
        .invitations
        .accept_invitation(&invited.token, secret("gone person pw"), &ctx)
        .await
        .unwrap();
    service
        .sessions
        .sign_in("gone.person@example.com", &secret("gone person pw"), &ctx)
        .await
        .unwrap();
    let _ =
        service.sessions.sign_in("gone.person@example.com", &secret("a wrong guess"), &ctx).await;

    let erased =
        service.users.erase_user_as_operator("GONE.PERSON@example.com", &ctx).await.unwrap();

    assert_eq!(erased.id, invited.user.id);
    assert_eq!(erased.status(), UserStatus::Deactivated);
    for (table, column) in [
        ("users", "email"),
        ("users", "name"),
        ("users", "search_text"),
        ("audit_events", "target_email"),
        ("audit_events", "actor_email"),
        ("audit_events", "changes"),
        ("outbox", "recipient"),
        ("user_search_terms", "term"),
    ] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE LOWER({column}) LIKE '%gone%'");
        assert_eq!(count(&db, &sql).await, 0, "{table}.{column} still names the person");
    }
    let id = invited.user.id;
    assert!(
        count(&db, &format!("SELECT COUNT(*) FROM audit_events WHERE target_id = '{id}'")).await
            >= 4
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM audit_events WHERE action = 'user.erased'").await,
        1
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM sessions").await, 1, "only the admin's");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users WHERE password_hash IS NOT NULL").await, 1);
    let again =
        service.sessions.sign_in(erased.email.as_str(), &secret("gone person pw"), &ctx).await;
    assert!(again.is_err());
    // The last admin is refused.
    let last = service.users.erase_user_as_operator("root@example.com", &ctx).await;
    assert!(matches!(last, Err(EraseUserError::LastAdmin)));
}

pub async fn a_session_sees_changes_committed_elsewhere_at_once(db: TestDb) {
    // On SQLite the lookup runs through its own synchronous connections
    // (see the store's sqlite_reads module); the changes below are made
    // through the pool, as another request or process would make them.
    assert_eq!(
        db.store.resolves_sessions_synchronously(),
        db.store.backend() == sea_orm::DbBackend::Sqlite
    );
    let (service, _clock) = db.service(Policy::default());
    let ctx = RequestContext::default();
    let admin = first_admin(&service).await;
    let invited =
        service.invitations.invite_user(&admin, &invite("mover@example.com"), &ctx).await.unwrap();
    service
        .invitations
        .accept_invitation(&invited.token, secret("mover password"), &ctx)
        .await
        .unwrap();
    let session = service
        .sessions
        .sign_in("mover@example.com", &secret("mover password"), &ctx)
        .await
        .unwrap();
    let before = service.sessions.authenticate(&session.token).await.unwrap();
    assert_eq!(before.user().role, Role::User);
    assert_eq!(before.user().name.to_string(), "Name of mover@example.com");

    let backend = db.store.backend();
    let run = |sql: &'static str| {
        let connection = db.store.connection().clone();
        async move {
            connection.execute_raw(Statement::from_string(backend, sql)).await.unwrap();
        }
    };
    run("UPDATE users SET role = 'admin', name = 'Mover Renamed' \
         WHERE email_key = 'mover@example.com'")
    .await;
    let after = service.sessions.authenticate(&session.token).await.unwrap();
    assert_eq!(after.user().role, Role::Admin);
    assert_eq!(after.user().name.to_string(), "Mover Renamed");

    run("DELETE FROM sessions WHERE user_id IN \
         (SELECT id FROM users WHERE email_key = 'mover@example.com')")
    .await;
    assert!(matches!(
        service.sessions.authenticate(&session.token).await,
        Err(AuthenticateError::Unauthenticated)
    ));
}

on_every_database!(
    a_session_sees_changes_committed_elsewhere_at_once,
    erasing_a_user_anonymises_them_everywhere_but_keeps_ids_and_counts,
    a_newcomer_sets_up_invites_and_the_invited_user_signs_in,
    an_email_taken_in_another_case_is_refused_and_nothing_is_written,
    an_invitation_expires_after_72_hours_and_works_once,
    sign_in_failures_look_alike_and_are_audited,
    a_deactivated_user_cannot_sign_in_and_their_session_stops_working,
    signing_out_ends_the_session,
    an_idle_session_expires,
    users_are_listed_page_by_page_in_creation_order,
);
