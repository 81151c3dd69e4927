//! [`OutboxRepository`](crate::mail::ports::OutboxRepository): claiming,
//! retrying and reading queued mail.

use chrono::Duration;

use super::fixtures::{audit_of, event, invite, now};
use crate::audit::models::AuditAction;
use crate::mail::models::MailState;
use crate::service::Ports;
use crate::users::models::Role;

/// `claim_due` hands out each due message once per lease: not again while
/// leased, again once the lease ran out; a failed attempt waits for its
/// retry time and counts; a sent message is never handed out again.
pub async fn claim_does_not_hand_a_message_twice_within_its_lease(ports: Ports) {
    let at = now(&ports);
    let ada = invite(&ports, "ada@example.com", Role::User).await;
    let bob = invite(&ports, "bob@example.com", Role::User).await;
    let lease = at + Duration::minutes(5);
    assert!(ports.outbox.claim_due(at - Duration::seconds(1), lease, 10).await.unwrap().is_empty());

    let first = ports.outbox.claim_due(at, lease, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    let second = ports.outbox.claim_due(at, lease, 10).await.unwrap();
    assert_eq!(second.len(), 1);
    let mut ids = vec![first[0].mail.id, second[0].mail.id];
    ids.sort();
    let mut expected = vec![ada.mail, bob.mail];
    expected.sort();
    assert_eq!(ids, expected);
    assert_eq!((first[0].attempts, second[0].attempts), (0, 0));
    assert!(ports.outbox.claim_due(at + Duration::minutes(1), lease, 10).await.unwrap().is_empty());

    let after_lease = lease + Duration::seconds(1);
    let reclaimed =
        ports.outbox.claim_due(after_lease, after_lease + Duration::minutes(5), 10).await.unwrap();
    assert_eq!(reclaimed.len(), 2);

    let retry_at = after_lease + Duration::minutes(10);
    ports
        .outbox
        .mark_attempt_failed(ada.mail, "421 try again later".into(), Some(retry_at))
        .await
        .unwrap();
    let sent_at = after_lease + Duration::seconds(2);
    ports.outbox.mark_sent(bob.mail, sent_at).await.unwrap();
    let entry = ports.outbox.entry(ada.mail).await.unwrap().unwrap();
    assert_eq!(
        (entry.state, entry.attempts, entry.next_attempt_at),
        (MailState::Queued, 1, retry_at)
    );
    assert_eq!(entry.last_error.as_deref(), Some("421 try again later"));
    let entry = ports.outbox.entry(bob.mail).await.unwrap().unwrap();
    assert_eq!((entry.state, entry.sent_at), (MailState::Sent, Some(sent_at)));

    let before_retry = retry_at - Duration::seconds(1);
    assert!(ports.outbox.claim_due(before_retry, retry_at, 10).await.unwrap().is_empty());
    let retried =
        ports.outbox.claim_due(retry_at, retry_at + Duration::minutes(5), 10).await.unwrap();
    assert_eq!(
        retried.iter().map(|m| (m.mail.id, m.attempts)).collect::<Vec<_>>(),
        vec![(ada.mail, 1)]
    );
    let much_later = retry_at + Duration::days(1);
    let none =
        ports.outbox.claim_due(much_later, much_later + Duration::minutes(5), 10).await.unwrap();
    assert!(none.iter().all(|m| m.mail.id != bob.mail));
}

/// A message given up on is failed; `requeue_failed` puts it back once
/// (attempts from zero, audited) and MUST answer `false`, changing nothing,
/// for a message that is not failed; `list` and `latest_for` show it.
pub async fn a_failed_message_is_requeued_once(ports: Ports) {
    let at = now(&ports);
    let ada = invite(&ports, "ada@example.com", Role::User).await;
    let bob = invite(&ports, "bob@example.com", Role::User).await;
    ports.outbox.claim_due(at, at + Duration::minutes(5), 10).await.unwrap();
    ports.outbox.mark_attempt_failed(ada.mail, "550 no such user".into(), None).await.unwrap();

    let failed = ports.outbox.list(Some(MailState::Failed), None, 10).await.unwrap();
    assert_eq!(failed.iter().map(|e| e.id).collect::<Vec<_>>(), vec![ada.mail]);
    let queued = ports.outbox.list(Some(MailState::Queued), None, 10).await.unwrap();
    assert_eq!(queued.iter().map(|e| e.id).collect::<Vec<_>>(), vec![bob.mail]);
    let all = ports.outbox.list(None, None, 10).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.windows(2).all(|w| (w[0].created_at, w[0].id) > (w[1].created_at, w[1].id)));
    let latest = ports.outbox.latest_for(ada.user.id, "invitation").await.unwrap().unwrap();
    assert_eq!((latest.id, latest.state, latest.attempts), (ada.mail, MailState::Failed, 1));
    assert_eq!(latest.recipient, "ada@example.com");
    assert!(ports.outbox.latest_for(ada.user.id, "password_reset").await.unwrap().is_none());

    let again = at + Duration::hours(1);
    let retried =
        ports.outbox.requeue_failed(ada.mail, again, event(again, AuditAction::MailRetried)).await;
    assert!(retried.unwrap());
    let entry = ports.outbox.entry(ada.mail).await.unwrap().unwrap();
    assert_eq!((entry.state, entry.attempts, entry.next_attempt_at), (MailState::Queued, 0, again));
    for id in [ada.mail, bob.mail, crate::record_id()] {
        let retried =
            ports.outbox.requeue_failed(id, again, event(again, AuditAction::MailRetried)).await;
        assert!(!retried.unwrap());
    }
    assert_eq!(audit_of(&ports, AuditAction::MailRetried).await.len(), 1);
    let claimed = ports.outbox.claim_due(again, again + Duration::minutes(5), 10).await.unwrap();
    assert!(claimed.iter().any(|m| m.mail.id == ada.mail && m.attempts == 0));
}
