//! A lost second factor: an admin resets another user's (API and profile
//! page; never their own), the user is emailed; a recovery code used at
//! sign-in is emailed too. And one code at two instances at once.

use reqwest::StatusCode;
use secureai_tests::{Mail, TestApp, assert_error, body, read_mail};
use serde_json::json;

/// Waits (up to 10 s) for a mail to `to` whose subject contains `subject`.
async fn mail_about(app: &TestApp, to: &str, subject: &str) -> Mail {
    for _ in 0..200 {
        let found = read_mail(&app.data_dir.join("mail"))
            .into_iter()
            .find(|m| m.to == to && m.subject.contains(subject));
        if let Some(mail) = found {
            return mail;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no mail to {to} about {subject}");
}

async fn enrol(app: &TestApp, token: &str) -> Vec<String> {
    let started = body(app.post("/api/v1/me/mfa/totp", Some(token), json!({})).await).await;
    let secret = started["secret"].as_str().unwrap().to_owned();
    let code = json!({"code": app.totp_code(&secret, 0)});
    let confirmed = body(app.post("/api/v1/me/mfa/totp/confirm", Some(token), code).await).await;
    let codes = confirmed["recovery_codes"].as_array().unwrap();
    codes.iter().map(|c| c.as_str().unwrap().to_owned()).collect()
}

fn ada_login() -> serde_json::Value {
    json!({"email": "ada@example.com", "password": "ada-password-1"})
}

#[tokio::test]
async fn an_admin_resets_a_lost_second_factor_and_the_user_is_emailed() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let ada_token = app.active_user(&admin, "ada@example.com", "user", "ada-password-1").await;
    let ada = app.user_id(&admin, "ada@example.com").await;
    let root = app.user_id(&admin, secureai_tests::ADMIN_EMAIL).await;
    let recovery = enrol(&app, &ada_token).await;

    // A recovery code at sign-in: Ada is told, with how many are left.
    let waiting = body(app.post("/api/v1/auth/login", None, ada_login()).await).await;
    let second = json!({"mfa_token": waiting["mfa_token"], "method": "recovery_code",
                        "code": recovery[0]});
    assert_eq!(app.post("/api/v1/auth/mfa", None, second).await.status(), StatusCode::OK);
    let used = mail_about(&app, "ada@example.com", "recovery code was used").await;
    assert!(used.text.contains("9 recovery codes are left"), "{}", used.text);
    assert!(!used.text.contains(&recovery[0]), "the code itself is never mailed");

    // The reset: API refusals first.
    let own = app.delete(&format!("/api/v1/users/{root}/mfa"), &admin).await;
    assert_error(own, StatusCode::CONFLICT, "mfa_reset_own").await;
    let by_ada = app.delete(&format!("/api/v1/users/{ada}/mfa"), &ada_token).await;
    assert_eq!(by_ada.status(), StatusCode::FORBIDDEN);
    let unknown = app
        .delete(&format!("/api/v1/users/{}/mfa", "0190a4c1-0000-7000-8000-000000000000"), &admin)
        .await;
    assert_error(unknown, StatusCode::NOT_FOUND, "user_not_found").await;
    let reset = app.delete(&format!("/api/v1/users/{ada}/mfa"), &admin).await;
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    let again = app.delete(&format!("/api/v1/users/{ada}/mfa"), &admin).await;
    assert_error(again, StatusCode::CONFLICT, "mfa_not_enrolled").await;
    let notice = mail_about(&app, "ada@example.com", "second factor was reset").await;
    assert!(notice.text.contains("Root Admin, an administrator,"), "{}", notice.text);
    let audit = body(app.get("/api/v1/audit?action=mfa.reset", Some(&admin)).await).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    assert!(audit["items"][0]["changes"].to_string().contains("admin"), "{audit}");
    // Her password alone signs her in now (second factors are optional
    // for users here); her recovery codes went with the app.
    let plain = body(app.post("/api/v1/auth/login", None, ada_login()).await).await;
    assert!(plain["token"].is_string(), "{plain}");
    let status = body(app.get("/api/v1/me/mfa", Some(&ada_token)).await).await;
    assert_eq!(status, json!({"totp": false, "passkeys": 0, "recovery_codes_left": 0}));

    // The profile page: the status, and the reset behind a confirmation.
    enrol(&app, &ada_token).await;
    let panel = app.panel_browser().await;
    let profile = panel.get(app.url(&format!("/admin/users/{ada}"))).send().await.unwrap();
    let html = profile.text().await.unwrap();
    assert!(html.contains("authenticator app, 10 recovery codes left"), "{html}");
    assert!(html.contains("Reset second factor"), "{html}");
    let own = panel.get(app.url(&format!("/admin/users/{root}"))).send().await.unwrap();
    assert!(!own.text().await.unwrap().contains("Reset second factor"), "never one's own");
    let confirm = panel.get(app.url(&format!("/admin/users/{ada}/reset-second-factor"))).send();
    let html = confirm.await.unwrap().text().await.unwrap();
    assert!(html.contains("Reset second factor?"), "{html}");
    let csrf =
        html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let done = panel
        .post(app.url(&format!("/admin/users/{ada}/reset-second-factor")))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let location = done.headers()["location"].to_str().unwrap().to_owned();
    let page = panel.get(app.url(&location)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("The second factor of ada@example.com is reset"), "{page}");
    assert!(page.contains("<dd id=\"second-factor\">none</dd>"), "{page}");
}

/// Two instances sharing one database: the same authenticator code sent to
/// both at once completes one sign-in only (the time step is spent with
/// one conditional `UPDATE`, whichever instance gets there first).
#[tokio::test]
async fn the_same_code_at_two_instances_at_once_signs_in_once() {
    let key = secureai_store::SecretKey::generate().to_base64();
    let first = TestApp::with_admin_using(|c| c.secret_key = Some(key.clone().into())).await;
    let admin = first.admin_token().await;
    let ada_token = first.active_user(&admin, "ada@example.com", "user", "ada-password-1").await;
    let started = body(first.post("/api/v1/me/mfa/totp", Some(&ada_token), json!({})).await).await;
    let secret = started["secret"].as_str().unwrap().to_owned();
    let confirm = json!({"code": first.totp_code(&secret, 0)});
    let confirmed = first.post("/api/v1/me/mfa/totp/confirm", Some(&ada_token), confirm).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let url = first.database_url.clone();
    let second = TestApp::spawn_with(|c| {
        c.database_url = Some(url.clone());
        c.secret_key = Some(key.clone().into());
    })
    .await;
    // Both instances' clocks at the same instant, the app's next code.
    use secureai_domain::Clock as _;
    first.clock.advance(chrono::Duration::seconds(30));
    second.clock.advance(first.clock.now() - second.clock.now());
    assert_eq!(first.totp_code(&secret, 0), second.totp_code(&secret, 0));
    let code = first.totp_code(&secret, 0);

    for round in 0..3 {
        let at_first = body(first.post("/api/v1/auth/login", None, ada_login()).await).await;
        let at_second = body(second.post("/api/v1/auth/login", None, ada_login()).await).await;
        let step = |waiting: &serde_json::Value| json!({"mfa_token": waiting["mfa_token"], "method": "totp", "code": code});
        let (a, b) = futures_util::future::join(
            first.post("/api/v1/auth/mfa", None, step(&at_first)),
            second.post("/api/v1/auth/mfa", None, step(&at_second)),
        )
        .await;
        let accepted = [a.status(), b.status()].iter().filter(|s| **s == StatusCode::OK).count();
        let expected = usize::from(round == 0);
        assert_eq!(accepted, expected, "round {round}: {} and {}", a.status(), b.status());
    }
}
