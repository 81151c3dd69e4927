//! Who must, may or may not use a second factor (Settings › Security).
//!
//! Admins must by default: a password admin — the break-glass admin every
//! single sign-on instance keeps among them — without a second factor
//! signs in to a session that can only set one up. Users are not offered
//! one by default. Single sign-on users are never asked: their identity
//! provider's policy applies.

use crate::users::models::{Role, SignInMethod, User};

/// Second factors for admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdminMfa {
    /// Every password admin must have one (the default).
    #[default]
    Required,
    /// Admins may set one up.
    Optional,
}

/// Second factors for users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserMfa {
    /// Users are not offered one (the default); one already set up still
    /// works.
    #[default]
    Off,
    /// Users may set one up.
    Optional,
    /// Every password user must have one.
    Required,
}

/// Settings › Security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SecurityPolicy {
    /// For admins.
    pub admin_mfa: AdminMfa,
    /// For users.
    pub user_mfa: UserMfa,
}

impl SecurityPolicy {
    /// Whether `user` must have a second factor before doing anything
    /// else: a password user whose role's setting is required.
    pub fn requires(&self, user: &User) -> bool {
        user.sign_in == SignInMethod::Password
            && match user.role {
                Role::Admin => self.admin_mfa == AdminMfa::Required,
                Role::User => self.user_mfa == UserMfa::Required,
            }
    }

    /// Whether `user` may set up a second factor (always where
    /// [`SecurityPolicy::requires`] one).
    pub fn offers(&self, user: &User) -> bool {
        user.sign_in == SignInMethod::Password
            && match user.role {
                Role::Admin => true,
                Role::User => self.user_mfa != UserMfa::Off,
            }
    }
}

impl AdminMfa {
    /// The name in the API and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Optional => "optional",
        }
    }

    /// Parses [`AdminMfa::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Required, Self::Optional].into_iter().find(|v| v.as_str() == text)
    }
}

impl UserMfa {
    /// The name in the API and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }

    /// Parses [`UserMfa::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Off, Self::Optional, Self::Required].into_iter().find(|v| v.as_str() == text)
    }
}
