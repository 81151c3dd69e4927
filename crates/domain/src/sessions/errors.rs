//! Errors of the session use cases.

use crate::errors::StoreError;

/// Why a sign-in failed. Unknown email, wrong password and a not yet
/// activated account are one variant, so a stranger learns nothing.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Wrong email or password.
    #[error("the email address or password is not correct")]
    InvalidCredentials,
    /// Correct credentials, but the account is deactivated. Only reported
    /// after the password checked out, so it reveals nothing to a stranger.
    #[error("this account is deactivated; contact your administrator")]
    AccountDeactivated,
    /// Too many failed attempts for this account or from this address.
    #[error("too many failed sign-in attempts; try again in {retry_after_secs} seconds")]
    Throttled {
        /// Seconds until the next attempt is allowed.
        retry_after_secs: u64,
    },
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Why a presented session token does not identify anyone.
#[derive(Debug, thiserror::Error)]
pub enum AuthenticateError {
    /// No live session: unknown, expired or ended token, or the user is no
    /// longer active.
    #[error("sign in to continue")]
    Unauthenticated,
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}
