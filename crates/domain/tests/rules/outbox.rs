//! Delivering the outbox: queued mail goes out once, transient failures are
//! retried with exponential back-off, hopeless ones are given up, and a
//! message leased to one round is not taken by another.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::Duration;
use secureai_domain::Clock;
use secureai_domain::mail::models::{MailMessage, OutgoingMail};
use secureai_domain::mail::ports::{DeliveryError, MailTransport};
use secureai_domain::mail::service::{DeliveryPolicy, DeliveryReport, OutboxDelivery};
use secureai_domain::mail::settings::EmailSettings;
use secureai_domain::testing::{RecordingTransport, StoredMail, TestKit};
use tokio::sync::Notify;

use crate::kit::{ctx, invite, with_admin};

fn delivery(
    kit: &TestKit,
    transport: Arc<dyn MailTransport>,
    policy: DeliveryPolicy,
) -> OutboxDelivery {
    OutboxDelivery::new(kit.store.clone(), kit.store.clone(), transport, kit.clock.clone(), policy)
}

/// A kit with one invitation mail queued to ada@example.com.
async fn with_queued_invitation() -> TestKit {
    let (kit, admin) = with_admin().await;
    kit.service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();
    kit
}

fn the_mail(kit: &TestKit) -> StoredMail {
    let state = kit.store.state();
    assert_eq!(state.outbox.len(), 1);
    state.outbox[0].clone()
}

fn transient() -> DeliveryError {
    DeliveryError::Transient("connection refused".into())
}

#[tokio::test]
async fn a_queued_invitation_is_delivered_and_marked_sent() {
    let kit = with_queued_invitation().await;
    let transport = Arc::new(RecordingTransport::default());
    let outbox = delivery(&kit, transport.clone(), DeliveryPolicy::default());

    let report = outbox.deliver_due().await.unwrap();

    assert_eq!(report, DeliveryReport { sent: 1, retrying: 0, failed: 0 });
    let sent = transport.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to.as_str(), "ada@example.com");
    assert!(matches!(sent[0].message, MailMessage::Invitation { .. }));
    let stored = the_mail(&kit);
    assert_eq!(stored.sent_at, Some(kit.clock.now()));
    assert_eq!((stored.leased_until, stored.failed), (None, false));
}

#[tokio::test]
async fn a_delivered_mail_is_never_sent_twice() {
    let kit = with_queued_invitation().await;
    let transport = Arc::new(RecordingTransport::default());
    let outbox = delivery(&kit, transport.clone(), DeliveryPolicy::default());
    outbox.deliver_due().await.unwrap();
    kit.clock.advance(Duration::days(1));

    let second = outbox.deliver_due().await.unwrap();

    assert_eq!(second, DeliveryReport::default());
    assert_eq!(transport.sent().len(), 1);
}

#[tokio::test]
async fn a_transient_failure_is_retried_after_an_exponential_back_off() {
    let kit = with_queued_invitation().await;
    let transport = Arc::new(RecordingTransport::default());
    let outbox = delivery(&kit, transport.clone(), DeliveryPolicy::default());
    transport.fail_with(Some(transient()));
    let start = kit.clock.now();
    let id = the_mail(&kit).mail.id;

    let first = outbox.deliver_due().await.unwrap();
    let after_first = the_mail(&kit);
    let first_delay = after_first.next_attempt_at - start;
    kit.clock.advance(first_delay - Duration::seconds(1));
    let too_early = outbox.deliver_due().await.unwrap();
    kit.clock.advance(Duration::seconds(1));
    let second = outbox.deliver_due().await.unwrap();
    let after_second = the_mail(&kit);
    let second_delay = after_second.next_attempt_at - after_first.next_attempt_at;

    assert_eq!(first, DeliveryReport { sent: 0, retrying: 1, failed: 0 });
    assert_eq!(after_first.attempts, 1);
    assert_eq!(first_delay, outbox.retry_delay(id, 0));
    assert!(
        first_delay >= Duration::seconds(15) && first_delay <= Duration::seconds(30),
        "first retry jittered within half to all of 30 s: {first_delay}"
    );
    assert_eq!(
        after_first.last_error.as_deref(),
        Some("temporary delivery failure: connection refused")
    );
    assert_eq!(too_early, DeliveryReport::default());
    assert_eq!(second.retrying, 1);
    assert_eq!(after_second.attempts, 2);
    assert_eq!(second_delay, outbox.retry_delay(id, 1));
    assert!(
        second_delay >= Duration::seconds(30) && second_delay <= Duration::seconds(60),
        "the ceiling doubled: {second_delay}"
    );
    assert_eq!((after_second.sent_at, after_second.failed), (None, false));
    assert!(transport.sent().is_empty());
}

