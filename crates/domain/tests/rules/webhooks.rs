//! Security events (issue 24) with the in-memory store and the fake clock:
//! every path that ends someone's access queues its event — an admin, the
//! identity provider over SCIM, a withdrawn invitation, the operator's
//! erasure — and a session's idle expiry queues none; the worker signs,
//! retries, gives up after three days, stops at 410 and never sends to an
//! address the policy no longer allows.

use std::sync::Arc;

use chrono::Duration;
use secureai_domain::access::Principal;
use secureai_domain::analytics::models::TokenScope;
use secureai_domain::provisioning::models::Attributes;
use secureai_domain::testing::TestKit;
use secureai_domain::users::lifecycle::UserUpdate;
use secureai_domain::webhooks::deliveries::{DeliveryState, SendFailed};
use secureai_domain::webhooks::models::EndpointPolicy;
use secureai_domain::webhooks::ports::MockWebhookSender;
use secureai_domain::webhooks::worker::{WebhookDelivery, WebhookDeliveryPolicy};
use secureai_domain::{Clock, Policy};

use crate::kit::{
    ROOT_EMAIL, ROOT_PASSWORD, active_user, ctx, invite, pw, sign_in, with_admin, with_admin_under,
};

const ALL: [&str; 11] = [
    "user.invited",
    "user.activated",
    "user.deactivated",
    "user.reactivated",
    "user.role_changed",
    "user.sessions_terminated",
    "user.erased",
    "user.password_reset",
    "sso.settings_changed",
    "import.completed",
    "signin.throttled",
];

async fn endpoint(kit: &TestKit, root: &Principal, url: &str) -> uuid::Uuid {
    let events: Vec<String> = ALL.iter().map(|e| (*e).to_owned()).collect();
    let (endpoint, secret) = kit.service.webhooks.create(root, url, &events, &ctx()).await.unwrap();
    assert!(secret.expose().starts_with("whsec_"));
    endpoint.id
}

async fn queued(kit: &TestKit, root: &Principal, id: uuid::Uuid) -> Vec<(String, Option<String>)> {
    let mut found = kit.service.webhooks.deliveries(root, id, None, None, 200).await.unwrap();
    found.reverse();
    found.into_iter().map(|d| (d.event_type, d.user_id.map(|u| u.to_string()))).collect()
}

#[tokio::test]
async fn every_path_that_ends_access_queues_its_event_and_idle_expiry_none() {
    let (kit, admin) = with_admin().await;
    let root = sign_in(&kit, ROOT_EMAIL, ROOT_PASSWORD).await;
    let hook = endpoint(&kit, &root, "https://hooks.example.com/in").await;
    let ada = active_user(&kit, &admin, "ada@example.com", "user", "ada's long passphrase").await;
    let bo = active_user(&kit, &admin, "bo@example.com", "user", "bo's long passphrase").await;
    let asked = invite("cy@example.com", "user");
    let cy = kit.service.invitations.invite_user(&admin, &asked, &ctx()).await.unwrap().user.id;
    let tokens = &kit.service.service_tokens;
    let scopes = ["scim".to_owned()];
    let made =
        tokens.create_service_token(&admin, "Entra ID", Some(&scopes), &ctx()).await.unwrap();
    let scim = tokens.authenticate_service(&made.secret, TokenScope::Scim).await.unwrap();
    let person = Attributes {
        email: Some("di@example.com".to_owned()),
        name: Some("Di".to_owned()),
        ..Attributes::default()
    };
    let di = kit.service.provisioning.create(&scim, &person, &ctx()).await.unwrap().user.id;
    let before = queued(&kit, &root, hook).await.len();

    // The panel and the API share the admin's use case; SCIM, a withdrawn
    // invitation and the operator's erasure have their own.
    let deactivate = UserUpdate { active: Some(false), ..UserUpdate::default() };
    kit.service.users.update_user(&admin, ada, &deactivate, &ctx()).await.unwrap();
    kit.service.provisioning.delete(&scim, di, &ctx()).await.unwrap();
    kit.service.users.withdraw_invitation(&admin, cy, &ctx()).await.unwrap();
    kit.service.sessions.terminate_sessions(&admin, bo, &ctx()).await.unwrap();
    let events = queued(&kit, &root, hook).await;
    let id = |u: secureai_domain::UserId| Some(u.to_string());
    let event = |kind: &str, user| (kind.to_owned(), id(user));
    assert_eq!(
        events[before..].to_vec(),
        vec![
            event("user.deactivated", ada),
            event("user.deactivated", di),
            event("user.deactivated", cy),
            event("user.sessions_terminated", bo),
        ]
    );
    // Di, created over SCIM, is invited until her first SSO sign-in.
    let kinds: Vec<&str> = events[..before].iter().map(|(t, _)| t.as_str()).collect();
    let activated = ["user.invited", "user.activated"];
    assert_eq!(kinds, [&activated[..], &activated, &["user.invited", "user.invited"]].concat());

    // The erasure's event carries no address, and the earlier deliveries
    // about Bo, which do, go with the rest of his data.
    kit.service.users.erase_user_as_operator("bo@example.com", &ctx()).await.unwrap();
    let events = queued(&kit, &root, hook).await;
    let about_bo: Vec<_> = events.iter().filter(|(_, u)| *u == id(bo)).collect();
    assert_eq!(about_bo, [&event("user.erased", bo)]);
    assert_eq!(events.len(), before + 4 - 3 + 1, "Bo's three go, his erasure comes");

    // A session that ends by the idle timeout is no event.
    let count = events.len();
    let sessions = &kit.service.sessions;
    let idle = sessions.sign_in(ROOT_EMAIL, &pw(ROOT_PASSWORD), &ctx()).await.unwrap().token;
    kit.clock.advance(Duration::hours(3));
    assert!(sessions.authenticate(&idle).await.is_err(), "ended by the idle timeout");
    let root = sign_in(&kit, ROOT_EMAIL, ROOT_PASSWORD).await;
    assert_eq!(queued(&kit, &root, hook).await.len(), count);
}

