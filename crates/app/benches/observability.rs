//! What metrics and JSON logs cost: session-authenticated
//! `GET /api/v1/me` through the real `secureai` binary (release), once
//! with metrics counted and every request logged as JSON to a file, once
//! with metrics off and only warnings logged; rounds alternate (off, on,
//! off, on…) so that drift on the machine hits both alike. `/healthz` in
//! the same instance is the reference. Memory: the server's peak and
//! current RSS at the end of each round.
//!
//! `cargo bench -p secureai-app --bench observability`
//! (`ROUNDS`, default 2 of each; `SECONDS`, default 8; `CONNECTIONS`,
//! default 16; `BENCH_DB=postgres|mysql` for another database.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Round {
    healthz: f64,
    me: f64,
    p50: Duration,
    p99: Duration,
    peak_kib: f64,
    rss_kib: f64,
    log_bytes: u64,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A field of the server's `/proc/<pid>/status`, in KiB.
fn child_kib(child: &Child, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn round(observed: bool, connections: usize, seconds: u64) -> Round {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    let _database = common::database(&mut config).await;
    let port = free_port();
    let log_file = dir.path().join("server.log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_secureai"));
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SECUREAI_LISTEN", format!("127.0.0.1:{port}"))
        .env("SECUREAI_DATA_DIR", dir.path().join("data"))
        .env("SECUREAI_MAIL__POLL_INTERVAL_MS", "60000")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_file).unwrap());
    if let Some(url) = &config.database_url {
        command.env("SECUREAI_DATABASE_URL", url);
    }
    // `OBSERVE=metrics` or `OBSERVE=logs` turns on only one of the two.
    let observe = std::env::var("OBSERVE").unwrap_or_else(|_| "both".into());
    let metrics = observed && observe != "logs";
    let logs = observed && observe != "metrics";
    command.env("SECUREAI_METRICS_ENABLED", metrics.to_string());
    if logs {
        command.env("SECUREAI_LOG_FORMAT", "json").env("SECUREAI_LOG", "info");
    } else {
        command.env("SECUREAI_LOG", "warn");
    }
    let mut child = command.spawn().unwrap();
    // Read to the end on a thread of its own: a closed pipe would make the
    // server's next line on stdout fail.
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let link = lines
        .iter()
        .find(|l| l.contains("/setup?token="))
        .expect("the server printed its setup link");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    // Serving once /healthz answers.
    let waited = std::time::Instant::now();
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(waited.elapsed() < Duration::from_secs(30), "the server stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let session = common::first_admin_session(&http, &base, link.trim()).await;

    let (healthz, _) = common::load(format!("{base}/healthz"), None, connections, seconds).await;
    let me = format!("{base}/api/v1/me");
    let (rate, latencies) = common::load(me, Some(session), connections, seconds).await;
    if metrics {
        // The metrics are there, and count what was asked.
        let text = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(text.contains("route=\"/api/v1/me\""), "{text}");
    }
    let peak_kib = child_kib(&child, "VmHWM:");
    let rss_kib = child_kib(&child, "VmRSS:");
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    child.wait().unwrap();
    Round {
        healthz,
        me: rate,
        p50: common::percentile(&latencies, 50.0),
        p99: common::percentile(&latencies, 99.0),
        peak_kib,
        rss_kib,
        log_bytes: std::fs::metadata(&log_file).map(|m| m.len()).unwrap_or(0),
    }
}

fn print(name: &str, round: &Round) {
    println!(
        "{name:<34} /healthz {:>7.0} req/s   /me {:>7.0} req/s  p50 {:.2} ms  p99 {:.2} ms  \
         ({:.1} % of /healthz)  RSS peak {:.0} MiB, now {:.0} MiB  log {:.1} MiB",
        round.healthz,
        round.me,
        common::ms(round.p50),
        common::ms(round.p99),
        100.0 * round.me / round.healthz,
        round.peak_kib / 1024.0,
        round.rss_kib / 1024.0,
        round.log_bytes as f64 / 1_048_576.0,
    );
}

#[tokio::main]
async fn main() {
    let rounds = common::env("ROUNDS", 2);
    let connections = common::env("CONNECTIONS", 16);
    let seconds = common::env("SECONDS", 8) as u64;
    println!(
        "{connections} concurrent connections, {seconds} s per load, client and server on this \
         machine, database {}",
        std::env::var("BENCH_DB").unwrap_or_else(|_| "sqlite".into())
    );
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let quiet = round(false, connections, seconds).await;
        print("metrics off, warnings only", &quiet);
        off.push(quiet);
        let observed = round(true, connections, seconds).await;
        print("metrics on, JSON log of each request", &observed);
        on.push(observed);
    }
    let mean = |rounds: &[Round], f: fn(&Round) -> f64| {
        rounds.iter().map(f).sum::<f64>() / rounds.len() as f64
    };
    let (me_off, me_on) = (mean(&off, |r| r.me), mean(&on, |r| r.me));
    let (health_off, health_on) = (mean(&off, |r| r.healthz), mean(&on, |r| r.healthz));
    println!(
        "/me with metrics and JSON logs: {:.1} % of /me without (means of {rounds} rounds: \
         {me_on:.0} vs {me_off:.0} req/s); /healthz {:.1} % ({health_on:.0} vs {health_off:.0})",
        100.0 * me_on / me_off,
        100.0 * health_on / health_off,
    );
}
