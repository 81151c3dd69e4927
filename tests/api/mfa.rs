//! Your own second factors over the API: an authenticator app set up,
//! confirmed with a code computed as an app would, its recovery codes, and
//! its removal; the secret never stored in clear.

use reqwest::StatusCode;
use secureai_domain::Clock;
use secureai_tests::{TestApp, body};
use serde_json::{Value, json};

/// The code an authenticator app shows at the app's (fake) time.
fn code(app: &TestApp, secret: &str, seconds_ago: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    let generator = totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    );
    let at = app.clock.now() - chrono::Duration::seconds(seconds_ago);
    generator.generate(u64::try_from(at.timestamp()).unwrap())
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn an_authenticator_app_is_set_up_confirmed_and_removed() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let status = body(app.get("/api/v1/me/mfa", Some(&admin)).await).await;
    assert_eq!(status, json!({"totp": false, "recovery_codes_left": 0}));

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
    assert_eq!(status, json!({"totp": true, "recovery_codes_left": 10}));
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
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    let removed = app.delete("/api/v1/me/mfa/totp", &admin).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let status = body(app.get("/api/v1/me/mfa", Some(&admin)).await).await;
    assert_eq!(status, json!({"totp": false, "recovery_codes_left": 0}));
    let gone = app.delete("/api/v1/me/mfa/totp", &admin).await;
    assert_eq!(gone.status(), StatusCode::CONFLICT);
    assert_eq!(body(gone).await["code"], "mfa_not_enrolled");
    let none = app.post("/api/v1/me/recovery-codes", Some(&admin), json!({})).await;
    assert_eq!(none.status(), StatusCode::CONFLICT);
}
