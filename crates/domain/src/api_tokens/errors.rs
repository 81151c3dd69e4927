//! Why a personal API token request failed.

use crate::errors::{StepUpError, StoreError};

/// Why creating, listing or revoking a token failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiTokenError {
    /// Only admins hold tokens, and only from a session (a token makes
    /// none).
    #[error("personal API tokens are for admins, created from a signed-in session")]
    Forbidden,
    /// The name is empty, too long or has control characters.
    #[error("a token's name must be 1 to 64 characters without control characters")]
    InvalidName,
    /// The lifetime is out of range.
    #[error("a token lives 1 to 366 days")]
    InvalidLifetime,
    /// No scope, or one that does not exist.
    #[error(
        "name at least one scope of: users:read, users:write, audit:read, analytics:read, settings:write{0}"
    )]
    InvalidScopes(String),
    /// The owner holds the most live tokens there may be.
    #[error("you hold 50 live tokens, the most there may be: revoke one first")]
    TooMany,
    /// No such token (or not the caller's).
    #[error("no such token")]
    NotFound,
    /// The creation needs a recent second-factor check.
    #[error(transparent)]
    StepUp(#[from] StepUpError),
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Why a presented token opens nothing: all alike to the caller.
#[derive(Debug, thiserror::Error)]
pub enum ApiTokenAuthError {
    /// Malformed, unknown, expired, revoked, or its owner may no longer
    /// use it.
    #[error("this API token is not valid (unknown, expired or revoked)")]
    Invalid,
    /// The owner must set up a second factor first (the security policy
    /// requires one and they have none: their sessions may only set one
    /// up, and their tokens wait too).
    #[error("the token's owner must set up a second factor first: your organisation requires one")]
    EnrolmentRequired,
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}
