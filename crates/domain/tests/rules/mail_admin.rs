//! Settings > Email and the outbox's admin views, on the in-memory store:
//! the saved settings win over the configured ones and apply to the next
//! message; the password is kept, carried only to its own server and never
//! audited; test messages report the server's answer; failed messages are
//! retried once.

use std::sync::Arc;

use secureai_domain::AuditAction;
use secureai_domain::mail::admin::{RetryMailError, TestEmailError};
use secureai_domain::mail::models::MailState;
use secureai_domain::mail::ports::DeliveryError;
use secureai_domain::mail::service::{DeliveryPolicy, OutboxDelivery};
use secureai_domain::mail::settings::{
    EmailSettingsUpdate, PasswordChange, SettingsSource, SmtpPassword, SmtpSecurity,
    SmtpServerUpdate,
};
use secureai_domain::testing::RecordingTransport;
use secureai_domain::{DisplayName, EmailAddress};

use crate::kit::{active_user, audit_of, ctx, invite, with_admin};

const SECRET: &str = "hunter2-smtp-secret";

fn smtp(host: &str, password: PasswordChange) -> EmailSettingsUpdate {
    EmailSettingsUpdate {
        smtp: Some(SmtpServerUpdate {
            host: host.into(),
            port: 587,
            security: SmtpSecurity::Starttls,
            username: Some("it".into()),
            password,
        }),
        from_address: EmailAddress::parse("it@example.com").unwrap(),
        from_name: DisplayName::parse("IT Team").unwrap(),
    }
}

fn set(password: &str) -> PasswordChange {
    PasswordChange::Set(SmtpPassword::parse(password).unwrap())
}

#[tokio::test]
async fn saved_settings_replace_the_configured_ones_and_keep_the_password() {
    let (kit, admin) = with_admin().await;
    let (initial, source) = kit.service.mail.email_settings(&admin).await.unwrap();
    assert_eq!((initial.smtp.is_none(), source), (true, SettingsSource::Configuration));

    kit.service
        .mail
        .update_email_settings(&admin, smtp("smtp.example.com", set(SECRET)), &ctx())
        .await
        .unwrap();
    let (kept, source) = kit
        .service
        .mail
        .update_email_settings(&admin, smtp("smtp.example.com", PasswordChange::Keep), &ctx())
        .await
        .unwrap();

    assert_eq!(source, SettingsSource::Saved);
    assert_eq!(kept.smtp.unwrap().password.unwrap().expose(), SECRET);
    let events = audit_of(&kit, AuditAction::EmailSettingsChanged);
    assert_eq!(events.len(), 2);
    let first = &events[0];
    assert!(
        first.changes.iter().any(|c| c.field == "server"
            && c.after.as_deref() == Some("smtp.example.com:587 (starttls)"))
    );
    assert!(
        first
            .changes
            .iter()
            .any(|c| c.field == "password" && c.after.as_deref() == Some("changed"))
    );
    assert!(!events[1].changes.iter().any(|c| c.field == "password"), "kept: no password change");
    assert!(!format!("{events:?}").contains(SECRET), "never audited");
}

#[tokio::test]
async fn the_next_delivery_uses_settings_saved_after_the_start() {
    let (kit, admin) = with_admin().await;
    let transport = Arc::new(RecordingTransport::default());
    let delivery = OutboxDelivery::new(
        kit.store.clone(),
        kit.store.clone(),
        transport.clone(),
        kit.clock.clone(),
        DeliveryPolicy::default(),
    );
    kit.service
        .invitations
        .invite_user(&admin, &invite("first@example.com", "user"), &ctx())
        .await
        .unwrap();
    delivery.deliver_due().await.unwrap();
    kit.service
        .mail
        .update_email_settings(&admin, smtp("smtp.example.com", set(SECRET)), &ctx())
        .await
        .unwrap();
    kit.service
        .invitations
        .invite_user(&admin, &invite("second@example.com", "user"), &ctx())
        .await
        .unwrap();
    delivery.deliver_due().await.unwrap();

    let sent = transport.sent_with_settings();
    assert_eq!(sent.len(), 2);
    assert!(sent[0].0.smtp.is_none(), "configured: files");
    assert_eq!(sent[1].0.smtp.as_ref().unwrap().host, "smtp.example.com");
    assert_eq!(sent[1].0.from_name.to_string(), "IT Team");
}

#[tokio::test]
async fn a_test_email_goes_to_the_calling_admin_and_reports_the_answer() {
    let (kit, admin) = with_admin().await;

    let answer = kit.service.mail.send_test_email(&admin, &ctx()).await.unwrap();
    kit.transport
        .fail_with(Some(DeliveryError::Permanent("the mail server refused the login".into())));
    let refused = kit.service.mail.send_test_email(&admin, &ctx()).await;

    assert!(answer.starts_with("250"), "{answer}");
    let sent = kit.transport.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, admin.user().email);
    assert_eq!(sent[0].message.kind(), "test");
    assert!(
        matches!(&refused, Err(TestEmailError::NotDelivered(why)) if why.contains("refused the login"))
    );
    let audited = audit_of(&kit, AuditAction::EmailTested);
    let outcomes: Vec<_> = audited
        .iter()
        .flat_map(|e| e.changes.iter().filter(|c| c.field == "outcome"))
        .map(|c| c.after.clone().unwrap_or_default())
        .collect();
    assert_eq!(outcomes, ["delivered", "not delivered"]);
    assert!(kit.store.state().outbox.iter().all(|m| m.mail.message.kind() != "test"), "not queued");
}

