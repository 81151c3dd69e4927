//! Shared set-up for the bench binaries: a temporary SQLite instance with a
//! first admin.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use secrecy::SecretString;
use secureai_app::{Config, Wiring};
use secureai_domain::RequestContext;
use secureai_domain::access::Admin;

pub const ADMIN_EMAIL: &str = "root@example.com";
pub const ADMIN_PASSWORD: &str = "a long admin passphrase";

pub fn config(dir: &std::path::Path) -> Config {
    let mut config = Config { data_dir: dir.to_path_buf(), ..Config::default() };
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.mail.poll_interval_ms = 60_000;
    config
}

/// The first admin's capability: set up on a new database, signed in on
/// one a previous run set up.
pub async fn admin(wiring: &Wiring) -> Admin {
    let ctx = RequestContext::default();
    let pw = || SecretString::from(ADMIN_PASSWORD.to_owned());
    if let Some(token) = wiring.service.setup.prepare_setup().await.unwrap() {
        wiring.service.setup.complete_setup(&token, ADMIN_EMAIL, "Root", pw(), &ctx).await.unwrap();
    }
    let signed_in = wiring.service.sessions.sign_in(ADMIN_EMAIL, &pw(), &ctx).await.unwrap();
    wiring.service.sessions.authenticate(&signed_in.token).await.unwrap().admin().unwrap()
}

/// Percentile of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The database a bench runs on: `BENCH_DB=postgres|mysql` creates a
/// throw-away database on the server named by `SECUREAI_TEST_POSTGRES_URL`
/// / `SECUREAI_TEST_MYSQL_URL`; default SQLite in the temporary folder.
pub async fn database(config: &mut Config) -> Option<secureai_store::test_databases::TestDatabase> {
    use secureai_store::test_databases::{Backend, TestDatabase};
    let backend = Backend::parse(&std::env::var("BENCH_DB").ok()?)?;
    if backend == Backend::Sqlite {
        return None;
    }
    let database = TestDatabase::create(backend).await.unwrap();
    config.database_url = Some(database.url.clone());
    Some(database)
}
