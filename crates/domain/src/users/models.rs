//! User model: roles and permissions, lifecycle states, seats, and the
//! user (with its validated fields from [`crate::identity`]).

use chrono::{DateTime, Utc};

pub use crate::identity::{
    Department, DisplayName, EmailAddress, EmailError, TextFieldError, UserId,
};

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

impl crate::audit::models::AuditSubject for User {
    fn audit_id(&self) -> UserId {
        self.id
    }

    fn audit_email(&self) -> &EmailAddress {
        &self.email
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
