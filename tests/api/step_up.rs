//! Step-up over HTTP: an admin with a second factor whose last check is
//! more than ten minutes old gets 403 `mfa_step_up_required` for the
//! sensitive actions and changes nothing; `POST /auth/step-up` with a code
//! opens them again; wrong codes are throttled; the pages ask for the code
//! and then do what was asked.

use reqwest::StatusCode;
use secureai_tests::{TestApp, assert_error, body};
use serde_json::{Value, json};

async fn enrol(app: &TestApp, token: &str) -> String {
    let started = body(app.post("/api/v1/me/mfa/totp", Some(token), json!({})).await).await;
    let secret = started["secret"].as_str().unwrap().to_owned();
    let code = json!({"code": app.totp_code(&secret, 0)});
    let confirmed = app.post("/api/v1/me/mfa/totp/confirm", Some(token), code).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    secret
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
}

async fn role_of(app: &TestApp, admin: &str, id: &str) -> Value {
    body(app.get(&format!("/api/v1/users/{id}"), Some(admin)).await).await["role"].clone()
}

#[tokio::test]
async fn sensitive_api_calls_need_a_recent_second_factor_check() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.active_user(&admin, "ada@example.com", "user", "ada-password-1").await;
    let ada = app.user_id(&admin, "ada@example.com").await;
    let secret = enrol(&app, &admin).await;
    app.clock.advance(chrono::Duration::minutes(10) + chrono::Duration::seconds(1));

    // (The harness made second factors optional for everyone.)
    let security = json!({"admin_mfa": "required", "user_mfa": "off"});
    let promote = json!({"role": "admin"});
    let email = json!({"smtp": null, "from_address": "it@example.com", "from_name": "IT"});
    let sso = json!({"mode": "none"});
    let refusals = [
        app.put("/api/v1/settings/security", Some(&admin), security.clone()).await,
        app.patch(&format!("/api/v1/users/{ada}"), &admin, promote.clone()).await,
        app.post(
            "/api/v1/users",
            Some(&admin),
            json!({"email": "bo@example.com", "name": "Bo", "role": "admin"}),
        )
        .await,
        app.put("/api/v1/settings/email", Some(&admin), email).await,
        app.put("/api/v1/settings/sso", Some(&admin), sso).await,
        app.post("/api/v1/service-tokens", Some(&admin), json!({"name": "reports"})).await,
        app.delete(&format!("/api/v1/users/{ada}/mfa"), &admin).await,
    ];
    for refused in refusals {
        let error = assert_error(refused, StatusCode::FORBIDDEN, "mfa_step_up_required").await;
        assert!(error["message"].as_str().unwrap().contains("10 minutes"), "{error}");
    }
    // Nothing changed.
    assert_eq!(role_of(&app, &admin, &ada).await, "user");
    let users = body(app.get("/api/v1/users?q=bo%40example.com", Some(&admin)).await).await;
    assert_eq!(users["items"].as_array().unwrap().len(), 0, "{users}");
    let policy = body(app.get("/api/v1/settings/security", Some(&admin)).await).await;
    assert_eq!(policy["user_mfa"], "optional");
    let tokens = body(app.get("/api/v1/service-tokens", Some(&admin)).await).await;
    assert_eq!(tokens.as_array().map_or(0, Vec::len), 0, "{tokens}");
    // Inviting a user, or renaming one, is not asked.
    app.invite(&admin, "cy@example.com", "user").await;

    let wrong = json!({"method": "totp", "code": "000000"});
    let refused = app.post("/api/v1/auth/step-up", Some(&admin), wrong).await;
    assert_error(refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid_code").await;
    let right = json!({"method": "totp", "code": app.totp_code(&secret, 0)});
    let stepped = app.post("/api/v1/auth/step-up", Some(&admin), right.clone()).await;
    assert_eq!(stepped.status(), StatusCode::OK);
    let stepped = body(stepped).await;
    let at = chrono::DateTime::parse_from_rfc3339(stepped["second_factor_at"].as_str().unwrap());
    let until = chrono::DateTime::parse_from_rfc3339(stepped["valid_until"].as_str().unwrap());
    assert_eq!(until.unwrap() - at.unwrap(), chrono::Duration::minutes(10));
    let replay = app.post("/api/v1/auth/step-up", Some(&admin), right).await;
    assert_error(replay, StatusCode::UNPROCESSABLE_ENTITY, "invalid_code").await;

    let promoted = app.patch(&format!("/api/v1/users/{ada}"), &admin, promote).await;
    assert_eq!(promoted.status(), StatusCode::OK);
    assert_eq!(role_of(&app, &admin, &ada).await, "admin");
    let saved = app.put("/api/v1/settings/security", Some(&admin), security).await;
    assert_eq!(saved.status(), StatusCode::OK);
    let audit = body(app.get("/api/v1/audit?action=mfa.verified", Some(&admin)).await).await;
    assert!(audit["items"][0]["changes"].to_string().contains("step-up"), "{audit}");

    // A user without a second factor has nothing to confirm.
    let cy = app.active_user(&admin, "dee@example.com", "user", "dee-password-1").await;
    let none = app
        .post("/api/v1/auth/step-up", Some(&cy), json!({"method": "totp", "code": "123456"}))
        .await;
    assert_error(none, StatusCode::CONFLICT, "mfa_not_enrolled").await;
}

