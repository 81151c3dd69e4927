//! The SSO use cases: settings, starting a sign-in, and deciding who a
//! verified identity is and whether they may sign in.

use chrono::{DateTime, Duration, Utc};

use crate::access::Admin;
use crate::audit::models::{Actor, AuditAction, AuditEvent, Change, RequestContext};
use crate::errors::StoreError;
use crate::mail::settings::SettingsSource;
use crate::secrets::PlainToken;
use crate::sessions::models::{Session, SessionId, SignedIn};
use crate::sso::errors::{BeginSsoError, SsoRefusal, SsoSettingsError, SsoSignInError};
use crate::sso::models::{PendingLogin, SsoIdentity, SsoProtocol, SsoResponse};
use crate::sso::ports::{SsoSignIn, SsoSignInStoreError};
use crate::sso::settings::{SsoMode, SsoSettings, SsoSettingsUpdate};
use crate::users::models::{
    DisplayName, EmailAddress, Role, SignInMethod, User, UserId, UserState, UserStatus,
};

/// The ports SsoService uses, and no others.
#[derive(Clone)]
pub struct SsoPorts {
    /// User storage.
    pub users: std::sync::Arc<dyn crate::users::ports::UserRepository>,
    /// SSO sign-ins in flight, identity links, seen assertions.
    pub sso: std::sync::Arc<dyn crate::sso::ports::SsoRepository>,
    /// The SSO protocol adapter.
    pub identity: std::sync::Arc<dyn crate::sso::ports::IdentityProvider>,
    /// Instance settings (seat limit, email, SSO).
    pub settings: std::sync::Arc<dyn crate::settings::ports::SettingsRepository>,
    /// Stand-alone audit events.
    pub audit: std::sync::Arc<dyn crate::audit::ports::AuditLog>,
    /// Usage events and their aggregates; a sign-in marks its user active.
    pub usage: std::sync::Arc<dyn crate::analytics::ports::UsageRepository>,
    /// Time.
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    /// Randomness.
    pub tokens: std::sync::Arc<dyn crate::secrets::TokenGenerator>,
    /// Second factors: the actions that need a recent check ask whether
    /// the admin has one (step-up).
    pub mfa: std::sync::Arc<dyn crate::mfa::ports::MfaRepository>,
    /// Counts each sign-in's outcome for operators.
    pub meter: std::sync::Arc<dyn crate::telemetry::Meter>,
}

/// Single sign-on: its settings, starting a sign-in, and deciding who a
/// verified identity is. Rules (docs/RULES.md): 6 SSO users, 8 a deactivated
/// user is refused although the identity provider signs them in, 4 seats.
pub struct SsoService {
    ports: SsoPorts,
    policy: std::sync::Arc<crate::policy::Policy>,
}

impl SsoService {
    /// The use cases over these ports and rules.
    #[must_use]
    pub fn new(ports: SsoPorts, policy: std::sync::Arc<crate::policy::Policy>) -> Self {
        Self { ports, policy }
    }
}

/// How long a started sign-in may take at the identity provider.
pub const LOGIN_TTL_MINUTES: i64 = 10;

/// A sign-in started: send the browser to `redirect_url`, and give it
/// `browser_token` (cookie or relay state) to bring back.
#[derive(Debug)]
pub struct SsoRedirect {
    /// The identity provider's sign-in address.
    pub redirect_url: String,
    /// The token that binds the answer to this browser.
    pub browser_token: PlainToken,
    /// When the sign-in stops being accepted.
    pub expires_at: DateTime<Utc>,
}

fn protocol_of(settings: &SsoSettings) -> Option<SsoProtocol> {
    match settings.mode {
        SsoMode::None => None,
        SsoMode::Oidc(_) => Some(SsoProtocol::Oidc),
        SsoMode::Saml(_) => Some(SsoProtocol::Saml),
    }
}

/// A short, single-line excerpt of a detail for the audit log.
fn excerpt(detail: &str) -> String {
    let line: String =
        detail.chars().map(|c| if c.is_control() { ' ' } else { c }).take(300).collect();
    line.trim().to_owned()
}

impl SsoService {
    /// The SSO settings in force: saved by an admin, else configured.
    ///
    /// # Errors
    /// [`StoreError`] on failure.
    pub async fn sso_settings_in_force(&self) -> Result<(SsoSettings, SettingsSource), StoreError> {
        crate::settings::sso_settings_in_force(&*self.ports.settings, &self.policy).await
    }

