//! Roles, the last-admin guard, deactivation and reactivation, seats.

use reqwest::StatusCode;
use secureai_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, assert_error, body};
use serde_json::{Value, json};

async fn patch(app: &TestApp, token: &str, id: &str, change: Value) -> reqwest::Response {
    app.http
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(token)
        .json(&change)
        .send()
        .await
        .unwrap()
}

async fn seats(app: &TestApp, admin: &str) -> Value {
    body(app.get("/api/v1/settings/seats", Some(admin)).await).await
}

async fn put_seats(app: &TestApp, admin: &str, limit: Value) -> reqwest::Response {
    app.http
        .put(app.url("/api/v1/settings/seats"))
        .bearer_auth(admin)
        .json(&json!({ "limit": limit }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_promotion_and_a_demotion_take_effect_on_the_next_request() {
    let app = TestApp::with_admin().await;
    let root = app.admin_token().await;
    let grace = app.active_user(&root, "grace@example.com", "user", "grace's password").await;
    let id = app.user_id(&root, "grace@example.com").await;
    assert_error(app.get("/api/v1/users", Some(&grace)).await, StatusCode::FORBIDDEN, "forbidden")
        .await;

    let promoted = patch(&app, &root, &id, json!({"role": "admin"})).await;
    assert_eq!(body(promoted).await["role"], "admin");
    assert_eq!(app.get("/api/v1/users", Some(&grace)).await.status(), StatusCode::OK);
    let me = body(app.get("/api/v1/me", Some(&grace)).await).await;
    assert!(me["permissions"].as_array().unwrap().contains(&json!("manage_users")));

    let demoted = patch(&app, &root, &id, json!({"role": "user"})).await;
    assert_eq!(demoted.status(), StatusCode::OK);
    assert_error(app.get("/api/v1/users", Some(&grace)).await, StatusCode::FORBIDDEN, "forbidden")
        .await;
}

#[tokio::test]
async fn the_last_active_admin_can_be_neither_demoted_nor_deactivated() {
    let app = TestApp::with_admin().await;
    let root = app.admin_token().await;
    let id = app.user_id(&root, ADMIN_EMAIL).await;

    let demote = patch(&app, &root, &id, json!({"role": "user"})).await;
    let body = assert_error(demote, StatusCode::CONFLICT, "last_admin").await;
    assert!(body["message"].as_str().unwrap().contains("promote another user"));
    assert_error(
        patch(&app, &root, &id, json!({"active": false})).await,
        StatusCode::CONFLICT,
        "last_admin",
    )
    .await;
    assert_eq!(body_of_me(&app, &root).await["role"], "admin");
}

async fn body_of_me(app: &TestApp, token: &str) -> Value {
    body(app.get("/api/v1/me", Some(token)).await).await
}

#[tokio::test]
async fn an_admin_may_demote_themself_once_another_admin_exists() {
    let app = TestApp::with_admin().await;
    let root = app.admin_token().await;
    app.active_user(&root, "heir@example.com", "admin", "the heir's password").await;
    let own_id = app.user_id(&root, ADMIN_EMAIL).await;

    let demoted = patch(&app, &root, &own_id, json!({"role": "user"})).await;

    assert_eq!(demoted.status(), StatusCode::OK);
    assert_error(app.get("/api/v1/users", Some(&root)).await, StatusCode::FORBIDDEN, "forbidden")
        .await;
}

#[tokio::test]
async fn deactivation_ends_sessions_blocks_sign_in_frees_the_seat_and_reactivation_restores_it() {
    let app = TestApp::with_admin().await;
    let root = app.admin_token().await;
    let leaver = app.active_user(&root, "leaver@example.com", "user", "leaver's password").await;
    let second_session = app.login("leaver@example.com", "leaver's password").await;
    let id = app.user_id(&root, "leaver@example.com").await;
    assert_eq!(seats(&app, &root).await["used"], 2);

    let deactivated = body(patch(&app, &root, &id, json!({"active": false})).await).await;

    assert_eq!(deactivated["status"], "deactivated");
    assert!(deactivated["deactivated_at"].is_string());
    for token in [&leaver, &second_session] {
        assert_error(
            app.get("/api/v1/me", Some(token)).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    let refused = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "leaver@example.com", "password": "leaver's password"}),
        )
        .await;
    assert_error(refused, StatusCode::FORBIDDEN, "account_deactivated").await;
    let stranger = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "leaver@example.com", "password": "a wrong guess"}),
        )
        .await;
    assert_error(stranger, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(seats(&app, &root).await["used"], 1);

    let reactivated = body(patch(&app, &root, &id, json!({"active": true})).await).await;

    assert_eq!(reactivated["status"], "active");
    assert_eq!(reactivated["created_at"], deactivated["created_at"]);
    assert_eq!(reactivated["activated_at"], deactivated["activated_at"]);
    app.login("leaver@example.com", "leaver's password").await;
    assert_eq!(seats(&app, &root).await["used"], 2);
}

