//! Passkeys over HTTP, with a software authenticator that signs as a real
//! one does (`webauthn-authenticator-rs`' soft passkey): registration
//! (the first brings recovery codes; a registration is answered once, by
//! its user, with an answer signed for its challenge), a
//! sign-in whose second step is the passkey's signature, a wrong answer
//! refused without spending the sign-in's other factors, renaming,
//! removing.

use reqwest::StatusCode;
use secureai_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, assert_error, body};
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

/// The origin a browser at the test server has for WebAuthn: its loopback
/// address as `localhost`.
fn origin(app: &TestApp) -> Url {
    let mut url = Url::parse(&app.url("/")).unwrap();
    url.set_host(Some("localhost")).unwrap();
    url
}

/// Registers a passkey of `authenticator` named `name`: the answer.
async fn register(
    app: &TestApp,
    token: &str,
    authenticator: &mut SoftPasskey,
    name: &str,
) -> reqwest::Response {
    let started = app.post("/api/v1/me/passkeys/registration", Some(token), json!({})).await;
    assert_eq!(started.status(), StatusCode::CREATED);
    let started = body(started).await;
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let credential = authenticator.do_registration(origin(app), options).unwrap();
    let answer = json!({
        "registration_token": started["registration_token"],
        "name": name,
        "credential": serde_json::to_value(&credential).unwrap(),
    });
    app.post("/api/v1/me/passkeys", Some(token), answer).await
}

/// The passkey's signed answer to a sign-in's challenge.
fn sign(app: &TestApp, authenticator: &mut SoftPasskey, waiting: &Value) -> Value {
    let options: RequestChallengeResponse =
        serde_json::from_value(waiting["webauthn"].clone()).unwrap();
    let answer = authenticator.do_authentication(origin(app), options).unwrap();
    serde_json::to_value(&answer).unwrap()
}

fn ada_login() -> Value {
    json!({"email": "ada@example.com", "password": "ada-password-1"})
}

