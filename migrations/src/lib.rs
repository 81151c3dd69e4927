//! Database migrations for SecureAI, applied at start by `secureai serve`
//! and on demand by `secureai migrate`. The same migrations run on SQLite,
//! PostgreSQL and MySQL/MariaDB: only portable column types are used
//! (ids as 36-character strings, instants as BIGINT microseconds since the
//! Unix epoch, JSON as text).

pub use sea_orm_migration::prelude::*;

mod indexes;
mod m20261128_000001_initial;
mod m20261128_000002_outbox_user;
mod m20261128_000003_imports;
mod m20261128_000004_sso;
mod m20261128_000005_usage;
mod m20261128_000006_usage_running_totals;
mod m20261128_000007_user_search_text;
mod m20261203_000008_search_terms_created;
mod m20261203_000009_service_token_scopes;
mod m20261203_000010_invitations_expiry;
mod m20261203_000011_scim_identities;
mod m20261203_000012_scim_groups;
mod m20261203_000013_scim_failures;
mod m20261203_000014_users_modified_at;
mod m20261203_000015_mfa;
mod m20261203_000016_session_second_factor;
mod m20261203_000017_passkeys;
mod m20261204_000018_api_tokens;
mod m20261204_000019_webhook_endpoints;
mod m20261204_000020_webhook_deliveries;
mod m20261204_000021_department_search_text;
mod m20261204_000022_search_terms_sort_keys;

/// How many of [`Migrator::migrations`] made up each release, oldest first:
/// an upgrade test migrates a database to a release's schema, fills it as
/// that release did, then applies the rest.
pub const RELEASES: &[(&str, u32)] = &[("0.1", 1), ("0.2", 4)];

/// Every migration, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_initial::Migration),
            Box::new(m20261128_000002_outbox_user::Migration),
            Box::new(m20261128_000003_imports::Migration),
            Box::new(m20261128_000004_sso::Migration),
            Box::new(m20261128_000005_usage::Migration),
            Box::new(m20261128_000006_usage_running_totals::Migration),
            Box::new(m20261128_000007_user_search_text::Migration),
            Box::new(m20261203_000008_search_terms_created::Migration),
            Box::new(m20261203_000009_service_token_scopes::Migration),
            Box::new(m20261203_000010_invitations_expiry::Migration),
            Box::new(m20261203_000011_scim_identities::Migration),
            Box::new(m20261203_000012_scim_groups::Migration),
            Box::new(m20261203_000013_scim_failures::Migration),
            Box::new(m20261203_000014_users_modified_at::Migration),
            Box::new(m20261203_000015_mfa::Migration),
            Box::new(m20261203_000016_session_second_factor::Migration),
            Box::new(m20261203_000017_passkeys::Migration),
            Box::new(m20261204_000018_api_tokens::Migration),
            Box::new(m20261204_000019_webhook_endpoints::Migration),
            Box::new(m20261204_000020_webhook_deliveries::Migration),
            Box::new(m20261204_000021_department_search_text::Migration),
            Box::new(m20261204_000022_search_terms_sort_keys::Migration),
        ]
    }
}
