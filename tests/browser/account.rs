//! Troubleshooting an invitation, My profile, and Settings (seats, a test
//! email through a real SMTP server).

use secureai_tests::browser::{Browser, take_turn};
use secureai_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, body, wait_for_link};
use serde_json::json;

use crate::{ADA_PASSWORD, open_profile, sign_in, with_ada};

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

/// The guide's "Invitation email not received → check email delivery": the
/// mail server is down, so the invitation fails; the profile shows it with
/// the server's answer, Settings › Email lists it; once the server is back,
/// Retry (on the profile) and Retry all (in Settings) deliver each once.
#[tokio::test]
async fn a_failed_invitation_email_is_shown_and_retried_once_the_server_is_back() {
    use secureai_tests::smtp::{Security, SmtpPeer, free_port};
    let turn = take_turn().await;
    let port = free_port();
    let app = TestApp::with_admin_using(|config| {
        config.mail.max_attempts = 2;
        config.mail.first_retry_ms = 100;
        config.mail.max_retry_secs = 1;
    })
    .await;
    let admin = app.admin_token().await;
    let smtp = json!({"host": "localhost", "port": port, "security": "none"});
    let settings = json!({"smtp": smtp, "from_address": "it@example.com", "from_name": "IT"});
    assert!(app.put("/api/v1/settings/email", Some(&admin), settings).await.status().is_success());
    // The test clock moves so that retries come due.
    let clock = app.clock.clone();
    let ticking = tokio::spawn(async move {
        loop {
            clock.advance(chrono::Duration::milliseconds(200));
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    });
    let bob = app.invite(&admin, "bob@example.com", "user").await;
    app.invite(&admin, "cyd@example.com", "user").await;
    let bob = bob["id"].as_str().unwrap().to_owned();
    for _ in 0..300 {
        let failed = body(app.get("/api/v1/outbox?status=failed", Some(&admin)).await).await;
        if failed["items"].as_array().unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    open_profile(&browser, &app, &bob).await;
    let delivery = browser.text_of("invitation-email").await;
    assert!(delivery.starts_with("failed after 2 attempts:"), "{delivery}");
    assert!(delivery.contains("refused"), "the server's answer is shown: {delivery}");
    browser.screenshot("profile-invitation-email-failed").await;
    browser.go(&app.url("/admin/settings")).await;
    let listed = browser.text_of("failed-email").await;
    assert!(listed.contains("bob@example.com") && listed.contains("cyd@example.com"), "{listed}");
    browser.screenshot("settings-failed-email").await;
    browser.go(&app.url("/admin/users")).await;
    browser.choose("invitation", "email_failed").await;
    browser.click("Apply").await;
    let failing = browser.table_text().await;
    assert!(failing.contains("bob@example.com") && failing.contains("Email failed:"), "{failing}");
    assert!(!failing.contains(ADMIN_EMAIL), "{failing}");
    browser.screenshot("users-email-failed").await;

    let peer = SmtpPeer::start_on(port, Security::None, None);
    open_profile(&browser, &app, &bob).await;
    browser.click("Retry").await;
    assert!(browser.text().await.contains("The email is queued again"));
    let received = peer.wait_for(1, 20).await;
    assert_eq!(received[0].to, "bob@example.com");
    browser.go(&app.url("/admin/settings")).await;
    browser.click("Retry all").await;
    assert!(browser.text().await.contains("Every failed email is queued again."));
    let received = peer.wait_for(2, 20).await;
    assert!(received.iter().any(|m| m.to == "cyd@example.com"));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(peer.messages().len(), 2, "each message delivered once");
    browser.go(&app.url("/admin/settings")).await;
    assert!(browser.text_of("failed-email").await.contains("None: every email was delivered"));
    ticking.abort();
    browser.close().await;
}

/// My profile › Second factor: set up an authenticator app from the page
/// (the key read off the page, the code computed as the app would), keep
/// the recovery codes, sign in again with a code, then with a recovery
/// code; the recovery codes page lists one fewer; remove the app.
#[tokio::test]
async fn a_second_factor_is_set_up_from_my_profile_and_asked_at_sign_in() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    with_ada(&app).await;
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, "ada@example.com", ADA_PASSWORD).await;
    browser.go(&app.url("/me")).await;
    assert!(browser.text_of("second-factor-summary").await.starts_with("Not set up"));
    browser.click("Set up a passkey or an authenticator app").await;
    assert_eq!(browser.url().await, app.url("/me/second-factor"));
    browser.click("Set up an authenticator app").await;
    assert_eq!(browser.count(".qr svg[role=img]").await, 1, "the QR code is drawn");
    let secret = browser.text_of("totp-secret").await.replace(' ', "");
    assert_eq!(secret.len(), 32, "{secret}");
    browser.screenshot("second-factor-setup").await;
    browser.fill("code", &app.totp_code(&secret, 600)).await;
    browser.click("Turn on").await;
    assert!(browser.text().await.contains("That code is not right"));
    assert_eq!(browser.count(".qr svg").await, 1, "the page shows the code again");
    browser.fill("code", &app.totp_code(&secret, 0)).await;
    browser.click("Turn on").await;
    assert!(browser.text().await.contains("They are shown only now"));
    assert_eq!(browser.count("#recovery-codes li").await, 10);
    let recovery = browser.text_of("recovery-codes").await;
    let first_code = recovery.lines().next().unwrap().trim().to_owned();
    assert_eq!(first_code.len(), 35, "{recovery}");
    browser.screenshot("recovery-codes").await;
    browser.click("I have saved them").await;
    assert!(browser.text_of("mfa-status").await.contains("10 recovery codes left"));

    browser.click("Sign out").await;
    sign_in(&browser, &app, "ada@example.com", ADA_PASSWORD).await;
    assert!(browser.text().await.contains("Enter your code"));
    app.clock.advance(chrono::Duration::seconds(30));
    browser.fill("code", &app.totp_code(&secret, 0)).await;
    browser.click("Sign in").await;
    assert!(browser.text().await.contains("Signed in as ada@example.com"));

    browser.click("Sign out").await;
    sign_in(&browser, &app, "ada@example.com", ADA_PASSWORD).await;
    browser.choose("method", "recovery_code").await;
    browser.fill("code", &first_code.to_uppercase()).await;
    browser.click("Sign in").await;
    assert!(browser.text().await.contains("Signed in as ada@example.com"));
    browser.go(&app.url("/me/second-factor")).await;
    assert!(browser.text_of("mfa-status").await.contains("9 recovery codes left"));
    browser.click("Remove authenticator app").await;
    assert!(
        browser.text().await.contains("Your authenticator app and its recovery codes are removed.")
    );
    browser.click("Sign out").await;
    sign_in(&browser, &app, "ada@example.com", ADA_PASSWORD).await;
    assert!(browser.text().await.contains("Signed in as ada@example.com"));
    browser.close().await;
}

