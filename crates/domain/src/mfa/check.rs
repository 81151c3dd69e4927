//! Checking a second factor against the store: shared by the account's
//! own checks and the second step of a sign-in (which the sessions
//! service runs), so both spend steps and codes the same way.

use chrono::{DateTime, Duration, Utc};

use crate::audit::models::{Actor, AuditAction, AuditEvent, Change, RequestContext};
use crate::errors::StoreError;
use crate::mfa::models::MfaMethod;
use crate::mfa::ports::MfaRepository;
use crate::users::models::{User, UserId};

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// The code was right and is now spent.
    Accepted,
    /// Wrong, spent, or outside its time.
    Refused,
    /// The user has no such factor.
    NotEnrolled,
}

/// Checks `code` as `method` for the user at `now`, spending it if right.
///
/// # Errors
/// [`StoreError`] on failure.
pub async fn check_factor(
    mfa: &dyn MfaRepository,
    user: UserId,
    method: MfaMethod,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Checked, StoreError> {
    let accepted = match method {
        MfaMethod::Totp => {
            let Some(enrolment) = mfa.totp(user).await?.filter(|t| t.confirmed_at.is_some()) else {
                return Ok(Checked::NotEnrolled);
            };
            match super::totp::matching_step(&enrolment.secret, code, now) {
                Some(step) => mfa.accept_totp_step(user, step).await?,
                None => false,
            }
        }
        MfaMethod::RecoveryCode => {
            let digest = super::models::recovery_digest(code);
            mfa.use_recovery_code(user, &digest, now).await?
        }
        // A passkey answers its own ceremony's challenge: the sessions
        // service checks it with the protocol.
        MfaMethod::Webauthn => false,
    };
    Ok(if accepted { Checked::Accepted } else { Checked::Refused })
}

/// The methods a user can complete a sign-in with, passkeys first: none
/// without a passkey or a confirmed authenticator app.
///
/// # Errors
/// [`StoreError`] on failure.
pub async fn methods_of(
    mfa: &dyn MfaRepository,
    user: UserId,
) -> Result<Vec<MfaMethod>, StoreError> {
    let mut methods = Vec::new();
    if mfa.passkey_count(user).await? > 0 {
        methods.push(MfaMethod::Webauthn);
    }
    if mfa.totp(user).await?.is_some_and(|t| t.confirmed_at.is_some()) {
        methods.push(MfaMethod::Totp);
    }
    if !methods.is_empty() && mfa.recovery_codes_left(user).await? > 0 {
        methods.push(MfaMethod::RecoveryCode);
    }
    Ok(methods)
}

/// The audit event of a second-factor check that failed, `during`
/// enrolment or sign-in.
pub fn failure_event(
    user: &User,
    method: MfaMethod,
    during: &str,
    at: DateTime<Utc>,
    context: &RequestContext,
) -> AuditEvent {
    AuditEvent::new(at, Actor::user(user), AuditAction::MfaFailed, context)
        .target(user)
        .change(Change::detail("method", method.as_str()))
        .change(Change::detail("during", during))
}

/// How recent a second-factor check must be for the actions that need
/// one (step-up): making someone an admin, Settings › Security, single
/// sign-on and email settings, creating tokens, resetting someone's second
/// factor.
pub const STEP_UP_WINDOW: Duration = Duration::minutes(10);

pub use crate::errors::StepUpError;

/// Refuses a sensitive action unless the user passed a second-factor
/// check (`checked_at`, from their session) within [`STEP_UP_WINDOW`] of
/// `now`. Users without a second factor (the policy lets them, or they
/// sign in with single sign-on, whose identity provider asks for its own)
/// are not asked. Admin use cases call it through
/// [`crate::access::Admin::require_recent_factor`].
///
/// # Errors
/// [`StepUpError::Required`] when the check is missing or too old.
pub async fn require_recent_factor(
    mfa: &dyn MfaRepository,
    user: UserId,
    checked_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), StepUpError> {
    if checked_at.is_some_and(|at| now - at <= STEP_UP_WINDOW && at <= now) {
        return Ok(());
    }
    if methods_of(mfa, user).await?.is_empty() {
        return Ok(());
    }
    Err(StepUpError::Required)
}
