//! Password sign-in throughput against raw argon2id verification at the
//! same cost, same run, same concurrency (one task per core).
//!
//! `cargo bench -p secureai-app --bench sign_in`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use secrecy::SecretString;
use secureai_domain::RequestContext;

const SECONDS: u64 = 10;

async fn run<F, Fut>(tasks: usize, work: F) -> (u64, Duration)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let work = Arc::new(work);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(SECONDS);
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let work = work.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    work().await;
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for handle in handles {
        total += handle.await.unwrap();
    }
    (total, started.elapsed())
}

#[tokio::main]
async fn main() {
    let tasks = std::thread::available_parallelism().map_or(2, |n| n.get());
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(dir.path());
    let wiring = secureai_app::wire(&config).await.unwrap();
    common::admin(&wiring).await;

    // Raw argon2id at the configured (OWASP) cost, on the blocking pool as
    // the service does it.
    let params = argon2::Params::new(19_456, 2, 1, None).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let phc = Arc::new(argon.hash_password(common::ADMIN_PASSWORD.as_bytes()).unwrap().to_string());
    let (raw, raw_elapsed) = run(tasks, move || {
        let phc = phc.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let params = argon2::Params::new(19_456, 2, 1, None).unwrap();
                let argon = argon2::Argon2::new(
                    argon2::Algorithm::Argon2id,
                    argon2::Version::V0x13,
                    params,
                );
                assert!(
                    argon.verify_password(common::ADMIN_PASSWORD.as_bytes(), phc.as_str()).is_ok()
                );
            })
            .await
            .unwrap();
        }
    })
    .await;

    let service = wiring.service.clone();
    let (signed, sign_elapsed) = run(tasks, move || {
        let service = service.clone();
        async move {
            let password = SecretString::from(common::ADMIN_PASSWORD.to_owned());
            service
                .sessions
                .sign_in(common::ADMIN_EMAIL, &password, &RequestContext::default())
                .await
                .unwrap();
        }
    })
    .await;

    let raw_rate = raw as f64 / raw_elapsed.as_secs_f64();
    let sign_rate = signed as f64 / sign_elapsed.as_secs_f64();
    println!("tasks: {tasks}, {SECONDS} s each");
    println!("raw argon2id verify (m=19456 KiB, t=2, p=1): {raw_rate:.1} /s");
    println!("password sign-in (SQLite, session + audit written): {sign_rate:.1} /s");
    println!("sign-in / raw: {:.1} %", 100.0 * sign_rate / raw_rate);
}
