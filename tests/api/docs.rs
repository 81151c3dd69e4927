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
