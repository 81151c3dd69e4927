//! Registering, naming and removing a user's passkeys (WebAuthn). The
//! registration is two requests: the options for the browser (the state
//! kept server-side under a token the client holds, five minutes, taken
//! once), then the browser's answer, which the protocol checks.

use chrono::Duration;
use secrecy::SecretString;
use uuid::Uuid;

use crate::access::Principal;
use crate::audit::models::{AuditAction, AuditEvent, Change, RequestContext};
use crate::mfa::models::MfaMethod;
use crate::mfa::passkeys::{
    CeremonyPurpose, MAX_PASSKEYS, PASSKEY_NAME_MAX, Passkey, PasskeyProtocolError, PendingCeremony,
};
use crate::mfa::service::{MfaError, MfaService};
use crate::secrets::PlainToken;
use crate::users::models::{SignInMethod, User};

/// How long a registration waits for the browser's answer.
pub const REGISTRATION_WAIT: Duration = Duration::minutes(5);

/// A registration begun: the token that finishes it, and the options for
/// the browser's `navigator.credentials.create` (JSON).
#[derive(Debug)]
pub struct PasskeyRegistration {
    /// Sent back with the answer.
    pub token: PlainToken,
    /// For the browser.
    pub options: String,
}

/// A passkey registered, and the recovery codes when it is the user's
/// first second factor (shown once).
#[derive(Debug)]
pub struct PasskeyAdded {
    /// The passkey.
    pub passkey: Passkey,
    /// The new recovery codes, if any.
    pub recovery_codes: Option<Vec<SecretString>>,
}

/// A passkey's name: trimmed, 1 to [`PASSKEY_NAME_MAX`] characters, no
/// control characters.
fn passkey_name(name: &str) -> Result<String, MfaError> {
    let name = name.trim();
    let fits = (1..=PASSKEY_NAME_MAX).contains(&name.chars().count());
    if !fits || name.chars().any(char::is_control) {
        return Err(MfaError::InvalidPasskeyName);
    }
    Ok(name.to_owned())
}

fn protocol_error(error: PasskeyProtocolError) -> MfaError {
    match error {
        PasskeyProtocolError::Refused(reason) => MfaError::PasskeyRefused(reason),
        PasskeyProtocolError::Unavailable(reason) => MfaError::PasskeysUnavailable(reason),
        PasskeyProtocolError::Unexpected(reason) => {
            MfaError::Unexpected(crate::StoreError::msg(reason))
        }
    }
}

