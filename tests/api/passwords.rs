//! Password resets, password changes, terminating sessions, self-service.

use chrono::Duration;
use reqwest::StatusCode;
use secureai_tests::{TestApp, assert_error, body, read_mail, wait_for_link};
use serde_json::json;

async fn reset_token(app: &TestApp, email: &str) -> String {
    let link =
        wait_for_link(&app.data_dir.join("mail"), email, "/password-resets/complete?token=").await;
    link.split("token=").nth(1).unwrap().to_owned()
}

async fn delete(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.http.delete(app.url(path)).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn a_reset_keeps_the_old_password_until_completed_then_ends_every_session() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let session = app.active_user(&admin, "forgot@example.com", "user", "the old password").await;
    let id = app.user_id(&admin, "forgot@example.com").await;

    let requested =
        app.post(&format!("/api/v1/users/{id}/password-reset"), Some(&admin), json!({})).await;

    assert_eq!(requested.status(), StatusCode::ACCEPTED);
    assert!(body(requested).await["expires_at"].is_string());
    let token = reset_token(&app, "forgot@example.com").await;
    let mail = read_mail(&app.data_dir.join("mail"));
    let reset_mail = mail.iter().find(|m| m.subject == "Reset your SecureAI password").unwrap();
    assert!(reset_mail.text.contains("current password keeps working"));
    // Rule 10: the current password still works before completion.
    app.login("forgot@example.com", "the old password").await;

    let completed = app
        .post(
            "/api/v1/password-resets/complete",
            None,
            json!({"token": token, "password": "the new password"}),
        )
        .await;

    assert_eq!(completed.status(), StatusCode::OK);
    assert_error(
        app.get("/api/v1/me", Some(&session)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let old = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "forgot@example.com", "password": "the old password"}),
        )
        .await;
    assert_error(old, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    app.login("forgot@example.com", "the new password").await;
    let again = app
        .post(
            "/api/v1/password-resets/complete",
            None,
            json!({"token": token, "password": "yet another one"}),
        )
        .await;
    assert_error(again, StatusCode::NOT_FOUND, "reset_invalid").await;
}

#[tokio::test]
async fn a_reset_link_expires_after_72_hours() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.active_user(&admin, "slow@example.com", "user", "slow user password").await;
    let id = app.user_id(&admin, "slow@example.com").await;
    app.post(&format!("/api/v1/users/{id}/password-reset"), Some(&admin), json!({})).await;
    let token = reset_token(&app, "slow@example.com").await;

    app.clock.advance(Duration::hours(72));

    let late = app
        .post(
            "/api/v1/password-resets/complete",
            None,
            json!({"token": token, "password": "too late password"}),
        )
        .await;
    assert_error(late, StatusCode::GONE, "reset_expired").await;
    let page = app.get(&format!("/password-resets/complete?token={token}"), None).await;
    assert_eq!(page.status(), StatusCode::GONE);
}

#[tokio::test]
async fn only_active_users_can_be_sent_a_reset() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.invite(&admin, "pending@example.com", "user").await;
    let id = app.user_id(&admin, "pending@example.com").await;

    let refused =
        app.post(&format!("/api/v1/users/{id}/password-reset"), Some(&admin), json!({})).await;

    assert_error(refused, StatusCode::CONFLICT, "user_not_active").await;
}

#[tokio::test]
async fn the_reset_page_sets_a_new_password_without_javascript() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.active_user(&admin, "page@example.com", "user", "page old password").await;
    let id = app.user_id(&admin, "page@example.com").await;
    app.post(&format!("/api/v1/users/{id}/password-reset"), Some(&admin), json!({})).await;
    let token = reset_token(&app, "page@example.com").await;

    let form = app.get(&format!("/password-resets/complete?token={token}"), None).await;
    assert!(form.text().await.unwrap().contains("Choose a new password"));
    let done = app
        .http
        .post(app.url("/password-resets/complete"))
        .form(&[
            ("token", token.as_str()),
            ("password", "page new password"),
            ("password_confirm", "page new password"),
        ])
        .send()
        .await
        .unwrap();

    assert!(done.text().await.unwrap().contains("Your password is changed"));
    app.login("page@example.com", "page new password").await;
}

