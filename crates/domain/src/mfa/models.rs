//! What the second factors are made of.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use crate::users::models::UserId;

/// How many recovery codes a set has.
pub const RECOVERY_CODES: usize = 10;

/// Random bytes in a TOTP secret (RFC 4226 §4 recommends 160 bits).
pub const TOTP_SECRET_BYTES: usize = 20;

/// A TOTP secret, base32 (RFC 4648, no padding) as authenticator apps take
/// it. Never logged: its `Debug` is redacted and it has no `Display`.
#[derive(Clone)]
pub struct TotpSecret(SecretString);

impl TotpSecret {
    /// Encodes random bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(SecretString::from(base32::encode(
            base32::Alphabet::Rfc4648 { padding: false },
            bytes,
        )))
    }

    /// A secret as stored (base32); `None` if it is not base32 of
    /// [`TOTP_SECRET_BYTES`] bytes.
    pub fn from_base32(text: &str) -> Option<Self> {
        let bytes = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, text)?;
        (bytes.len() == TOTP_SECRET_BYTES).then(|| Self::from_bytes(&bytes))
    }

    /// The base32 text, for the one place that must show it (enrolment)
    /// and for the store to encrypt.
    pub fn expose_base32(&self) -> &str {
        self.0.expose_secret()
    }

    pub(crate) fn bytes(&self) -> Vec<u8> {
        base32::decode(base32::Alphabet::Rfc4648 { padding: false }, self.0.expose_secret())
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(…)")
    }
}

impl PartialEq for TotpSecret {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq as _;
        self.expose_base32().as_bytes().ct_eq(other.expose_base32().as_bytes()).into()
    }
}

impl Eq for TotpSecret {}

/// A user's authenticator app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpEnrolment {
    /// Whose.
    pub user_id: UserId,
    /// The shared secret.
    pub secret: TotpSecret,
    /// When the secret was made; it tells one pending secret from the next.
    pub created_at: DateTime<Utc>,
    /// When a first code confirmed it; `None` while pending (it then
    /// signs nobody in).
    pub confirmed_at: Option<DateTime<Utc>>,
    /// The last time step (Unix seconds / 30) a code was accepted for:
    /// that step and every earlier one are spent.
    pub last_step: Option<u64>,
}

/// What an enrolment shows once: the secret, and the `otpauth://` link an
/// authenticator app reads (as a QR code or pasted).
#[derive(Debug, Clone)]
pub struct TotpSetup {
    /// The secret, base32.
    pub secret: TotpSecret,
    /// `otpauth://totp/SecureAI:<email>?secret=…&issuer=SecureAI`.
    pub otpauth_uri: SecretString,
}

/// A user's second factors, as their account page and their profile show
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MfaStatus {
    /// An authenticator app is confirmed.
    pub totp: bool,
    /// Passkeys registered.
    pub passkeys: u32,
    /// Recovery codes not used yet.
    pub recovery_codes_left: u32,
}

impl MfaStatus {
    /// Whether the user has a second factor at all.
    pub fn enrolled(self) -> bool {
        self.totp || self.passkeys > 0
    }
}

/// A second-factor check as sent: `"123456"`, or a recovery code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaMethod {
    /// An authenticator app's code.
    Totp,
    /// A recovery code.
    RecoveryCode,
    /// A passkey's signed answer to the sign-in's challenge.
    Webauthn,
}

impl MfaMethod {
    /// The name in the API and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::RecoveryCode => "recovery_code",
            Self::Webauthn => "webauthn",
        }
    }
}

/// The digest a recovery code is kept under: of its letters and digits in
/// lower case, so that case, dashes and spaces do not matter.
pub(crate) fn recovery_digest(code: &str) -> crate::secrets::TokenHash {
    let normal: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(64)
        .collect();
    crate::secrets::PlainToken::presented(normal).hash()
}

/// An email to `user` about their second factor.
pub(crate) fn notice(
    user: &crate::users::models::User,
    message: crate::mail::models::MailMessage,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::mail::models::OutgoingMail {
    crate::mail::models::OutgoingMail {
        id: crate::record_id(),
        user_id: Some(user.id),
        to: user.email.clone(),
        to_name: user.name.clone(),
        message,
        created_at: now,
    }
}
