//! A personal API token and the shape of its secret.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::access::ApiScope;
use crate::users::models::UserId;

/// Secrets start with this, so that a leaked one is recognised by secret
/// scanners and never confused with a session or a service token.
pub const API_TOKEN_PREFIX: &str = "sai_pat_";

/// The random part: 256 bits, unpadded base64url.
const RANDOM_LEN: usize = 43;
/// The check: CRC32 of the prefix and random part, 8 hex digits.
const CHECK_LEN: usize = 8;

/// Days a token lives when none is asked for.
pub const DEFAULT_LIFETIME_DAYS: u32 = 90;
/// The longest lifetime: a year and a day.
pub const MAX_LIFETIME_DAYS: u32 = 366;
/// Live tokens one user may hold.
pub const MAX_TOKENS_PER_USER: usize = 50;

/// A personal API token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Identifier.
    pub id: Uuid,
    /// Whose: the requests it makes are theirs.
    pub user_id: UserId,
    /// What the owner calls it (1 to 64 characters).
    pub name: String,
    /// What it may do.
    pub scopes: Vec<ApiScope>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was last used (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// From where it was last used.
    pub last_used_ip: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiToken {
    /// Whether it opens requests at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.status(now) == ApiTokenStatus::Active
    }

    /// Where it stands at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> ApiTokenStatus {
        if self.revoked_at.is_some() {
            ApiTokenStatus::Revoked
        } else if now >= self.expires_at {
            ApiTokenStatus::Expired
        } else {
            ApiTokenStatus::Active
        }
    }
}

/// What `POST /me/tokens` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewApiToken {
    /// Its name.
    pub name: String,
    /// Days it lives (1 to 366; default 90).
    pub expires_in_days: Option<u32>,
    /// Scope names (`users:read`, …), at least one.
    pub scopes: Vec<String>,
}

/// Where a token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiTokenStatus {
    /// It opens requests.
    Active,
    /// Its time ran out.
    Expired,
    /// Revoked (by its owner, an admin, or because its owner lost the role).
    Revoked,
    /// Its owner is no longer an active admin: it is revoked at its next
    /// use.
    Disabled,
}

impl ApiTokenStatus {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::Disabled => "disabled",
        }
    }
}

/// A token as the lists show it: where it stands now, and (in the admins'
/// list) its owner's email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedApiToken {
    /// The token.
    pub token: ApiToken,
    /// Where it stands now.
    pub status: ApiTokenStatus,
    /// Its owner's email now (`None`: the caller's own list, or the owner
    /// was erased).
    pub owner_email: Option<String>,
}

fn check_of(body: &str) -> String {
    format!("{:08x}", crc32fast::hash(body.as_bytes()))
}

/// The secret for `random` (an unpadded base64url encoding of 256 random
/// bits): the prefix, the random part, and a CRC32 check of both.
pub fn secret_from(random: &str) -> String {
    let body = format!("{API_TOKEN_PREFIX}{random}");
    let check = check_of(&body);
    format!("{body}{check}")
}

/// Whether `presented` has the shape of a token secret and its check
/// matches: a typo or a made-up string is refused without a database read.
pub fn well_formed(presented: &str) -> bool {
    if presented.len() != API_TOKEN_PREFIX.len() + RANDOM_LEN + CHECK_LEN
        || !presented.starts_with(API_TOKEN_PREFIX)
    {
        return false;
    }
    let (body, check) = presented.split_at(presented.len() - CHECK_LEN);
    let random = &body[API_TOKEN_PREFIX.len()..];
    random.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && check_of(body) == check
}

/// Whether `name` is a usable token name: 1 to 64 characters (trimmed), no
/// control characters.
pub fn valid_name(name: &str) -> bool {
    let count = name.chars().count();
    (1..=64).contains(&count) && !name.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_carries_its_check_and_a_changed_character_breaks_it() {
        let random = "a".repeat(RANDOM_LEN);
        let secret = secret_from(&random);
        assert!(secret.starts_with("sai_pat_"));
        assert_eq!(secret.len(), 8 + 43 + 8);
        assert!(well_formed(&secret));
        let mut typo = secret.clone().into_bytes();
        typo[12] = b'b';
        assert!(!well_formed(&String::from_utf8(typo).unwrap()));
        assert!(!well_formed(&secret[..secret.len() - 1]));
        assert!(!well_formed(&secret.replace("sai_pat_", "sai_xyz_")));
        assert!(!well_formed(&format!("{secret}0")));
        assert!(!well_formed(""));
        let odd = secret_from(&"é".repeat(RANDOM_LEN / 2));
        assert!(!well_formed(&odd), "only base64url characters");
    }
}
