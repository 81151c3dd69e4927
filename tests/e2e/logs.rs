//! JSON logs (issue 25): with `SECUREAI_LOG_FORMAT=json` every line on
//! stderr is a JSON object; every request has its line with its request id
//! (the client's `X-Request-Id` when valid, else a new one, returned in
//! the answer), status, duration and the caller's user id; no token or
//! password the session used appears anywhere.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use secureai_tests::body;

use crate::{free_port, secureai};

#[tokio::test]
async fn json_logs_have_a_line_per_request_with_its_id_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = secureai(dir.path())
        .arg("serve")
        .env("SECUREAI_LISTEN", format!("127.0.0.1:{port}"))
        .env("SECUREAI_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (out_tx, out) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = out_tx.send(line);
        }
    });
    let (err_tx, err) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let collector = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = err_tx.send(line);
        }
    });
    let link = loop {
        let line = out.recv_timeout(Duration::from_secs(60)).expect("a setup link");
        if line.contains("/setup?token=") {
            break line.trim().to_owned();
        }
    };
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let setup_token = link.split("token=").nth(1).unwrap().to_owned();
    let password = "a long admin passphrase";
    let created = http
        .post(format!("{base}/setup"))
        .form(&[
            ("token", setup_token.as_str()),
            ("email", "it@example.com"),
            ("name", "IT Admin"),
            ("password", password),
            ("password_confirm", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::OK);
    let mut requests = 1;

    let health = http.get(format!("{base}/healthz")).header("x-request-id", "probe-42").send();
    let health = health.await.unwrap();
    assert_eq!(health.headers()["x-request-id"], "probe-42");
    let forged = http.get(format!("{base}/healthz")).header("x-request-id", "a b\"}").send();
    let forged = forged.await.unwrap();
    let generated = forged.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 32, "a new id instead: {generated}");
    let nowhere = http.get(format!("{base}/no/such/page")).send().await.unwrap();
    assert_eq!(nowhere.status(), StatusCode::NOT_FOUND);
    requests += 1;
    let wrong = json!({"email": "it@example.com", "password": "not the passphrase at all"});
    let refused = http.post(format!("{base}/api/v1/auth/login")).json(&wrong).send().await;
    assert_eq!(refused.unwrap().status(), StatusCode::UNAUTHORIZED);
    let right = json!({"email": "it@example.com", "password": password});
    let login = http.post(format!("{base}/api/v1/auth/login")).json(&right).send().await;
    let session = body(login.unwrap()).await["token"].as_str().unwrap().to_owned();
    // (Admins must set up a second factor first: this session may read that.)
    let me =
        http.get(format!("{base}/api/v1/me/mfa?token=should-not-appear")).bearer_auth(&session);
    assert_eq!(me.send().await.unwrap().status(), StatusCode::OK);
    requests += 5;

    crate::stop(&mut child);
    collector.join().unwrap();
    let lines: Vec<String> = err.try_iter().collect();
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let logged: Vec<&Value> = parsed.iter().filter(|l| l["message"] == "request").collect();
    assert_eq!(logged.len(), requests, "{lines:#?}");
    for line in &logged {
        assert!(line["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{line}");
        assert!(line["status"].as_u64().is_some() && line["micros"].as_u64().is_some(), "{line}");
        assert!(!line["path"].as_str().unwrap().contains('?'), "never the query: {line}");
    }
    assert!(logged.iter().any(|l| l["request_id"] == "probe-42"));
    assert!(logged.iter().any(|l| l["request_id"] == generated.as_str()));
    let me = logged.iter().find(|l| l["path"] == "/api/v1/me/mfa").unwrap();
    assert_eq!(me["status"], 200);
    assert_eq!(me["actor"].as_str().unwrap().len(), 36, "the caller's user id: {me}");
    assert_eq!(me["route"], "/api/v1/me/mfa", "the route's template");
    assert_eq!(me["audit_events"], "", "a read makes no audit event");
    // A sign-in names the audit event it wrote (sign_in.failed,
    // sign_in.succeeded): the log line leads to the audit log's entry.
    let logins: Vec<_> = logged.iter().filter(|l| l["path"] == "/api/v1/auth/login").collect();
    assert_eq!(logins.len(), 2);
    for login in logins {
        assert_eq!(login["route"], "/api/v1/auth/login");
        let ids = login["audit_events"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(ids).is_ok(), "one audit event id: {login}");
    }
    let health = logged.iter().find(|l| l["path"] == "/healthz").unwrap();
    assert_eq!(health["route"], "/healthz");
    let nowhere = logged.iter().find(|l| l["path"] == "/no/such/page").unwrap();
    assert_eq!(
        (nowhere["route"].as_str(), nowhere["status"].as_u64()),
        (Some("unmatched"), Some(404))
    );
    let all = lines.join("\n");
    for secret in [
        setup_token.as_str(),
        session.as_str(),
        password,
        "not the passphrase",
        "should-not-appear",
    ] {
        assert!(!all.contains(secret), "{secret} appears in the logs");
    }
}