#[tokio::test]
async fn the_seat_limit_refuses_invitations_and_reactivations_past_it() {
    let app = TestApp::with_admin().await;
    let root = app.admin_token().await;
    app.invite(&root, "one@example.com", "user").await;
    let set = put_seats(&app, &root, json!(2)).await;
    assert_eq!(body(set).await, json!({"limit": 2, "used": 2}));

    let over = app
        .post(
            "/api/v1/users",
            Some(&root),
            json!({"email": "two@example.com", "name": "Two", "role": "user"}),
        )
        .await;
    assert_error(over, StatusCode::CONFLICT, "seat_limit_reached").await;

    let one = app.user_id(&root, "one@example.com").await;
    patch(&app, &root, &one, json!({"active": false})).await;
    app.invite(&root, "two@example.com", "user").await;
    let back = patch(&app, &root, &one, json!({"active": true})).await;
    assert_error(back, StatusCode::CONFLICT, "seat_limit_reached").await;

    assert_eq!(body(put_seats(&app, &root, Value::Null).await).await["limit"], Value::Null);
    assert_eq!(patch(&app, &root, &one, json!({"active": true})).await.status(), StatusCode::OK);
    assert_eq!(seats(&app, &root).await, json!({"limit": null, "used": 3}));
}

#[tokio::test]
async fn the_configured_seat_limit_applies_until_an_admin_changes_it() {
    let app = TestApp::spawn_with(|c| c.seat_limit = Some(1)).await;
    app.complete_setup(ADMIN_EMAIL, "Root", ADMIN_PASSWORD).await;
    app.make_second_factors_optional().await;
    let root = app.admin_token().await;

    assert_eq!(seats(&app, &root).await, json!({"limit": 1, "used": 1}));
    let refused = app
        .post(
            "/api/v1/users",
            Some(&root),
            json!({"email": "x@example.com", "name": "X", "role": "user"}),
        )
        .await;
    assert_error(refused, StatusCode::CONFLICT, "seat_limit_reached").await;
    assert_error(
        put_seats(&app, &root, json!(0)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_limit",
    )
    .await;
}

#[tokio::test]
async fn concurrent_invitations_at_the_boundary_never_overshoot() {
    let app = TestApp::with_admin().await;
    let root = app.admin_token().await;
    put_seats(&app, &root, json!(4)).await;

    let attempts = (0..12).map(|i| {
        app.http
            .post(app.url("/api/v1/users"))
            .bearer_auth(&root)
            .json(&json!({"email": format!("rush{i}@example.com"), "name": "Rush", "role": "user"}))
            .send()
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap().status())
        .collect();

    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CREATED).count(), 3);
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count(), 9);
    assert_eq!(seats(&app, &root).await, json!({"limit": 4, "used": 4}));
}

