//! The store's behaviour suite: the domain's use cases and the ports'
//! promises (`# Errors` in each port), against a real database — every test
//! on SQLite, PostgreSQL and MariaDB/MySQL (see `support.rs` for how the
//! servers are chosen). Test names say the database: `sqlite::…`,
//! `postgres::…`, `mysql::…`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Runs each listed `async fn(TestDb)` on every database.
macro_rules! on_every_database {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(crate::support::TestDb::sqlite().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    match crate::support::TestDb::open(crate::support::Backend::Postgres).await {
                        Some(db) => super::$name(db).await,
                        None => eprintln!("not run on PostgreSQL: SECUREAI_TEST_POSTGRES_URL is not set"),
                    }
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    match crate::support::TestDb::open(crate::support::Backend::MySql).await {
                        Some(db) => super::$name(db).await,
                        None => eprintln!("not run on MariaDB/MySQL: SECUREAI_TEST_MYSQL_URL is not set"),
                    }
                }
            )*
        }
    };
}

mod checkpoint;
mod concurrency;
mod contract;
mod imports;
mod listing;
mod lookups;
mod mail;
mod sealing;
mod sso;
mod support;
mod upgrade;
mod usage;
mod use_cases;
