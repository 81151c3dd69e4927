//! `/metrics` on the main listener (issue 25), on each database: usage
//! reports and SCIM requests are counted by outcome, and the gauges tell
//! the users by status, the seats and the limit in force as stored.
//! On PostgreSQL and MariaDB the gathered session lookups are counted.
//! (`tests/e2e/metrics.rs` scrapes the real binary after sign-ins, an
//! invitation and an import, on its own listener.)

use prometheus_parse::Scrape;
use reqwest::StatusCode;
use secureai_domain::Clock as _;
use secureai_tests::metrics::value;
use secureai_tests::{TestApp, body};
use serde_json::json;

async fn scrape(app: &TestApp) -> Scrape {
    secureai_tests::metrics::scrape(&app.http, &app.url("/metrics")).await
}

async fn service_token(app: &TestApp, admin: &str, scope: &str) -> String {
    let scopes = json!([scope]);
    let created =
        app.post("/api/v1/service-tokens", Some(admin), json!({"name": scope, "scopes": scopes}));
    let created = created.await;
    assert_eq!(created.status(), StatusCode::CREATED);
    body(created).await["secret"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn usage_reports_scim_requests_and_stored_state_are_measured() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.active_user(&admin, "ada@example.com", "user", "ada's long password").await;
    app.invite(&admin, "grace@example.com", "user").await;
    let ada = app.user_id(&admin, "ada@example.com").await;
    let limit = app.put("/api/v1/settings/seats", Some(&admin), json!({"limit": 10})).await;
    assert_eq!(limit.status(), StatusCode::OK);
    let before = scrape(&app).await;

    // Usage: two recorded, one repeated, one for nobody we know.
    let usage = service_token(&app, &admin, "usage").await;
    let at = (app.clock.now() - chrono::Duration::hours(1)).to_rfc3339();
    let event = |id: &str, user: &str| {
        json!({"event_id": id, "user_id": user, "conversation_id": "c-1", "model": "gpt-4o",
               "provider": "openai", "input_tokens": 10, "output_tokens": 5, "occurred_at": at})
    };
    let stranger = secureai_domain::UserId::generate().to_string();
    let events =
        [event("e-1", &ada), event("e-2", &ada), event("e-1", &ada), event("e-3", &stranger)];
    let reported = app.post("/api/v1/usage-events", Some(&usage), json!({"events": events})).await;
    assert_eq!(reported.status(), StatusCode::OK);
    // SCIM: a list, a user that is not there.
    let scim = service_token(&app, &admin, "scim").await;
    let listed = app.http.get(app.url("/scim/v2/Users")).bearer_auth(&scim).send().await.unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let missing = app.url(&format!("/scim/v2/Users/{stranger}"));
    let missing = app.http.get(missing).bearer_auth(&scim).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    // A deactivation moves a user between the gauges.
    let id = app.user_id(&admin, "ada@example.com").await;
    let off = app.patch(&format!("/api/v1/users/{id}"), &admin, json!({"active": false})).await;
    assert_eq!(off.status(), StatusCode::OK);

    let after = scrape(&app).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let events = "secureai_usage_events_total";
    assert_eq!(moved(events, &[("outcome", "recorded")]), 2.0);
    assert_eq!(moved(events, &[("outcome", "duplicate")]), 1.0);
    assert_eq!(moved(events, &[("outcome", "rejected")]), 1.0);
    let scim_requests = "secureai_scim_requests_total";
    let list = [("operation", "users.list"), ("outcome", "success")];
    assert_eq!(moved(scim_requests, &list), 1.0);
    let get = [("operation", "users.get"), ("outcome", "client_error")];
    assert_eq!(moved(scim_requests, &get), 1.0);
    assert_eq!(value(&after, "secureai_users", &[("status", "active")]), 1.0);
    assert_eq!(value(&after, "secureai_users", &[("status", "invited")]), 1.0);
    assert_eq!(value(&after, "secureai_users", &[("status", "deactivated")]), 1.0);
    assert_eq!(value(&before, "secureai_seats_used", &[]), 3.0);
    assert_eq!(value(&after, "secureai_seats_used", &[]), 2.0);
    assert_eq!(value(&after, "secureai_seats_limit", &[]), 10.0);
    // Mail to the folder leaves at once; nothing waits for long.
    let waiting = value(&after, "secureai_outbox_waiting", &[("kind", "webhooks")]);
    assert_eq!(waiting, 0.0);
    // The scrape is itself a request of a known route.
    let count = "http_server_request_duration_seconds_count";
    let scrapes = [("method", "GET"), ("route", "/metrics"), ("status", "200")];
    assert_eq!(moved(count, &scrapes), 1.0);
}

#[tokio::test]
async fn with_metrics_turned_off_nothing_is_served() {
    let app = TestApp::spawn_with(|config| config.metrics_enabled = false).await;
    let answer = app.get("/metrics", None).await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
}

/// On PostgreSQL and MariaDB the session lookups of concurrent requests go
/// to the database together, and `/metrics` counts the statements and the
/// lookups they answered; SQLite reads each lookup on its own (0).
#[tokio::test]
async fn gathered_session_lookups_are_counted() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let (statements, lookups) =
        ("secureai_session_lookup_statements_total", "secureai_session_lookups_gathered_total");
    let before = scrape(&app).await;
    let me = (0..40).map(|_| app.get("/api/v1/me", Some(&admin)));
    for answer in futures_util::future::join_all(me).await {
        assert_eq!(answer.status(), StatusCode::OK);
    }
    let after = scrape(&app).await;
    for name in [statements, lookups] {
        assert!(after.samples.iter().any(|s| s.metric == name), "{name} is not reported");
    }
    let grew = |name| value(&after, name, &[]) - value(&before, name, &[]);
    if app.database_url.starts_with("sqlite") {
        assert_eq!((grew(statements), grew(lookups)), (0.0, 0.0));
    } else {
        assert!(grew(lookups) >= 40.0, "{} lookups gathered for 40 requests", grew(lookups));
        assert!(
            (1.0..=grew(lookups)).contains(&grew(statements)),
            "{} statements for {} lookups",
            grew(statements),
            grew(lookups)
        );
    }
}