#[tokio::test]
async fn a_name_and_department_change_is_saved_and_bad_values_are_refused() {
    let app = TestApp::with_admin().await;
    let root = app.admin_token().await;
    app.invite(&root, "dept@example.com", "user").await;
    let id = app.user_id(&root, "dept@example.com").await;

    let changed =
        body(patch(&app, &root, &id, json!({"name": "Dee Partment", "department": "Legal"})).await)
            .await;
    assert_eq!(
        (changed["name"].as_str(), changed["department"].as_str()),
        (Some("Dee Partment"), Some("Legal"))
    );
    let cleared = body(patch(&app, &root, &id, json!({"department": ""})).await).await;
    assert!(cleared["department"].is_null());

    assert_error(
        patch(&app, &root, &id, json!({"role": "root"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_role",
    )
    .await;
    assert_error(
        patch(&app, &root, &id, json!({"name": ""})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_name",
    )
    .await;
    let unknown =
        patch(&app, &root, "6f1c1f4e-7a51-4a53-9a0b-4f1f3c7e2f10", json!({"role": "user"})).await;
    assert_error(unknown, StatusCode::NOT_FOUND, "user_not_found").await;
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let app = TestApp::with_admin().await;
    let root = app.admin_token().await;
    let second =
        app.active_user(&root, "second@example.com", "admin", "second admin password").await;
    let root_id = app.user_id(&root, ADMIN_EMAIL).await;
    let second_id = app.user_id(&root, "second@example.com").await;

    for _ in 0..10 {
        let (a, b) = tokio::join!(
            patch(&app, &root, &second_id, json!({"role": "user"})),
            patch(&app, &second, &root_id, json!({"role": "user"}))
        );
        // The loser is refused as the last admin (409) or, if the winner's
        // change landed first, as no longer an admin (403).
        let statuses = [a.status(), b.status()];
        let refused =
            statuses.iter().filter(|s| matches!(**s, StatusCode::CONFLICT | StatusCode::FORBIDDEN));
        assert!(statuses.contains(&StatusCode::OK) && refused.count() == 1, "{statuses:?}");
        let (survivor, demoted) =
            if a.status() == StatusCode::OK { (&root, &second_id) } else { (&second, &root_id) };
        assert_eq!(
            patch(&app, survivor, demoted, json!({"role": "admin"})).await.status(),
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn a_withdrawn_invitation_frees_its_seat_for_a_new_one_at_the_limit() {
    let app = TestApp::with_admin().await;
    let root = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(put_seats(&app, &root, json!(2)).await.status(), StatusCode::OK);
    app.invite(&root, "stale@example.com", "user").await;
    let link = app.invitation_token("stale@example.com").await;
    let id = app.user_id(&root, "stale@example.com").await;
    let full = app
        .post(
            "/api/v1/users",
            Some(&root),
            json!({"email": "new@example.com", "name": "New", "role": "user"}),
        )
        .await;
    assert_error(full, StatusCode::CONFLICT, "seat_limit_reached").await;

    let withdrawn = app.delete(&format!("/api/v1/users/{id}/invitation"), &root).await;

    assert_eq!(withdrawn.status(), StatusCode::OK);
    assert_eq!(body(withdrawn).await["status"], "deactivated");
    assert_eq!(seats(&app, &root).await["used"], 1);
    app.invite(&root, "new@example.com", "user").await;
    let refused = app
        .post(
            "/api/v1/invitations/accept",
            None,
            json!({"token": link, "password": "a long password!"}),
        )
        .await;
    assert!(refused.status().is_client_error(), "the withdrawn link still works");
    let audit = body(app.get("/api/v1/audit?action=invitation.withdrawn", Some(&root)).await).await;
    assert_eq!(audit["items"][0]["target_id"], json!(id), "{audit}");
    let again = app.delete(&format!("/api/v1/users/{id}/invitation"), &root).await;
    assert_error(again, StatusCode::CONFLICT, "not_invited").await;
}
