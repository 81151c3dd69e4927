//! The domain's rules exercised the way an embedding service would: through
//! `UserManagement`, against the in-memory adapters with a fake clock
//! (`TestKit`), asserting exact errors and what the store holds afterwards;
//! and against `mockall` mocks of single ports to force the failures real
//! adapters rarely produce. One binary, so the suite links once.
//!
//! The mock tests need the `mocks` feature
//! (`cargo test -p secureai-domain --features mocks`; `scripts/test.sh`
//! enables it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kit;

mod accepting;
mod analytics;
mod api_tokens;
mod contract;
mod imports;
mod invitations;
mod lifecycle;
mod mail_admin;
mod mfa;
mod mfa_policy;
#[cfg(feature = "mocks")]
mod mocks;
mod outbox;
mod passkeys;
mod provisioning;
mod sessions;
mod setup;
mod sign_in;
mod sso;
mod step_up;
mod telemetry;
mod users;
mod webhooks;
