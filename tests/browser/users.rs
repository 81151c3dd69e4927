//! The Users pages: onboarding, search and filters, roles, the last admin,
//! offboarding, password resets and ending sessions.

use secureai_tests::browser::{Browser, take_turn};
use secureai_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, body, wait_for_link};
use serde_json::json;

use crate::{ADA_PASSWORD, open_profile, sign_in, with_ada};

/// Seed: "Admin Panel > Users > Add User: enter email, name, role, Send
/// Invitation; the user gets an email, sets a password, signs in."
#[tokio::test]
async fn onboarding_add_user_accept_the_emailed_link_and_sign_in() {
    let app = TestApp::with_admin().await;
    let turn = take_turn().await;
    let browser = Browser::laptop(&turn).await;

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
    assert!(profile.contains("pending, the link works until"), "{profile}");
    assert_eq!(browser.text_of("status-badge").await, "Invited");
    assert!(browser.text().await.contains("Admin Panel › Users"), "the guide's words");
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
    let turn = take_turn().await;
    let browser = Browser::laptop(&turn).await;
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
    // Export CSV carries the filters: the file holds what the table shows.
    let export = browser.href_of("Export CSV").await;
    assert!(export.contains("role=admin") && export.contains("status=invited"), "{export}");
    let panel = app.panel_browser().await;
    let csv = panel.get(app.url(&export)).send().await.unwrap().text().await.unwrap();
    assert!(csv.starts_with("email,name,role,department,"), "{csv}");
    assert!(csv.contains("ada@example.com") && !csv.contains("grace@example.com"), "{csv}");

    // Paging: 25 a page, "Next page" carries the filters and the cursor.
    for i in 0..26 {
        app.invite(&admin, &format!("member{i:02}@example.com"), "user").await;
    }
    browser.go(&app.url("/admin/users?sort=email")).await;
    let first = browser.table_text().await;
    assert!(
        first.contains("member00@example.com") && !first.contains("root@example.com"),
        "{first}"
    );
    browser.click("Next page").await;
    let second = browser.table_text().await;
    assert!(
        second.contains("root@example.com") && !second.contains("member00@example.com"),
        "{second}"
    );
    assert!(browser.url().await.contains("sort=email"));
    browser.close().await;
}

/// Seed: "they lose access to the Admin Panel immediately" — a demoted
/// admin's next page load has no admin navigation and no admin pages.
#[tokio::test]
async fn a_demoted_admin_loses_the_admin_panel_on_the_next_page_load() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.active_user(&admin, "second@example.com", "admin", "second admin passphrase").await;
    let turn = take_turn().await;
    let browser = Browser::laptop(&turn).await;
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

/// Seed: promoting a user, then transferring admin: the new admin demotes
/// the old one.
#[tokio::test]
async fn promote_then_demote_to_transfer_the_admin_role() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let ada = with_ada(&app).await;
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    open_profile(&browser, &app, &ada).await;
    browser.choose("role", "admin").await;
    browser.click("Save").await;
    let promoted = browser.text().await;
    assert!(promoted.contains("Saved."), "{promoted}");
    browser.screenshot("user-profile-promoted").await;
    browser.click("Sign out").await;

    sign_in(&browser, &app, "ada@example.com", ADA_PASSWORD).await;
    assert_eq!(browser.url().await, app.url("/admin/users"), "Ada now has the Admin Panel");
    let root = app.user_id(&app.admin_token().await, ADMIN_EMAIL).await;
    open_profile(&browser, &app, &root).await;
    browser.choose("role", "user").await;
    browser.click("Save").await;
    assert!(browser.text().await.contains("Saved."));
    let me = body(app.get("/api/v1/me", Some(&app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await)).await)
        .await;
    assert_eq!(me["role"], "user");
    browser.close().await;
}

/// Seed: the last admin cannot demote or deactivate themselves; the panel
/// says why and what to do.
#[tokio::test]
async fn the_last_admin_is_refused_in_words() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let root = app.user_id(&app.admin_token().await, ADMIN_EMAIL).await;
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    open_profile(&browser, &app, &root).await;
    browser.choose("role", "user").await;
    browser.click("Save").await;
    let refused = browser.text().await;
    assert!(refused.to_lowercase().contains("promote"), "{refused}");
    browser.screenshot("last-admin-refused").await;
    let me = body(app.get("/api/v1/me", Some(&app.admin_token().await)).await).await;
    assert_eq!(me["role"], "admin");
    browser.close().await;
}

