//! Password sign-in throughput against raw argon2id verification at the
//! same cost, same run, same concurrency (one task per core): password
//! only, and password plus an authenticator app's code (two steps).
//!
//! `cargo bench -p secureai-app --bench sign_in`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use secrecy::SecretString;
use secureai_domain::RequestContext;
use secureai_domain::mfa::models::MfaMethod;
use secureai_domain::sessions::errors::SignInError;

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
    let admin = common::admin(&wiring).await;

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

    // Password-only sign-ins: a user without a second factor (users are
    // offered none by default).
    let service = wiring.service.clone();
    let plain = common::user(&wiring, &admin, "plain@example.com").await;
    let (signed, sign_elapsed) = run(tasks, move || {
        let service = service.clone();
        let email = plain.clone();
        async move {
            let password = SecretString::from(common::USER_PASSWORD.to_owned());
            service.sessions.sign_in(&email, &password, &RequestContext::default()).await.unwrap();
        }
    })
    .await;

    // Sign-ins with an authenticator app: the password, then the code.
    // Each user's app gives one code that has not been used yet (the next
    // step's, within the one step of skew), so each signs in once.
    let users = second_factor_users(&wiring, &admin, TOTP_USERS).await;
    let queue = Arc::new(std::sync::Mutex::new(users));
    let service = wiring.service.clone();
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (service, queue) = (service.clone(), queue.clone());
            tokio::spawn(async move {
                let ctx = RequestContext::default();
                loop {
                    let Some((email, secret)) = queue.lock().unwrap().pop() else { break };
                    let password = SecretString::from(common::USER_PASSWORD.to_owned());
                    let waiting = match service.sessions.sign_in(&email, &password, &ctx).await {
                        Err(SignInError::SecondFactorRequired(needed)) => needed,
                        other => panic!("no second step: {other:?}"),
                    };
                    let code = common::totp_code_in(&secret, 30);
                    service
                        .sessions
                        .complete_sign_in(&waiting.token, MfaMethod::Totp, &code, &ctx)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap();
    }
    let totp_elapsed = started.elapsed();

    let raw_rate = raw as f64 / raw_elapsed.as_secs_f64();
    let sign_rate = signed as f64 / sign_elapsed.as_secs_f64();
    let totp_rate = TOTP_USERS as f64 / totp_elapsed.as_secs_f64();
    println!("tasks: {tasks}, {SECONDS} s each; {TOTP_USERS} sign-ins with a code");
    println!("raw argon2id verify (m=19456 KiB, t=2, p=1): {raw_rate:.1} /s");
    println!("password sign-in (SQLite, session + audit written): {sign_rate:.1} /s");
    println!("sign-in / raw: {:.1} %", 100.0 * sign_rate / raw_rate);
    println!("password + authenticator code sign-in (two steps): {totp_rate:.1} /s");
    println!("sign-in with a code / raw: {:.1} %", 100.0 * totp_rate / raw_rate);
}

/// How many users sign in with a code (each once).
const TOTP_USERS: usize = 400;

/// `count` users with an authenticator app set up, newest last: their
/// emails and the apps' keys. Second factors are offered to users first.
async fn second_factor_users(
    wiring: &secureai_app::Wiring,
    admin: &secureai_domain::access::Admin,
    count: usize,
) -> Vec<(String, String)> {
    use secureai_domain::mfa::policy::{AdminMfa, SecurityPolicy, UserMfa};
    let ctx = RequestContext::default();
    let policy = SecurityPolicy { admin_mfa: AdminMfa::Required, user_mfa: UserMfa::Optional };
    wiring.service.mfa.set_security_policy(admin, policy, &ctx).await.unwrap();
    let mut users = Vec::with_capacity(count);
    for n in 0..count {
        let email = common::user(wiring, admin, &format!("coder{n}@example.com")).await;
        let password = SecretString::from(common::USER_PASSWORD.to_owned());
        let signed_in = wiring.service.sessions.sign_in(&email, &password, &ctx).await.unwrap();
        let principal = wiring.service.sessions.authenticate(&signed_in.token).await.unwrap();
        let setup = wiring.service.mfa.start_totp(principal.user()).await.unwrap();
        let secret = setup.secret.expose_base32().to_owned();
        let code = common::totp_code(&secret);
        wiring.service.mfa.confirm_totp(&principal, &code, &ctx).await.unwrap();
        users.push((email, secret));
    }
    users
}
