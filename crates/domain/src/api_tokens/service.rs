//! Creating, listing, revoking and checking personal API tokens.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::access::{ApiScope, Principal, TokenGrant};
use crate::api_tokens::errors::{ApiTokenAuthError, ApiTokenError};
use crate::api_tokens::models::{
    ApiToken, ApiTokenStatus, DEFAULT_LIFETIME_DAYS, ListedApiToken, MAX_LIFETIME_DAYS,
    MAX_TOKENS_PER_USER, NewApiToken, secret_from, valid_name, well_formed,
};
use crate::api_tokens::ports::ApiTokenRepository;
use crate::audit::models::{Actor, AuditAction, AuditEvent, Change, RequestContext};
use crate::errors::StoreError;
use crate::secrets::PlainToken;

/// The ports ApiTokenService uses, and no others.
#[derive(Clone)]
pub struct ApiTokenPorts {
    /// The tokens.
    pub api_tokens: Arc<dyn ApiTokenRepository>,
    /// The owners, read fresh at every use.
    pub users: Arc<dyn crate::users::ports::UserRepository>,
    /// Second factors: creating a token needs a recent check (step-up);
    /// an owner the policy asks for one must have it.
    pub mfa: Arc<dyn crate::mfa::ports::MfaRepository>,
    /// The security policy.
    pub settings: Arc<dyn crate::settings::ports::SettingsRepository>,
    /// Time.
    pub clock: Arc<dyn crate::clock::Clock>,
    /// Randomness.
    pub tokens: Arc<dyn crate::secrets::TokenGenerator>,
}

/// Personal API tokens for admins' scripts (issue 24).
pub struct ApiTokenService {
    ports: ApiTokenPorts,
}

/// A token just created, with its secret (shown this once).
#[derive(Debug)]
pub struct IssuedApiToken {
    /// The token.
    pub token: ApiToken,
    /// The secret: `sai_pat_…`.
    pub secret: PlainToken,
}

/// How often a token's last use is written: once a minute at most, or
/// when the address changes.
const TOUCH_EVERY: Duration = Duration::minutes(1);

impl ApiTokenService {
    /// The use cases over these ports.
    #[must_use]
    pub fn new(ports: ApiTokenPorts) -> Self {
        Self { ports }
    }

    /// Creates a token for the signed-in admin: its secret is returned
    /// once and kept only as a digest. Needs a session (a token makes
    /// none) and, when the admin has a second factor, a check from the
    /// last ten minutes. Audited as `api_token.created` (id, name, scopes,
    /// expiry; never the secret).
    ///
    /// # Errors
    /// See [`ApiTokenError`].
    pub async fn create(
        &self,
        principal: &Principal,
        new: &NewApiToken,
        context: &RequestContext,
    ) -> Result<IssuedApiToken, ApiTokenError> {
        if principal.token().is_some() {
            return Err(ApiTokenError::Forbidden);
        }
        let admin = principal.admin().map_err(|_| ApiTokenError::Forbidden)?;
        let now = self.ports.clock.now();
        let name = new.name.trim();
        if !valid_name(name) {
            return Err(ApiTokenError::InvalidName);
        }
        let days = new.expires_in_days.unwrap_or(DEFAULT_LIFETIME_DAYS);
        if !(1..=MAX_LIFETIME_DAYS).contains(&days) {
            return Err(ApiTokenError::InvalidLifetime);
        }
        let scopes = parse_scopes(&new.scopes)?;
        admin.require_recent_factor(self.ports.mfa.as_ref(), now).await?;
        let user = admin.user();
        let live = self.ports.api_tokens.api_tokens(Some(user.id)).await?;
        if live.iter().filter(|t| t.is_live(now)).count() >= MAX_TOKENS_PER_USER {
            return Err(ApiTokenError::TooMany);
        }
        let secret = PlainToken::presented(secret_from(self.ports.tokens.generate().expose()));
        let token = ApiToken {
            id: crate::record_id(),
            user_id: user.id,
            name: name.to_owned(),
            scopes,
            created_at: now,
            expires_at: now + Duration::days(i64::from(days)),
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
        };
        let names: Vec<&str> = token.scopes.iter().map(|s| s.as_str()).collect();
        let audit = AuditEvent::new(now, admin.actor(), AuditAction::ApiTokenCreated, context)
            .target(user)
            .change(Change::new("api_token", None, Some(&token.id.to_string())))
            .change(Change::new("name", None, Some(name)))
            .change(Change::new("scopes", None, Some(&names.join(" "))))
            .change(Change::new("expires_at", None, Some(&token.expires_at.to_rfc3339())));
        self.ports.api_tokens.insert_api_token(token.clone(), secret.hash(), audit).await?;
        Ok(IssuedApiToken { token, secret })
    }

