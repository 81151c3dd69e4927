//! [`WebhookRepository`](crate::webhooks::ports::WebhookRepository):
//! endpoints read back as written, their secrets opened as kept, updated
//! and deleted once; deliveries queued with their events, leased once, in
//! order per user.

use chrono::Duration;

use super::fixtures::{active, event, join_all, now};
use crate::audit::models::{AuditAction, Change};
use crate::service::Ports;
use crate::users::models::Role;
use crate::webhooks::deliveries::{AttemptOutcome, DeliveryState, GIVE_UP_AFTER};
use crate::webhooks::models::{EventType, WebhookEndpoint};
use crate::webhooks::signature::WebhookSecret;

/// An endpoint MUST read back as written (events, creator, state), oldest
/// first; its secret MUST come back as given (and `None` for an unknown
/// id); `update` MUST write the address, events and state of an existing
/// endpoint only; `delete` MUST delete once of concurrent calls, its
/// secret with it.
pub async fn endpoints_keep_their_secret_and_are_deleted_once(ports: Ports) {
    let root = active(&ports, "root@example.com", Role::Admin).await;
    let endpoint = |n: i64, url: &str| WebhookEndpoint {
        id: crate::record_id(),
        url: url.to_owned(),
        events: vec![EventType::UserDeactivated, EventType::UserRoleChanged],
        created_at: now(&ports) + Duration::seconds(n),
        created_by: Some(root.id),
        disabled: None,
    };
    let first = endpoint(0, "https://hooks.example.com/secureai");
    let second = endpoint(1, "https://siem.example.org/in?source=secureai&x=ü");
    let first_secret = WebhookSecret::from_random([1; 32]);
    let second_secret = WebhookSecret::from_random([2; 32]);
    let audit = |action| event(now(&ports), action);
    ports
        .webhooks
        .insert_endpoint(&first, &first_secret, audit(AuditAction::WebhookCreated))
        .await
        .unwrap();
    ports
        .webhooks
        .insert_endpoint(&second, &second_secret, audit(AuditAction::WebhookCreated))
        .await
        .unwrap();
    assert_eq!(ports.webhooks.endpoints().await.unwrap(), vec![first.clone(), second.clone()]);
    assert_eq!(ports.webhooks.endpoint_secret(second.id).await.unwrap(), Some(second_secret));
    let unknown = ports.webhooks.endpoint_secret(crate::record_id()).await.unwrap();
    assert_eq!(unknown, None);

    let gone_at = now(&ports) + Duration::minutes(5);
    let changed = WebhookEndpoint {
        url: "https://hooks.example.com/v2".to_owned(),
        events: vec![EventType::UserErased],
        disabled: Some((gone_at, "the receiver answered 410 Gone".to_owned())),
        ..first.clone()
    };
    let updated = ports.webhooks.update_endpoint(&changed, audit(AuditAction::WebhookUpdated));
    assert!(updated.await.unwrap());
    let stranger = WebhookEndpoint { id: crate::record_id(), ..changed.clone() };
    let missing = ports.webhooks.update_endpoint(&stranger, audit(AuditAction::WebhookUpdated));
    assert!(!missing.await.unwrap());
    assert_eq!(ports.webhooks.endpoints().await.unwrap()[0], changed);
    assert_eq!(ports.webhooks.endpoint_secret(first.id).await.unwrap(), Some(first_secret));

    let racing: Vec<_> = (0..6)
        .map(|_| ports.webhooks.delete_endpoint(first.id, audit(AuditAction::WebhookDeleted)))
        .collect();
    let deleted = join_all(racing).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(deleted, 1, "one of 6 concurrent deletions");
    assert_eq!(ports.webhooks.endpoints().await.unwrap(), vec![second]);
    assert_eq!(ports.webhooks.endpoint_secret(first.id).await.unwrap(), None);
}

