//! First-admin setup: on a fresh instance with no active admin, the service
//! prints a one-time link; following it creates the first admin.
//!
//! ```text
//! no admin ──start──▶ link issued (hash stored) ──used──▶ admin exists
//!                          └──restart──▶ new link, old one void
//! ```

pub mod errors;
pub mod ports;
pub mod service;
