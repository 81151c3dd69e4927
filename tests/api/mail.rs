//! Email: settings through the API (write-only password, validation,
//! audit), test messages and invitations through a real SMTP server
//! (plain, STARTTLS with login, implicit TLS), explanations of failures, the
//! server down then up (every message exactly once), failed messages listed
//! and retried, and the profile's delivery status.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::StatusCode;
use secureai_app::Config;
use secureai_app::config::{SmtpConfig, SmtpSecurityConfig};
use secureai_tests::smtp::{Security, SmtpPeer, free_port};
use secureai_tests::{TestApp, assert_error, body};
use serde_json::{Value, json};

const SMTP_PASSWORD: &str = "hunter2-smtp-secret";

fn smtp_settings(peer_port: u16, security: &str, login: Option<(&str, Option<&str>)>) -> Value {
    let mut smtp = json!({"host": "localhost", "port": peer_port, "security": security});
    if let Some((user, password)) = login {
        smtp["username"] = json!(user);
        if let Some(password) = password {
            smtp["password"] = json!(password);
        }
    }
    json!({"smtp": smtp, "from_address": "it@example.com", "from_name": "IT Team"})
}

/// Trust the peer's throw-away CA, retry fast.
fn trusting(peer: &SmtpPeer) -> impl FnOnce(&mut Config) + use<> {
    let ca = peer.ca_file.clone();
    move |config: &mut Config| {
        config.mail.smtp_ca_file = Some(ca);
        config.mail.first_retry_ms = 200;
        config.mail.max_retry_secs = 1;
    }
}

async fn save(app: &TestApp, admin: &str, settings: Value) -> Value {
    let response = app.put("/api/v1/settings/email", Some(admin), settings).await;
    assert_eq!(response.status(), StatusCode::OK);
    body(response).await
}

