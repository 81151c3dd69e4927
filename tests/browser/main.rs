//! The admin panel in real Chromium (headless, through chromedriver): seed
//! scenarios followed end to end through the pages, as an administrator
//! clicks them. Each saves screenshots of the pages it passes into
//! `docs/screenshots/` (shown in the README).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use secureai_tests::TestApp;
use secureai_tests::browser::Browser;

mod account;
mod admin;
mod invitations;
mod passkeys;
mod users;

async fn sign_in(browser: &Browser, app: &TestApp, email: &str, password: &str) {
    browser.go(&app.url("/sign-in")).await;
    browser.fill("email", email).await;
    browser.fill("password", password).await;
    browser.click("Sign in").await;
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
