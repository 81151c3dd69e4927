//! Single sign-on through a real OpenID Provider (npm `oidc-provider`,
//! started per test on loopback), signed in on its login page by a
//! cookie-keeping HTTP client: the positive flow and each refusal, every
//! refusal audited with its reason.

use reqwest::StatusCode;
use secureai_tests::oidc::{
    CLIENT_SECRET, OidcPeer, browser, location, param, sign_in_at_provider, with_param,
};
use secureai_tests::{TestApp, assert_error, audit_change, body, sign_in_refusal};
use serde_json::json;

/// An app with its first admin, a provider, and SSO configured.
async fn with_oidc() -> (TestApp, OidcPeer, String) {
    let app = TestApp::with_admin().await;
    let idp = OidcPeer::start(&app.url("/auth/oidc/callback"));
    let admin = app.admin_token().await;
    let response = app
        .put(
            "/api/v1/settings/sso",
            Some(&admin),
            json!({
                "mode": "oidc",
                "oidc": {
                    "issuer_url": idp.issuer,
                    "client_id": "secureai",
                    "client_secret": CLIENT_SECRET,
                }
            }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
    (app, idp, admin)
}

/// Starts a sign-in at our server; returns the provider's authorization URL.
async fn start(app: &TestApp, browser: &reqwest::Client) -> String {
    let response = browser.get(app.url("/auth/oidc/login")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    location(&response)
}

/// Starts, signs in at the provider as `login`; returns our callback URL.
async fn callback_for(
    app: &TestApp,
    idp: &OidcPeer,
    browser: &reqwest::Client,
    login: &str,
) -> String {
    let authorize = start(app, browser).await;
    assert!(authorize.starts_with(&idp.issuer), "{authorize}");
    assert_eq!(param(&authorize, "code_challenge_method").as_deref(), Some("S256"));
    let callback = sign_in_at_provider(browser, &idp.issuer, &authorize, login).await;
    assert!(callback.starts_with(&app.url("/auth/oidc/callback")), "{callback}");
    callback
}

async fn me_status(app: &TestApp, browser: &reqwest::Client) -> StatusCode {
    browser.get(app.url("/api/v1/me")).send().await.unwrap().status()
}

#[tokio::test]
async fn an_invited_sso_user_signs_in_through_the_provider_and_is_activated() {
    let (app, idp, admin) = with_oidc().await;
    let invited = app.invite(&admin, "ada@example.com", "user").await;
    assert_eq!(invited["sign_in_method"], "sso");
    assert_eq!(invited["status"], "invited");
    // No link was sent, so nothing expires (the domain's rule tests show it
    // a month later; here the provider's real clock keeps ours still).
    let id = invited["id"].as_str().unwrap();
    let profile = body(app.get(&format!("/api/v1/users/{id}"), Some(&admin)).await).await;
    assert_eq!(profile["invitation"]["state"], "awaiting_first_sign_in", "{profile}");
    assert!(profile["invitation"]["expires_at"].is_null());
    let browser = browser();
    let callback = callback_for(&app, &idp, &browser, "ada@example.com").await;
    assert_eq!(param(&callback, "iss").as_deref(), Some(idp.issuer.as_str()));

    let answer = browser.get(&callback).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&answer), app.url("/"));
    let me = browser.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let me = body(me).await;
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["status"], "active");

    let succeeded =
        body(app.get("/api/v1/audit?action=sign_in.succeeded", Some(&admin)).await).await;
    // The test clock stands still: find Ada's event by content, not order.
    let ada = succeeded["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["target_email"] == "ada@example.com")
        .cloned()
        .unwrap();
    assert_eq!(audit_change(&ada, "method"), Some("oidc"));
    let accepted =
        body(app.get("/api/v1/audit?action=invitation.accepted", Some(&admin)).await).await;
    assert_eq!(accepted["items"][0]["target_email"], "ada@example.com");

    // The access-ready email carries no link to set a password.
    let mut notice = None;
    for _ in 0..100 {
        let mail = secureai_tests::read_mail(&app.data_dir.join("mail"));
        notice = mail.into_iter().find(|m| m.to.contains("ada@example.com"));
        if notice.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let notice = notice.expect("the access-ready email was written");
    assert!(!notice.text.contains("token="), "{}", notice.text);

    // Password reset is the provider's business.
    let id = invited["id"].as_str().unwrap();
    let reset =
        app.post(&format!("/api/v1/users/{id}/password-reset"), Some(&admin), json!({})).await;
    assert_error(reset, StatusCode::CONFLICT, "sso_user").await;
}

#[tokio::test]
async fn a_changed_state_is_refused() {
    let (app, idp, admin) = with_oidc().await;
    app.invite(&admin, "ada@example.com", "user").await;
    let browser = browser();
    let callback = callback_for(&app, &idp, &browser, "ada@example.com").await;
    let forged = with_param(&callback, "state", "attacker-chosen-state");
    let answer = browser.get(&forged).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(answer.text().await.unwrap().contains("You were not signed in"));
    assert_eq!(me_status(&app, &browser).await, StatusCode::UNAUTHORIZED);
    let refusal = sign_in_refusal(&app, &admin, "state_mismatch").await;
    assert_eq!(audit_change(&refusal, "method"), Some("oidc"));
}

#[tokio::test]
async fn a_replayed_answer_and_a_replayed_code_are_refused() {
    let (app, idp, admin) = with_oidc().await;
    app.invite(&admin, "ada@example.com", "user").await;
    let browser = browser();
    let callback = callback_for(&app, &idp, &browser, "ada@example.com").await;
    assert_eq!(browser.get(&callback).send().await.unwrap().status(), StatusCode::SEE_OTHER);

    // The same answer again: the sign-in it belonged to is used up.
    let other = secureai_tests::oidc::browser();
    let again = other.get(&callback).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
    sign_in_refusal(&app, &admin, "no_login_in_progress").await;

    // The used code under a fresh sign-in's state: the provider refuses it.
    let fresh = start(&app, &other).await;
    let state = param(&fresh, "state").unwrap();
    let replayed = with_param(&callback, "state", &state);
    let answer = other.get(&replayed).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert_eq!(me_status(&app, &other).await, StatusCode::UNAUTHORIZED);
    sign_in_refusal(&app, &admin, "code_rejected").await;
}

#[tokio::test]
async fn an_id_token_for_another_nonce_is_refused() {
    let (app, idp, admin) = with_oidc().await;
    app.invite(&admin, "ada@example.com", "user").await;
    let browser = browser();
    let authorize = start(&app, &browser).await;
    // The provider is asked for a nonce other than the one we remembered.
    let tampered = with_param(&authorize, "nonce", "a-nonce-we-never-sent");
    let callback = sign_in_at_provider(&browser, &idp.issuer, &tampered, "ada@example.com").await;
    let answer = browser.get(&callback).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert_eq!(me_status(&app, &browser).await, StatusCode::UNAUTHORIZED);
    sign_in_refusal(&app, &admin, "nonce_mismatch").await;
}

#[tokio::test]
async fn an_unverified_email_is_refused() {
    let (app, idp, admin) = with_oidc().await;
    app.invite(&admin, "unverified.bob@example.com", "user").await;
    let browser = browser();
    let callback = callback_for(&app, &idp, &browser, "unverified.bob@example.com").await;
    let answer = browser.get(&callback).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(answer.text().await.unwrap().contains("has not verified your email"));
    assert_eq!(me_status(&app, &browser).await, StatusCode::UNAUTHORIZED);
    let refusal = sign_in_refusal(&app, &admin, "email_not_verified").await;
    assert_eq!(refusal["target_email"], "unverified.bob@example.com");
}

#[tokio::test]
async fn an_unknown_email_is_told_it_has_no_account_here() {
    let (app, idp, admin) = with_oidc().await;
    let browser = browser();
    let callback = callback_for(&app, &idp, &browser, "stranger@example.com").await;
    let answer = browser.get(&callback).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let page = answer.text().await.unwrap();
    assert!(page.contains("No account here") && page.contains("no SecureAI account"), "{page}");
    sign_in_refusal(&app, &admin, "unknown_user").await;
    let users = body(app.get("/api/v1/users?q=stranger", Some(&admin)).await).await;
    assert_eq!(users["total"], 0, "no account is created without just-in-time provisioning");
}

#[tokio::test]
async fn a_deactivated_user_is_refused_although_the_provider_signs_them_in() {
    let (app, idp, admin) = with_oidc().await;
    let invited = app.invite(&admin, "ada@example.com", "user").await;
    let browser = browser();
    let callback = callback_for(&app, &idp, &browser, "ada@example.com").await;
    assert_eq!(browser.get(&callback).send().await.unwrap().status(), StatusCode::SEE_OTHER);
    let id = invited["id"].as_str().unwrap();
    let response = app
        .http
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(me_status(&app, &browser).await, StatusCode::UNAUTHORIZED);

    // The provider still has a live session: it signs them in at once.
    let callback = callback_for(&app, &idp, &browser, "ada@example.com").await;
    let answer = browser.get(&callback).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(answer.text().await.unwrap().contains("Account deactivated"));
    assert_eq!(me_status(&app, &browser).await, StatusCode::UNAUTHORIZED);
    let refusal = sign_in_refusal(&app, &admin, "account_deactivated").await;
    assert_eq!(refusal["target_id"], id);
}

#[tokio::test]
async fn sso_settings_are_checked_against_the_provider_and_never_show_the_secret() {
    let (app, idp, admin) = with_oidc().await;
    let settings = body(app.get("/api/v1/settings/sso", Some(&admin)).await).await;
    assert_eq!(settings["mode"], "oidc");
    assert_eq!(settings["oidc"]["issuer_url"], idp.issuer);
    assert_eq!(settings["oidc"]["client_secret_set"], true);
    assert_eq!(settings["oidc_redirect_uri"], app.url("/auth/oidc/callback"));
    assert!(!settings.to_string().contains(CLIENT_SECRET));

    // Discovery must load: a provider that is not there is refused.
    let dead = format!("http://127.0.0.1:{}", secureai_tests::smtp::free_port());
    let response = app
        .put(
            "/api/v1/settings/sso",
            Some(&admin),
            json!({"mode": "oidc", "oidc": {"issuer_url": dead, "client_id": "secureai"}}),
        )
        .await;
    let error =
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_issuer_url").await;
    assert!(error["message"].as_str().unwrap().contains("discovery failed"), "{error}");
    let unchanged = body(app.get("/api/v1/settings/sso", Some(&admin)).await).await;
    assert_eq!(unchanged["oidc"]["issuer_url"], idp.issuer);

    let audit =
        body(app.get("/api/v1/audit?action=settings.sso_changed", Some(&admin)).await).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
    assert!(!audit.to_string().contains(CLIENT_SECRET));

    // A break-glass admin with a password stays possible under SSO.
    let response = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"email": "breakglass@example.com", "name": "Break Glass", "role": "admin",
                   "sign_in": "password"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(body(response).await["sign_in_method"], "password");
}

#[tokio::test]
async fn without_sso_the_sign_in_end_points_say_so() {
    let app = TestApp::with_admin().await;
    let browser = browser();
    let response = browser.get(app.url("/auth/oidc/login")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("Single sign-on is not set up"));
}

#[tokio::test]
async fn the_break_glass_password_admin_is_linked_only_after_an_admin_switches_it_to_sso() {
    let (app, idp, admin) = with_oidc().await;
    let root_id =
        body(app.get("/api/v1/me", Some(&admin)).await).await["id"].as_str().unwrap().to_owned();

    // The provider asserts the password admin's verified address: refused.
    let browser_one = browser();
    let callback = callback_for(&app, &idp, &browser_one, secureai_tests::ADMIN_EMAIL).await;
    let answer = browser_one.get(&callback).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert!(answer.text().await.unwrap().contains("signs in with a password"));
    let event = sign_in_refusal(&app, &admin, "password_account").await;
    assert_eq!(event["target_id"], root_id.as_str());

    // A second admin switches it to SSO, explicitly and audited.
    let invited = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"email": "second@example.com", "name": "Second", "role": "admin", "sign_in": "password"}),
        )
        .await;
    assert_eq!(invited.status(), StatusCode::CREATED);
    let token = app.invitation_token("second@example.com").await;
    let accepted = app
        .post(
            "/api/v1/invitations/accept",
            None,
            json!({"token": token, "password": "a long second passphrase"}),
        )
        .await;
    assert!(accepted.status().is_success());
    let other = app.login("second@example.com", "a long second passphrase").await;
    // Any field the API does not know is refused, not ignored.
    let unknown = app
        .http
        .patch(app.url(&format!("/api/v1/users/{root_id}")))
        .bearer_auth(&other)
        .json(&json!({"password_hash": "$argon2id$v=19$..."}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    // An active user's address is the identity provider's, not an admin's.
    let email = app
        .patch(&format!("/api/v1/users/{root_id}"), &other, json!({"email": "new@example.com"}))
        .await;
    secureai_tests::assert_error(email, StatusCode::CONFLICT, "email_not_changeable").await;
    let switched = app
        .http
        .patch(app.url(&format!("/api/v1/users/{root_id}")))
        .bearer_auth(&other)
        .json(&json!({"sign_in": "sso"}))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), StatusCode::OK);
    assert_eq!(body(switched).await["sign_in_method"], "sso");
    let audit =
        body(app.get("/api/v1/audit?action=user.sign_in_method_changed", Some(&other)).await).await;
    assert_eq!(audit["items"][0]["target_id"], root_id.as_str());
    assert_eq!(audit_change(&audit["items"][0], "sign_in"), Some("sso"));
    // Its sessions ended, and its password no longer signs in.
    assert_eq!(app.get("/api/v1/me", Some(&admin)).await.status(), StatusCode::UNAUTHORIZED);
    let by_password = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": secureai_tests::ADMIN_EMAIL, "password": secureai_tests::ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(by_password.status(), StatusCode::UNAUTHORIZED);

    // Now the provider signs it in, and links it.
    let browser_two = browser();
    let callback = callback_for(&app, &idp, &browser_two, secureai_tests::ADMIN_EMAIL).await;
    assert_eq!(browser_two.get(&callback).send().await.unwrap().status(), StatusCode::SEE_OTHER);
    let me = body(browser_two.get(app.url("/api/v1/me")).send().await.unwrap()).await;
    assert_eq!(me["id"], root_id.as_str());
}