    async fn seat_limit(&self) -> Result<Option<u32>, StoreError> {
        crate::settings::seat_limit_in_force(&*self.ports.settings, &self.policy).await
    }

    /// The SSO settings, for Settings > SSO.
    ///
    /// # Errors
    /// [`StoreError`] on failure.
    pub async fn sso_settings(
        &self,
        _admin: &Admin,
    ) -> Result<(SsoSettings, SettingsSource), StoreError> {
        self.sso_settings_in_force().await
    }

    /// Which protocol the sign-in page offers, if any.
    ///
    /// # Errors
    /// [`StoreError`] on failure.
    pub async fn sso_protocol(&self) -> Result<Option<SsoProtocol>, StoreError> {
        Ok(protocol_of(&self.sso_settings_in_force().await?.0))
    }

    /// Saves new SSO settings after the adapter checked them against the
    /// real provider (discovery loads; SAML metadata has a signing
    /// certificate). Audited field by field, the client secret only as
    /// "changed"/"removed".
    ///
    /// # Errors
    /// [`SsoSettingsError::Invalid`] naming the field and the reason.
    pub async fn update_sso_settings(
        &self,
        admin: &Admin,
        update: SsoSettingsUpdate,
        context: &RequestContext,
    ) -> Result<(SsoSettings, SettingsSource), SsoSettingsError> {
        let now = self.ports.clock.now();
        admin.require_recent_factor(self.ports.mfa.as_ref(), now).await?;
        let (current, _) = self.sso_settings_in_force().await?;
        let mut next = update.apply(&current)?;
        if next.enabled() {
            next = self.ports.identity.check(next).await?;
            next.validate()?;
        }
        let mut audit = AuditEvent::new(
            self.ports.clock.now(),
            admin.actor(),
            AuditAction::SsoSettingsChanged,
            context,
        );
        let before = describe(&current);
        let after = describe(&next);
        for ((field, old), (_, new)) in before.iter().zip(after.iter()) {
            if old != new {
                audit = audit.change(Change::new(field, old.as_deref(), new.as_deref()));
            }
        }
        if let (Some(old), Some(new)) = (secret_of(&current), secret_of(&next))
            && old != new
        {
            audit = audit.change(Change::detail("client_secret", "changed"));
        }
        self.ports.settings.set_sso_settings(&next, audit).await?;
        Ok((next, SettingsSource::Saved))
    }

    /// Our SAML service provider metadata, when SAML is configured.
    ///
    /// # Errors
    /// [`BeginSsoError::NotConfigured`] when SAML is not configured.
    pub async fn service_provider_metadata(&self) -> Result<String, BeginSsoError> {
        let (settings, _) = self.sso_settings_in_force().await?;
        if protocol_of(&settings) != Some(SsoProtocol::Saml) {
            return Err(BeginSsoError::NotConfigured);
        }
        self.ports.identity.service_provider_metadata(&settings).map_err(BeginSsoError::Provider)
    }

    /// Starts a sign-in through the identity provider: remembers what the
    /// answer must match under a fresh browser token.
    ///
    /// # Errors
    /// See [`BeginSsoError`].
    pub async fn begin_sso(&self, protocol: SsoProtocol) -> Result<SsoRedirect, BeginSsoError> {
        let (settings, _) = self.sso_settings_in_force().await?;
        if protocol_of(&settings) != Some(protocol) {
            return Err(BeginSsoError::NotConfigured);
        }
        let browser_token = self.ports.tokens.generate();
        let start = self
            .ports
            .identity
            .begin(&settings, browser_token.expose())
            .await
            .map_err(BeginSsoError::Provider)?;
        let now = self.ports.clock.now();
        let expires_at = now + Duration::minutes(LOGIN_TTL_MINUTES);
        self.ports
            .sso
            .save_login(PendingLogin {
                key: browser_token.hash(),
                protocol,
                data: start.data,
                created_at: now,
                expires_at,
            })
            .await?;
        Ok(SsoRedirect { redirect_url: start.redirect_url, browser_token, expires_at })
    }

