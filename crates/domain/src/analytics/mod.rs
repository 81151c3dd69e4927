//! Usage analytics: the other SecureAI services report usage metadata
//! (who, which conversation, which model, how many tokens, when) with a
//! service token; admins see aggregates. No event carries content, and
//! none can: unknown fields are refused at the edge.

pub mod errors;
pub mod models;
pub mod ports;
pub mod service;