/// Step-up: an admin whose last second-factor check is older than ten
/// minutes is asked for a code before making someone an admin, and the
/// change is made right after, without filling the form again.
#[tokio::test]
async fn an_admin_confirms_with_a_code_before_making_someone_an_admin() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let ada = with_ada(&app).await;
    let admin = app.admin_token().await;
    let started = body(app.post("/api/v1/me/mfa/totp", Some(&admin), json!({})).await).await;
    let secret = started["secret"].as_str().unwrap().to_owned();
    let code = json!({"code": app.totp_code(&secret, 0)});
    app.post("/api/v1/me/mfa/totp/confirm", Some(&admin), code).await;
    app.clock.advance(chrono::Duration::seconds(30));
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    browser.fill("code", &app.totp_code(&secret, 0)).await;
    browser.click("Sign in").await;

    app.clock.advance(chrono::Duration::minutes(11));
    open_profile(&browser, &app, &ada).await;
    browser.choose("role", "admin").await;
    browser.click("Save").await;
    assert!(browser.text().await.contains("Confirm it is you"));
    browser.screenshot("step-up").await;
    browser.fill("step_up_code", "000000").await;
    browser.click("Confirm and continue").await;
    assert!(browser.text().await.contains("That code is not right"));
    browser.fill("step_up_code", &app.totp_code(&secret, 0)).await;
    browser.click("Confirm and continue").await;
    assert_eq!(browser.url().await, app.url(&format!("/admin/users/{ada}?done=saved")));
    assert_eq!(browser.text_of("role-badge").await, "Admin");
    // Within ten minutes nothing is asked again.
    browser.go(&app.url("/admin/settings/security")).await;
    browser.click("Save security settings").await;
    assert!(browser.text().await.contains("Saved."));
    browser.close().await;
}
