//! Database migrations for SecureAI, applied at start by `secureai serve`
//! and on demand by `secureai migrate`. The same migrations run on SQLite,
//! PostgreSQL and MySQL/MariaDB: only portable column types are used
//! (ids as 36-character strings, instants as BIGINT microseconds since the
//! Unix epoch, JSON as text).

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_initial;

/// Every migration, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m20261128_000001_initial::Migration)]
    }
}
