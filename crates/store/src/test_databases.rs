//! Throw-away databases for test suites (this crate's and the HTTP suite):
//! SQLite always; PostgreSQL and MariaDB/MySQL when
//! `SECUREAI_TEST_POSTGRES_URL` / `SECUREAI_TEST_MYSQL_URL` name a server.
//! Each [`TestDatabase`] is created empty and dropped when it goes out of
//! scope.

use sea_orm::{ConnectionTrait, Database};

/// Which database server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file in a temporary folder.
    Sqlite,
    /// The PostgreSQL server at `SECUREAI_TEST_POSTGRES_URL`.
    Postgres,
    /// The MariaDB/MySQL server at `SECUREAI_TEST_MYSQL_URL`.
    MySql,
}

impl Backend {
    /// Parses `sqlite`, `postgres` or `mysql`/`mariadb`.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "sqlite" => Some(Self::Sqlite),
            "postgres" | "postgresql" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::MySql),
            _ => None,
        }
    }

    fn admin_url(self) -> Option<String> {
        let var = match self {
            Self::Sqlite => return None,
            Self::Postgres => "SECUREAI_TEST_POSTGRES_URL",
            Self::MySql => "SECUREAI_TEST_MYSQL_URL",
        };
        std::env::var(var).ok().filter(|url| !url.is_empty())
    }
}

/// An empty database, dropped on drop.
#[derive(Debug)]
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    server: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

/// Why a test database could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TestDatabaseError {
    /// The server's URL variable is not set.
    #[error("{0:?} is not configured (set its SECUREAI_TEST_*_URL)")]
    NotConfigured(Backend),
    /// The server did not answer or refused.
    #[error("{backend:?} at {url} is unreachable or refused: {message}")]
    Unreachable {
        /// Which.
        backend: Backend,
        /// Where.
        url: String,
        /// Why.
        message: String,
    },
}

impl TestDatabase {
    /// Creates an empty database on `backend`.
    ///
    /// # Errors
    /// [`TestDatabaseError`] if the server is not configured or unreachable.
    pub async fn create(backend: Backend) -> Result<Self, TestDatabaseError> {
        if backend == Backend::Sqlite {
            let dir = tempfile::tempdir().map_err(|e| TestDatabaseError::Unreachable {
                backend,
                url: "a temporary folder".into(),
                message: e.to_string(),
            })?;
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
            return Ok(Self { url, server: None, _dir: Some(dir) });
        }
        let admin_url = backend.admin_url().ok_or(TestDatabaseError::NotConfigured(backend))?;
        let unreachable = |e: sea_orm::DbErr| TestDatabaseError::Unreachable {
            backend,
            url: crate::redact_url(&admin_url),
            message: e.to_string(),
        };
        let name = format!("secureai_t_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(&admin_url).await.map_err(unreachable)?;
        admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.map_err(unreachable)?;
        let _ = admin.close().await;
        let mut url = url::Url::parse(&admin_url).map_err(|e| TestDatabaseError::Unreachable {
            backend,
            url: crate::redact_url(&admin_url),
            message: e.to_string(),
        })?;
        url.set_path(&format!("/{name}"));
        Ok(Self { url: url.to_string(), server: Some((admin_url, name)), _dir: None })
    }
}

impl TestDatabase {
    /// [`TestDatabase::create`], or `None` (said on stderr) when `backend`'s
    /// URL is not set; any other failure panics.
    ///
    /// # Panics
    /// If the server is configured but cannot make the database.
    #[allow(clippy::panic)] // for tests only (feature `test-databases`)
    pub async fn create_or_skip(backend: Backend) -> Option<Self> {
        match Self::create(backend).await {
            Ok(database) => Some(database),
            Err(TestDatabaseError::NotConfigured(_)) => {
                eprintln!("not run on {backend:?}: its URL is not set");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.server.take() else { return };
        // Drop may run inside a runtime that must not block: use a thread.
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
