//! Password resets (admin-started) and password changes (self-service).

use secrecy::SecretString;

use crate::access::{Admin, Principal};
use crate::audit::models::{AuditAction, AuditEvent, Change, RequestContext};
use crate::invitations::models::{InvitationState, InvitationStatus};
use crate::mail::models::{MailMessage, OutgoingMail};
use crate::resets::errors::{ChangePasswordError, CompleteResetError, RequestResetError};
use crate::resets::models::PasswordReset;
use crate::resets::ports::{NewReset, PasswordChange, PasswordStoreError};
use crate::secrets::{Password, PlainToken};
use crate::users::models::{SignInMethod, User, UserId, UserStatus};

/// The ports PasswordService uses, and no others.
#[derive(Clone)]
pub struct PasswordPorts {
    /// User storage.
    pub users: std::sync::Arc<dyn crate::users::ports::UserRepository>,
    /// Password resets and password changes.
    pub resets: std::sync::Arc<dyn crate::resets::ports::PasswordRepository>,
    /// Session storage.
    pub sessions: std::sync::Arc<dyn crate::sessions::ports::SessionRepository>,
    /// Time.
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    /// Randomness.
    pub tokens: std::sync::Arc<dyn crate::secrets::TokenGenerator>,
    /// Password hashing.
    pub hasher: std::sync::Arc<dyn crate::secrets::PasswordHasher>,
    /// Sign-in attempt counts: a completed reset lifts a pause.
    pub throttle: std::sync::Arc<dyn crate::sessions::throttle::ThrottleRepository>,
}

/// Password resets (requested by the user or sent by an admin) and password
/// changes. Rule 10 (docs/RULES.md): the reset link, the old password
/// working until it is completed, other sessions ended.
pub struct PasswordService {
    ports: PasswordPorts,
    policy: std::sync::Arc<crate::policy::Policy>,
}

impl PasswordService {
    /// The use cases over these ports and rules.
    #[must_use]
    pub fn new(ports: PasswordPorts, policy: std::sync::Arc<crate::policy::Policy>) -> Self {
        Self { ports, policy }
    }
}

/// What a reset link means right now, for the reset page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResetLookup {
    /// Usable.
    Pending {
        /// Whose password.
        user: User,
        /// Status with the expiry.
        status: InvitationStatus,
    },
    /// Its time ran out.
    Expired(InvitationStatus),
    /// Unknown, used or replaced.
    Invalid,
}

impl PasswordService {
    /// Emails the user a single-use 72-hour link to choose a new password.
    /// The current password keeps working until the link is used (rule 10).
    ///
    /// # Errors
    /// See [`RequestResetError`]; SSO users are refused (rule 6).
    pub async fn request_password_reset(
        &self,
        admin: &Admin,
        id: UserId,
        context: &RequestContext,
    ) -> Result<PasswordReset, RequestResetError> {
        let user = self.ports.users.get(id).await?.ok_or(RequestResetError::NotFound)?;
        if user.sign_in == SignInMethod::Sso {
            return Err(RequestResetError::SsoUser);
        }
        if user.status() != UserStatus::Active {
            return Err(RequestResetError::NotActive(user.status()));
        }
        let now = self.ports.clock.now();
        let token = self.ports.tokens.generate();
        let reset = PasswordReset {
            id: crate::record_id(),
            user_id: user.id,
            token_hash: token.hash(),
            created_at: now,
            expires_at: now + self.policy.invitation_ttl,
            state: InvitationState::Pending,
        };
        let mail = OutgoingMail {
            id: crate::record_id(),
            user_id: Some(user.id),
            to: user.email.clone(),
            to_name: user.name.clone(),
            message: MailMessage::PasswordReset { token, expires_at: reset.expires_at },
            created_at: now,
        };
        let audit =
            AuditEvent::new(now, admin.actor(), AuditAction::PasswordResetRequested, context)
                .target(&user)
                .change(Change::detail("expires_at", &reset.expires_at.to_rfc3339()));
        match self.ports.resets.issue_reset(NewReset { reset: reset.clone(), mail, audit }).await {
            Ok(()) => Ok(reset),
            Err(PasswordStoreError::NoLongerApplicable) => {
                Err(RequestResetError::NotActive(UserStatus::Deactivated))
            }
            Err(PasswordStoreError::Unexpected(e)) => Err(e.into()),
        }
    }

