//! First-admin setup through a one-time link.

use secrecy::SecretString;

use crate::audit::models::{Actor, AuditAction, AuditEvent, Change, RequestContext};
use crate::errors::FieldError;
use crate::secrets::{Password, PlainToken};
use crate::setup::errors::SetupError;
use crate::setup::ports::{CompleteSetupStoreError, SetupCompletion};
use crate::users::models::{
    DisplayName, EmailAddress, Role, SignInMethod, User, UserId, UserState,
};

/// The ports SetupService uses, and no others.
#[derive(Clone)]
pub struct SetupPorts {
    /// First-admin setup storage.
    pub setup: std::sync::Arc<dyn crate::setup::ports::SetupRepository>,
    /// Time.
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    /// Randomness.
    pub tokens: std::sync::Arc<dyn crate::secrets::TokenGenerator>,
    /// Password hashing.
    pub hasher: std::sync::Arc<dyn crate::secrets::PasswordHasher>,
}

/// First-admin setup: the one-time setup link and creating the first admin,
/// only while no active admin exists (rule 13, docs/RULES.md: audited).
pub struct SetupService {
    ports: SetupPorts,
    policy: std::sync::Arc<crate::policy::Policy>,
}

impl SetupService {
    /// The use cases over these ports and rules.
    #[must_use]
    pub fn new(ports: SetupPorts, policy: std::sync::Arc<crate::policy::Policy>) -> Self {
        Self { ports, policy }
    }
}

impl SetupService {
    /// On a fresh instance (no active admin) issues a one-time setup link
    /// token, voiding any earlier one. Returns `None` once an admin exists.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn prepare_setup(&self) -> Result<Option<PlainToken>, crate::StoreError> {
        if self.ports.setup.has_active_admin().await? {
            return Ok(None);
        }
        let token = self.ports.tokens.generate();
        let expires_at = self.ports.clock.now() + self.policy.setup_ttl;
        self.ports.setup.replace_setup_token(token.hash(), expires_at).await?;
        Ok(Some(token))
    }

    /// Whether a setup link may still be used.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn setup_link_valid(&self, token: &PlainToken) -> Result<bool, crate::StoreError> {
        if self.ports.setup.has_active_admin().await? {
            return Ok(false);
        }
        self.ports.setup.setup_token_valid(&token.hash(), self.ports.clock.now()).await
    }

    /// Creates the first admin, active, with a password, and consumes the link.
    ///
    /// # Errors
    /// See [`SetupError`].
    pub async fn complete_setup(
        &self,
        token: &PlainToken,
        email: &str,
        name: &str,
        password: SecretString,
        context: &RequestContext,
    ) -> Result<User, SetupError> {
        let email = EmailAddress::parse(email).map_err(|e| FieldError::new("email", e))?;
        let name = DisplayName::parse(name).map_err(|e| FieldError::new("name", e))?;
        let password = Password::new(password)?;
        let now = self.ports.clock.now();
        if !self.ports.setup.setup_token_valid(&token.hash(), now).await? {
            return Err(SetupError::InvalidLink);
        }
        let password_hash = self.ports.hasher.hash(&password).await?;
        let admin = User {
            id: UserId::generate(),
            email,
            name,
            role: Role::Admin,
            state: UserState::Active { activated_at: now },
            sign_in: SignInMethod::Password,
            department: None,
            created_at: now,
            last_login_at: None,
        };
        let audit = AuditEvent::new(now, Actor::Operator, AuditAction::SetupCompleted, context)
            .target(&admin)
            .change(Change::new("role", None, Some("admin")))
            .change(Change::new("status", None, Some("active")));
        let completion = SetupCompletion {
            token_hash: token.hash(),
            at: now,
            admin: admin.clone(),
            password_hash,
            audit,
        };
        match self.ports.setup.complete_setup(completion).await {
            Ok(()) => Ok(admin),
            Err(CompleteSetupStoreError::InvalidToken) => Err(SetupError::InvalidLink),
            Err(CompleteSetupStoreError::AdminExists) => Err(SetupError::AlreadyComplete),
            Err(CompleteSetupStoreError::EmailTaken) => Err(SetupError::EmailTaken),
            Err(CompleteSetupStoreError::Unexpected(e)) => Err(e.into()),
        }
    }
}