/// Reactivating someone who never accepted their invitation: the profile
/// says they will be invited again, the notice says the old link is void,
/// and re-sending gives them a new link that works.
#[tokio::test]
async fn reactivating_someone_who_never_joined_invites_them_again() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let bob = app.invite(&admin, "bob@example.com", "user").await;
    let id = bob["id"].as_str().unwrap().to_owned();
    let mail = app.data_dir.join("mail");
    let first = wait_for_link(&mail, "bob@example.com", "/invitations/accept?token=").await;
    let stopped = app
        .http
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.status().as_u16(), 200);
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    open_profile(&browser, &app, &id).await;
    assert!(
        browser.text_of("never-activated").await.contains("reactivating makes them invited again")
    );
    browser.click_checkbox("active").await;
    browser.click("Save").await;
    let page = browser.text().await;
    assert!(page.contains("bob@example.com is invited again."), "{page}");
    assert!(page.contains("the earlier link no longer works"), "{page}");
    browser.screenshot("profile-reinvited").await;
    browser.click("Re-send invitation").await;
    browser.click("Re-send invitation").await;
    assert!(browser.text().await.contains("A new invitation was sent to bob@example.com"));
    browser.click("Sign out").await;

    let links =
        secureai_tests::wait_for_links(&mail, "bob@example.com", "/invitations/accept?token=", 2)
            .await;
    let second = links.into_iter().find(|l| *l != first).unwrap();
    browser.go(&first).await;
    assert!(!browser.text().await.contains("Activate account"), "the first link is void");
    browser.go(&second).await;
    browser.fill("password", "bob's brand new passphrase").await;
    browser.fill("password_confirm", "bob's brand new passphrase").await;
    browser.click("Activate account").await;
    sign_in(&browser, &app, "bob@example.com", "bob's brand new passphrase").await;
    assert!(browser.text().await.contains("Signed in as bob@example.com"));
    browser.close().await;
}

/// Seed offboarding: deactivate → the user's open session is signed out on
/// its next click, the seat is freed; reactivation restores sign-in.
#[tokio::test]
async fn offboarding_deactivation_signs_the_user_out_and_frees_the_seat_then_reactivation() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let ada = with_ada(&app).await;
    let admin_token = app.admin_token().await;
    let seats = app.put("/api/v1/settings/seats", Some(&admin_token), json!({"limit": 5})).await;
    assert_eq!(seats.status(), reqwest::StatusCode::OK);

    let ada_window = Browser::laptop(&turn).await;
    sign_in(&ada_window, &app, "ada@example.com", ADA_PASSWORD).await;
    assert!(ada_window.text().await.contains("Signed in as ada@example.com"));

    let admin = Browser::laptop(&turn).await;
    sign_in(&admin, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(admin.text().await.contains("Seats: 2 of 5 in use"));
    open_profile(&admin, &app, &ada).await;
    admin.click_checkbox("active").await;
    admin.click("Save").await;
    let saved = admin.text().await;
    assert!(saved.contains("Saved."), "{saved}");
    assert_eq!(admin.text_of("status-badge").await, "Deactivated");
    admin.screenshot("user-deactivated").await;
    admin.go(&app.url("/admin/users")).await;
    assert!(admin.text().await.contains("Seats: 1 of 5 in use"), "the seat is free");

    // Ada's open page: her next click finds her signed out.
    ada_window.click("SecureAI").await;
    assert_eq!(ada_window.url().await, app.url("/sign-in"));
    sign_in(&ada_window, &app, "ada@example.com", ADA_PASSWORD).await;
    assert!(ada_window.text().await.contains("Your account has been deactivated"));

    open_profile(&admin, &app, &ada).await;
    admin.click_checkbox("active").await;
    admin.click("Save").await;
    assert_eq!(admin.text_of("status-badge").await, "Active");
    sign_in(&ada_window, &app, "ada@example.com", ADA_PASSWORD).await;
    assert!(ada_window.text().await.contains("Signed in as ada@example.com"));
    admin.close().await;
    ada_window.close().await;
}

