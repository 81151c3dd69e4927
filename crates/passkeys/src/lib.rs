//! Passkeys for SecureAI: the WebAuthn registration and authentication
//! ceremonies with `webauthn-rs`, behind the domain's
//! [`PasskeyProtocol`] port. The relying party is the service's public
//! address: its host is the relying-party id, its origin the only one a
//! browser's answer may come from. Passkeys need user verification (a PIN
//! or biometrics on the authenticator): with the password they make the
//! second factor.
//!
//! Browsers allow WebAuthn on `https://` and on `http://localhost` only, so
//! a public address on a loopback IP (the embedded default,
//! `http://127.0.0.1:8080`) becomes `http://localhost:<port>`: open the
//! panel there to use passkeys.

use secureai_domain::User;
use secureai_domain::mfa::passkeys::{
    Ceremony, Passkey, PasskeyProtocol, PasskeyProtocolError, RegisteredCredential, UsedCredential,
};
use url::Url;
use webauthn_rs::prelude::{
    CredentialID, Passkey as Credential, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// The WebAuthn relying party of one public address.
pub struct WebAuthnPasskeys {
    webauthn: Webauthn,
    origin: Url,
}

/// Why passkeys cannot be offered at this address.
#[derive(Debug)]
pub struct UnusableAddress(pub String);

impl std::fmt::Display for UnusableAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UnusableAddress {}

impl WebAuthnPasskeys {
    /// The relying party of the service at `public_url`.
    ///
    /// # Errors
    /// [`UnusableAddress`] for an address browsers allow no WebAuthn on
    /// (`http://` other than localhost, or an IP that is not loopback).
    pub fn new(public_url: &str) -> Result<Self, UnusableAddress> {
        let origin = relying_party_origin(public_url)?;
        let rp_id = origin.host_str().unwrap_or_default().to_owned();
        let webauthn = WebauthnBuilder::new(&rp_id, &origin)
            .and_then(|builder| builder.rp_name("SecureAI").build())
            .map_err(|e| UnusableAddress(format!("passkeys at {origin}: {e}")))?;
        Ok(Self { webauthn, origin })
    }

    /// The origin a browser must be at (`https://host[:port]`, or
    /// `http://localhost:port`).
    pub fn origin(&self) -> &Url {
        &self.origin
    }
}

/// The origin passkeys work at for this public address.
fn relying_party_origin(public_url: &str) -> Result<Url, UnusableAddress> {
    let mut url = Url::parse(public_url)
        .map_err(|e| UnusableAddress(format!("the public address {public_url}: {e}")))?;
    url.set_path("/");
    url.set_query(None);
    url.set_fragment(None);
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    if loopback {
        url.set_host(Some("localhost")).map_err(|e| UnusableAddress(e.to_string()))?;
        return Ok(url);
    }
    if url.scheme() != "https" {
        return Err(UnusableAddress(format!(
            "passkeys need the service at an https:// address (or http://localhost), not {public_url}"
        )));
    }
    if !matches!(url.host(), Some(url::Host::Domain(_))) {
        return Err(UnusableAddress(format!(
            "passkeys need the service at a domain name, not an IP address: {public_url}"
        )));
    }
    Ok(url)
}

fn unexpected(what: &str, error: impl std::fmt::Display) -> PasskeyProtocolError {
    PasskeyProtocolError::Unexpected(format!("{what}: {error}"))
}

fn refused(error: impl std::fmt::Display) -> PasskeyProtocolError {
    PasskeyProtocolError::Refused(error.to_string())
}

/// The credentials the domain keeps, as webauthn-rs reads them.
fn credentials(passkeys: &[Passkey]) -> Result<Vec<Credential>, PasskeyProtocolError> {
    passkeys
        .iter()
        .map(|p| serde_json::from_str(&p.credential).map_err(|e| unexpected("a stored passkey", e)))
        .collect()
}

/// A credential id as browsers write it: base64url without padding.
fn id_text(id: &CredentialID) -> Result<String, PasskeyProtocolError> {
    use base64::Engine as _;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id))
}

impl PasskeyProtocol for WebAuthnPasskeys {
    fn start_registration(
        &self,
        user: &User,
        existing: &[Passkey],
    ) -> Result<Ceremony, PasskeyProtocolError> {
        let exclude = credentials(existing)?.iter().map(|c| c.cred_id().clone()).collect();
        let (options, state) = self
            .webauthn
            .start_passkey_registration(
                user.id.as_uuid(),
                user.email.as_str(),
                user.name.as_ref(),
                Some(exclude),
            )
            .map_err(|e| unexpected("starting a registration", e))?;
        Ok(Ceremony {
            options: serde_json::to_string(&options).map_err(|e| unexpected("options", e))?,
            state: serde_json::to_string(&state).map_err(|e| unexpected("state", e))?,
        })
    }

    fn finish_registration(
        &self,
        state: &str,
        answer: &str,
    ) -> Result<RegisteredCredential, PasskeyProtocolError> {
        let state: PasskeyRegistration =
            serde_json::from_str(state).map_err(|e| unexpected("a registration's state", e))?;
        let answer: RegisterPublicKeyCredential = serde_json::from_str(answer).map_err(refused)?;
        let credential =
            self.webauthn.finish_passkey_registration(&answer, &state).map_err(refused)?;
        Ok(RegisteredCredential {
            credential_id: id_text(credential.cred_id())?,
            credential: serde_json::to_string(&credential)
                .map_err(|e| unexpected("a credential", e))?,
        })
    }

    fn start_authentication(&self, passkeys: &[Passkey]) -> Result<Ceremony, PasskeyProtocolError> {
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(&credentials(passkeys)?)
            .map_err(|e| unexpected("starting an authentication", e))?;
        Ok(Ceremony {
            options: serde_json::to_string(&options).map_err(|e| unexpected("options", e))?,
            state: serde_json::to_string(&state).map_err(|e| unexpected("state", e))?,
        })
    }

    fn finish_authentication(
        &self,
        state: &str,
        answer: &str,
        passkeys: &[Passkey],
    ) -> Result<UsedCredential, PasskeyProtocolError> {
        let state: PasskeyAuthentication =
            serde_json::from_str(state).map_err(|e| unexpected("an authentication's state", e))?;
        let answer: PublicKeyCredential = serde_json::from_str(answer).map_err(refused)?;
        let result =
            self.webauthn.finish_passkey_authentication(&answer, &state).map_err(refused)?;
        let mut used = credentials(passkeys)?
            .into_iter()
            .find(|c| c.cred_id() == result.cred_id())
            .ok_or_else(|| refused("no passkey of this user made that signature"))?;
        let changed = used.update_credential(&result) == Some(true);
        Ok(UsedCredential {
            credential_id: id_text(result.cred_id())?,
            credential: if changed {
                Some(serde_json::to_string(&used).map_err(|e| unexpected("a credential", e))?)
            } else {
                None
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passkeys_work_on_https_and_on_localhost_only() {
        let origin = |url: &str| relying_party_origin(url).map(|u| u.to_string());
        assert_eq!(origin("http://127.0.0.1:8080").unwrap(), "http://localhost:8080/");
        assert_eq!(origin("http://0.0.0.0:8080/x?y").unwrap(), "http://localhost:8080/");
        assert_eq!(origin("https://ai.example.com").unwrap(), "https://ai.example.com/");
        assert!(origin("http://ai.example.com").is_err(), "plain http elsewhere");
        assert!(origin("https://10.0.0.5").is_err(), "an IP is no relying-party id");
        assert!(WebAuthnPasskeys::new("not a url").is_err());
    }
}
