//! [`WebhookRepository`](crate::webhooks::ports::WebhookRepository):
//! endpoints read back as written, their secrets opened as kept, updated
//! and deleted once.

use chrono::Duration;

use super::fixtures::{active, event, join_all, now};
use crate::audit::models::AuditAction;
use crate::service::Ports;
use crate::users::models::Role;
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
