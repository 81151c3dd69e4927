//! Outgoing mail: what the domain wants to tell people (invitations), queued
//! in the outbox with the change that causes it and delivered later by
//! [`service::OutboxDelivery`] with retries.
//!
//! ```text
//! queued ──send ok──▶ sent (body scrubbed)
//!   └──send failed──▶ queued (next attempt after back-off) … ──too many──▶ failed
//! ```

pub mod admin;
pub mod models;
pub mod ports;
pub mod service;
pub mod settings;
