//! The setup and invitation pages work from a plain browser (forms, no
//! JavaScript).

use chrono::Duration;
use reqwest::StatusCode;
use secureai_tests::{ADMIN_PASSWORD, TestApp, body};

#[tokio::test]
async fn the_setup_link_shows_a_form_once_and_then_is_void() {
    let app = TestApp::spawn().await;
    let link = app.setup_link.clone().unwrap().replace(&app.base, "");

    let form = app.get(&link, None).await;
    assert_eq!(form.status(), StatusCode::OK);
    assert_eq!(form.headers()["referrer-policy"], "no-referrer");
    assert_eq!(form.headers()["cache-control"], "no-store");
    let html = form.text().await.unwrap();
    assert!(html.contains("Create the first admin"));
    assert!(html.contains("<label for=\"email\">"));

    app.complete_setup("root@example.com", "Root", ADMIN_PASSWORD).await;

    let again = app.get(&link, None).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert!(again.text().await.unwrap().contains("not valid"));
    app.login("root@example.com", ADMIN_PASSWORD).await;
}

#[tokio::test]
async fn a_setup_form_with_mismatched_passwords_is_shown_again_with_the_reason() {
    let app = TestApp::spawn().await;
    let token = app.setup_link.clone().unwrap().split("token=").nth(1).unwrap().to_owned();

    let response = app
        .http
        .post(app.url("/setup"))
        .form(&[
            ("token", token.as_str()),
            ("email", "root@example.com"),
            ("name", "<b>Root</b>"),
            ("password", "a long admin passphrase"),
            ("password_confirm", "a different passphrase"),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = response.text().await.unwrap();
    assert!(html.contains("The two passwords are not the same."));
    assert!(html.contains("value=\"&#60;b&#62;Root&#60;/b&#62;\""), "user input must be escaped");
    assert!(!html.contains("<b>Root"));
}

#[tokio::test]
async fn the_invitation_page_sets_a_password_and_explains_an_expired_link() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.invite(&admin, "page@example.com", "user").await;
    app.invite(&admin, "slow@example.com", "user").await;
    let token = app.invitation_token("page@example.com").await;
    let slow = app.invitation_token("slow@example.com").await;

    let form = app.get(&format!("/invitations/accept?token={token}"), None).await;
    assert_eq!(form.status(), StatusCode::OK);
    assert!(form.text().await.unwrap().contains("page@example.com"));
    let done = app
        .http
        .post(app.url("/invitations/accept"))
        .form(&[
            ("token", token.as_str()),
            ("password", "page password 1"),
            ("password_confirm", "page password 1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.text().await.unwrap().contains("Your account is active"));
    app.login("page@example.com", "page password 1").await;

    app.clock.advance(Duration::hours(73));
    let expired = app.get(&format!("/invitations/accept?token={slow}"), None).await;
    assert_eq!(expired.status(), StatusCode::GONE);
    assert!(expired.text().await.unwrap().contains("re-send the invitation"));
}

/// Every panel form needs this session's CSRF token and our own origin.
#[tokio::test]
async fn panel_forms_without_the_session_csrf_token_or_from_another_site_are_refused() {
    let app = TestApp::with_admin().await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = browser
        .post(app.url("/sign-in"))
        .form(&[
            ("email", secureai_tests::ADMIN_EMAIL),
            ("password", secureai_tests::ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let form = browser.get(app.url("/admin/users/new")).send().await.unwrap().text().await.unwrap();
    let csrf =
        form.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let fields = |csrf: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("email", "ada@example.com".to_owned()),
            ("name", "Ada".to_owned()),
            ("role", "user".to_owned()),
        ]
    };
    let missing = browser.post(app.url("/admin/users/new")).form(&fields("")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let forged = browser
        .post(app.url("/admin/users/new"))
        .form(&fields("0".repeat(64).as_str()))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let cross_site = browser
        .post(app.url("/admin/users/new"))
        .header("origin", "https://evil.example.com")
        .form(&fields(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let admin = app.admin_token().await;
    let users = body(app.get("/api/v1/users?q=ada", Some(&admin)).await).await;
    assert_eq!(users["total"], 0, "no refused form created anything");

    let accepted =
        browser.post(app.url("/admin/users/new")).form(&fields(&csrf)).send().await.unwrap();
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    let users = body(app.get("/api/v1/users?q=ada", Some(&admin)).await).await;
    assert_eq!(users["total"], 1);
}

#[tokio::test]
async fn every_page_has_an_icon_and_the_icon_is_served() {
    let app = TestApp::spawn().await;
    let icon = app.get("/favicon.ico", None).await;
    assert_eq!(icon.status(), StatusCode::OK);
    assert_eq!(icon.headers()["content-type"], "image/x-icon");
    let bytes = icon.bytes().await.unwrap();
    // An ICO directory with one 32 × 32 image.
    assert_eq!(&bytes[..6], &[0, 0, 1, 0, 1, 0]);
    assert_eq!((bytes[6], bytes[7]), (32, 32));
    for page in ["/sign-in", &app.setup_link.clone().unwrap().replace(&app.base, "")] {
        let html = app.get(page, None).await.text().await.unwrap();
        assert!(html.contains("<link rel=\"icon\" href=\"/favicon.ico\""), "{page}");
    }
}