    /// Looks at a reset link without using it.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn look_up_reset(
        &self,
        token: &PlainToken,
    ) -> Result<ResetLookup, crate::StoreError> {
        let now = self.ports.clock.now();
        Ok(match self.ports.resets.find_reset(&token.hash()).await? {
            None => ResetLookup::Invalid,
            Some((reset, user)) => match reset.status_at(now) {
                status @ InvitationStatus::Pending { .. }
                    if user.status() == UserStatus::Active =>
                {
                    ResetLookup::Pending { user, status }
                }
                status @ InvitationStatus::Expired { .. } => ResetLookup::Expired(status),
                _ => ResetLookup::Invalid,
            },
        })
    }

    /// Uses a reset link: sets the new password and ends every session of
    /// the user.
    ///
    /// # Errors
    /// See [`CompleteResetError`].
    pub async fn complete_password_reset(
        &self,
        token: &PlainToken,
        password: SecretString,
        context: &RequestContext,
    ) -> Result<User, CompleteResetError> {
        let now = self.ports.clock.now();
        let (reset, user) = self
            .ports
            .resets
            .find_reset(&token.hash())
            .await?
            .ok_or(CompleteResetError::Invalid)?;
        match reset.status_at(now) {
            InvitationStatus::Pending { .. } if user.status() == UserStatus::Active => {}
            InvitationStatus::Expired { expired_at } => {
                return Err(CompleteResetError::Expired { expired_at });
            }
            _ => return Err(CompleteResetError::Invalid),
        }
        let password = Password::new(password)?;
        let password_hash = self.ports.hasher.hash(&password).await?;
        let audit = AuditEvent::new(
            now,
            crate::Actor::user(&user),
            AuditAction::PasswordResetCompleted,
            context,
        )
        .target(&user);
        let change = PasswordChange {
            user_id: user.id,
            password_hash,
            reset_id: Some(reset.id),
            keep_session: None,
            at: now,
            audit,
        };
        match self.ports.resets.set_password(change).await {
            Ok(()) => {
                // Whoever reset the password may sign in with it at once: a
                // pause after failed attempts on the account is lifted. The
                // password is set already, so a failure here must not say
                // otherwise: the pause then simply runs out (15 minutes at
                // most).
                let key = crate::sessions::throttle::account_key(user.email.as_str());
                let _lifted = self.ports.throttle.clear(&key).await;
                Ok(user)
            }
            Err(PasswordStoreError::NoLongerApplicable) => Err(CompleteResetError::Invalid),
            Err(PasswordStoreError::Unexpected(e)) => Err(e.into()),
        }
    }

    /// Changes the caller's own password; their other sessions end.
    ///
    /// # Errors
    /// See [`ChangePasswordError`].
    pub async fn change_own_password(
        &self,
        principal: &Principal,
        current: &SecretString,
        new: SecretString,
        context: &RequestContext,
    ) -> Result<(), ChangePasswordError> {
        let user = principal.user();
        if user.sign_in == SignInMethod::Sso {
            return Err(ChangePasswordError::SsoUser);
        }
        let stored = self.ports.sessions.find_credentials(&user.email).await?.and_then(|(_, h)| h);
        if !self.ports.hasher.verify(current, stored).await? {
            return Err(ChangePasswordError::WrongPassword);
        }
        let password = Password::new(new)?;
        let password_hash = self.ports.hasher.hash(&password).await?;
        let now = self.ports.clock.now();
        let audit = AuditEvent::new(now, principal.actor(), AuditAction::PasswordChanged, context)
            .target(user);
        let change = PasswordChange {
            user_id: user.id,
            password_hash,
            reset_id: None,
            keep_session: Some(principal.session_id()),
            at: now,
            audit,
        };
        match self.ports.resets.set_password(change).await {
            Ok(()) => Ok(()),
            Err(PasswordStoreError::NoLongerApplicable) => Err(ChangePasswordError::WrongPassword),
            Err(PasswordStoreError::Unexpected(e)) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;
    use crate::invitations::service::InviteRequest;
    use crate::testing::TestKit;

    async fn admin_and_user(kit: &TestKit) -> (Admin, UserId) {
        let ctx = RequestContext::default();
        let setup = kit.service.setup.prepare_setup().await.unwrap().unwrap();
        let pw = || SecretString::from("a long admin passphrase".to_owned());
        kit.service
            .setup
            .complete_setup(&setup, "root@example.com", "Root", pw(), &ctx)
            .await
            .unwrap();
        // Not about second factors: admins need none here.
        kit.store.state().security_policy.admin_mfa = crate::mfa::policy::AdminMfa::Optional;
        let signed_in =
            kit.service.sessions.sign_in("root@example.com", &pw(), &ctx).await.unwrap();
        let admin =
            kit.service.sessions.authenticate(&signed_in.token).await.unwrap().admin().unwrap();
        let request = InviteRequest {
            email: "sso@example.com".into(),
            name: "Sso".into(),
            role: "user".into(),
            department: None,
            sign_in: None,
        };
        let invited = kit.service.invitations.invite_user(&admin, &request, &ctx).await.unwrap();
        (admin, invited.user.id)
    }

    #[tokio::test]
    async fn a_password_reset_is_refused_for_sso_users() {
        let kit = TestKit::new();
        let (admin, id) = admin_and_user(&kit).await;
        {
            let mut state = kit.store.state();
            let user = state.users.get_mut(&id).unwrap();
            user.sign_in = SignInMethod::Sso;
            user.state =
                crate::UserState::Active { activated_at: crate::Clock::now(kit.clock.as_ref()) };
        }

        let outcome = kit
            .service
            .passwords
            .request_password_reset(&admin, id, &RequestContext::default())
            .await;

        assert!(matches!(outcome, Err(RequestResetError::SsoUser)));
        assert!(kit.store.state().resets.is_empty());
    }
}
