//! The audit trail: who did what, to whom, when, from where, before → after.
//!
//! Events are written by the store in the same transaction as the change they
//! record (rule 13): every write port takes the [`models::AuditEvent`] along
//! with the change. Secrets never go into an event.

pub mod models;
pub mod ports;
pub mod service;
