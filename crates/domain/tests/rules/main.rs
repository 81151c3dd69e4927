//! The domain's rules exercised the way an embedding service would: through
//! `UserManagement`, against the in-memory adapters with a fake clock
//! (`TestKit`), and against `mockall` mocks of single ports to force the
//! failures real adapters rarely produce. The mock tests need the `mocks`
//! feature (`cargo test -p secureai-domain --features mocks`; the
//! workspace test script enables it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kit;
#[cfg(feature = "mocks")]
mod mocks;
mod rules;
