//! Setting up, checking and removing a user's second factors.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::SecretString;

use crate::access::{Admin, Principal};
use crate::audit::models::{AuditAction, AuditEvent, Change, RequestContext};
use crate::audit::ports::AuditLog;
use crate::clock::Clock;
use crate::errors::StoreError;
use crate::mail::models::MailMessage;
use crate::mfa::check::{Checked, StepUpError, check_factor, failure_event};
use crate::mfa::models::{
    MfaMethod, MfaStatus, RECOVERY_CODES, TOTP_SECRET_BYTES, TotpEnrolment, TotpSecret, TotpSetup,
};
use crate::mfa::models::{notice, recovery_digest};
use crate::mfa::policy::SecurityPolicy;
use crate::mfa::ports::{ConfirmTotpError, MfaRepository};
use crate::mfa::totp;
use crate::secrets::{TokenGenerator, TokenHash};
use crate::sessions::ports::SessionRepository;
use crate::settings::ports::SettingsRepository;
use crate::users::models::{EmailAddress, User, UserId};
use crate::users::ports::UserRepository;

/// The ports MfaService uses, and no others.
#[derive(Clone)]
pub struct MfaPorts {
    /// Second factors.
    pub mfa: Arc<dyn MfaRepository>,
    /// Checks, audited on their own.
    pub audit: Arc<dyn AuditLog>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness (secrets, recovery codes).
    pub tokens: Arc<dyn TokenGenerator>,
    /// Sessions: an enrolment ends a session's enrolment-only state.
    pub sessions: Arc<dyn SessionRepository>,
    /// Settings › Security.
    pub settings: Arc<dyn SettingsRepository>,
    /// Users, whose factors an admin or the operator resets.
    pub users: Arc<dyn UserRepository>,
    /// Passkeys and their registrations in progress.
    pub passkeys: Arc<dyn crate::mfa::passkeys::PasskeyRepository>,
    /// The WebAuthn protocol.
    pub passkey_protocol: Arc<dyn crate::mfa::passkeys::PasskeyProtocol>,
}

/// A user's second factors.
pub struct MfaService {
    pub(super) ports: MfaPorts,
}

/// Why a reset of someone's second factors was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResetMfaError {
    /// No such user.
    #[error("no such user")]
    NotFound,
    /// An admin's own second factor is not reset this way.
    #[error(
        "you cannot reset your own second factor: manage it on your own Second factor page, or ask another admin"
    )]
    Own,
    /// The user has no second factor.
    #[error("this user has no second factor to reset")]
    NotEnrolled,
    /// The store failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
    /// The action needs a recent second-factor check (step-up).
    #[error(transparent)]
    StepUp(#[from] crate::errors::StepUpError),
}