impl MfaService {
    /// The user's passkeys, oldest first.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn passkeys(&self, user: &User) -> Result<Vec<Passkey>, crate::StoreError> {
        self.ports.passkeys.passkeys(user.id).await
    }

    /// Begins registering a passkey for the signed-in user (also from a
    /// session that may only set up a second factor).
    ///
    /// # Errors
    /// [`MfaError::SsoUser`], [`MfaError::NotOffered`],
    /// [`MfaError::TooManyPasskeys`], [`MfaError::PasskeysUnavailable`].
    pub async fn start_passkey_registration(
        &self,
        user: &User,
    ) -> Result<PasskeyRegistration, MfaError> {
        if user.sign_in == SignInMethod::Sso {
            return Err(MfaError::SsoUser);
        }
        if !self.ports.settings.security_policy().await?.offers(user) {
            return Err(MfaError::NotOffered);
        }
        let existing = self.ports.passkeys.passkeys(user.id).await?;
        if existing.len() >= MAX_PASSKEYS {
            return Err(MfaError::TooManyPasskeys);
        }
        let ceremony = self
            .ports
            .passkey_protocol
            .start_registration(user, &existing)
            .map_err(protocol_error)?;
        let token = self.ports.tokens.generate();
        let pending = PendingCeremony {
            user_id: user.id,
            purpose: CeremonyPurpose::Register,
            state: ceremony.state,
            expires_at: self.ports.clock.now() + REGISTRATION_WAIT,
        };
        self.ports.passkeys.begin_ceremony(&token.hash(), &pending).await?;
        Ok(PasskeyRegistration { token, options: ceremony.options })
    }

    /// Finishes a registration with the browser's answer and a name: the
    /// passkey signs the user in from now on. A passkey verifies its user
    /// (PIN or biometrics), so registering the first second factor is a
    /// check: the session may do everything its role allows, and it brings
    /// ten recovery codes. Next to a factor the user has, it needs a check
    /// from the last ten minutes instead (a taken session must not add its
    /// own). Audited as `mfa.enrolled`.
    ///
    /// # Errors
    /// [`MfaError::CeremonyExpired`] for a token that is not this user's
    /// registration or is older than five minutes (each is answered once);
    /// [`MfaError::PasskeyRefused`] for an answer the protocol refuses;
    /// [`MfaError::PasskeyTaken`] for an authenticator registered already;
    /// [`MfaError::InvalidPasskeyName`]; [`MfaError::StepUp`] next to
    /// another factor without a recent check.
    pub async fn finish_passkey_registration(
        &self,
        principal: &Principal,
        token: &PlainToken,
        name: &str,
        answer: &str,
        context: &RequestContext,
    ) -> Result<PasskeyAdded, MfaError> {
        let user = principal.user();
        let name = passkey_name(name)?;
        let now = self.ports.clock.now();
        // Another factor next to one the user has is a change of their
        // factors: it needs a recent check (else a taken session would add
        // its own), asked before the registration is spent.
        let first = !self.status(user).await?.enrolled();
        let checked_at = principal.second_factor_at();
        let mfa = self.ports.mfa.as_ref();
        crate::mfa::check::require_recent_factor(mfa, user.id, checked_at, now).await?;
        let ceremony = self.ports.passkeys.take_ceremony(&token.hash()).await?;
        let Some(ceremony) = ceremony.filter(|c| {
            c.user_id == user.id && c.purpose == CeremonyPurpose::Register && now <= c.expires_at
        }) else {
            return Err(MfaError::CeremonyExpired);
        };
        let protocol = &self.ports.passkey_protocol;
        let registered =
            protocol.finish_registration(&ceremony.state, answer).map_err(protocol_error)?;
        let (codes, digests) = if first {
            let (codes, digests) = self.recovery_codes();
            (Some(codes), Some(digests))
        } else {
            (None, None)
        };
        let passkey = Passkey {
            id: crate::record_id(),
            user_id: user.id,
            name,
            credential_id: registered.credential_id,
            credential: registered.credential,
            created_at: now,
            last_used_at: None,
        };
        let audit = AuditEvent::new(now, principal.actor(), AuditAction::MfaEnrolled, context)
            .target(user)
            .change(Change::detail("method", MfaMethod::Webauthn.as_str()))
            .change(Change::detail("passkey", &passkey.name));
        if !self.ports.passkeys.add_passkey(&passkey, digests, audit).await? {
            return Err(MfaError::PasskeyTaken);
        }
        if first {
            // The first factor, just proved: the session may do
            // everything its role allows from now on.
            self.ports.sessions.second_factor_checked(principal.session_id(), now).await?;
        }
        Ok(PasskeyAdded { passkey, recovery_codes: codes })
    }

    /// Renames one of the user's passkeys.
    ///
    /// # Errors
    /// [`MfaError::NoSuchPasskey`], [`MfaError::InvalidPasskeyName`].
    pub async fn rename_passkey(&self, user: &User, id: Uuid, name: &str) -> Result<(), MfaError> {
        let name = passkey_name(name)?;
        if self.ports.passkeys.rename_passkey(user.id, id, &name).await? {
            Ok(())
        } else {
            Err(MfaError::NoSuchPasskey)
        }
    }

    /// Removes one of the signed-in user's passkeys, right after a check
    /// (a change of their factors, as [`MfaService::remove_totp`]); with
    /// the last second factor, the recovery codes go too. Where the policy
    /// requires a second factor and none is left, the session can then
    /// only set up a new one. Returns whether it must.
    /// Audited as `mfa.removed`.
    ///
    /// # Errors
    /// [`MfaError::NoSuchPasskey`]; [`MfaError::StepUp`] for the last
    /// required factor without a recent check.
    pub async fn remove_passkey(
        &self,
        principal: &Principal,
        id: Uuid,
        context: &RequestContext,
    ) -> Result<bool, MfaError> {
        let user = principal.user();
        let now = self.ports.clock.now();
        let checked_at = principal.second_factor_at();
        let mfa = self.ports.mfa.as_ref();
        crate::mfa::check::require_recent_factor(mfa, user.id, checked_at, now).await?;
        let status = self.status(user).await?;
        let last = !status.totp && status.passkeys <= 1;
        let replacing = last && self.ports.settings.security_policy().await?.requires(user);
        let audit = AuditEvent::new(now, principal.actor(), AuditAction::MfaRemoved, context)
            .target(user)
            .change(Change::detail("method", MfaMethod::Webauthn.as_str()));
        let audit =
            if replacing { audit.change(Change::detail("replacing", "yes")) } else { audit };
        if !self.ports.passkeys.remove_passkey(user.id, id, last, audit).await? {
            return Err(MfaError::NoSuchPasskey);
        }
        Ok(self.limit_if_bare(principal).await?)
    }
}
