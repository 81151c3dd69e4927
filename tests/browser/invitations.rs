//! Invitations that went wrong, put right from the panel as the guide's
//! troubleshooting says: "re-send the invitation from the user list",
//! "verify the email address is correct in the user list", and "seat
//! limit reached → deactivate users who no longer need access".

use secureai_tests::browser::{Browser, take_turn};
use secureai_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, body, wait_for_link};

use crate::{open_profile, sign_in};

/// Expired invitations are found with the list's "Invitation expired"
/// filter; one is re-sent and a stale one withdrawn from their rows, each
/// after a confirmation step that leads back to the same filtered list.
#[tokio::test]
async fn expired_invitations_are_re_sent_or_withdrawn_from_the_users_list() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.put("/api/v1/settings/seats", Some(&admin), serde_json::json!({"limit": 4})).await;
    app.invite(&admin, "bob@example.com", "user").await;
    app.clock.advance(chrono::Duration::minutes(1));
    app.invite(&admin, "cyd@example.com", "user").await;
    app.clock.advance(chrono::Duration::hours(73));
    let admin = app.admin_token().await;
    app.invite(&admin, "dan@example.com", "user").await;
    let turn = take_turn().await;
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    let table = browser.table_text().await;
    assert!(table.contains("Expired on") && table.contains("Pending until"), "{table}");
    assert!(browser.text_of("seats").await.contains("4 of 4"));
    browser.choose("invitation", "expired").await;
    browser.click("Apply").await;
    let expired = browser.table_text().await;
    assert!(expired.contains("bob@example.com") && expired.contains("cyd@example.com"));
    assert!(!expired.contains("dan@example.com"), "{expired}");
    browser.screenshot("users-invitation-expired").await;

    // Newest first: Cyd's row comes first.
    browser.click("Re-send invitation").await;
    let confirm = browser.text().await;
    assert!(confirm.contains("cyd@example.com gets a new invitation, valid 72 hours"), "{confirm}");
    browser.click("Re-send invitation").await;
    assert!(browser.url().await.contains("invitation=expired"), "back to the filtered list");
    assert!(browser.text().await.contains("A new invitation was sent"));
    let expired = browser.table_text().await;
    assert!(!expired.contains("cyd@example.com") && expired.contains("bob@example.com"));
    wait_for_link(&app.data_dir.join("mail"), "cyd@example.com", "/invitations/accept?token=")
        .await;

    browser.click("Withdraw invitation").await;
    let confirm = browser.text().await;
    assert!(confirm.contains("their seat is free"), "{confirm}");
    browser.screenshot("withdraw-invitation").await;
    browser.click("Withdraw invitation").await;
    let list = browser.text().await;
    assert!(list.contains("The invitation was withdrawn"), "{list}");
    assert!(browser.table_text().await.contains("No users match"));
    assert!(browser.text_of("seats").await.contains("3 of 4"), "the seat is free");
    let bob = app.user_id(&admin, "bob@example.com").await;
    let bob = body(app.get(&format!("/api/v1/users/{bob}"), Some(&admin)).await).await;
    assert_eq!(bob["status"], "deactivated");
    browser.close().await;
}

/// "Invitation email not received → verify the email address is correct":
/// the profile's Change email corrects a typo; the invitation is accepted
/// at the new address and the old link is refused.
#[tokio::test]
async fn a_mistyped_address_is_corrected_on_the_profile() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let typo = app.invite(&admin, "ada@exmaple.com", "user").await;
    let mail = app.data_dir.join("mail");
    let old = wait_for_link(&mail, "ada@exmaple.com", "/invitations/accept?token=").await;
    let turn = take_turn().await;
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    open_profile(&browser, &app, typo["id"].as_str().unwrap()).await;

    browser.fill("new-email", ADMIN_EMAIL).await;
    browser.click("Change email").await;
    let refused = browser.text().await;
    assert!(refused.contains("Another user already has this email address."), "{refused}");
    browser.fill("new-email", "ada@example.com").await;
    browser.screenshot("change-email").await;
    browser.click("Change email").await;
    let profile = browser.text().await;
    assert!(profile.contains("The email address is now ada@example.com."), "{profile}");
    browser.click("Sign out").await;

    browser.go(&old).await;
    assert!(browser.text().await.contains("not valid"), "the old link is refused");
    let new = wait_for_link(&mail, "ada@example.com", "/invitations/accept?token=").await;
    browser.go(&new).await;
    browser.fill("password", "analytical engine notes").await;
    browser.fill("password_confirm", "analytical engine notes").await;
    browser.click("Activate account").await;
    sign_in(&browser, &app, "ada@example.com", "analytical engine notes").await;
    assert!(browser.text().await.contains("Signed in as ada@example.com"));
    browser.close().await;
}
