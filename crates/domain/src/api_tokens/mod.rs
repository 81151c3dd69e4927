//! Personal API tokens: an admin's scripts call the API as the admin, with
//! the scopes the token names — never more than the owner's role allows
//! now. Shown once, kept as SHA-256 digests, expiring, revocable, audited.

pub mod errors;
pub mod models;
pub mod ports;
pub mod service;
