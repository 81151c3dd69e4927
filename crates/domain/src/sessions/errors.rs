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
    /// The password checked out and the user has a second factor: no
    /// session yet. [`crate::sessions::service::SessionService::complete_sign_in`]
    /// with the token and a code makes it.
    #[error("enter the code from your authenticator app to finish signing in")]
    SecondFactorRequired(crate::sessions::models::SecondFactorNeeded),
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Why the second step of a sign-in failed.
#[derive(Debug, thiserror::Error)]
pub enum SecondFactorError {
    /// The sign-in's token is unknown, used, or older than five minutes,
    /// or the user can no longer sign in: start again with the password.
    #[error("this sign-in expired: sign in again with your password")]
    Expired,
    /// The code is not right (or was used already); the sign-in still waits.
    #[error("that code is not right (or was used already): try the current one")]
    WrongCode,
    /// Too many wrong codes for this account.
    #[error("too many wrong codes; try again in {retry_after_secs} seconds")]
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
    /// A live session that may only set up a second factor: the security
    /// policy asks its user for one.
    #[error("set up a second factor first: your organisation requires one for your account")]
    EnrolmentRequired,
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Why a step-up (a second-factor check for the current session) failed.
#[derive(Debug, thiserror::Error)]
pub enum StepUpCheckError {
    /// The user has no second factor to check: nothing asks them for one.
    #[error("no second factor is set up: nothing needs confirming")]
    NotEnrolled,
    /// The code is not right (or was used already).
    #[error("that code is not right (or was used already): try the current one")]
    WrongCode,
    /// Too many wrong codes for this account.
    #[error("too many wrong codes; try again in {retry_after_secs} seconds")]
    Throttled {
        /// Seconds until the next attempt is allowed.
        retry_after_secs: u64,
    },
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}
