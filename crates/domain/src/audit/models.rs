//! Audit event model.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::identity::{EmailAddress, UserId};

/// Where a request came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// Client IP address, as seen by the server.
    pub ip: Option<String>,
    /// The client's `User-Agent`, truncated.
    pub user_agent: Option<String>,
    /// The ids of the audit events made for this request, for its log
    /// line (not stored with the events).
    pub audit_ids: AuditIds,
}

impl RequestContext {
    /// A context for the operator's command line.
    pub fn command_line() -> Self {
        Self { ip: None, user_agent: Some("secureai command line".to_owned()), ..Self::default() }
    }
}

/// The ids of the audit events one request made (the first
/// [`AuditIds::KEPT`]), shared by every copy of its [`RequestContext`], so
/// that the request's log line can name the events it caused.
#[derive(Debug, Clone, Default)]
pub struct AuditIds(std::sync::Arc<std::sync::Mutex<Vec<Uuid>>>);

impl AuditIds {
    /// Most ids kept for one request (an import makes one event per row).
    pub const KEPT: usize = 8;

    /// Notes an event's id; the store calls it when it wrote the event
    /// (an event made but never written is not named).
    pub fn note(&self, id: Uuid) {
        if let Ok(mut ids) = self.0.lock()
            && ids.len() < Self::KEPT
            && !ids.contains(&id)
        {
            ids.push(id);
        }
    }

    /// The ids noted so far, in the order the events were made.
    #[must_use]
    pub fn ids(&self) -> Vec<Uuid> {
        self.0.lock().map(|ids| ids.clone()).unwrap_or_default()
    }
}

/// Which events a request made is not part of where it came from: two
/// contexts are equal when their address and agent are.
impl PartialEq for AuditIds {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for AuditIds {}

/// Who performed an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user (id, and email at the time).
    User {
        /// The user's id.
        id: UserId,
        /// The user's email at the time of the action.
        email: EmailAddress,
    },
    /// The operator, through the command line or the setup link.
    Operator,
    /// Nobody signed in (a failed sign-in, an invitation link).
    Anonymous,
    /// A signed-in user's script, through one of their personal API
    /// tokens: the user (as [`Actor::User`]) and the token's id and name.
    UserToken {
        /// The user's id.
        id: UserId,
        /// The user's email at the time of the action.
        email: EmailAddress,
        /// The personal API token's id.
        token_id: uuid::Uuid,
        /// The token's name.
        name: String,
    },
    /// A service holding a service token (an identity provider
    /// provisioning over SCIM): the token's id and name.
    Service {
        /// The token's id.
        token_id: uuid::Uuid,
        /// The name an admin gave the token ("Entra ID").
        name: String,
    },
}

/// Someone an audit event names, as actor or target: a user, by id and by
/// email at the time. Implemented by [`crate::users::models::User`]; the
/// audit model knows nothing else of users.
pub trait AuditSubject {
    /// The user's id.
    fn audit_id(&self) -> UserId;
    /// The user's email now.
    fn audit_email(&self) -> &EmailAddress;
}

impl Actor {
    /// `user`, `operator`, `anonymous` or `service`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::User { .. } | Self::UserToken { .. } => "user",
            Self::Operator => "operator",
            Self::Anonymous => "anonymous",
            Self::Service { .. } => "service",
        }
    }

    /// The actor for a user acting on their own behalf.
    pub fn user(user: &impl AuditSubject) -> Self {
        Self::User { id: user.audit_id(), email: user.audit_email().clone() }
    }
}

