//! Second factors for password sign-ins (issue 23): authenticator-app codes
//! (TOTP, RFC 6238), single-use recovery codes, the policy, the two-step
//! sign-in and step-up; passkeys (WebAuthn) behind their protocol port
//! (`docs/design/mfa.md`).
//!
//! - A TOTP secret is 160 random bits from the [`crate::TokenGenerator`],
//!   pending until the first code confirms it; stores keep it encrypted
//!   with the operator key. Codes are SHA-1, 6 digits, 30 s, one step of
//!   skew either way, and a step is accepted once only (the store keeps
//!   the last accepted step and moves it atomically), so a code seen over
//!   a shoulder cannot be replayed, not even at another instance.
//! - Ten recovery codes of 128 random bits each come with the
//!   confirmation and with every regeneration (which voids the earlier
//!   set); they are shown once, kept as SHA-256 digests, and each works
//!   once.

pub mod check;
pub mod models;
pub mod passkey_service;
pub mod passkeys;
pub mod policy;
pub mod ports;
pub mod service;
pub(crate) mod totp;
