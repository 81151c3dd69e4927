//! Secrets and the ports that make and check them: random tokens (for
//! sessions, invitations, setup links) and passwords.
//!
//! Tokens are handed to their owner once, as a [`PlainToken`], and stored only
//! as a [`TokenHash`] (SHA-256). Looking a token up by its digest leaks nothing
//! useful through timing; where digests are compared in memory the comparison
//! is constant-time.

use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::errors::StoreError;

/// Number of random bytes in every token (256 bits, above the 128-bit floor).
pub const TOKEN_BYTES: usize = 32;

/// A token as its owner sees it (in a link or a cookie). Never logged: its
/// `Debug` is redacted and it has no `Display`.
#[derive(Clone)]
pub struct PlainToken(SecretString);

impl PlainToken {
    /// Encodes random bytes from a CSPRNG as a URL-safe token.
    pub fn from_random_bytes(bytes: [u8; TOKEN_BYTES]) -> Self {
        Self(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Wraps a token presented by a client (cookie, header, link).
    pub fn presented(token: impl Into<String>) -> Self {
        Self(SecretString::from(token.into()))
    }

    /// The digest under which this token is stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.expose_secret().as_bytes()).into())
    }

    /// The token itself, for the one place that must hand it out (a link, a
    /// cookie, a response body at creation).
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for PlainToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainToken([REDACTED])")
    }
}

/// The SHA-256 digest of a token: the only form in which tokens are stored.
#[derive(Clone, Copy, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Rebuilds a digest read from storage.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses the lowercase hex form used in storage.
    pub fn from_hex(hex: &str) -> Option<Self> {
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(out))
    }

    /// Lowercase hex, as stored.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::hash::Hash for TokenHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A digest is not a secret, but a short prefix is enough to debug with.
        write!(f, "TokenHash({}…)", &self.to_hex()[..8])
    }
}

/// Makes new random tokens.
#[cfg_attr(feature = "mocks", mockall::automock)]
pub trait TokenGenerator: Send + Sync {
    /// A fresh token of [`TOKEN_BYTES`] random bytes from a CSPRNG.
    fn generate(&self) -> PlainToken;
}

/// Why a password was refused by the password policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyError {
    /// Shorter than the minimum.
    #[error("the password must have at least {min} characters")]
    TooShort {
        /// The minimum length in characters.
        min: usize,
    },
    /// Longer than the maximum.
    #[error("the password may have at most {max} characters")]
    TooLong {
        /// The maximum length in characters.
        max: usize,
    },
    /// Appears on the list of common or breached passwords.
    #[error("this password is too common; choose one that is harder to guess")]
    TooCommon,
}

/// A new password that satisfies the policy (OWASP ASVS 6.2: length 8–128
/// characters, no composition rules, not a common password).
pub struct Password(SecretString);

impl Password {
    /// Minimum length in characters.
    pub const MIN_CHARS: usize = 8;
    /// Maximum length in characters.
    pub const MAX_CHARS: usize = 128;

    /// Checks a chosen password against the policy.
    ///
    /// # Errors
    /// [`PasswordPolicyError`] naming the first rule it breaks.
    pub fn new(candidate: SecretString) -> Result<Self, PasswordPolicyError> {
        let text = candidate.expose_secret();
        let chars = text.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(PasswordPolicyError::TooShort { min: Self::MIN_CHARS });
        }
        if chars > Self::MAX_CHARS {
            return Err(PasswordPolicyError::TooLong { max: Self::MAX_CHARS });
        }
        if is_common_password(text) {
            return Err(PasswordPolicyError::TooCommon);
        }
        Ok(Self(candidate))
    }

    /// The password, for the hasher only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

fn is_common_password(candidate: &str) -> bool {
    let lowered = candidate.to_lowercase();
    COMMON_PASSWORDS.lines().any(|line| line == lowered)
}

/// A password hash in PHC string form. Not a secret in the strict sense, but
/// never shown or logged either: `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string produced by a [`PasswordHasher`] or read from storage.
    pub fn from_phc(phc: impl Into<String>) -> Self {
        Self(phc.into())
    }

    /// The PHC string, for storage.
    pub fn as_phc(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash([REDACTED])")
    }
}

/// Hashes and verifies passwords (argon2id in production).
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// Hashes a new password with a fresh salt.
    ///
    /// # Errors
    /// MUST return [`StoreError`] only if hashing itself failed.
    async fn hash(&self, password: &Password) -> Result<PasswordHash, StoreError>;

    /// Checks a presented password. With `hash == None` (unknown user, user
    /// without password) it MUST still spend the time of one verification and
    /// return `false`, so that response timing reveals nothing.
    ///
    /// # Errors
    /// MUST return [`StoreError`] only if the hash cannot be parsed or the
    /// hasher failed — a wrong password is `Ok(false)`.
    async fn verify(
        &self,
        presented: &SecretString,
        hash: Option<PasswordHash>,
    ) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn a_token_hash_round_trips_through_hex() {
        let token = PlainToken::from_random_bytes([7; TOKEN_BYTES]);
        let hash = token.hash();
        assert_eq!(TokenHash::from_hex(&hash.to_hex()), Some(hash));
        assert_eq!(hash.to_hex().len(), 64);
    }

    #[test]
    fn a_token_never_shows_in_debug_output() {
        let token = PlainToken::presented("super-secret-value");
        assert!(!format!("{token:?}").contains("super-secret"));
    }

    #[test]
    fn malformed_hex_is_not_a_token_hash() {
        assert_eq!(TokenHash::from_hex("zz"), None);
        assert_eq!(TokenHash::from_hex(&"g".repeat(64)), None);
    }

    #[test]
    fn short_long_and_common_passwords_are_refused() {
        assert_eq!(
            Password::new(secret("short")).unwrap_err(),
            PasswordPolicyError::TooShort { min: 8 }
        );
        assert_eq!(
            Password::new(secret(&"x".repeat(129))).unwrap_err(),
            PasswordPolicyError::TooLong { max: 128 }
        );
        assert_eq!(
            Password::new(secret("Password123")).unwrap_err(),
            PasswordPolicyError::TooCommon
        );
        assert!(Password::new(secret("correct horse battery staple")).is_ok());
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        // Eight characters, sixteen bytes.
        assert!(Password::new(secret("ééééüüüü")).is_ok());
    }
}