/// What happened. The stable names are what the audit API filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// The first admin was created through the setup link.
    SetupCompleted,
    /// A user was invited.
    UserInvited,
    /// An invitation was re-sent (new link, old one void).
    InvitationResent,
    /// An invitation was accepted and the user activated.
    InvitationAccepted,
    /// A user's role changed.
    RoleChanged,
    /// A user was deactivated.
    UserDeactivated,
    /// A user was reactivated.
    UserReactivated,
    /// A user's name or department changed.
    ProfileChanged,
    /// An admin asked for a password reset.
    PasswordResetRequested,
    /// A password reset was completed.
    PasswordResetCompleted,
    /// A user changed their own password.
    PasswordChanged,
    /// Sessions were terminated (by an admin, or "sign out everywhere").
    SessionsTerminated,
    /// A sign-in succeeded.
    SignInSucceeded,
    /// A sign-in failed (the reason is in the details).
    SignInFailed,
    /// A sign-in was refused because of too many failures.
    SignInThrottled,
    /// A user signed out.
    SignedOut,
    /// The seat limit changed.
    SeatLimitChanged,
    /// An operator erased a user's personal data.
    UserErased,
    /// The email settings changed (never the password itself).
    EmailSettingsChanged,
    /// An admin sent a test email.
    EmailTested,
    /// An admin put a failed message back in the queue.
    MailRetried,
    /// Users were imported from a file (one event per import).
    UsersImported,
    /// The SSO settings changed (never the client secret itself).
    SsoSettingsChanged,
    /// A user was created at their first SSO sign-in (just-in-time
    /// provisioning).
    UserProvisioned,
    /// An admin created a service token (never its secret).
    ServiceTokenCreated,
    /// An admin revoked a service token.
    ServiceTokenRevoked,
    /// A webhook endpoint was added (never its secret).
    WebhookCreated,
    /// A webhook endpoint's address, events or state changed.
    WebhookUpdated,
    /// A webhook endpoint was deleted.
    WebhookDeleted,
    /// A personal API token was created.
    ApiTokenCreated,
    /// A personal API token was revoked (by its owner or an admin, or
    /// because its owner lost the role its scopes need).
    ApiTokenRevoked,
    /// An admin switched a password account to single sign-on (its
    /// password removed; its next SSO sign-in links it).
    SignInMethodChanged,
    /// An admin allowed a user to sign in again before the pause after
    /// failed attempts ran out.
    SignInAllowed,
    /// A user's email address changed (an admin corrected an invited
    /// user's mistyped address).
    EmailChanged,
    /// An admin withdrew an invitation: the invited user is deactivated,
    /// their link void, their seat free.
    InvitationWithdrawn,
    /// The identity provider deleted a user over SCIM: they are
    /// deactivated (never deleted) and no longer provisioned.
    ProvisioningDetached,
    /// The guide's rules refused what an identity provider asked over SCIM
    /// (the last active admin, the seat limit): the reason in the details.
    ProvisioningRefused,
    /// The identity provider created a group.
    GroupCreated,
    /// The identity provider renamed a group or changed its members.
    GroupChanged,
    /// The identity provider deleted a group (never its members).
    GroupDeleted,
    /// An admin changed Settings › Provisioning.
    ProvisioningSettingsChanged,
    /// A user set up a second factor (the method in the details).
    MfaEnrolled,
    /// A user removed a second factor.
    MfaRemoved,
    /// A second-factor check passed.
    MfaVerified,
    /// A second-factor check failed (the method, and when: at enrolment
    /// or at sign-in).
    MfaFailed,
    /// A recovery code was used (how many are left in the details).
    RecoveryCodeUsed,
    /// A user made a new set of recovery codes, voiding the earlier one.
    RecoveryCodesRegenerated,
    /// An admin changed Settings › Security.
    SecuritySettingsChanged,
    /// An admin or the operator reset someone's second factors.
    MfaReset,
}

const ACTION_NAMES: &[(AuditAction, &str)] = &[
    (AuditAction::SetupCompleted, "setup.completed"),
    (AuditAction::UserInvited, "user.invited"),
    (AuditAction::InvitationResent, "invitation.resent"),
    (AuditAction::InvitationAccepted, "invitation.accepted"),
    (AuditAction::RoleChanged, "user.role_changed"),
    (AuditAction::UserDeactivated, "user.deactivated"),
    (AuditAction::UserReactivated, "user.reactivated"),
    (AuditAction::ProfileChanged, "user.profile_changed"),
    (AuditAction::PasswordResetRequested, "password_reset.requested"),
    (AuditAction::PasswordResetCompleted, "password_reset.completed"),
    (AuditAction::PasswordChanged, "password.changed"),
    (AuditAction::SessionsTerminated, "sessions.terminated"),
    (AuditAction::SignInSucceeded, "sign_in.succeeded"),
    (AuditAction::SignInFailed, "sign_in.failed"),
    (AuditAction::SignInThrottled, "sign_in.throttled"),
    (AuditAction::SignedOut, "session.signed_out"),
    (AuditAction::SeatLimitChanged, "settings.seat_limit_changed"),
    (AuditAction::UserErased, "user.erased"),
    (AuditAction::EmailSettingsChanged, "settings.email_changed"),
    (AuditAction::EmailTested, "settings.email_tested"),
    (AuditAction::MailRetried, "mail.retried"),
    (AuditAction::UsersImported, "users.imported"),
    (AuditAction::SsoSettingsChanged, "settings.sso_changed"),
    (AuditAction::UserProvisioned, "user.provisioned"),
    (AuditAction::ServiceTokenCreated, "service_token.created"),
    (AuditAction::ServiceTokenRevoked, "service_token.revoked"),
    (AuditAction::ApiTokenCreated, "api_token.created"),
    (AuditAction::WebhookCreated, "webhook.created"),
    (AuditAction::WebhookUpdated, "webhook.updated"),
    (AuditAction::WebhookDeleted, "webhook.deleted"),
    (AuditAction::ApiTokenRevoked, "api_token.revoked"),
    (AuditAction::SignInMethodChanged, "user.sign_in_method_changed"),
    (AuditAction::SignInAllowed, "sign_in.allowed"),
    (AuditAction::EmailChanged, "user.email_changed"),
    (AuditAction::InvitationWithdrawn, "invitation.withdrawn"),
    (AuditAction::ProvisioningDetached, "user.provisioning_detached"),
    (AuditAction::ProvisioningRefused, "provisioning.refused"),
    (AuditAction::GroupCreated, "group.created"),
    (AuditAction::GroupChanged, "group.changed"),
    (AuditAction::GroupDeleted, "group.deleted"),
    (AuditAction::ProvisioningSettingsChanged, "settings.provisioning_changed"),
    (AuditAction::MfaEnrolled, "mfa.enrolled"),
    (AuditAction::MfaRemoved, "mfa.removed"),
    (AuditAction::MfaVerified, "mfa.verified"),
    (AuditAction::MfaFailed, "mfa.failed"),
    (AuditAction::RecoveryCodeUsed, "mfa.recovery_code_used"),
    (AuditAction::RecoveryCodesRegenerated, "mfa.recovery_codes_regenerated"),
    (AuditAction::SecuritySettingsChanged, "settings.security_changed"),
    (AuditAction::MfaReset, "mfa.reset"),
];

