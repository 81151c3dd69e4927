//! Signing in with a password, resolving a session on each request, signing
//! out.

use secrecy::SecretString;

use crate::access::{Admin, Principal};
use crate::audit::models::{Actor, AuditAction, AuditEvent, Change, RequestContext};
use crate::mfa::check::methods_of;
use crate::mfa::models::MfaMethod;
use crate::mfa::passkeys::CeremonyPurpose;
use crate::secrets::PlainToken;
use crate::sessions::errors::{AuthenticateError, SecondFactorError, SignInError};
use crate::sessions::models::CodeCheck;
use crate::sessions::models::{
    SECOND_FACTOR_WAIT, SecondFactorNeeded, Session, SessionId, SessionValidity, SignedIn,
};
use crate::sessions::throttle::AttemptKey;
use crate::users::errors::GetUserError;
use crate::users::models::{EmailAddress, UserId, UserStatus};

/// The ports SessionService uses, and no others.
#[derive(Clone)]
pub struct SessionPorts {
    /// User storage.
    pub users: std::sync::Arc<dyn crate::users::ports::UserRepository>,
    /// Session storage.
    pub sessions: std::sync::Arc<dyn crate::sessions::ports::SessionRepository>,
    /// Sign-in attempt counts.
    pub throttle: std::sync::Arc<dyn crate::sessions::throttle::ThrottleRepository>,
    /// Stand-alone audit events.
    pub audit: std::sync::Arc<dyn crate::audit::ports::AuditLog>,
    /// Usage events and their aggregates; a sign-in marks its user active.
    pub usage: std::sync::Arc<dyn crate::analytics::ports::UsageRepository>,
    /// Time.
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    /// Randomness.
    pub tokens: std::sync::Arc<dyn crate::secrets::TokenGenerator>,
    /// Password hashing.
    pub hasher: std::sync::Arc<dyn crate::secrets::PasswordHasher>,
    /// Second factors, which a password sign-in then waits for.
    pub mfa: std::sync::Arc<dyn crate::mfa::ports::MfaRepository>,
    /// Settings › Security: who must have a second factor.
    pub settings: std::sync::Arc<dyn crate::settings::ports::SettingsRepository>,
    /// Passkeys, and the sign-ins' challenges for them.
    pub passkeys: std::sync::Arc<dyn crate::mfa::passkeys::PasskeyRepository>,
    /// The WebAuthn protocol.
    pub passkey_protocol: std::sync::Arc<dyn crate::mfa::passkeys::PasskeyProtocol>,
    /// Counts each sign-in's outcome for operators.
    pub meter: std::sync::Arc<dyn crate::telemetry::Meter>,
}

/// Signing in with a password (throttled), resolving a session to a
/// [`Principal`](crate::access::Principal) on every request, signing out,
/// ending sessions. Rules (docs/RULES.md): 7 a role change applies on the
/// next request, 8 deactivation blocks sign-in, 11 terminating sessions,
/// 16 throttles count before they verify.
pub struct SessionService {
    pub(super) ports: SessionPorts,
    pub(super) policy: std::sync::Arc<crate::policy::Policy>,
}

impl SessionService {
    /// The use cases over these ports and rules.
    #[must_use]
    pub fn new(ports: SessionPorts, policy: std::sync::Arc<crate::policy::Policy>) -> Self {
        Self { ports, policy }
    }
}

/// What a new session knows of its user's second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Factor {
    /// Checked at this sign-in.
    Checked,
    /// Not asked: the user has none, and the policy asks for none.
    NotAsked,
    /// The policy asks for one the user does not have yet.
    EnrolmentOnly,
}

/// What the audit log keeps of an email typed at sign-in: the address if it
/// is one, never the raw text — people type their password into the email
/// field, and the audit log must not keep it.
fn audited_email(typed: &str) -> Option<String> {
    EmailAddress::parse(typed).ok().map(|email| email.as_str().to_owned())
}

impl SessionService {
    /// Signs in with email and password.
    ///
    /// An unknown email, a wrong password and a not yet activated account all
    /// answer [`SignInError::InvalidCredentials`] after one password
    /// verification, so neither the answer nor its timing tells them apart.
    /// A deactivated account is reported only after its password checked out.
    ///
    /// # Errors
    /// See [`SignInError`].
    pub async fn sign_in(
        &self,
        email: &str,
        password: &SecretString,
        context: &RequestContext,
    ) -> Result<SignedIn, SignInError> {
        use crate::telemetry::{Attempt, SignInMethod, password_outcome};
        let mut attempt = Attempt::begin(&*self.ports.meter, SignInMethod::Password);
        let result = self.sign_in_counted(email, password, context).await;
        attempt.outcome = password_outcome(&result);
        result
    }

