//! The admin panel in real Chromium (headless, through chromedriver): seed
//! scenarios followed end to end through the pages, as an administrator
//! clicks them. Each saves screenshots of the pages it passes into
//! `docs/screenshots/` (shown in the README).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use secureai_tests::browser::{Browser, take_turn};
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

const ADA_PASSWORD: &str = "analytical engine notes";

/// An app whose first admin is signed in in `admin`, with Ada active.
async fn with_ada(app: &TestApp) -> String {
    let admin = app.admin_token().await;
    app.active_user(&admin, "ada@example.com", "user", ADA_PASSWORD).await;
    app.user_id(&admin, "ada@example.com").await
}

async fn open_profile(browser: &Browser, app: &TestApp, id: &str) {
    browser.go(&app.url(&format!("/admin/users/{id}"))).await;
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
    assert!(saved.contains("Saved.") && saved.contains("deactivated"), "{saved}");
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
    assert!(admin.text().await.contains("active"));
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
    browser.click("Send reset link").await;
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
    admin.click("Terminate sessions").await;
    assert!(admin.text().await.contains("has ended; they must sign in again"));
    ada_window.click("SecureAI").await;
    assert_eq!(ada_window.url().await, app.url("/sign-in"));
    admin.close().await;
    ada_window.close().await;
}

/// Seed troubleshooting, "user cannot log in": their invitation expired —
/// the profile says so; Re-send invitation gives them a new link.
#[tokio::test]
async fn a_user_who_cannot_log_in_because_the_invitation_expired_gets_a_new_one() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let admin_token = app.admin_token().await;
    let invited = app.invite(&admin_token, "grace@example.com", "user").await;
    let id = invited["id"].as_str().unwrap().to_owned();
    let first = wait_for_link(
        &app.data_dir.join("mail"),
        "grace@example.com",
        "/invitations/accept?token=",
    )
    .await;
    app.clock.advance(chrono::Duration::hours(73));
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    open_profile(&browser, &app, &id).await;
    let profile = browser.text().await;
    assert!(profile.contains("expired on") && profile.contains("re-send it"), "{profile}");
    browser.click("Re-send invitation").await;
    browser.click("Re-send invitation").await;
    assert!(browser.text().await.contains("A new invitation was sent to grace@example.com"));
    browser.click("Sign out").await;
    let links = secureai_tests::wait_for_links(
        &app.data_dir.join("mail"),
        "grace@example.com",
        "/invitations/accept?token=",
        2,
    )
    .await;
    let new = links.iter().find(|l| **l != first).expect("a second, different link");
    browser.go(new).await;
    browser.fill("password", "hopper compiler notes").await;
    browser.fill("password_confirm", "hopper compiler notes").await;
    browser.click("Activate account").await;
    sign_in(&browser, &app, "grace@example.com", "hopper compiler notes").await;
    assert!(browser.text().await.contains("Signed in as grace@example.com"));
    browser.close().await;
}

/// My profile: change one's name and password, sign out everywhere.
#[tokio::test]
async fn my_profile_name_password_and_sign_out_everywhere() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    with_ada(&app).await;
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, "ada@example.com", ADA_PASSWORD).await;
    browser.click("Name of ada@example.com").await;
    assert_eq!(browser.url().await, app.url("/me"));
    browser.fill("name", "Ada King").await;
    browser.click("Save name").await;
    assert!(browser.text().await.contains("Your name is saved."));

    browser.fill("current_password", "not my password").await;
    browser.fill("new_password", "a fresh passphrase").await;
    browser.fill("new_password_confirm", "a fresh passphrase").await;
    browser.click("Change password").await;
    assert!(browser.text().await.contains("current password is not correct"));
    browser.fill("current_password", ADA_PASSWORD).await;
    browser.fill("new_password", "a fresh passphrase").await;
    browser.fill("new_password_confirm", "a fresh passphrase").await;
    browser.click("Change password").await;
    assert!(browser.text().await.contains("Your password is changed"));
    browser.screenshot("my-profile").await;

    browser.click("Sign out everywhere").await;
    assert_eq!(browser.url().await, app.url("/sign-in"));
    sign_in(&browser, &app, "ada@example.com", "a fresh passphrase").await;
    assert!(browser.text().await.contains("Ada King"));
    browser.close().await;
}

