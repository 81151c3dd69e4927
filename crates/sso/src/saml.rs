//! SAML 2.0 service provider through `samael`: SP-initiated sign-in
//! (AuthnRequest over HTTP-Redirect, Response over HTTP-POST), optional
//! IdP-initiated sign-in.
//!
//! samael verifies the signature with xmlsec against the signing
//! certificates of the IdP metadata and keeps only the signed parts; it then
//! checks destination, recipient, issuer, lifetime and InResponseTo. Three
//! gaps are closed here: metadata without a signing certificate is refused
//! (samael would accept any response), an assertion without an
//! AudienceRestriction is refused (samael checks the audience only when one
//! is present), and the domain remembers assertion ids against replay.

use chrono::{DateTime, Duration, Utc};
use samael::crypto::AllowedSignatureAlgorithm;
use samael::metadata::{EntityDescriptor, HTTP_REDIRECT_BINDING};
use samael::schema::Assertion;
use samael::service_provider::{Error as SamlError, ServiceProvider, ServiceProviderBuilder};
use samael::traits::ToXml;
use secureai_domain::errors::FieldError;
use secureai_domain::sso::models::{
    PendingLogin, SsoFailure, SsoIdentity, SsoProtocol, SsoResponse, SsoStart,
};
use secureai_domain::sso::settings::SamlSettings;
use serde::{Deserialize, Serialize};

/// Signature algorithms accepted (no SHA-1, no DSA).
const ALGORITHMS: [AllowedSignatureAlgorithm; 6] = [
    AllowedSignatureAlgorithm::RsaSha256,
    AllowedSignatureAlgorithm::RsaSha384,
    AllowedSignatureAlgorithm::RsaSha512,
    AllowedSignatureAlgorithm::EcdsaSha256,
    AllowedSignatureAlgorithm::EcdsaSha384,
    AllowedSignatureAlgorithm::EcdsaSha512,
];

/// How long a one-time assertion id is remembered when the assertion names
/// no end of validity.
const DEFAULT_ASSERTION_LIFETIME_MINUTES: i64 = 10;

/// What the answer to an AuthnRequest must match.
#[derive(Serialize, Deserialize)]
struct Attempt {
    request_id: String,
    idp_entity_id: String,
}

pub(crate) struct Saml {
    http: reqwest::Client,
    acs_url: String,
    metadata_url: String,
}

