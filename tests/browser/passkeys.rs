//! Passkeys in real Chromium, through its virtual authenticator (the
//! WebDriver WebAuthn extension: a platform authenticator that verifies its
//! user at once). WebAuthn works on `https://` and `http://localhost`
//! only, so these tests browse the test server as `localhost`.

use secureai_tests::TestApp;
use secureai_tests::browser::{Browser, take_turn};
use thirtyfour::prelude::*;

const EMAIL: &str = "root@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// `path` on the test server, as `localhost`.
fn local(app: &TestApp, path: &str) -> String {
    app.url(path).replacen("127.0.0.1", "localhost", 1)
}

async fn sign_in(browser: &Browser, app: &TestApp) {
    browser.go(&local(app, "/sign-in")).await;
    browser.fill("email", EMAIL).await;
    browser.fill("password", PASSWORD).await;
    browser.click("Sign in").await;
}

/// The first admin follows the setup link, signs in, is led to set up a
/// second factor and adds a passkey (the browser makes it); signs in again
/// with the password and the passkey; confirms a sensitive change with it
/// ten minutes later; renames it. Then, while a sign-in waits for the
/// passkey in another tab, the key is removed in this one: the browser
/// still holds it and signs the challenge, and the service refuses it.
#[tokio::test]
async fn the_first_admin_signs_in_with_a_passkey_and_a_removed_one_is_refused() {
    let turn = take_turn().await;
    let app = TestApp::spawn().await;
    let browser = Browser::laptop(&turn).await;
    let authenticator = browser.add_virtual_authenticator().await;

    let setup = app.setup_link.clone().expect("a new instance prints a setup link");
    browser.go(&setup.replacen("127.0.0.1", "localhost", 1)).await;
    browser.fill("email", EMAIL).await;
    browser.fill("name", "Root Admin").await;
    browser.fill("password", PASSWORD).await;
    browser.fill("password_confirm", PASSWORD).await;
    browser.click("Create admin account").await;
    assert!(
        browser.text().await.contains("you set up a second factor"),
        "{}",
        browser.text().await
    );
    browser.click("Sign in").await;
    browser.fill("email", EMAIL).await;
    browser.fill("password", PASSWORD).await;
    browser.click("Sign in").await;
    assert_eq!(browser.url().await, local(&app, "/me/second-factor"));
    assert!(browser.text_of("mfa-required").await.contains("requires a second factor"));
    browser.fill("passkey-name", "Laptop").await;
    browser.screenshot("passkey-enrolment").await;
    browser.click("Add a passkey").await;
    assert!(browser.text().await.contains("They are shown only now"), "{}", browser.text().await);
    assert_eq!(browser.count("#recovery-codes li").await, 10);
    assert_eq!(browser.virtual_credentials(&authenticator).await.len(), 1);
    browser.click("I have saved them").await;
    let table = browser.text_of("passkeys").await;
    assert!(table.contains("Laptop") && table.contains("Never"), "{table}");
    browser.go(&local(&app, "/admin/users")).await;
    assert_eq!(browser.url().await, local(&app, "/admin/users"), "the session is whole now");

    // Sign in again: the password, then the passkey.
    browser.click("Sign out").await;
    sign_in(&browser, &app).await;
    assert!(browser.text().await.contains("Use your passkey"));
    browser.screenshot("sign-in-passkey").await;
    browser.click("Use your passkey").await;
    assert_eq!(browser.url().await, local(&app, "/admin/users"));

    // Eleven minutes later a sensitive change asks again; the passkey answers.
    app.clock.advance(chrono::Duration::minutes(11));
    browser.go(&local(&app, "/admin/settings/security")).await;
    browser.click("Save security settings").await;
    assert!(browser.text().await.contains("Confirm it is you"));
    browser.screenshot("step-up-passkey").await;
    browser.click("Use your passkey").await;
    assert!(browser.text().await.contains("Saved."), "{}", browser.text().await);

    browser.go(&local(&app, "/me/second-factor")).await;
    assert!(!browser.text_of("passkeys").await.contains("Never"), "its last use is shown");
    let rename = browser.driver.find(By::Css("#passkeys input[name=name]")).await.unwrap();
    rename.clear().await.unwrap();
    rename.send_keys("Work laptop").await.unwrap();
    browser.click("Rename").await;
    assert!(browser.text().await.contains("Your passkey is renamed."));
    assert!(browser.text_of("passkeys").await.contains("Work laptop"));

    // A sign-in waits for the passkey in a second tab (authenticators
    // belong to a tab: that one gets its own, holding the same key)…
    let held = browser.virtual_credentials(&authenticator).await;
    let first_tab = browser.driver.window().await.unwrap();
    let second_tab = browser.driver.new_tab().await.unwrap();
    browser.driver.switch_to_window(second_tab.clone()).await.unwrap();
    let authenticator = browser.add_virtual_authenticator().await;
    browser.add_virtual_credential(&authenticator, held[0].clone()).await;
    sign_in(&browser, &app).await;
    assert!(browser.text().await.contains("Use your passkey"));
    // …while the key is removed (replaced: the only one) in the first.
    browser.driver.switch_to_window(first_tab).await.unwrap();
    browser.click("Replace").await;
    assert_eq!(browser.url().await, local(&app, "/me/second-factor"));
    assert!(browser.text_of("passkeys-none").await.contains("No passkey yet"));
    assert!(browser.text_of("mfa-required").await.contains("requires a second factor"));
    browser.driver.switch_to_window(second_tab).await.unwrap();
    assert_eq!(browser.virtual_credentials(&authenticator).await.len(), 1, "still in the browser");
    browser.click("Use your passkey").await;
    let refused = browser.text().await;
    assert!(refused.contains("That passkey was not accepted"), "{refused}");
    assert!(!refused.contains("Use your passkey"), "the challenge is spent");
    browser.close().await;
}
