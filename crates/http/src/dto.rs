//! JSON shapes of the API, converted explicitly from domain types.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use secureai_domain::invitations::models::InvitationStatus;
use secureai_domain::mail::models::{MailState, OutboxEntry};
use secureai_domain::service::UserProfile;
use secureai_domain::{Role, SignInMethod, User, UserStatus};

/// A role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum RoleDto {
    /// Standard user.
    User,
    /// Administrator.
    Admin,
}

impl From<Role> for RoleDto {
    fn from(role: Role) -> Self {
        match role {
            Role::User => Self::User,
            Role::Admin => Self::Admin,
        }
    }
}

/// A user's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum StatusDto {
    /// Invited, not yet activated.
    Invited,
    /// Active.
    Active,
    /// Deactivated.
    Deactivated,
}

impl From<UserStatus> for StatusDto {
    fn from(status: UserStatus) -> Self {
        match status {
            UserStatus::Invited => Self::Invited,
            UserStatus::Active => Self::Active,
            UserStatus::Deactivated => Self::Deactivated,
        }
    }
}

/// How a user signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum SignInMethodDto {
    /// Password.
    Password,
    /// Company identity provider.
    Sso,
}

impl From<SignInMethod> for SignInMethodDto {
    fn from(method: SignInMethod) -> Self {
        match method {
            SignInMethod::Password => Self::Password,
            SignInMethod::Sso => Self::Sso,
        }
    }
}

/// A user, as admins see them.
#[derive(Debug, Clone, Object)]
pub struct UserDto {
    /// Identifier.
    pub id: String,
    /// Email address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: RoleDto,
    /// Status.
    pub status: StatusDto,
    /// How they sign in.
    pub sign_in_method: SignInMethodDto,
    /// Department.
    pub department: Option<String>,
    /// When they were invited.
    pub created_at: DateTime<Utc>,
    /// When they first became active.
    pub activated_at: Option<DateTime<Utc>>,
    /// When they were deactivated.
    pub deactivated_at: Option<DateTime<Utc>>,
    /// Last successful sign-in.
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<&User> for UserDto {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.to_string(),
            name: user.name.to_string(),
            role: user.role.into(),
            status: user.status().into(),
            sign_in_method: user.sign_in.into(),
            department: user.department.as_ref().map(ToString::to_string),
            created_at: user.created_at,
            activated_at: user.state.activated_at(),
            deactivated_at: user.state.deactivated_at(),
            last_login_at: user.last_login_at,
        }
    }
}

/// The signed-in user and what they may do.
#[derive(Debug, Clone, Object)]
pub struct MeDto {
    /// Identifier.
    pub id: String,
    /// Email address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: RoleDto,
    /// Status.
    pub status: StatusDto,
    /// Permissions of the role, e.g. `manage_users`.
    pub permissions: Vec<String>,
}

impl From<&User> for MeDto {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.to_string(),
            name: user.name.to_string(),
            role: user.role.into(),
            status: user.status().into(),
            permissions: user.role.permissions().iter().map(|p| p.as_str().to_owned()).collect(),
        }
    }
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum InvitationStateDto {
    /// Usable until `expires_at`.
    Pending,
    /// Its 72 hours ran out; re-send it.
    Expired,
    /// Used to activate the account.
    Accepted,
    /// Replaced by a newer invitation.
    Revoked,
    /// An SSO user's: no link, nothing expires; their first SSO sign-in
    /// activates them (re-sending sends "your access is ready" again).
    AwaitingFirstSignIn,
}

/// The latest invitation of a user.
#[derive(Debug, Clone, Object)]
pub struct InvitationDto {
    /// State.
    pub state: InvitationStateDto,
    /// When it stops (or stopped) working, for pending and expired ones.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was accepted or revoked.
    pub at: Option<DateTime<Utc>>,
}

