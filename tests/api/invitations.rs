//! Accepting invitations through the API.

use chrono::Duration;
use reqwest::StatusCode;
use secureai_tests::{TestApp, assert_error, body};
use serde_json::json;

#[tokio::test]
async fn an_accepted_invitation_activates_the_user_who_can_then_sign_in() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.invite(&admin, "new@example.com", "user").await;
    let token = app.invitation_token("new@example.com").await;

    let accepted = app
        .post(
            "/api/v1/invitations/accept",
            None,
            json!({"token": token, "password": "a brand new password"}),
        )
        .await;

    assert_eq!(accepted.status(), StatusCode::OK);
    assert_eq!(body(accepted).await["status"], "active");
    let user_token = app.login("new@example.com", "a brand new password").await;
    assert_eq!(body(app.get("/api/v1/me", Some(&user_token)).await).await["role"], "user");
}

#[tokio::test]
async fn an_invitation_link_works_only_once() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.invite(&admin, "once@example.com", "user").await;
    let token = app.invitation_token("once@example.com").await;
    let first = app
        .post(
            "/api/v1/invitations/accept",
            None,
            json!({"token": token, "password": "first password!"}),
        )
        .await;
    assert_eq!(first.status(), StatusCode::OK);

    let second = app
        .post(
            "/api/v1/invitations/accept",
            None,
            json!({"token": token, "password": "second password!"}),
        )
        .await;

    assert_error(second, StatusCode::NOT_FOUND, "invitation_invalid").await;
    app.login("once@example.com", "first password!").await;
}

#[tokio::test]
async fn an_expired_invitation_says_so() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.invite(&admin, "late@example.com", "user").await;
    let token = app.invitation_token("late@example.com").await;

    app.clock.advance(Duration::hours(72));
    let response = app
        .post(
            "/api/v1/invitations/accept",
            None,
            json!({"token": token, "password": "too late password"}),
        )
        .await;

    let body = assert_error(response, StatusCode::GONE, "invitation_expired").await;
    assert!(body["message"].as_str().unwrap().contains("re-send"));
}

#[tokio::test]
async fn unknown_tokens_and_weak_passwords_are_refused() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.invite(&admin, "weak@example.com", "user").await;
    let token = app.invitation_token("weak@example.com").await;

    let unknown = app
        .post(
            "/api/v1/invitations/accept",
            None,
            json!({"token": "nope", "password": "a fine password"}),
        )
        .await;
    let short = app
        .post("/api/v1/invitations/accept", None, json!({"token": token, "password": "short"}))
        .await;
    let common = app
        .post(
            "/api/v1/invitations/accept",
            None,
            json!({"token": token, "password": "password123"}),
        )
        .await;

    assert_error(unknown, StatusCode::NOT_FOUND, "invitation_invalid").await;
    assert_eq!(
        assert_error(short, StatusCode::UNPROCESSABLE_ENTITY, "invalid_password").await["field"],
        "password"
    );
    assert_error(common, StatusCode::UNPROCESSABLE_ENTITY, "invalid_password").await;
    // The link still works after the refusals.
    let ok = app
        .post(
            "/api/v1/invitations/accept",
            None,
            json!({"token": token, "password": "a fine password"}),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
}