    async fn sign_in_counted(
        &self,
        email: &str,
        password: &SecretString,
        context: &RequestContext,
    ) -> Result<SignedIn, SignInError> {
        let now = self.ports.clock.now();
        let account_key = crate::sessions::throttle::account_key(email);
        // Counted before the password is verified, atomically: of many
        // attempts sent at once only the free ones reach the verification.
        let policy = &self.policy.throttle;
        let mut keys =
            vec![AttemptKey { key: account_key.clone(), free: policy.free_account_failures }];
        if let Some(ip) = &context.ip {
            keys.push(AttemptKey { key: format!("ip:{ip}"), free: policy.free_ip_failures });
        }
        if let Some(until) = self.ports.throttle.reserve(&keys, now, policy).await? {
            let mut event =
                AuditEvent::new(now, Actor::Anonymous, AuditAction::SignInThrottled, context)
                    .change(Change::detail("until", &until.to_rfc3339()));
            event.target_email = audited_email(email);
            self.ports.audit.append(event).await?;
            let wait = u64::try_from((until - now).num_milliseconds()).unwrap_or(0);
            return Err(SignInError::Throttled { retry_after_secs: wait.div_ceil(1000).max(1) });
        }
        let parsed = EmailAddress::parse(email).ok();
        let found = match &parsed {
            Some(email) => self.ports.sessions.find_credentials(email).await?,
            None => None,
        };
        let hash = found.as_ref().and_then(|(_, hash)| hash.clone());
        let has_password = hash.is_some();
        let password_ok = match self.ports.hasher.verify(password, hash).await {
            Ok(verified) => verified,
            Err(error) => {
                // Not verified (e.g. every hashing slot busy): the attempt
                // does not count.
                for key in &keys {
                    self.ports.throttle.release(&key.key).await?;
                }
                return Err(error.into());
            }
        };
        if password_ok {
            // The attempt counted above was no failure: the account starts
            // over, and the address gets its attempt back.
            self.ports.throttle.clear(&account_key).await?;
            for address in keys.iter().skip(1) {
                self.ports.throttle.release(&address.key).await?;
            }
        }

        let failure = |reason: &str, target: Option<&crate::User>| {
            let mut event =
                AuditEvent::new(now, Actor::Anonymous, AuditAction::SignInFailed, context)
                    .change(Change::detail("reason", reason));
            match target {
                Some(user) => event = event.target(user),
                None => event.target_email = audited_email(email),
            }
            event
        };
        let user = match found {
            Some((user, Some(_))) if password_ok => user,
            Some((user, _)) => {
                // Without a hash `verify` is always false, so only whether
                // there was one tells a wrong password from no password.
                let reason = match (has_password, user.status()) {
                    (true, _) => "wrong_password",
                    (false, UserStatus::Invited) => "not_activated",
                    (false, _) => "no_password",
                };
                self.ports.audit.append(failure(reason, Some(&user))).await?;
                return Err(SignInError::InvalidCredentials);
            }
            None => {
                self.ports.audit.append(failure("unknown_email", None)).await?;
                return Err(SignInError::InvalidCredentials);
            }
        };
        match user.status() {
            UserStatus::Active => {}
            UserStatus::Deactivated => {
                self.ports.audit.append(failure("account_deactivated", Some(&user))).await?;
                return Err(SignInError::AccountDeactivated);
            }
            UserStatus::Invited => {
                self.ports.audit.append(failure("not_activated", Some(&user))).await?;
                return Err(SignInError::InvalidCredentials);
            }
        }

        // With a second factor, the password alone makes no session.
        let mut methods = methods_of(self.ports.mfa.as_ref(), user.id).await?;
        if !methods.is_empty() {
            let token = self.ports.tokens.generate();
            let expires_at = now + SECOND_FACTOR_WAIT;
            self.ports.mfa.begin_sign_in(&token.hash(), user.id, expires_at).await?;
            let webauthn = if methods.contains(&MfaMethod::Webauthn) {
                let purpose = CeremonyPurpose::SignIn;
                self.passkey_challenge(user.id, &token, purpose, expires_at).await?
            } else {
                None
            };
            if webauthn.is_none() {
                methods.retain(|m| *m != MfaMethod::Webauthn);
            }
            return Err(SignInError::SecondFactorRequired(SecondFactorNeeded {
                token,
                methods,
                expires_at,
                webauthn,
            }));
        }
        // Without one where the policy asks for one, the session can only
        // set one up.
        let enrolment_only = self.ports.settings.security_policy().await?.requires(&user);
        let second_factor = if enrolment_only { Factor::EnrolmentOnly } else { Factor::NotAsked };
        Ok(self.start_session(user, "password", second_factor, context).await?)
    }

