//! Your own second factors over the API: an authenticator app set up,
//! confirmed with a code computed as an app would, its recovery codes, and
//! its removal; the secret never stored in clear.

use reqwest::StatusCode;
use secureai_tests::{TestApp, body};
use serde_json::{Value, json};

/// The code an authenticator app shows at the app's (fake) time.
fn code(app: &TestApp, secret: &str, seconds_ago: i64) -> String {
    app.totp_code(secret, seconds_ago)
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn an_authenticator_app_is_set_up_confirmed_and_removed() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let status = body(app.get("/api/v1/me/mfa", Some(&admin)).await).await;
    assert_eq!(status, json!({"totp": false, "passkeys": 0, "recovery_codes_left": 0}));

    let started = app.post("/api/v1/me/mfa/totp", Some(&admin), json!({})).await;
    assert_eq!(started.status(), StatusCode::CREATED);
    assert_eq!(started.headers()["cache-control"], "no-store");
    let setup = body(started).await;
    let secret = setup["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32, "{setup}");
    assert!(setup["otpauth_uri"].as_str().unwrap().contains(&format!("secret={secret}")));
    let stored = app.all_text().await;
    let clear: Vec<_> = stored.iter().filter(|(_, _, v)| v.contains(&secret)).collect();
    assert!(clear.is_empty(), "the secret is sealed at rest: {clear:?}");

    let wrong = app
        .post(
            "/api/v1/me/mfa/totp/confirm",
            Some(&admin),
            json!({"code": code(&app, &secret, 300)}),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body(wrong).await["code"], "invalid_code");
    let confirmed = app
        .post("/api/v1/me/mfa/totp/confirm", Some(&admin), json!({"code": code(&app, &secret, 0)}))
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert_eq!(confirmed.headers()["cache-control"], "no-store");
    let first = strings(&body(confirmed).await["recovery_codes"]);
    assert_eq!(first.len(), 10);
    let status = body(app.get("/api/v1/me/mfa", Some(&admin)).await).await;
    assert_eq!(status, json!({"totp": true, "passkeys": 0, "recovery_codes_left": 10}));
    let again = app.post("/api/v1/me/mfa/totp", Some(&admin), json!({})).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(body(again).await["code"], "mfa_already_enrolled");

    let regenerated = app.post("/api/v1/me/recovery-codes", Some(&admin), json!({})).await;
    assert_eq!(regenerated.status(), StatusCode::OK);
    let second = strings(&body(regenerated).await["recovery_codes"]);
    assert!(second.len() == 10 && second.iter().all(|c| !first.contains(c)));
    let stored = app.all_text().await;
    assert!(
        stored.iter().all(|(_, _, v)| first.iter().chain(&second).all(|c| !v.contains(c.as_str()))),
        "recovery codes are kept as digests only"
    );

    let audit = body(app.get("/api/v1/audit?action=mfa.enrolled", Some(&admin)).await).await;
    // The harness's own enrolment (to make second factors optional), and this.
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
    let removed = app.delete("/api/v1/me/mfa/totp", &admin).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let status = body(app.get("/api/v1/me/mfa", Some(&admin)).await).await;
    assert_eq!(status, json!({"totp": false, "passkeys": 0, "recovery_codes_left": 0}));
    let gone = app.delete("/api/v1/me/mfa/totp", &admin).await;
    assert_eq!(gone.status(), StatusCode::CONFLICT);
    assert_eq!(body(gone).await["code"], "mfa_not_enrolled");
    let none = app.post("/api/v1/me/recovery-codes", Some(&admin), json!({})).await;
    assert_eq!(none.status(), StatusCode::CONFLICT);
}

async fn enrol(app: &TestApp, token: &str) -> String {
    let setup = body(app.post("/api/v1/me/mfa/totp", Some(token), json!({})).await).await;
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let confirmed = app
        .post("/api/v1/me/mfa/totp/confirm", Some(token), json!({"code": code(app, &secret, 0)}))
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    secret
}

async fn login(app: &TestApp) -> reqwest::Response {
    let credentials = json!({
        "email": secureai_tests::ADMIN_EMAIL,
        "password": secureai_tests::ADMIN_PASSWORD,
    });
    app.post("/api/v1/auth/login", None, credentials).await
}

#[tokio::test]
async fn with_an_app_signing_in_takes_a_second_step_whose_token_works_once() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let secret = enrol(&app, &admin).await;

    let first = login(&app).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.headers().get("set-cookie").is_none(), "no session yet");
    let first = body(first).await;
    assert_eq!(first["mfa_required"], true, "{first}");
    assert_eq!(first["methods"], json!(["totp", "recovery_code"]));
    assert!(first.get("token").is_none());
    let mfa_token = first["mfa_token"].as_str().unwrap().to_owned();
    let step = |code: String| json!({"mfa_token": mfa_token, "method": "totp", "code": code});

    let wrong = app.post("/api/v1/auth/mfa", None, step(code(&app, &secret, 300))).await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body(wrong).await["code"], "invalid_code");
    app.clock.advance(chrono::Duration::seconds(30));
    let done = app.post("/api/v1/auth/mfa", None, step(code(&app, &secret, 0))).await;
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.headers()["set-cookie"].to_str().unwrap().contains("HttpOnly"));
    let session = body(done).await["token"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/api/v1/me", Some(&session)).await.status(), StatusCode::OK);
    let replay = app.post("/api/v1/auth/mfa", None, step(code(&app, &secret, 0))).await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(replay).await["code"], "mfa_token_expired");
    let bad_method = app
        .post("/api/v1/auth/mfa", None, json!({"mfa_token": "x", "method": "sms", "code": "1"}))
        .await;
    assert_eq!(bad_method.status(), StatusCode::BAD_REQUEST, "outside the schema");

    // 50 wrong codes at once: at most the free attempts are checked.
    let second = body(login(&app).await).await;
    let mfa_token = second["mfa_token"].as_str().unwrap().to_owned();
    let failed_before = body(app.get("/api/v1/audit?action=mfa.failed", Some(&admin)).await).await
        ["items"]
        .as_array()
        .unwrap()
        .len();
    let wrong = json!({"mfa_token": mfa_token, "method": "totp", "code": "000000"});
    let answers = futures_util::future::join_all(
        (0..50).map(|_| app.post("/api/v1/auth/mfa", None, wrong.clone())),
    )
    .await;
    let checked = answers.iter().filter(|a| a.status() == StatusCode::UNPROCESSABLE_ENTITY).count();
    let refused = answers.iter().filter(|a| a.status() == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!(checked + refused, 50);
    assert!((1..=5).contains(&checked), "{checked} wrong codes were checked");
    assert!(
        answers.iter().all(|a| a.status() != StatusCode::TOO_MANY_REQUESTS
            || a.headers().contains_key("retry-after"))
    );
    let failed =
        body(app.get("/api/v1/audit?action=mfa.failed", Some(&admin)).await).await["items"]
            .as_array()
            .unwrap()
            .len();
    assert_eq!(failed - failed_before, checked, "each checked code audited");
}

