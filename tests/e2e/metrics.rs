//! `/metrics` (issue 25): the real binary with `metrics_listen` set, a
//! scripted session (sign-ins, a failed one, an invitation, an import),
//! then a scrape read with a Prometheus text-format parser: the counters
//! moved by exactly what happened, the gauges tell what is stored, and
//! the public listener no longer serves the metrics.

use std::process::Stdio;

use reqwest::StatusCode;
use serde_json::json;

use secureai_tests::body;
use secureai_tests::metrics::{scrape, value};

use crate::{ADMIN, first_admin, free_port, serve};

#[tokio::test]
async fn a_scrape_after_a_scripted_session_counts_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Another way to a free port than free_port's, so the two differ.
    let metrics_port = secureai_tests::smtp::free_port();
    let listen = ("SECUREAI_METRICS_LISTEN", format!("127.0.0.1:{metrics_port}"));
    let (mut child, lines) = serve(dir.path(), port, &[listen], Stdio::null());
    let base = format!("http://127.0.0.1:{port}");
    let metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
    let http = reqwest::Client::new();
    first_admin(&http, &base, &lines).await;
    let (email, password) = ADMIN;

    // The public listener does not serve them when they have their own.
    let public = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND);
    let before = scrape(&http, &metrics).await;

    // The scripted session: three sign-ins, a wrong password, an
    // invitation, an import of two users.
    let login = format!("{base}/api/v1/auth/login");
    let mut session = String::new();
    for _ in 0..3 {
        let answer = http.post(&login).json(&json!({"email": email, "password": password}));
        let answer = answer.send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        session = body(answer).await["token"].as_str().unwrap().to_owned();
    }
    let wrong = json!({"email": email, "password": "not the passphrase at all"});
    let refused = http.post(&login).json(&wrong).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let invite = json!({"email": "new@example.com", "name": "New Person", "role": "user"});
    let invited = http.post(format!("{base}/api/v1/users")).bearer_auth(&session).json(&invite);
    assert_eq!(invited.send().await.unwrap().status(), StatusCode::CREATED);
    let csv = "name,email,role\nAda,ada@example.com,user\nGrace,grace@example.com,admin\n";
    let imported = http
        .post(format!("{base}/api/v1/users/import?mode=commit&file_name=staff.csv"))
        .bearer_auth(&session)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), StatusCode::OK, "{}", imported.text().await.unwrap());

    let after = scrape(&http, &metrics).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    let sign_ins = "secureai_sign_ins_total";
    assert_eq!(moved(sign_ins, &[("method", "password"), ("outcome", "success")]), 3.0);
    assert_eq!(moved(sign_ins, &[("method", "password"), ("outcome", "failure")]), 1.0);
    assert_eq!(moved(sign_ins, &[("method", "password"), ("outcome", "throttled")]), 0.0);
    // Each attempt verified one password.
    assert_eq!(moved("secureai_password_hash_seconds_count", &[]), 4.0);
    let requests = "http_server_request_duration_seconds_count";
    let route = |method, route, status| [("method", method), ("route", route), ("status", status)];
    assert_eq!(moved(requests, &route("POST", "/api/v1/auth/login", "200")), 3.0);
    assert_eq!(moved(requests, &route("POST", "/api/v1/auth/login", "401")), 1.0);
    assert_eq!(moved(requests, &route("POST", "/api/v1/users", "201")), 1.0);
    assert_eq!(moved(requests, &route("POST", "/api/v1/users/import", "200")), 1.0);
    // Gauges: what is stored now.
    assert_eq!(value(&after, "secureai_users", &[("status", "active")]), 1.0);
    assert_eq!(value(&after, "secureai_users", &[("status", "invited")]), 3.0);
    assert_eq!(value(&after, "secureai_users", &[("status", "deactivated")]), 0.0);
    assert_eq!(value(&after, "secureai_seats_used", &[]), 4.0);
    assert_eq!(value(&after, "secureai_seats_limit", &[]), -1.0, "unlimited");
    let pool = value(&after, "secureai_database_connections", &[("state", "in_use")])
        + value(&after, "secureai_database_connections", &[("state", "idle")]);
    assert!(pool >= 1.0, "the pool has connections");
    // No label carries an email, a user id or a raw path.
    for sample in &after.samples {
        for (key, label) in sample.labels.iter() {
            assert!(!label.contains('@'), "{key}={label}");
            assert!(uuid::Uuid::parse_str(label).is_err(), "{key}={label}");
        }
    }
    crate::stop(&mut child);
}
