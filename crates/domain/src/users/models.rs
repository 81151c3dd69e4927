//! User model: validated newtypes, roles and permissions, lifecycle states.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
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

/// What a role allows. Other SecureAI services check these rather than roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// Start conversations, upload documents, search the knowledge base, use
    /// assigned tools and assistants.
    UseAssistant,
    /// Manage one's own profile and settings.
    ManageOwnProfile,
    /// Invite, deactivate and change the roles of users.
    ManageUsers,
    /// View analytics and usage reports.
    ViewAnalytics,
    /// Configure models and providers.
    ConfigureModels,
    /// Manage tools and assistants.
    ManageTools,
    /// Adjust system settings (SSO, data retention, content filtering).
    ManageSettings,
}

impl Permission {
    /// The stable name used in APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UseAssistant => "use_assistant",
            Self::ManageOwnProfile => "manage_own_profile",
            Self::ManageUsers => "manage_users",
            Self::ViewAnalytics => "view_analytics",
            Self::ConfigureModels => "configure_models",
            Self::ManageTools => "manage_tools",
            Self::ManageSettings => "manage_settings",
        }
    }
}

const USER_PERMISSIONS: &[Permission] = &[Permission::UseAssistant, Permission::ManageOwnProfile];
const ADMIN_PERMISSIONS: &[Permission] = &[
    Permission::UseAssistant,
    Permission::ManageOwnProfile,
    Permission::ManageUsers,
    Permission::ViewAnalytics,
    Permission::ConfigureModels,
    Permission::ManageTools,
    Permission::ManageSettings,
];

/// Exactly one role per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A standard user.
    User,
    /// An administrator: everything a user can do, plus managing the instance.
    Admin,
}

/// A role name that is neither `user` nor `admin`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a role; use `user` or `admin`")]
pub struct UnknownRole(pub String);

impl Role {
    /// Parses a role name, case-insensitively and ignoring surrounding spaces.
    ///
    /// # Errors
    /// [`UnknownRole`] for anything but `user` or `admin`.
    pub fn parse(raw: &str) -> Result<Self, UnknownRole> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "user" => Ok(Self::User),
            "admin" => Ok(Self::Admin),
            _ => Err(UnknownRole(raw.chars().take(40).collect())),
        }
    }

    /// The stable name used in APIs and storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }

    /// The permission set of this role.
    pub fn permissions(self) -> &'static [Permission] {
        match self {
            Self::User => USER_PERMISSIONS,
            Self::Admin => ADMIN_PERMISSIONS,
        }
    }

    /// Whether this role grants `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }
}

/// How a user proves who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    /// A password set through the invitation link.
    Password,
    /// The company's identity provider (OIDC or SAML).
    Sso,
}

impl SignInMethod {
    /// The stable name used in APIs and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Sso => "sso",
        }
    }
}

/// Words a user can be found by: the whole address, its domain and each
/// word of the name, case-folded. Searches match their prefixes. (Search
/// words hold no whitespace, so one starts the whole name exactly when it
/// starts the name's first word: the whole name is not a term of its own.)
/// No term holds whitespace.
pub fn search_terms(email: &EmailAddress, name: &DisplayName) -> Vec<String> {
    let mut terms = vec![email.key().to_owned()];
    if let Some((_, domain)) = email.key().rsplit_once('@') {
        terms.push(domain.to_owned());
    }
    terms.extend(name.sort_key().split_whitespace().map(str::to_owned));
    // Stored terms are at most 254 characters; cut before removing
    // duplicates, so two long terms cannot become one twice.
    for term in &mut terms {
        if term.chars().count() > 254 {
            *term = term.chars().take(254).collect();
        }
    }
    terms.sort();
    terms.dedup();
    terms
}

/// The status of a user, without its data: for filters and display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserStatus {
    /// Invited, not yet activated.
    Invited,
    /// May sign in.
    Active,
    /// Blocked from signing in; data kept; holds no seat.
    Deactivated,
}

impl UserStatus {
    /// Parses a stable name.
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "invited" => Some(Self::Invited),
            "active" => Some(Self::Active),
            "deactivated" => Some(Self::Deactivated),
            _ => None,
        }
    }

    /// The stable name used in APIs and storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Invited => "invited",
            Self::Active => "active",
            Self::Deactivated => "deactivated",
        }
    }

    /// Whether a user in this status holds a seat.
    pub fn holds_seat(self) -> bool {
        SEAT_HOLDING.contains(&self)
    }
}

/// The statuses that hold a seat: invited and active users (a deactivated
/// user frees theirs). Every store counts seats over these.
pub const SEAT_HOLDING: [UserStatus; 2] = [UserStatus::Invited, UserStatus::Active];

/// A seat limit: the most users that may hold a seat at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatLimit(u32);

impl SeatLimit {
    /// The limit of `seats` seats.
    pub const fn new(seats: u32) -> Self {
        Self(seats)
    }

    /// Whether one more user may hold a seat while `used` seats are held:
    /// the one seat comparison, for the domain and every store.
    pub const fn admits(self, used: u64) -> bool {
        used < self.0 as u64
    }
}

/// Where a user is in their lifecycle, with the data of that state.
///
/// ```text
/// invited ──accept──▶ active ◀──reactivate── deactivated
///                       └─────deactivate───────▶
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserState {
    /// Invited; the invitation has not been accepted.
    Invited,
    /// Active since `activated_at`.
    Active {
        /// When the user first became active.
        activated_at: DateTime<Utc>,
    },
    /// Deactivated at `deactivated_at`.
    Deactivated {
        /// When the user first became active, if ever.
        activated_at: Option<DateTime<Utc>>,
        /// When the user was deactivated.
        deactivated_at: DateTime<Utc>,
    },
}

