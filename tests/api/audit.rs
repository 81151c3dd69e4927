//! The audit log: every admin action and security event, filters, paging,
//! CSV export with formula escaping, no secrets.

use reqwest::StatusCode;
use secureai_tests::{ADMIN_PASSWORD, TestApp, assert_error, body};
use serde_json::{Value, json};

async fn audit(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app.get(&format!("/api/v1/audit{query}"), Some(token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    body(response).await
}

fn actions(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_admin_action_and_security_event_is_audited_with_who_whom_and_from_where() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let user = app.active_user(&admin, "audited@example.com", "user", "audited password").await;
    let _ = user;
    let id = body(app.get("/api/v1/users?q=audited", Some(&admin)).await).await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.http
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&admin)
        .header("user-agent", "audit-test-agent")
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    app.clock.advance(chrono::Duration::seconds(1));
    app.post(
        "/api/v1/auth/login",
        None,
        json!({"email": "audited@example.com", "password": "wrong"}),
    )
    .await;

    let page = audit(&app, &admin, "").await;

    let seen = actions(&page);
    for expected in [
        "setup.completed",
        "user.invited",
        "invitation.accepted",
        "sign_in.succeeded",
        "user.role_changed",
        "sign_in.failed",
    ] {
        assert!(seen.contains(&expected.to_owned()), "{expected} missing from {seen:?}");
    }
    assert_eq!(seen[0], "sign_in.failed", "newest first");
    let change = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "user.role_changed")
        .unwrap();
    assert_eq!(change["actor_email"], "root@example.com");
    assert_eq!(change["target_email"], "audited@example.com");
    assert_eq!(change["changes"][0], json!({"field": "role", "before": "user", "after": "admin"}));
    assert_eq!(change["ip"], "127.0.0.1");
    assert_eq!(change["user_agent"], "audit-test-agent");
    let text = page.to_string();
    for secret in ["audited password", ADMIN_PASSWORD, "argon2"] {
        assert!(!text.contains(secret), "the audit log leaks {secret}");
    }
}

#[tokio::test]
async fn the_audit_log_filters_and_pages() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    for i in 0..5 {
        app.invite(&admin, &format!("a{i}@example.com"), "user").await;
    }

    let invites = audit(&app, &admin, "?action=user.invited&limit=2").await;
    assert_eq!(actions(&invites), ["user.invited", "user.invited"]);
    let cursor = invites["next_cursor"].as_str().unwrap();
    let next = audit(&app, &admin, &format!("?action=user.invited&limit=2&cursor={cursor}")).await;
    assert_eq!(next["items"].as_array().unwrap().len(), 2);
    assert_ne!(invites["items"][0]["id"], next["items"][0]["id"]);
    let target = invites["items"][0]["target_id"].as_str().unwrap().to_owned();
    let about_one = audit(&app, &admin, &format!("?target={target}")).await;
    assert_eq!(actions(&about_one), ["user.invited"]);
    let future = audit(&app, &admin, "?from=2999-01-01T00:00:00Z").await;
    assert!(future["items"].as_array().unwrap().is_empty());

    assert_error(
        app.get("/api/v1/audit?action=user.exploded", Some(&admin)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_action",
    )
    .await;
    let user = app.active_user(&admin, "nosy@example.com", "user", "nosy user password").await;
    assert_error(app.get("/api/v1/audit", Some(&user)).await, StatusCode::FORBIDDEN, "forbidden")
        .await;
}

#[tokio::test]
async fn the_csv_export_defuses_formulas() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.post(
        "/api/v1/users",
        Some(&admin),
        json!({"email": "formula@example.com", "name": "=HYPERLINK(\"http://evil\")", "role": "user"}),
    )
    .await;
    let id = body(app.get("/api/v1/users?q=formula", Some(&admin)).await).await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.http
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"department": "-2+3"}))
        .send()
        .await
        .unwrap();

    let response = app.get("/api/v1/audit/export.csv", Some(&admin)).await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(response.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
    let csv = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "id");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert!(rows.len() >= 3);
    for row in &rows {
        for cell in row {
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "unsafe cell {cell:?}");
        }
    }
    assert!(csv.contains("department: - -> -2+3"), "{csv}");
}
