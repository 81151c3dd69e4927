//! The second step of a password sign-in, and a step-up: checking a code
//! or a passkey's answer (throttled, audited), and the challenge a passkey
//! answers.

use crate::audit::models::{Actor, AuditAction, AuditEvent, Change, RequestContext};
use crate::mfa::check::{Checked, check_factor, failure_event};
use crate::mfa::models::MfaMethod;
use crate::mfa::passkeys::CeremonyPurpose;
use crate::secrets::PlainToken;
use crate::sessions::models::CodeCheck;
use crate::sessions::service::SessionService;
use crate::sessions::throttle::AttemptKey;
use crate::users::models::UserId;

impl SessionService {
    /// Checks a code of the user's second factor, counted per account
    /// (`mfa:<user>`) before it is checked, as wrong passwords are (rule
    /// 16); a failure is audited as `mfa.failed` `during` sign-in or
    /// step-up, a success clears the count.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn check_code(
        &self,
        user: &crate::User,
        method: MfaMethod,
        code: &str,
        ceremony: Option<(&crate::TokenHash, CeremonyPurpose)>,
        during: &str,
        now: chrono::DateTime<chrono::Utc>,
        context: &RequestContext,
    ) -> Result<CodeCheck, crate::StoreError> {
        let policy = &self.policy.throttle;
        let key = format!("mfa:{}", user.id);
        let keys = [AttemptKey { key: key.clone(), free: policy.free_account_failures }];
        if let Some(until) = self.ports.throttle.reserve(&keys, now, policy).await? {
            let event =
                AuditEvent::new(now, Actor::Anonymous, AuditAction::SignInThrottled, context)
                    .target(user)
                    .change(Change::detail("until", &until.to_rfc3339()))
                    .change(Change::detail("step", "second factor"));
            self.ports.audit.append(event).await?;
            let wait = u64::try_from((until - now).num_milliseconds()).unwrap_or(0);
            return Ok(CodeCheck::Throttled { retry_after_secs: wait.div_ceil(1000).max(1) });
        }
        let checked = match (method, ceremony) {
            (MfaMethod::Webauthn, Some((key, purpose))) => {
                self.check_passkey(user, key, purpose, code, now).await?
            }
            (MfaMethod::Webauthn, None) => Checked::Refused,
            _ => check_factor(self.ports.mfa.as_ref(), user.id, method, code, now).await?,
        };
        if checked != Checked::Accepted {
            let event = failure_event(user, method, during, now, context);
            self.ports.audit.append(event).await?;
            return Ok(CodeCheck::Refused);
        }
        self.ports.throttle.clear(&key).await?;
        Ok(CodeCheck::Accepted)
    }

    /// A challenge for the user's passkeys, kept under `token` (the
    /// sign-in's, or a step-up's) until it waits no more: the options for
    /// the browser, or `None` when the user has no passkey or passkeys
    /// cannot be used here (the protocol says why; the other factors still
    /// work).
    pub(super) async fn passkey_challenge(
        &self,
        user: UserId,
        token: &PlainToken,
        purpose: CeremonyPurpose,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<String>, crate::StoreError> {
        let keys = self.ports.passkeys.passkeys(user).await?;
        if keys.is_empty() {
            return Ok(None);
        }
        let ceremony = match self.ports.passkey_protocol.start_authentication(&keys) {
            Ok(ceremony) => ceremony,
            // Passkeys cannot be used at this address (the wiring logged
            // why): the other factors still sign the user in.
            Err(_) => return Ok(None),
        };
        let pending = crate::mfa::passkeys::PendingCeremony {
            user_id: user,
            purpose,
            state: ceremony.state,
            expires_at,
        };
        self.ports.passkeys.begin_ceremony(&token.hash(), &pending).await?;
        Ok(Some(ceremony.options))
    }

    /// Checks a passkey's answer to the challenge kept under `key` for
    /// `purpose`: the challenge is taken (answered once, right or wrong),
    /// and the passkey that signed it records its use.
    pub(super) async fn check_passkey(
        &self,
        user: &crate::User,
        key: &crate::TokenHash,
        purpose: CeremonyPurpose,
        answer: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Checked, crate::StoreError> {
        if answer.trim().is_empty() {
            // No answer at all: the challenge stays for the real one.
            return Ok(Checked::Refused);
        }
        let Some(ceremony) = self.ports.passkeys.take_ceremony(key).await? else {
            return Ok(Checked::Refused);
        };
        let usable = ceremony.user_id == user.id
            && ceremony.purpose == purpose
            && now <= ceremony.expires_at;
        if !usable {
            return Ok(Checked::Refused);
        }
        let keys = self.ports.passkeys.passkeys(user.id).await?;
        let protocol = &self.ports.passkey_protocol;
        match protocol.finish_authentication(&ceremony.state, answer, &keys) {
            Ok(used) => {
                let passkeys = &self.ports.passkeys;
                passkeys.passkey_used(user.id, &used.credential_id, used.credential, now).await?;
                Ok(Checked::Accepted)
            }
            Err(_) => Ok(Checked::Refused),
        }
    }

    /// Audits a spent recovery code and emails its user, with the count
    /// left.
    pub(super) async fn recovery_code_spent(
        &self,
        user: &crate::User,
        now: chrono::DateTime<chrono::Utc>,
        context: &RequestContext,
    ) -> Result<(), crate::StoreError> {
        let left = self.ports.mfa.recovery_codes_left(user.id).await?;
        let event = AuditEvent::new(now, Actor::user(user), AuditAction::RecoveryCodeUsed, context)
            .target(user)
            .change(Change::detail("codes_left", &left.to_string()));
        let message = crate::mail::models::MailMessage::RecoveryCodeUsed { codes_left: left };
        let mail = crate::mfa::models::notice(user, message, now);
        self.ports.mfa.recovery_code_used(event, mail).await
    }
}