    /// A session for a user whose sign-in checked out, audited with how.
    async fn start_session(
        &self,
        user: crate::User,
        method: &str,
        second_factor: Factor,
        context: &RequestContext,
    ) -> Result<SignedIn, crate::StoreError> {
        let now = self.ports.clock.now();
        let token = self.ports.tokens.generate();
        let session = Session {
            id: SessionId::generate(),
            user_id: user.id,
            token_hash: token.hash(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.policy.session_absolute_timeout,
            enrolment_only: second_factor == Factor::EnrolmentOnly,
            second_factor_at: (second_factor == Factor::Checked).then_some(now),
        };
        let mut audit =
            AuditEvent::new(now, Actor::user(&user), AuditAction::SignInSucceeded, context)
                .target(&user)
                .change(Change::detail("method", method));
        if session.enrolment_only {
            audit = audit.change(Change::detail("session", "second factor setup only"));
        }
        self.ports.sessions.start(session.clone(), audit).await?;
        // A sign-in makes the user active today (analytics).
        self.ports.usage.mark_active(user.id, now).await?;
        let user = crate::User { last_login_at: Some(now), ..user };
        Ok(SignedIn { token, session, user })
    }

    /// The second step of a password sign-in: the token
    /// [`SignInError::SecondFactorRequired`] gave and a code from the
    /// authenticator app or a recovery code. Wrong codes are counted per
    /// account before they are checked, as wrong passwords are (rule 16),
    /// and leave the sign-in waiting; the right one ends it and makes the
    /// session — once, whatever races it.
    ///
    /// # Errors
    /// See [`SecondFactorError`].
    pub async fn complete_sign_in(
        &self,
        mfa_token: &PlainToken,
        method: MfaMethod,
        code: &str,
        context: &RequestContext,
    ) -> Result<SignedIn, SecondFactorError> {
        use crate::telemetry::{Attempt, SignInMethod, second_factor_outcome};
        let mut attempt = Attempt::begin(&*self.ports.meter, SignInMethod::SecondFactor);
        let result = self.complete_sign_in_counted(mfa_token, method, code, context).await;
        attempt.outcome = second_factor_outcome(&result);
        result
    }

    async fn complete_sign_in_counted(
        &self,
        mfa_token: &PlainToken,
        method: MfaMethod,
        code: &str,
        context: &RequestContext,
    ) -> Result<SignedIn, SecondFactorError> {
        let now = self.ports.clock.now();
        let hash = mfa_token.hash();
        let Some((user_id, until)) = self.ports.mfa.sign_in_waiting(&hash).await? else {
            return Err(SecondFactorError::Expired);
        };
        if now > until {
            return Err(SecondFactorError::Expired);
        }
        let user = self.ports.users.get(user_id).await?;
        let Some(user) = user.filter(|u| u.status() == UserStatus::Active) else {
            return Err(SecondFactorError::Expired);
        };
        let ceremony = Some((&hash, CeremonyPurpose::SignIn));
        match self.check_code(&user, method, code, ceremony, "sign-in", now, context).await? {
            CodeCheck::Throttled { retry_after_secs } => {
                return Err(SecondFactorError::Throttled { retry_after_secs });
            }
            CodeCheck::Refused => return Err(SecondFactorError::WrongCode),
            CodeCheck::Accepted => {}
        }
        if !self.ports.mfa.take_sign_in(&hash).await? {
            // Another request with this token finished it meanwhile.
            return Err(SecondFactorError::Expired);
        }
        if method == MfaMethod::RecoveryCode {
            self.recovery_code_spent(&user, now, context).await?;
        }
        let how = format!("password+{}", method.as_str());
        Ok(self.start_session(user, &how, Factor::Checked, context).await?)
    }

    /// Resolves a session token to the user behind it, as stored right now
    /// (so role changes and deactivation apply to the very next request).
    ///
    /// # Errors
    /// [`AuthenticateError::Unauthenticated`] for an unknown, expired or
    /// ended session, or a user who is no longer active.
    pub async fn authenticate(&self, token: &PlainToken) -> Result<Principal, AuthenticateError> {
        let principal = self.authenticate_for_enrolment(token).await?;
        if principal.enrolment_only() {
            return Err(AuthenticateError::EnrolmentRequired);
        }
        Ok(principal)
    }

    /// [`SessionService::authenticate`] that also resolves a session which
    /// may only set up a second factor (see
    /// [`Principal::enrolment_only`]): for the few requests that do that,
    /// and signing out.
    ///
    /// # Errors
    /// [`AuthenticateError::Unauthenticated`] as for `authenticate`.
    pub async fn authenticate_for_enrolment(
        &self,
        token: &PlainToken,
    ) -> Result<Principal, AuthenticateError> {
        let now = self.ports.clock.now();
        let (session, user) = self
            .ports
            .sessions
            .find(&token.hash())
            .await?
            .ok_or(AuthenticateError::Unauthenticated)?;
        let live = session.validity(now, self.policy.session_idle_timeout) == SessionValidity::Live;
        if !live || user.status() != UserStatus::Active {
            self.ports.sessions.end(session.id, None).await?;
            return Err(AuthenticateError::Unauthenticated);
        }
        if now - session.last_seen_at >= self.policy.session_touch_interval {
            self.ports.sessions.touch(session.id, now).await?;
        }
        Ok(Principal::new(user, &session))
    }

    /// Ends every session of a user at once (rule 11); they must sign in
    /// again. Returns how many sessions ended.
    ///
    /// # Errors
    /// [`GetUserError::NotFound`] for an unknown user.
    pub async fn terminate_sessions(
        &self,
        admin: &Admin,
        id: UserId,
        context: &RequestContext,
    ) -> Result<u64, GetUserError> {
        let user = self.ports.users.get(id).await?.ok_or(GetUserError::NotFound)?;
        let now = self.ports.clock.now();
        let audit = AuditEvent::new(now, admin.actor(), AuditAction::SessionsTerminated, context)
            .target(&user)
            .change(Change::detail("by", "admin"));
        Ok(self.ports.sessions.end_all(user.id, audit).await?)
    }

    /// Until when a user's sign-in is paused by failed attempts, if it is
    /// now (the profile shows it; rule 16 counts the attempts).
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn sign_in_paused_until(
        &self,
        _admin: &Admin,
        user: &crate::users::models::User,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, crate::StoreError> {
        let key = crate::sessions::throttle::account_key(user.email.as_str());
        let policy = &self.policy.throttle;
        let count = self.ports.throttle.failures(&key).await?;
        // Paused: the next attempt would be refused, as sign-in refuses it.
        Ok(policy.admit(count, policy.free_account_failures, self.ports.clock.now()).err())
    }

    /// Lets a user whose sign-in is paused by failed attempts sign in again
    /// now, audited (the guide: "cannot log in"). The pause on the address
    /// they tried from, if any, stays.
    ///
    /// # Errors
    /// [`GetUserError::NotFound`] for an unknown user.
    pub async fn allow_sign_in(
        &self,
        admin: &Admin,
        id: UserId,
        context: &RequestContext,
    ) -> Result<(), GetUserError> {
        let user = self.ports.users.get(id).await?.ok_or(GetUserError::NotFound)?;
        let now = self.ports.clock.now();
        let audit =
            AuditEvent::new(now, admin.actor(), AuditAction::SignInAllowed, context).target(&user);
        let key = crate::sessions::throttle::account_key(user.email.as_str());
        Ok(self.ports.throttle.allow_again(&key, audit).await?)
    }

    /// Signs the caller out everywhere, this session included.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn sign_out_everywhere(
        &self,
        principal: &Principal,
        context: &RequestContext,
    ) -> Result<u64, crate::StoreError> {
        let now = self.ports.clock.now();
        let audit =
            AuditEvent::new(now, principal.actor(), AuditAction::SessionsTerminated, context)
                .target(principal.user())
                .change(Change::detail("by", "self"));
        self.ports.sessions.end_all(principal.user().id, audit).await
    }

    /// Ends the caller's session.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn sign_out(
        &self,
        principal: &Principal,
        context: &RequestContext,
    ) -> Result<(), crate::StoreError> {
        let now = self.ports.clock.now();
        let audit = AuditEvent::new(now, principal.actor(), AuditAction::SignedOut, context)
            .target(principal.user());
        self.ports.sessions.end(principal.session_id(), Some(audit)).await
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use secrecy::SecretString;

    use super::*;
    use crate::testing::TestKit;

    fn pw(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[tokio::test]
    async fn repeated_failures_slow_sign_in_down_until_the_delay_passes() {
        let kit = TestKit::new();
        let ctx = RequestContext {
            ip: Some("203.0.113.7".into()),
            user_agent: None,
            ..RequestContext::default()
        };
        let setup = kit.service.setup.prepare_setup().await.unwrap().unwrap();
        kit.service
            .setup
            .complete_setup(&setup, "root@example.com", "Root", pw("a long admin passphrase"), &ctx)
            .await
            .unwrap();
        for _ in 0..5 {
            let outcome =
                kit.service.sessions.sign_in("root@example.com", &pw("guess"), &ctx).await;
            assert!(matches!(outcome, Err(SignInError::InvalidCredentials)));
        }

        // Even the right password waits now: the answer must not tell.
        let blocked = kit
            .service
            .sessions
            .sign_in("ROOT@example.com", &pw("a long admin passphrase"), &ctx)
            .await;
        assert!(matches!(blocked, Err(SignInError::Throttled { retry_after_secs: 2 })));
        assert!(kit.store.state().audit.iter().any(|e| e.action == AuditAction::SignInThrottled));

        kit.clock.advance(Duration::seconds(2));
        kit.service
            .sessions
            .sign_in("root@example.com", &pw("a long admin passphrase"), &ctx)
            .await
            .unwrap();
        assert!(!kit.store.state().failures.contains_key("account:root@example.com"));
    }

    #[tokio::test]
    async fn a_password_typed_into_the_email_field_never_reaches_the_audit_log() {
        let kit = TestKit::new();
        let ctx = RequestContext::default();
        let _ = kit.service.sessions.sign_in("Hunter2-correct-horse", &pw("whatever"), &ctx).await;
        let _ = kit.service.sessions.sign_in("ghost@example.com", &pw("whatever"), &ctx).await;
        let state = kit.store.state();
        let typed: Vec<_> = state.audit.iter().map(|e| e.target_email.clone()).collect();
        assert_eq!(typed, [None, Some("ghost@example.com".to_owned())]);
    }

    #[tokio::test]
    async fn unknown_emails_are_throttled_exactly_like_known_ones() {
        let kit = TestKit::new();
        let ctx = RequestContext::default();
        for _ in 0..6 {
            let _ = kit.service.sessions.sign_in("ghost@example.com", &pw("guess"), &ctx).await;
        }
        let blocked = kit.service.sessions.sign_in("ghost@example.com", &pw("guess"), &ctx).await;
        assert!(matches!(blocked, Err(SignInError::Throttled { .. })));
    }

    #[tokio::test]
    async fn correct_passwords_from_one_address_never_use_up_its_attempts() {
        let kit = TestKit::new();
        let ctx = RequestContext {
            ip: Some("198.51.100.7".into()),
            user_agent: None,
            ..RequestContext::default()
        };
        let setup = kit.service.setup.prepare_setup().await.unwrap().unwrap();
        kit.service
            .setup
            .complete_setup(&setup, "root@example.com", "Root", pw("a long admin passphrase"), &ctx)
            .await
            .unwrap();
        // An office behind one address: far more sign-ins than the free
        // failures of an address, all correct.
        for _ in 0..50 {
            kit.service
                .sessions
                .sign_in("root@example.com", &pw("a long admin passphrase"), &ctx)
                .await
                .unwrap();
        }
        let count = kit.store.state().failures.get("ip:198.51.100.7").copied();
        assert_eq!(count.map(|c| c.failures), Some(0));
    }

    #[tokio::test]
    async fn one_address_trying_many_accounts_is_throttled_by_its_ip() {
        let kit = TestKit::new();
        let ctx = RequestContext {
            ip: Some("198.51.100.9".into()),
            user_agent: None,
            ..RequestContext::default()
        };
        for i in 0..21 {
            let _ = kit
                .service
                .sessions
                .sign_in(&format!("victim{i}@example.com"), &pw("guess"), &ctx)
                .await;
        }
        let blocked = kit.service.sessions.sign_in("fresh@example.com", &pw("guess"), &ctx).await;
        assert!(matches!(blocked, Err(SignInError::Throttled { .. })));
        let other_ip = RequestContext {
            ip: Some("192.0.2.1".into()),
            user_agent: None,
            ..RequestContext::default()
        };
        let elsewhere =
            kit.service.sessions.sign_in("fresh@example.com", &pw("guess"), &other_ip).await;
        assert!(matches!(elsewhere, Err(SignInError::InvalidCredentials)));
    }
}
