//! Settings > SSO (`GET/PUT /settings/sso`).

use poem::Request;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{Enum, Object, OpenApi};
use secureai_domain::access::ApiScope;
use secureai_domain::errors::FieldError;
use secureai_domain::mail::settings::SettingsSource;
use secureai_domain::sso::settings::{
    ClientSecret, OidcSettings, SamlSettings, SecretChange, SsoMode, SsoSettings, SsoSettingsUpdate,
};

use super::ApiTags;
use crate::AppState;
use crate::auth::{SessionAuth, request_context};
use crate::errors::ApiError;

/// Which identity provider, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub(crate) enum SsoModeDto {
    /// Passwords only.
    None,
    /// OpenID Connect.
    Oidc,
    /// SAML 2.0.
    Saml,
}

/// OpenID Connect settings as shown: the client secret never leaves.
#[derive(Debug, Object)]
pub(crate) struct OidcView {
    /// The issuer URL (discovery under `/.well-known/openid-configuration`).
    issuer_url: String,
    /// Our client id at the provider.
    client_id: String,
    /// Whether a client secret is saved (it is never returned).
    client_secret_set: bool,
    /// Scopes asked for besides `openid`.
    scopes: Vec<String>,
}

/// SAML settings as shown.
#[derive(Debug, Object)]
pub(crate) struct SamlView {
    /// Where the IdP metadata was loaded from, if from a URL.
    idp_metadata_url: Option<String>,
    /// The IdP metadata in force.
    idp_metadata_xml: String,
    /// Our entity id.
    sp_entity_id: String,
    /// The attribute carrying the email; `null` = the NameID.
    email_attribute: Option<String>,
    /// Whether IdP-initiated sign-in is accepted.
    allow_idp_initiated: bool,
    /// Whether the asserted email may link an account already linked at
    /// another provider.
    trust_email_for_linking: bool,
}

/// The SSO settings in force.
#[derive(Debug, Object)]
pub(crate) struct SsoSettingsView {
    /// `none`, `oidc` or `saml`.
    mode: SsoModeDto,
    /// OIDC settings when `mode` is `oidc`.
    oidc: Option<OidcView>,
    /// SAML settings when `mode` is `saml`.
    saml: Option<SamlView>,
    /// Create accounts at first sign-in for verified emails that are not
    /// users yet (role user, within the seat limit).
    jit_provisioning: bool,
    /// Clock difference tolerated with the provider, in seconds.
    clock_skew_secs: u32,
    /// The redirect URI to register at the OIDC provider.
    oidc_redirect_uri: String,
    /// Where our SAML service provider metadata is served.
    saml_metadata_url: String,
    /// `saved` (by an admin) or `configuration` (the operator's file).
    source: String,
}

impl SsoSettingsView {
    fn new(state: &AppState, settings: &SsoSettings, source: SettingsSource) -> Self {
        let (mode, oidc, saml) = match &settings.mode {
            SsoMode::None => (SsoModeDto::None, None, None),
            SsoMode::Oidc(o) => (
                SsoModeDto::Oidc,
                Some(OidcView {
                    issuer_url: o.issuer_url.clone(),
                    client_id: o.client_id.clone(),
                    client_secret_set: o.client_secret.is_some(),
                    scopes: o.scopes.clone(),
                }),
                None,
            ),
            SsoMode::Saml(s) => (
                SsoModeDto::Saml,
                None,
                Some(SamlView {
                    idp_metadata_url: s.idp_metadata_url.clone(),
                    idp_metadata_xml: s.idp_metadata_xml.clone(),
                    sp_entity_id: s.sp_entity_id.clone(),
                    email_attribute: s.email_attribute.clone(),
                    allow_idp_initiated: s.allow_idp_initiated,
                    trust_email_for_linking: s.trust_email_for_linking,
                }),
            ),
        };
        Self {
            mode,
            oidc,
            saml,
            jit_provisioning: settings.jit_provisioning,
            clock_skew_secs: settings.clock_skew_secs,
            oidc_redirect_uri: state.oidc_redirect_uri(),
            saml_metadata_url: state.saml_metadata_url(),
            source: source.as_str().to_owned(),
        }
    }
}

/// New OIDC settings.
#[derive(Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct OidcInput {
    /// The issuer URL; discovery must load from it.
    issuer_url: String,
    /// Our client id.
    client_id: String,
    /// Write-only. Leave out to keep the saved secret (for the same issuer
    /// and client id), `null` to remove it, a string to replace it.
    #[oai(write_only)]
    client_secret: MaybeUndefined<String>,
    /// Scopes besides `openid`; default `email profile`.
    scopes: Option<Vec<String>>,
}

impl std::fmt::Debug for OidcInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcInput")
            .field("issuer_url", &self.issuer_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// New SAML settings.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct SamlInput {
    /// Load the IdP metadata from this URL…
    idp_metadata_url: Option<String>,
    /// …or use this pasted metadata.
    idp_metadata_xml: Option<String>,
    /// Our entity id; default: the URL of our SP metadata.
    sp_entity_id: Option<String>,
    /// The attribute carrying the email; default: the NameID.
    email_attribute: Option<String>,
    /// Accept IdP-initiated sign-in (default false).
    allow_idp_initiated: Option<bool>,
    /// Let the asserted email link an account already linked at another
    /// provider (default false; accounts awaiting their first SSO sign-in
    /// are linked either way, password accounts never).
    trust_email_for_linking: Option<bool>,
}