#[tokio::test]
async fn a_passkey_is_registered_then_signs_its_user_in_as_the_second_factor() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let ada = app.active_user(&admin, "ada@example.com", "user", "ada-password-1").await;
    let mut key = SoftPasskey::new(true);

    let registered = register(&app, &ada, &mut key, "  YubiKey ").await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    assert_eq!(registered.headers()["cache-control"], "no-store");
    let registered = body(registered).await;
    assert_eq!(registered["passkey"]["name"], "YubiKey");
    let codes = registered["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(codes.len(), 10, "the first second factor brings recovery codes");
    let status = body(app.get("/api/v1/me/mfa", Some(&ada)).await).await;
    assert_eq!(status, json!({"totp": false, "passkeys": 1, "recovery_codes_left": 10}));
    // A second key: no new codes.
    let mut spare = SoftPasskey::new(true);
    let second = body(register(&app, &ada, &mut spare, "Spare").await).await;
    assert!(second["recovery_codes"].is_null(), "{second}");

    // The sign-in: the password, then the passkey's signature.
    let waiting = body(app.post("/api/v1/auth/login", None, ada_login()).await).await;
    assert_eq!(waiting["mfa_required"], true);
    assert_eq!(waiting["methods"], json!(["webauthn", "recovery_code"]));
    let signed = sign(&app, &mut key, &waiting);
    let step =
        json!({"mfa_token": waiting["mfa_token"], "method": "webauthn", "credential": signed});
    let signed_in = app.post("/api/v1/auth/mfa", None, step.clone()).await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    let session = body(signed_in).await["token"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/api/v1/me", Some(&session)).await.status(), StatusCode::OK);
    let replay = app.post("/api/v1/auth/mfa", None, step).await;
    assert_error(replay, StatusCode::UNAUTHORIZED, "mfa_token_expired").await;
    let keys = body(app.get("/api/v1/me/passkeys", Some(&ada)).await).await;
    assert!(keys[0]["last_used_at"].is_string(), "{keys}");
    assert!(keys[1]["last_used_at"].is_null(), "{keys}");
    let audit = body(app.get("/api/v1/audit?action=sign_in.succeeded", Some(&admin)).await).await;
    assert!(audit["items"][0]["changes"].to_string().contains("password+webauthn"), "{audit}");

    // A wrong answer: refused, and the challenge is spent; the recovery
    // code still completes the same sign-in.
    let waiting = body(app.post("/api/v1/auth/login", None, ada_login()).await).await;
    let forged = json!({"mfa_token": waiting["mfa_token"], "method": "webauthn",
                        "credential": {"id": "AAAA", "type": "public-key"}});
    let refused = app.post("/api/v1/auth/mfa", None, forged).await;
    assert_error(refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid_code").await;
    let late = sign(&app, &mut key, &waiting);
    let late = json!({"mfa_token": waiting["mfa_token"], "method": "webauthn", "credential": late});
    let spent = app.post("/api/v1/auth/mfa", None, late).await;
    assert_error(spent, StatusCode::UNPROCESSABLE_ENTITY, "invalid_code").await;
    let missing = json!({"mfa_token": waiting["mfa_token"], "method": "webauthn"});
    let missing = app.post("/api/v1/auth/mfa", None, missing).await;
    assert_error(missing, StatusCode::UNPROCESSABLE_ENTITY, "invalid_code").await;
    let recovery = json!({"mfa_token": waiting["mfa_token"], "method": "recovery_code",
                          "code": codes[0]});
    assert_eq!(app.post("/api/v1/auth/mfa", None, recovery).await.status(), StatusCode::OK);

    // Rename, remove; the last one takes the recovery codes with it.
    let id = keys[0]["id"].as_str().unwrap().to_owned();
    let spare_id = keys[1]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/me/passkeys/{id}");
    let renamed = app.patch(&path, &ada, json!({"name": "Blue key"})).await;
    assert_eq!(renamed.status(), StatusCode::NO_CONTENT);
    let blank = app.patch(&format!("/api/v1/me/passkeys/{id}"), &ada, json!({"name": " "})).await;
    assert_error(blank, StatusCode::UNPROCESSABLE_ENTITY, "invalid_name").await;
    let keys = body(app.get("/api/v1/me/passkeys", Some(&ada)).await).await;
    assert_eq!(keys[0]["name"], "Blue key");
    let admins = app.delete(&format!("/api/v1/me/passkeys/{id}"), &admin).await;
    assert_error(admins, StatusCode::NOT_FOUND, "passkey_not_found").await;
    assert_eq!(
        app.delete(&format!("/api/v1/me/passkeys/{id}"), &ada).await.status(),
        StatusCode::NO_CONTENT
    );
    let status = body(app.get("/api/v1/me/mfa", Some(&ada)).await).await;
    assert_eq!(status["recovery_codes_left"], 9, "kept while a passkey is left");
    let gone = app.delete(&format!("/api/v1/me/passkeys/{spare_id}"), &ada).await;
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    let status = body(app.get("/api/v1/me/mfa", Some(&ada)).await).await;
    assert_eq!(status, json!({"totp": false, "passkeys": 0, "recovery_codes_left": 0}));
    let plain = body(app.post("/api/v1/auth/login", None, ada_login()).await).await;
    assert!(plain["token"].is_string(), "the password alone again: {plain}");
}

#[tokio::test]
async fn a_registration_is_answered_once_by_its_own_user() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let ada = app.active_user(&admin, "ada@example.com", "user", "ada-password-1").await;
    let started =
        body(app.post("/api/v1/me/passkeys/registration", Some(&ada), json!({})).await).await;
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let mut key = SoftPasskey::new(true);
    let credential =
        serde_json::to_value(key.do_registration(origin(&app), options).unwrap()).unwrap();
    let answer = json!({"registration_token": started["registration_token"], "name": "Key",
                        "credential": credential});
    // Another user cannot finish Ada's registration.
    let stolen = app.post("/api/v1/me/passkeys", Some(&admin), answer.clone()).await;
    assert_error(stolen, StatusCode::CONFLICT, "passkey_registration_expired").await;
    // That spent it (a challenge is answered once).
    let spent = app.post("/api/v1/me/passkeys", Some(&ada), answer).await;
    assert_error(spent, StatusCode::CONFLICT, "passkey_registration_expired").await;
    // The answer to that spent registration, sent with a new one's token:
    // signed for another challenge, refused.
    let fresh = app.post("/api/v1/me/passkeys/registration", Some(&ada), json!({})).await;
    let fresh = body(fresh).await;
    let replayed = json!({"registration_token": fresh["registration_token"], "name": "Key",
                          "credential": credential});
    let refused = app.post("/api/v1/me/passkeys", Some(&ada), replayed).await;
    assert_error(refused, StatusCode::UNPROCESSABLE_ENTITY, "invalid_credential").await;
    assert_eq!(body(register(&app, &ada, &mut key, "Key").await).await["passkey"]["name"], "Key");
    let keys = body(app.get("/api/v1/me/passkeys", Some(&ada)).await).await;
    assert_eq!(keys.as_array().unwrap().len(), 1);
    // An admin's reset removes it.
    let ada_id = app.user_id(&admin, "ada@example.com").await;
    assert_eq!(
        app.delete(&format!("/api/v1/users/{ada_id}/mfa"), &admin).await.status(),
        StatusCode::NO_CONTENT
    );
    let status = body(app.get("/api/v1/me/mfa", Some(&ada)).await).await;
    assert_eq!(status, json!({"totp": false, "passkeys": 0, "recovery_codes_left": 0}));
}

/// Step-up with a passkey: a challenge of its own (`POST
/// /auth/step-up/passkey`), signed by the admin's key, opens ten minutes of
/// sensitive changes; it is answered once, within five minutes.
#[tokio::test]
async fn a_passkey_confirms_a_step_up() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let ada = app.active_user(&admin, "ada@example.com", "user", "ada-password-1").await;
    let none = app.post("/api/v1/auth/step-up/passkey", Some(&ada), json!({})).await;
    assert_error(none, StatusCode::CONFLICT, "no_passkey").await;
    let mut key = SoftPasskey::new(true);
    assert_eq!(register(&app, &admin, &mut key, "Laptop").await.status(), StatusCode::CREATED);
    app.clock.advance(chrono::Duration::minutes(10) + chrono::Duration::seconds(1));
    let security = json!({"admin_mfa": "required", "user_mfa": "off"});
    let stale = app.put("/api/v1/settings/security", Some(&admin), security.clone()).await;
    assert_error(stale, StatusCode::FORBIDDEN, "mfa_step_up_required").await;

    let challenge = app.post("/api/v1/auth/step-up/passkey", Some(&admin), json!({})).await;
    assert_eq!(challenge.status(), StatusCode::CREATED);
    assert_eq!(challenge.headers()["cache-control"], "no-store");
    let challenge = body(challenge).await;
    let options: RequestChallengeResponse =
        serde_json::from_value(challenge["options"].clone()).unwrap();
    let signed = serde_json::to_value(key.do_authentication(origin(&app), options).unwrap());
    let answer = json!({"method": "webauthn", "challenge_token": challenge["challenge_token"],
                        "credential": signed.unwrap()});
    // Another user's session cannot use it (Ada has no second factor)…
    let stolen = app.post("/api/v1/auth/step-up", Some(&ada), answer.clone()).await;
    assert_error(stolen, StatusCode::CONFLICT, "mfa_not_enrolled").await;
    // …nor once she has one: refused, and that spends it.
    let mut adas_key = SoftPasskey::new(true);
    assert_eq!(register(&app, &ada, &mut adas_key, "Ada's").await.status(), StatusCode::CREATED);
    let stolen = app.post("/api/v1/auth/step-up", Some(&ada), answer.clone()).await;
    assert_error(stolen, StatusCode::UNPROCESSABLE_ENTITY, "invalid_code").await;
    let spent = app.post("/api/v1/auth/step-up", Some(&admin), answer).await;
    assert_error(spent, StatusCode::UNPROCESSABLE_ENTITY, "invalid_code").await;
    let challenge =
        body(app.post("/api/v1/auth/step-up/passkey", Some(&admin), json!({})).await).await;
    let options: RequestChallengeResponse =
        serde_json::from_value(challenge["options"].clone()).unwrap();
    let signed = serde_json::to_value(key.do_authentication(origin(&app), options).unwrap());
    let answer = json!({"method": "webauthn", "challenge_token": challenge["challenge_token"],
                        "credential": signed.unwrap()});
    let confirmed = app.post("/api/v1/auth/step-up", Some(&admin), answer.clone()).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let confirmed = body(confirmed).await;
    assert!(confirmed["valid_until"].is_string(), "{confirmed}");
    let replay = app.post("/api/v1/auth/step-up", Some(&admin), answer).await;
    assert_error(replay, StatusCode::UNPROCESSABLE_ENTITY, "invalid_code").await;
    let saved = app.put("/api/v1/settings/security", Some(&admin), security).await;
    assert_eq!(saved.status(), StatusCode::OK);
    let audit = body(app.get("/api/v1/audit?action=mfa.verified", Some(&admin)).await).await;
    let details = audit["items"][0]["changes"].to_string();
    assert!(details.contains("webauthn") && details.contains("step-up"), "{audit}");

    // A challenge waits five minutes; no answer at all is a wrong one.
    let late = body(app.post("/api/v1/auth/step-up/passkey", Some(&admin), json!({})).await).await;
    let options: RequestChallengeResponse =
        serde_json::from_value(late["options"].clone()).unwrap();
    let signed = serde_json::to_value(key.do_authentication(origin(&app), options).unwrap());
    app.clock.advance(chrono::Duration::minutes(5) + chrono::Duration::seconds(1));
    let expired = json!({"method": "webauthn", "challenge_token": late["challenge_token"],
                         "credential": signed.unwrap()});
    let expired = app.post("/api/v1/auth/step-up", Some(&admin), expired).await;
    assert_error(expired, StatusCode::UNPROCESSABLE_ENTITY, "invalid_code").await;
    let empty = app.post("/api/v1/auth/step-up", Some(&admin), json!({"method": "webauthn"})).await;
    assert_error(empty, StatusCode::UNPROCESSABLE_ENTITY, "invalid_code").await;
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
}