#[tokio::test]
async fn an_admin_switches_a_password_account_to_sso_from_its_profile_page() {
    let (app, _idp, admin) = with_oidc().await;
    let invited = app
        .post(
            "/api/v1/users",
            Some(&admin),
            json!({"email": "local@example.com", "name": "Local", "role": "user", "sign_in": "password"}),
        )
        .await;
    let id = body(invited).await["id"].as_str().unwrap().to_owned();
    let panel = app.panel_browser().await;
    let profile = panel.get(app.url(&format!("/admin/users/{id}"))).send().await.unwrap();
    assert!(profile.text().await.unwrap().contains("Switch to single sign-on"));
    let confirm = panel
        .get(app.url(&format!("/admin/users/{id}/switch-to-sso")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(confirm.contains("their password is removed"), "{confirm}");
    let csrf = confirm.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap();
    let done = panel
        .post(app.url(&format!("/admin/users/{id}/switch-to-sso")))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let user = body(app.get(&format!("/api/v1/users/{id}"), Some(&admin)).await).await;
    assert_eq!(user["sign_in_method"], "sso");
    let after =
        panel.get(app.url(&format!("/admin/users/{id}?done=switched"))).send().await.unwrap();
    let html = after.text().await.unwrap();
    assert!(html.contains("now signs in through your identity provider"));
    assert!(!html.contains(">Switch to single sign-on<"));
}

/// Second factors are the identity provider's business: with Settings ›
/// Security requiring one of everyone, an SSO admin's sign-in still gives
/// a full session, and SecureAI offers them none of its own.
#[tokio::test]
async fn an_sso_admin_is_never_asked_for_a_second_factor_here() {
    let (app, idp, admin) = with_oidc().await;
    let strict = json!({"admin_mfa": "required", "user_mfa": "required"});
    assert_eq!(
        app.put("/api/v1/settings/security", Some(&admin), strict).await.status(),
        StatusCode::OK
    );
    let invited = app.invite(&admin, "ada@example.com", "admin").await;
    assert_eq!(invited["sign_in_method"], "sso");
    let browser = browser();
    let callback = callback_for(&app, &idp, &browser, "ada@example.com").await;
    let answer = browser.get(&callback).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&answer), app.url("/"));
    assert_eq!(me_status(&app, &browser).await, StatusCode::OK);
    let users = browser.get(app.url("/api/v1/users")).send().await.unwrap();
    assert_eq!(users.status(), StatusCode::OK, "a full admin session");
    let offered = browser
        .post(app.url("/api/v1/me/mfa/totp"))
        .header("origin", app.url(""))
        .send()
        .await
        .unwrap();
    assert_error(offered, StatusCode::CONFLICT, "sso_user").await;
}