/// New SSO settings.
#[derive(Debug, Object)]
#[oai(deny_unknown_fields)]
pub(crate) struct SsoSettingsInput {
    /// `none`, `oidc` or `saml`.
    mode: SsoModeDto,
    /// Required when `mode` is `oidc`.
    oidc: Option<OidcInput>,
    /// Required when `mode` is `saml`.
    saml: Option<SamlInput>,
    /// Just-in-time provisioning (default false).
    jit_provisioning: Option<bool>,
    /// Clock skew tolerated, in seconds (default 60, at most 600).
    clock_skew_secs: Option<u32>,
}

impl SsoSettingsInput {
    fn into_update(self, default_entity_id: &str) -> Result<SsoSettingsUpdate, FieldError> {
        let mut client_secret = SecretChange::Keep;
        let mode = match self.mode {
            SsoModeDto::None => SsoMode::None,
            SsoModeDto::Oidc => {
                let oidc = self
                    .oidc
                    .ok_or_else(|| FieldError::new("oidc", "is required when mode is oidc"))?;
                client_secret = match oidc.client_secret {
                    MaybeUndefined::Undefined => SecretChange::Keep,
                    MaybeUndefined::Null => SecretChange::Clear,
                    MaybeUndefined::Value(secret) => {
                        SecretChange::Set(ClientSecret::parse(&secret)?)
                    }
                };
                SsoMode::Oidc(OidcSettings {
                    issuer_url: oidc.issuer_url.trim().to_owned(),
                    client_id: oidc.client_id.trim().to_owned(),
                    client_secret: None,
                    scopes: oidc
                        .scopes
                        .unwrap_or_else(|| vec!["email".to_owned(), "profile".to_owned()]),
                })
            }
            SsoModeDto::Saml => {
                let saml = self
                    .saml
                    .ok_or_else(|| FieldError::new("saml", "is required when mode is saml"))?;
                if saml.idp_metadata_url.is_none() && saml.idp_metadata_xml.is_none() {
                    return Err(FieldError::new(
                        "idp_metadata_xml",
                        "give the IdP metadata as idp_metadata_url or idp_metadata_xml",
                    ));
                }
                SsoMode::Saml(SamlSettings {
                    idp_metadata_url: saml.idp_metadata_url.map(|u| u.trim().to_owned()),
                    idp_metadata_xml: saml.idp_metadata_xml.unwrap_or_default(),
                    sp_entity_id: saml.sp_entity_id.unwrap_or_else(|| default_entity_id.to_owned()),
                    email_attribute: saml.email_attribute.filter(|a| !a.trim().is_empty()),
                    allow_idp_initiated: saml.allow_idp_initiated.unwrap_or(false),
                    trust_email_for_linking: saml.trust_email_for_linking.unwrap_or(false),
                })
            }
        };
        Ok(SsoSettingsUpdate {
            settings: SsoSettings {
                mode,
                jit_provisioning: self.jit_provisioning.unwrap_or(false),
                clock_skew_secs: self.clock_skew_secs.unwrap_or(60),
            },
            client_secret,
        })
    }
}

pub(crate) struct SsoApi(pub(crate) AppState);

#[OpenApi(prefix_path = "/v1", tag = "ApiTags::Settings")]
impl SsoApi {
    /// The SSO settings in force (the client secret is never returned), with
    /// the redirect URI to register at an OIDC provider and the URL of our
    /// SAML metadata.
    #[oai(path = "/settings/sso", method = "get")]
    async fn sso_settings(
        &self,
        auth: SessionAuth,
        req: &Request,
    ) -> Result<Json<SsoSettingsView>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?.admin()?;
        let (settings, source) = self.0.service.sso.sso_settings(&admin).await?;
        Ok(Json(SsoSettingsView::new(&self.0, &settings, source)))
    }

    /// Save SSO settings. They are checked against the real provider first:
    /// OIDC discovery must load; SAML metadata must carry a signing
    /// certificate. While SSO is configured, new invitations are SSO users
    /// unless `sign_in: password` is asked for.
    #[oai(path = "/settings/sso", method = "put")]
    async fn set_sso_settings(
        &self,
        auth: SessionAuth,
        body: Json<SsoSettingsInput>,
        req: &Request,
    ) -> Result<Json<SsoSettingsView>, ApiError> {
        let admin = self.0.caller(&auth, req, Some(ApiScope::SettingsWrite)).await?.admin()?;
        let update = body
            .0
            .into_update(&self.0.saml_metadata_url())
            .map_err(|e| ApiError::invalid_field(&e))?;
        let (settings, source) =
            self.0.service.sso.update_sso_settings(&admin, update, &request_context(req)).await?;
        Ok(Json(SsoSettingsView::new(&self.0, &settings, source)))
    }
}
