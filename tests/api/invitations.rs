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

#[tokio::test]
async fn an_expired_invitation_can_be_resent_and_only_the_new_link_works() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.invite(&admin, "resend@example.com", "user").await;
    let old = app.invitation_token("resend@example.com").await;
    let id = app.user_id(&admin, "resend@example.com").await;
    app.clock.advance(Duration::hours(80));
    let admin = app.admin_token().await; // the old session timed out too
    let profile = body(app.get(&format!("/api/v1/users/{id}"), Some(&admin)).await).await;
    assert_eq!(profile["invitation"]["state"], "expired");

    let resent = app.post(&format!("/api/v1/users/{id}/invitation"), Some(&admin), json!({})).await;

    assert_eq!(resent.status(), StatusCode::OK);
    assert_eq!(body(resent).await["state"], "pending");
    let links = secureai_tests::wait_for_links(
        &app.data_dir.join("mail"),
        "resend@example.com",
        "/invitations/accept?token=",
        2,
    )
    .await;
    let new = links.iter().map(|l| l.split("token=").nth(1).unwrap()).find(|t| *t != old).unwrap();
    let profile = body(app.get(&format!("/api/v1/users/{id}"), Some(&admin)).await).await;
    assert_eq!(profile["invitation"]["state"], "pending");
    assert!(profile["invitation"]["expires_at"].is_string());
    let with_old = app
        .post(
            "/api/v1/invitations/accept",
            None,
            json!({"token": old, "password": "password for old"}),
        )
        .await;
    assert_error(with_old, StatusCode::NOT_FOUND, "invitation_invalid").await;
    let with_new = app
        .post(
            "/api/v1/invitations/accept",
            None,
            json!({"token": new, "password": "password for new"}),
        )
        .await;
    assert_eq!(with_new.status(), StatusCode::OK);
}

#[tokio::test]
async fn re_sending_a_new_link_voids_a_still_valid_one() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.invite(&admin, "twice@example.com", "user").await;
    let old = app.invitation_token("twice@example.com").await;
    let id = app.user_id(&admin, "twice@example.com").await;

    app.post(&format!("/api/v1/users/{id}/invitation"), Some(&admin), json!({})).await;

    let refused = app
        .post(
            "/api/v1/invitations/accept",
            None,
            json!({"token": old, "password": "some password 1"}),
        )
        .await;
    assert_error(refused, StatusCode::NOT_FOUND, "invitation_invalid").await;
}

#[tokio::test]
async fn only_invited_users_can_be_sent_a_new_invitation() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let root_id = app.user_id(&admin, "root@example.com").await;

    let refused =
        app.post(&format!("/api/v1/users/{root_id}/invitation"), Some(&admin), json!({})).await;

    assert_error(refused, StatusCode::CONFLICT, "not_invited").await;
    let unknown = app
        .post(
            "/api/v1/users/6f1c1f4e-7a51-4a53-9a0b-4f1f3c7e2f10/invitation",
            Some(&admin),
            json!({}),
        )
        .await;
    assert_error(unknown, StatusCode::NOT_FOUND, "user_not_found").await;
}

#[tokio::test]
async fn the_profile_summarises_activity() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.active_user(&admin, "busy@example.com", "user", "busy user password").await;
    app.login("busy@example.com", "busy user password").await;
    let id = app.user_id(&admin, "busy@example.com").await;

    let profile = body(app.get(&format!("/api/v1/users/{id}"), Some(&admin)).await).await;

    assert_eq!(profile["active_sessions"], 2);
    assert_eq!(profile["invitation"]["state"], "accepted");
    assert!(profile["last_login_at"].is_string());
    assert!(profile["activated_at"].is_string());
    assert!(profile["created_at"].is_string());
    assert!(profile["deactivated_at"].is_null());
    assert_eq!(profile["email"], "busy@example.com");
}

