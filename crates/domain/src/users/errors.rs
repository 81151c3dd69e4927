//! Errors of the user use cases.

use crate::errors::{FieldError, StoreError};

/// Why inviting a user failed.
#[derive(Debug, thiserror::Error)]
pub enum InviteUserError {
    /// A field is invalid.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// A user with this email (case-insensitively, any status) exists.
    #[error("a user with this email address already exists")]
    EmailTaken,
    /// Every seat is taken.
    #[error(
        "all {limit} seats are taken; deactivate users who no longer need access or raise the seat limit"
    )]
    SeatLimitReached {
        /// The seat limit in force.
        limit: u32,
    },
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
    /// The action needs a recent second-factor check (step-up).
    #[error(transparent)]
    StepUp(#[from] crate::errors::StepUpError),
}

/// Why a user could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum GetUserError {
    /// No user has this id.
    #[error("no user has this id")]
    NotFound,
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Why users could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListUsersError {
    /// A filter or sort parameter is invalid.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The paging cursor is not one this service issued.
    #[error("the cursor is not valid; start again from the first page")]
    InvalidCursor,
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Why changing a user (role, active, name, department) failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateUserError {
    /// No user has this id.
    #[error("no user has this id")]
    NotFound,
    /// A field is invalid.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// The change would leave no active admin (rule 3, rule 14).
    #[error(
        "this is the last active admin; promote another user to admin first, then change this one"
    )]
    LastAdmin,
    /// Reactivating needs a free seat.
    #[error(
        "all {limit} seats are taken; deactivate users who no longer need access or raise the seat limit"
    )]
    SeatLimitReached {
        /// The limit.
        limit: u32,
    },
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
    /// The action needs a recent second-factor check (step-up).
    #[error(transparent)]
    StepUp(#[from] crate::errors::StepUpError),
}

/// Why withdrawing an invitation failed.
#[derive(Debug, thiserror::Error)]
pub enum WithdrawInvitationError {
    /// No user has this id.
    #[error("no user has this id")]
    NotFound,
    /// Only an invited user's invitation can be withdrawn.
    #[error(
        "this user is not waiting for an invitation: only an invited user's invitation can be withdrawn; deactivate a user who has joined"
    )]
    NotInvited,
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Why a settings change failed.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A value is invalid.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
    /// The action needs a recent second-factor check (step-up).
    #[error(transparent)]
    StepUp(#[from] crate::errors::StepUpError),
}

/// Why erasing a user failed.
#[derive(Debug, thiserror::Error)]
pub enum EraseUserError {
    /// No user has this email.
    #[error("no user has this email address")]
    NotFound,
    /// The user is the last active admin.
    #[error("this is the last active admin; promote another user to admin first")]
    LastAdmin,
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}
