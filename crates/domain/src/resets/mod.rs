//! Password resets started by an admin (rule 10): a single-use 72-hour link
//! by email; the current password keeps working until the reset is
//! completed, which also ends every session of the user.
//!
//! A reset link has the same lifecycle as an invitation link (pending →
//! accepted/completed, expired by the clock, revoked by a newer link), so it
//! reuses [`crate::invitations::models::InvitationState`].

pub mod errors;
pub mod models;
pub mod ports;
pub mod service;