    /// The signed-in user's tokens, newest first (never a secret).
    ///
    /// # Errors
    /// A store failure.
    pub async fn own_tokens(
        &self,
        principal: &Principal,
    ) -> Result<Vec<ListedApiToken>, StoreError> {
        let now = self.ports.clock.now();
        let tokens = self.ports.api_tokens.api_tokens(Some(principal.user().id)).await?;
        let admin = principal.user().is_active_admin();
        Ok(tokens
            .into_iter()
            .map(|token| ListedApiToken {
                status: status(&token, admin, now),
                token,
                owner_email: None,
            })
            .collect())
    }

    /// Everyone's tokens with their owners' emails, newest first: for
    /// admins (Settings › API tokens).
    ///
    /// # Errors
    /// [`ApiTokenError::Forbidden`] for anyone but an admin's session.
    pub async fn all_tokens(
        &self,
        principal: &Principal,
    ) -> Result<Vec<ListedApiToken>, ApiTokenError> {
        principal.admin().map_err(|_| ApiTokenError::Forbidden)?;
        let now = self.ports.clock.now();
        let tokens = self.ports.api_tokens.api_tokens(None).await?;
        let mut owners = std::collections::HashMap::new();
        let mut listed = Vec::with_capacity(tokens.len());
        for token in tokens {
            let (owner_email, admin) = match owners.get(&token.user_id) {
                Some(known) => Clone::clone(known),
                None => {
                    let owner = self.ports.users.get(token.user_id).await?;
                    let admin =
                        owner.as_ref().is_some_and(crate::users::models::User::is_active_admin);
                    let known = (owner.map(|u| u.email.to_string()), admin);
                    owners.insert(token.user_id, known.clone());
                    known
                }
            };
            let status = status(&token, admin, now);
            listed.push(ListedApiToken { status, token, owner_email });
        }
        Ok(listed)
    }

    /// Revokes a token: its owner may revoke their own, an admin anyone's.
    /// It opens nothing from the next request on, on every instance.
    /// Audited once as `api_token.revoked`.
    ///
    /// # Errors
    /// [`ApiTokenError::NotFound`] for an unknown token, one already
    /// revoked, or another's (for a non-admin).
    pub async fn revoke(
        &self,
        principal: &Principal,
        id: Uuid,
        context: &RequestContext,
    ) -> Result<ApiToken, ApiTokenError> {
        let owner = match principal.admin() {
            Ok(_) => None,
            Err(_) => Some(principal.user().id),
        };
        self.revoke_of(principal, id, owner, context).await
    }

    /// Revokes one of the caller's own tokens (`DELETE /me/tokens/{id}`):
    /// another's is [`ApiTokenError::NotFound`], even for an admin.
    ///
    /// # Errors
    /// [`ApiTokenError::NotFound`].
    pub async fn revoke_own(
        &self,
        principal: &Principal,
        id: Uuid,
        context: &RequestContext,
    ) -> Result<ApiToken, ApiTokenError> {
        self.revoke_of(principal, id, Some(principal.user().id), context).await
    }

    /// Revokes `id` if it is `owner`'s (`None`: anyone's), audited with
    /// its holder as the target.
    async fn revoke_of(
        &self,
        principal: &Principal,
        id: Uuid,
        owner: Option<crate::users::models::UserId>,
        context: &RequestContext,
    ) -> Result<ApiToken, ApiTokenError> {
        let now = self.ports.clock.now();
        let holder = self.ports.api_tokens.api_tokens(owner).await?;
        let holder = match holder.iter().find(|t| t.id == id) {
            Some(token) => self.ports.users.get(token.user_id).await?,
            None => return Err(ApiTokenError::NotFound),
        };
        let audit = AuditEvent::new(now, principal.actor(), AuditAction::ApiTokenRevoked, context)
            .change(Change::new("api_token", Some(&id.to_string()), None))
            .change(Change::detail("reason", "revoked"));
        let audit = match &holder {
            Some(user) => audit.target(user),
            None => audit,
        };
        self.ports
            .api_tokens
            .revoke_api_token(id, owner, now, audit)
            .await?
            .ok_or(ApiTokenError::NotFound)
    }

