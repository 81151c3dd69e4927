//! The OpenAPI document, the docs UI and the health probes.

use reqwest::StatusCode;
use secureai_tests::{TestApp, body};

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let app = TestApp::spawn().await;

    let spec = body(app.get("/api/openapi.json", None).await).await;

    let paths = spec["paths"].as_object().unwrap();
    for path in [
        "/v1/auth/login",
        "/v1/auth/logout",
        "/v1/me",
        "/v1/users",
        "/v1/users/{id}",
        "/v1/invitations/accept",
    ] {
        assert!(paths.contains_key(path), "missing {path}");
    }
    let schemes = spec["components"]["securitySchemes"].as_object().unwrap();
    assert!(schemes.contains_key("bearer") && schemes.contains_key("session_cookie"));
}

#[tokio::test]
async fn the_docs_ui_and_health_probes_answer() {
    let app = TestApp::spawn().await;

    let docs = app.get("/api/docs", None).await;
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"));
    assert_eq!(app.get("/healthz", None).await.text().await.unwrap(), "ok");
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(body(ready).await["database"], "ok");
}

#[tokio::test]
async fn a_method_an_address_does_not_take_is_a_405_naming_the_ones_it_does() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let answer = app
        .http
        .request(reqwest::Method::TRACE, app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.headers()["allow"], "GET, HEAD, POST");
    let answer = app.http.put(app.url("/api/v1/users/x/sessions")).send().await.unwrap();
    assert_eq!(answer.headers()["allow"], "DELETE");
}

#[tokio::test]
async fn the_document_says_what_the_server_does_with_optional_fields_unknown_fields_and_integers() {
    let app = TestApp::spawn().await;
    let doc: serde_json::Value = app.get("/api/openapi.json", None).await.json().await.unwrap();
    let seats = doc["components"]["schemas"]
        .as_object()
        .unwrap()
        .values()
        .find(|s| s["properties"]["limit"].is_object() && s["properties"]["used"].is_object())
        .unwrap();
    assert_eq!(seats["properties"]["limit"]["nullable"], true);
    assert_eq!(seats["properties"]["limit"]["minimum"], 0);
    assert_eq!(seats["additionalProperties"], false);
}

/// `/readyz` fails, with the reason, while the database lacks a migration
/// this version has (an operator restored an older backup under a running
/// instance), and recovers once it is applied.
#[tokio::test]
async fn readiness_fails_while_a_migration_is_pending() {
    use sea_orm::ConnectionTrait as _;
    let app = TestApp::spawn().await;
    let store =
        secureai_store::SqlStore::connect(&app.database_url, &Default::default()).await.unwrap();
    let db = store.connection();
    let backend = store.backend();
    let sql = |text: String| sea_orm::Statement::from_string(backend, text);
    let last = db
        .query_one_raw(sql("SELECT version FROM seaql_migrations ORDER BY version DESC".into()))
        .await
        .unwrap()
        .unwrap();
    let version: String = last.try_get("", "version").unwrap();
    db.execute_raw(sql(format!("DELETE FROM seaql_migrations WHERE version = '{version}'")))
        .await
        .unwrap();
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let said = body(ready).await;
    assert_eq!(said["status"], "not_ready");
    assert_eq!(said["database"], "ok");
    assert!(said["migrations"].as_str().unwrap().contains("1 migration(s) pending"), "{said}");
    db.execute_raw(sql(format!(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('{version}', 0)"
    )))
    .await
    .unwrap();
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(body(ready).await["migrations"], "ok");

    // A newer version migrated the database further.
    let future = "m29991231_000001_from_the_future";
    db.execute_raw(sql(format!(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('{future}', 0)"
    )))
    .await
    .unwrap();
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let said = body(ready).await;
    assert!(said["migrations"].as_str().unwrap().contains("does not know"), "{said}");
    db.execute_raw(sql(format!("DELETE FROM seaql_migrations WHERE version = '{future}'")))
        .await
        .unwrap();
    assert_eq!(app.get("/readyz", None).await.status(), StatusCode::OK);
    store.close().await.unwrap();
}
