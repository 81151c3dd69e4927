//! Capabilities: proof of who is calling, handed out only by the use cases
//! that verified it. [`Principal`] comes from a session the domain resolved
//! (or a personal API token it checked, limited to the token's
//! [`ApiScope`]s),
//! [`Admin`] from a principal who is an active admin right now,
//! [`ServiceCaller`] from a service token the domain checked. Their fields
//! are private and they have no public constructor, so a crate that embeds
//! the domain cannot make one by hand — it asks the domain:
//!
//! ```
//! # use secureai_domain::access::Admin;
//! # use secureai_domain::sessions::service::SessionService;
//! # use secureai_domain::PlainToken;
//! async fn admin_behind(sessions: &SessionService, token: &PlainToken) -> Option<Admin> {
//!     let principal = sessions.authenticate(token).await.ok()?; // a live session, resolved now
//!     principal.admin().ok() // an active admin right now, else `Forbidden`
//! }
//! // The types the snippets below take resolve: each fails only at its forging line.
//! # #[allow(dead_code)]
//! # fn inputs(
//! #     _: secureai_domain::User,
//! #     _: secureai_domain::sessions::models::SessionId,
//! #     _: secureai_domain::analytics::models::ServiceToken,
//! # ) {
//! # }
//! ```
//!
//! Each of these fails to compile outside the crate:
//!
//! ```compile_fail,E0451
//! # use secureai_domain::access::Principal;
//! # fn forge(user: secureai_domain::User, session_id: secureai_domain::sessions::models::SessionId) {
//! let principal = Principal { user, session_id, enrolment_only: false, second_factor_at: None, token: None }; // fields are private
//! # }
//! ```
//!
//! ```compile_fail,E0624
//! # use secureai_domain::access::Principal;
//! # fn forge(user: secureai_domain::User, session_id: secureai_domain::sessions::models::SessionId) {
//! let principal = Principal::new(user, todo!()); // crate-private
//! # }
//! ```
//!
//! ```compile_fail,E0451
//! # use secureai_domain::access::Admin;
//! # fn forge(user: secureai_domain::User) -> Admin {
//! Admin { user, second_factor_at: None, token: None } // only Principal::admin makes one
//! # }
//! ```
//!
//! ```compile_fail,E0624
//! # use secureai_domain::access::ServiceCaller;
//! # fn forge(token: secureai_domain::analytics::models::ServiceToken) -> ServiceCaller {
//! ServiceCaller::new(token) // only a checked service token makes one
//! # }
//! ```

use crate::analytics::models::ServiceToken;
use crate::audit::models::Actor;
use chrono::{DateTime, Utc};

use crate::sessions::models::{Session, SessionId};
use crate::users::models::{Permission, Role, User};

/// What a personal API token may do. Each opens requests an admin's
/// session may make; a token never does more than its owner's role allows
/// now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiScope {
    /// Read users (list, profiles, export).
    UsersRead,
    /// Invite, change, deactivate, reactivate, import users.
    UsersWrite,
    /// Read the audit log.
    AuditRead,
    /// Read usage analytics.
    AnalyticsRead,
    /// Change settings (those that need a recent second-factor check stay
    /// out of reach: a token has none).
    SettingsWrite,
}

impl ApiScope {
    /// Every scope, in the order the API lists them.
    pub const ALL: [ApiScope; 5] = [
        Self::UsersRead,
        Self::UsersWrite,
        Self::AuditRead,
        Self::AnalyticsRead,
        Self::SettingsWrite,
    ];

    /// The stable name (`users:read`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsersRead => "users:read",
            Self::UsersWrite => "users:write",
            Self::AuditRead => "audit:read",
            Self::AnalyticsRead => "analytics:read",
            Self::SettingsWrite => "settings:write",
        }
    }

    /// Parses a stable name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// The personal API token behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// The token's id.
    pub id: uuid::Uuid,
    /// Its name.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<ApiScope>,
}

/// Who is behind a request: resolved from the session on every request, so a
/// role change or deactivation applies to the very next request (rule 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    user: User,
    session_id: SessionId,
    enrolment_only: bool,
    second_factor_at: Option<DateTime<Utc>>,
    token: Option<TokenGrant>,
}

/// The caller is not allowed to do this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this action needs the admin role")]
pub struct Forbidden;

impl Principal {
    /// The principal of a session the domain just resolved: only
    /// [`crate::sessions::service::SessionService::authenticate`] calls it.
    pub(crate) fn new(user: User, session: &Session) -> Self {
        Self {
            user,
            session_id: session.id,
            enrolment_only: session.enrolment_only,
            second_factor_at: session.second_factor_at,
            token: None,
        }
    }

    /// The principal of a personal API token the domain just checked:
    /// only [`crate::api_tokens::service::ApiTokenService::authenticate`]
    /// calls it. It has no session (its session id names none) and no
    /// second-factor check, so what needs a recent one stays closed.
    pub(crate) fn via_token(user: User, grant: TokenGrant) -> Self {
        Self {
            user,
            session_id: SessionId::from_uuid(grant.id),
            enrolment_only: false,
            second_factor_at: None,
            token: Some(grant),
        }
    }