/// An audit event that maps to a subscribed event MUST queue one pending
/// delivery per enabled subscribed endpoint (none for a paused one or an
/// unsubscribed event), with the event's message id; a claim MUST lease
/// it once, and only the oldest pending delivery per endpoint and user is
/// due; an attempt MUST be recorded as given; a failed delivery MUST be
/// retried once; an outcome MUST be written only under its lease; a
/// failed delivery MUST read as superseded once a later one about its user
/// was delivered; a sign-in pause MUST be queued once per endpoint, also
/// from concurrent refusals; forgetting MUST delete settled deliveries
/// older than the bound only; a 410 MUST stop the endpoint only at the
/// address that answered.
pub async fn deliveries_follow_their_events_in_order_and_are_leased_once(ports: Ports) {
    let root = active(&ports, "root@example.com", Role::Admin).await;
    let ada = active(&ports, "ada@example.com", Role::User).await;
    let t0 = now(&ports);
    let endpoint = |url: &str, disabled| WebhookEndpoint {
        id: crate::record_id(),
        url: url.to_owned(),
        events: vec![
            EventType::UserDeactivated,
            EventType::UserReactivated,
            EventType::SigninThrottled,
        ],
        created_at: t0,
        created_by: Some(root.id),
        disabled,
    };
    let live = endpoint("https://hooks.example.com/a", None);
    let paused = endpoint("https://hooks.example.com/b", Some((t0, "paused".to_owned())));
    for e in [&live, &paused] {
        let created = event(t0, AuditAction::WebhookCreated);
        let secret = WebhookSecret::from_random([4; 32]);
        ports.webhooks.insert_endpoint(e, &secret, created).await.unwrap();
    }
    let about = |action, n: i64| {
        let mut audit = event(t0 + Duration::milliseconds(n), action);
        audit.target_id = Some(ada.id);
        audit.target_email = Some("ada@example.com".to_owned());
        audit
    };
    let deactivated = about(AuditAction::UserDeactivated, 1);
    let reactivated = about(AuditAction::UserReactivated, 2);
    ports.audit.append(deactivated.clone()).await.unwrap();
    ports.audit.append(about(AuditAction::ProfileChanged, 3)).await.unwrap();
    ports.audit.append(reactivated.clone()).await.unwrap();

    let all = ports.webhooks.deliveries(live.id, None, None, 50).await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(ports.webhooks.deliveries(paused.id, None, None, 50).await.unwrap().is_empty());
    let at = t0 + Duration::seconds(1);
    let lease = at + Duration::minutes(5);
    let racing: Vec<_> = (0..4).map(|_| ports.webhooks.claim_due(at, lease, 10)).collect();
    let claimed: Vec<_> = join_all(racing).await.into_iter().flat_map(Result::unwrap).collect();
    assert_eq!(claimed.len(), 1, "the oldest of the user's, once: {claimed:?}");
    let first = &claimed[0];
    assert_eq!(first.delivery.message_id, format!("msg_{}", deactivated.id.simple()));
    assert_eq!(first.delivery.event_type, "user.deactivated");
    assert_eq!(first.url, live.url);
    let body: serde_json::Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(body["data"]["user_id"], ada.id.to_string());

    // Failed: the next waits behind it until its retry.
    let retry_at = at + Duration::seconds(5);
    let outcome = AttemptOutcome::Retry {
        at,
        retry_at,
        status: Some(503),
        error: "the receiver answered 503".to_owned(),
    };
    ports.webhooks.record_attempt(first.delivery.id, &first.lease, outcome).await.unwrap();
    assert!(ports.webhooks.claim_due(at, lease, 10).await.unwrap().is_empty());
    let again = ports.webhooks.claim_due(retry_at, lease, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.id, first.delivery.id);
    assert_eq!(again[0].delivery.attempts, 1);
    assert_eq!(again[0].delivery.last_status, Some(503));
    // Recorded with a round's others; a stale lease among them writes
    // nothing.
    let done = AttemptOutcome::Delivered { at: retry_at, status: 204 };
    let stray = (crate::record_id(), "no-such-lease".to_owned(), done.clone());
    let round = vec![(again[0].delivery.id, again[0].lease.clone(), done), stray];
    ports.webhooks.record_attempts(round).await.unwrap();
    let next = ports.webhooks.claim_due(retry_at, lease, 10).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].delivery.event_type, "user.reactivated");
    let gone = AttemptOutcome::Failed { at: retry_at, status: Some(410), error: "gone".into() };
    ports.webhooks.record_attempt(next[0].delivery.id, &next[0].lease, gone).await.unwrap();

    let failed = ports.webhooks.deliveries(live.id, Some(DeliveryState::Failed), None, 50);
    let failed = failed.await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].last_error.as_deref(), Some("gone"));
    let delivered = ports.webhooks.deliveries(live.id, Some(DeliveryState::Delivered), None, 50);
    assert_eq!(delivered.await.unwrap()[0].delivered_at, Some(retry_at));
    let later = retry_at + Duration::minutes(1);
    let retries: Vec<_> = (0..3)
        .map(|_| {
            let audit = event(later, AuditAction::WebhookUpdated);
            ports.webhooks.retry_delivery(live.id, failed[0].id, later, audit)
        })
        .collect();
    let retried = join_all(retries).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(retried, 1, "one of 3 concurrent retries");
    let requeued = ports.webhooks.claim_due(later, later + Duration::minutes(5), 10).await.unwrap();
    assert_eq!(requeued.len(), 1);
    assert_eq!(requeued[0].delivery.attempts, 0);
    assert_eq!(requeued[0].delivery.give_up_at, later + GIVE_UP_AFTER);

    // A worker whose lease was taken over writes nothing.
    let stale = AttemptOutcome::Delivered { at: later, status: 204 };
    let retried_id = requeued[0].delivery.id;
    ports.webhooks.record_attempt(retried_id, "not-the-lease", stale).await.unwrap();
    let (still, _) = ports.webhooks.delivery(live.id, retried_id).await.unwrap().unwrap();
    assert_eq!(still.state, DeliveryState::Pending);
    let down = AttemptOutcome::Failed { at: later, status: Some(500), error: "down".into() };
    ports.webhooks.record_attempt(retried_id, &requeued[0].lease, down).await.unwrap();
    // A later event about Ada delivered: the failed one is superseded.
    ports.audit.append(about(AuditAction::UserDeactivated, 70_000)).await.unwrap();
    let after = later + Duration::minutes(1);
    let newer = ports.webhooks.claim_due(after, after + Duration::minutes(5), 10).await.unwrap();
    assert_eq!(newer.len(), 1);
    let done = AttemptOutcome::Delivered { at: after, status: 200 };
    ports.webhooks.record_attempt(newer[0].delivery.id, &newer[0].lease, done).await.unwrap();
    let (old, superseded) = ports.webhooks.delivery(live.id, retried_id).await.unwrap().unwrap();
    assert_eq!((old.state, superseded), (DeliveryState::Failed, true));
    let (_, latest) =
        ports.webhooks.delivery(live.id, newer[0].delivery.id).await.unwrap().unwrap();
    assert!(!latest, "nothing later");
    assert!(ports.webhooks.delivery(live.id, crate::record_id()).await.unwrap().is_none());
    assert!(ports.webhooks.delivery(paused.id, retried_id).await.unwrap().is_none());

    // One pause of sign-in, many refused attempts at once, whatever the
    // emails typed (as long as an email may be): one delivery.
    let sprayed: Vec<_> = (0..3)
        .map(|n| {
            let mut throttled = event(later + Duration::seconds(n), AuditAction::SignInThrottled)
                .change(Change::detail("until", "2026-12-04T10:00:00+00:00"));
            throttled.target_email = Some(format!("{n}{}@example.com", "a".repeat(240)));
            ports.audit.append(throttled)
        })
        .collect();
    join_all(sprayed).await.into_iter().for_each(|r| r.unwrap());
    let all = ports.webhooks.deliveries(live.id, None, None, 50).await.unwrap();
    let paused_signins = all.iter().filter(|d| d.event_type == "signin.throttled").count();
    assert_eq!(paused_signins, 1);

    // Settled ones are forgotten after their time; pending ones never.
    let forgotten = ports.webhooks.forget_old_deliveries(t0 + Duration::days(40)).await.unwrap();
    assert_eq!(forgotten, 3, "two delivered, one failed");
    let left = ports.webhooks.deliveries(live.id, None, None, 50).await.unwrap();
    assert!(left.iter().all(|d| d.state == DeliveryState::Pending), "{left:?}");
    assert_eq!(left.len(), all.len() - 3);

    // A 410 stops the endpoint only at the address that answered, once.
    let hooks = &ports.webhooks;
    let moved =
        hooks.disable_endpoint(live.id, "https://hooks.example.com/moved", after, "410 Gone");
    assert!(!moved.await.unwrap());
    assert!(hooks.disable_endpoint(live.id, &live.url, after, "410 Gone").await.unwrap());
    let twice = hooks.disable_endpoint(live.id, &live.url, after, "410 Gone").await.unwrap();
    assert!(!twice, "stopped already");
    let stopped = ports.webhooks.endpoints().await.unwrap();
    assert_eq!(stopped[0].disabled, Some((after, "410 Gone".to_owned())));
}
