//! SSO settings (Admin Panel > Settings > SSO): none, OpenID Connect or
//! SAML. Saved in the database so every instance agrees; until an admin
//! saves them, the operator's configuration file gives them.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::errors::FieldError;

/// An OIDC client secret: never displayed, logged or returned.
#[derive(Clone)]
pub struct ClientSecret(SecretString);

impl ClientSecret {
    /// Wraps a secret.
    ///
    /// # Errors
    /// [`FieldError`] on `client_secret` when empty, longer than 1024
    /// characters or containing control characters.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() {
            return Err(FieldError::new(
                "client_secret",
                "must not be empty (omit it to keep the saved one)",
            ));
        }
        if raw.chars().count() > 1024 {
            return Err(FieldError::new("client_secret", "must be at most 1024 characters"));
        }
        if raw.chars().any(char::is_control) {
            return Err(FieldError::new("client_secret", "must not contain control characters"));
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    /// The secret, for the protocol adapter and the store only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl PartialEq for ClientSecret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for ClientSecret {}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([REDACTED])")
    }
}

/// An OpenID Connect provider and our client registration at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// The issuer URL; discovery reads `/.well-known/openid-configuration`
    /// under it.
    pub issuer_url: String,
    /// Our client id.
    pub client_id: String,
    /// Our client secret (a confidential client); `None` for a public client
    /// that relies on PKCE alone.
    pub client_secret: Option<ClientSecret>,
    /// Scopes asked for besides `openid` (default `email profile`).
    pub scopes: Vec<String>,
}

/// A SAML identity provider and our service provider's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlSettings {
    /// Where the IdP metadata was loaded from, if from a URL.
    pub idp_metadata_url: Option<String>,
    /// The IdP metadata (XML) in force: it holds the signing certificate.
    pub idp_metadata_xml: String,
    /// Our entity id (default: the URL of our SP metadata).
    pub sp_entity_id: String,
    /// The attribute that carries the email; `None` = the NameID.
    pub email_attribute: Option<String>,
    /// Whether responses the IdP sends unasked (IdP-initiated) are accepted.
    pub allow_idp_initiated: bool,
    /// Whether the asserted email may link an SSO account that is already
    /// linked at another provider. Off by default: a SAML IdP asserts
    /// whatever its admins typed, verified or not.
    pub trust_email_for_linking: bool,
}

/// Which identity provider, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SsoMode {
    /// Passwords only.
    None,
    /// OpenID Connect.
    Oidc(OidcSettings),
    /// SAML 2.0.
    Saml(SamlSettings),
}

impl SsoMode {
    /// The stable name (`none`, `oidc`, `saml`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Oidc(_) => "oidc",
            Self::Saml(_) => "saml",
        }
    }
}

/// Everything about SSO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSettings {
    /// The identity provider.
    pub mode: SsoMode,
    /// Create an account on first sign-in for a verified email that is not
    /// a user yet (role user, within the seat limit). Off by default.
    pub jit_provisioning: bool,
    /// Clock difference tolerated with the identity provider, in seconds.
    pub clock_skew_secs: u32,
}

impl SsoSettings {
    /// Largest tolerated clock skew.
    pub const MAX_SKEW_SECS: u32 = 600;

    /// No SSO (the embedded default).
    pub fn disabled() -> Self {
        Self { mode: SsoMode::None, jit_provisioning: false, clock_skew_secs: 60 }
    }

    /// Whether an identity provider is configured.
    pub fn enabled(&self) -> bool {
        !matches!(self.mode, SsoMode::None)
    }

    /// Checks the fields that need no network (URLs, ids, lengths). The
    /// adapter checks the rest before anything is saved (discovery loads,
    /// metadata has a signing certificate).
    ///
    /// # Errors
    /// [`FieldError`] naming the first invalid field.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.clock_skew_secs > Self::MAX_SKEW_SECS {
            return Err(FieldError::new("clock_skew_secs", "must be at most 600 seconds"));
        }
        match &self.mode {
            SsoMode::None => Ok(()),
            SsoMode::Oidc(oidc) => {
                check_url("issuer_url", &oidc.issuer_url)?;
                check_text("client_id", &oidc.client_id, 255)?;
                for scope in &oidc.scopes {
                    if scope.is_empty()
                        || scope.len() > 64
                        || !scope.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
                    {
                        return Err(FieldError::new(
                            "scopes",
                            "each scope must be 1 to 64 printable characters without spaces",
                        ));
                    }
                }
                Ok(())
            }
            SsoMode::Saml(saml) => {
                if let Some(url) = &saml.idp_metadata_url {
                    check_url("idp_metadata_url", url)?;
                }
                // Metadata given by URL is loaded by the adapter's check.
                if saml.idp_metadata_xml.trim().is_empty() && saml.idp_metadata_url.is_none() {
                    return Err(FieldError::new(
                        "idp_metadata_xml",
                        "is required (paste the IdP metadata or give its URL)",
                    ));
                }
                if saml.idp_metadata_xml.len() > 48 * 1024 {
                    return Err(FieldError::new("idp_metadata_xml", "must be at most 48 KiB"));
                }
                check_text("sp_entity_id", &saml.sp_entity_id, 255)?;
                if let Some(attribute) = &saml.email_attribute {
                    check_text("email_attribute", attribute, 255)?;
                }
                Ok(())
            }
        }
    }
}