/// Settings: the seat limit, and Email with "Send test email" showing the
/// server's answer, or what went wrong.
#[tokio::test]
async fn settings_seats_and_a_test_email_through_a_real_smtp_server() {
    use secureai_tests::smtp::{Security, SmtpPeer, free_port};
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let smtp = SmtpPeer::start(Security::None, None);
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    browser.click("Settings").await;
    browser.fill("limit", "2").await;
    browser.click("Save seats").await;
    assert!(browser.text().await.contains("The seat limit is saved."));
    browser.go(&app.url("/admin/users")).await;
    assert!(browser.text().await.contains("Seats: 1 of 2 in use"));
    for (email, name) in [("ada@example.com", "Ada"), ("bob@example.com", "Bob")] {
        browser.go(&app.url("/admin/users/new")).await;
        browser.fill("email", email).await;
        browser.fill("name", name).await;
        browser.click("Send Invitation").await;
    }
    let refused = browser.text().await;
    assert!(refused.contains("seat"), "the third seat is refused in words: {refused}");

    browser.go(&app.url("/admin/settings")).await;
    browser.click_checkbox("smtp").await;
    browser.fill("host", "127.0.0.1").await;
    browser.fill("port", &smtp.port.to_string()).await;
    browser.choose("security", "none").await;
    browser.click("Save email settings").await;
    assert!(browser.text().await.contains("The email settings are saved"));
    browser.click("Send test email").await;
    let sent = browser.text().await;
    assert!(sent.contains("A test email was sent to root@example.com"), "{sent}");
    browser.screenshot("settings").await;
    let received = smtp.wait_for(1, 10).await;
    assert!(received.iter().any(|m| m.to.contains("root@example.com")));

    browser.fill("port", &free_port().to_string()).await;
    browser.click("Save email settings").await;
    browser.click("Send test email").await;
    let failed = browser.text().await;
    assert!(failed.contains("was not delivered"), "{failed}");
    browser.close().await;
}