/// The guide's words for lifetimes come from the configuration: with
/// invitation links set to 48 hours, the email, Add User and a reset's
/// confirmation all say 48 hours, never 72.
#[tokio::test]
async fn link_lifetimes_in_pages_and_emails_follow_the_configuration() {
    let app = TestApp::with_admin_using(|config| config.invitation_ttl_hours = 48).await;
    let admin = app.admin_token().await;
    app.invite(&admin, "ada@example.com", "user").await;
    secureai_tests::wait_for_link(&app.data_dir.join("mail"), "ada@example.com", "token=").await;
    let mail = secureai_tests::read_mail(&app.data_dir.join("mail"));
    let invitation = mail.iter().find(|m| m.to.contains("ada@example.com")).unwrap();
    assert!(invitation.text.contains("expires in 48 hours"), "{}", invitation.text);
    // (Not "72" alone: the server's random port may hold those digits.)
    assert!(!invitation.text.contains("72 hours"), "{}", invitation.text);

    let panel = app.panel_browser().await;
    let add_user =
        panel.get(app.url("/admin/users/new")).send().await.unwrap().text().await.unwrap();
    assert!(add_user.contains("a link, valid 48 hours, to set a password"), "{add_user}");
    let id = app.user_id(&admin, "ada@example.com").await;
    let panel_reset = panel
        .get(app.url(&format!("/admin/users/{id}/reset-password")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(panel_reset.contains("valid 48 hours"), "{panel_reset}");
}

#[tokio::test]
async fn a_mistyped_address_is_corrected_and_the_invitation_accepted_at_the_new_one() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.invite(&admin, "ada@exmaple.com", "user").await;
    let old = app.invitation_token("ada@exmaple.com").await;
    let id = app.user_id(&admin, "ada@exmaple.com").await;
    let path = format!("/api/v1/users/{id}");
    app.active_user(&admin, "grace@example.com", "user", "grace's own password").await;

    // Refused requests change nothing: a taken address (any case), a bad
    // address, a bad field beside a good address.
    let taken = app.patch(&path, &admin, json!({"email": "GRACE@example.com"})).await;
    assert_error(taken, StatusCode::CONFLICT, "email_taken").await;
    let bad = app.patch(&path, &admin, json!({"email": "ada at example"})).await;
    assert_error(bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_email").await;
    let mixed = app.patch(&path, &admin, json!({"email": "ada@example.com", "role": "boss"})).await;
    assert_error(mixed, StatusCode::UNPROCESSABLE_ENTITY, "invalid_role").await;
    let unchanged = body(app.get(&path, Some(&admin)).await).await;
    assert_eq!(unchanged["email"], "ada@exmaple.com");

    // A correction is its own request: with other changes it is refused whole.
    let mixed =
        app.patch(&path, &admin, json!({"email": "ada@example.com", "name": "Ada L"})).await;
    assert_error(mixed, StatusCode::UNPROCESSABLE_ENTITY, "invalid_email").await;
    let corrected = app.patch(&path, &admin, json!({"email": "ada@example.com"})).await;
    assert_eq!(corrected.status(), StatusCode::OK);
    assert_eq!(body(corrected).await["email"], "ada@example.com");
    let unchanged = body(app.get(&path, Some(&admin)).await).await;
    assert_eq!(unchanged["name"], "Name of ada@exmaple.com", "the refused request wrote nothing");

    let refused = app
        .post(
            "/api/v1/invitations/accept",
            None,
            json!({"token": old, "password": "some password 1"}),
        )
        .await;
    assert_error(refused, StatusCode::NOT_FOUND, "invitation_invalid").await;
    let new = app.invitation_token("ada@example.com").await;
    let accepted = app
        .post(
            "/api/v1/invitations/accept",
            None,
            json!({"token": new, "password": "ada's own password"}),
        )
        .await;
    assert_eq!(accepted.status(), StatusCode::OK);
    app.login("ada@example.com", "ada's own password").await;

    let audit = body(app.get("/api/v1/audit?action=user.email_changed", Some(&admin)).await).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    assert_eq!(
        audit["items"][0]["changes"][0],
        json!({"field": "email", "before": "ada@exmaple.com", "after": "ada@example.com"})
    );
    // Once joined, the address is the person's; the same address is no change.
    let joined = app.patch(&path, &admin, json!({"email": "ada@corp.example"})).await;
    assert_error(joined, StatusCode::CONFLICT, "email_not_changeable").await;
    let same = app.patch(&path, &admin, json!({"email": "ada@example.com", "name": "Ada L"})).await;
    assert_eq!(body(same).await["name"], "Ada L");
}