    /// Completes a sign-in through the identity provider (rules 6 and 8):
    /// the adapter verifies the answer; then the user is found by the
    /// linked subject, or on first sign-in by a verified email (and the
    /// subject is linked); an invited user is activated; a deactivated user
    /// is refused. Every refusal is audited with its reason.
    ///
    /// # Errors
    /// See [`SsoSignInError`].
    pub async fn complete_sso(
        &self,
        protocol: SsoProtocol,
        browser_token: Option<&PlainToken>,
        response: &SsoResponse,
        context: &RequestContext,
    ) -> Result<SignedIn, SsoSignInError> {
        let method = match protocol {
            SsoProtocol::Oidc => crate::telemetry::SignInMethod::Oidc,
            SsoProtocol::Saml => crate::telemetry::SignInMethod::Saml,
        };
        let mut attempt = crate::telemetry::Attempt::begin(&*self.ports.meter, method);
        let result = self.complete_sso_counted(protocol, browser_token, response, context).await;
        attempt.outcome = crate::telemetry::sso_outcome(&result);
        result
    }

    async fn complete_sso_counted(
        &self,
        protocol: SsoProtocol,
        browser_token: Option<&PlainToken>,
        response: &SsoResponse,
        context: &RequestContext,
    ) -> Result<SignedIn, SsoSignInError> {
        let now = self.ports.clock.now();
        let (settings, _) = self.sso_settings_in_force().await?;
        if protocol_of(&settings) != Some(protocol) {
            return Err(SsoSignInError::NotConfigured);
        }
        let pending = match browser_token {
            Some(token) => self.ports.sso.take_login(&token.hash(), now).await?,
            None => None,
        }
        .filter(|p| p.protocol == protocol && p.expires_at > now);
        let unsolicited_ok =
            matches!(&settings.mode, SsoMode::Saml(saml) if saml.allow_idp_initiated);
        if pending.is_none() && !unsolicited_ok {
            return Err(self.refuse(protocol, SsoRefusal::NoLoginInProgress, None, context).await);
        }
        let identity = match self.ports.identity.complete(&settings, pending, response, now).await {
            Ok(identity) => identity,
            Err(failure) => {
                let refusal = SsoRefusal::Protocol(failure);
                return Err(self.refuse(protocol, refusal, None, context).await);
            }
        };
        if let Some((id, expires_at)) = &identity.assertion {
            let keep_until = *expires_at + Duration::seconds(i64::from(settings.clock_skew_secs));
            let fresh =
                self.ports.sso.remember_assertion(&identity.issuer, id, keep_until, now).await?;
            if !fresh {
                let who = Whom::Asserted(identity.email.clone());
                return Err(self.refuse(protocol, SsoRefusal::Replayed, Some(who), context).await);
            }
        }
        // A concurrent change (deactivation, another first sign-in) makes
        // the store refuse; the decision is then taken again on fresh data.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let plan = match self.plan_sso_sign_in(&settings, &identity, now, context).await? {
                Ok(plan) => plan,
                Err((refusal, whom)) => {
                    return Err(self.refuse(protocol, refusal, Some(whom), context).await);
                }
            };
            let (sign_in, token) = plan;
            let user = sign_in.user.clone();
            let session = sign_in.session.clone();
            match self.ports.sso.record_sso_sign_in(sign_in).await {
                Ok(()) => {
                    self.ports.usage.mark_active(user.id, now).await?;
                    return Ok(SignedIn { token, session, user });
                }
                Err(SsoSignInStoreError::SeatLimitReached { limit }) => {
                    let refusal = SsoRefusal::SeatLimitReached { limit };
                    let whom = Whom::Asserted(identity.email.clone());
                    return Err(self.refuse(protocol, refusal, Some(whom), context).await);
                }
                Err(SsoSignInStoreError::Stale | SsoSignInStoreError::Conflict) if attempts < 3 => {
                }
                Err(SsoSignInStoreError::Stale | SsoSignInStoreError::Conflict) => {
                    return Err(StoreError::msg("the user kept changing during SSO sign-in").into());
                }
                Err(SsoSignInStoreError::Unexpected(e)) => return Err(e.into()),
            }
        }
    }

    /// Decides who the identity is and what the sign-in writes.
    async fn plan_sso_sign_in(
        &self,
        settings: &SsoSettings,
        identity: &SsoIdentity,
        now: DateTime<Utc>,
        context: &RequestContext,
    ) -> Result<Result<(SsoSignIn, PlainToken), (SsoRefusal, Whom)>, StoreError> {
        let asserted = Whom::Asserted(identity.email.clone());
        let linked = self.ports.sso.find_linked(&identity.issuer, &identity.subject).await?;
        let (user, link, create) = match linked {
            Some(user) => (user, None, None),
            None => {
                let Some(email) =
                    identity.email.as_deref().and_then(|e| EmailAddress::parse(e).ok())
                else {
                    return Ok(Err((SsoRefusal::EmailMissing, asserted)));
                };
                if !identity.email_verified {
                    return Ok(Err((SsoRefusal::EmailNotVerified, asserted)));
                }
                let link = Some((identity.issuer.clone(), identity.subject.clone()));
                match self.ports.users.find_by_email(&email).await? {
                    Some(user) => {
                        if let Err(refusal) = self.may_link(settings, identity, &user).await? {
                            return Ok(Err((refusal, Whom::User(user))));
                        }
                        (user, link, None)
                    }
                    None if settings.jit_provisioning => {
                        let name = identity
                            .name
                            .as_deref()
                            .and_then(|n| DisplayName::parse(n).ok())
                            .unwrap_or_else(|| {
                                let local = email.key().split('@').next().unwrap_or("user");
                                DisplayName::from_stored(local)
                            });
                        let user = User {
                            id: UserId::generate(),
                            email,
                            name,
                            role: Role::User,
                            state: UserState::Active { activated_at: now },
                            sign_in: SignInMethod::Sso,
                            department: None,
                            created_at: now,
                            last_login_at: None,
                        };
                        (user, link, Some(self.seat_limit().await?))
                    }
                    None => return Ok(Err((SsoRefusal::UnknownUser, asserted))),
                }
            }
        };
        let activate = match user.status() {
            UserStatus::Deactivated => {
                return Ok(Err((SsoRefusal::AccountDeactivated, Whom::User(user))));
            }
            UserStatus::Invited => true,
            UserStatus::Active => false,
        };
        let method = identity.protocol.as_str();
        let mut audit = Vec::new();
        let user = if activate {
            let activated = User { state: UserState::Active { activated_at: now }, ..user };
            audit.push(
                AuditEvent::new(
                    now,
                    Actor::user(&activated),
                    AuditAction::InvitationAccepted,
                    context,
                )
                .target(&activated)
                .change(Change::new("status", Some("invited"), Some("active")))
                .change(Change::detail("method", method)),
            );
            activated
        } else {
            user
        };
        if create.is_some() {
            audit.push(
                AuditEvent::new(now, Actor::user(&user), AuditAction::UserProvisioned, context)
                    .target(&user)
                    .change(Change::new("role", None, Some(user.role.as_str())))
                    .change(Change::detail("method", method)),
            );
        }
        let mut sign_in_event =
            AuditEvent::new(now, Actor::user(&user), AuditAction::SignInSucceeded, context)
                .target(&user)
                .change(Change::detail("method", method));
        if let Some((issuer, _)) = &link {
            sign_in_event = sign_in_event.change(Change::detail("linked", issuer));
        }
        audit.push(sign_in_event);
        let token = self.ports.tokens.generate();
        let session = Session {
            id: SessionId::generate(),
            user_id: user.id,
            token_hash: token.hash(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + self.policy.session_absolute_timeout,
            // The identity provider asked for the second factor.
            enrolment_only: false,
            second_factor_at: None,
        };
        let user = User { last_login_at: Some(now), ..user };
        Ok(Ok((SsoSignIn { user, create, activate, link, session, audit }, token)))
    }

    /// Whether a first sign-in of this identity may link the existing
    /// account with its email:
    /// - a password (break-glass) account never: an admin switches it to
    ///   SSO explicitly (`sign_in: "sso"`, audited);
    /// - an account linked to another subject of this provider never;
    /// - an SSO account not linked anywhere yet (invited, switched by an
    ///   admin, imported) is waiting for exactly this: linked;
    /// - an SSO account linked at another provider only when this one's
    ///   email can be trusted: OIDC's verified email, SAML's only when the
    ///   setting `trust_email_for_linking` says so (off by default: a SAML
    ///   IdP asserts whatever email its admins typed).
    async fn may_link(
        &self,
        settings: &SsoSettings,
        identity: &SsoIdentity,
        user: &User,
    ) -> Result<Result<(), SsoRefusal>, StoreError> {
        if user.sign_in == SignInMethod::Password {
            return Ok(Err(SsoRefusal::PasswordAccount));
        }
        let links = self.ports.sso.links_of(user.id).await?;
        if links
            .iter()
            .any(|(issuer, subject)| *issuer == identity.issuer && *subject != identity.subject)
        {
            return Ok(Err(SsoRefusal::SubjectMismatch));
        }
        if links.is_empty() {
            return Ok(Ok(()));
        }
        let trusted = match &settings.mode {
            SsoMode::Saml(saml) => saml.trust_email_for_linking,
            _ => identity.email_verified,
        };
        Ok(if trusted { Ok(()) } else { Err(SsoRefusal::LinkNotTrusted) })
    }

    /// Audits a refusal and returns it as the error to answer with.
    async fn refuse(
        &self,
        protocol: SsoProtocol,
        refusal: SsoRefusal,
        whom: Option<Whom>,
        context: &RequestContext,
    ) -> SsoSignInError {
        let now = self.ports.clock.now();
        let mut event = AuditEvent::new(now, Actor::Anonymous, AuditAction::SignInFailed, context)
            .change(Change::detail("method", protocol.as_str()))
            .change(Change::detail("reason", refusal.reason()));
        if let SsoRefusal::Protocol(failure) = &refusal {
            event = event.change(Change::detail("detail", &excerpt(&failure.detail)));
        }
        match whom {
            Some(Whom::User(user)) => event = event.target(&user),
            Some(Whom::Asserted(Some(email))) => {
                event.target_email =
                    EmailAddress::parse(&email).ok().map(|e| e.as_str().to_owned());
            }
            Some(Whom::Asserted(None)) | None => {}
        }
        match self.ports.audit.append(event).await {
            Ok(()) => SsoSignInError::Refused(refusal),
            Err(e) => SsoSignInError::Unexpected(e),
        }
    }
}