impl UserState {
    /// The status without its data.
    pub fn status(&self) -> UserStatus {
        match self {
            Self::Invited => UserStatus::Invited,
            Self::Active { .. } => UserStatus::Active,
            Self::Deactivated { .. } => UserStatus::Deactivated,
        }
    }

    /// When the user was (first) activated, if ever.
    pub fn activated_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Invited => None,
            Self::Active { activated_at } => Some(*activated_at),
            Self::Deactivated { activated_at, .. } => *activated_at,
        }
    }

    /// When the user was deactivated, if they are.
    pub fn deactivated_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Deactivated { deactivated_at, .. } => Some(*deactivated_at),
            _ => None,
        }
    }
}

/// A person with access to the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Stable identifier.
    pub id: UserId,
    /// Email address, unique case-insensitively.
    pub email: EmailAddress,
    /// Display name.
    pub name: DisplayName,
    /// The one role.
    pub role: Role,
    /// Lifecycle state.
    pub state: UserState,
    /// Password or SSO.
    pub sign_in: SignInMethod,
    /// Optional department.
    pub department: Option<Department>,
    /// When the user was created (invited).
    pub created_at: DateTime<Utc>,
    /// Last successful sign-in.
    pub last_login_at: Option<DateTime<Utc>>,
}

impl User {
    /// The status without its data.
    pub fn status(&self) -> UserStatus {
        self.state.status()
    }

    /// Whether this user is an administrator who may act now.
    pub fn is_active_admin(&self) -> bool {
        self.role == Role::Admin && self.status() == UserStatus::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_compared_case_insensitively() {
        let a = EmailAddress::parse("  Ada.Lovelace@Example.COM ").unwrap();
        let b = EmailAddress::parse("ada.lovelace@example.com").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "Ada.Lovelace@Example.COM");
        assert_eq!(a.key(), "ada.lovelace@example.com");
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "plainaddress",
            "@example.com",
            "ada@",
            "ada@localhost",
            "ada@example.com\r\nBcc: x@y.z",
            "ada lovelace@example.com",
            "\"ada\"@example.com",
            "ada@[127.0.0.1]",
            "ada@example.",
        ] {
            assert!(
                matches!(EmailAddress::parse(bad), Err(EmailError::Invalid(_))),
                "{bad:?} should be invalid"
            );
        }
        assert_eq!(EmailAddress::parse("   "), Err(EmailError::Empty));
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(EmailAddress::parse(&long), Err(EmailError::TooLong));
    }

    #[test]
    fn every_user_has_exactly_one_role_and_roles_parse_case_insensitively() {
        assert_eq!(Role::parse(" ADMIN "), Ok(Role::Admin));
        assert_eq!(Role::parse("User"), Ok(Role::User));
        assert!(Role::parse("superuser").is_err());
        assert!(Role::parse("user,admin").is_err());
    }

    #[test]
    fn admins_can_do_everything_users_can_plus_management() {
        for permission in Role::User.permissions() {
            assert!(Role::Admin.allows(*permission));
        }
        assert!(Role::Admin.allows(Permission::ManageUsers));
        assert!(!Role::User.allows(Permission::ManageUsers));
        assert!(!Role::User.allows(Permission::ViewAnalytics));
    }

    #[test]
    fn search_terms_hold_no_whitespace_and_a_word_starts_the_name_exactly_when_it_starts_a_term() {
        let email = EmailAddress::parse("Ada.King@Example.org").unwrap();
        let name = DisplayName::parse("Ada  Byron\u{a0}King").unwrap();
        let terms = search_terms(&email, &name);
        assert_eq!(terms, ["ada", "ada.king@example.org", "byron", "example.org", "king"]);
        assert!(terms.iter().all(|t| !t.contains(char::is_whitespace)));
        // What the whole-name term used to match, the terms still match.
        let whole = name.sort_key();
        for word in ["a", "ad", "ada", "ada ", "adab", "b", "by", "king", "k", "z"] {
            let starts_name = !word.contains(char::is_whitespace) && whole.starts_with(word);
            if starts_name {
                assert!(terms.iter().any(|t| t.starts_with(word)), "{word:?}");
            }
        }
    }

    #[test]
    fn names_are_required_and_bounded() {
        assert_eq!(DisplayName::parse("  "), Err(TextFieldError::Blank));
        assert_eq!(DisplayName::parse(" Ada ").unwrap().as_ref(), "Ada");
        assert_eq!(DisplayName::parse(&"x".repeat(201)), Err(TextFieldError::TooLong { max: 200 }));
        assert_eq!(DisplayName::parse("Ada\nBcc"), Err(TextFieldError::ControlCharacters));
        assert_eq!(Department::parse(""), Ok(None));
        assert_eq!(Department::parse(" R&D ").unwrap().unwrap().as_ref(), "R&D");
    }

    #[test]
    fn only_invited_and_active_users_hold_seats() {
        assert!(UserStatus::Invited.holds_seat());
        assert!(UserStatus::Active.holds_seat());
        assert!(!UserStatus::Deactivated.holds_seat());
        // A limit of 3 admits a third holder, not a fourth; 0 admits none.
        assert!(SeatLimit::new(3).admits(2));
        assert!(!SeatLimit::new(3).admits(3));
        assert!(!SeatLimit::new(0).admits(0));
        assert!(!SeatLimit::new(u32::MAX).admits(u64::MAX));
    }
}