impl From<InvitationStatus> for InvitationDto {
    fn from(status: InvitationStatus) -> Self {
        let (state, expires_at, at) = match status {
            InvitationStatus::Pending { expires_at } => {
                (InvitationStateDto::Pending, Some(expires_at), None)
            }
            InvitationStatus::Expired { expired_at } => {
                (InvitationStateDto::Expired, Some(expired_at), None)
            }
            InvitationStatus::Accepted { at } => (InvitationStateDto::Accepted, None, Some(at)),
            InvitationStatus::Revoked { at } => (InvitationStateDto::Revoked, None, Some(at)),
            InvitationStatus::AwaitingFirstSignIn => {
                (InvitationStateDto::AwaitingFirstSignIn, None, None)
            }
        };
        Self { state, expires_at, at }
    }
}

/// A user with their activity summary (the profile page).
#[derive(Debug, Clone, Object)]
pub struct UserProfileDto {
    /// The user.
    #[oai(flatten)]
    pub user: UserDto,
    /// Their latest invitation, if any.
    pub invitation: Option<InvitationDto>,
    /// Sessions usable now.
    pub active_sessions: u64,
    /// Whether the last invitation (or access-ready) email was delivered.
    pub invitation_email: Option<OutboxMessageDto>,
    /// Until when sign-in is paused after failed attempts, if it is now
    /// (`DELETE /users/{id}/sign-in-pause` lifts it).
    pub sign_in_paused_until: Option<DateTime<Utc>>,
    /// Whether the last password-reset email was delivered.
    pub reset_email: Option<OutboxMessageDto>,
}

impl From<&UserProfile> for UserProfileDto {
    fn from(profile: &UserProfile) -> Self {
        Self {
            user: UserDto::from(&profile.user),
            invitation: profile.invitation.map(InvitationDto::from),
            active_sessions: profile.active_sessions,
            invitation_email: profile.invitation_email.as_ref().map(OutboxMessageDto::from),
            sign_in_paused_until: profile.sign_in_paused_until,
            reset_email: profile.reset_email.as_ref().map(OutboxMessageDto::from),
        }
    }
}

/// Where a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum MailStateDto {
    /// Waiting for its (next) attempt.
    Queued,
    /// Accepted by the mail server.
    Sent,
    /// Given up on: see `last_error`, then retry it.
    Failed,
}

impl From<MailState> for MailStateDto {
    fn from(state: MailState) -> Self {
        match state {
            MailState::Queued => Self::Queued,
            MailState::Sent => Self::Sent,
            MailState::Failed => Self::Failed,
        }
    }
}

impl From<MailStateDto> for MailState {
    fn from(state: MailStateDto) -> Self {
        match state {
            MailStateDto::Queued => Self::Queued,
            MailStateDto::Sent => Self::Sent,
            MailStateDto::Failed => Self::Failed,
        }
    }
}

/// A message in the outbox (never its content: its links are secrets).
#[derive(Debug, Clone, Object)]
pub struct OutboxMessageDto {
    /// Identifier.
    pub id: String,
    /// `invitation`, `access_ready` or `password_reset`.
    pub kind: String,
    /// Recipient address.
    pub recipient: String,
    /// The user it is about.
    pub user_id: Option<String>,
    /// Where it is.
    pub status: MailStateDto,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last failure, as the mail server or network said it.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: DateTime<Utc>,
    /// When the next attempt is due (queued messages only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the server accepted it.
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<&OutboxEntry> for OutboxMessageDto {
    fn from(entry: &OutboxEntry) -> Self {
        Self {
            id: entry.id.to_string(),
            kind: entry.kind.clone(),
            recipient: entry.recipient.clone(),
            user_id: entry.user_id.map(|u| u.to_string()),
            status: entry.state.into(),
            attempts: entry.attempts,
            last_error: entry.last_error.clone(),
            created_at: entry.created_at,
            next_attempt_at: (entry.state == MailState::Queued).then_some(entry.next_attempt_at),
            sent_at: entry.sent_at,
        }
    }
}

/// How many sessions ended.
#[derive(Debug, Clone, Object)]
pub struct Ended {
    /// Sessions ended.
    pub ended: u64,
}
