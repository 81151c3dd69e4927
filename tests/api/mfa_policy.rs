//! Settings › Security over HTTP: by default the first admin's password
//! sign-in gives a session that can only set up a second factor (API 403
//! `mfa_enrolment_required`, every page leads to the second-factor page);
//! the policy over the API and the page; a required factor cannot be
//! removed; users are offered one only when the policy says so.

use reqwest::StatusCode;
use secureai_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, assert_error, body};
use serde_json::json;

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
}

fn panel_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_first_admin_sets_up_a_second_factor_before_anything_else() {
    let app = TestApp::spawn().await;
    app.complete_setup(ADMIN_EMAIL, "Root", ADMIN_PASSWORD).await;
    let login = app
        .post("/api/v1/auth/login", None, json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    let login = body(login).await;
    assert_eq!(login["mfa_enrolment_required"], true, "{login}");
    let token = login["token"].as_str().unwrap().to_owned();
    for path in ["/api/v1/users", "/api/v1/me", "/api/v1/settings/security", "/api/v1/audit"] {
        let refused = app.get(path, Some(&token)).await;
        assert_error(refused, StatusCode::FORBIDDEN, "mfa_enrolment_required").await;
    }
    let relax = json!({"admin_mfa": "optional", "user_mfa": "off"});
    let refused = app.put("/api/v1/settings/security", Some(&token), relax).await;
    assert_error(refused, StatusCode::FORBIDDEN, "mfa_enrolment_required").await;
    let removed = app.delete("/api/v1/me/mfa/totp", &token).await;
    assert_error(removed, StatusCode::FORBIDDEN, "mfa_enrolment_required").await;
    assert_eq!(app.get("/api/v1/me/mfa", Some(&token)).await.status(), StatusCode::OK);

    // The panel: every page leads to the second-factor page, which says why.
    let panel = app.panel_browser().await;
    for path in ["/", "/admin/users", "/admin/settings", "/me"] {
        let page = panel.get(app.url(path)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.headers()["location"], "/me/second-factor", "{path}");
    }
    let page = panel.get(app.url("/me/second-factor")).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("Your organisation requires a second factor"), "{html}");
    let csrf = csrf_of(&html);
    let signed_out = panel.post(app.url("/sign-out")).form(&[("csrf", csrf)]).send().await.unwrap();
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER, "an enrolling session can sign out");

    // Setting up the app frees this very session.
    let started = body(app.post("/api/v1/me/mfa/totp", Some(&token), json!({})).await).await;
    let secret = started["secret"].as_str().unwrap().to_owned();
    let code = json!({"code": app.totp_code(&secret, 0)});
    let confirmed = app.post("/api/v1/me/mfa/totp/confirm", Some(&token), code).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert_eq!(app.get("/api/v1/users", Some(&token)).await.status(), StatusCode::OK);
    let events = body(app.get("/api/v1/audit?action=sign_in.succeeded", Some(&token)).await).await;
    let details = events["items"][0]["changes"].to_string();
    assert!(details.contains("second factor setup only"), "{events}");

    // Required now: the next sign-in asks for it. It is replaced (a new
    // phone), never just removed: right after a check, and the session
    // can then only set up the new one.
    let again = app
        .post("/api/v1/auth/login", None, json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .await;
    assert_eq!(body(again).await["mfa_required"], true);
    app.clock.advance(chrono::Duration::minutes(11));
    let removed = app.delete("/api/v1/me/mfa/totp", &token).await;
    assert_error(removed, StatusCode::FORBIDDEN, "mfa_step_up_required").await;
    let check = json!({"method": "totp", "code": app.totp_code(&secret, 0)});
    assert_eq!(
        app.post("/api/v1/auth/step-up", Some(&token), check).await.status(),
        StatusCode::OK
    );
    let replaced = app.delete("/api/v1/me/mfa/totp", &token).await;
    assert_eq!(replaced.status(), StatusCode::NO_CONTENT);
    let refused = app.get("/api/v1/users", Some(&token)).await;
    assert_error(refused, StatusCode::FORBIDDEN, "mfa_enrolment_required").await;
    let started = body(app.post("/api/v1/me/mfa/totp", Some(&token), json!({})).await).await;
    let new_phone = started["secret"].as_str().unwrap().to_owned();
    let code = json!({"code": app.totp_code(&new_phone, 0)});
    let confirmed = app.post("/api/v1/me/mfa/totp/confirm", Some(&token), code).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert_eq!(app.get("/api/v1/users", Some(&token)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_policy_is_set_over_the_api_and_the_page_and_applies_at_the_next_sign_in() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let read = body(app.get("/api/v1/settings/security", Some(&admin)).await).await;
    assert_eq!(read, json!({"admin_mfa": "optional", "user_mfa": "optional"}));
    let odd = json!({"admin_mfa": "sometimes", "user_mfa": "off"});
    let refused = app.put("/api/v1/settings/security", Some(&admin), odd).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    let ada_token = app.active_user(&admin, "ada@example.com", "user", "ada-password-1").await;
    let strict = json!({"admin_mfa": "required", "user_mfa": "off"});
    let by_a_user = app.put("/api/v1/settings/security", Some(&ada_token), strict.clone()).await;
    assert_eq!(by_a_user.status(), StatusCode::FORBIDDEN);
    let saved = app.put("/api/v1/settings/security", Some(&admin), strict.clone()).await;
    assert_eq!(body(saved).await, strict);
    let offered = app.post("/api/v1/me/mfa/totp", Some(&ada_token), json!({})).await;
    assert_error(offered, StatusCode::CONFLICT, "mfa_not_offered").await;
    let audit =
        body(app.get("/api/v1/audit?action=settings.security_changed", Some(&admin)).await).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "the harness's and this: {audit}");
    assert!(audit["items"][0]["changes"].to_string().contains("required"), "{audit}");
    // The admin's session keeps working; their next sign-in enrols.
    assert_eq!(app.get("/api/v1/users", Some(&admin)).await.status(), StatusCode::OK);
    let next = app
        .post("/api/v1/auth/login", None, json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .await;
    assert_eq!(body(next).await["mfa_enrolment_required"], true);

    // Settings › Security, the page.
    let panel = panel_client();
    let ada = app.user_id(&admin, "ada@example.com").await;
    let path = format!("/api/v1/users/{ada}");
    let promoted = app.patch(&path, &admin, json!({"role": "admin"})).await;
    assert_eq!(promoted.status(), StatusCode::OK);
    let relax = json!({"admin_mfa": "optional", "user_mfa": "off"});
    app.put("/api/v1/settings/security", Some(&admin), relax).await;
    let form = [("email", "ada@example.com"), ("password", "ada-password-1")];
    panel.post(app.url("/sign-in")).form(&form).send().await.unwrap();
    let page = panel.get(app.url("/admin/settings/security")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"value="optional" checked"#), "{html}");
    let csrf = csrf_of(&html);
    let fields = [("csrf", csrf.as_str()), ("admin_mfa", "required"), ("user_mfa", "optional")];
    let saved = panel.post(app.url("/admin/settings/security")).form(&fields).send().await.unwrap();
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let read = body(app.get("/api/v1/settings/security", Some(&admin)).await).await;
    assert_eq!(read, json!({"admin_mfa": "required", "user_mfa": "optional"}));
    let bad = [("csrf", csrf.as_str()), ("admin_mfa", "never"), ("user_mfa", "off")];
    let refused = panel.post(app.url("/admin/settings/security")).form(&bad).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let settings = panel.get(app.url("/admin/settings")).send().await.unwrap();
    let html = settings.text().await.unwrap();
    assert!(html.contains("required for admins, optional for users"), "{html}");
}
