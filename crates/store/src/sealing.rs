//! Secrets at rest. What the service must read back in clear — the SMTP
//! password, the OIDC client secret, the link of an invitation or reset
//! email not yet sent — is sealed with XChaCha20-Poly1305 (RustCrypto's
//! `chacha20poly1305`) under the operator's key before it is written, and
//! opened when it is read. Each value is bound to its place (the associated
//! data names the column and row), so a sealed value copied elsewhere does
//! not open. Sealed text reads `sealed:v1:<base64 of nonce and ciphertext>`;
//! text without the prefix was written before sealing existed and is read
//! as it is, until [`crate::SqlStore::seal_plaintext`] seals it at start.
//!
//! The key is the operator's (`SECUREAI_SECRET_KEY`, or a key file the
//! service creates on first start with mode 0600). A row in `settings`
//! holds a sealed check value, so a wrong key is found at start, not when
//! the first email fails.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secureai_domain::StoreError;

/// The text a sealed value starts with.
const PREFIX: &str = "sealed:v1:";
/// Nonce length of XChaCha20-Poly1305.
const NONCE_LEN: usize = 24;

/// A 256-bit operator key.
#[derive(Clone)]
pub struct SecretKey(Box<[u8; 32]>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([REDACTED])")
    }
}

/// A key that is not 32 bytes of standard base64.
#[derive(Debug, thiserror::Error)]
#[error(
    "the secret key must be 32 random bytes in base64 (44 characters), e.g. from `openssl rand -base64 32`"
)]
pub struct InvalidKey;

impl SecretKey {
    /// A new key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        Self(Box::new(XChaCha20Poly1305::generate_key(&mut OsRng).into()))
    }

    /// Reads a key written as base64 (surrounding whitespace ignored).
    ///
    /// # Errors
    /// [`InvalidKey`] unless it is exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, InvalidKey> {
        let bytes = STANDARD.decode(text.trim()).map_err(|_| InvalidKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| InvalidKey)?;
        Ok(Self(Box::new(key)))
    }

    /// The key as base64, for the key file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.as_slice())
    }
}

/// Seals and opens values under one key.
pub(crate) struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    pub(crate) fn new(key: &SecretKey) -> Self {
        Self { cipher: XChaCha20Poly1305::new(key.0.as_slice().into()) }
    }

    /// Seals `plain` for the place `purpose` names.
    pub(crate) fn seal(&self, purpose: &str, plain: &str) -> String {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption fails only for inputs of gigabytes; ours are short.
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: plain.as_bytes(), aad: purpose.as_bytes() })
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    /// Opens what [`Sealer::seal`] made for `purpose`; text written before
    /// sealing existed comes back as it is.
    ///
    /// # Errors
    /// [`StoreError`] if it was sealed under another key or for another
    /// place, or was altered.
    pub(crate) fn open(&self, purpose: &str, stored: &str) -> Result<String, StoreError> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let refused = || {
            StoreError::msg(format!(
                "a sealed secret ({purpose}) does not open with this secret key: the key is not \
                 the one it was sealed with, or the value was altered"
            ))
        };
        let bytes = STANDARD.decode(encoded).map_err(|_| refused())?;
        if bytes.len() < NONCE_LEN {
            return Err(refused());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = self
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: purpose.as_bytes() })
            .map_err(|_| refused())?;
        String::from_utf8(plain).map_err(|_| refused())
    }

    /// Whether `stored` is sealed (rather than legacy plain text).
    pub(crate) fn is_sealed(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_for_its_place() {
        let key = SecretKey::generate();
        let sealer = Sealer::new(&key);
        let sealed = sealer.seal("outbox.payload:1", "the invitation token");
        assert!(Sealer::is_sealed(&sealed));
        assert!(!sealed.contains("invitation"));
        assert_eq!(sealer.open("outbox.payload:1", &sealed).unwrap(), "the invitation token");
        // Each sealing has its own nonce.
        assert_ne!(sealed, sealer.seal("outbox.payload:1", "the invitation token"));
        // Another row, another key, or a changed byte: refused.
        assert!(sealer.open("outbox.payload:2", &sealed).is_err());
        assert!(Sealer::new(&SecretKey::generate()).open("outbox.payload:1", &sealed).is_err());
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 3;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        assert!(sealer.open("outbox.payload:1", &String::from_utf8(altered).unwrap()).is_err());
        // Legacy plain text reads as it is.
        assert_eq!(sealer.open("x", "plain").unwrap(), "plain");
    }

    #[test]
    fn keys_round_trip_through_base64_and_bad_ones_are_refused() {
        let key = SecretKey::generate();
        let again = SecretKey::from_base64(&format!(" {}\n", key.to_base64())).unwrap();
        assert_eq!(key.to_base64(), again.to_base64());
        assert!(SecretKey::from_base64("c2hvcnQ=").is_err());
        assert!(SecretKey::from_base64("not base64 at all!").is_err());
        assert_eq!(format!("{key:?}"), "SecretKey([REDACTED])");
    }
}
