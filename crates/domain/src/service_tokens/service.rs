//! Creating, listing, revoking and checking service tokens.

use chrono::Duration;
use uuid::Uuid;

use crate::access::{Admin, ServiceCaller};
use crate::analytics::errors::{ServiceAuthError, ServiceTokenError};
use crate::analytics::models::{ServiceToken, TokenScope, valid_name};
use crate::audit::models::{AuditAction, AuditEvent, Change, RequestContext};
use crate::errors::StoreError;
use crate::secrets::PlainToken;

/// The ports ServiceTokenService uses, and no others.
#[derive(Clone)]
pub struct ServiceTokenPorts {
    /// Service tokens.
    pub service_tokens: std::sync::Arc<dyn crate::analytics::ports::ServiceTokenRepository>,
    /// Time.
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    /// Randomness.
    pub tokens: std::sync::Arc<dyn crate::secrets::TokenGenerator>,
    /// Second factors: the actions that need a recent check ask whether
    /// the admin has one (step-up).
    pub mfa: std::sync::Arc<dyn crate::mfa::ports::MfaRepository>,
}

/// Service tokens for the services that report usage: create (shown once),
/// list, revoke, check. Rule 17 (docs/RULES.md): kept only as digests.
pub struct ServiceTokenService {
    ports: ServiceTokenPorts,
}

impl ServiceTokenService {
    /// The use cases over these ports and rules.
    #[must_use]
    pub fn new(ports: ServiceTokenPorts) -> Self {
        Self { ports }
    }
}

/// A service token just created, with its secret (shown this once).
#[derive(Debug)]
pub struct IssuedServiceToken {
    /// The token.
    pub token: ServiceToken,
    /// The secret to give the reporting service.
    pub secret: PlainToken,
}

/// Secrets of service tokens start with this, so that a leaked one is
/// recognised (secret scanners) and never confused with a session.
pub const SERVICE_TOKEN_PREFIX: &str = "sat_";

impl ServiceTokenService {
    /// Creates a service token named `name` opening `scopes` (`None`:
    /// usage reporting); its secret is returned once and stored only as a
    /// digest. Audited.
    ///
    /// # Errors
    /// [`ServiceTokenError::InvalidName`], [`ServiceTokenError::InvalidScopes`].
    pub async fn create_service_token(
        &self,
        admin: &Admin,
        name: &str,
        scopes: Option<&[String]>,
        context: &RequestContext,
    ) -> Result<IssuedServiceToken, ServiceTokenError> {
        let now = self.ports.clock.now();
        admin.require_recent_factor(self.ports.mfa.as_ref(), now).await?;
        let name = name.trim();
        if !valid_name(name) {
            return Err(ServiceTokenError::InvalidName);
        }
        let scopes = TokenScope::parse_list(scopes).map_err(ServiceTokenError::InvalidScopes)?;
        let secret = PlainToken::presented(format!(
            "{SERVICE_TOKEN_PREFIX}{}",
            self.ports.tokens.generate().expose()
        ));
        let token = ServiceToken {
            id: crate::record_id(),
            name: name.to_owned(),
            created_by: Some(admin.user().id),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
            scopes,
        };
        let scope_names: Vec<&str> = token.scopes.iter().map(|s| s.as_str()).collect();
        let audit = AuditEvent::new(now, admin.actor(), AuditAction::ServiceTokenCreated, context)
            .change(Change::new("service_token", None, Some(&token.id.to_string())))
            .change(Change::new("name", None, Some(name)))
            .change(Change::new("scopes", None, Some(&scope_names.join(" "))));
        self.ports.service_tokens.insert_service_token(token.clone(), secret.hash(), audit).await?;
        Ok(IssuedServiceToken { token, secret })
    }

    /// Every service token (never a secret), newest first.
    ///
    /// # Errors
    /// [`StoreError`] on failure.
    pub async fn service_tokens(&self, _admin: &Admin) -> Result<Vec<ServiceToken>, StoreError> {
        self.ports.service_tokens.service_tokens().await
    }

    /// Revokes a service token: it authenticates nothing from now on.
    /// Audited once; revoking again changes nothing.
    ///
    /// # Errors
    /// [`ServiceTokenError::NotFound`].
    pub async fn revoke_service_token(
        &self,
        admin: &Admin,
        id: Uuid,
        context: &RequestContext,
    ) -> Result<ServiceToken, ServiceTokenError> {
        let now = self.ports.clock.now();
        let audit = AuditEvent::new(now, admin.actor(), AuditAction::ServiceTokenRevoked, context)
            .change(Change::new("service_token", Some(&id.to_string()), None));
        self.ports
            .service_tokens
            .revoke_service_token(id, now, audit)
            .await?
            .ok_or(ServiceTokenError::NotFound)
    }

    /// Checks a service token presented with a request for what `scope`
    /// opens.
    ///
    /// # Errors
    /// [`ServiceAuthError::InvalidToken`] for a missing, unknown or revoked
    /// token, all alike; [`ServiceAuthError::MissingScope`] for a valid
    /// token without `scope`.
    pub async fn authenticate_service(
        &self,
        presented: &PlainToken,
        scope: TokenScope,
    ) -> Result<ServiceCaller, ServiceAuthError> {
        if !presented.expose().starts_with(SERVICE_TOKEN_PREFIX) {
            return Err(ServiceAuthError::InvalidToken);
        }
        let token = self
            .ports
            .service_tokens
            .service_token_by_hash(&presented.hash())
            .await?
            .filter(ServiceToken::is_active)
            .ok_or(ServiceAuthError::InvalidToken)?;
        if !token.allows(scope) {
            return Err(ServiceAuthError::MissingScope { scope });
        }
        let now = self.ports.clock.now();
        if token.last_used_at.is_none_or(|at| now - at >= Duration::minutes(1)) {
            self.ports.service_tokens.touch_service_token(token.id, now).await?;
        }
        Ok(ServiceCaller::new(token))
    }
}
