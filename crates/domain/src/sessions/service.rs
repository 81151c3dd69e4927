//! Signing in with a password, resolving a session on each request, signing
//! out.

use secrecy::SecretString;

use crate::audit::models::{Actor, AuditAction, AuditEvent, Change, RequestContext};
use crate::secrets::PlainToken;
use crate::service::UserManagement;
use crate::sessions::errors::{AuthenticateError, SignInError};
use crate::sessions::models::{Admin, Principal, Session, SessionId, SessionValidity, SignedIn};
use crate::users::errors::GetUserError;
use crate::users::models::{EmailAddress, UserId, UserStatus};

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
                .target(&principal.user)
                .change(Change::detail("by", "self"));
        self.ports.sessions.end_all(principal.user.id, audit).await
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
