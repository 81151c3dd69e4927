//! The errors every subdomain shares: [`StoreError`], the one error of every
//! port — the store (or another adapter) failed in a way no rule can act on,
//! wrapped by each operation's own error enum in an `Unexpected` variant —
//! and [`FieldError`], a request field refused with the reason in words.

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
    /// Set when the adapter refused for lack of capacity: the work was not
    /// done and may succeed after this many seconds.
    retry_after_secs: Option<u64>,
}

impl StoreError {
    /// An error with a context message and no underlying cause.
    pub fn msg(context: impl Into<String>) -> Self {
        Self { context: context.into(), source: None, retry_after_secs: None }
    }

    /// The adapter is at capacity (e.g. every password hashing slot is
    /// taken): nothing was done, and asking again after `retry_after_secs`
    /// may succeed. Answered as 503 `busy`, not logged as a failure.
    pub fn busy(context: impl Into<String>, retry_after_secs: u64) -> Self {
        Self { context: context.into(), source: None, retry_after_secs: Some(retry_after_secs) }
    }

    /// This error, marked as the adapter's contention rather than a fault
    /// (a database deadlock or lock wait that its retries did not cure):
    /// answered as 503 `busy` like [`StoreError::busy`], its cause kept.
    #[must_use]
    pub fn with_retry_after(mut self, retry_after_secs: u64) -> Self {
        self.retry_after_secs = Some(retry_after_secs);
        self
    }

    /// When this is a [`StoreError::busy`]: the seconds to wait.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_secs
    }

    /// An error with a context message wrapping its cause.
    pub fn new(
        context: impl Into<String>,
        source: impl Into<Box<dyn StdError + Send + Sync + 'static>>,
    ) -> Self {
        Self { context: context.into(), source: Some(source.into()), retry_after_secs: None }
    }
}

/// A request field that failed validation, with the reason in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// The field's name as the client sent it (`email`, `name`, `role`, …).
    pub field: &'static str,
    /// Why it was refused.
    pub reason: String,
}

impl FieldError {
    /// A field error from any displayable reason.
    pub fn new(field: &'static str, reason: impl ToString) -> Self {
        Self { field, reason: reason.to_string() }
    }
}

/// Why an action that needs a recent second-factor check was refused.
#[derive(Debug, thiserror::Error)]
pub enum StepUpError {
    /// The admin has a second factor and last passed a check more than
    /// [`crate::mfa::check::STEP_UP_WINDOW`] ago (or never, in this session): they confirm
    /// with a code (`POST /api/v1/auth/step-up`) and try again.
    #[error(
        "confirm it is you: this action needs a code from your authenticator app (or a recovery code) from the last 10 minutes"
    )]
    Required,
    /// A personal API token asked: it carries no second-factor check, so
    /// what needs one is for a signed-in session only (whether or not the
    /// owner has a factor).
    #[error(
        "this action needs a signed-in session with a recent second-factor check: API tokens cannot do it"
    )]
    SessionRequired,
    /// The store failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}
