//! How fast a session token resolves to its user through the domain and the
//! SQLite store alone (no HTTP): the database part of every authenticated
//! request.
//!
//! `cargo bench -p secureai-app --bench authenticate`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use secrecy::SecretString;
use secureai_domain::RequestContext;

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let wiring = secureai_app::wire(&common::config(dir.path())).await.unwrap();
    common::admin(&wiring).await;
    let password = SecretString::from(common::ADMIN_PASSWORD.to_owned());
    let signed_in = wiring
        .service
        .sessions
        .sign_in(common::ADMIN_EMAIL, &password, &RequestContext::default())
        .await
        .unwrap();
    // The floor: the cheapest possible round trip through the same pool.
    {
        use sea_orm::ConnectionTrait;
        let db = wiring.store.connection();
        let started = Instant::now();
        let mut n = 0u32;
        while started.elapsed() < Duration::from_secs(3) {
            db.execute_unprepared("SELECT 1").await.unwrap();
            n += 1;
        }
        let rate = f64::from(n) / started.elapsed().as_secs_f64();
        println!(
            "floor: `SELECT 1` through the pool, 1 task: {rate:.0} /s ({:.1} µs each)",
            1e6 / rate
        );
    }
    for tasks in [1, 2, 8] {
        let deadline = Instant::now() + Duration::from_secs(5);
        let started = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let service = wiring.service.clone();
                let token = signed_in.token.clone();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        service.sessions.authenticate(&token).await.unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for h in handles {
            total += h.await.unwrap();
        }
        let rate = total as f64 / started.elapsed().as_secs_f64();
        println!(
            "{tasks} task(s): {rate:.0} authentications/s ({:.1} µs each)",
            1e6 / rate * tasks as f64
        );
    }
}