#[tokio::test]
async fn fifty_wrong_step_up_codes_at_once_are_checked_at_most_five_times() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let secret = enrol(&app, &admin).await;
    let wrong = json!({"method": "totp", "code": "000000"});
    let answers = futures_util::future::join_all(
        (0..50).map(|_| app.post("/api/v1/auth/step-up", Some(&admin), wrong.clone())),
    )
    .await;
    let checked = answers.iter().filter(|a| a.status() == StatusCode::UNPROCESSABLE_ENTITY).count();
    let refused: Vec<_> =
        answers.iter().filter(|a| a.status() == StatusCode::TOO_MANY_REQUESTS).collect();
    assert_eq!(checked + refused.len(), 50);
    assert!((1..=5).contains(&checked), "{checked} wrong codes were checked");
    assert!(refused.iter().all(|a| a.headers().contains_key("retry-after")));
    let failed = body(app.get("/api/v1/audit?action=mfa.failed", Some(&admin)).await).await;
    assert_eq!(failed["items"].as_array().unwrap().len(), checked, "each checked code audited");
    // Even the right code waits out the pause.
    let right = json!({"method": "totp", "code": app.totp_code(&secret, 0)});
    let paused = app.post("/api/v1/auth/step-up", Some(&admin), right).await;
    assert_error(paused, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

#[tokio::test]
async fn the_pages_ask_for_a_code_and_then_do_what_was_asked() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    app.active_user(&admin, "ada@example.com", "user", "ada-password-1").await;
    let ada = app.user_id(&admin, "ada@example.com").await;
    // The panel's session began before the app was set up: it has never
    // checked a second factor.
    let panel = app.panel_browser().await;
    let secret = enrol(&app, &admin).await;
    let profile = format!("/admin/users/{ada}");
    let html = panel.get(app.url(&profile)).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_of(&html);
    let form = [("csrf", csrf.as_str()), ("role", "admin"), ("department", "Research")];

    let asked = panel.post(app.url(&profile)).form(&form).send().await.unwrap();
    assert_eq!(asked.status(), StatusCode::FORBIDDEN);
    let html = asked.text().await.unwrap();
    assert!(html.contains("Confirm it is you"), "{html}");
    assert!(html.contains(&format!("action=\"{profile}\"")), "{html}");
    assert!(html.contains("name=\"role\" value=\"admin\""), "the form is kept: {html}");
    assert!(html.contains("name=\"department\" value=\"Research\""), "{html}");
    assert_eq!(role_of(&app, &admin, &ada).await, "user", "nothing changed yet");

    let mut with_code = form.to_vec();
    with_code.push(("step_up_code", "000000"));
    let wrong = panel.post(app.url(&profile)).form(&with_code).send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = wrong.text().await.unwrap();
    assert!(html.contains("That code is not right"), "{html}");
    assert!(html.contains("name=\"role\" value=\"admin\""), "{html}");

    // The app's next code (the enrolment spent this one).
    app.clock.advance(chrono::Duration::seconds(30));
    let code = app.totp_code(&secret, 0);
    with_code.pop();
    with_code.push(("step_up_code", code.as_str()));
    let done = panel.post(app.url(&profile)).form(&with_code).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(done.headers()["location"], format!("/admin/users/{ada}?done=saved").as_str());
    assert_eq!(role_of(&app, &admin, &ada).await, "admin");
    let user = body(app.get(&format!("/api/v1/users/{ada}"), Some(&admin)).await).await;
    assert_eq!(user["department"], "Research");

    // Within ten minutes nothing is asked again; after, it is.
    let security = [("csrf", csrf.as_str()), ("admin_mfa", "required"), ("user_mfa", "optional")];
    let saved = panel.post(app.url("/admin/settings/security")).form(&security).send().await;
    assert_eq!(saved.unwrap().status(), StatusCode::SEE_OTHER);
    app.clock.advance(chrono::Duration::minutes(11));
    let again = panel.post(app.url("/admin/settings/security")).form(&security).send().await;
    let again = again.unwrap();
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
    assert!(again.text().await.unwrap().contains("Confirm it is you"));
    // A form from another session's page is refused with its code.
    let code = app.totp_code(&secret, 0);
    let forged = [
        ("csrf", "0"),
        ("admin_mfa", "optional"),
        ("user_mfa", "off"),
        ("step_up_code", code.as_str()),
    ];
    let refused = panel.post(app.url("/admin/settings/security")).form(&forged).send().await;
    assert_eq!(refused.unwrap().status(), StatusCode::FORBIDDEN);
    let policy = body(app.get("/api/v1/settings/security", Some(&admin)).await).await;
    assert_eq!(policy["user_mfa"], "optional", "the forged form changed nothing");

    // Admins need one now: the app is replaced, not removed — after a
    // code, and then the session can only set up the new one.
    let page = panel.get(app.url("/me/second-factor")).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("Replace authenticator app"));
    let replace = [("csrf", csrf.as_str())];
    let asked = panel.post(app.url("/me/second-factor/remove")).form(&replace).send().await;
    let asked = asked.unwrap();
    assert_eq!(asked.status(), StatusCode::FORBIDDEN);
    assert!(asked.text().await.unwrap().contains("Confirm it is you"));
    let code = app.totp_code(&secret, 0);
    let confirmed = [("csrf", csrf.as_str()), ("step_up_code", code.as_str())];
    let replaced = panel.post(app.url("/me/second-factor/remove")).form(&confirmed).send().await;
    let replaced = replaced.unwrap();
    assert_eq!(replaced.status(), StatusCode::SEE_OTHER);
    assert_eq!(replaced.headers()["location"], "/me/second-factor");
    let users = panel.get(app.url("/admin/users")).send().await.unwrap();
    assert_eq!(users.headers()["location"], "/me/second-factor", "setting up the new one first");
    let status = body(app.get("/api/v1/me/mfa", Some(&admin)).await).await;
    assert_eq!(status["totp"], false, "{status}");
}

