//! The hasher gives its memory back to the operating system once idle.
//!
//! A test binary of its own, so that the process's resident memory is this
//! test's alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use secrecy::SecretString;
use secureai_domain::{Password, PasswordHasher};
use secureai_system::{Argon2Cost, Argon2Hasher, HashingLimits};

const MIB: f64 = 1024.0 * 1024.0;

/// This process's resident memory in MiB.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024.0 / MIB
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_freed_after_idle_leave_the_process_even_after_an_earlier_one_was_freed() {
    let limits = HashingLimits {
        concurrent: 4,
        threads: 4,
        max_wait: Duration::from_secs(60),
        // Long enough that no block of the four is dropped before the last
        // of them finishes.
        keep_idle: Duration::from_secs(1),
    };
    let hasher = Argon2Hasher::new(Argon2Cost::OWASP, limits).unwrap();
    let password = Password::new(SecretString::from("correct horse battery".to_owned())).unwrap();
    let hash = hasher.hash(&password).await.unwrap();
    // The block of that hash is dropped once idle (the start's dummy hash
    // freed its own at once). Until the fix, freeing one raised glibc's mmap
    // threshold, so the next blocks came from thread arenas that never gave
    // memory back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = rss_mib();

    let presented = SecretString::from("correct horse battery".to_owned());
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (hasher, presented, hash) = (hasher.clone(), presented.clone(), hash.clone());
        running.spawn(async move { hasher.verify(&presented, Some(hash)).await.unwrap() });
    }
    while let Some(verified) = running.join_next().await {
        assert!(verified.unwrap());
    }
    let busy = rss_mib();
    // Four verifications at once, on up to four threads, each holding a
    // block of 19 MiB now (a busy machine may let one thread take two).
    assert!(busy - before > 15.0, "the blocks were not resident: {before:.0} → {busy:.0} MiB");

    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = rss_mib();
    assert!(
        idle - before < 15.0,
        "idle blocks stayed resident: {before:.0} MiB before, {busy:.0} busy, {idle:.0} idle"
    );
}
