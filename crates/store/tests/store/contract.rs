//! The storage contracts (`secureai_domain::testing::contract`, the same
//! suite the in-memory store runs in the domain's tests) on the SQL store:
//! each contract on a fresh database, on SQLite, PostgreSQL and MariaDB.

use std::sync::Arc;

use secureai_domain::testing::contract;
use secureai_domain::testing::{FakeClock, FakeHasher, RecordingTransport, SequentialTokens};

use crate::support::{Backend, TestDb};

/// Every contract on `backend`, each on its own fresh database; `false`
/// when that server is not configured.
async fn keeps_every_contract(backend: Backend) -> bool {
    let contracts = contract::all();
    assert!(!contracts.is_empty());
    for (name, run) in contracts {
        let Some(db) = TestDb::open(backend).await else { return false };
        println!("contract {name} on {backend:?}");
        let ports = Arc::new(db.store.clone()).ports(
            Arc::new(FakeClock::new()),
            Arc::new(SequentialTokens::default()),
            Arc::new(FakeHasher),
            Arc::new(RecordingTransport::default()),
        );
        run(ports).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_keeps_every_storage_contract() {
    assert!(keeps_every_contract(Backend::Sqlite).await, "SQLite is always available");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_keeps_every_storage_contract() {
    if !keeps_every_contract(Backend::Postgres).await {
        eprintln!("not run on PostgreSQL: SECUREAI_TEST_POSTGRES_URL is not set");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_keeps_every_storage_contract() {
    if !keeps_every_contract(Backend::MySql).await {
        eprintln!("not run on MariaDB/MySQL: SECUREAI_TEST_MYSQL_URL is not set");
    }
}
