//! What a sign-in through an identity provider carries.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::secrets::TokenHash;

/// The two protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SsoProtocol {
    /// OpenID Connect, authorization code flow with PKCE.
    Oidc,
    /// SAML 2.0, HTTP-Redirect request and HTTP-POST response.
    Saml,
}

impl SsoProtocol {
    /// The stable name (`oidc`, `saml`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Saml => "saml",
        }
    }

    /// Parses a stable name.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "oidc" => Some(Self::Oidc),
            "saml" => Some(Self::Saml),
            _ => None,
        }
    }
}

/// A sign-in the browser started and has not finished: what the callback
/// must match. Stored under the digest of a token only the browser holds
/// (a cookie for OIDC, the relay state for SAML), single use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// Digest of the browser's token.
    pub key: TokenHash,
    /// Which protocol started it.
    pub protocol: SsoProtocol,
    /// What the adapter needs to check the answer (OIDC state, nonce and
    /// PKCE verifier; SAML request id) — opaque to the domain.
    pub data: String,
    /// When it was started.
    pub created_at: DateTime<Utc>,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// Where the adapter sends the browser, and what to remember.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoStart {
    /// The identity provider's sign-in address.
    pub redirect_url: String,
    /// Opaque data for [`PendingLogin::data`].
    pub data: String,
}

/// The identity provider's answer as it reached us: the callback's query
/// (OIDC) or the posted form (SAML).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SsoResponse {
    /// Parameter name → value (the first value of a repeated name).
    pub params: BTreeMap<String, String>,
}

impl SsoResponse {
    /// From name/value pairs; the first of a repeated name wins.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let mut params = BTreeMap::new();
        for (name, value) in pairs {
            params.entry(name.into()).or_insert_with(|| value.into());
        }
        Self { params }
    }

    /// One parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Who the identity provider says signed in, after the adapter verified the
/// answer (signature, issuer, audience, lifetime, nonce or request id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoIdentity {
    /// Which protocol.
    pub protocol: SsoProtocol,
    /// The identity provider (OIDC issuer, SAML entity id).
    pub issuer: String,
    /// The provider's stable id for the person (OIDC `sub`, SAML NameID).
    pub subject: String,
    /// The email address the provider asserts, as written.
    pub email: Option<String>,
    /// Whether the provider says it verified that address. SAML assertions
    /// are signed statements of the company's directory: verified.
    pub email_verified: bool,
    /// The person's name, if the provider sent one.
    pub name: Option<String>,
    /// A one-time assertion (SAML): its id and when it expires, to refuse
    /// a replay until then.
    pub assertion: Option<(String, DateTime<Utc>)>,
}

/// Why the adapter refused an identity provider's answer: a stable reason
/// code (audited, and turned into words for the person) and a detail for
/// the audit log and the operator's log — never a token or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct SsoFailure {
    /// Stable reason code, e.g. `state_mismatch`, `signature_invalid`.
    pub reason: &'static str,
    /// What exactly was wrong.
    pub detail: String,
}

impl SsoFailure {
    /// A refusal with its reason.
    pub fn new(reason: &'static str, detail: impl Into<String>) -> Self {
        Self { reason, detail: detail.into() }
    }
}
