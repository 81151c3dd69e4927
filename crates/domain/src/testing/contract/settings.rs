//! [`SettingsRepository`](crate::settings::ports::SettingsRepository) and
//! [`AuditLog`](crate::audit::ports::AuditLog).

use chrono::Duration;

use super::fixtures::{audit_of, ctx, email, event, now};
use crate::audit::models::{Actor, AuditAction, AuditEvent, Change};
use crate::audit::ports::{AuditCursor, AuditFilter};
use crate::mail::settings::{EmailSettings, SmtpPassword, SmtpSecurity, SmtpServer};
use crate::service::Ports;
use crate::users::models::{DisplayName, UserId};

/// The seat limit MUST tell "never set" (`None`) from "set to unlimited"
/// (`Some(None)`), and each change is stored with its audit event.
pub async fn seat_limit_tells_never_set_from_unlimited(ports: Ports) {
    let at = now(&ports);
    assert_eq!(ports.settings.seat_limit().await.unwrap(), None);
    ports.settings.set_seat_limit(Some(5), event(at, AuditAction::SeatLimitChanged)).await.unwrap();
    assert_eq!(ports.settings.seat_limit().await.unwrap(), Some(Some(5)));
    ports.settings.set_seat_limit(None, event(at, AuditAction::SeatLimitChanged)).await.unwrap();
    assert_eq!(ports.settings.seat_limit().await.unwrap(), Some(None));
    assert_eq!(audit_of(&ports, AuditAction::SeatLimitChanged).await.len(), 2);
}

/// The email settings read back are the ones saved last (none before),
/// SMTP password included; each save is audited.
pub async fn email_settings_read_back_as_saved(ports: Ports) {
    let at = now(&ports);
    assert_eq!(ports.settings.email_settings().await.unwrap(), None);
    let smtp = EmailSettings {
        smtp: Some(SmtpServer {
            host: "smtp.example.com".into(),
            port: 587,
            security: SmtpSecurity::Starttls,
            username: Some("mailer".into()),
            password: Some(SmtpPassword::parse("s3cret smtp password").unwrap()),
        }),
        from_address: email("No-Reply@Example.com"),
        from_name: DisplayName::parse("Example AI").unwrap(),
    };
    let audit = || event(at, AuditAction::EmailSettingsChanged);
    ports.settings.set_email_settings(&smtp, audit()).await.unwrap();
    assert_eq!(ports.settings.email_settings().await.unwrap(), Some(smtp));
    let files = EmailSettings {
        smtp: None,
        from_address: email("ai@example.org"),
        from_name: DisplayName::parse("Files").unwrap(),
    };
    ports.settings.set_email_settings(&files, audit()).await.unwrap();
    let read = ports.settings.email_settings().await.unwrap().unwrap();
    assert_eq!(read, files);
    assert_eq!(read.from_address.as_str(), "ai@example.org");
    assert_eq!(audit_of(&ports, AuditAction::EmailSettingsChanged).await.len(), 2);
}

/// Appended audit events read back newest first (time, then id, both
/// descending), strictly after the cursor, filtered by actor, action and
/// time (`from` inclusive, `to` exclusive), as they were written.
pub async fn audit_reads_newest_first(ports: Ports) {
    let t0 = now(&ports);
    let t1 = t0 + Duration::seconds(1);
    let someone = UserId::generate();
    let actor = Actor::User { id: someone, email: email("Someone@Example.com") };
    let failed = |at| {
        AuditEvent::new(at, Actor::Anonymous, AuditAction::SignInFailed, &ctx())
            .change(Change::detail("reason", "wrong_password"))
    };
    let mut first = failed(t0);
    first.target_email = Some("tried@example.com".into());
    first.context.ip = Some("192.0.2.7".into());
    // Three at the same instant, ids ascending, appended in neither id
    // order nor its reverse: only the id can order them.
    let low = failed(t1);
    let mid = failed(t1);
    let high = AuditEvent::new(t1, actor, AuditAction::SignInThrottled, &ctx());
    assert!(low.id < mid.id && mid.id < high.id);
    let last = failed(t0 + Duration::seconds(2));
    for e in [&last, &mid, &first, &low, &high] {
        ports.audit.append(e.clone()).await.unwrap();
    }
    let ids = |entries: &[crate::audit::models::AuditEntry]| -> Vec<uuid::Uuid> {
        entries.iter().map(|e| e.id).collect()
    };
    let all = ports.audit.list(&AuditFilter::default(), None, 10).await.unwrap();
    assert_eq!(ids(&all), vec![last.id, high.id, mid.id, low.id, first.id]);

    let page = ports.audit.list(&AuditFilter::default(), None, 2).await.unwrap();
    assert_eq!(ids(&page), vec![last.id, high.id]);
    let cursor = AuditCursor { at: page[1].at, id: page[1].id };
    let rest = ports.audit.list(&AuditFilter::default(), Some(cursor), 10).await.unwrap();
    assert_eq!(ids(&rest), vec![mid.id, low.id, first.id]);

    let by_action =
        AuditFilter { action: Some(AuditAction::SignInThrottled), ..AuditFilter::default() };
    assert_eq!(ids(&ports.audit.list(&by_action, None, 10).await.unwrap()), vec![high.id]);
    let by_actor = AuditFilter { actor: Some(someone), ..AuditFilter::default() };
    assert_eq!(ids(&ports.audit.list(&by_actor, None, 10).await.unwrap()), vec![high.id]);
    let window = AuditFilter {
        from: Some(t1),
        to: Some(t0 + Duration::seconds(2)),
        ..AuditFilter::default()
    };
    let in_window = ports.audit.list(&window, None, 10).await.unwrap();
    assert_eq!(ids(&in_window), vec![high.id, mid.id, low.id]);

    let read = all.iter().find(|e| e.id == first.id).unwrap();
    assert_eq!(
        (read.at, read.action, read.actor_kind.as_str()),
        (t0, AuditAction::SignInFailed, "anonymous")
    );
    assert_eq!(read.target_email.as_deref(), Some("tried@example.com"));
    assert_eq!(read.changes, first.changes);
    assert_eq!(read.context, first.context);
    let read = all.iter().find(|e| e.id == high.id).unwrap();
    assert_eq!(
        (read.actor_id, read.actor_email.as_deref()),
        (Some(someone), Some("Someone@Example.com"))
    );
}
