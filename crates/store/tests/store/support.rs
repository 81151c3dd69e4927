//! A fresh, migrated database per test — SQLite always; PostgreSQL and
//! MariaDB/MySQL when `SECUREAI_TEST_POSTGRES_URL` / `SECUREAI_TEST_MYSQL_URL`
//! name a server (the test script sets both). Each such test creates its own
//! database and drops it afterwards. A database that was asked for and
//! cannot be reached fails the test; it is never skipped silently.

use std::sync::Arc;

use sea_orm::{ConnectionTrait, Database};
use secureai_domain::service::{Policy, Ports, UserManagement};
use secureai_domain::testing::{FakeClock, FakeHasher, SequentialTokens};
use secureai_store::{SqlStore, StoreOptions};
use tempfile::TempDir;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    fn admin_url(self) -> Option<String> {
        let var = match self {
            Self::Sqlite => return None,
            Self::Postgres => "SECUREAI_TEST_POSTGRES_URL",
            Self::MySql => "SECUREAI_TEST_MYSQL_URL",
        };
        std::env::var(var).ok().filter(|url| !url.is_empty())
    }
}

pub struct TestDb {
    pub store: SqlStore,
    pub url: String,
    server: Option<(String, String)>,
    _dir: Option<TempDir>,
}

/// `scheme://user@host:port/old` with the database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("a database URL");
    parsed.set_path(&format!("/{name}"));
    parsed.to_string()
}

impl TestDb {
    /// A fresh SQLite database file with migrations applied.
    pub async fn sqlite() -> Self {
        Self::open(Backend::Sqlite).await.expect("SQLite is always available")
    }

    /// A fresh database on `backend`, or `None` if that server is not configured.
    pub async fn open(backend: Backend) -> Option<Self> {
        if backend == Backend::Sqlite {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
            let store =
                SqlStore::connect_and_migrate(&url, &StoreOptions::default()).await.unwrap();
            return Some(Self { store, url, server: None, _dir: Some(dir) });
        }
        let admin_url = backend.admin_url()?;
        let name = format!("secureai_t_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{backend:?} at {admin_url} is unreachable: {e}"));
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
        admin.close().await.unwrap();
        let url = with_database(&admin_url, &name);
        let store = SqlStore::connect_and_migrate(&url, &StoreOptions::default()).await.unwrap();
        Some(Self { store, url, server: Some((admin_url, name)), _dir: None })
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

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.server.take() else { return };
        // Drop runs outside any runtime we may block: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(admin) = Database::connect(&admin_url).await {
                    let force =
                        if admin_url.starts_with("postgres") { " WITH (FORCE)" } else { "" };
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name}{force}"))
                        .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}
