//! The Standard Webhooks signature (<https://www.standardwebhooks.com>):
//! `webhook-signature: v1,<base64 of HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`,
//! the key being the base64 part of the endpoint's `whsec_…` secret.
//! During a rotation a delivery carries one signature per secret,
//! space-separated. Checked against the reference library
//! (`standardwebhooks` on PyPI) in the test suite.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Secrets start with this.
pub const SECRET_PREFIX: &str = "whsec_";

/// An endpoint's signing secret: `whsec_` + base64 of 32 random bytes.
/// Shown to the admin once; kept sealed by the operator key.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

/// A secret that is not `whsec_` + base64 of 24 to 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret is whsec_ followed by base64 of 24 to 64 bytes")]
pub struct InvalidSecret;

impl WebhookSecret {
    /// The secret for 32 random bytes (from the token port: a CSPRNG).
    pub fn from_random(bytes: [u8; 32]) -> Self {
        Self(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// A secret as stored or given.
    ///
    /// # Errors
    /// [`InvalidSecret`].
    pub fn parse(text: &str) -> Result<Self, InvalidSecret> {
        let key = text.strip_prefix(SECRET_PREFIX).ok_or(InvalidSecret)?;
        let bytes = STANDARD.decode(key).map_err(|_| InvalidSecret)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(InvalidSecret);
        }
        Ok(Self(text.to_owned()))
    }

    /// The secret's text (`whsec_…`), for the one time it is shown and
    /// for sealing.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn key(&self) -> Vec<u8> {
        // Checked when made or parsed.
        STANDARD.decode(&self.0[SECRET_PREFIX.len()..]).unwrap_or_default()
    }
}

/// The `v1,…` signature of a delivery: message id (stable across
/// retries), Unix timestamp in seconds, and the exact body bytes sent.
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.key())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header for the endpoint's secrets (the current
/// one first, then the one being rotated out).
pub fn signature_header(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets.iter().map(|s| sign(s, id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference
    /// libraries.
    #[test]
    fn the_specifications_example_signs_alike() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signed = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_checked_and_never_printed() {
        let secret = WebhookSecret::from_random([7; 32]);
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(secret.expose()), Ok(secret.clone()));
        assert_eq!(format!("{secret:?}"), "WebhookSecret(…)");
        for bad in ["", "whsec_", "whsec_!!!!", "sk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_AAAA"]
        {
            assert_eq!(WebhookSecret::parse(bad), Err(InvalidSecret), "{bad}");
        }
        let two = [secret.clone(), WebhookSecret::from_random([8; 32])];
        let header = signature_header(&two, "msg_1", 1, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(header.starts_with(&sign(&secret, "msg_1", 1, b"{}")));
    }
}