/// Whom a refusal is about, for the audit log.
enum Whom {
    /// A known user.
    User(User),
    /// Only the email the provider asserted, if any.
    Asserted(Option<String>),
}

fn secret_of(settings: &SsoSettings) -> Option<&crate::sso::settings::ClientSecret> {
    match &settings.mode {
        SsoMode::Oidc(oidc) => oidc.client_secret.as_ref(),
        _ => None,
    }
}

/// The audited fields of the settings, never the client secret's value.
fn describe(settings: &SsoSettings) -> Vec<(&'static str, Option<String>)> {
    let mut fields = vec![
        ("mode", Some(settings.mode.as_str().to_owned())),
        ("jit_provisioning", Some(settings.jit_provisioning.to_string())),
        ("clock_skew_secs", Some(settings.clock_skew_secs.to_string())),
    ];
    let (oidc, saml) = match &settings.mode {
        SsoMode::Oidc(o) => (Some(o), None),
        SsoMode::Saml(s) => (None, Some(s)),
        SsoMode::None => (None, None),
    };
    fields.push(("issuer_url", oidc.map(|o| o.issuer_url.clone())));
    fields.push(("client_id", oidc.map(|o| o.client_id.clone())));
    fields.push(("scopes", oidc.map(|o| o.scopes.join(" "))));
    // Whether a secret is set, never its value (a replaced secret is
    // audited separately as "changed").
    fields
        .push(("client_secret", oidc.and_then(|o| o.client_secret.as_ref()).map(|_| "set".into())));
    fields.push(("idp_metadata_url", saml.and_then(|s| s.idp_metadata_url.clone())));
    fields.push((
        "idp_metadata",
        saml.map(|s| {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(s.idp_metadata_xml.as_bytes());
            format!(
                "{} bytes, sha256 {:02x}{:02x}{:02x}{:02x}…",
                s.idp_metadata_xml.len(),
                digest[0],
                digest[1],
                digest[2],
                digest[3]
            )
        }),
    ));
    fields.push(("sp_entity_id", saml.map(|s| s.sp_entity_id.clone())));
    fields.push(("email_attribute", saml.and_then(|s| s.email_attribute.clone())));
    fields.push(("allow_idp_initiated", saml.map(|s| s.allow_idp_initiated.to_string())));
    fields.push(("trust_email_for_linking", saml.map(|s| s.trust_email_for_linking.to_string())));
    fields
}
