//! Memory and throughput of the real `secureai serve` process under 500
//! concurrent password sign-ins for 8 s, then 10 s idle; raw argon2id in
//! the same run as the reference (the mean of 4 s before and 4 s after the
//! load).
//!
//! `cargo bench -p secureai-app --bench sign_in_load`
//!
//! The server runs as its own process (the release binary cargo built for
//! this bench) on SQLite, trusting loopback as a proxy so that each client
//! task can present its own address (`X-Forwarded-For`): 500 clients behind
//! one address would mostly be throttled, which is not what is measured.
//! 100 accounts, 5 client tasks each (a sixth concurrent attempt on one
//! account would wait for the throttle). The server's resident memory is
//! read from `/proc/<pid>/status` every 50 ms.
//!
//! Environment: `CLIENTS` (default 500), `SECONDS` (8), `IDLE_SECONDS` (10),
//! `HASHING_SLOTS` (the server's `password_hashing.max_concurrent`; default
//! its own, twice the cores), `HASHING_THREADS` (`password_hashing.threads`;
//! default the cores), `SERVER_BINARY` (another build of `secureai` to
//! run, to compare two builds in one session).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

const ACCOUNTS: usize = 100;
const PASSWORD: &str = "a long benchmark passphrase";

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Resident memory of `pid` in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// CPU seconds (user + system) `pid` has used so far.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here;
    // the kernel counts in USER_HZ, 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Raw argon2id verifications per second at the OWASP cost, one thread per
