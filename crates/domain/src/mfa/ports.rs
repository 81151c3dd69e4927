//! Driven port: where second factors are kept.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::mfa::models::TotpEnrolment;
use crate::secrets::TokenHash;
use crate::users::models::UserId;

/// Why a store refused to confirm an authenticator app.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmTotpError {
    /// The pending secret is gone or another replaced it meanwhile, or
    /// the app is already confirmed.
    #[error("no such pending authenticator app")]
    NotPending,
    /// The store failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Authenticator apps and recovery codes, by user. A store keeps TOTP
/// secrets encrypted at rest and recovery codes as digests only.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait MfaRepository: Send + Sync {
    /// The user's authenticator app, pending or confirmed.
    ///
    /// # Errors
    /// [`StoreError`] only on failure (a secret the key cannot open is one).
    async fn totp(&self, user: UserId) -> Result<Option<TotpEnrolment>, StoreError>;

    /// Keeps a new pending secret for the user, replacing a pending one;
    /// answers `false` and writes nothing if the user has a confirmed app.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn begin_totp(&self, enrolment: &TotpEnrolment) -> Result<bool, StoreError>;

    /// Confirms the pending secret made at `created_at` with the step of
    /// its first code (spent from then on), replaces the user's recovery
    /// codes with `codes` (digests) and writes `audit`, in one
    /// transaction.
    ///
    /// # Errors
    /// [`ConfirmTotpError::NotPending`] and nothing written if that secret
    /// is no longer the user's pending one.
    async fn confirm_totp(
        &self,
        user: UserId,
        created_at: DateTime<Utc>,
        step: u64,
        codes: &[TokenHash],
        audit: AuditEvent,
    ) -> Result<(), ConfirmTotpError>;

    /// Spends `step` of the user's confirmed app: `true` if it is later
    /// than the last step accepted (which it then becomes), `false` if it
    /// is not or there is no confirmed app. Atomic: of concurrent calls
    /// with one step, on any instance, exactly one gets `true`.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn accept_totp_step(&self, user: UserId, step: u64) -> Result<bool, StoreError>;

    /// Removes the user's authenticator app (pending or confirmed) and,
    /// with `codes_too`, their recovery codes, writing `audit`, in one
    /// transaction, and queues `notice` (the email telling the user) in it.
    /// `false` if there was no app.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn remove_totp(
        &self,
        user: UserId,
        codes_too: bool,
        audit: AuditEvent,
        notice: Option<crate::mail::models::OutgoingMail>,
    ) -> Result<bool, StoreError>;

    /// Writes the audit event of a used recovery code and queues the email
    /// telling its owner, in one transaction.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn recovery_code_used(
        &self,
        audit: AuditEvent,
        notice: crate::mail::models::OutgoingMail,
    ) -> Result<(), StoreError>;

    /// Replaces the user's recovery codes (digests), voiding the earlier
    /// set, and writes `audit`, in one transaction.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        codes: &[TokenHash],
        audit: AuditEvent,
    ) -> Result<(), StoreError>;

    /// Spends the user's unused recovery code with this digest: `true`
    /// once, `false` ever after or for a digest that is not theirs.
    /// Atomic, as [`MfaRepository::accept_totp_step`].
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &TokenHash,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// How many passkeys the user has registered.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn passkey_count(&self, user: UserId) -> Result<u32, StoreError>;

    /// How many of the user's recovery codes are unused.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn recovery_codes_left(&self, user: UserId) -> Result<u32, StoreError>;

    /// Keeps a password sign-in waiting for its second factor, under the
    /// digest of its token, until `expires_at`.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn begin_sign_in(
        &self,
        token: &TokenHash,
        user: UserId,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The user of a sign-in waiting for its second factor, and until when
    /// it waits (expired ones may still be found: the caller checks).
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn sign_in_waiting(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(UserId, DateTime<Utc>)>, StoreError>;

    /// Ends a sign-in waiting for its second factor: `true` once, for the
    /// one of concurrent calls that ended it.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn take_sign_in(&self, token: &TokenHash) -> Result<bool, StoreError>;

    /// Deletes the sign-ins that stopped waiting before `now`; how many.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn forget_expired_sign_ins(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}
