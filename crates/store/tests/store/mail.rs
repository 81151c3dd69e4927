//! The outbox's admin views and the email settings, on every database.

use std::sync::Arc;

use chrono::Duration;
use secureai_domain::mail::models::MailState;
use secureai_domain::mail::ports::OutboxRepository;
use secureai_domain::mail::settings::{EmailSettings, SmtpPassword, SmtpSecurity, SmtpServer};
use secureai_domain::settings::ports::SettingsRepository;
use secureai_domain::{
    Actor, AuditAction, AuditEvent, Clock, DisplayName, EmailAddress, Policy, RequestContext,
};

use crate::support::TestDb;
use crate::use_cases::{count, first_admin, invite};

pub async fn email_settings_are_stored_with_their_password_and_audited(db: TestDb) {
    assert_eq!(db.store.email_settings().await.unwrap(), None, "nothing saved yet");
    let settings = EmailSettings {
        smtp: Some(SmtpServer {
            host: "smtp.example.com".into(),
            port: 587,
            security: SmtpSecurity::Starttls,
            username: Some("it".into()),
            password: Some(SmtpPassword::parse("pässwörd with spaces").unwrap()),
        }),
        from_address: EmailAddress::parse("it@example.com").unwrap(),
        from_name: DisplayName::parse("IT Team").unwrap(),
    };
    let audit = |at| {
        AuditEvent::new(
            at,
            Actor::Operator,
            AuditAction::EmailSettingsChanged,
            &RequestContext::default(),
        )
    };
    let now = chrono::Utc::now();

    db.store.set_email_settings(&settings, audit(now)).await.unwrap();
    let files = EmailSettings { smtp: None, ..settings.clone() };
    let first = db.store.email_settings().await.unwrap();
    db.store.set_email_settings(&files, audit(now)).await.unwrap();

    assert_eq!(first, Some(settings));
    assert_eq!(db.store.email_settings().await.unwrap(), Some(files));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM audit_events").await, 2);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM settings").await, 1);
}

pub async fn a_failed_message_is_listed_requeued_once_and_found_for_its_user(db: TestDb) {
    let (service, clock) = db.service(Policy::default());
    let ctx = RequestContext::default();
    let admin = first_admin(&service).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let invited = service
            .invitations
            .invite_user(&admin, &invite(&format!("u{n}@example.com")), &ctx)
            .await
            .unwrap();
        ids.push(invited.user.id);
        clock.advance(Duration::seconds(1));
    }
    let now = clock.now();
    let claimed = db.store.claim_due(now, now + Duration::minutes(5), 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let failing = claimed.iter().find(|q| q.mail.user_id == Some(ids[1])).unwrap().mail.id;
    db.store.mark_attempt_failed(failing, "550 no such mailbox".into(), None).await.unwrap();

    let failed = db.store.list(Some(MailState::Failed), None, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!((failed[0].id, failed[0].attempts), (failing, 1));
    assert_eq!(failed[0].last_error.as_deref(), Some("550 no such mailbox"));
    let latest = db.store.latest_for(ids[1], "invitation").await.unwrap().unwrap();
    assert_eq!((latest.id, latest.state), (failing, MailState::Failed));
    assert_eq!(db.store.latest_for(ids[1], "password_reset").await.unwrap(), None);
    // Newest first, paged by (created, id).
    let all = db.store.list(None, None, 2).await.unwrap();
    assert_eq!(all.iter().map(|e| e.user_id).collect::<Vec<_>>(), [Some(ids[2]), Some(ids[1])]);
    let rest = db.store.list(None, Some((all[1].created_at, all[1].id)), 2).await.unwrap();
    assert_eq!(rest.iter().map(|e| e.user_id).collect::<Vec<_>>(), [Some(ids[0])]);

    // Two admins retry at once: it is queued once, audited once.
    let store = Arc::new(db.store.clone());
    let retry = |store: Arc<secureai_store::SqlStore>| async move {
        let audit = AuditEvent::new(
            now,
            Actor::Operator,
            AuditAction::MailRetried,
            &RequestContext::default(),
        );
        store.requeue_failed(failing, now, audit).await.unwrap()
    };
    let (a, b) = tokio::join!(retry(store.clone()), retry(store.clone()));
    assert!(a ^ b, "exactly one retry took effect: {a} {b}");
    let entry = db.store.entry(failing).await.unwrap().unwrap();
    assert_eq!((entry.state, entry.attempts), (MailState::Queued, 0));
    let retried =
        count(&db, "SELECT COUNT(*) FROM audit_events WHERE action = 'mail.retried'").await;
    assert_eq!(retried, 1);
    let queued_sent = db.store.list(Some(MailState::Sent), None, 10).await.unwrap();
    assert!(queued_sent.is_empty());
}

on_every_database!(
    email_settings_are_stored_with_their_password_and_audited,
    a_failed_message_is_listed_requeued_once_and_found_for_its_user,
);
