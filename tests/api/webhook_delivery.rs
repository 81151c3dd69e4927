//! Security events delivered to a real receiver (`support/webhooks.rs`):
//! exactly once per event although the receiver fails twice, in the order
//! of the changes per user, after a restart mid-retry, signed as the
//! Standard Webhooks reference library checks; 410 disables the endpoint;
//! failed deliveries are listed and retried; the SSRF guard.

use reqwest::StatusCode;
use secureai_tests::webhooks::{Receiver, assert_signed};
use secureai_tests::{TestApp, assert_error, body};
use serde_json::{Value, json};

async fn add_endpoint(app: &TestApp, admin: &str, url: &str, events: &[&str]) -> (String, String) {
    let created =
        app.post("/api/v1/webhooks", Some(admin), json!({"url": url, "events": events})).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["cache-control"], "no-store");
    let created = body(created).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (created["webhook"]["id"].as_str().unwrap().to_owned(), secret)
}

async fn set_active(app: &TestApp, admin: &str, id: &str, active: bool) {
    let changed = app.patch(&format!("/api/v1/users/{id}"), admin, json!({"active": active})).await;
    assert_eq!(changed.status(), StatusCode::OK);
}

async fn deliveries(app: &TestApp, admin: &str, endpoint: &str, query: &str) -> Vec<Value> {
    let page =
        app.get(&format!("/api/v1/webhooks/{endpoint}/deliveries{query}"), Some(admin)).await;
    assert_eq!(page.status(), StatusCode::OK);
    body(page).await["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_users_events_arrive_once_each_in_order_after_the_receiver_failed_twice() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start(2).await;
    let events = ["user.deactivated", "user.reactivated", "user.role_changed"];
    let (endpoint, secret) = add_endpoint(&app, &admin, &receiver.url, &events).await;
    app.active_user(&admin, "ada@example.com", "user", "ada's long passphrase").await;
    let ada = app.user_id(&admin, "ada@example.com").await;

    // Three changes to one user, at once.
    set_active(&app, &admin, &ada, false).await;
    set_active(&app, &admin, &ada, true).await;
    let promoted =
        app.patch(&format!("/api/v1/users/{ada}"), &admin, json!({"role": "admin"})).await;
    assert_eq!(promoted.status(), StatusCode::OK);

    // The first attempt fails; the later events wait behind it.
    let first = receiver.wait_for_requests(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1, "nothing overtakes a failed delivery: {first:?}");
    app.clock.advance(chrono::Duration::seconds(7));
    receiver.wait_for_requests(2).await;
    app.clock.advance(chrono::Duration::minutes(7));
    let accepted = receiver.wait_for_accepted(3).await;

    // Wait for stray duplicates, then count.
    app.clock.advance(chrono::Duration::hours(11));
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let all = receiver.received();
    assert_eq!(all.len(), 5, "two failures and three deliveries: {all:?}");
    assert_eq!(receiver.accepted().len(), 3);
    let types: Vec<String> =
        accepted.iter().map(|r| r.json()["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(types, events, "in the order of the changes");
    assert!(all[..3].iter().all(|r| r.id == all[0].id), "one webhook-id across retries");
    let ids: std::collections::HashSet<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    let deactivated = accepted[0].json();
    assert_eq!(deactivated["data"]["user_id"], ada.as_str());
    assert_eq!(deactivated["data"]["email"], "ada@example.com");
    assert_eq!(deactivated["data"]["actor"]["kind"], "user");
    assert_eq!(accepted[2].json()["data"]["role"], "admin");
    assert_eq!(accepted[2].json()["data"]["previous_role"], "user");
    assert_signed(&all, &secret);

    // (Eleven hours later the session has ended.)
    let admin = app.admin_token().await;
    let listed = deliveries(&app, &admin, &endpoint, "").await;
    assert_eq!(listed.len(), 3);
    let first = listed.iter().find(|d| d["event_type"] == "user.deactivated").unwrap();
    assert_eq!(first["status"], "delivered");
    assert_eq!(first["attempts"], 3);
    assert_eq!(first["last_status"], 204);
    assert!(deliveries(&app, &admin, &endpoint, "?status=failed").await.is_empty());
}

#[tokio::test]
async fn a_delivery_retried_after_a_restart_arrives_once() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start(1).await;
    let (_, secret) = add_endpoint(&app, &admin, &receiver.url, &["user.deactivated"]).await;
    app.active_user(&admin, "bo@example.com", "user", "bo's long passphrase").await;
    let bo = app.user_id(&admin, "bo@example.com").await;
    set_active(&app, &admin, &bo, false).await;
    receiver.wait_for_requests(1).await;

    // Stopped between the failed attempt and its retry.
    let app = app.restart(|_| {}).await;
    app.clock.advance(chrono::Duration::seconds(7));
    let accepted = receiver.wait_for_accepted(1).await;
    app.clock.advance(chrono::Duration::hours(11));
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let all = receiver.received();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0].id, accepted[0].id);
    assert_eq!(accepted[0].json()["data"]["user_id"], bo.as_str());
    assert_signed(&all, &secret);
}

