//! A fresh, migrated database per test, and the use cases wired over it.

use std::sync::Arc;

use secureai_domain::service::{Policy, Ports, UserManagement};
use secureai_domain::testing::{FakeClock, FakeHasher, SequentialTokens};
use secureai_store::{SqlStore, StoreOptions};
use tempfile::TempDir;

pub struct TestDb {
    pub store: SqlStore,
    _dir: TempDir,
}

impl TestDb {
    /// A fresh SQLite database file with migrations applied.
    pub async fn sqlite() -> Self {
        Self::sqlite_with(StoreOptions::default()).await
    }

    /// A fresh SQLite database with these options.
    pub async fn sqlite_with(options: StoreOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        let store = SqlStore::connect_and_migrate(&url, &options).await.unwrap();
        Self { store, _dir: dir }
    }

    /// The use cases over this database, a fake clock and fast fakes for
    /// hashing and tokens.
    pub fn service(&self, policy: Policy) -> (Arc<UserManagement>, Arc<FakeClock>) {
        let store = Arc::new(self.store.clone());
        let clock = Arc::new(FakeClock::new());
        let ports = Ports {
            users: store.clone(),
            invitations: store.clone(),
            sessions: store.clone(),
            setup: store.clone(),
            audit: store.clone(),
            settings: store.clone(),
            clock: clock.clone(),
            tokens: Arc::new(SequentialTokens::default()),
            passwords: Arc::new(FakeHasher),
            passwords_store: store.clone(),
            throttle: store.clone(),
        };
        (Arc::new(UserManagement::new(ports, policy)), clock)
    }
}