/// The panel's passkey requests (what `/static/passkeys.js` sends): the
/// options only with the page's form token, the answer as a form, the
/// first passkey bringing the recovery codes; the sign-in page then offers
/// the passkey with its challenge.
#[tokio::test]
async fn the_panel_registers_a_passkey_with_the_pages_form_token() {
    let app = TestApp::with_admin().await;
    let panel = app.panel_browser().await;
    let page = panel.get(app.url("/me/second-factor")).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("<script src=\"/static/passkeys.js\" defer></script>"), "{html}");
    let csrf = csrf_of(&html);
    let script = panel.get(app.url("/static/passkeys.js")).send().await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(script.text().await.unwrap().contains("navigator.credentials.create"));

    let options_url = app.url("/me/second-factor/passkeys/options");
    let forged = panel.post(&options_url).form(&[("csrf", "forged")]).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(forged.json::<Value>().await.unwrap()["error"], "forbidden");
    assert_eq!(app.rows("mfa_ceremonies").await, 0, "nothing begun");
    let started = panel.post(&options_url).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(started.status(), StatusCode::CREATED);
    assert_eq!(started.headers()["cache-control"], "no-store");
    let started: Value = started.json().await.unwrap();
    assert_eq!(started["options"]["publicKey"]["rp"]["id"], "localhost");
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let mut key = SoftPasskey::new(true);
    let credential = key.do_registration(origin(&app), options).unwrap();
    let credential = serde_json::to_string(&credential).unwrap();
    let token = started["registration_token"].as_str().unwrap();

    let add = app.url("/me/second-factor/passkeys");
    let empty = [("csrf", csrf.as_str()), ("name", "Laptop"), ("registration_token", token)];
    let empty = panel.post(&add).form(&empty).send().await.unwrap();
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.text().await.unwrap().contains("passkeys need JavaScript"));
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "Laptop"),
        ("registration_token", token),
        ("credential", credential.as_str()),
    ];
    let stolen = panel.post(&add).form(&[("csrf", "forged")]).send().await.unwrap();
    assert_eq!(stolen.status(), StatusCode::FORBIDDEN);
    let added = panel.post(&add).form(&form).send().await.unwrap();
    assert_eq!(added.status(), StatusCode::OK);
    let codes = added.text().await.unwrap();
    assert_eq!(codes.matches("<li><code>").count(), 10, "{codes}");
    let listed = panel.get(app.url("/me/second-factor")).send().await.unwrap();
    let listed = listed.text().await.unwrap();
    assert!(listed.contains("<td>Laptop</td>") && listed.contains("<td>Never</td>"), "{listed}");

    // The sign-in's second step offers the passkey with its challenge.
    let login = [("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)];
    let signing_in = reqwest::Client::new().post(app.url("/sign-in")).form(&login).send().await;
    let html = signing_in.unwrap().text().await.unwrap();
    assert!(html.contains("Use your passkey") && html.contains("data-options=\""), "{html}");
    assert!(!html.contains("Authenticator app code"), "no app, no app code: {html}");
}

/// The value of the attribute `name="…" value="…"` or `name="…"` in
/// `html`, HTML entities undone.
fn attribute_after(html: &str, marker: &str) -> String {
    let raw = html.split(marker).nth(1).unwrap().split('"').next().unwrap();
    raw.replace("&#34;", "\"").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// The page's step-up with a passkey: "Confirm it is you" carries a
/// challenge of its own; the passkey's answer goes through only with the
/// page's form token, makes the change, and works once.
#[tokio::test]
async fn the_step_up_page_takes_a_passkey_answer_once_with_the_form_token() {
    let app = TestApp::with_admin().await;
    let panel = app.panel_browser().await;
    let admin = app.admin_token().await;
    let mut key = SoftPasskey::new(true);
    assert_eq!(register(&app, &admin, &mut key, "Laptop").await.status(), StatusCode::CREATED);
    let page = app.url("/admin/settings/security");
    let csrf = csrf_of(&panel.get(&page).send().await.unwrap().text().await.unwrap());
    let form = [("csrf", csrf.as_str()), ("admin_mfa", "required"), ("user_mfa", "required")];
    let asked = panel.post(&page).form(&form).send().await.unwrap();
    assert_eq!(asked.status(), StatusCode::FORBIDDEN);
    let html = asked.text().await.unwrap();
    assert!(html.contains("Use your passkey"), "{html}");
    let challenge = attribute_after(&html, "name=\"step_up_challenge\" value=\"");
    let options: RequestChallengeResponse =
        serde_json::from_str(&attribute_after(&html, "data-options=\"")).unwrap();
    let answer = key.do_authentication(origin(&app), options).unwrap();
    let answer = serde_json::to_string(&answer).unwrap();
    let proof = |csrf: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("admin_mfa", "required".to_owned()),
            ("user_mfa", "required".to_owned()),
            ("step_up_challenge", challenge.clone()),
            ("step_up_credential", answer.clone()),
            ("step_up_method", "totp".to_owned()),
            ("step_up_code", String::new()),
        ]
    };
    let forged = panel.post(&page).form(&proof("forged")).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let policy = body(app.get("/api/v1/settings/security", Some(&admin)).await).await;
    assert_eq!(policy["user_mfa"], "optional", "nothing changed");
    let saved = panel.post(&page).form(&proof(&csrf)).send().await.unwrap();
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let policy = body(app.get("/api/v1/settings/security", Some(&admin)).await).await;
    assert_eq!(policy["user_mfa"], "required");
    let replay = panel.post(&page).form(&proof(&csrf)).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(replay.text().await.unwrap().contains("That passkey was not accepted"));
}