#[tokio::test]
async fn an_admin_terminates_every_session_of_a_user_at_once() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let first = app.active_user(&admin, "shared@example.com", "user", "shared password!").await;
    let second = app.login("shared@example.com", "shared password!").await;
    let id = app.user_id(&admin, "shared@example.com").await;

    let ended = body(delete(&app, &format!("/api/v1/users/{id}/sessions"), &admin).await).await;

    assert_eq!(ended["ended"], 2);
    for token in [&first, &second] {
        assert_error(
            app.get("/api/v1/me", Some(token)).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    app.login("shared@example.com", "shared password!").await;
}

#[tokio::test]
async fn changing_ones_password_needs_the_current_one_and_ends_the_other_sessions() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let here = app.active_user(&admin, "me@example.com", "user", "my first password").await;
    let elsewhere = app.login("me@example.com", "my first password").await;

    let wrong = app
        .post(
            "/api/v1/me/password",
            Some(&here),
            json!({"current_password": "a guess", "new_password": "my second password"}),
        )
        .await;
    assert_error(wrong, StatusCode::UNPROCESSABLE_ENTITY, "invalid_current_password").await;
    let weak = app
        .post(
            "/api/v1/me/password",
            Some(&here),
            json!({"current_password": "my first password", "new_password": "short"}),
        )
        .await;
    assert_error(weak, StatusCode::UNPROCESSABLE_ENTITY, "invalid_new_password").await;

    let changed = app
        .post(
            "/api/v1/me/password",
            Some(&here),
            json!({"current_password": "my first password", "new_password": "my second password"}),
        )
        .await;

    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/v1/me", Some(&here)).await.status(), StatusCode::OK);
    assert_error(
        app.get("/api/v1/me", Some(&elsewhere)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    app.login("me@example.com", "my second password").await;
}

#[tokio::test]
async fn a_user_renames_themself_and_signs_out_everywhere() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let here = app.active_user(&admin, "self@example.com", "user", "self service pw").await;
    let elsewhere = app.login("self@example.com", "self service pw").await;

    let renamed = app
        .http
        .patch(app.url("/api/v1/me"))
        .bearer_auth(&here)
        .json(&json!({"name": "Selfie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(renamed).await["name"], "Selfie");
    let blank = app
        .http
        .patch(app.url("/api/v1/me"))
        .bearer_auth(&here)
        .json(&json!({"name": " "}))
        .send()
        .await
        .unwrap();
    assert_error(blank, StatusCode::UNPROCESSABLE_ENTITY, "invalid_name").await;

    let out = body(delete(&app, "/api/v1/me/sessions", &here).await).await;

    assert_eq!(out["ended"], 2);
    for token in [&here, &elsewhere] {
        assert_error(
            app.get("/api/v1/me", Some(token)).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
}

#[tokio::test]
async fn deactivation_voids_a_pending_reset_link_for_good() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.active_user(&admin, "paused@example.com", "user", "paused password").await;
    let id = app.user_id(&admin, "paused@example.com").await;
    app.post(&format!("/api/v1/users/{id}/password-reset"), Some(&admin), json!({})).await;
    let token = reset_token(&app, "paused@example.com").await;
    let patch = |active: bool| {
        app.http
            .patch(app.url(&format!("/api/v1/users/{id}")))
            .bearer_auth(&admin)
            .json(&json!({ "active": active }))
            .send()
    };

    assert_eq!(patch(false).await.unwrap().status(), StatusCode::OK);
    assert_eq!(patch(true).await.unwrap().status(), StatusCode::OK);

    let late = app
        .post(
            "/api/v1/password-resets/complete",
            None,
            json!({"token": token, "password": "sneaky new password"}),
        )
        .await;
    assert_error(late, StatusCode::NOT_FOUND, "reset_invalid").await;
    app.login("paused@example.com", "paused password").await;
}
