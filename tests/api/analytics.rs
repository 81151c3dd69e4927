//! Usage analytics over HTTP: service tokens (rule 12's reporting side),
//! ingestion with per-event refusals and no content field, the dashboard
//! series and a user's activity.

use reqwest::StatusCode;
use secureai_domain::Clock;
use secureai_tests::{ADMIN_EMAIL, TestApp, assert_error, audit_change, body};
use serde_json::{Value, json};

async fn service_token(app: &TestApp, admin: &str, name: &str) -> (String, String) {
    let response = app.post("/api/v1/service-tokens", Some(admin), json!({"name": name})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created = body(response).await;
    (created["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned())
}

fn at(app: &TestApp, hours_ago: i64) -> String {
    (app.clock.now() - chrono::Duration::hours(hours_ago)).to_rfc3339()
}

fn event(id: &str, user: &str, conversation: &str, model: &str, occurred_at: &str) -> Value {
    json!({
        "event_id": id,
        "user_id": user,
        "conversation_id": conversation,
        "model": model,
        "provider": "openai",
        "input_tokens": 1200,
        "output_tokens": 300,
        "occurred_at": occurred_at,
    })
}

async fn report(app: &TestApp, secret: &str, events: Vec<Value>) -> reqwest::Response {
    app.post("/api/v1/usage-events", Some(secret), json!({"events": events})).await
}

#[tokio::test]
async fn a_service_token_is_shown_once_listed_without_its_secret_and_revocable() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let (id, secret) = service_token(&app, &admin, "chat service").await;
    assert!(secret.starts_with("sat_"));

    let list = app.get("/api/v1/service-tokens", Some(&admin)).await;
    assert_eq!(list.status(), StatusCode::OK);
    let text = list.text().await.unwrap();
    assert!(text.contains("chat service") && !text.contains(&secret), "{text}");

    // Users and strangers cannot manage tokens.
    let user = app.active_user(&admin, "ada@example.com", "user", "ada's long password").await;
    let refused = app.post("/api/v1/service-tokens", Some(&user), json!({"name": "mine"})).await;
    assert_error(refused, StatusCode::FORBIDDEN, "forbidden").await;
    assert_error(
        app.get("/api/v1/service-tokens", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let blank = app.post("/api/v1/service-tokens", Some(&admin), json!({"name": " "})).await;
    assert_error(blank, StatusCode::UNPROCESSABLE_ENTITY, "invalid_name").await;

    // The token reports until it is revoked.
    let ada = app.user_id(&admin, "ada@example.com").await;
    let ok = report(&app, &secret, vec![event("e1", &ada, "c1", "gpt-4o", &at(&app, 1))]).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let revoked = app
        .http
        .delete(app.url(&format!("/api/v1/service-tokens/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert!(body(revoked).await["revoked_at"].is_string());
    let refused =
        report(&app, &secret, vec![event("e2", &ada, "c1", "gpt-4o", &at(&app, 1))]).await;
    assert_error(refused, StatusCode::UNAUTHORIZED, "invalid_service_token").await;
    let unknown = app
        .http
        .delete(app.url(&format!("/api/v1/service-tokens/{}", secureai_domain::UserId::generate())))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_error(unknown, StatusCode::NOT_FOUND, "service_token_not_found").await;

    // Both are audited; the secret is in no audit event.
    let audit = app.get("/api/v1/audit?action=service_token.created", Some(&admin)).await;
    let audit = body(audit).await;
    assert_eq!(audit_change(&audit["items"][0], "name"), Some("chat service"));
    let revocations =
        body(app.get("/api/v1/audit?action=service_token.revoked", Some(&admin)).await).await;
    assert_eq!(revocations["items"].as_array().unwrap().len(), 1);
    let export = app.get("/api/v1/audit/export.csv", Some(&admin)).await.text().await.unwrap();
    assert!(!export.contains(&secret));
}

#[tokio::test]
async fn events_are_recorded_once_and_each_bad_one_is_reported() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.active_user(&admin, "ada@example.com", "user", "ada's long password").await;
    let ada = app.user_id(&admin, "ada@example.com").await;
    let (_, secret) = service_token(&app, &admin, "chat").await;
    let events = vec![
        event("e-1", &ada, "c-1", "gpt-4o", &at(&app, 2)),
        event("e-2", &ada, "c-1", "claude-sonnet", &at(&app, 1)),
        event("e-1", &ada, "c-1", "gpt-4o", &at(&app, 2)),
        event(
            "e-3",
            &secureai_domain::UserId::generate().to_string(),
            "c-9",
            "gpt-4o",
            &at(&app, 1),
        ),
        event("e-4", &ada, "c-1", "gpt-4o", "last tuesday"),
        event("e 5", &ada, "c-1", "gpt-4o", &at(&app, 1)),
    ];
    let first = body(report(&app, &secret, events.clone()).await).await;
    assert_eq!(first["received"], 6);
    assert_eq!(first["accepted"], 2);
    assert_eq!(first["duplicates"], 1);
    let rejected: Vec<(u64, &str)> = first["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["code"].as_str().unwrap()))
        .collect();
    assert_eq!(rejected, [(3, "unknown_user"), (4, "invalid_time"), (5, "invalid_event_id")]);
    // Sent again (a retry after a timeout): nothing counted twice.
    let again = body(report(&app, &secret, events).await).await;
    assert_eq!((again["accepted"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(3)));

    let dashboard = body(app.get("/api/v1/analytics/dashboard", Some(&admin)).await).await;
    assert_eq!(dashboard["total"]["events"], 2);
    assert_eq!(dashboard["total"]["tokens"], 3000);
    assert_eq!(dashboard["total"]["conversations"], 1);
}

#[tokio::test]
async fn a_content_field_or_any_unknown_field_fails_the_whole_batch() {
    let app = TestApp::with_admin_using(|config| config.analytics.max_batch = 3).await;
    let admin = app.admin_token().await;
    let admin_id = app.user_id(&admin, ADMIN_EMAIL).await;
    let (_, secret) = service_token(&app, &admin, "chat").await;
    let mut with_content = event("e-1", &admin_id, "c-1", "gpt-4o", &at(&app, 1));
    with_content["content"] = json!("what the user asked the model");
    let good = event("e-2", &admin_id, "c-1", "gpt-4o", &at(&app, 1));
    let refused = report(&app, &secret, vec![good.clone(), with_content]).await;
    let error = assert_error(refused, StatusCode::BAD_REQUEST, "invalid_body").await;
    assert!(error["message"].as_str().unwrap().contains("content"), "{error}");
    let extra = app
        .post(
            "/api/v1/usage-events",
            Some(&secret),
            json!({"events": [good.clone()], "prompt": "hi"}),
        )
        .await;
    assert_error(extra, StatusCode::BAD_REQUEST, "invalid_body").await;
    // Over the batch limit: 413 naming the limit.
    let four = (0..4)
        .map(|i| event(&format!("b-{i}"), &admin_id, "c-1", "gpt-4o", &at(&app, 1)))
        .collect();
    let too_many = assert_error(
        report(&app, &secret, four).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "batch_too_large",
    )
    .await;
    assert!(too_many["message"].as_str().unwrap().contains('3'));
    // A session token is not a service token; no token is no token.
    let with_session = report(&app, &admin, vec![good.clone()]).await;
    assert_error(with_session, StatusCode::UNAUTHORIZED, "invalid_service_token").await;
    let anonymous = app.post("/api/v1/usage-events", None, json!({"events": [good]})).await;
    assert_error(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // Nothing of any refused batch was recorded.
    let dashboard = body(app.get("/api/v1/analytics/dashboard", Some(&admin)).await).await;
    assert_eq!(dashboard["total"]["events"], 0);
}

#[tokio::test]
async fn the_dashboard_answers_series_ready_to_plot_for_admins_only() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let user = app.active_user(&admin, "ada@example.com", "user", "ada's long password").await;
    let ada = app.user_id(&admin, "ada@example.com").await;
    let (_, secret) = service_token(&app, &admin, "chat").await;
    let events = vec![
        event("a", &ada, "c1", "gpt-4o", &at(&app, 1)),
        event("b", &ada, "c2", "claude-sonnet", &at(&app, 1)),
        event("c", &ada, "c2", "claude-sonnet", &at(&app, 49)),
    ];
    assert_eq!(report(&app, &secret, events).await.status(), StatusCode::OK);
    let today = app.clock.now().date_naive();
    let from = (today - chrono::Duration::days(6)).to_string();
    let path = format!("/api/v1/analytics/dashboard?from={from}&to={today}");
    let dashboard = body(app.get(&path, Some(&admin)).await).await;
    assert_eq!(dashboard["by_day"].as_array().unwrap().len(), 7);
    assert_eq!(dashboard["by_day"][6]["day"], today.to_string());
    assert_eq!(dashboard["daily_active_users"].as_array().unwrap().len(), 7);
    assert!(dashboard["daily_active_users"][6]["users"].as_u64().unwrap() >= 2);
    let models = dashboard["by_model"].as_array().unwrap();
    assert_eq!(models[0]["model"], "claude-sonnet");
    let share: f64 = models.iter().map(|m| m["share"].as_f64().unwrap()).sum();
    assert!((share - 1.0).abs() < 1e-9);
    assert_eq!(dashboard["top_users_by_tokens"][0]["email"], "ada@example.com");
    assert_eq!(dashboard["top_users_by_conversations"][0]["conversations"], 2);

    let weekly = body(
        app.get(
            &format!("/api/v1/analytics/active-users?period=week&from={from}&to={today}"),
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(weekly["period"], "week");
    assert!(!weekly["points"].as_array().unwrap().is_empty());

    let activity =
        body(app.get(&format!("/api/v1/users/{ada}/activity"), Some(&admin)).await).await;
    assert_eq!(activity["usage"]["events"], 3);
    assert_eq!(activity["usage"]["conversations"], 2);
    assert!(activity["last_sign_in_at"].is_string());
    let last = chrono::DateTime::parse_from_rfc3339(activity["last_activity_at"].as_str().unwrap());
    let expected = app.clock.now() - chrono::Duration::hours(1);
    assert_eq!(last.unwrap().timestamp_micros(), expected.timestamp_micros());

    // Bad ranges and non-admins are refused with a code.
    let backwards =
        app.get(&format!("/api/v1/analytics/dashboard?from={today}&to={from}"), Some(&admin)).await;
    assert_error(backwards, StatusCode::BAD_REQUEST, "invalid_range").await;
    let garbage = app.get("/api/v1/analytics/dashboard?from=yesterday", Some(&admin)).await;
    assert_error(garbage, StatusCode::BAD_REQUEST, "invalid_date").await;
    let period = app.get("/api/v1/analytics/active-users?period=year", Some(&admin)).await;
    assert_error(period, StatusCode::BAD_REQUEST, "invalid_period").await;
    let as_user = app.get("/api/v1/analytics/dashboard", Some(&user)).await;
    assert_error(as_user, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn a_service_token_opens_only_what_its_scopes_name() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.active_user(&admin, "ada@example.com", "user", "ada's long password").await;
    let ada = app.user_id(&admin, "ada@example.com").await;
    let create = |scopes: Value| {
        let admin = admin.clone();
        let app = &app;
        async move {
            app.post("/api/v1/service-tokens", Some(&admin), json!({"name": "t", "scopes": scopes}))
                .await
        }
    };

    let scim = create(json!(["scim"])).await;
    assert_eq!(scim.status(), StatusCode::CREATED);
    let scim = body(scim).await;
    assert_eq!(scim["scopes"], json!(["scim"]));
    let secret = scim["secret"].as_str().unwrap().to_owned();
    let refused =
        report(&app, &secret, vec![event("e1", &ada, "c1", "gpt-4o", &at(&app, 1))]).await;
    assert_error(refused, StatusCode::FORBIDDEN, "insufficient_scope").await;
    let both = body(create(json!(["usage", "scim"])).await).await;
    assert_eq!(both["scopes"], json!(["usage", "scim"]));
    let secret = both["secret"].as_str().unwrap().to_owned();
    let ok = report(&app, &secret, vec![event("e1", &ada, "c1", "gpt-4o", &at(&app, 1))]).await;
    assert_eq!(ok.status(), StatusCode::OK);
    for bad in [json!([]), json!(["admin"])] {
        assert_error(create(bad).await, StatusCode::UNPROCESSABLE_ENTITY, "invalid_scopes").await;
    }
    let listed = body(app.get("/api/v1/service-tokens", Some(&admin)).await).await;
    assert_eq!(listed.as_array().unwrap().len(), 2, "refused tokens are not stored");
    let default =
        body(app.post("/api/v1/service-tokens", Some(&admin), json!({"name": "d"})).await).await;
    assert_eq!(default["scopes"], json!(["usage"]));
}