/// Why a second-factor request was refused.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// An authenticator app is confirmed already.
    #[error("an authenticator app is already set up: remove it first to set up another")]
    AlreadyEnrolled,
    /// Single sign-on users get their second factor from the identity
    /// provider.
    #[error("you sign in with single sign-on: your identity provider asks for your second factor")]
    SsoUser,
    /// No authenticator app is being set up.
    #[error("no authenticator app is being set up: start again")]
    NotPending,
    /// The user has no second factor.
    #[error("no second factor is set up")]
    NotEnrolled,
    /// The security policy does not offer second factors to the user's
    /// role.
    #[error(
        "second factors are not offered to users: an admin can turn them on in Settings › Security"
    )]
    NotOffered,
    /// Replacing a required second factor needs a recent check of it
    /// (step-up).
    #[error(transparent)]
    StepUp(#[from] crate::errors::StepUpError),
    /// The code is not right, was used already, or is outside its time.
    #[error("that code is not right (or was used already): try the current one")]
    WrongCode,
    /// A passkey's name is empty, too long or has control characters.
    #[error("a passkey's name must be 1 to 64 characters without control characters")]
    InvalidPasskeyName,
    /// The user has as many passkeys as allowed.
    #[error("you have 10 passkeys, the most there may be: remove one first")]
    TooManyPasskeys,
    /// No passkey of the user has this id.
    #[error("no passkey of yours has this id")]
    NoSuchPasskey,
    /// The registration is unknown, answered already, another user's or
    /// older than five minutes.
    #[error("this passkey registration expired: start again")]
    CeremonyExpired,
    /// The browser's answer failed the protocol's checks.
    #[error("{0}")]
    PasskeyRefused(String),
    /// This authenticator is registered already.
    #[error("this passkey is registered already")]
    PasskeyTaken,
    /// Passkeys cannot be used at this service's address.
    #[error("{0}")]
    PasskeysUnavailable(String),
    /// The store failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

impl MfaService {
    /// A service over these ports.
    pub fn new(ports: MfaPorts) -> Self {
        Self { ports }
    }

    /// The user's second factors.
    ///
    /// # Errors
    /// [`StoreError`] on failure.
    pub async fn status(&self, user: &User) -> Result<MfaStatus, StoreError> {
        let totp = self.ports.mfa.totp(user.id).await?;
        Ok(MfaStatus {
            totp: totp.is_some_and(|t| t.confirmed_at.is_some()),
            passkeys: self.ports.mfa.passkey_count(user.id).await?,
            recovery_codes_left: self.ports.mfa.recovery_codes_left(user.id).await?,
        })
    }

    /// Makes a new secret for the user's authenticator app, pending until
    /// [`MfaService::confirm_totp`]: shown once, with its `otpauth://`
    /// link. Starting again replaces a pending secret.
    ///
    /// # Errors
    /// [`MfaError::AlreadyEnrolled`] if an app is confirmed;
    /// [`MfaError::SsoUser`] for a single sign-on user.
    pub async fn start_totp(&self, user: &User) -> Result<TotpSetup, MfaError> {
        if user.sign_in == crate::users::models::SignInMethod::Sso {
            return Err(MfaError::SsoUser);
        }
        let policy = self.ports.settings.security_policy().await?;
        if !policy.offers(user) {
            return Err(MfaError::NotOffered);
        }
        let random = random_bytes(self.ports.tokens.as_ref());
        let secret = TotpSecret::from_bytes(&random[..TOTP_SECRET_BYTES]);
        let enrolment = TotpEnrolment {
            user_id: user.id,
            secret: secret.clone(),
            created_at: self.ports.clock.now(),
            confirmed_at: None,
            last_step: None,
        };
        if !self.ports.mfa.begin_totp(&enrolment).await? {
            return Err(MfaError::AlreadyEnrolled);
        }
        let otpauth_uri = SecretString::from(totp::otpauth_uri(&secret, user.email.as_str()));
        Ok(TotpSetup { secret, otpauth_uri })
    }

    /// The authenticator app being set up, shown again to its own user
    /// until a code confirms it (the page that shows the QR code may be
    /// reloaded); `None` when no app is pending.
    ///
    /// # Errors
    /// [`StoreError`] on failure.
    pub async fn pending_totp(&self, user: &User) -> Result<Option<TotpSetup>, StoreError> {
        Ok(self.ports.mfa.totp(user.id).await?.filter(|t| t.confirmed_at.is_none()).map(|t| {
            let otpauth_uri = SecretString::from(totp::otpauth_uri(&t.secret, user.email.as_str()));
            TotpSetup { secret: t.secret, otpauth_uri }
        }))
    }

    /// Confirms the pending authenticator app with a code from it: the app
    /// signs the user in from now on, and the answer is a new set of
    /// [`RECOVERY_CODES`] recovery codes, shown once (any earlier set is
    /// void). Audited as `mfa.enrolled`.
    ///
    /// # Errors
    /// [`MfaError::NotPending`] without a pending app;
    /// [`MfaError::WrongCode`] (audited as `mfa.failed`) for a code that
    /// is not the app's now.
    pub async fn confirm_totp(
        &self,
        principal: &Principal,
        code: &str,
        context: &RequestContext,
    ) -> Result<Vec<SecretString>, MfaError> {
        let user = principal.user();
        let now = self.ports.clock.now();
        let pending = match self.ports.mfa.totp(user.id).await? {
            Some(t) if t.confirmed_at.is_none() => t,
            Some(_) => return Err(MfaError::AlreadyEnrolled),
            None => return Err(MfaError::NotPending),
        };
        // Next to a passkey this changes the user's factors: a recent check
        // first (a taken session must not add its own).
        let first = !self.status(user).await?.enrolled();
        self.require_check(principal, now).await?;
        let Some(step) = totp::matching_step(&pending.secret, code, now) else {
            self.audit_failure(user, MfaMethod::Totp, "enrolment", context).await?;
            return Err(MfaError::WrongCode);
        };
        let (codes, digests) = self.recovery_codes();
        let audit = AuditEvent::new(now, user_actor(user), AuditAction::MfaEnrolled, context)
            .target(user)
            .change(Change::detail("method", MfaMethod::Totp.as_str()));
        match self.ports.mfa.confirm_totp(user.id, pending.created_at, step, &digests, audit).await
        {
            Ok(()) => {
                if first {
                    // The first factor, just proved: the session may do
                    // everything its role allows from now on.
                    let session = principal.session_id();
                    self.ports.sessions.second_factor_checked(session, now).await?;
                }
                Ok(codes)
            }
            Err(ConfirmTotpError::NotPending) => Err(MfaError::NotPending),
            Err(ConfirmTotpError::Unexpected(e)) => Err(e.into()),
        }
    }

    /// Checks a second factor of the user: an authenticator app's code
    /// (each time step accepted once) or a recovery code (each once).
    /// Audited as `mfa.verified`, `mfa.recovery_code_used` or
    /// `mfa.failed`.
    ///
    /// # Errors
    /// [`MfaError::WrongCode`] for a wrong, spent or late code;
    /// [`MfaError::NotEnrolled`] when the user has no such factor.
    pub async fn verify(
        &self,
        user: &User,
        method: MfaMethod,
        code: &str,
        context: &RequestContext,
    ) -> Result<(), MfaError> {
        let now = self.ports.clock.now();
        let accepted = match check_factor(self.ports.mfa.as_ref(), user.id, method, code, now)
            .await?
        {
            Checked::Accepted => true,
            Checked::Refused => false,
            Checked::NotEnrolled if method == MfaMethod::Totp => return Err(MfaError::NotEnrolled),
            Checked::NotEnrolled => false,
        };
        if !accepted {
            self.audit_failure(user, method, "sign-in", context).await?;
            return Err(MfaError::WrongCode);
        }
        let action = match method {
            MfaMethod::Totp | MfaMethod::Webauthn => AuditAction::MfaVerified,
            MfaMethod::RecoveryCode => AuditAction::RecoveryCodeUsed,
        };
        let mut event = AuditEvent::new(now, user_actor(user), action, context)
            .target(user)
            .change(Change::detail("method", method.as_str()));
        if method == MfaMethod::RecoveryCode {
            let left = self.ports.mfa.recovery_codes_left(user.id).await?;
            event = event.change(Change::detail("codes_left", &left.to_string()));
            let mail = notice(user, MailMessage::RecoveryCodeUsed { codes_left: left }, now);
            return Ok(self.ports.mfa.recovery_code_used(event, mail).await?);
        }
        self.ports.audit.append(event).await?;
        Ok(())
    }

    /// A new set of recovery codes, shown once; the earlier set is void.
    /// Audited as `mfa.recovery_codes_regenerated`.
    ///
    /// # Errors
    /// [`MfaError::NotEnrolled`] when the user has no second factor.
    pub async fn regenerate_recovery_codes(
        &self,
        principal: &Principal,
        context: &RequestContext,
    ) -> Result<Vec<SecretString>, MfaError> {
        let user = principal.user();
        if !self.status(user).await?.enrolled() {
            return Err(MfaError::NotEnrolled);
        }
        let now = self.ports.clock.now();
        // New codes are a factor in the holder's hands: a recent check.
        self.require_check(principal, now).await?;
        let (codes, digests) = self.recovery_codes();
        let audit =
            AuditEvent::new(now, user_actor(user), AuditAction::RecoveryCodesRegenerated, context)
                .target(user);
        self.ports.mfa.replace_recovery_codes(user.id, &digests, audit).await?;
        Ok(codes)
    }

    /// Removes the user's authenticator app and, when it is their last
    /// second factor (no passkey), their recovery codes — only within
    /// [`crate::mfa::check::STEP_UP_WINDOW`] of a check in this session (a
    /// code from the old app, a passkey, or a recovery code when the phone
    /// is lost). Audited as `mfa.removed`.
    ///
    /// Where the policy requires a second factor and this was the last
    /// one, this replaces it (a new phone): the session can then only set
    /// up the new one. Returns whether it must.
    ///
    /// # Errors
    /// [`MfaError::NotEnrolled`] when there is no app;
    /// [`MfaError::StepUp`] without a recent check.
    pub async fn remove_totp(
        &self,
        principal: &Principal,
        context: &RequestContext,
    ) -> Result<bool, MfaError> {
        let user = principal.user();
        let now = self.ports.clock.now();
        self.require_check(principal, now).await?;
        let last = self.ports.mfa.passkey_count(user.id).await? == 0;
        let replacing = last && self.ports.settings.security_policy().await?.requires(user);
        let audit = AuditEvent::new(now, user_actor(user), AuditAction::MfaRemoved, context)
            .target(user)
            .change(Change::detail("method", MfaMethod::Totp.as_str()));
        let audit =
            if replacing { audit.change(Change::detail("replacing", "yes")) } else { audit };
        if !self.ports.mfa.remove_totp(user.id, last, audit, None).await? {
            return Err(MfaError::NotEnrolled);
        }
        Ok(self.limit_if_bare(principal).await?)
    }

    /// A change of the user's own second factors (adding one next to
    /// another, removing one, new recovery codes) needs a check from the
    /// last [`crate::mfa::check::STEP_UP_WINDOW`] in this session — else a
    /// taken session could add its own factor, or codes, and pass every
    /// step-up. Users without a factor are not asked.
    async fn require_check(
        &self,
        principal: &Principal,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), MfaError> {
        let mfa = self.ports.mfa.as_ref();
        let checked_at = principal.second_factor_at();
        crate::mfa::check::require_recent_factor(mfa, principal.user().id, checked_at, now).await?;
        Ok(())
    }

    /// After a removal: where the policy requires a second factor and the
    /// user has none left (the last one replaced, or two removed at once),
    /// the session may only set up a new one. Returns whether it must.
    pub(crate) async fn limit_if_bare(&self, principal: &Principal) -> Result<bool, StoreError> {
        let user = principal.user();
        if self.status(user).await?.enrolled()
            || !self.ports.settings.security_policy().await?.requires(user)
        {
            return Ok(false);
        }
        self.ports.sessions.enrolment_required(principal.session_id()).await?;
        Ok(true)
    }

    /// Settings › Security.
    ///
    /// # Errors
    /// [`StoreError`] on failure.
    pub async fn security_policy(&self) -> Result<SecurityPolicy, StoreError> {
        self.ports.settings.security_policy().await
    }

    /// Saves Settings › Security; audited as `settings.security_changed`
    /// with each setting before and after. Sessions already signed in
    /// keep what they had: a requirement applies at the next sign-in.
    ///
    /// # Errors
    /// [`StepUpError::Required`] without a recent second-factor check.
    pub async fn set_security_policy(
        &self,
        admin: &Admin,
        policy: SecurityPolicy,
        context: &RequestContext,
    ) -> Result<SecurityPolicy, StepUpError> {
        let now = self.ports.clock.now();
        admin.require_recent_factor(self.ports.mfa.as_ref(), now).await?;
        let before = self.ports.settings.security_policy().await?;
        let mut audit =
            AuditEvent::new(now, admin.actor(), AuditAction::SecuritySettingsChanged, context);
        if before.admin_mfa != policy.admin_mfa {
            audit = audit.change(Change::new(
                "admin_mfa",
                Some(before.admin_mfa.as_str()),
                Some(policy.admin_mfa.as_str()),
            ));
        }
        if before.user_mfa != policy.user_mfa {
            audit = audit.change(Change::new(
                "user_mfa",
                Some(before.user_mfa.as_str()),
                Some(policy.user_mfa.as_str()),
            ));
        }
        self.ports.settings.set_security_policy(&policy, audit).await?;
        Ok(policy)
    }

    /// An admin resets another user's second factors (a lost phone): the
    /// authenticator app and the recovery codes go; where the policy
    /// requires one, the user sets up a new one at their next sign-in.
    /// Audited as `mfa.reset` by the admin.
    ///
    /// # Errors
    /// [`ResetMfaError::NotFound`] for an unknown user;
    /// [`ResetMfaError::Own`] for the admin's own factors (removed from
    /// their own page, or by another admin);
    /// [`ResetMfaError::NotEnrolled`] when there is nothing to reset.
    pub async fn reset(
        &self,
        admin: &Admin,
        id: UserId,
        context: &RequestContext,
    ) -> Result<User, ResetMfaError> {
        if admin.user().id == id {
            return Err(ResetMfaError::Own);
        }
        let now = self.ports.clock.now();
        admin.require_recent_factor(self.ports.mfa.as_ref(), now).await?;
        let user = self.ports.users.get(id).await?.ok_or(ResetMfaError::NotFound)?;
        let name = Some(admin.user().name.to_string());
        self.reset_factors(&user, admin.actor(), name, context).await?;
        Ok(user)
    }

    /// The operator resets someone's second factors from the command line
    /// (`secureai users reset-mfa`): for the last admin, who has no other
    /// admin to ask. Audited as `mfa.reset` by the operator.
    ///
    /// # Errors
    /// As [`MfaService::reset`], but one's own does not apply.
    pub async fn reset_as_operator(
        &self,
        email: &str,
        context: &RequestContext,
    ) -> Result<User, ResetMfaError> {
        let email = EmailAddress::parse(email).map_err(|_| ResetMfaError::NotFound)?;
        let user = self.ports.users.find_by_email(&email).await?.ok_or(ResetMfaError::NotFound)?;
        let actor = crate::audit::models::Actor::Operator;
        self.reset_factors(&user, actor, None, context).await?;
        Ok(user)
    }

    async fn reset_factors(
        &self,
        user: &User,
        actor: crate::audit::models::Actor,
        reset_by: Option<String>,
        context: &RequestContext,
    ) -> Result<(), ResetMfaError> {
        let now = self.ports.clock.now();
        let by = if reset_by.is_some() { "admin" } else { "operator" };
        let audit = AuditEvent::new(now, actor, AuditAction::MfaReset, context)
            .target(user)
            .change(Change::detail("by", by));
        let required = self.ports.settings.security_policy().await?.requires(user);
        let notice = notice(user, MailMessage::SecondFactorReset { reset_by, required }, now);
        // Passkeys first (each audited as removed by the reset), then the
        // app with the recovery codes, the reset's audit event and the
        // email in one transaction.
        let passkeys = self.ports.passkeys.passkeys(user.id).await?;
        for passkey in &passkeys {
            let removed =
                AuditEvent::new(now, audit.actor.clone(), AuditAction::MfaRemoved, context)
                    .target(user)
                    .change(Change::detail("method", MfaMethod::Webauthn.as_str()))
                    .change(Change::detail("by", by));
            self.ports.passkeys.remove_passkey(user.id, passkey.id, true, removed).await?;
        }
        if self.ports.mfa.remove_totp(user.id, true, audit.clone(), Some(notice.clone())).await? {
            return Ok(());
        }
        if passkeys.is_empty() {
            return Err(ResetMfaError::NotEnrolled);
        }
        // No app: the reset's event and the email on their own.
        self.ports.mfa.recovery_code_used(audit, notice).await?;
        Ok(())
    }

    async fn audit_failure(
        &self,
        user: &User,
        method: MfaMethod,
        during: &str,
        context: &RequestContext,
    ) -> Result<(), StoreError> {
        let event = failure_event(user, method, during, self.ports.clock.now(), context);
        self.ports.audit.append(event).await
    }

    /// A new set of recovery codes and their digests.
    pub(super) fn recovery_codes(&self) -> (Vec<SecretString>, Vec<TokenHash>) {
        (0..RECOVERY_CODES)
            .map(|_| {
                let random = random_bytes(self.ports.tokens.as_ref());
                let code = recovery_code(&random[..20]);
                let digest = recovery_digest(&code);
                (SecretString::from(code), digest)
            })
            .unzip()
    }
}

fn user_actor(user: &User) -> crate::audit::models::Actor {
    crate::audit::models::Actor::user(user)
}

/// 32 random bytes from the token generator (a CSPRNG).
fn random_bytes(tokens: &dyn TokenGenerator) -> Vec<u8> {
    let token = tokens.generate();
    URL_SAFE_NO_PAD.decode(token.expose()).unwrap_or_default()
}

/// 160 bits as 32 lowercase base32 letters and digits in four groups of
/// eight (`abcdefgh-ijklmnop-qrstuvwx-yz234567`), easy to read out and
/// type.
fn recovery_code(bytes: &[u8]) -> String {
    let text =
        base32::encode(base32::Alphabet::Rfc4648 { padding: false }, bytes).to_ascii_lowercase();
    text.as_bytes()
        .chunks(8)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_read_the_same_in_any_case_and_spacing() {
        let code = recovery_code(&[0xA5; 20]);
        assert_eq!(code.len(), 32 + 3, "{code}");
        assert!(code.split('-').all(|group| group.len() == 8), "{code}");
        let typed = code.to_uppercase().replace('-', " ");
        assert_eq!(recovery_digest(&typed), recovery_digest(&code));
        assert_ne!(recovery_digest(&recovery_code(&[0xA4; 20])), recovery_digest(&code));
    }
}
