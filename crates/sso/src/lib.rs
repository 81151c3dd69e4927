//! Single sign-on adapter: implements the domain's
//! [`IdentityProvider`](secureai_domain::sso::ports::IdentityProvider) port.
//!
//! - OpenID Connect ([`oidc`]) with `openidconnect`: discovery, the
//!   authorization code flow with PKCE (S256), `state` and `nonce`, the
//!   RFC 9207 `iss` parameter, ID token verification (signature, issuer,
//!   audience, expiry, nonce, issue time).
//! - SAML 2.0 with `samael`: not in this build yet; SAML settings are
//!   refused with a clear message rather than accepted and not enforced.
//!
//! The adapter only speaks the protocols. Who the person is, whether they
//! may sign in, and the audit log are the domain's business.

mod oidc;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secureai_domain::sso::models::{PendingLogin, SsoFailure, SsoIdentity, SsoResponse, SsoStart};
use secureai_domain::sso::ports::IdentityProvider;
use secureai_domain::sso::settings::{SsoMode, SsoSettings};
use secureai_domain::users::errors::FieldError;

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
        Ok(Self { oidc: oidc::Oidc::new(http, format!("{base}/auth/oidc/callback"), options) })
    }

    /// Where the provider sends the browser back after an OIDC sign-in (to
    /// register at the provider).
    pub fn oidc_redirect_uri(&self) -> &str {
        self.oidc.redirect_uri()
    }
}

fn saml_unavailable() -> FieldError {
    FieldError::new("mode", "SAML is not available in this build yet; use OIDC")
}

#[async_trait]
impl IdentityProvider for SsoAdapter {
    async fn check(&self, settings: SsoSettings) -> Result<SsoSettings, FieldError> {
        match &settings.mode {
            SsoMode::None => Ok(settings),
            SsoMode::Oidc(oidc) => {
                self.oidc.check(oidc).await?;
                Ok(settings)
            }
            SsoMode::Saml(_) => Err(saml_unavailable()),
        }
    }

    async fn begin(&self, settings: &SsoSettings) -> Result<SsoStart, SsoFailure> {
        match &settings.mode {
            SsoMode::Oidc(oidc) => self.oidc.begin(oidc).await,
            SsoMode::Saml(_) => Err(SsoFailure::new("saml_unavailable", saml_unavailable().reason)),
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
                self.oidc.complete(oidc, settings.clock_skew_secs, &pending, response, now).await
            }
            SsoMode::Saml(_) => Err(SsoFailure::new("saml_unavailable", saml_unavailable().reason)),
            SsoMode::None => Err(SsoFailure::new("sso_not_configured", "SSO is not configured")),
        }
    }

    fn service_provider_metadata(&self, _settings: &SsoSettings) -> Result<String, SsoFailure> {
        Err(SsoFailure::new("saml_unavailable", saml_unavailable().reason))
    }
}
