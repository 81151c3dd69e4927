//! The SecureAI user-management domain: users, roles, invitations, sessions,
//! first-admin setup, the mail outbox and the audit trail — as pure rules
//! behind ports.
//!
//! This crate does no I/O of its own. Everything it needs from the outside
//! world (storage, time, randomness, password hashing, mail delivery) comes in
//! through the *driven ports* declared in each subdomain's `ports.rs`. The
//! *driving* side is [`UserManagement`]: the HTTP front end, the command line
//! and embedding services call its methods.
//!
//! Other services can test their own rules against the ports: the `mocks`
//! feature adds a `mockall` mock for every port, and [`testing`] offers
//! in-memory adapters and a fake clock.
//!
//! Invariants (see `docs/ARCHITECTURE.md`):
//! - no sea-orm, poem, lettre or tokio runtime in this crate;
//! - time comes from [`Clock`], randomness from [`TokenGenerator`];
//! - secrets are [`secrecy`] types and never implement `Display`.

pub mod analytics;
pub mod audit;
pub mod clock;
pub mod errors;
pub mod imports;
pub mod invitations;
pub mod mail;
pub mod resets;
pub mod secrets;
pub mod service;
pub mod sessions;
pub mod settings;
pub mod setup;
pub mod sso;
pub mod testing;
pub mod users;

pub use audit::models::{Actor, AuditAction, AuditEvent, Change, RequestContext};
pub use clock::Clock;
pub use errors::StoreError;
pub use secrets::{Password, PasswordHash, PasswordHasher, PlainToken, TokenGenerator, TokenHash};
pub use service::{Policy, Ports, UserManagement};
pub use users::models::{
    Department, DisplayName, EmailAddress, Permission, Role, SignInMethod, User, UserId, UserState,
    UserStatus,
};