/// core, each reusing nothing (what the argon2 crate does by default).
fn raw_argon2_rate(seconds: u64) -> f64 {
    let params = argon2::Params::new(19_456, 2, 1, None).unwrap();
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let phc = argon.hash_password(PASSWORD.as_bytes()).unwrap().to_string();
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let total: u64 = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..cores)
            .map(|_| {
                scope.spawn(|| {
                    let mut n = 0;
                    while Instant::now() < deadline {
                        assert!(argon.verify_password(PASSWORD.as_bytes(), phc.as_str()).is_ok());
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).sum()
    });
    total as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let clients = usize::try_from(env_number("CLIENTS", 500)).unwrap();
    let seconds = env_number("SECONDS", 8);
    let idle_seconds = env_number("IDLE_SECONDS", 10);
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let base = format!("http://127.0.0.1:{port}");

    // The accounts, invited through the library before the server starts.
    let mut config = common::config(dir.path());
    config.public_url = Some(base.clone());
    let mut tokens = Vec::new();
    for i in 0..ACCOUNTS {
        let (_, link) =
            secureai_app::invite_admin(&config, &format!("load{i}@example.com"), "Load")
                .await
                .unwrap();
        tokens.push(link.split("token=").nth(1).unwrap().to_owned());
    }

    let binary = std::env::var("SERVER_BINARY")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_secureai").to_owned());
    let child = Command::new(binary)
        .arg("serve")
        .env("SECUREAI_DATA_DIR", dir.path())
        .env("SECUREAI_LISTEN", format!("127.0.0.1:{port}"))
        .env("SECUREAI_PUBLIC_URL", &base)
        .env("SECUREAI_TRUSTED_PROXIES", "[\"127.0.0.0/8\"]")
        .env("SECUREAI_LOG", "warn")
        .env("SECUREAI_MAIL__POLL_INTERVAL_MS", "60000")
        .envs(
            std::env::var("HASHING_SLOTS")
                .ok()
                .map(|n| ("SECUREAI_PASSWORD_HASHING__MAX_CONCURRENT", n)),
        )
        .envs(
            std::env::var("HASHING_THREADS")
                .ok()
                .map(|n| ("SECUREAI_PASSWORD_HASHING__THREADS", n)),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _server = Server(child);
    let http = reqwest::Client::builder().pool_max_idle_per_host(clients).build().unwrap();
    let started = Instant::now();
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for token in &tokens {
        let accepted = http
            .post(format!("{base}/api/v1/invitations/accept"))
            .json(&serde_json::json!({"token": token, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert!(accepted.status().is_success(), "accepting: {}", accepted.status());
    }
    // The reference, measured before and after the load (the server idle
    // both times): the machine's own speed drifts from minute to minute.
    let raw_before = raw_argon2_rate(4);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fresh = rss_mib(pid);

    // The load, with the server's memory sampled meanwhile.
    let (ok, throttled, busy, other) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let load_started = Instant::now();
    let (server_cpu_before, client_cpu_before) =
        (cpu_seconds(&pid.to_string()), cpu_seconds("self"));
    let workers: Vec<_> = (0..clients)
        .map(|i| {
            let (http, base) = (http.clone(), base.clone());
            let (ok, throttled, busy, other) = (ok.clone(), throttled.clone(), busy.clone(), other.clone());
            let address = format!("10.{}.{}.{}", i / 65_536 % 256, i / 256 % 256, i % 256);
            let body = serde_json::json!({"email": format!("load{}@example.com", i % ACCOUNTS), "password": PASSWORD});
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let answer = http
                        .post(format!("{base}/api/v1/auth/login"))
                        .header("x-forwarded-for", &address)
                        .json(&body)
                        .send()
                        .await;
                    let counter = match answer.as_ref().map(reqwest::Response::status) {
                        Ok(s) if s.is_success() => &ok,
                        Ok(reqwest::StatusCode::TOO_MANY_REQUESTS) => &throttled,
                        Ok(reqwest::StatusCode::SERVICE_UNAVAILABLE) => &busy,
                        _ => &other,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    if let Ok(answer) = answer {
                        let _ = answer.bytes().await;
                    }
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut peak = fresh;
    while Instant::now() < deadline {
        peak = peak.max(rss_mib(pid));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut latencies = Vec::new();
    for worker in workers {
        latencies.extend(worker.await.unwrap());
        peak = peak.max(rss_mib(pid));
    }
    let load_elapsed = load_started.elapsed().as_secs_f64();
    let server_cpu = cpu_seconds(&pid.to_string()) - server_cpu_before;
    let client_cpu = cpu_seconds("self") - client_cpu_before;
    let end_of_load = rss_mib(pid);
    tokio::time::sleep(Duration::from_secs(idle_seconds)).await;
    let idle = rss_mib(pid);
    latencies.sort();

    let raw_after = raw_argon2_rate(4);
    let raw = f64::midpoint(raw_before, raw_after);
    let sign_in_rate = ok.load(Ordering::Relaxed) as f64 / load_elapsed;
    println!(
        "clients: {clients}, accounts: {ACCOUNTS}, {seconds} s of load, {idle_seconds} s idle"
    );
    println!(
        "answers: {} signed in, {} throttled (429), {} busy (503), {} other",
        ok.load(Ordering::Relaxed),
        throttled.load(Ordering::Relaxed),
        busy.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed)
    );
    println!(
        "latency: p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        common::ms(common::percentile(&latencies, 50.0)),
        common::ms(common::percentile(&latencies, 95.0)),
        common::ms(common::percentile(&latencies, 99.0)),
        common::ms(latencies.last().copied().unwrap_or_default()),
    );
    println!(
        "server RSS: fresh {fresh:.0} MiB, peak {peak:.0} MiB, end of load {end_of_load:.0} MiB, after {idle_seconds} s idle {idle:.0} MiB"
    );
    println!(
        "raw argon2id verify (m=19456 KiB, t=2, p=1, one thread per core): {raw:.1} /s \
         ({raw_before:.1} before the load, {raw_after:.1} after)"
    );
    println!("sign-ins over HTTP: {sign_in_rate:.1} /s");
    println!("sign-in / raw: {:.1} %", 100.0 * sign_in_rate / raw);
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get) as f64;
    let signed = ok.load(Ordering::Relaxed).max(1) as f64;
    println!(
        "CPU during the load: server {server_cpu:.1} s, load generator {client_cpu:.1} s, of {:.1} s available",
        cores * load_elapsed
    );
    println!(
        "server CPU per sign-in: {:.1} ms; raw argon2id verify: {:.1} ms of CPU ({:.1} %)",
        1000.0 * server_cpu / signed,
        1000.0 * cores / raw,
        100.0 * (server_cpu / signed) / (cores / raw)
    );
}