fn check_text(field: &'static str, value: &str, max: usize) -> Result<(), FieldError> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(FieldError::new(field, format!("must be 1 to {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(())
}

fn check_url(field: &'static str, value: &str) -> Result<(), FieldError> {
    check_text(field, value, 2000)?;
    let scheme_ok = value.starts_with("https://") || value.starts_with("http://");
    if !scheme_ok || value.contains(char::is_whitespace) {
        return Err(FieldError::new(field, "must be an http:// or https:// URL"));
    }
    Ok(())
}

/// What to do with the saved client secret on an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretChange {
    /// Keep the secret in force (the form left it blank).
    Keep,
    /// Remove it.
    Clear,
    /// Replace it.
    Set(ClientSecret),
}

/// An admin's new SSO settings, before the saved client secret is merged in
/// and before the adapter has checked them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoSettingsUpdate {
    /// The new settings; an OIDC client secret here is ignored in favour of
    /// `client_secret`.
    pub settings: SsoSettings,
    /// The OIDC client secret.
    pub client_secret: SecretChange,
}

impl SsoSettingsUpdate {
    /// The settings to save. A kept secret follows only the same issuer and
    /// client id, so it is never sent to a provider it was not saved for.
    ///
    /// # Errors
    /// [`FieldError`] naming the first invalid field.
    pub fn apply(self, current: &SsoSettings) -> Result<SsoSettings, FieldError> {
        let mut next = self.settings;
        if let SsoMode::Oidc(oidc) = &mut next.mode {
            oidc.client_secret = match self.client_secret {
                SecretChange::Set(secret) => Some(secret),
                SecretChange::Clear => None,
                SecretChange::Keep => match &current.mode {
                    SsoMode::Oidc(saved)
                        if saved.issuer_url == oidc.issuer_url
                            && saved.client_id == oidc.client_id =>
                    {
                        saved.client_secret.clone()
                    }
                    _ => None,
                },
            };
        }
        next.validate()?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oidc(issuer: &str, secret: Option<&str>) -> SsoSettings {
        SsoSettings {
            mode: SsoMode::Oidc(OidcSettings {
                issuer_url: issuer.into(),
                client_id: "secureai".into(),
                client_secret: secret.map(|s| ClientSecret::parse(s).unwrap()),
                scopes: vec!["email".into()],
            }),
            ..SsoSettings::disabled()
        }
    }

    fn secret_of(settings: &SsoSettings) -> Option<String> {
        match &settings.mode {
            SsoMode::Oidc(o) => o.client_secret.as_ref().map(|s| s.expose().to_owned()),
            _ => None,
        }
    }

    #[test]
    fn a_kept_secret_follows_only_the_same_issuer_and_client() {
        let saved = oidc("https://idp.example.com", Some("s3cret"));
        let same = SsoSettingsUpdate {
            settings: oidc("https://idp.example.com", None),
            client_secret: SecretChange::Keep,
        };
        assert_eq!(secret_of(&same.apply(&saved).unwrap()).as_deref(), Some("s3cret"));
        let elsewhere = SsoSettingsUpdate {
            settings: oidc("https://evil.example.com", None),
            client_secret: SecretChange::Keep,
        };
        assert_eq!(secret_of(&elsewhere.apply(&saved).unwrap()), None);
        let cleared = SsoSettingsUpdate {
            settings: oidc("https://idp.example.com", None),
            client_secret: SecretChange::Clear,
        };
        assert_eq!(secret_of(&cleared.apply(&saved).unwrap()), None);
    }

    #[test]
    fn settings_name_their_first_invalid_field() {
        let bad_url = oidc("ftp://idp.example.com", None);
        assert_eq!(bad_url.validate().unwrap_err().field, "issuer_url");
        let mut skew = SsoSettings::disabled();
        skew.clock_skew_secs = 3600;
        assert_eq!(skew.validate().unwrap_err().field, "clock_skew_secs");
        let saml = SsoSettings {
            mode: SsoMode::Saml(SamlSettings {
                idp_metadata_url: None,
                idp_metadata_xml: " ".into(),
                sp_entity_id: "https://ai.example.com/auth/saml/metadata".into(),
                email_attribute: None,
                allow_idp_initiated: false,
                trust_email_for_linking: false,
            }),
            ..SsoSettings::disabled()
        };
        assert_eq!(saml.validate().unwrap_err().field, "idp_metadata_xml");
        assert_eq!(
            format!("{:?}", ClientSecret::parse("hunter2").unwrap()),
            "ClientSecret([REDACTED])"
        );
    }
}
