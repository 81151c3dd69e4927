//! The `secureai` application: reads configuration, wires the adapters to
//! the domain, migrates the database, runs the HTTP server and the outbox
//! worker. This is the only crate that names concrete adapters.

pub mod backup;
mod commands;
pub mod config;
pub mod secret_key;
mod server;
pub mod traces;
mod wiring;
mod worker;

pub use commands::{ImportOutcome, erase_user, import_users, invite_admin, reset_mfa};
pub use config::Config;
pub use server::Application;
pub use wiring::{
    Wiring, configured_email, configured_sso, connect, connect_with_key, mailer, policy,
    public_url, wire, wire_with_clock,
};
