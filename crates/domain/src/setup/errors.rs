//! Errors of the setup use case.

use crate::errors::FieldError;
use crate::errors::StoreError;
use crate::secrets::PasswordPolicyError;

/// Why completing setup failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The link is unknown, expired, or was replaced by a restart.
    #[error("this setup link is not valid; restart the service to print a new one")]
    InvalidLink,
    /// An active admin exists already: setup is over.
    #[error("setup is already complete; sign in instead")]
    AlreadyComplete,
    /// A field is invalid.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The chosen password breaks the policy.
    #[error(transparent)]
    WeakPassword(#[from] PasswordPolicyError),
    /// A user with this email exists (e.g. an invited one).
    #[error("a user with this email address already exists")]
    EmailTaken,
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}
