//! Session-authenticated `GET /api/v1/me` against the unauthenticated
//! `GET /healthz`, same server, same run, same client load, in alternating
//! rounds of 2 s.
//!
//! `cargo bench -p secureai-app --bench http`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use secureai_app::Application;

/// The `secureai` binary's allocator (`src/main.rs`), as this bench runs
/// the service in its own process. The other in-process benches keep the
/// system allocator their recorded figures were measured with.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const SECONDS: u64 = 8;
const CONNECTIONS: usize = 16;
const ROUNDS: u64 = 4;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    let _database = common::database(&mut config).await;
    config.log = "warn".into();
    if let Some(n) = std::env::var("DB_CONNECTIONS").ok().and_then(|n| n.parse().ok()) {
        config.database_max_connections = n;
    }
    let app = Application::build(&config).await.unwrap();
    let base = format!("http://{}", app.address());
    let link = app.setup_link().unwrap();
    tokio::spawn(app.run_until(std::future::pending()));
    let http = reqwest::Client::new();
    let session = common::first_admin_session(&http, &base, &link).await;

    // Alternated in rounds: the machine's own speed drifts from minute to
    // minute, and one phase after the other let that drift into the ratio.
    let (mut health_rate, mut health, mut me_rate, mut me) = (0.0, Vec::new(), 0.0, Vec::new());
    for _ in 0..ROUNDS {
        let (rate, latencies) =
            common::load(format!("{base}/healthz"), None, CONNECTIONS, SECONDS / ROUNDS).await;
        health_rate += rate / ROUNDS as f64;
        health.extend(latencies);
        let (rate, latencies) = common::load(
            format!("{base}/api/v1/me"),
            Some(session.clone()),
            CONNECTIONS,
            SECONDS / ROUNDS,
        )
        .await;
        me_rate += rate / ROUNDS as f64;
        me.extend(latencies);
    }
    health.sort();
    me.sort();

    println!(
        "{CONNECTIONS} concurrent connections, {SECONDS} s each in {ROUNDS} alternating rounds, \
         client and server on this machine"
    );
    for (name, rate, lat) in
        [("GET /healthz", health_rate, &health), ("GET /api/v1/me", me_rate, &me)]
    {
        println!(
            "{name:<16} {rate:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms",
            common::ms(common::percentile(lat, 50.0)),
            common::ms(common::percentile(lat, 99.0))
        );
    }
    println!("/me / healthz: {:.1} %", 100.0 * me_rate / health_rate);
}
