//! Errors of the invitation use cases.

use chrono::{DateTime, Utc};

use crate::errors::StoreError;
use crate::secrets::PasswordPolicyError;

/// Why accepting an invitation failed.
#[derive(Debug, thiserror::Error)]
pub enum AcceptInvitationError {
    /// Unknown token, already used, or replaced by a newer invitation.
    #[error(
        "this invitation link is not valid; it may have been used already or replaced by a newer one"
    )]
    Invalid,
    /// The link's 72 hours have passed.
    #[error(
        "this invitation link expired on {expired_at}; ask your administrator to re-send the invitation"
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

/// Why re-sending an invitation failed.
#[derive(Debug, thiserror::Error)]
pub enum ResendInvitationError {
    /// No user has this id.
    #[error("no user has this id")]
    NotFound,
    /// Only invited users have invitations to re-send.
    #[error(
        "this user is not waiting for an invitation: only invited users can be sent a new link"
    )]
    NotInvited,
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Why correcting an invited user's email failed.
#[derive(Debug, thiserror::Error)]
pub enum CorrectEmailError {
    /// No user has this id.
    #[error("no user has this id")]
    NotFound,
    /// The new address is not valid.
    #[error(transparent)]
    Invalid(#[from] crate::errors::FieldError),
    /// Only an invited user's address can be corrected.
    #[error(
        "only an invited user's email can be corrected: once they have joined, their address comes from them or from your identity provider"
    )]
    NotInvited,
    /// Another user has the address.
    #[error("another user already has this email address")]
    EmailTaken,
    /// Sending an admin's invitation elsewhere makes whoever reads it an
    /// admin: it needs a recent second-factor check.
    #[error(transparent)]
    StepUp(#[from] crate::errors::StepUpError),
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}
