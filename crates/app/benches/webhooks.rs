//! Security events out (issue 24), against the real server in this
//! process and a receiver on 127.0.0.1 that checks every signature:
//!
//! 1. latency: `LATENCY` users (default 100) deactivated one by one with
//!    `PATCH /api/v1/users/{id}`, from the request to the signed
//!    `user.deactivated` arriving, with the default worker interval
//!    (250 ms), p50 / p95 / max;
//! 2. throughput: an import of `EVENTS` users (default 1,000) with 4
//!    endpoints subscribed to `user.invited`: 4 × `EVENTS` deliveries, from
//!    the import's commit to the last one received, deliveries per second;
//!
//! beside `GET /healthz` by 4 clients in the same run (the reference), with
//! the process's memory (peak and after 5 s idle).
//!
//! `cargo bench -p secureai-app --bench webhooks` (`BENCH_DB=postgres` or
//! `mysql` for those databases)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{EndpointExt, Request, Route, Server, handler, post};
use secureai_app::Application;
use secureai_domain::RequestContext;
use secureai_domain::imports::models::ImportMode;
use secureai_domain::imports::rows::RawRow;
use secureai_domain::imports::service::ImportRequest;
use secureai_domain::secrets::PlainToken;
use secureai_domain::webhooks::signature::{WebhookSecret, sign};
use serde_json::{Value, json};

const CLIENTS: usize = 4;

/// What the receiver saw: per path, arrival of each (type, user) and the
/// number of requests; signatures checked against the secrets it knows.
#[derive(Default)]
struct Seen {
    secrets: HashMap<String, WebhookSecret>,
    arrivals: HashMap<(String, String), Instant>,
    count: usize,
    bad: usize,
}

#[handler]
fn receive(req: &Request, body: String, seen: poem::web::Data<&Arc<Mutex<Seen>>>) -> &'static str {
    let header = |name: &str| {
        req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    };
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
    let path = req.uri().path().to_owned();
    let mut seen = seen.lock().unwrap();
    let signed = seen.secrets.get(&path).is_some_and(|secret| {
        let expected = sign(secret, &id, timestamp.parse().unwrap_or(0), body.as_bytes());
        header("webhook-signature").split(' ').any(|s| s == expected)
    });
    if !signed {
        seen.bad += 1;
    }
    let event: Value = serde_json::from_str(&body).unwrap();
    let key = (path, event["data"]["user_id"].as_str().unwrap_or_default().to_owned());
    seen.arrivals.entry(key).or_insert_with(Instant::now);
    seen.count += 1;
    ""
}

async fn endpoint(
    http: &reqwest::Client,
    base: &str,
    session: &str,
    url: &str,
    event: &str,
) -> WebhookSecret {
    let made = http
        .post(format!("{base}/api/v1/webhooks"))
        .bearer_auth(session)
        .json(&json!({"url": url, "events": [event]}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.unwrap();
    WebhookSecret::parse(made["secret"].as_str().unwrap()).unwrap()
}

#[tokio::main]
async fn main() {
    let latency_users = common::env("LATENCY", 100);
    let events = common::env("EVENTS", 1000);
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    config.webhooks.allow_insecure_loopback = true;
    let _database = common::database(&mut config).await;
    let app = Application::build(&config).await.unwrap();
    let base = format!("http://{}", app.address());
    let link = app.setup_link().unwrap();
    let service = app.service();
    tokio::spawn(app.run_until(std::future::pending()));
    let http = reqwest::Client::new();
    let session = common::first_admin_session(&http, &base, &link).await;
    let admin = service.sessions.authenticate(&PlainToken::presented(session.clone())).await;
    let admin = admin.unwrap().admin().unwrap();

    let seen = Arc::new(Mutex::new(Seen::default()));
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
    let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
    let receiver = Route::new().at("/*path", post(receive)).data(seen.clone());
    tokio::spawn(Server::new_with_acceptor(acceptor).run(receiver));
    let hook = |n: usize| format!("http://127.0.0.1:{port}/e{n}");

    // 1. Latency of one deactivation.
    let secret = endpoint(&http, &base, &session, &hook(0), "user.deactivated").await;
    seen.lock().unwrap().secrets.insert("/e0".to_owned(), secret);
    let mut ids = Vec::new();
    for i in 0..latency_users {
        let email = common::user_via(&service, &admin, &format!("l{i}@example.com")).await;
        ids.push(email);
    }
    let reference_before = common::healthz(&base, CLIENTS).await;
    let mut latencies = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let started = Instant::now();
        let done = http
            .patch(format!("{base}/api/v1/users/{id}"))
            .bearer_auth(&session)
            .json(&json!({"active": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 200);
        let key = ("/e0".to_owned(), id.clone());
        loop {
            if let Some(at) = seen.lock().unwrap().arrivals.get(&key) {
                latencies.push(at.duration_since(started));
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no delivery for user {i}");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        // Spread the requests over the worker's interval.
        tokio::time::sleep(Duration::from_millis(37 + (i as u64 * 53) % 200)).await;
    }
    latencies.sort();
    println!(
        "deactivation → signed webhook received ({} users, poll {} ms): p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        latencies.len(),
        config.webhooks.poll_interval_ms,
        common::ms(common::percentile(&latencies, 50.0)),
        common::ms(common::percentile(&latencies, 95.0)),
        common::ms(*latencies.last().unwrap()),
    );

    // 2. Throughput: one import, four endpoints.
    for n in 1..=4 {
        let secret = endpoint(&http, &base, &session, &hook(n), "user.invited").await;
        seen.lock().unwrap().secrets.insert(format!("/e{n}"), secret);
    }
    let before = seen.lock().unwrap().count;
    let rows: Vec<RawRow> = (0..events)
        .map(|i| RawRow {
            line: i as u64 + 2,
            email: format!("t{i}@example.com"),
            name: format!("User {i}"),
            role: "user".into(),
            department: String::new(),
        })
        .collect();
    let request = ImportRequest {
        file_name: "people.csv".into(),
        mode: ImportMode::Commit,
        max_rows: None,
        keep_all_rows: false,
    };
    let imports = &service.imports;
    let ctx = RequestContext::default();
    imports.import_rows_as_admin(&admin, rows, &request, &ctx).await.unwrap();
    let started = Instant::now();
    let expected = before + 4 * events;
    while seen.lock().unwrap().count < expected {
        assert!(started.elapsed() < Duration::from_secs(120), "deliveries stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    let peak = common::status_kib("VmHWM:") / 1024.0;
    let reference_after = common::healthz(&base, CLIENTS).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = common::status_kib("VmRSS:") / 1024.0;
    let bad = seen.lock().unwrap().bad;
    assert_eq!(bad, 0, "every signature verifies");
    println!(
        "{} events × 4 endpoints: {} deliveries in {:.2} s = {:.0} deliveries/s",
        events,
        4 * events,
        took.as_secs_f64(),
        (4 * events) as f64 / took.as_secs_f64()
    );
    println!(
        "reference GET /healthz, 4 clients: {reference_before:.0}/s before, {reference_after:.0}/s after"
    );
    println!("memory: peak {peak:.0} MB, after 5 s idle {idle:.0} MB; every signature verified");
}
