//! The one error shared by every port: the store (or another adapter) failed
//! in a way no rule can act on. Every operation's own error enum wraps it in
//! an `Unexpected` variant.

use std::error::Error as StdError;

/// An unexpected failure of an adapter (database down, I/O error, …).
///
/// It carries a human-readable context and the underlying cause; it is logged
/// once at the edge and never shown to end users.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
pub struct StoreError {
    context: String,
    #[source]
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl StoreError {
    /// An error with a context message and no underlying cause.
    pub fn msg(context: impl Into<String>) -> Self {
        Self { context: context.into(), source: None }
    }

    /// An error with a context message wrapping its cause.
    pub fn new(
        context: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Self { context: context.into(), source: Some(source.into()) }
    }
}
