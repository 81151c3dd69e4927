//! RFC 6238 codes over `totp-rs`: which time step a code belongs to.

use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq as _;
use totp_rs::{Algorithm, TOTP};

use super::models::TotpSecret;

/// Seconds per step.
pub(crate) const PERIOD: u64 = 30;
/// Steps accepted either side of the current one.
pub(crate) const SKEW: u64 = 1;
/// Digits per code.
pub(crate) const DIGITS: usize = 6;
/// Shown by authenticator apps.
pub(crate) const ISSUER: &str = "SecureAI";

fn generator(secret: &TotpSecret, account: &str) -> TOTP {
    TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        0,
        PERIOD,
        secret.bytes(),
        Some(ISSUER.to_owned()),
        account.to_owned(),
    )
}

/// The step `at` falls in (0 before 1970).
pub(crate) fn step_at(at: DateTime<Utc>) -> u64 {
    u64::try_from(at.timestamp()).unwrap_or(0) / PERIOD
}

/// The code of a step.
pub(crate) fn code_of(secret: &TotpSecret, step: u64) -> String {
    generator(secret, "").generate(step.saturating_mul(PERIOD))
}

/// The step within one of `at`'s whose code `code` is, if any; every
/// candidate is compared in constant time. A code that is not six ASCII
/// digits matches nothing.
pub(crate) fn matching_step(secret: &TotpSecret, code: &str, at: DateTime<Utc>) -> Option<u64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(at);
    let mut found = None;
    for step in now.saturating_sub(SKEW)..=now.saturating_add(SKEW) {
        if bool::from(code_of(secret, step).as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://` link for an authenticator app.
pub(crate) fn otpauth_uri(secret: &TotpSecret, account: &str) -> String {
    generator(secret, account).get_url()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1, the secret "12345678901234567890",
    /// truncated to six digits.
    #[test]
    fn codes_follow_rfc_6238() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890");
        for (time, code) in
            [(59_u64, "287082"), (1_111_111_109, "081804"), (2_000_000_000, "279037")]
        {
            assert_eq!(code_of(&secret, time / PERIOD), code, "at {time}");
        }
    }

    #[test]
    fn a_code_matches_its_step_and_one_either_side_only() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890");
        let at = DateTime::from_timestamp(1_111_111_109, 0).unwrap();
        let now = step_at(at);
        for offset in [-1_i64, 0, 1] {
            let step = now.checked_add_signed(offset).unwrap();
            assert_eq!(matching_step(&secret, &code_of(&secret, step), at), Some(step));
        }
        for far in [now - 2, now + 2] {
            assert_eq!(matching_step(&secret, &code_of(&secret, far), at), None);
        }
        for bad in ["", "12345", "1234567", "12 456", "abcdef", "１２３４５６"] {
            assert_eq!(matching_step(&secret, bad, at), None, "{bad}");
        }
    }

    #[test]
    fn the_link_names_the_issuer_and_the_account() {
        let secret = TotpSecret::from_bytes(&[7; 20]);
        let uri = otpauth_uri(&secret, "ada@example.com");
        assert!(uri.starts_with("otpauth://totp/SecureAI:ada%40example.com?secret="), "{uri}");
        assert!(uri.contains(&format!("secret={}", secret.expose_base32())));
        assert!(uri.contains("issuer=SecureAI"));
    }
}
