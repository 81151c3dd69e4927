//! Errors of the analytics use cases.

use crate::errors::StoreError;

/// Why a service token could not be created or revoked.
#[derive(Debug, thiserror::Error)]
pub enum ServiceTokenError {
    /// The name is empty, too long or has control characters.
    #[error("the name must be 1 to 100 characters without control characters")]
    InvalidName,
    /// A scope is unknown, or none is named.
    #[error("{0}")]
    InvalidScopes(String),
    /// No token has this id.
    #[error("no service token has this id")]
    NotFound,
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
    /// The action needs a recent second-factor check (step-up).
    #[error(transparent)]
    StepUp(#[from] crate::errors::StepUpError),
}

/// Why a request with a service token was refused.
#[derive(Debug, thiserror::Error)]
pub enum ServiceAuthError {
    /// Missing, unknown or revoked token (one answer for all three).
    #[error("a valid service token is required")]
    InvalidToken,
    /// The token is valid but does not open this.
    #[error("this service token does not have the `{}` scope; create one that has it", scope.as_str())]
    MissingScope {
        /// The scope this needs.
        scope: crate::analytics::models::TokenScope,
    },
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Why a batch of usage events was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// More events than one batch may hold.
    #[error("a batch holds at most {limit} events; send the rest in further batches")]
    TooLarge {
        /// The largest batch.
        limit: usize,
    },
    /// Something unexpected failed (nothing of the batch was recorded).
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Why an analytics query was refused.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsError {
    /// `from` after `to`, or a range longer than allowed.
    #[error("the range must run forward and span at most {max_days} days")]
    InvalidRange {
        /// The longest range.
        max_days: i64,
    },
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}
