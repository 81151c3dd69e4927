//! The admin panel in real Chromium (headless, through chromedriver): seed
//! scenarios followed end to end through the pages, as an administrator
//! clicks them. Each saves screenshots of the pages it passes into
//! `docs/screenshots/` (shown in the README).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use secureai_tests::browser::Browser;
use secureai_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, body, wait_for_link};
use serde_json::json;

async fn sign_in(browser: &Browser, app: &TestApp, email: &str, password: &str) {
    browser.go(&app.url("/sign-in")).await;
    browser.fill("email", email).await;
    browser.fill("password", password).await;
    browser.click("Sign in").await;
}

/// Seed: "Admin Panel > Users > Add User: enter email, name, role, Send
/// Invitation; the user gets an email, sets a password, signs in."
#[tokio::test]
async fn onboarding_add_user_accept_the_emailed_link_and_sign_in() {
    let app = TestApp::with_admin().await;
    let browser = Browser::laptop().await;

    browser.go(&app.url("/sign-in")).await;
    browser.screenshot("sign-in").await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(browser.url().await, app.url("/admin/users"));
    assert!(browser.text().await.contains("1 user"));

    browser.click("Add User").await;
    browser.fill("email", "ada@example.com").await;
    browser.fill("name", "Ada Lovelace").await;
    browser.choose("role", "user").await;
    browser.fill("department", "Research").await;
    browser.screenshot("add-user").await;
    browser.click("Send Invitation").await;
    let profile = browser.text().await;
    assert!(profile.contains("Invitation sent to ada@example.com."), "{profile}");
    assert!(profile.contains("invited") && profile.contains("pending, the link works until"));
    browser.screenshot("user-profile").await;

    // A second invitation of the same address is refused in words.
    browser.go(&app.url("/admin/users/new")).await;
    browser.fill("email", "ADA@example.com").await;
    browser.fill("name", "Ada Again").await;
    browser.click("Send Invitation").await;
    assert!(browser.text().await.to_lowercase().contains("already"));

    browser.go(&app.url("/admin/users")).await;
    let list = browser.text().await;
    assert!(list.contains("2 users") && list.contains("Ada Lovelace"), "{list}");
    browser.screenshot("users").await;
    browser.click("Sign out").await;
    assert_eq!(browser.url().await, app.url("/sign-in"));

    let link =
        wait_for_link(&app.data_dir.join("mail"), "ada@example.com", "/invitations/accept?token=")
            .await;
    browser.go(&link).await;
    browser.screenshot("accept-invitation").await;
    browser.fill("password", "analytical engine notes").await;
    browser.fill("password_confirm", "analytical engine notes").await;
    browser.click("Activate account").await;
    sign_in(&browser, &app, "ada@example.com", "analytical engine notes").await;
    let start = browser.text().await;
    assert!(start.contains("Signed in as ada@example.com"), "{start}");
    assert!(!start.contains("Users"), "no admin navigation for a user: {start}");
    browser.go(&app.url("/admin/users")).await;
    assert!(browser.text().await.contains("Administrators only"));
    browser.close().await;
}

/// The users table: search, filters and sort change what is listed.
#[tokio::test]
async fn the_users_table_searches_and_filters() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    for (email, role) in [
        ("ada@example.com", "admin"),
        ("grace@example.com", "user"),
        ("alan@lab.example.com", "user"),
    ] {
        app.invite(&admin, email, role).await;
    }
    let browser = Browser::laptop().await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    browser.fill("q", "gra").await;
    browser.click("Apply").await;
    let found = browser.text().await;
    assert!(found.contains("1 user") && found.contains("grace@example.com"), "{found}");
    assert!(!found.contains("ada@example.com"));

    browser.fill("q", "").await;
    browser.choose("role", "admin").await;
    browser.choose("status", "invited").await;
    browser.click("Apply").await;
    let admins = browser.text().await;
    assert!(
        admins.contains("ada@example.com") && !admins.contains("grace@example.com"),
        "{admins}"
    );
    browser.close().await;
}

/// Seed: "they lose access to the Admin Panel immediately" — a demoted
/// admin's next page load has no admin navigation and no admin pages.
#[tokio::test]
async fn a_demoted_admin_loses_the_admin_panel_on_the_next_page_load() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.active_user(&admin, "second@example.com", "admin", "second admin passphrase").await;
    let browser = Browser::laptop().await;
    sign_in(&browser, &app, "second@example.com", "second admin passphrase").await;
    assert!(browser.text().await.contains("Users"));
    let id = app.user_id(&admin, "second@example.com").await;
    let response = app
        .http
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"role": "user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(response).await["role"], "user");
    browser.go(&app.url("/admin/users")).await;
    assert!(browser.text().await.contains("Administrators only"));
    browser.go(&app.url("/")).await;
    assert!(!browser.text().await.contains("Users"));
    browser.close().await;
}
