//! A fresh, migrated database per test — SQLite always; PostgreSQL and
//! MariaDB/MySQL when `SECUREAI_TEST_POSTGRES_URL` / `SECUREAI_TEST_MYSQL_URL`
//! name a server (the test script sets both). Each such test creates its own
//! database and drops it afterwards. A database that was asked for and
//! cannot be reached fails the test; it is never skipped silently.

use std::sync::Arc;

use secureai_domain::testing::{FakeClock, FakeHasher, RecordingTransport, SequentialTokens};
use secureai_domain::{Policy, UserManagement};
use secureai_store::{SqlStore, StoreOptions};

pub use secureai_store::test_databases::Backend;
use secureai_store::test_databases::{TestDatabase, TestDatabaseError};

pub struct TestDb {
    pub store: SqlStore,
    pub url: String,
    _database: TestDatabase,
}

impl TestDb {
    /// A fresh SQLite database file with migrations applied.
    pub async fn sqlite() -> Self {
        Self::open(Backend::Sqlite).await.expect("SQLite is always available")
    }

    /// A fresh database on `backend`, or `None` if that server is not
    /// configured. An unreachable configured server fails the test.
    pub async fn open(backend: Backend) -> Option<Self> {
        let database = match TestDatabase::create(backend).await {
            Ok(database) => database,
            Err(TestDatabaseError::NotConfigured(_)) => return None,
            Err(e) => panic!("{e}"),
        };
        let url = database.url.clone();
        let store = SqlStore::connect_and_migrate(&url, &StoreOptions::default()).await.unwrap();
        Some(Self { store, url, _database: database })
    }

    /// Another store on the same database, with other options.
    pub async fn reopen(&self, options: StoreOptions) -> SqlStore {
        SqlStore::connect(&self.url, &options).await.unwrap()
    }

    /// The use cases over this database, a fake clock and fast fakes for
    /// hashing and tokens.
    pub fn service(&self, policy: Policy) -> (Arc<UserManagement>, Arc<FakeClock>) {
        service_over(&self.store, policy)
    }
}

/// The use cases over `store`.
pub fn service_over(store: &SqlStore, policy: Policy) -> (Arc<UserManagement>, Arc<FakeClock>) {
    let store = Arc::new(store.clone());
    let clock = Arc::new(FakeClock::new());
    let ports = store.ports(
        clock.clone(),
        Arc::new(SequentialTokens::default()),
        Arc::new(FakeHasher),
        Arc::new(RecordingTransport::default()),
    );
    (Arc::new(UserManagement::new(ports, policy)), clock)
}
