//! Errors of the password use cases.

use chrono::{DateTime, Utc};

use crate::errors::StoreError;
use crate::secrets::PasswordPolicyError;
use crate::users::models::UserStatus;

/// Why an admin could not start a password reset.
#[derive(Debug, thiserror::Error)]
pub enum RequestResetError {
    /// No user has this id.
    #[error("no user has this id")]
    NotFound,
    /// SSO users have no password here (rule 6).
    #[error("this user signs in through the company's identity provider; reset the password there")]
    SsoUser,
    /// Only active users have a password to reset.
    #[error("only active users can reset their password; this user is {}", .0.as_str())]
    NotActive(UserStatus),
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Why completing a password reset failed.
#[derive(Debug, thiserror::Error)]
pub enum CompleteResetError {
    /// Unknown, used or replaced link, or the user is no longer active.
    #[error(
        "this password reset link is not valid; it may have been used already or replaced by a newer one"
    )]
    Invalid,
    /// The link's 72 hours have passed.
    #[error(
        "this password reset link expired on {expired_at}; ask your administrator for a new one"
    )]
    Expired {
        /// When it expired.
        expired_at: DateTime<Utc>,
    },
    /// The chosen password breaks the policy.
    #[error(transparent)]
    WeakPassword(#[from] PasswordPolicyError),
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Why changing one's own password failed.
#[derive(Debug, thiserror::Error)]
pub enum ChangePasswordError {
    /// The current password is wrong.
    #[error("the current password is not correct")]
    WrongPassword,
    /// SSO users have no password here.
    #[error("you sign in through your company's identity provider; change your password there")]
    SsoUser,
    /// The new password breaks the policy.
    #[error(transparent)]
    WeakPassword(#[from] PasswordPolicyError),
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}
