//! What is stored at rest: no usable link token, no SMTP password or OIDC
//! client secret in clear; the secret key that seals them is checked at
//! start and can be rotated.

use std::sync::Arc;

use reqwest::StatusCode;
use secureai_app::Application;
use secureai_app::config::SmtpConfig;
use secureai_domain::testing::FakeClock;
use secureai_tests::{TestApp, body, test_config};
use serde_json::json;

/// Every run of 43 URL-safe base64 characters (256-bit tokens) in `text`,
/// and the text itself.
fn candidates(text: &str) -> Vec<String> {
    let mut found = vec![text.to_owned()];
    let bytes = text.as_bytes();
    let token_char = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let mut start = 0;
    while start < bytes.len() {
        if !token_char(bytes[start]) {
            start += 1;
            continue;
        }
        let mut end = start;
        while end < bytes.len() && token_char(bytes[end]) {
            end += 1;
        }
        for i in start..=end.saturating_sub(43) {
            if end - start >= 43 {
                found.push(text[i..i + 43].to_owned());
            }
        }
        start = end;
    }
    found
}

#[tokio::test]
async fn with_mail_undelivered_no_stored_string_opens_the_invitation() {
    // SMTP down: the invitation email stays queued (then failed).
    let app = TestApp::with_admin_using(|config| {
        config.mail.smtp = Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port: secureai_tests::smtp::free_port(),
            security: secureai_app::config::SmtpSecurityConfig::None,
            username: None,
            password: None,
            timeout_secs: 1,
        });
    })
    .await;
    let admin = app.admin_token().await;
    app.invite(&admin, "ada@example.com", "user").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let outbox = body(app.get("/api/v1/outbox", Some(&admin)).await).await;
    assert!(outbox["items"].as_array().unwrap().iter().any(|m| m["status"] != "sent"));

    let mut tried = 0;
    for (table, column, text) in app.all_text().await {
        for candidate in candidates(&text) {
            if candidate.is_empty() || candidate.len() > 200 {
                continue;
            }
            tried += 1;
            let encoded: String =
                url::form_urlencoded::byte_serialize(candidate.as_bytes()).collect();
            let page = app.get(&format!("/invitations/accept?token={encoded}"), None).await;
            assert_ne!(
                page.status(),
                StatusCode::OK,
                "{table}.{column} holds a working invitation token"
            );
        }
    }
    assert!(tried > 20, "only {tried} strings tried");
}

#[tokio::test]
async fn the_smtp_password_and_oidc_client_secret_are_sealed_at_rest() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let saved = app
        .put(
            "/api/v1/settings/email",
            Some(&admin),
            json!({"smtp": {"host": "smtp.example.com", "port": 587, "security": "starttls",
                            "username": "it", "password": "smtp-password-at-rest-1234"},
                   "from_address": "it@example.com", "from_name": "IT"}),
        )
        .await;
    assert_eq!(saved.status(), StatusCode::OK);
    let idp = secureai_tests::oidc::OidcPeer::start(&app.url("/auth/oidc/callback"));
    let sso = app
        .put(
            "/api/v1/settings/sso",
            Some(&admin),
            json!({"mode": "oidc", "oidc": {"issuer_url": idp.issuer, "client_id": "secureai",
                                             "client_secret": secureai_tests::oidc::CLIENT_SECRET}}),
        )
        .await;
    assert_eq!(sso.status(), StatusCode::OK);
    let stored = app.all_text().await;
    assert!(stored.iter().all(|(_, _, v)| !v.contains("smtp-password-at-rest-1234")));
    let client_secret = secureai_tests::oidc::CLIENT_SECRET;
    assert!(
        stored.iter().all(|(_, _, v)| !v.contains(client_secret)),
        "the OIDC client secret is stored in clear"
    );
    assert!(stored.iter().any(|(t, _, v)| t == "settings" && v.contains("sealed:v1:")));
    // Still usable: the settings read back with a password set.
    let read = body(app.get("/api/v1/settings/email", Some(&admin)).await).await;
    assert_eq!(read["smtp"]["password_set"], true, "{read}");
}

async fn start(config: &secureai_app::Config) -> anyhow::Result<Application> {
    Application::build_with_clock(config, Arc::new(FakeClock::at(chrono::Utc::now()))).await
}

/// Serves `app` until the returned sender is dropped; its base URL.
fn serve(app: Application) -> (String, tokio::sync::oneshot::Sender<()>) {
    let base = format!("http://{}", app.address());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    (base, stop)
}

async fn admin_token(http: &reqwest::Client, base: &str) -> String {
    let login = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "root@example.com", "password": "a long admin passphrase"}))
        .send()
        .await
        .unwrap();
    body(login).await["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_wrong_or_missing_key_stops_the_start_and_a_rotated_key_works() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path());
    let http = reqwest::Client::new();
    // First start: the key file is made, readable by its owner only.
    let first = start(&config).await.unwrap();
    let key_file = dir.path().join("secret.key");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    let token = first.setup_link().unwrap().split("token=").nth(1).unwrap().to_owned();
    let (base, stop) = serve(first);
    let setup = http
        .post(format!("{base}/setup"))
        .form(&[
            ("token", token.as_str()),
            ("email", "root@example.com"),
            ("name", "Root"),
            ("password", "a long admin passphrase"),
            ("password_confirm", "a long admin passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(setup.status(), StatusCode::OK);
    let root = ("root@example.com", "a long admin passphrase");
    secureai_tests::make_second_factors_optional(&http, &base, root, chrono::Utc::now()).await;
    let admin = admin_token(&http, &base).await;
    let saved = http
        .put(format!("{base}/api/v1/settings/email"))
        .bearer_auth(&admin)
        .json(&json!({"smtp": {"host": "smtp.example.com", "port": 587, "security": "starttls",
                               "username": "it", "password": "smtp-secret-rotated"},
                      "from_address": "it@example.com", "from_name": "IT"}))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::OK);
    drop(stop);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // Another key: refused, saying why.
    let mut wrong = config.clone();
    wrong.secret_key = Some(secureai_store::SecretKey::generate().to_base64().into());
    let error = format!("{:#}", start(&wrong).await.err().unwrap());
    assert!(error.contains("not the one this database's secrets were sealed with"), "{error}");
    // No key at all (the file lost): refused, and no new key file made.
    let kept = std::fs::read_to_string(&key_file).unwrap();
    std::fs::rename(&key_file, dir.path().join("elsewhere.key")).unwrap();
    let error = format!("{:#}", start(&config).await.err().unwrap());
    assert!(error.contains("no secret key"), "{error}");
    assert!(!key_file.exists());
    std::fs::rename(dir.path().join("elsewhere.key"), &key_file).unwrap();

    // Rotation: a new key file, the old one kept, the secrets still read.
    let rotation = secureai_app::secret_key::rotate(&config).await.unwrap();
    assert!(rotation.replaced && rotation.resealed >= 1, "{rotation:?}");
    assert_ne!(std::fs::read_to_string(&key_file).unwrap(), kept);
    assert_eq!(std::fs::read_to_string(dir.path().join("secret.key.previous")).unwrap(), kept);
    let (base, _stop) = serve(start(&config).await.unwrap());
    let admin = admin_token(&http, &base).await;
    let read =
        http.get(format!("{base}/api/v1/settings/email")).bearer_auth(&admin).send().await.unwrap();
    let read = body(read).await;
    assert_eq!(read["smtp"]["password_set"], true, "{read}");
    // The old key opens nothing any more.
    let mut old = config.clone();
    old.secret_key = Some(kept.trim().to_owned().into());
    assert!(start(&old).await.is_err());
}