/// Seed "Inviting Multiple Users": upload → preview with reasons → Import →
/// the report, with the skipped rows downloadable as CSV.
#[tokio::test]
async fn bulk_import_with_preview_and_the_error_report() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let file = app.data_dir.join("new-hires.csv");
    std::fs::write(
        &file,
        "email,name,role,department\n\
         ada@example.com,Ada Lovelace,user,Research\n\
         not-an-email,Nobody,user,\n\
         grace@example.com,Grace Hopper,admin,Engineering\n\
         root@example.com,Root Again,user,\n",
    )
    .unwrap();
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    browser.click("Import Users").await;
    browser.upload("file", &file).await;
    browser.click("Preview").await;
    let preview = browser.text().await;
    assert!(preview.contains("4 rows — 2 will be invited, 2 will be skipped."), "{preview}");
    assert!(preview.contains("already an active user"), "{preview}");
    browser.screenshot("import-preview").await;
    let users = body(app.get("/api/v1/users", Some(&app.admin_token().await)).await).await;
    assert_eq!(users["total"], 1, "the preview wrote nothing");

    browser.click("Import 2 users").await;
    let report = browser.text().await;
    assert!(report.contains("2 invited, 2 skipped."), "{report}");
    browser.screenshot("import-report").await;
    let href = browser
        .driver
        .find(thirtyfour::By::LinkText("Download the skipped rows (CSV)"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let token = app.admin_token().await;
    let csv = app.get(&href, Some(&token)).await.text().await.unwrap();
    assert!(csv.contains("not-an-email") && csv.contains("root@example.com"), "{csv}");
    browser.go(&app.url("/admin/users")).await;
    assert!(browser.text().await.contains("3 users"));
    browser.close().await;
}

/// Audit log: filters and the CSV export of what is shown.
#[tokio::test]
async fn the_audit_log_filters_and_exports() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let ada = with_ada(&app).await;
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    browser.click("Audit log").await;
    let all = browser.table_text().await;
    assert!(all.contains("user.invited") && all.contains("sign_in.succeeded"), "{all}");
    browser.choose("action", "user.invited").await;
    browser.click("Apply").await;
    let invited = browser.table_text().await;
    assert!(
        invited.contains("ada@example.com") && !invited.contains("sign_in.succeeded"),
        "{invited}"
    );
    browser.screenshot("audit-log").await;
    let href = browser
        .driver
        .find(thirtyfour::By::LinkText("Export CSV"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(href.contains("action=user.invited"), "{href}");
    let csv = app.get(&href, Some(&app.admin_token().await)).await.text().await.unwrap();
    assert!(csv.contains("user.invited") && !csv.contains("sign_in.succeeded"), "{csv}");

    // From a user's profile, their events.
    open_profile(&browser, &app, &ada).await;
    browser.click("Their audit events").await;
    assert!(browser.url().await.contains(&ada));
    let theirs = browser.table_text().await;
    assert!(
        theirs.contains("invitation.accepted") && !theirs.contains("setup.completed"),
        "{theirs}"
    );
    browser.close().await;
}

/// Settings > SSO configured in the panel against a real OpenID Provider;
/// then an invited SSO user signs in with "Sign in with SSO".
#[tokio::test]
async fn sso_configured_in_the_panel_and_a_user_signs_in_with_sso() {
    use secureai_tests::oidc::{CLIENT_SECRET, OidcPeer};
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let idp = OidcPeer::start(&app.url("/auth/oidc/callback"));
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    browser.go(&app.url("/admin/settings")).await;
    browser.click("Configure single sign-on").await;
    browser.click_checkbox("mode-oidc").await;
    browser.fill("issuer_url", "http://127.0.0.1:9/not-there").await;
    browser.fill("client_id", "secureai").await;
    browser.fill("client_secret", CLIENT_SECRET).await;
    browser.click("Save and check").await;
    assert!(
        browser.text().await.contains("discovery failed"),
        "a dead provider is refused in words"
    );
    browser.click_checkbox("mode-oidc").await;
    browser.fill("issuer_url", &idp.issuer).await;
    browser.fill("client_secret", CLIENT_SECRET).await;
    browser.click("Save and check").await;
    let saved = browser.text().await;
    assert!(saved.contains("The SSO settings are saved and checked."), "{saved}");
    browser.screenshot("sso-settings").await;

    browser.go(&app.url("/admin/users/new")).await;
    assert!(browser.text().await.contains("sign in through your identity provider"));
    browser.fill("email", "ada@example.com").await;
    browser.fill("name", "Ada Lovelace").await;
    browser.click("Send Invitation").await;
    let profile = browser.text().await;
    assert!(profile.contains("single sign-on") && !profile.contains("Reset Password"), "{profile}");
    browser.click("Sign out").await;

    browser.screenshot("sign-in-sso").await;
    browser.click("Sign in with SSO").await;
    assert!(browser.url().await.starts_with(&idp.issuer), "at the provider");
    browser.fill_named("login", "ada@example.com").await;
    browser.fill_named("password", "anything").await;
    browser.click("Sign-in").await;
    let start = browser.text().await;
    assert!(start.contains("Signed in as ada@example.com"), "{start}");
    browser.close().await;
}

/// Readable on a phone: no page scrolls sideways at 390 pixels wide (wide
/// tables scroll inside their own box).
#[tokio::test]
async fn the_panel_fits_a_phone_width() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let ada = with_ada(&app).await;
    let phone = Browser::open(&turn, 390, 844).await;
    sign_in(&phone, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for path in [
        "/admin/users".to_owned(),
        format!("/admin/users/{ada}"),
        "/admin/users/new".to_owned(),
        "/admin/users/import".to_owned(),
        "/admin/audit".to_owned(),
        "/admin/settings".to_owned(),
        "/admin/settings/sso".to_owned(),
        "/admin/settings/service-tokens".to_owned(),
        "/admin/analytics".to_owned(),
        "/me".to_owned(),
    ] {
        phone.go(&app.url(&path)).await;
        let overflow = phone
            .driver
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                Vec::new(),
            )
            .await
            .unwrap()
            .json()
            .as_i64()
            .unwrap();
        assert!(overflow <= 0, "{path} scrolls sideways by {overflow} px on a phone");
    }
    phone.go(&app.url("/admin/users")).await;
    phone.screenshot("users-phone").await;
    phone.close().await;
}

/// Sign-in says why it refused, slows down repeated failures, and works
/// from the keyboard alone.
#[tokio::test]
async fn sign_in_explains_refusals_and_works_from_the_keyboard() {
    use thirtyfour::Key;
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, "not the password").await;
    assert!(browser.text().await.contains("The email address or password is not correct."));
    for _ in 0..6 {
        sign_in(&browser, &app, ADMIN_EMAIL, "still not the password").await;
    }
    let throttled = browser.text().await;
    assert!(throttled.contains("Too many failed attempts. Wait"), "{throttled}");
    app.clock.advance(chrono::Duration::minutes(30));

    // Keyboard only: type, Tab to the password, Enter to send.
    browser.go(&app.url("/sign-in")).await;
    let email = browser.driver.find(thirtyfour::By::Id("email")).await.unwrap();
    email.send_keys(ADMIN_EMAIL).await.unwrap();
    email.send_keys(Key::Tab).await.unwrap();
    let focused = browser.driver.active_element().await.unwrap();
    assert_eq!(focused.attr("id").await.unwrap().as_deref(), Some("password"));
    focused.send_keys(ADMIN_PASSWORD).await.unwrap();
    focused.send_keys(Key::Enter).await.unwrap();
    for _ in 0..100 {
        if browser.url().await.ends_with("/admin/users") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(browser.url().await, app.url("/admin/users"));
    browser.close().await;
}

/// What people type is shown as text, never run as markup.
#[tokio::test]
async fn names_are_shown_as_text_never_run() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let name = "<img src=x onerror=alert(1)> Mallory";
    let response = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"email": "mallory@example.com", "name": name, "role": "user"}),
        )
        .await;
    assert_eq!(response.status(), reqwest::StatusCode::CREATED);
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert!(browser.table_text().await.contains(name), "the name is shown as typed");
    assert!(browser.driver.get_alert_text().await.is_err(), "no script ran");
    assert!(browser.driver.find_all(thirtyfour::By::Css("td img")).await.unwrap().is_empty());
    browser.close().await;
}