/// A secret typed into a form that then needs a code (the SMTP password)
/// is never echoed into the page asking for the code: it is asked for
/// again, and the change is made with it.
#[tokio::test]
async fn a_secret_typed_before_the_step_up_never_comes_back_in_the_page() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let panel = app.panel_browser().await;
    let secret = enrol(&app, &admin).await;
    let html = panel.get(app.url("/admin/settings")).send().await.unwrap().text().await.unwrap();
    let csrf = csrf_of(&html);
    let password = "smtp-secret-7f3a91";
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("smtp", "1"),
        ("host", "mail.example.com"),
        ("port", "587"),
        ("security", "starttls"),
        ("username", "it"),
        ("password", password),
        ("from_address", "it@example.com"),
        ("from_name", "IT"),
    ];
    let asked = panel.post(app.url("/admin/settings/email")).form(&form).send().await.unwrap();
    assert_eq!(asked.status(), StatusCode::FORBIDDEN);
    let html = asked.text().await.unwrap();
    assert!(html.contains("Confirm it is you"), "{html}");
    assert!(!html.contains(password), "the secret is not echoed: {html}");
    assert!(html.contains("Type the SMTP password again"), "{html}");
    assert!(html.contains("name=\"host\" value=\"mail.example.com\""), "{html}");

    app.clock.advance(chrono::Duration::seconds(30));
    let code = app.totp_code(&secret, 0);
    form.push(("step_up_code", code.as_str()));
    let saved = panel.post(app.url("/admin/settings/email")).form(&form).send().await.unwrap();
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let email = body(app.get("/api/v1/settings/email", Some(&admin)).await).await;
    assert_eq!(email["smtp"]["host"], "mail.example.com", "{email}");
    assert_eq!(email["smtp"]["password_set"], true, "{email}");
}
