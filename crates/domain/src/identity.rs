//! Who someone is, as every subdomain names them: a user's identifier and
//! validated fields (email address, display name, department). Each parses
//! what a person or a file wrote, or refuses it with the reason in words.
//! The user itself, with role and lifecycle, is [`crate::users::models::User`].

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// A user's stable identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Uuid);

impl UserId {
    /// A new identifier (see [`crate::record_id`]).
    pub fn generate() -> Self {
        Self(crate::record_id())
    }

    /// Wraps an identifier read from storage.
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for UserId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// Why a string is not an acceptable email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Empty after trimming.
    #[error("the email address is empty")]
    Empty,
    /// Longer than 254 characters (RFC 5321 path limit).
    #[error("the email address is longer than 254 characters")]
    TooLong,
    /// Not of the form `name@company.example`.
    #[error("`{0}` is not a valid email address")]
    Invalid(String),
}

/// An email address, trimmed, as the user wrote it, with a case-insensitive
/// identity: two addresses that differ only in letter case are the same user.
#[derive(Debug, Clone)]
pub struct EmailAddress {
    display: String,
    key: String,
}

impl EmailAddress {
    /// Maximum length, in characters.
    pub const MAX_LEN: usize = 254;

    /// Validates an address typed by a person or read from a file.
    ///
    /// # Errors
    /// [`EmailError`] if the trimmed text is empty, too long or not an address
    /// of the usual `local@domain.tld` form. Control characters (CR/LF header
    /// injection), spaces, quoted local parts and IP-literal domains are refused.
    pub fn parse(raw: &str) -> Result<Self, EmailError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.chars().count() > Self::MAX_LEN {
            return Err(EmailError::TooLong);
        }
        let invalid = || EmailError::Invalid(trimmed.chars().take(80).collect());
        if trimmed.chars().any(|c| c.is_control() || c.is_whitespace() || c == '"') {
            return Err(invalid());
        }
        let (local, domain) = trimmed.rsplit_once('@').ok_or_else(invalid)?;
        if local.is_empty()
            || domain.starts_with('[')
            || !domain.contains('.')
            || domain.ends_with('.')
            || !email_address::EmailAddress::is_valid(trimmed)
        {
            return Err(invalid());
        }
        let key = trimmed.to_lowercase();
        // Lowercasing can lengthen some letters (İ → i̇): the key is stored too.
        if key.chars().count() > Self::MAX_LEN {
            return Err(EmailError::TooLong);
        }
        Ok(Self { display: trimmed.to_owned(), key })
    }

    /// Rebuilds an address read from storage (already validated once).
    pub fn from_stored(display: impl Into<String>) -> Self {
        let display = display.into();
        let key = display.to_lowercase();
        Self { display, key }
    }

    /// The address as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The case-insensitive identity (lowercase), unique across the instance.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl PartialEq for EmailAddress {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for EmailAddress {}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.display
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

/// Why a display name or department is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextFieldError {
    /// Empty after trimming (names are required).
    #[error("must not be blank")]
    Blank,
    /// Too long.
    #[error("must have at most {max} characters")]
    TooLong {
        /// The maximum, in characters.
        max: usize,
    },
    /// Contains control characters (line breaks, tabs, …).
    #[error("must not contain line breaks or control characters")]
    ControlCharacters,
}

fn clean_text(raw: &str, max: usize) -> Result<Option<String>, TextFieldError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > max {
        return Err(TextFieldError::TooLong { max });
    }
    if trimmed.chars().any(char::is_control) {
        return Err(TextFieldError::ControlCharacters);
    }
    Ok(Some(trimmed.to_owned()))
}

/// A user's display name: required, trimmed, at most 200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Maximum length, in characters.
    pub const MAX_LEN: usize = 200;

    /// Validates a display name.
    ///
    /// # Errors
    /// [`TextFieldError`] if blank, too long or containing control characters.
    pub fn parse(raw: &str) -> Result<Self, TextFieldError> {
        clean_text(raw, Self::MAX_LEN)?.map(Self).ok_or(TextFieldError::Blank)
    }
}

impl DisplayName {
    /// Rebuilds a name read from storage or a built-in default (already
    /// valid).
    pub fn from_stored(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The case-folded form names sort and search by.
    pub fn sort_key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl AsRef<str> for DisplayName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An optional department: trimmed, at most 100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department(String);

impl Department {
    /// Maximum length, in characters.
    pub const MAX_LEN: usize = 100;

    /// Validates a department; blank means "no department".
    ///
    /// # Errors
    /// [`TextFieldError`] if too long or containing control characters.
    pub fn parse(raw: &str) -> Result<Option<Self>, TextFieldError> {
        Ok(clean_text(raw, Self::MAX_LEN)?.map(Self))
    }
}

impl AsRef<str> for Department {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Department {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
