//! Session-authenticated `GET /api/v1/me` against the unauthenticated
//! `GET /healthz`, same server, same run, same client load, in alternating
//! rounds of 2 s, at 16, 32 and 64 concurrent connections.
//!
//! `cargo bench -p secureai-app --bench http` (`CONNECTIONS=16,128` for
//! other levels; `BENCH_DB=postgres|mysql` for another database).
//!
//! `/healthz` uses all of the CPU from 16 connections on; `/me` waits on
//! the database for part of each request, so at 16 connections some CPU
//! is idle and its rate is bound by its latency, not by its cost. Each
//! level is printed, and the last line compares the two at capacity: the
//! most requests each answered at any level with a p99 within 5 ms.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use secureai_app::Application;

/// The `secureai` binary's allocator (`src/main.rs`), as this bench runs
/// the service in its own process. The other in-process benches keep the
/// system allocator their recorded figures were measured with.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const SECONDS: u64 = 8;
const ROUNDS: u64 = 4;
/// Client connections at each level, unless `CONNECTIONS` says otherwise.
const LEVELS: &str = "16,32,64";
/// The p99 within which a level counts towards capacity (issue 19).
const P99_BOUND: Duration = Duration::from_millis(5);

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
    let levels: Vec<usize> = std::env::var("CONNECTIONS")
        .unwrap_or_else(|_| LEVELS.to_owned())
        .split(',')
        .map(|n| n.trim().parse().expect("CONNECTIONS: numbers separated by commas"))
        .collect();

    println!(
        "{SECONDS} s per endpoint and level in {ROUNDS} alternating rounds, client and server \
         on this machine"
    );
    let (mut most_health, mut most_me) = (0.0_f64, 0.0_f64);
    for connections in levels {
        // Alternated in rounds: the machine's own speed drifts from minute
        // to minute, and one phase after the other let that drift into
        // the ratio.
        let (mut health_rate, mut health, mut me_rate, mut me) = (0.0, Vec::new(), 0.0, Vec::new());
        for _ in 0..ROUNDS {
            let health_url = format!("{base}/healthz");
            let (rate, latencies) =
                common::load(health_url, None, connections, SECONDS / ROUNDS).await;
            health_rate += rate / ROUNDS as f64;
            health.extend(latencies);
            let me_url = format!("{base}/api/v1/me");
            let (rate, latencies) =
                common::load(me_url, Some(session.clone()), connections, SECONDS / ROUNDS).await;
            me_rate += rate / ROUNDS as f64;
            me.extend(latencies);
        }
        health.sort();
        me.sort();
        println!("{connections} concurrent connections:");
        for (name, rate, lat) in
            [("GET /healthz", health_rate, &health), ("GET /api/v1/me", me_rate, &me)]
        {
            let p99 = common::percentile(lat, 99.0);
            println!(
                "  {name:<16} {rate:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms",
                common::ms(common::percentile(lat, 50.0)),
                common::ms(p99)
            );
        }
        println!("  /me / healthz: {:.1} %", 100.0 * me_rate / health_rate);
        if common::percentile(&health, 99.0) <= P99_BOUND {
            most_health = most_health.max(health_rate);
        }
        if common::percentile(&me, 99.0) <= P99_BOUND {
            most_me = most_me.max(me_rate);
        }
    }
    if most_health > 0.0 && most_me > 0.0 {
        println!(
            "at capacity (the most answered at a level with p99 <= 5 ms): /healthz \
             {most_health:.0} req/s, /me {most_me:.0} req/s, /me / healthz: {:.1} %",
            100.0 * most_me / most_health
        );
    } else {
        println!("at capacity: no level kept both endpoints' p99 within 5 ms");
    }
}
