//! Single sign-on adapter: implements the domain's
//! [`IdentityProvider`](secureai_domain::sso::ports::IdentityProvider) port.
//!
//! - OpenID Connect ([`oidc`]) with `openidconnect`: discovery, the
//!   authorization code flow with PKCE (S256), `state` and `nonce`, the
//!   RFC 9207 `iss` parameter, ID token verification (signature, issuer,
//!   audience, expiry, nonce, issue time).
//! - SAML 2.0 ([`saml`]) with `samael`: SP-initiated sign-in over
//!   HTTP-Redirect / HTTP-POST, signature checked against the IdP metadata's
//!   certificate (metadata without one is refused), audience, recipient,
//!   InResponseTo and lifetime checked.
//!
//! The adapter only speaks the protocols. Who the person is, whether they
//! may sign in, and the audit log are the domain's business.

mod oidc;
mod saml;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secureai_domain::errors::FieldError;
use secureai_domain::sso::models::{PendingLogin, SsoFailure, SsoIdentity, SsoResponse, SsoStart};
use secureai_domain::sso::ports::IdentityProvider;
use secureai_domain::sso::settings::{SsoMode, SsoSettings};

/// How the adapter reaches identity providers.
#[derive(Debug, Clone)]
pub struct SsoOptions {
    /// Timeout of each request to the identity provider.
    pub timeout: Duration,
    /// How long discovery documents and keys are reused before they are
    /// fetched again.
    pub metadata_ttl: Duration,
}

impl Default for SsoOptions {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(10), metadata_ttl: Duration::from_secs(300) }
    }
}

/// The SSO adapter for one public URL (callbacks are under it).
pub struct SsoAdapter {
    oidc: oidc::Oidc,
    saml: saml::Saml,
}

/// Why the adapter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for identity providers: {0}")]
pub struct SsoSetupError(String);

impl SsoAdapter {
    /// An adapter whose callbacks live under `public_url`
    /// (`https://ai.example.com`).
    ///
    /// # Errors
    /// [`SsoSetupError`] when the HTTP client cannot be built.
    pub fn new(public_url: &str, options: SsoOptions) -> Result<Self, SsoSetupError> {
        // Never follow redirects: a provider answering a back-channel call
        // with a redirect is an error, not a place to send our secret.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(options.timeout)
            .build()
            .map_err(|e| SsoSetupError(e.to_string()))?;
        let base = public_url.trim_end_matches('/');
        Ok(Self {
            oidc: oidc::Oidc::new(http.clone(), format!("{base}/auth/oidc/callback"), options),
            saml: saml::Saml::new(http, base),
        })
    }

    /// Where the provider sends the browser back after an OIDC sign-in (to
    /// register at the provider).
    pub fn oidc_redirect_uri(&self) -> &str {
        self.oidc.redirect_uri()
    }
}

#[async_trait]
impl IdentityProvider for SsoAdapter {
    async fn check(&self, settings: SsoSettings) -> Result<SsoSettings, FieldError> {
        match &settings.mode {
            SsoMode::None => Ok(settings),
            SsoMode::Oidc(oidc) => {
                let span = provider_span("identity_provider.discover", "oidc");
                tracing::Instrument::instrument(self.oidc.check(oidc), span).await?;
                Ok(settings)
            }
            SsoMode::Saml(saml) => {
                let span = provider_span("identity_provider.metadata", "saml");
                let checked =
                    tracing::Instrument::instrument(self.saml.check(saml.clone()), span).await?;
                Ok(SsoSettings { mode: SsoMode::Saml(checked), ..settings })
            }
        }
    }

    async fn begin(
        &self,
        settings: &SsoSettings,
        relay_state: &str,
    ) -> Result<SsoStart, SsoFailure> {
        match &settings.mode {
            SsoMode::Oidc(oidc) => {
                let span = provider_span("identity_provider.begin", "oidc");
                tracing::Instrument::instrument(self.oidc.begin(oidc), span).await
            }
            SsoMode::Saml(saml) => self.saml.begin(saml, relay_state),
            SsoMode::None => Err(SsoFailure::new("sso_not_configured", "SSO is not configured")),
        }
    }

    async fn complete(
        &self,
        settings: &SsoSettings,
        pending: Option<PendingLogin>,
        response: &SsoResponse,
        now: DateTime<Utc>,
    ) -> Result<SsoIdentity, SsoFailure> {
        match &settings.mode {
            SsoMode::Oidc(oidc) => {
                let pending = pending.ok_or_else(|| {
                    SsoFailure::new("no_login_in_progress", "no OIDC sign-in was started")
                })?;
                let span = provider_span("identity_provider.complete", "oidc");
                let completing =
                    self.oidc.complete(oidc, settings.clock_skew_secs, &pending, response, now);
                tracing::Instrument::instrument(completing, span).await
            }
            SsoMode::Saml(saml) => {
                self.saml.complete(saml, settings.clock_skew_secs, pending.as_ref(), response, now)
            }
            SsoMode::None => Err(SsoFailure::new("sso_not_configured", "SSO is not configured")),
        }
    }

    fn service_provider_metadata(&self, settings: &SsoSettings) -> Result<String, SsoFailure> {
        match &settings.mode {
            SsoMode::Saml(saml) => self.saml.metadata(saml),
            _ => Err(SsoFailure::new("sso_not_configured", "SAML is not configured")),
        }
    }
}

/// The span of a call to the identity provider (for traces only).
fn provider_span(name: &'static str, protocol: &'static str) -> tracing::Span {
    tracing::info_span!(target: "secureai_trace", "identity_provider", otel.name = name, otel.kind = "client", sso.protocol = protocol)
}
