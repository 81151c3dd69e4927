//! Step-up: the signed-in user confirms it is them with a second factor,
//! for the actions that need a recent check
//! ([`crate::mfa::check::require_recent_factor`]).

use chrono::{DateTime, Utc};

use crate::access::Principal;
use crate::audit::models::{AuditAction, AuditEvent, Change, RequestContext};
use crate::mfa::check::methods_of;
use crate::mfa::models::MfaMethod;
use crate::mfa::passkeys::CeremonyPurpose;
use crate::secrets::PlainToken;
use crate::sessions::errors::StepUpCheckError;
use crate::sessions::models::{CodeCheck, PasskeyChallenge, SECOND_FACTOR_WAIT};
use crate::sessions::service::SessionService;

impl SessionService {
    /// Checks a code of the signed-in user's second factor and records the
    /// time on their session: for [`crate::mfa::check::STEP_UP_WINDOW`]
    /// the session may do what needs a recent check. Wrong codes are
    /// counted per account before they are checked, with the sign-in's
    /// second step (`mfa:<user>`); audited as `mfa.verified` (or
    /// `mfa.recovery_code_used`, the user emailed) and `mfa.failed`, both
    /// `during` step-up. Returns the time recorded.
    ///
    /// # Errors
    /// See [`StepUpCheckError`].
    pub async fn step_up(
        &self,
        principal: &Principal,
        method: MfaMethod,
        code: &str,
        context: &RequestContext,
    ) -> Result<DateTime<Utc>, StepUpCheckError> {
        self.confirm(principal, method, code, None, context).await
    }

    /// A challenge for the signed-in user's passkeys, for a step-up: the
    /// options for the browser's `navigator.credentials.get` and the token
    /// the answer comes back with, within
    /// [`SECOND_FACTOR_WAIT`]. `None` when they have no passkey, or
    /// passkeys cannot be used at this address.
    ///
    /// # Errors
    /// A store failure.
    pub async fn step_up_challenge(
        &self,
        principal: &Principal,
    ) -> Result<Option<PasskeyChallenge>, crate::StoreError> {
        let user = principal.user();
        let token = self.ports.tokens.generate();
        let expires_at = self.ports.clock.now() + SECOND_FACTOR_WAIT;
        let purpose = CeremonyPurpose::StepUp;
        let options = self.passkey_challenge(user.id, &token, purpose, expires_at).await?;
        Ok(options.map(|options| PasskeyChallenge { token, options, expires_at }))
    }

    /// A step-up with a passkey: its answer to the challenge of
    /// [`Self::step_up_challenge`] (`challenge` is that challenge's
    /// token). The challenge is answered once, right or wrong, and only by
    /// the user it was made for, as a step-up; counted and audited as
    /// [`Self::step_up`] is.
    ///
    /// # Errors
    /// See [`StepUpCheckError`]; a wrong, spent, expired or another's
    /// challenge is [`StepUpCheckError::WrongCode`].
    pub async fn step_up_with_passkey(
        &self,
        principal: &Principal,
        challenge: &PlainToken,
        answer: &str,
        context: &RequestContext,
    ) -> Result<DateTime<Utc>, StepUpCheckError> {
        let key = challenge.hash();
        let ceremony = Some((&key, CeremonyPurpose::StepUp));
        self.confirm(principal, MfaMethod::Webauthn, answer, ceremony, context).await
    }

    async fn confirm(
        &self,
        principal: &Principal,
        method: MfaMethod,
        code: &str,
        ceremony: Option<(&crate::TokenHash, CeremonyPurpose)>,
        context: &RequestContext,
    ) -> Result<DateTime<Utc>, StepUpCheckError> {
        let user = principal.user();
        let now = self.ports.clock.now();
        if methods_of(self.ports.mfa.as_ref(), user.id).await?.is_empty() {
            return Err(StepUpCheckError::NotEnrolled);
        }
        match self.check_code(user, method, code, ceremony, "step-up", now, context).await? {
            CodeCheck::Throttled { retry_after_secs } => {
                return Err(StepUpCheckError::Throttled { retry_after_secs });
            }
            CodeCheck::Refused => return Err(StepUpCheckError::WrongCode),
            CodeCheck::Accepted => {}
        }
        if method == MfaMethod::RecoveryCode {
            self.recovery_code_spent(user, now, context).await?;
        } else {
            let event = AuditEvent::new(now, principal.actor(), AuditAction::MfaVerified, context)
                .target(user)
                .change(Change::detail("method", method.as_str()))
                .change(Change::detail("during", "step-up"));
            self.ports.audit.append(event).await?;
        }
        self.ports.sessions.second_factor_checked(principal.session_id(), now).await?;
        Ok(now)
    }
}
