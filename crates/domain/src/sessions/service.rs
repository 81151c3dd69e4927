//! Signing in with a password, resolving a session on each request, signing
//! out.

use secrecy::SecretString;

use crate::audit::models::{Actor, AuditAction, AuditEvent, Change, RequestContext};
use crate::secrets::PlainToken;
use crate::service::UserManagement;
use crate::sessions::errors::{AuthenticateError, SignInError};
use crate::sessions::models::{Principal, Session, SessionId, SessionValidity, SignedIn};
use crate::users::models::{EmailAddress, UserStatus};

impl UserManagement {
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
        let parsed = EmailAddress::parse(email).ok();
        let found = match &parsed {
            Some(email) => self.ports.sessions.find_credentials(email).await?,
            None => None,
        };
        let hash = found.as_ref().and_then(|(_, hash)| hash.clone());
        let password_ok = self.ports.passwords.verify(password, hash).await?;
        let now = self.ports.clock.now();

        let failure = |reason: &str, target: Option<&crate::User>| {
            let mut event =
                AuditEvent::new(now, Actor::Anonymous, AuditAction::SignInFailed, context)
                    .change(Change::detail("reason", reason));
            match target {
                Some(user) => event = event.target(user),
                None => event.target_email = Some(email.trim().chars().take(254).collect()),
            }
            event
        };
        let user = match found {
            Some((user, Some(_))) if password_ok => user,
            Some((user, _)) => {
                let reason = if password_ok { "no_password" } else { "wrong_password" };
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

        let token = self.ports.tokens.generate();
        let session = Session {
            id: SessionId::random(),
            user_id: user.id,
            token_hash: token.hash(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.policy.session_absolute_timeout,
        };
        let audit = AuditEvent::new(now, Actor::user(&user), AuditAction::SignInSucceeded, context)
            .target(&user)
            .change(Change::detail("method", "password"));
        self.ports.sessions.start(session.clone(), audit).await?;
        let user = crate::User { last_login_at: Some(now), ..user };
        Ok(SignedIn { token, session, user })
    }

    /// Resolves a session token to the user behind it, as stored right now
    /// (so role changes and deactivation apply to the very next request).
    ///
    /// # Errors
    /// [`AuthenticateError::Unauthenticated`] for an unknown, expired or
    /// ended session, or a user who is no longer active.
    pub async fn authenticate(&self, token: &PlainToken) -> Result<Principal, AuthenticateError> {
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
        Ok(Principal { user, session_id: session.id })
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
            .target(&principal.user);
        self.ports.sessions.end(principal.session_id, Some(audit)).await
    }
}