/// Seed: "Admin Panel > Analytics": an admin creates a service token in
/// Settings, a SecureAI service reports usage with it, and the Analytics
/// page shows active users, tokens by day (SVG charts), model share and
/// the top users; the user's profile shows their activity; the revoked
/// token reports nothing more.
#[tokio::test]
async fn analytics_shows_reported_usage_and_the_profile_its_activity() {
    use secureai_domain::Clock;
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let ada = with_ada(&app).await;
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    browser.click("Settings").await;
    browser.click("Manage service tokens").await;
    browser.fill("name", "chat service").await;
    browser.click("Create token").await;
    let secret = browser.text_of("new-token").await;
    assert!(secret.starts_with("sat_"), "{secret}");
    assert!(browser.text().await.contains("shown this once"));
    browser.screenshot("service-tokens").await;

    // The chat service reports three calls in two conversations.
    let at = |hours: i64| (app.clock.now() - chrono::Duration::hours(hours)).to_rfc3339();
    let event = |id: &str, conversation: &str, model: &str, at: String| {
        json!({"event_id": id, "user_id": ada, "conversation_id": conversation, "model": model,
               "provider": "openai", "input_tokens": 1000, "output_tokens": 234, "occurred_at": at})
    };
    let events = vec![
        event("e1", "c1", "gpt-4o", at(1)),
        event("e2", "c1", "gpt-4o", at(1)),
        event("e3", "c2", "gpt-4o-mini", at(26)),
    ];
    let sent = app.post("/api/v1/usage-events", Some(&secret), json!({"events": events})).await;
    assert_eq!(body(sent).await["accepted"], 3);

    browser.click("Analytics").await;
    assert_eq!(browser.text_of("total-tokens").await, "3,702");
    assert_eq!(browser.text_of("total-conversations").await, "2");
    // Ada (events) and the admin (signed in) are active today.
    assert_eq!(browser.text_of("active-today").await, "2");
    // Two charts of one bar per day.
    assert_eq!(browser.count("svg rect.bar").await, 60);
    let models = browser.text_of("models").await;
    assert!(
        models.contains("gpt-4o-mini") && models.contains("2,468") && models.contains("66.6 %"),
        "{models}"
    );
    assert!(browser.text_of("top-users").await.contains("Name of ada@example.com"));
    browser.screenshot("analytics").await;
    browser.click("Last 7 days").await;
    assert_eq!(browser.count("svg rect.bar").await, 14);

    // From the top users to Ada's profile and her activity.
    browser.click("Name of ada@example.com (ada@example.com)").await;
    let usage = browser.text_of("usage").await;
    assert!(usage.contains("Conversations\n2") || usage.contains("Conversations 2"), "{usage}");
    assert!(usage.contains("3,702"), "{usage}");
    assert!(usage.contains("gpt-4o (66.6 %)"), "{usage}");
    browser.screenshot("user-activity").await;

    // Revoked in the panel: the service is refused from then on.
    browser.go(&app.url("/admin/settings/service-tokens")).await;
    browser.click("Revoke").await;
    assert!(browser.text().await.contains("is revoked"));
    let refused = app
        .post(
            "/api/v1/usage-events",
            Some(&secret),
            json!({"events": [event("e4", "c3", "gpt-4o", at(1))]}),
        )
        .await;
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
    browser.close().await;
}
