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
//! feature adds a `mockall` mock for every port, and the `testing` feature
//! the `testing` module: in-memory adapters, a fake clock and a fast hasher
//! (test code, compiled only into tests that ask for it).
//!
//! Invariants (see `docs/ARCHITECTURE.md`):
//! - no sea-orm, poem, lettre or tokio runtime in this crate;
//! - time comes from [`Clock`], randomness from [`TokenGenerator`] (record
//!   ids, which are not secrets, come from [`record_id`]);
//! - secrets are [`secrecy`] types and never implement `Display`.

pub mod access;
pub mod analytics;
pub mod api_tokens;
pub mod audit;
pub mod clock;
pub mod dates;
pub mod errors;
pub mod housekeeping;
pub mod identity;
pub mod imports;
pub mod invitations;
pub mod mail;
pub mod mfa;
pub mod policy;
pub mod provisioning;
pub mod resets;
pub mod secrets;
pub mod service;
pub mod service_tokens;
pub mod sessions;
pub mod settings;
pub mod setup;
pub mod sso;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod users;
pub mod webhooks;

/// A new record identifier: a UUIDv7 (RFC 9562), 48 bits of Unix time in
/// milliseconds then 74 random bits, each sorting after every id this process
/// made before it. Identifiers are not secrets (tokens are), so the time they
/// carry tells no more than the record's own timestamp. Ordered ids make
/// inserts append to the primary-key and `(…, id)` indexes instead of landing
/// on a random page each: a bulk import of a million users is several times
/// faster with them (docs/PERFORMANCE.md).
#[must_use]
pub fn record_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

pub use audit::models::{Actor, AuditAction, AuditEvent, Change, RequestContext};
pub use clock::Clock;
pub use errors::StoreError;
pub use policy::Policy;
pub use secrets::{Password, PasswordHash, PasswordHasher, PlainToken, TokenGenerator, TokenHash};
pub use service::{Ports, UserManagement};
pub use users::models::{
    Department, DisplayName, EmailAddress, Permission, Role, SignInMethod, User, UserId, UserState,
    UserStatus,
};

#[cfg(test)]
mod tests {
    #[test]
    fn record_ids_are_version_7_and_each_sorts_after_the_one_before() {
        let ids: Vec<uuid::Uuid> = (0..10_000).map(|_| super::record_id()).collect();
        assert!(ids.iter().all(|id| id.get_version_num() == 7));
        // Within one millisecond too: the text form (how the stores keep
        // ids) orders as the values do.
        assert!(ids.windows(2).all(|w| w[0] < w[1] && w[0].to_string() < w[1].to_string()));
    }
}
