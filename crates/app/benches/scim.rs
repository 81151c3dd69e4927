//! SCIM provisioning (issue 22), against the real server in this process:
//!
//! 1. `PROVISION` users (default 10,000) created with `POST /scim/v2/Users`
//!    by 4 concurrent clients, beside `GET /healthz` by 4 clients in the
//!    same run (the reference), with the process's memory (peak and after
//!    5 s idle);
//! 2. at `USERS` users (default 1,000,000; the rest written straight into
//!    the database), `GET /Users?filter=userName eq "…"` and
//!    `GET /Users?startIndex=100000&count=100`, p50 and p95 of one client.
//!
//! `cargo bench -p secureai-app --bench scim` (`BENCH_DB=postgres` for
//! PostgreSQL)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait, Value};
use secureai_app::Application;
use secureai_domain::{DisplayName, EmailAddress};
use serde_json::json;

const CLIENTS: usize = 4;

/// Writes users `from..to` straight into the database (as a directory
/// imported long ago), with their counts.
async fn seed(store: &secureai_store::SqlStore, from: usize, to: usize) {
    let db = store.connection();
    let backend = db.get_database_backend();
    let txn = db.begin().await.unwrap();
    let start = 1_600_000_000_000_000_i64;
    for chunk in (from..to).step_by(500) {
        let end = (chunk + 500).min(to);
        let mut values: Vec<Value> = Vec::new();
        for i in chunk..end {
            let email = EmailAddress::parse(&format!("u{i}@bulk.example")).unwrap();
            let name = DisplayName::parse(&format!("User {i}")).unwrap();
            values.extend([
                Value::from(format!("{:08x}-0000-4000-8000-{:012x}", i, i)),
                email.as_str().into(),
                email.key().into(),
                name.to_string().into(),
                name.sort_key().into(),
                "user".into(),
                "active".into(),
                "sso".into(),
                start.saturating_add(i as i64).into(),
                (start + i as i64 + 1).into(),
                secureai_store::search_text(&email, &name).into(),
            ]);
        }
        let mut n = 0;
        let rows: Vec<String> = (chunk..end)
            .map(|_| {
                let marks: Vec<String> = (0..11)
                    .map(|_| {
                        n += 1;
                        if backend == DbBackend::Postgres { format!("${n}") } else { "?".into() }
                    })
                    .collect();
                format!("({})", marks.join(","))
            })
            .collect();
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO users (id,email,email_key,name,name_key,role,status,sign_in,\
                 created_at,activated_at,search_text) VALUES {}",
                rows.join(",")
            ),
            values,
        ))
        .await
        .unwrap();
    }
    let update = if backend == DbBackend::Postgres {
        "UPDATE user_counts SET n = n + $1 WHERE role = 'user' AND status = 'active'"
    } else {
        "UPDATE user_counts SET n = n + ? WHERE role = 'user' AND status = 'active'"
    };
    txn.execute_raw(Statement::from_sql_and_values(backend, update, [((to - from) as i64).into()]))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    // A directory loaded long ago has been vacuumed (PostgreSQL's
    // autovacuum) and analysed.
    let analyze = match backend {
        DbBackend::MySql => "ANALYZE TABLE users",
        DbBackend::Postgres => "VACUUM ANALYZE users",
        _ => "ANALYZE",
    };
    db.execute_unprepared(analyze).await.unwrap();
}

async fn latencies(
    client: &reqwest::Client,
    token: &str,
    urls: impl Iterator<Item = String>,
) -> Vec<Duration> {
    let mut all = Vec::new();
    for url in urls {
        let t = Instant::now();
        let answer = client.get(&url).bearer_auth(token).send().await.unwrap();
        assert!(answer.status().is_success(), "{url}: {}", answer.status());
        answer.bytes().await.unwrap();
        all.push(t.elapsed());
    }
    all.sort();
    all
}

