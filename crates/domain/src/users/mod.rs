//! Users: who they are, what role they hold, where they are in their
//! lifecycle, and the admin use cases that list and invite them.

pub(crate) mod changes;
pub mod errors;
pub mod lifecycle;
pub mod listing;
pub mod models;
pub mod ports;
pub mod service;