#[tokio::test]
async fn only_a_failed_message_can_be_retried_and_it_starts_over() {
    let (kit, admin) = with_admin().await;
    let invited = kit
        .service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();
    let transport = Arc::new(RecordingTransport::default());
    transport.fail_with(Some(DeliveryError::Permanent("550 no such mailbox".into())));
    let delivery = OutboxDelivery::new(
        kit.store.clone(),
        kit.store.clone(),
        transport.clone(),
        kit.clock.clone(),
        DeliveryPolicy::default(),
    );
    let id = kit.store.state().outbox[0].mail.id;
    let queued = kit.service.mail.retry_mail(&admin, id, &ctx()).await;
    assert!(matches!(queued, Err(RetryMailError::NotFailed("queued"))));

    delivery.deliver_due().await.unwrap();
    let profile = kit.service.user_profile(&admin, invited.user.id).await.unwrap();
    let email = profile.invitation_email.unwrap();
    assert_eq!(
        (email.state, email.last_error.as_deref()),
        (MailState::Failed, Some("permanent delivery failure: 550 no such mailbox"))
    );

    let retried = kit.service.mail.retry_mail(&admin, id, &ctx()).await.unwrap();
    assert_eq!((retried.state, retried.attempts), (MailState::Queued, 0));
    transport.fail_with(None);
    delivery.deliver_due().await.unwrap();
    assert_eq!(transport.sent().len(), 1);
    let profile = kit.service.user_profile(&admin, invited.user.id).await.unwrap();
    assert_eq!(profile.invitation_email.unwrap().state, MailState::Sent);
    assert!(matches!(
        kit.service.mail.retry_mail(&admin, uuid::Uuid::new_v4(), &ctx()).await,
        Err(RetryMailError::NotFound)
    ));
    assert_eq!(audit_of(&kit, AuditAction::MailRetried).len(), 1);
    let failed = kit.service.mail.outbox(&admin, Some(MailState::Failed), None, 50).await.unwrap();
    assert!(failed.is_empty());
    assert!(kit.service.mail.outbox(&admin, None, None, 0).await.is_err(), "page size checked");
}

/// Settings › Email's "Retry all": every failed message goes back in the
/// queue (each audited), queued and sent ones are left alone, and the
/// profile shows a failed reset email with the server's answer.
#[tokio::test]
async fn retry_all_requeues_every_failed_message_and_the_profile_shows_the_reset_email() {
    let (kit, admin) = with_admin().await;
    let ada = active_user(&kit, &admin, "ada@example.com", "user", "ada's own password").await;
    for email in ["bob@example.com", "cyd@example.com"] {
        kit.service.invitations.invite_user(&admin, &invite(email, "user"), &ctx()).await.unwrap();
    }
    let transport = Arc::new(RecordingTransport::default());
    let delivery = OutboxDelivery::new(
        kit.store.clone(),
        kit.store.clone(),
        transport.clone(),
        kit.clock.clone(),
        DeliveryPolicy::default(),
    );
    delivery.deliver_due().await.unwrap();
    let sent_before = transport.sent().len();
    transport.fail_with(Some(DeliveryError::Permanent("550 mailbox unavailable".into())));
    kit.service.passwords.request_password_reset(&admin, ada, &ctx()).await.unwrap();
    for email in ["dee@example.com", "eve@example.com"] {
        kit.service.invitations.invite_user(&admin, &invite(email, "user"), &ctx()).await.unwrap();
    }
    delivery.deliver_due().await.unwrap();
    let profile = kit.service.user_profile(&admin, ada).await.unwrap();
    let reset = profile.reset_email.expect("the reset email is on the profile");
    assert_eq!(reset.state, MailState::Failed);
    assert!(reset.last_error.unwrap().contains("550 mailbox unavailable"));
    let failed = kit.service.mail.outbox(&admin, Some(MailState::Failed), None, 50).await.unwrap();
    assert_eq!(failed.len(), 3);

    transport.fail_with(None);
    assert_eq!(kit.service.mail.retry_all_failed(&admin, &ctx()).await.unwrap(), 3);
    assert_eq!(audit_of(&kit, AuditAction::MailRetried).len(), 3);
    assert_eq!(kit.service.mail.retry_all_failed(&admin, &ctx()).await.unwrap(), 0);
    delivery.deliver_due().await.unwrap();
    assert_eq!(transport.sent().len(), sent_before + 3, "each retried message sent once");
    let profile = kit.service.user_profile(&admin, ada).await.unwrap();
    assert_eq!(profile.reset_email.unwrap().state, MailState::Sent);
}