    /// Checks a token presented with a request: a malformed one is refused
    /// without a read; an unknown, expired or revoked one alike. Its owner
    /// is read now: a token whose owner is no longer an active admin (the
    /// role its scopes need) is revoked on the spot (audited, reason
    /// `owner_lost_access`) and refused, whichever instance sees it first.
    /// The use is recorded (once a minute, or from a new address).
    ///
    /// # Errors
    /// [`ApiTokenAuthError::Invalid`], all alike.
    pub async fn authenticate(
        &self,
        presented: &PlainToken,
        context: &RequestContext,
    ) -> Result<Principal, ApiTokenAuthError> {
        if !well_formed(presented.expose()) {
            return Err(ApiTokenAuthError::Invalid);
        }
        let now = self.ports.clock.now();
        let token = self
            .ports
            .api_tokens
            .api_token_by_hash(&presented.hash())
            .await?
            .filter(|t| t.is_live(now))
            .ok_or(ApiTokenAuthError::Invalid)?;
        let owner = self.ports.users.get(token.user_id).await?;
        let owner = match owner {
            Some(owner) if owner.is_active_admin() => owner,
            other => {
                self.disable(&token, other.as_ref(), now, context).await?;
                return Err(ApiTokenAuthError::Invalid);
            }
        };
        // As their sessions: an owner the policy asks for a second factor
        // (after a reset, say) must set one up before a token works again.
        if self.ports.settings.security_policy().await?.requires(&owner)
            && crate::mfa::check::methods_of(self.ports.mfa.as_ref(), owner.id).await?.is_empty()
        {
            return Err(ApiTokenAuthError::EnrolmentRequired);
        }
        if needs_touch(&token, now, context.ip.as_deref()) {
            self.ports.api_tokens.touch_api_token(token.id, now, context.ip.clone()).await?;
        }
        let grant = TokenGrant { id: token.id, name: token.name, scopes: token.scopes };
        Ok(Principal::via_token(owner, grant))
    }

    async fn disable(
        &self,
        token: &ApiToken,
        owner: Option<&crate::users::models::User>,
        now: DateTime<Utc>,
        context: &RequestContext,
    ) -> Result<(), StoreError> {
        // The token itself presented the request that revoked it.
        let actor = match owner {
            Some(owner) => Actor::UserToken {
                id: owner.id,
                email: owner.email.clone(),
                token_id: token.id,
                name: token.name.clone(),
            },
            None => Actor::Anonymous,
        };
        let audit = AuditEvent::new(now, actor, AuditAction::ApiTokenRevoked, context)
            .change(Change::new("api_token", Some(&token.id.to_string()), None))
            .change(Change::detail("reason", "owner_lost_access"));
        let audit = match owner {
            Some(owner) => audit.target(owner),
            None => audit,
        };
        self.ports.api_tokens.revoke_api_token(token.id, None, now, audit).await?;
        Ok(())
    }
}

/// Where a token stands, its owner's role considered: a live token of
/// someone no longer an active admin is disabled (revoked at its next use).
fn status(token: &ApiToken, owner_is_admin: bool, now: DateTime<Utc>) -> ApiTokenStatus {
    match token.status(now) {
        ApiTokenStatus::Active if !owner_is_admin => ApiTokenStatus::Disabled,
        other => other,
    }
}

fn needs_touch(token: &ApiToken, now: DateTime<Utc>, ip: Option<&str>) -> bool {
    token.last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY)
        || token.last_used_ip.as_deref() != ip
}

fn parse_scopes(names: &[String]) -> Result<Vec<ApiScope>, ApiTokenError> {
    if names.is_empty() {
        return Err(ApiTokenError::InvalidScopes(String::new()));
    }
    if names.len() > ApiScope::ALL.len() * 2 {
        return Err(ApiTokenError::InvalidScopes(" (too many named)".to_owned()));
    }
    let mut scopes = Vec::new();
    for name in names {
        let Some(scope) = ApiScope::parse(name.trim()) else {
            let shown: String = name.chars().take(40).filter(|c| !c.is_control()).collect();
            return Err(ApiTokenError::InvalidScopes(format!(" (not a scope: `{shown}`)")));
        };
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    scopes.sort();
    Ok(scopes)
}