async fn send_test(app: &TestApp, admin: &str) -> Value {
    let response = app.post("/api/v1/settings/email/test", Some(admin), json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    body(response).await
}

async fn outbox(app: &TestApp, admin: &str, query: &str) -> Vec<Value> {
    let page = body(app.get(&format!("/api/v1/outbox{query}"), Some(admin)).await).await;
    page["items"].as_array().unwrap().clone()
}

/// Moves the application's fake clock on by 200 ms every 20 ms, so that
/// retry back-offs come due, until the returned guard is dropped.
fn run_clock(app: &TestApp) -> tokio::task::JoinHandle<()> {
    let clock = app.clock.clone();
    tokio::spawn(async move {
        loop {
            clock.advance(chrono::Duration::milliseconds(200));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
}

/// Waits until `check` holds for the outbox listing `query`.
async fn wait_for_outbox(
    app: &TestApp,
    admin: &str,
    query: &str,
    what: &str,
    check: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..300 {
        let items = outbox(app, admin, query).await;
        if check(&items) {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the outbox never showed {what}: {:?}", outbox(app, admin, query).await);
}

#[tokio::test]
async fn email_settings_default_to_files_and_never_return_the_password() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;

    let initial = body(app.get("/api/v1/settings/email", Some(&admin)).await).await;
    assert_eq!(initial["smtp"], Value::Null, "files in the data folder by default");
    assert_eq!(initial["source"], "configuration");

    let saved =
        save(&app, &admin, smtp_settings(2525, "starttls", Some(("it", Some(SMTP_PASSWORD)))))
            .await;
    assert_eq!(saved["source"], "saved");
    assert_eq!(saved["smtp"]["password_set"], true);
    assert_eq!(saved["smtp"]["username"], "it");
    assert!(saved["smtp"].get("password").is_none());

    // Saving again without a password keeps it; null removes it.
    let kept = save(&app, &admin, smtp_settings(2525, "starttls", Some(("it", None)))).await;
    assert_eq!(kept["smtp"]["password_set"], true);
    let mut cleared = smtp_settings(2525, "starttls", Some(("it", None)));
    cleared["smtp"]["password"] = Value::Null;
    assert_eq!(save(&app, &admin, cleared).await["smtp"]["password_set"], false);

    // The password appears in no response and no audit entry.
    let read_back = app.get("/api/v1/settings/email", Some(&admin)).await.text().await.unwrap();
    let audit = app
        .get("/api/v1/audit?action=settings.email_changed", Some(&admin))
        .await
        .text()
        .await
        .unwrap();
    let export = app.get("/api/v1/audit/export.csv", Some(&admin)).await.text().await.unwrap();
    for text in [&read_back, &audit, &export] {
        assert!(!text.contains(SMTP_PASSWORD), "{text}");
    }
    let audit: Value = serde_json::from_str(&audit).unwrap();
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{audit}");
    assert!(audit.to_string().contains("\"password\""), "the change is named: {audit}");
}

#[tokio::test]
async fn invalid_email_settings_are_refused_naming_the_field_and_change_nothing() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let before = app.get("/api/v1/settings/email", Some(&admin)).await.text().await.unwrap();

    let mut injected_host = smtp_settings(25, "none", None);
    injected_host["smtp"]["host"] = json!("mail.example.com\r\nRCPT TO:<x@evil.example>");
    let mut injected_name = smtp_settings(25, "none", None);
    injected_name["from_name"] = json!("IT\r\nBcc: everyone@example.com");
    let mut bad_sender = smtp_settings(25, "none", None);
    bad_sender["from_address"] = json!("it@example.com\r\nBcc: x@evil.example");
    let mut port_zero = smtp_settings(25, "none", None);
    port_zero["smtp"]["port"] = json!(0);
    let mut password_without_user = smtp_settings(25, "none", None);
    password_without_user["smtp"]["password"] = json!("pw");
    let cases = [
        (injected_host, "invalid_host"),
        (injected_name, "invalid_from_name"),
        (bad_sender, "invalid_from_address"),
        (port_zero, "invalid_port"),
        (password_without_user, "invalid_username"),
    ];
    for (settings, code) in cases {
        let response = app.put("/api/v1/settings/email", Some(&admin), settings).await;
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, code).await;
    }
    let mut bad_security = smtp_settings(25, "none", None);
    bad_security["smtp"]["security"] = json!("ssl");
    let response = app.put("/api/v1/settings/email", Some(&admin), bad_security).await;
    assert!(response.status().is_client_error());

    let after = app.get("/api/v1/settings/email", Some(&admin)).await.text().await.unwrap();
    assert_eq!(before, after);
    let user = app.active_user(&admin, "bob@example.com", "user", "bob's long password").await;
    let response = app.put("/api/v1/settings/email", Some(&user), smtp_settings(25, "none", None));
    assert_error(response.await, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn a_test_email_through_plain_smtp_returns_the_server_answer() {
    let peer = SmtpPeer::start(Security::None, None);
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    save(&app, &admin, smtp_settings(peer.port, "none", None)).await;

    let result = send_test(&app, &admin).await;

    assert_eq!(result["delivered"], true, "{result}");
    assert_eq!(result["to"], secureai_tests::ADMIN_EMAIL);
    let answer = result["message"].as_str().unwrap();
    assert!(answer.starts_with("250") && answer.contains("queued as"), "{answer}");
    let received = peer.wait_for(1, 10).await;
    assert_eq!(received[0].to, secureai_tests::ADMIN_EMAIL);
    assert_eq!(received[0].subject, "SecureAI test email");
    assert_eq!(
        (received[0].from.as_str(), received[0].from_name.as_str()),
        ("it@example.com", "IT Team")
    );
    assert!(!received[0].html.is_empty() && !received[0].text.is_empty());
}

#[tokio::test]
async fn invitations_go_through_starttls_with_a_login_exactly_once() {
    let peer = SmtpPeer::start(Security::Starttls, Some(("it", SMTP_PASSWORD)));
    let app = TestApp::with_admin_using(trusting(&peer)).await;
    let admin = app.admin_token().await;
    // Saved while running: no restart needed.
    save(&app, &admin, smtp_settings(peer.port, "starttls", Some(("it", Some(SMTP_PASSWORD)))))
        .await;

    for n in 0..3 {
        app.invite(&admin, &format!("starttls{n}@example.com"), "user").await;
    }
    let received = peer.wait_for(3, 20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert_eq!(peer.messages().len(), 3);
    let mut recipients: Vec<&str> = received.iter().map(|m| m.to.as_str()).collect();
    recipients.sort_unstable();
    assert_eq!(
        recipients,
        ["starttls0@example.com", "starttls1@example.com", "starttls2@example.com"]
    );
    assert!(received.iter().all(|m| m.text.contains("/invitations/accept?token=")));
    assert!(received.iter().all(|m| m.text.contains("expires in 72 hours")));
    let id = app.user_id(&admin, "starttls0@example.com").await;
    let profile = body(app.get(&format!("/api/v1/users/{id}"), Some(&admin)).await).await;
    let email = &profile["invitation_email"];
    assert_eq!(email["status"], "sent", "{profile}");
    assert!(email["sent_at"].is_string());
    assert!(!profile.to_string().contains("token"), "no link in the profile: {profile}");
}

#[tokio::test]
async fn implicit_tls_with_a_login_delivers() {
    let peer = SmtpPeer::start(Security::Tls, Some(("it", SMTP_PASSWORD)));
    let app = TestApp::with_admin_using(trusting(&peer)).await;
    let admin = app.admin_token().await;
    save(&app, &admin, smtp_settings(peer.port, "tls", Some(("it", Some(SMTP_PASSWORD))))).await;

    let result = send_test(&app, &admin).await;

    assert_eq!(result["delivered"], true, "{result}");
    assert_eq!(peer.wait_for(1, 10).await[0].subject, "SecureAI test email");
}

#[tokio::test]
async fn failures_are_explained_in_words_an_operator_can_act_on() {
    let starttls = SmtpPeer::start(Security::Starttls, Some(("it", SMTP_PASSWORD)));
    let plain = SmtpPeer::start(Security::None, None);
    let app = TestApp::with_admin_using(|config| {
        trusting(&starttls)(config);
        config.mail.smtp = None;
    })
    .await;
    let admin = app.admin_token().await;

    let mut explained = HashMap::new();
    let cases = [
        ("wrong password", smtp_settings(starttls.port, "starttls", Some(("it", Some("wrong"))))),
        ("tls to a plain server", smtp_settings(plain.port, "tls", None)),
        ("nothing listening", smtp_settings(free_port(), "none", None)),
        ("unknown host", {
            let mut s = smtp_settings(25, "none", None);
            s["smtp"]["host"] = json!("no-such-host.invalid");
            s
        }),
    ];
    for (case, settings) in cases {
        save(&app, &admin, settings).await;
        let result = send_test(&app, &admin).await;
        assert_eq!(result["delivered"], false, "{case}: {result}");
        explained.insert(case, result["message"].as_str().unwrap().to_owned());
    }

    assert!(explained["wrong password"].contains("refused the login"), "{explained:?}");
    assert!(explained["tls to a plain server"].contains("TLS"), "{explained:?}");
    assert!(explained["tls to a plain server"].contains("465"), "{explained:?}");
    assert!(explained["nothing listening"].contains("connection refused"), "{explained:?}");
    assert!(explained["unknown host"].contains("cannot be resolved"), "{explained:?}");
    assert!(starttls.messages().is_empty() && plain.messages().is_empty());
}

#[tokio::test]
async fn with_the_server_down_then_up_every_message_arrives_exactly_once() {
    let port = free_port();
    let app = TestApp::with_admin_using(|config| {
        config.mail.smtp = Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            security: SmtpSecurityConfig::None,
            username: None,
            password: None,
            timeout_secs: 5,
        });
        config.mail.first_retry_ms = 200;
        config.mail.max_retry_secs = 1;
        // The fake clock runs ten times faster than real time: never give
        // up while the server is down, however slow the machine is.
        config.mail.max_attempts = 1_000_000;
    })
    .await;
    let admin = app.admin_token().await;
    let clock = run_clock(&app);
    let emails: Vec<String> = (0..5).map(|n| format!("down{n}@example.com")).collect();
    for email in &emails {
        app.invite(&admin, email, "user").await;
    }
    // Every invitation failed at least once, and waits for its retry.
    let queued = wait_for_outbox(&app, &admin, "?status=queued", "five failed attempts", |items| {
        items.len() == 5
            && items.iter().all(|m| {
                m["attempts"].as_u64() >= Some(1)
                    && m["last_error"].as_str().is_some_and(|e| e.contains("connection refused"))
            })
    })
    .await;
    assert!(queued.iter().all(|m| m["next_attempt_at"].is_string()));

    let peer = SmtpPeer::start_on(port, Security::None, None);
    peer.wait_for(5, 20).await;
    wait_for_outbox(&app, &admin, "?status=sent", "five sent", |items| items.len() == 5).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut received: Vec<String> = peer.messages().iter().map(|m| m.to.clone()).collect();
    received.sort();
    assert_eq!(received, emails, "each message exactly once");
    let mut ids: Vec<String> = peer.messages().iter().map(|m| m.message_id.clone()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 5);
    clock.abort();
}

#[tokio::test]
async fn a_message_that_keeps_failing_is_listed_and_can_be_retried() {
    let port = free_port();
    let app = TestApp::with_admin_using(|config| {
        config.mail.max_attempts = 2;
        config.mail.first_retry_ms = 100;
        config.mail.max_retry_secs = 1;
    })
    .await;
    let admin = app.admin_token().await;
    save(&app, &admin, smtp_settings(port, "none", None)).await;
    let clock = run_clock(&app);
    app.invite(&admin, "unlucky@example.com", "user").await;

    let failed = wait_for_outbox(&app, &admin, "?status=failed", "a failed message", |items| {
        items.len() == 1
    })
    .await;
    let message = &failed[0];
    assert_eq!(message["recipient"], "unlucky@example.com");
    assert_eq!(message["kind"], "invitation");
    assert_eq!(message["attempts"], 2);
    assert!(message["last_error"].as_str().unwrap().contains("connection refused"));
    let id = app.user_id(&admin, "unlucky@example.com").await;
    let profile = body(app.get(&format!("/api/v1/users/{id}"), Some(&admin)).await).await;
    assert_eq!(profile["invitation_email"]["status"], "failed", "{profile}");

    // "Retry all" puts it back in the queue; with the server still down it
    // fails again, after its attempts.
    let all = app.post("/api/v1/outbox/retry-failed", Some(&admin), json!({})).await;
    assert_eq!(body(all).await["requeued"], 1);
    wait_for_outbox(&app, &admin, "?status=failed", "the message failed again", |items| {
        items.len() == 1 && items[0]["attempts"] == 2
    })
    .await;
    let retried_events =
        body(app.get("/api/v1/audit?action=mail.retried", Some(&admin)).await).await;
    assert_eq!(retried_events["items"].as_array().unwrap().len(), 1, "audited");

    let peer = SmtpPeer::start_on(port, Security::None, None);
    let message_id = message["id"].as_str().unwrap();
    let retried =
        app.post(&format!("/api/v1/outbox/{message_id}/retry"), Some(&admin), json!({})).await;
    assert_eq!(retried.status(), StatusCode::OK);
    let retried = body(retried).await;
    // Queued again with a fresh count (the worker may already have sent it).
    assert_eq!(retried["attempts"], 0, "{retried}");
    assert!(["queued", "sent"].contains(&retried["status"].as_str().unwrap()), "{retried}");

    let received = peer.wait_for(1, 20).await;
    assert_eq!(received[0].to, "unlucky@example.com");
    wait_for_outbox(&app, &admin, "?status=sent", "the retried message sent", |items| {
        items.iter().any(|m| m["id"] == message_id)
    })
    .await;
    let again =
        app.post(&format!("/api/v1/outbox/{message_id}/retry"), Some(&admin), json!({})).await;
    assert_error(again, StatusCode::CONFLICT, "message_not_failed").await;
    let unknown =
        app.post(&format!("/api/v1/outbox/{}/retry", uuid_like()), Some(&admin), json!({})).await;
    assert_error(unknown, StatusCode::NOT_FOUND, "message_not_found").await;
    let audit = body(app.get("/api/v1/audit?action=mail.retried", Some(&admin)).await).await;
    // Once by "Retry all", once by the single retry.
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
    clock.abort();
}

fn uuid_like() -> &'static str {
    "00000000-0000-4000-8000-000000000000"
}

#[tokio::test]
async fn after_a_restart_the_new_process_delivers_what_the_old_one_could_not() {
    let shared = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}?mode=rwc", shared.path().join("shared.db").display());
    let port = free_port();
    // Both processes use the database's secret key.
    let key = secureai_store::SecretKey::generate().to_base64();
    let on_shared = |config: &mut Config| {
        config.database_url = Some(database_url.clone());
        config.secret_key = Some(key.clone().into());
        config.mail.first_retry_ms = 200;
        config.mail.max_retry_secs = 1;
        config.mail.smtp = Some(SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            security: SmtpSecurityConfig::None,
            username: None,
            password: None,
            timeout_secs: 5,
        });
    };
    let before = TestApp::with_admin_using(on_shared).await;
    let admin = before.admin_token().await;
    for email in ["r1@example.com", "r2@example.com"] {
        before.invite(&admin, email, "user").await;
    }
    wait_for_outbox(&before, &admin, "?status=queued", "two failed attempts", |items| {
        items.len() == 2 && items.iter().all(|m| m["attempts"].as_u64() >= Some(1))
    })
    .await;
    drop(before); // stops the server and its outbox worker

    let peer = SmtpPeer::start_on(port, Security::None, None);
    let after = TestApp::spawn_with(on_shared).await;
    let clock = run_clock(&after);
    peer.wait_for(2, 20).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let mut received: Vec<String> = peer.messages().iter().map(|m| m.to.clone()).collect();
    received.sort();
    assert_eq!(received, ["r1@example.com", "r2@example.com"]);
    clock.abort();
}

#[tokio::test]
async fn header_injection_in_a_recipient_name_or_address_is_refused_and_nothing_is_queued() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let cases = [
        (
            json!({"email": "ada@example.com", "name": "Ada\r\nBcc: all@example.com", "role": "user"}),
            "invalid_name",
        ),
        (
            json!({"email": "ada@example.com\r\nBcc: all@example.com", "name": "Ada", "role": "user"}),
            "invalid_email",
        ),
        (
            json!({"email": "ada@example.com", "name": "Ada\nSubject: win", "role": "user"}),
            "invalid_name",
        ),
    ];
    for (request, code) in cases {
        let response = app.post("/api/v1/users", Some(&admin), request).await;
        assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, code).await;
    }
    let renamed = app
        .http
        .patch(app.url("/api/v1/me"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Root\r\nBcc: all@example.com"}))
        .send()
        .await
        .unwrap();
    assert_error(renamed, StatusCode::UNPROCESSABLE_ENTITY, "invalid_name").await;

    assert!(outbox(&app, &admin, "").await.is_empty(), "nothing queued");
    let users = body(app.get("/api/v1/users", Some(&admin)).await).await;
    assert_eq!(users["total"], 1, "only the admin: {users}");
}