/// samael's errors are not `Send`: turn them into text at once.
fn text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The stable reason for a refused response.
fn reason_of(error: &(dyn std::error::Error + 'static)) -> &'static str {
    match error.downcast_ref::<SamlError>() {
        Some(SamlError::FailedToValidateSignature) => "signature_invalid",
        Some(SamlError::AssertionConditionAudienceRestrictionFailed { .. }) => "audience_mismatch",
        Some(
            SamlError::AssertionExpired { .. }
            | SamlError::ResponseExpired { .. }
            | SamlError::AssertionConditionExpired { .. }
            | SamlError::AssertionConditionExpiredBefore { .. }
            | SamlError::AssertionSubjectConfirmationExpired { .. }
            | SamlError::AssertionSubjectConfirmationExpiredBefore { .. },
        ) => "assertion_expired",
        Some(
            SamlError::AssertionInResponseToInvalid { .. }
            | SamlError::ResponseInResponseToInvalid { .. },
        ) => "in_response_to_mismatch",
        Some(
            SamlError::DestinationValidationError { .. }
            | SamlError::AssertionRecipientMismatch { .. },
        ) => "destination_mismatch",
        Some(
            SamlError::AssertionIssuerMismatch { .. } | SamlError::ResponseIssuerMismatch { .. },
        ) => "issuer_mismatch",
        Some(SamlError::ResponseBadStatusCode { .. }) => "idp_error",
        _ => "response_invalid",
    }
}

impl Saml {
    pub(crate) fn new(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            acs_url: format!("{base}/auth/saml/acs"),
            metadata_url: format!("{base}/auth/saml/metadata"),
        }
    }

    /// The service provider for these settings, with the IdP metadata
    /// parsed and its signing certificate required.
    fn provider(
        &self,
        settings: &SamlSettings,
        skew_secs: u32,
        idp_initiated: bool,
    ) -> Result<ServiceProvider, FieldError> {
        let metadata = settings.idp_metadata_xml.parse::<EntityDescriptor>().map_err(|e| {
            FieldError::new("idp_metadata_xml", format!("is not SAML metadata: {e}"))
        })?;
        let provider = ServiceProviderBuilder::default()
            .entity_id(settings.sp_entity_id.clone())
            .metadata_url(self.metadata_url.clone())
            .acs_url(self.acs_url.clone())
            .idp_metadata(metadata)
            .allow_idp_initiated(idp_initiated)
            .max_clock_skew(Duration::seconds(i64::from(skew_secs)))
            .max_issue_delay(Duration::seconds(90 + i64::from(skew_secs)))
            .allowed_signature_algorithms(ALGORITHMS.to_vec())
            .build()
            .map_err(|e| FieldError::new("idp_metadata_xml", e.to_string()))?;
        match provider.idp_signing_certs() {
            Ok(Some(certs)) if !certs.is_empty() => {}
            Ok(_) => {
                return Err(FieldError::new(
                    "idp_metadata_xml",
                    "has no signing certificate; without one, responses cannot be verified, so \
                     SecureAI refuses it",
                ));
            }
            Err(e) => {
                return Err(FieldError::new(
                    "idp_metadata_xml",
                    format!("has an unreadable signing certificate: {e}"),
                ));
            }
        }
        if provider.idp_metadata.entity_id.as_deref().is_none_or(str::is_empty) {
            return Err(FieldError::new("idp_metadata_xml", "names no entityID"));
        }
        if provider.sso_binding_location(HTTP_REDIRECT_BINDING).is_none() {
            return Err(FieldError::new(
                "idp_metadata_xml",
                "names no single sign-on service with the HTTP-Redirect binding",
            ));
        }
        Ok(provider)
    }

    pub(crate) async fn check(
        &self,
        mut settings: SamlSettings,
    ) -> Result<SamlSettings, FieldError> {
        if let Some(url) = &settings.idp_metadata_url {
            let fetched = async {
                let response = self.http.get(url).send().await?.error_for_status()?;
                response.text().await
            }
            .await
            .map_err(|e| {
                FieldError::new(
                    "idp_metadata_url",
                    format!("the metadata could not be loaded: {e}"),
                )
            })?;
            settings.idp_metadata_xml = fetched;
        }
        self.provider(&settings, 0, false)?;
        Ok(settings)
    }

    pub(crate) fn begin(
        &self,
        settings: &SamlSettings,
        relay_state: &str,
    ) -> Result<SsoStart, SsoFailure> {
        let provider = self
            .provider(settings, 0, false)
            .map_err(|e| SsoFailure::new("configuration", e.reason))?;
        let idp_url = provider
            .sso_binding_location(HTTP_REDIRECT_BINDING)
            .ok_or_else(|| SsoFailure::new("configuration", "no HTTP-Redirect SSO service"))?;
        let mut request = provider
            .make_authentication_request(&idp_url)
            .map_err(|e| SsoFailure::new("configuration", text(&*e)))?;
        // samael's own ids carry 32 random bits; ours 122.
        request.id = format!("_{}", uuid::Uuid::new_v4().simple());
        let url = request
            .redirect(relay_state)
            .map_err(|e| SsoFailure::new("configuration", text(&*e)))?
            .ok_or_else(|| SsoFailure::new("configuration", "the request has no destination"))?;
        let attempt = Attempt {
            request_id: request.id.clone(),
            idp_entity_id: provider.idp_metadata.entity_id.clone().unwrap_or_default(),
        };
        let data = serde_json::to_string(&attempt)
            .map_err(|e| SsoFailure::new("internal", e.to_string()))?;
        Ok(SsoStart { redirect_url: url.to_string(), data })
    }

    pub(crate) fn complete(
        &self,
        settings: &SamlSettings,
        skew_secs: u32,
        pending: Option<&PendingLogin>,
        response: &SsoResponse,
        now: DateTime<Utc>,
    ) -> Result<SsoIdentity, SsoFailure> {
        let encoded = response
            .get("SAMLResponse")
            .ok_or_else(|| SsoFailure::new("response_missing", "no SAMLResponse was posted"))?;
        let attempt: Option<Attempt> = match pending {
            Some(p) => Some(serde_json::from_str(&p.data).map_err(|_| {
                SsoFailure::new("no_login_in_progress", "unreadable sign-in state")
            })?),
            None => None,
        };
        let provider = self
            .provider(settings, skew_secs, attempt.is_none())
            .map_err(|e| SsoFailure::new("configuration", e.reason))?;
        if let Some(attempt) = &attempt
            && provider.idp_metadata.entity_id.as_deref() != Some(attempt.idp_entity_id.as_str())
        {
            return Err(SsoFailure::new(
                "settings_changed",
                "the SSO settings changed while this sign-in was in progress",
            ));
        }
        let request_ids: Vec<&str> = attempt.iter().map(|a| a.request_id.as_str()).collect();
        let ids = if request_ids.is_empty() { None } else { Some(request_ids.as_slice()) };
        // Whitespace from form encoding is not part of base64.
        let compact: String = encoded.chars().filter(|c| !c.is_whitespace()).collect();
        let assertion = provider
            .parse_base64_response(&compact, ids)
            .map_err(|e| SsoFailure::new(reason_of(&*e), text(&*e)))?;
        self.identity(settings, &provider, &assertion, now)
    }

    fn identity(
        &self,
        settings: &SamlSettings,
        provider: &ServiceProvider,
        assertion: &Assertion,
        now: DateTime<Utc>,
    ) -> Result<SsoIdentity, SsoFailure> {
        let audience = provider.entity_id.clone().unwrap_or_default();
        let restricted = assertion
            .conditions
            .as_ref()
            .and_then(|c| c.audience_restrictions.as_ref())
            .is_some_and(|r| r.iter().any(|r| r.audience.contains(&audience)));
        if !restricted {
            return Err(SsoFailure::new(
                "audience_mismatch",
                format!("the assertion is not restricted to our entity id `{audience}`"),
            ));
        }
        let name_id = assertion
            .subject
            .as_ref()
            .and_then(|s| s.name_id.as_ref())
            .ok_or_else(|| SsoFailure::new("subject_missing", "the assertion has no NameID"))?;
        let attributes =
            assertion.attribute_statements.iter().flatten().flat_map(|s| &s.attributes);
        let attribute = |wanted: &str| {
            attributes
                .clone()
                .find(|a| {
                    a.name.as_deref() == Some(wanted) || a.friendly_name.as_deref() == Some(wanted)
                })
                .and_then(|a| a.values.iter().find_map(|v| v.value.clone()))
        };
        let email = match &settings.email_attribute {
            Some(name) => attribute(name),
            None => Some(name_id.value.clone()),
        };
        let name = attribute("displayName")
            .or_else(|| attribute("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"))
            .or_else(|| {
                let first = attribute("firstName")?;
                Some(match attribute("lastName") {
                    Some(last) => format!("{first} {last}"),
                    None => first,
                })
            });
        let until = assertion
            .conditions
            .as_ref()
            .and_then(|c| c.not_on_or_after)
            .unwrap_or(now + Duration::minutes(DEFAULT_ASSERTION_LIFETIME_MINUTES));
        Ok(SsoIdentity {
            protocol: SsoProtocol::Saml,
            issuer: assertion.issuer.value.clone().unwrap_or_default(),
            subject: name_id.value.clone(),
            email,
            // A signed statement of the company's directory.
            email_verified: true,
            name,
            assertion: Some((assertion.id.clone(), until)),
        })
    }

    /// Our service provider metadata.
    pub(crate) fn metadata(&self, settings: &SamlSettings) -> Result<String, SsoFailure> {
        let provider = self
            .provider(settings, 0, false)
            .map_err(|e| SsoFailure::new("configuration", e.reason))?;
        let descriptor =
            provider.metadata().map_err(|e| SsoFailure::new("configuration", text(&*e)))?;
        descriptor.to_string().map_err(|e| SsoFailure::new("configuration", text(&*e)))
    }
}
