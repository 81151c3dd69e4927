//! OpenID Connect: authorization code flow with PKCE, through
//! `openidconnect`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use secureai_domain::errors::FieldError;
use secureai_domain::sso::models::{
    PendingLogin, SsoFailure, SsoIdentity, SsoProtocol, SsoResponse, SsoStart,
};
use secureai_domain::sso::settings::OidcSettings;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::SsoOptions;

/// An ID token issued longer ago than this (plus the skew) is refused.
const MAX_ID_TOKEN_AGE_MINUTES: i64 = 10;

/// What a sign-in in flight must match, kept by the domain between the
/// redirect and the callback.
#[derive(Serialize, Deserialize)]
struct Attempt {
    issuer: String,
    client_id: String,
    state: String,
    nonce: String,
    verifier: String,
}

pub(crate) struct Oidc {
    http: reqwest::Client,
    redirect_uri: String,
    options: SsoOptions,
    discovered: Mutex<HashMap<String, (Instant, CoreProviderMetadata)>>,
}

/// An error and its causes on one line (openidconnect nests the useful
/// part: "Server returned error response: invalid_grant …").
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl Oidc {
    pub(crate) fn new(http: reqwest::Client, redirect_uri: String, options: SsoOptions) -> Self {
        Self { http, redirect_uri, options, discovered: Mutex::new(HashMap::new()) }
    }

    pub(crate) fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The provider's discovery document and keys, reused for a while.
    async fn metadata(&self, issuer: &str, fresh: bool) -> Result<CoreProviderMetadata, String> {
        if !fresh {
            let cache = self.discovered.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((at, metadata)) = cache.get(issuer)
                && at.elapsed() < self.options.metadata_ttl
            {
                return Ok(metadata.clone());
            }
        }
        let url = IssuerUrl::new(issuer.to_owned()).map_err(|e| e.to_string())?;
        let metadata =
            CoreProviderMetadata::discover_async(url, &self.http).await.map_err(|e| chain(&e))?;
        self.discovered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(issuer.to_owned(), (Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    pub(crate) async fn check(&self, settings: &OidcSettings) -> Result<(), FieldError> {
        let metadata = self.metadata(&settings.issuer_url, true).await.map_err(|e| {
            FieldError::new("issuer_url", format!("OpenID Connect discovery failed: {e}"))
        })?;
        if metadata.token_endpoint().is_none() {
            return Err(FieldError::new(
                "issuer_url",
                "the provider's discovery document names no token endpoint",
            ));
        }
        RedirectUrl::new(self.redirect_uri.clone()).map_err(|e| {
            FieldError::new("issuer_url", format!("our callback URL is not valid: {e}"))
        })?;
        Ok(())
    }

    pub(crate) async fn begin(&self, settings: &OidcSettings) -> Result<SsoStart, SsoFailure> {
        let metadata = self
            .metadata(&settings.issuer_url, false)
            .await
            .map_err(|e| SsoFailure::new("discovery_failed", e))?;
        let client = self.client(metadata, settings)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in settings.scopes.iter().filter(|s| s.as_str() != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let attempt = Attempt {
            issuer: settings.issuer_url.clone(),
            client_id: settings.client_id.clone(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
        };
        let data = serde_json::to_string(&attempt)
            .map_err(|e| SsoFailure::new("internal", e.to_string()))?;
        Ok(SsoStart { redirect_url: url.to_string(), data })
    }

    fn client(
        &self,
        metadata: CoreProviderMetadata,
        settings: &OidcSettings,
    ) -> Result<Client, SsoFailure> {
        let redirect = RedirectUrl::new(self.redirect_uri.clone())
            .map_err(|e| SsoFailure::new("configuration", e.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(settings.client_id.clone()),
            settings.client_secret.as_ref().map(|s| ClientSecret::new(s.expose().to_owned())),
        )
        .set_redirect_uri(redirect))
    }

    pub(crate) async fn complete(
        &self,
        settings: &OidcSettings,
        skew_secs: u32,
        pending: &PendingLogin,
        response: &SsoResponse,
        now: DateTime<Utc>,
    ) -> Result<SsoIdentity, SsoFailure> {
        let attempt: Attempt = serde_json::from_str(&pending.data)
            .map_err(|_| SsoFailure::new("no_login_in_progress", "unreadable sign-in state"))?;
        if attempt.issuer != settings.issuer_url || attempt.client_id != settings.client_id {
            return Err(SsoFailure::new(
                "settings_changed",
                "the SSO settings changed while this sign-in was in progress",
            ));
        }
        if let Some(error) = response.get("error") {
            let description = response.get("error_description").unwrap_or("");
            return Err(SsoFailure::new(
                "idp_error",
                format!("the identity provider answered `{error}` {description}"),
            ));
        }
        let state = response
            .get("state")
            .ok_or_else(|| SsoFailure::new("state_missing", "the answer carries no state"))?;
        if !bool::from(state.as_bytes().ct_eq(attempt.state.as_bytes())) {
            return Err(SsoFailure::new(
                "state_mismatch",
                "the answer's state is not the one this browser's sign-in sent",
            ));
        }
        let metadata = self
            .metadata(&settings.issuer_url, false)
            .await
            .map_err(|e| SsoFailure::new("discovery_failed", e))?;
        // RFC 9207: an `iss` in the answer must name the provider we asked
        // (mix-up defence).
        if let Some(iss) = response.get("iss")
            && iss != metadata.issuer().as_str()
        {
            return Err(SsoFailure::new(
                "issuer_mismatch",
                format!("the answer comes from `{iss}`, not `{}`", metadata.issuer().as_str()),
            ));
        }
        let code = response
            .get("code")
            .ok_or_else(|| SsoFailure::new("code_missing", "the answer carries no code"))?;
        let client = self.client(metadata, settings)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| SsoFailure::new("configuration", e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(attempt.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| SsoFailure::new("code_rejected", chain(&e)))?;
        let id_token = token.id_token().ok_or_else(|| {
            SsoFailure::new("id_token_missing", "the token answer has no ID token")
        })?;
        let nonce = Nonce::new(attempt.nonce);
        let verified = verify(&client, id_token, now, skew_secs, &nonce);
        let claims = match verified {
            // The provider may have rotated its keys since discovery was
            // cached: read them again once.
            Err(ClaimsVerificationError::SignatureVerification(_)) => {
                let fresh = self
                    .metadata(&settings.issuer_url, true)
                    .await
                    .map_err(|e| SsoFailure::new("discovery_failed", e))?;
                verify(&self.client(fresh, settings)?, id_token, now, skew_secs, &nonce)
            }
            other => other,
        }
        .map_err(|e| {
            let reason = match &e {
                ClaimsVerificationError::InvalidNonce(_) => "nonce_mismatch",
                ClaimsVerificationError::Expired(_) => "id_token_expired",
                ClaimsVerificationError::InvalidAudience(_) => "audience_mismatch",
                ClaimsVerificationError::InvalidIssuer(_) => "issuer_mismatch",
                ClaimsVerificationError::SignatureVerification(_) => "signature_invalid",
                _ => "id_token_invalid",
            };
            SsoFailure::new(reason, chain(&e))
        })?;
        let mut email = claims.email().map(|e| e.as_str().to_owned());
        let mut email_verified = claims.email_verified().unwrap_or(false);
        let mut name = claims.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_owned());
        // Providers that follow the spec strictly put the claims asked for
        // by scope in the user info answer, not in the ID token.
        if email.is_none()
            && let Ok(request) =
                client.user_info(token.access_token().clone(), Some(claims.subject().clone()))
        {
            let info: openidconnect::core::CoreUserInfoClaims = request
                .request_async(&self.http)
                .await
                .map_err(|e| SsoFailure::new("userinfo_failed", chain(&e)))?;
            email = info.email().map(|e| e.as_str().to_owned());
            email_verified = info.email_verified().unwrap_or(false);
            name = name.or_else(|| info.name().and_then(|n| n.get(None)).map(|n| n.to_string()));
        }
        Ok(SsoIdentity {
            protocol: SsoProtocol::Oidc,
            issuer: claims.issuer().as_str().to_owned(),
            subject: claims.subject().as_str().to_owned(),
            email,
            email_verified,
            name,
            assertion: None,
        })
    }
}

type Client = CoreClient<
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// Checks an ID token (signature, issuer, audience, expiry, nonce, and an
/// issue time no later than now + skew and no older than 10 minutes).
fn verify(
    client: &Client,
    id_token: &openidconnect::core::CoreIdToken,
    now: DateTime<Utc>,
    skew_secs: u32,
    nonce: &Nonce,
) -> Result<CoreIdTokenClaims, ClaimsVerificationError> {
    let skew = Duration::seconds(i64::from(skew_secs));
    let verifier = client.id_token_verifier().set_time_fn(move || now).set_issue_time_verifier_fn(
        move |iat| {
            if iat > now + skew {
                Err(format!("issued in the future ({iat})"))
            } else if iat < now - Duration::minutes(MAX_ID_TOKEN_AGE_MINUTES) - skew {
                Err(format!("issued too long ago ({iat})"))
            } else {
                Ok(())
            }
        },
    );
    id_token.claims(&verifier, nonce).cloned()
}