/// Seed: Reset Password (with a confirmation step) emails a link; the user
/// chooses a new password with it.
#[tokio::test]
async fn reset_password_from_the_profile() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let ada = with_ada(&app).await;
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    open_profile(&browser, &app, &ada).await;
    browser.click("Reset Password").await;
    assert!(browser.text().await.contains("Reset password?"));
    browser.screenshot("confirm-reset-password").await;
    browser.click("Reset Password").await;
    assert!(browser.text().await.contains("A password reset link was sent to ada@example.com"));
    browser.click("Sign out").await;

    let link = wait_for_link(
        &app.data_dir.join("mail"),
        "ada@example.com",
        "/password-resets/complete?token=",
    )
    .await;
    browser.go(&link).await;
    browser.fill("password", "a brand new passphrase").await;
    browser.fill("password_confirm", "a brand new passphrase").await;
    browser.click("Set new password").await;
    sign_in(&browser, &app, "ada@example.com", "a brand new passphrase").await;
    assert!(browser.text().await.contains("Signed in as ada@example.com"));
    browser.close().await;
}

/// The guide: "User cannot log in" — after failed attempts their sign-in is
/// paused; the admin sees it on the profile and allows sign-in again.
#[tokio::test]
async fn a_user_who_cannot_log_in_after_failed_attempts_is_let_back_in() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let ada = with_ada(&app).await;
    let wrong = json!({"email": "ada@example.com", "password": "not her password"});
    for _ in 0..5 {
        app.post("/api/v1/auth/login", None, wrong.clone()).await;
    }
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    open_profile(&browser, &app, &ada).await;
    assert!(
        browser.text_of("sign-in-paused").await.starts_with("Paused after failed attempts until")
    );
    browser.screenshot("profile-sign-in-paused").await;
    browser.click("Allow sign-in now").await;
    assert!(browser.text().await.contains("Allow sign-in now?"));
    browser.click("Allow sign-in now").await;
    let page = browser.text().await;
    assert!(page.contains("ada@example.com may sign in again now."), "{page}");
    assert!(!page.contains("Paused after failed attempts"));
    browser.click("Sign out").await;
    sign_in(&browser, &app, "ada@example.com", ADA_PASSWORD).await;
    assert!(browser.text().await.contains("Signed in as ada@example.com"));
    browser.close().await;
}

/// The guide's "Edit user": an admin corrects a user's name and department
/// on the profile (and clears the department), audited before → after.
#[tokio::test]
async fn name_and_department_are_edited_on_the_profile() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let ada = with_ada(&app).await;
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    open_profile(&browser, &app, &ada).await;
    browser.fill("name", "Ada King").await;
    browser.fill("department", "Research").await;
    browser.click("Save").await;
    let page = browser.text().await;
    assert!(page.contains("Saved.") && page.contains("Ada King"), "{page}");
    assert!(page.contains("Research"), "{page}");
    let admin = app.admin_token().await;
    let user = body(app.get(&format!("/api/v1/users/{ada}"), Some(&admin)).await).await;
    assert_eq!(
        (user["name"].as_str(), user["department"].as_str()),
        (Some("Ada King"), Some("Research"))
    );
    let audit =
        body(app.get("/api/v1/audit?action=user.profile_changed", Some(&admin)).await).await;
    let changes = audit["items"][0]["changes"].to_string();
    assert!(changes.contains("Ada King") && changes.contains("Research"), "{changes}");

    browser.fill("department", "").await;
    browser.click("Save").await;
    let user = body(app.get(&format!("/api/v1/users/{ada}"), Some(&admin)).await).await;
    assert!(user["department"].is_null(), "{user}");
    browser.fill("name", " ").await;
    browser.click("Save").await;
    assert!(browser.text().await.to_lowercase().contains("name"), "a blank name is refused");
    let user = body(app.get(&format!("/api/v1/users/{ada}"), Some(&admin)).await).await;
    assert_eq!(user["name"], "Ada King");
    browser.close().await;
}

/// Seed: Terminate Sessions ends the user's open sessions at once.
#[tokio::test]
async fn terminate_sessions_signs_the_user_out_everywhere() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let ada = with_ada(&app).await;
    let ada_window = Browser::laptop(&turn).await;
    sign_in(&ada_window, &app, "ada@example.com", ADA_PASSWORD).await;
    let admin = Browser::laptop(&turn).await;
    sign_in(&admin, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    open_profile(&admin, &app, &ada).await;
    admin.click("Terminate Sessions").await;
    admin.click("Terminate Sessions").await;
    assert!(admin.text().await.contains("has ended; they must sign in again"));
    ada_window.click("SecureAI").await;
    assert_eq!(ada_window.url().await, app.url("/sign-in"));
    admin.close().await;
    ada_window.close().await;
}