    /// The personal API token behind the request, if it is one.
    pub fn token(&self) -> Option<&TokenGrant> {
        self.token.as_ref()
    }

    /// Refuses a request a token without `scope` makes; a session may make
    /// any (its role decides).
    ///
    /// # Errors
    /// [`Forbidden`] for a token without the scope.
    pub fn require_scope(&self, scope: ApiScope) -> Result<(), Forbidden> {
        match &self.token {
            Some(grant) if !grant.scopes.contains(&scope) => Err(Forbidden),
            _ => Ok(()),
        }
    }

    /// Whether the session may only set up a second factor: the security
    /// policy asks the user for one and they had none when they signed in.
    /// [`crate::sessions::service::SessionService::authenticate`] refuses
    /// such sessions; only `authenticate_for_enrolment` resolves them.
    pub fn enrolment_only(&self) -> bool {
        self.enrolment_only
    }

    /// When the user last passed a second-factor check in this session.
    pub fn second_factor_at(&self) -> Option<DateTime<Utc>> {
        self.second_factor_at
    }

    /// The user, as stored when the session was resolved.
    pub fn user(&self) -> &User {
        &self.user
    }

    /// The session used.
    pub fn session_id(&self) -> SessionId {
        self.session_id
    }

    /// The permissions of the user's current role.
    pub fn permissions(&self) -> &'static [Permission] {
        self.user.role.permissions()
    }

    /// The admin capability, if the user is an active admin and the
    /// session is not limited to setting up a second factor.
    ///
    /// # Errors
    /// [`Forbidden`] for anyone else.
    pub fn admin(&self) -> Result<Admin, Forbidden> {
        if self.user.is_active_admin() && !self.enrolment_only {
            Ok(Admin {
                user: self.user.clone(),
                second_factor_at: self.second_factor_at,
                token: self.token.clone(),
            })
        } else {
            Err(Forbidden)
        }
    }

    /// The audit actor for this principal (with the token's id and name
    /// when a token made the request).
    pub fn actor(&self) -> Actor {
        actor_of(&self.user, self.token.as_ref())
    }
}

/// Proof that the caller is an active admin. Only [`Principal::admin`] makes
/// one, so code without it cannot call admin operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    user: User,
    second_factor_at: Option<DateTime<Utc>>,
    token: Option<TokenGrant>,
}

fn actor_of(user: &User, token: Option<&TokenGrant>) -> Actor {
    match token {
        Some(grant) => Actor::UserToken {
            id: user.id,
            email: user.email.clone(),
            token_id: grant.id,
            name: grant.name.clone(),
        },
        None => Actor::user(user),
    }
}

impl Admin {
    /// The admin user.
    pub fn user(&self) -> &User {
        &self.user
    }

    /// The audit actor for this admin.
    pub fn actor(&self) -> Actor {
        actor_of(&self.user, self.token.as_ref())
    }

    /// When the admin last passed a second-factor check in this session
    /// (sign-in, enrolment or step-up).
    pub fn second_factor_at(&self) -> Option<DateTime<Utc>> {
        self.second_factor_at
    }

    /// Refuses a sensitive action (making someone an admin, security,
    /// single sign-on and email settings, tokens, resetting someone's
    /// second factor) unless this admin passed a second-factor check in
    /// this session within [`crate::mfa::check::STEP_UP_WINDOW`] of
    /// `now` — or has no second factor to check. A personal API token is
    /// always refused ([`crate::errors::StepUpError::SessionRequired`]):
    /// it carries no check, whatever its owner's factors.
    ///
    /// # Errors
    /// [`crate::errors::StepUpError::Required`] when the check is missing or too old.
    pub async fn require_recent_factor(
        &self,
        mfa: &dyn crate::mfa::ports::MfaRepository,
        now: DateTime<Utc>,
    ) -> Result<(), crate::errors::StepUpError> {
        if self.token.is_some() {
            return Err(crate::errors::StepUpError::SessionRequired);
        }
        let checked_at = self.second_factor_at;
        crate::mfa::check::require_recent_factor(mfa, self.user.id, checked_at, now).await
    }

    /// The role of the admin (always [`Role::Admin`]).
    pub fn role(&self) -> Role {
        self.user.role
    }
}

/// Proof that a request comes from a service holding an active token.
#[derive(Debug, Clone)]
pub struct ServiceCaller {
    token: ServiceToken,
}

impl ServiceCaller {
    /// The caller behind a token the domain just checked: only
    /// [`crate::service_tokens::service::ServiceTokenService::authenticate_service`] calls it.
    pub(crate) fn new(token: ServiceToken) -> Self {
        Self { token }
    }

    /// The token used.
    pub fn token(&self) -> &ServiceToken {
        &self.token
    }

    /// The audit actor for this service: the token's id and name.
    pub fn actor(&self) -> Actor {
        Actor::Service { token_id: self.token.id, name: self.token.name.clone() }
    }
}
