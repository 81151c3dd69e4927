//! The store's behaviour suite: the domain's use cases and the ports'
//! promises (`# Errors` in each port), against a real database.
//!
//! Every test gets a fresh database with migrations applied. SQLite always
//! runs; the multi-database issue adds PostgreSQL and MariaDB to `TestDb`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod concurrency;
mod listing;
mod support;
mod use_cases;
