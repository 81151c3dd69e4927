//! Admin use cases on users: invite, list, look up.

use crate::access::Admin;
use crate::users::errors::GetUserError;
use crate::users::models::{User, UserId};

/// The ports UserService uses, and no others.
#[derive(Clone)]
pub struct UserPorts {
    /// User storage.
    pub users: std::sync::Arc<dyn crate::users::ports::UserRepository>,
    /// Instance settings (seat limit, email, SSO).
    pub settings: std::sync::Arc<dyn crate::settings::ports::SettingsRepository>,
    /// Time.
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    /// Second factors: the actions that need a recent check ask whether
    /// the admin has one (step-up).
    pub mfa: std::sync::Arc<dyn crate::mfa::ports::MfaRepository>,
}

/// The admin use cases on users: list and search, look up, change (role,
/// active, name, department, sign-in method), erase, and the seat limit.
/// Rules (docs/RULES.md): 1 one role, 3 an active admin always, 4 seats,
/// 7 a role change applies at once, 8 deactivation, 9 erasure only by the
/// operator, 14 self-demotion only beside another admin.
pub struct UserService {
    pub(super) ports: UserPorts,
    pub(super) policy: std::sync::Arc<crate::policy::Policy>,
}

impl UserService {
    /// The use cases over these ports and rules.
    #[must_use]
    pub fn new(ports: UserPorts, policy: std::sync::Arc<crate::policy::Policy>) -> Self {
        Self { ports, policy }
    }
}

impl UserService {
    /// One user by id.
    ///
    /// # Errors
    /// See [`GetUserError`].
    pub async fn get_user(&self, _admin: &Admin, id: UserId) -> Result<User, GetUserError> {
        self.ports.users.get(id).await?.ok_or(GetUserError::NotFound)
    }
}
