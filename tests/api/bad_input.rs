//! Bad input gets a clear 4xx with a stable code, and loses nothing.

use reqwest::StatusCode;
use secureai_tests::{TestApp, assert_error, body};

async fn user_count(app: &TestApp, admin: &str) -> usize {
    body(app.get("/api/v1/users", Some(admin)).await).await["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn malformed_json_is_a_400_and_writes_nothing() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;

    let response = app
        .http
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{\"email\": \"x@example.com\", \"name\": ")
        .send()
        .await
        .unwrap();

    assert_error(response, StatusCode::BAD_REQUEST, "invalid_body").await;
    assert_eq!(user_count(&app, &admin).await, 1);
}

#[tokio::test]
async fn missing_fields_and_wrong_types_are_400() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;

    for raw in [
        "{}",
        "{\"email\": [\"x@example.com\"], \"name\": \"X\", \"role\": \"user\"}",
        "[]",
        "null",
    ] {
        let response = app
            .http
            .post(app.url("/api/v1/users"))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_body").await;
    }
    assert_eq!(user_count(&app, &admin).await, 1);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_400() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;

    let response = app
        .http
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("email=x@example.com")
        .send()
        .await
        .unwrap();

    assert_error(response, StatusCode::BAD_REQUEST, "invalid_body").await;
}

#[tokio::test]
async fn an_oversized_body_is_a_413_whether_or_not_it_announces_its_size() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let huge = format!(
        "{{\"email\": \"x@example.com\", \"name\": \"{}\", \"role\": \"user\"}}",
        "x".repeat(2 << 20)
    );

    let announced = app
        .http
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(huge.clone())
        .send()
        .await
        .unwrap();
    let chunks: Vec<Result<String, std::io::Error>> = vec![Ok(huge)];
    let streamed = app
        .http
        .post(app.url("/api/v1/users"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();

    assert_error(announced, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
    assert_error(streamed, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
    assert_eq!(user_count(&app, &admin).await, 1);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_same_shape() {
    let app = TestApp::with_admin().await;

    assert_error(app.get("/api/v1/nothing-here", None).await, StatusCode::NOT_FOUND, "not_found")
        .await;
    let wrong_method = app.http.delete(app.url("/api/v1/me")).send().await.unwrap();
    assert_error(wrong_method, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}
