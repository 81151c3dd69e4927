//! Service tokens: the credentials other SecureAI services present to
//! report usage. Shown once, kept as digests, revocable, audited.

pub mod service;