#[tokio::test]
async fn a_gone_receiver_disables_its_endpoint_and_a_failed_delivery_is_retried() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let receiver = Receiver::start(0).await;
    receiver.set_gone(true);
    let (endpoint, secret) = add_endpoint(&app, &admin, &receiver.url, &["user.invited"]).await;
    app.invite(&admin, "cy@example.com", "user").await;
    receiver.wait_for_requests(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let shown = body(app.get(&format!("/api/v1/webhooks/{endpoint}"), Some(&admin)).await).await;
    assert_eq!(shown["enabled"], false, "{shown}");
    assert!(shown["disabled_reason"].as_str().unwrap().contains("410"), "{shown}");
    let failed = deliveries(&app, &admin, &endpoint, "?status=failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["last_status"], 410);
    // Disabled: later events are not queued for it.
    app.invite(&admin, "di@example.com", "user").await;
    assert_eq!(deliveries(&app, &admin, &endpoint, "").await.len(), 1);

    // A test event waits for nothing on a stopped endpoint.
    let test_url = format!("/api/v1/webhooks/{endpoint}/test");
    let refused = app.post(&test_url, Some(&admin), json!({})).await;
    assert_error(refused, StatusCode::CONFLICT, "webhook_disabled").await;

    // The receiver is back: enable the endpoint, retry the failed one.
    receiver.set_gone(false);
    let enabled =
        app.patch(&format!("/api/v1/webhooks/{endpoint}"), &admin, json!({"enabled": true})).await;
    assert_eq!(enabled.status(), StatusCode::OK);
    let delivery = failed[0]["id"].as_str().unwrap();
    let retry = format!("/api/v1/webhooks/{endpoint}/deliveries/{delivery}/retry");
    assert_eq!(app.post(&retry, Some(&admin), json!({})).await.status(), StatusCode::NO_CONTENT);
    let accepted = receiver.wait_for_accepted(1).await;
    assert_eq!(accepted[0].json()["data"]["email"], "cy@example.com");
    assert_eq!(accepted[0].id, receiver.received()[0].id);
    assert_error(
        app.post(&retry, Some(&admin), json!({})).await,
        StatusCode::CONFLICT,
        "delivery_not_failed",
    )
    .await;

    // "Send test event".
    let test =
        app.post(&format!("/api/v1/webhooks/{endpoint}/test"), Some(&admin), json!({})).await;
    assert_eq!(test.status(), StatusCode::ACCEPTED);
    let accepted = receiver.wait_for_accepted(2).await;
    assert_eq!(accepted[1].json()["type"], "webhook.test");
    assert_signed(&receiver.received(), &secret);
}

#[tokio::test]
async fn endpoints_must_be_public_https_and_only_admins_manage_them() {
    let app = TestApp::with_admin_using(|c| c.webhooks.allow_insecure_loopback = false).await;
    let admin = app.admin_token().await;
    for url in [
        "http://127.0.0.1:9/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.0.0.7/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://user:pw@hooks.example.com/",
        "http://hooks.example.com/",
        "not a url",
    ] {
        let refused = app
            .post("/api/v1/webhooks", Some(&admin), json!({"url": url, "events": ["user.invited"]}))
            .await;
        assert_error(refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid_url").await;
    }
    let unknown = app
        .post(
            "/api/v1/webhooks",
            Some(&admin),
            json!({"url": "https://hooks.example.com/", "events": ["user.deleted"]}),
        )
        .await;
    let unknown = assert_error(unknown, StatusCode::UNPROCESSABLE_ENTITY, "invalid_events").await;
    assert!(unknown["message"].as_str().unwrap().contains("user.deleted"), "{unknown}");
    assert_eq!(app.rows("webhook_endpoints").await, 0);

    let user = app.active_user(&admin, "eve@example.com", "user", "eve's long passphrase").await;
    let forbidden = app
        .post(
            "/api/v1/webhooks",
            Some(&user),
            json!({"url": "https://hooks.example.com/", "events": ["user.invited"]}),
        )
        .await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get("/api/v1/webhooks", Some(&user)).await.status(), StatusCode::FORBIDDEN);
    let (id, _) =
        add_endpoint(&app, &admin, "https://hooks.example.com/in", &["user.invited"]).await;
    let listed = body(app.get("/api/v1/webhooks", Some(&admin)).await).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(listed[0].get("secret").is_none(), "never the secret again");
    assert_eq!(
        app.delete(&format!("/api/v1/webhooks/{id}"), &admin).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("/api/v1/webhooks/{id}"), &admin).await.status(),
        StatusCode::NOT_FOUND
    );
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
}

