//! Import, audit log, SSO, analytics, the sign-in page, a phone-width
//! screen, and names shown as text.

use secureai_tests::browser::{Browser, take_turn};
use secureai_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, body, wait_for_link};
use serde_json::json;

use crate::{open_profile, sign_in, with_ada};

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
    assert!(profile.contains("waiting for their first sign-in through your identity provider"));
    browser.click("Re-send invitation").await;
    assert!(browser.text().await.contains("gets the \"your access is ready\" email again"));
    browser.click("Re-send invitation").await;
    let resent = browser.text().await;
    assert!(resent.contains("email was sent to ada@example.com again"), "{resent}");

    // The break-glass admin: a password account while SSO is on.
    browser.go(&app.url("/admin/users/new")).await;
    browser.fill("email", "keeper@example.com").await;
    browser.fill("name", "Key Keeper").await;
    browser.choose("role", "admin").await;
    browser.click_checkbox("password").await;
    browser.screenshot("add-user-break-glass").await;
    browser.click("Send Invitation").await;
    assert!(browser.text().await.contains("Invitation sent to keeper@example.com."));
    let admin = app.admin_token().await;
    let keeper = app.user_id(&admin, "keeper@example.com").await;
    let keeper = body(app.get(&format!("/api/v1/users/{keeper}"), Some(&admin)).await).await;
    assert_eq!(keeper["sign_in_method"], "password");
    assert!(
        !wait_for_link(
            &app.data_dir.join("mail"),
            "keeper@example.com",
            "/invitations/accept?token="
        )
        .await
        .is_empty()
    );
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

/// The panel says what the guide says: "Admin Panel > Users", "Add User",
/// "Email", "Send Invitation", "Import Users", "Settings > Email", the
/// roles and statuses as words.
#[tokio::test]
async fn the_panel_uses_the_guides_words() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let ada = with_ada(&app).await;
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;

    for (path, crumb) in [
        ("/admin/users", "Admin Panel › Users"),
        ("/admin/analytics", "Admin Panel › Analytics"),
        ("/admin/audit", "Admin Panel › Audit log"),
        ("/admin/settings", "Admin Panel › Settings"),
    ] {
        browser.go(&app.url(path)).await;
        let text = browser.text().await;
        assert!(text.contains(crumb), "{path}: {text}");
    }
    let sections = browser.text().await;
    let sections = sections.replace('\n', " ");
    assert!(
        sections.contains("Seats Single sign-on Usage reporting Provisioning Security Email"),
        "{sections}"
    );
    browser.click("Change who needs a second factor").await;
    assert!(browser.text().await.contains("Admins who sign in with a password"));
    browser.screenshot("security-settings").await;
    browser.go(&app.url("/admin/users")).await;
    let table = browser.table_text().await;
    assert!(table.contains("Admin Active") && table.contains("User Active"), "{table}");
    assert_eq!(browser.href_of("Import Users").await, "/admin/users/import");
    browser.click("Add User").await;
    let form = browser.text().await;
    assert!(form.contains("Email\n") && !form.contains("Work email"), "{form}");
    assert!(form.contains("Must be unique across the instance."), "{form}");
    assert_eq!(browser.count("button[type=submit]").await, 2, "Send Invitation and Sign out");
    open_profile(&browser, &app, &ada).await;
    assert_eq!(browser.text_of("role-badge").await, "User");
    browser.click("Terminate Sessions").await;
    assert_eq!(browser.count("form button[type=submit]").await, 2);
    assert!(browser.text().await.contains("Terminate Sessions Cancel"));
    browser.close().await;
}

/// Settings › Provisioning: the SCIM address to paste into the identity
/// provider and a token, shown once, that opens SCIM and nothing else.
#[tokio::test]
async fn provisioning_shows_the_scim_address_and_a_token_once() {
    let turn = take_turn().await;
    let app = TestApp::with_admin().await;
    let browser = Browser::laptop(&turn).await;
    sign_in(&browser, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    browser.go(&app.url("/admin/settings")).await;
    browser.click("Set up provisioning").await;
    let address = browser.text_of("scim-url").await;
    assert!(address.starts_with("http") && address.ends_with("/scim/v2"), "{address}");
    browser.fill("name", "Entra ID").await;
    browser.click("Create provisioning token").await;
    let secret = browser.text_of("new-token").await;
    browser.screenshot("provisioning").await;

    let users = app.http.get(app.url("/scim/v2/Users")).bearer_auth(&secret).send().await.unwrap();
    assert_eq!(users.status(), reqwest::StatusCode::OK);
    assert_eq!(users.json::<serde_json::Value>().await.unwrap()["totalResults"], 1);
    let usage = app
        .http
        .post(app.url("/api/v1/usage-events"))
        .bearer_auth(&secret)
        .json(&json!({"events": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(usage.status(), reqwest::StatusCode::FORBIDDEN, "it opens SCIM only");
    // A request the server refuses: shown with its reason.
    let refused = app
        .http
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&secret)
        .json(&json!({"userName": "not-an-address", "displayName": "Nobody"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);
    browser.go(&app.url("/admin/settings/provisioning")).await;
    assert_eq!(browser.count("#new-token").await, 0, "shown once");
    let table = browser.text_of("provisioning-tokens").await;
    assert!(table.contains("Entra ID") && !table.contains("never"), "its use is recorded: {table}");
    assert!(browser.text_of("last-request").await.contains("Entra ID"));
    let failures = browser.text_of("provisioning-failures").await;
    assert!(
        failures.contains("POST /scim/v2/Users")
            && failures.contains("400")
            && failures.contains("work email address"),
        "{failures}"
    );
    browser.screenshot("provisioning-failures").await;
    browser.close().await;
}