#[tokio::main]
async fn main() {
    let provision = common::env("PROVISION", 10_000);
    let users = common::env("USERS", 1_000_000).max(provision + 1);
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    let _database = common::database(&mut config).await;
    config.log = "warn".into();
    let app = Application::build(&config).await.unwrap();
    let base = format!("http://{}", app.address());
    let link = app.setup_link().unwrap();
    tokio::spawn(app.run_until(std::future::pending()));
    let http = reqwest::Client::new();
    let session = common::first_admin_session(&http, &base, &link).await;
    let session = session.as_str();
    let created: serde_json::Value = http
        .post(format!("{base}/api/v1/service-tokens"))
        .bearer_auth(session)
        .json(&json!({"name": "bench", "scopes": ["scim"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = Arc::new(created["secret"].as_str().unwrap().to_owned());
    println!("database: {:?}", std::env::var("BENCH_DB").unwrap_or_else(|_| "sqlite".into()));
    println!("memory before: {:.0} MiB", common::status_kib("VmRSS:") / 1024.0);

    let health = common::healthz(&base, CLIENTS).await;
    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|client_no| {
            let (client, base, token) = (http.clone(), base.clone(), token.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                for i in (client_no..provision).step_by(CLIENTS) {
                    let body = json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": format!("person{i}@provisioned.example"),
                        "name": {"givenName": "Person", "familyName": format!("{i}")},
                        "externalId": format!("ext-{i}"),
                        "active": true,
                    });
                    let t = Instant::now();
                    let answer = client
                        .post(format!("{base}/scim/v2/Users"))
                        .bearer_auth(token.as_str())
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(answer.status(), reqwest::StatusCode::CREATED);
                    answer.bytes().await.unwrap();
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let all = common::latencies_of(workers).await;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "GET /healthz, {CLIENTS} clients (reference): {health:.0} req/s\n\
         POST /scim/v2/Users, {CLIENTS} clients: {provision} users in {elapsed:.1} s = {:.0} users/s \
         ({:.2} % of /healthz)  p50 {:.1} ms  p95 {:.1} ms",
        provision as f64 / elapsed,
        100.0 * provision as f64 / elapsed / health,
        common::ms(common::percentile(&all, 50.0)),
        common::ms(common::percentile(&all, 95.0)),
    );
    println!(
        "memory after provisioning: {:.0} MiB (peak {:.0} MiB)",
        common::status_kib("VmRSS:") / 1024.0,
        common::status_kib("VmHWM:") / 1024.0
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!("memory after 5 s idle: {:.0} MiB", common::status_kib("VmRSS:") / 1024.0);

    let store = secureai_app::connect(&config).await.unwrap();
    let seeding = Instant::now();
    seed(&store, provision, users).await;
    println!(
        "seeded {} users straight into the database in {:.0} s",
        users - provision,
        seeding.elapsed().as_secs_f64()
    );

    let filter = |i: usize| {
        format!(
            "{base}/scim/v2/Users?filter=userName%20eq%20%22u{}%40bulk.example%22",
            (i * 7919) % users.max(1)
        )
    };
    let lookups = latencies(&http, &token, (0..500).map(|i| filter(i + provision))).await;
    let pages = latencies(
        &http,
        &token,
        (0..50).map(|i| format!("{base}/scim/v2/Users?startIndex={}&count=100", 100_000 + i)),
    )
    .await;
    let health = common::healthz(&base, CLIENTS).await;
    println!(
        "at {users} users, one client (GET /healthz, {CLIENTS} clients: {health:.0} req/s):\n\
         GET /Users?filter=userName eq \"…\"      p50 {:.2} ms  p95 {:.2} ms  (goal p95 ≤ 5 ms)\n\
         GET /Users?startIndex=100000&count=100  p50 {:.2} ms  p95 {:.2} ms  (goal p95 ≤ 50 ms)",
        common::ms(common::percentile(&lookups, 50.0)),
        common::ms(common::percentile(&lookups, 95.0)),
        common::ms(common::percentile(&pages, 50.0)),
        common::ms(common::percentile(&pages, 95.0)),
    );
    println!(
        "memory: {:.0} MiB now, peak {:.0} MiB",
        common::status_kib("VmRSS:") / 1024.0,
        common::status_kib("VmHWM:") / 1024.0
    );
}