#[tokio::test]
async fn the_sign_in_page_asks_for_the_code_as_a_second_step() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let secret = enrol(&app, &admin).await;
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let asked = browser
        .post(app.url("/sign-in"))
        .form(&[
            ("email", secureai_tests::ADMIN_EMAIL),
            ("password", secureai_tests::ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::OK);
    assert!(asked.headers().get("set-cookie").is_none());
    let page = asked.text().await.unwrap();
    assert!(page.contains("Enter your code") && page.contains("Recovery code"), "{page}");
    let mfa_token =
        page.split("name=\"mfa_token\" value=\"").nth(1).unwrap().split('"').next().unwrap();
    let send = |code: String| {
        browser
            .post(app.url("/sign-in/code"))
            .form(&[("mfa_token", mfa_token), ("method", "totp"), ("code", code.as_str())])
            .send()
    };
    let wrong = send("12345".into()).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.text().await.unwrap().contains("That code is not right"));
    app.clock.advance(chrono::Duration::seconds(30));
    let signed_in = send(code(&app, &secret, 0)).await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert!(signed_in.headers()["set-cookie"].to_str().unwrap().starts_with("secureai_session="));
    let panel = browser.get(app.url("/admin/users")).send().await.unwrap();
    assert_eq!(panel.status(), StatusCode::OK, "signed in to the panel");
}