#[tokio::test]
async fn retries_of_messages_that_failed_together_are_spread_out() {
    let kit = TestKit::new();
    let outbox = delivery(&kit, Arc::new(RecordingTransport::default()), DeliveryPolicy::default());
    let delays: Vec<Duration> =
        (0..200).map(|_| outbox.retry_delay(uuid::Uuid::new_v4(), 3)).collect();
    let ceiling = outbox.backoff(3);
    assert_eq!(ceiling, Duration::seconds(240));
    assert!(delays.iter().all(|d| *d >= ceiling / 2 && *d <= ceiling));
    let mut distinct = delays.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() > 150, "only {} distinct delays of 200", distinct.len());
    let early = delays.iter().filter(|d| **d < ceiling * 3 / 4).count();
    assert!((60..=140).contains(&early), "{early} of 200 in the lower half of the range");
}

#[tokio::test]
async fn a_retried_mail_is_sent_once_its_next_attempt_is_due() {
    let kit = with_queued_invitation().await;
    let transport = Arc::new(RecordingTransport::default());
    let outbox = delivery(&kit, transport.clone(), DeliveryPolicy::default());
    transport.fail_with(Some(transient()));
    outbox.deliver_due().await.unwrap();
    transport.fail_with(None);
    let due = the_mail(&kit).next_attempt_at;
    kit.clock.advance(due - kit.clock.now());

    let report = outbox.deliver_due().await.unwrap();

    assert_eq!(report.sent, 1);
    assert_eq!(transport.sent().len(), 1);
    assert_eq!(the_mail(&kit).sent_at, Some(due));
}

#[tokio::test]
async fn a_permanent_failure_gives_the_mail_up_at_once() {
    let kit = with_queued_invitation().await;
    let transport = Arc::new(RecordingTransport::default());
    let outbox = delivery(&kit, transport.clone(), DeliveryPolicy::default());
    transport.fail_with(Some(DeliveryError::Permanent("550 no such mailbox".into())));

    let report = outbox.deliver_due().await.unwrap();
    transport.fail_with(None);
    kit.clock.advance(Duration::days(1));
    let later = outbox.deliver_due().await.unwrap();

    assert_eq!(report, DeliveryReport { sent: 0, retrying: 0, failed: 1 });
    let stored = the_mail(&kit);
    assert!(stored.failed);
    assert_eq!((stored.attempts, stored.sent_at), (1, None));
    assert_eq!(later, DeliveryReport::default());
    assert!(transport.sent().is_empty());
}

#[tokio::test]
async fn a_mail_is_given_up_after_the_maximum_attempts() {
    let kit = with_queued_invitation().await;
    let transport = Arc::new(RecordingTransport::default());
    let policy = DeliveryPolicy { max_attempts: 3, ..DeliveryPolicy::default() };
    let max_retry = policy.max_retry;
    let outbox = delivery(&kit, transport.clone(), policy);
    transport.fail_with(Some(transient()));

    let mut reports = Vec::new();
    for _ in 0..4 {
        reports.push(outbox.deliver_due().await.unwrap());
        kit.clock.advance(max_retry);
    }

    let retrying = DeliveryReport { sent: 0, retrying: 1, failed: 0 };
    let given_up = DeliveryReport { sent: 0, retrying: 0, failed: 1 };
    assert_eq!(reports, [retrying, retrying, given_up, DeliveryReport::default()]);
    let stored = the_mail(&kit);
    assert!(stored.failed);
    assert_eq!(stored.attempts, 3);
}

/// A transport whose first send says so and then waits to be let go: a
/// delivery round caught in the middle of sending. Later sends go through at
/// once, so a broken lease shows as a second delivery, not as a hang.
#[derive(Default)]
struct HeldTransport {
    held: AtomicBool,
    sending: Notify,
    release: Notify,
    inner: RecordingTransport,
}

#[async_trait]
impl MailTransport for HeldTransport {
    async fn send(
        &self,
        settings: &EmailSettings,
        mail: &OutgoingMail,
    ) -> Result<String, DeliveryError> {
        if !self.held.swap(true, Ordering::SeqCst) {
            self.sending.notify_one();
            self.release.notified().await;
        }
        self.inner.send(settings, mail).await
    }
}

#[tokio::test]
async fn a_leased_mail_is_not_claimed_by_a_concurrent_round() {
    let kit = with_queued_invitation().await;
    let transport = Arc::new(HeldTransport::default());
    let first = delivery(&kit, transport.clone(), DeliveryPolicy::default());
    let second = delivery(&kit, transport.clone(), DeliveryPolicy::default());
    let lease = DeliveryPolicy::default().lease;

    let rounds = async {
        tokio::join!(first.deliver_due(), async {
            // Once the first round holds the mail, run a whole second round.
            transport.sending.notified().await;
            let report = second.deliver_due().await;
            let leased_until = the_mail(&kit).leased_until;
            transport.release.notify_one();
            (report, leased_until)
        })
    };
    let (first_report, (second_report, leased_until)) =
        tokio::time::timeout(std::time::Duration::from_secs(10), rounds).await.unwrap();

    assert_eq!(leased_until, Some(kit.clock.now() + lease));
    assert_eq!(second_report.unwrap(), DeliveryReport::default(), "the leased mail was left alone");
    assert_eq!(first_report.unwrap().sent, 1);
    assert_eq!(transport.inner.sent().len(), 1);
    assert!(the_mail(&kit).sent_at.is_some());
}