/// Settings › Webhooks: an endpoint added from the form (its secret shown
/// once, only with the form token), a test event sent and seen in the
/// deliveries, a failed delivery retried from the failed list, paused.
#[tokio::test]
async fn the_settings_page_adds_an_endpoint_sends_a_test_event_and_retries_a_failure() {
    let app = TestApp::with_admin().await;
    let panel = app.panel_browser().await;
    let receiver = Receiver::start(0).await;
    let page = app.url("/admin/settings/webhooks");
    let html = panel.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("No webhook endpoints yet."), "{html}");
    let csrf = csrf_of(&html);
    let form = |csrf: &str, url: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("url", url.to_owned()),
            ("events", "user.deactivated".to_owned()),
            ("events", "user.invited".to_owned()),
        ]
    };
    let forged = panel.post(&page).form(&form("forged", &receiver.url)).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let private = panel.post(&page).form(&form(&csrf, "https://10.1.2.3/in")).send().await.unwrap();
    assert_eq!(private.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(private.text().await.unwrap().contains("private or reserved range"));
    assert_eq!(app.rows("webhook_endpoints").await, 0);

    let made = panel.post(&page).form(&form(&csrf, &receiver.url)).send().await.unwrap();
    assert_eq!(made.status(), StatusCode::OK);
    let html = made.text().await.unwrap();
    let secret = html
        .split("<code id=\"webhook-secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let again = panel.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(!again.contains(&secret), "shown once");
    assert!(again.contains("user.invited, user.deactivated") && again.contains("Delivering"));
    let admin = app.admin_token().await;
    let id = body(app.get("/api/v1/webhooks", Some(&admin)).await).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let test = app.url(&format!("/admin/settings/webhooks/{id}/test"));
    let sent = panel.post(&test).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    let sent = sent.text().await.unwrap();
    assert!(sent.contains("A test event is on its way"), "{sent}");
    let accepted = receiver.wait_for_accepted(1).await;
    assert_eq!(accepted[0].json()["type"], "webhook.test");
    assert_signed(&accepted, &secret);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let deliveries = app.url(&format!("/admin/settings/webhooks/{id}"));
    let html = panel.get(&deliveries).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("webhook.test") && html.contains("Delivered"), "{html}");

    // The receiver is gone: the failure shows, with Retry.
    receiver.set_gone(true);
    app.invite(&admin, "fay@example.com", "user").await;
    receiver.wait_for_requests(2).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let failed = panel
        .get(format!("{deliveries}?status=failed"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(failed.contains("user.invited") && failed.contains("410 Gone"), "{failed}");
    assert!(!failed.contains("webhook.test"), "only the failed ones");
    let overview = panel.get(&page).send().await.unwrap().text().await.unwrap();
    assert!(overview.contains("the receiver answered 410 Gone") && overview.contains("Resume"));
    receiver.set_gone(false);
    let resume = app.url(&format!("/admin/settings/webhooks/{id}/resume"));
    let resumed = panel.post(&resume).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert!(resumed.text().await.unwrap().contains("receives events again"));
    let delivery = failed.split("/deliveries/").nth(1).unwrap().split('/').next().unwrap();
    let retry = app.url(&format!("/admin/settings/webhooks/{id}/deliveries/{delivery}/retry"));
    let retried = panel.post(&retry).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert!(retried.text().await.unwrap().contains("Sent again now"));
    let accepted = receiver.wait_for_accepted(2).await;
    assert_eq!(accepted[1].json()["data"]["email"], "fay@example.com");

    let pause = app.url(&format!("/admin/settings/webhooks/{id}/pause"));
    let paused = panel.post(&pause).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert!(paused.text().await.unwrap().contains("is paused"));
    let shown = body(app.get(&format!("/api/v1/webhooks/{id}"), Some(&admin)).await).await;
    assert_eq!(shown["enabled"], false);
}

/// The paths that end someone's access beyond the API: Save on the
/// user's profile page, and the identity provider over SCIM (`active:
/// false`), each arriving with its actor.
#[tokio::test]
async fn deactivations_from_the_panel_and_over_scim_arrive_with_their_actor() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let panel = app.panel_browser().await;
    let receiver = Receiver::start(0).await;
    let (_, secret) = add_endpoint(&app, &admin, &receiver.url, &["user.deactivated"]).await;
    app.active_user(&admin, "gil@example.com", "user", "gil's long passphrase").await;
    let gil = app.user_id(&admin, "gil@example.com").await;

    let profile = app.url(&format!("/admin/users/{gil}"));
    let html = panel.get(&profile).send().await.unwrap().text().await.unwrap();
    let form =
        [("csrf", csrf_of(&html)), ("role", "user".to_owned()), ("has_active", "1".to_owned())];
    let saved = panel.post(&profile).form(&form).send().await.unwrap();
    assert!(saved.status().is_success() || saved.status().is_redirection(), "{}", saved.status());
    let from_panel = receiver.wait_for_accepted(1).await;
    assert_eq!(from_panel[0].json()["data"]["user_id"], gil.as_str());
    assert_eq!(from_panel[0].json()["data"]["actor"]["kind"], "user");

    let made = app
        .post(
            "/api/v1/service-tokens",
            Some(&admin),
            json!({"name": "Entra ID", "scopes": ["scim"]}),
        )
        .await;
    let scim = body(made).await["secret"].as_str().unwrap().to_owned();
    let person = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "hal@example.com",
        "name": {"givenName": "Hal", "familyName": "Jordan"},
        "emails": [{"value": "hal@example.com", "type": "work", "primary": true}],
        "active": true
    });
    let scim_post = |path: &str, method: reqwest::Method, body: Value| {
        app.http
            .request(method, app.url(&format!("/scim/v2{path}")))
            .bearer_auth(&scim)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
    };
    let created = scim_post("/Users", reqwest::Method::POST, person).await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let hal = body(created).await["id"].as_str().unwrap().to_owned();
    let off = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                     "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let patched = scim_post(&format!("/Users/{hal}"), reqwest::Method::PATCH, off).await.unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    let accepted = receiver.wait_for_accepted(2).await;
    let over_scim = accepted[1].json();
    assert_eq!(over_scim["data"]["user_id"], hal.as_str());
    assert_eq!(over_scim["data"]["actor"]["kind"], "service");
    assert_signed(&receiver.received(), &secret);
}