fn worker(kit: &TestKit, sender: MockWebhookSender, policy: EndpointPolicy) -> WebhookDelivery {
    WebhookDelivery::new(
        kit.store.clone(),
        Arc::new(sender),
        kit.clock.clone(),
        WebhookDeliveryPolicy { endpoints: policy, ..WebhookDeliveryPolicy::default() },
    )
}

#[tokio::test]
async fn the_worker_retries_for_three_days_then_gives_up_and_a_410_disables_the_endpoint() {
    let (kit, admin) = with_admin().await;
    let root = sign_in(&kit, ROOT_EMAIL, ROOT_PASSWORD).await;
    let hook = endpoint(&kit, &root, "https://hooks.example.com/in").await;
    kit.service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();

    let mut down = MockWebhookSender::new();
    down.expect_send().returning(|request| {
        assert!(request.signature.starts_with("v1,"), "signed");
        Err(SendFailed("could not connect".to_owned()))
    });
    let down = worker(&kit, down, EndpointPolicy::default());
    let start = kit.clock.now();
    let mut attempts = 0;
    while kit.clock.now() - start < Duration::days(4) {
        attempts += down.deliver_due().await.unwrap().attempted();
        kit.clock.advance(Duration::minutes(20));
    }
    let failed = kit
        .service
        .webhooks
        .deliveries(
            &sign_in(&kit, ROOT_EMAIL, ROOT_PASSWORD).await,
            hook,
            Some(DeliveryState::Failed),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attempts, attempts);
    assert!((9..=14).contains(&attempts), "{attempts} attempts in three days");
    assert!(failed[0].last_error.as_deref().unwrap().contains("three days"));

    // A 410: the endpoint stops, later events are not queued for it.
    let root = sign_in(&kit, ROOT_EMAIL, ROOT_PASSWORD).await;
    kit.service.webhooks.retry(&root, hook, failed[0].id, &ctx()).await.unwrap();
    let mut gone = MockWebhookSender::new();
    gone.expect_send().times(1).returning(|_| Ok(410));
    worker(&kit, gone, EndpointPolicy::default()).deliver_due().await.unwrap();
    let shown = kit.service.webhooks.endpoint(&root, hook).await.unwrap();
    assert!(shown.disabled.unwrap().1.contains("410"));
    kit.service
        .invitations
        .invite_user(&admin, &invite("bo@example.com", "user"), &ctx())
        .await
        .unwrap();
    assert_eq!(
        kit.service.webhooks.deliveries(&root, hook, None, None, 10).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn an_address_the_policy_no_longer_allows_is_never_sent_to() {
    let loose = EndpointPolicy { allow_insecure_loopback: true, allow_private: true };
    let (kit, admin) = with_admin_under(Policy { webhooks: loose, ..Policy::default() }).await;
    let root = sign_in(&kit, ROOT_EMAIL, ROOT_PASSWORD).await;
    let hook = endpoint(&kit, &root, "http://127.0.0.1:9/in").await;
    kit.service
        .invitations
        .invite_user(&admin, &invite("ada@example.com", "user"), &ctx())
        .await
        .unwrap();
    let mut never = MockWebhookSender::new();
    never.expect_send().never();
    let report = worker(&kit, never, EndpointPolicy::default()).deliver_due().await.unwrap();
    assert_eq!(report.failed, 1);
    let failed = kit.service.webhooks.deliveries(&root, hook, None, None, 10).await.unwrap();
    assert!(failed[0].last_error.as_deref().unwrap().contains("no longer allowed"), "{failed:?}");
}