impl AuditAction {
    /// The stable name, e.g. `user.invited`.
    pub fn as_str(self) -> &'static str {
        ACTION_NAMES.iter().find(|(a, _)| *a == self).map_or("unknown", |(_, name)| name)
    }

    /// Every action, for parsing and documentation.
    pub fn all() -> impl Iterator<Item = AuditAction> {
        ACTION_NAMES.iter().map(|(a, _)| *a)
    }

    /// Parses a stable name.
    pub fn parse(name: &str) -> Option<Self> {
        ACTION_NAMES.iter().find(|(_, n)| *n == name).map(|(a, _)| *a)
    }
}

/// One field's change, `before → after`. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The field name (`role`, `status`, …) or a detail name (`reason`).
    pub field: String,
    /// The value before, if any.
    pub before: Option<String>,
    /// The value after, if any.
    pub after: Option<String>,
}

impl Change {
    /// A field that went from `before` to `after`.
    pub fn new(field: &str, before: Option<&str>, after: Option<&str>) -> Self {
        Self {
            field: field.to_owned(),
            before: before.map(str::to_owned),
            after: after.map(str::to_owned),
        }
    }

    /// A detail that is not a change (e.g. the reason of a failure).
    pub fn detail(field: &str, value: &str) -> Self {
        Self::new(field, None, Some(value))
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Unique id.
    pub id: Uuid,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who did it.
    pub actor: Actor,
    /// What they did.
    pub action: AuditAction,
    /// To whom (id), if anyone.
    pub target_id: Option<UserId>,
    /// To whom (email at the time), if anyone — or the email that was tried.
    pub target_email: Option<String>,
    /// Changed fields and details.
    pub changes: Vec<Change>,
    /// Where the request came from.
    pub context: RequestContext,
}

impl AuditEvent {
    /// A new event with no target and no changes.
    pub fn new(
        at: DateTime<Utc>,
        actor: Actor,
        action: AuditAction,
        context: &RequestContext,
    ) -> Self {
        Self {
            id: crate::record_id(),
            at,
            actor,
            action,
            target_id: None,
            target_email: None,
            changes: Vec::new(),
            context: context.clone(),
        }
    }

    /// Sets the target user.
    #[must_use]
    pub fn target(mut self, user: &impl AuditSubject) -> Self {
        self.target_id = Some(user.audit_id());
        self.target_email = Some(user.audit_email().as_str().to_owned());
        self
    }

    /// Adds a change or detail.
    #[must_use]
    pub fn change(mut self, change: Change) -> Self {
        self.changes.push(change);
        self
    }
}

#[cfg(test)]
mod action_tests {
    use super::*;

    #[test]
    fn every_action_has_a_distinct_stable_name_that_parses_back() {
        let names: std::collections::HashSet<_> =
            AuditAction::all().map(AuditAction::as_str).collect();
        assert_eq!(names.len(), ACTION_NAMES.len());
        for action in AuditAction::all() {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
            assert_ne!(action.as_str(), "unknown");
        }
    }
}

/// An audit record as read back: personal data may be gone (erasure), so
/// the actor's and target's emails are optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Unique id.
    pub id: Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// `user`, `operator`, `anonymous` or `service`.
    pub actor_kind: String,
    /// The service token that acted (kind `service`): its id and name.
    pub actor_token: Option<(uuid::Uuid, String)>,
    /// The acting user's id, if a user acted.
    pub actor_id: Option<UserId>,
    /// Their email at the time, unless erased.
    pub actor_email: Option<String>,
    /// What happened.
    pub action: AuditAction,
    /// To whom (id).
    pub target_id: Option<UserId>,
    /// To whom (email at the time), unless erased.
    pub target_email: Option<String>,
    /// Changed fields and details.
    pub changes: Vec<Change>,
    /// Where from.
    pub context: RequestContext,
}
