//! Accepting an invitation: the invited user sets a password and becomes
//! active (rule 5).

use secrecy::SecretString;

use crate::access::Admin;
use crate::audit::models::{Actor, AuditAction, AuditEvent, Change, RequestContext};
use crate::errors::FieldError;
use crate::errors::StoreError;
use crate::invitations::errors::{AcceptInvitationError, CorrectEmailError, ResendInvitationError};
use crate::invitations::models::{Invitation, InvitationStatus};
use crate::invitations::ports::{AcceptStoreError, Acceptance, Reissue, ReissueError};
use crate::invitations::ports::{InsertUserError, NewInvitedUser};
use crate::secrets::{Password, PlainToken};
use crate::users::errors::InviteUserError;
use crate::users::models::{
    Department, DisplayName, EmailAddress, Role, SignInMethod, User, UserId, UserState, UserStatus,
};

/// An invitation request as a person or a script wrote it; validated here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InviteRequest {
    /// Work email address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// `user` or `admin`, any case.
    pub role: String,
    /// Optional department.
    pub department: Option<String>,
    /// `password` or `sso`; `None` = SSO when an identity provider is
    /// configured, else password. A password account under SSO is the
    /// break-glass admin's way in when the identity provider is down.
    pub sign_in: Option<String>,
}

/// A validated invitation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidInvite {
    /// Email.
    pub email: EmailAddress,
    /// Name.
    pub name: DisplayName,
    /// Role.
    pub role: Role,
    /// Department.
    pub department: Option<Department>,
    /// The sign-in method asked for, if any.
    pub sign_in: Option<SignInMethod>,
}

impl InviteRequest {
    /// Validates every field; the first invalid one is reported by name.
    ///
    /// # Errors
    /// [`FieldError`] naming the field and the reason.
    pub fn validate(&self) -> Result<ValidInvite, FieldError> {
        Ok(ValidInvite {
            email: EmailAddress::parse(&self.email).map_err(|e| FieldError::new("email", e))?,
            name: DisplayName::parse(&self.name).map_err(|e| FieldError::new("name", e))?,
            role: Role::parse(&self.role).map_err(|e| FieldError::new("role", e))?,
            department: match &self.department {
                Some(raw) => {
                    Department::parse(raw).map_err(|e| FieldError::new("department", e))?
                }
                None => None,
            },
            sign_in: match self.sign_in.as_deref().map(|m| m.trim().to_ascii_lowercase()) {
                None => None,
                Some(m) if m.is_empty() => None,
                Some(m) if m == "password" => Some(SignInMethod::Password),
                Some(m) if m == "sso" => Some(SignInMethod::Sso),
                Some(_) => return Err(FieldError::new("sign_in", "must be password or sso")),
            },
        })
    }
}

/// A user just invited, with the token of their link (to print on the
/// operator's terminal; the HTTP API never returns it).
#[derive(Debug)]
pub struct Invited {
    /// The new user.
    pub user: User,
    /// The invitation.
    pub invitation: Invitation,
    /// The link's token.
    pub token: PlainToken,
}

/// The ports InvitationService uses, and no others.
#[derive(Clone)]
pub struct InvitationPorts {
    /// User storage.
    pub users: std::sync::Arc<dyn crate::users::ports::UserRepository>,
    /// Invitation storage.
    pub invitations: std::sync::Arc<dyn crate::invitations::ports::InvitationRepository>,
    /// Instance settings (seat limit, email, SSO).
    pub settings: std::sync::Arc<dyn crate::settings::ports::SettingsRepository>,
    /// Time.
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    /// Randomness.
    pub tokens: std::sync::Arc<dyn crate::secrets::TokenGenerator>,
    /// Password hashing.
    pub hasher: std::sync::Arc<dyn crate::secrets::PasswordHasher>,
    /// Second factors: the actions that need a recent check ask whether
    /// the admin has one (step-up).
    pub mfa: std::sync::Arc<dyn crate::mfa::ports::MfaRepository>,
}

/// Inviting users and what follows: accepting the invitation (setting a
/// password), re-sending it. Rules (docs/RULES.md): 2 unique email, 4 seats,
/// 5 the invitation link, 6 SSO users get no link, 13 audited with the
/// change.
pub struct InvitationService {
    ports: InvitationPorts,
    policy: std::sync::Arc<crate::policy::Policy>,
}

impl InvitationService {
    /// The use cases over these ports and rules.
    #[must_use]
    pub fn new(ports: InvitationPorts, policy: std::sync::Arc<crate::policy::Policy>) -> Self {
        Self { ports, policy }
    }
}

/// What an invitation link means right now, for the accept page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvitationLookup {
    /// Usable: the page may ask for a password.
    Pending {
        /// The invited user.
        user: User,
        /// Status with the expiry.
        status: InvitationStatus,
    },
    /// The link's time ran out.
    Expired(InvitationStatus),
    /// Unknown, used or replaced.
    Invalid,
}

impl InvitationService {
    /// Looks at an invitation link without using it.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn look_up_invitation(
        &self,
        token: &PlainToken,
    ) -> Result<InvitationLookup, crate::StoreError> {
        let now = self.ports.clock.now();
        Ok(match self.ports.invitations.find_by_token(&token.hash()).await? {
            None => InvitationLookup::Invalid,
            Some((invitation, user)) => match invitation.status_at(now) {
                status @ InvitationStatus::Pending { .. }
                    if user.status() == UserStatus::Invited
                        && user.sign_in == SignInMethod::Password =>
                {
                    InvitationLookup::Pending { user, status }
                }
                status @ InvitationStatus::Expired { .. } => InvitationLookup::Expired(status),
                _ => InvitationLookup::Invalid,
            },
        })
    }

    /// Uses an invitation link: sets the password and activates the user.
    /// The link works once; of two concurrent uses exactly one succeeds.
    ///
    /// # Errors
    /// See [`AcceptInvitationError`].
    pub async fn accept_invitation(
        &self,
        token: &PlainToken,
        password: SecretString,
        context: &RequestContext,
    ) -> Result<User, AcceptInvitationError> {
        let now = self.ports.clock.now();
        let (invitation, user) = self
            .ports
            .invitations
            .find_by_token(&token.hash())
            .await?
            .ok_or(AcceptInvitationError::Invalid)?;
        match invitation.status_at(now) {
            InvitationStatus::Pending { .. } => {}
            InvitationStatus::Expired { expired_at } => {
                return Err(AcceptInvitationError::Expired { expired_at });
            }
            InvitationStatus::Accepted { .. }
            | InvitationStatus::Revoked { .. }
            | InvitationStatus::AwaitingFirstSignIn => {
                return Err(AcceptInvitationError::Invalid);
            }
        }
        // SSO users' invitations were never sent as links and set no password.
        if user.status() != UserStatus::Invited || user.sign_in != SignInMethod::Password {
            return Err(AcceptInvitationError::Invalid);
        }
        let password = Password::new(password)?;
        let password_hash = self.ports.hasher.hash(&password).await?;
        let activated = User { state: UserState::Active { activated_at: now }, ..user };
        let audit =
            AuditEvent::new(now, Actor::user(&activated), AuditAction::InvitationAccepted, context)
                .target(&activated)
                .change(Change::new("status", Some("invited"), Some("active")));
        let acceptance = Acceptance {
            invitation_id: invitation.id,
            user_id: activated.id,
            password_hash: Some(password_hash),
            at: now,
            audit,
        };
        match self.ports.invitations.accept(acceptance).await {
            Ok(()) => Ok(activated),
            Err(AcceptStoreError::NoLongerPending) => Err(AcceptInvitationError::Invalid),
            Err(AcceptStoreError::Unexpected(e)) => Err(e.into()),
        }
    }
}

impl InvitationService {
    /// Re-sends an invitation: a new 72-hour link by email; every earlier
    /// link of the user stops working (rule 5).
    ///
    /// # Errors
    /// See [`ResendInvitationError`].
    pub async fn resend_invitation(
        &self,
        admin: &Admin,
        id: UserId,
        context: &RequestContext,
    ) -> Result<Invitation, ResendInvitationError> {
        let user = self.ports.users.get(id).await?.ok_or(ResendInvitationError::NotFound)?;
        if user.status() != UserStatus::Invited {
            return Err(ResendInvitationError::NotInvited);
        }
        let now = self.ports.clock.now();
        let token = self.ports.tokens.generate();
        let invited_by = Some(admin.user().name.to_string());
        let (invitation, mail) = crate::invitations::models::Invitation::issue(
            &user,
            &token,
            self.policy.invitation_ttl,
            invited_by,
            now,
        );
        let audit = AuditEvent::new(now, admin.actor(), AuditAction::InvitationResent, context)
            .target(&user)
            .change(Change::detail("expires_at", &invitation.expires_at.to_rfc3339()));
        match self
            .ports
            .invitations
            .reissue(Reissue { invitation: invitation.clone(), mail, audit, new_email: None })
            .await
        {
            Ok(()) => Ok(invitation),
            Err(ReissueError::NotInvited) => Err(ResendInvitationError::NotInvited),
            // No address changes here.
            Err(ReissueError::EmailTaken) => {
                Err(StoreError::msg("re-sending an invitation changed no address").into())
            }
            Err(ReissueError::Unexpected(e)) => Err(e.into()),
        }
    }

    /// Corrects an invited user's mistyped email: the address changes
    /// (unique in any letter case, as everywhere), every earlier link stops
    /// working, and a new invitation goes to the new address, atomically;
    /// audited with the address before and after. Active and deactivated
    /// users' addresses are not an admin's to change: they come from the
    /// person or the identity provider. The same address (as written) is no
    /// change, whatever the user's status.
    ///
    /// # Errors
    /// See [`CorrectEmailError`].
    pub async fn correct_email(
        &self,
        admin: &Admin,
        id: UserId,
        email: &str,
        context: &RequestContext,
    ) -> Result<User, CorrectEmailError> {
        let email = EmailAddress::parse(email).map_err(|e| FieldError::new("email", e))?;
        let user = self.ports.users.get(id).await?.ok_or(CorrectEmailError::NotFound)?;
        if user.email.as_str() == email.as_str() {
            return Ok(user);
        }
        if user.status() != UserStatus::Invited {
            return Err(CorrectEmailError::NotInvited);
        }
        let now = self.ports.clock.now();
        if user.role == crate::users::models::Role::Admin {
            // The new address's reader becomes an admin: as inviting one.
            admin.require_recent_factor(self.ports.mfa.as_ref(), now).await?;
        }
        let corrected = User { email: email.clone(), ..user.clone() };
        let token = self.ports.tokens.generate();
        let invited_by = Some(admin.user().name.to_string());
        let (invitation, mail) =
            Invitation::issue(&corrected, &token, self.policy.invitation_ttl, invited_by, now);
        let audit = AuditEvent::new(now, admin.actor(), AuditAction::EmailChanged, context)
            .target(&corrected)
            .change(Change::new("email", Some(user.email.as_str()), Some(email.as_str())));
        let reissue = Reissue { invitation, mail, audit, new_email: Some(email) };
        match self.ports.invitations.reissue(reissue).await {
            Ok(()) => Ok(corrected),
            Err(ReissueError::NotInvited) => Err(CorrectEmailError::NotInvited),
            Err(ReissueError::EmailTaken) => Err(CorrectEmailError::EmailTaken),
            Err(ReissueError::Unexpected(e)) => Err(e.into()),
        }
    }
}

impl InvitationService {
    /// Invites a user: creates them as `invited` and queues the invitation
    /// email, atomically, within the seat limit (rules 2, 4, 5).
    ///
    /// # Errors
    /// See [`InviteUserError`].
    pub async fn invite_user(
        &self,
        admin: &Admin,
        request: &InviteRequest,
        context: &RequestContext,
    ) -> Result<Invited, InviteUserError> {
        let valid = request.validate()?;
        if valid.role == crate::users::models::Role::Admin {
            let now = self.ports.clock.now();
            admin.require_recent_factor(self.ports.mfa.as_ref(), now).await?;
        }
        self.create_invited(admin.actor(), Some(admin.user().name.to_string()), valid, context)
            .await
    }

    /// Invites an admin on the operator's behalf (command line).
    ///
    /// # Errors
    /// See [`InviteUserError`].
    pub async fn invite_admin_as_operator(
        &self,
        email: &str,
        name: &str,
        context: &RequestContext,
    ) -> Result<Invited, InviteUserError> {
        let request = InviteRequest {
            email: email.to_owned(),
            name: name.to_owned(),
            role: Role::Admin.as_str().to_owned(),
            department: None,
            sign_in: None,
        };
        self.create_invited(Actor::Operator, None, request.validate()?, context).await
    }

    async fn create_invited(
        &self,
        actor: Actor,
        invited_by: Option<String>,
        valid: ValidInvite,
        context: &RequestContext,
    ) -> Result<Invited, InviteUserError> {
        let sign_in = self.invitation_method(valid.sign_in).await?;
        let now = self.ports.clock.now();
        let user = User {
            id: UserId::generate(),
            email: valid.email,
            name: valid.name,
            role: valid.role,
            state: UserState::Invited,
            sign_in,
            department: valid.department,
            created_at: now,
            last_login_at: None,
        };
        let token = self.ports.tokens.generate();
        let (invitation, mail) =
            Invitation::issue(&user, &token, self.policy.invitation_ttl, invited_by, now);
        let audit = AuditEvent::new(now, actor, AuditAction::UserInvited, context)
            .target(&user)
            .change(Change::new("role", None, Some(user.role.as_str())))
            .change(Change::new("status", None, Some(user.status().as_str())))
            .change(Change::detail("sign_in", user.sign_in.as_str()));
        let new = NewInvitedUser {
            user: user.clone(),
            invitation: invitation.clone(),
            mail,
            audit,
            seat_limit: self.seat_limit().await?,
        };
        match self.ports.invitations.insert_invited(new).await {
            Ok(()) => Ok(Invited { user, invitation, token }),
            Err(InsertUserError::EmailTaken) => Err(InviteUserError::EmailTaken),
            Err(InsertUserError::SeatLimitReached { limit }) => {
                Err(InviteUserError::SeatLimitReached { limit })
            }
            Err(InsertUserError::Unexpected(e)) => Err(e.into()),
        }
    }

    /// How a new user will sign in: as asked, else SSO while an identity
    /// provider is configured, else password (rule 6).
    ///
    /// # Errors
    /// [`FieldError`] on `sign_in` when SSO is asked for but not configured.
    pub(crate) async fn invitation_method(
        &self,
        asked: Option<SignInMethod>,
    ) -> Result<SignInMethod, InviteUserError> {
        let default = self.default_sign_in().await?;
        match asked {
            Some(SignInMethod::Sso) if default != SignInMethod::Sso => Err(FieldError::new(
                "sign_in",
                "SSO is not configured on this instance; configure it under Settings > SSO first",
            )
            .into()),
            Some(method) => Ok(method),
            None => Ok(default),
        }
    }

    /// SSO while an identity provider is configured, else password.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub(crate) async fn default_sign_in(&self) -> Result<SignInMethod, StoreError> {
        crate::settings::default_sign_in(&*self.ports.settings, &self.policy).await
    }

    async fn seat_limit(&self) -> Result<Option<u32>, StoreError> {
        crate::settings::seat_limit_in_force(&*self.ports.settings, &self.policy).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invite_request_names_the_first_invalid_field() {
        let ok = InviteRequest {
            email: "ada@example.com".into(),
            name: "Ada".into(),
            role: "Admin".into(),
            department: Some("  ".into()),
            sign_in: None,
        };
        let valid = ok.validate().unwrap();
        assert_eq!(valid.role, Role::Admin);
        assert_eq!(valid.department, None);
        let bad_email = InviteRequest { email: "nope".into(), ..ok.clone() };
        assert_eq!(bad_email.validate().unwrap_err().field, "email");
        let bad_name = InviteRequest { name: " ".into(), ..ok.clone() };
        assert_eq!(bad_name.validate().unwrap_err().field, "name");
        let bad_role = InviteRequest { role: "owner".into(), ..ok.clone() };
        assert_eq!(bad_role.validate().unwrap_err().field, "role");
        let bad_dept = InviteRequest { department: Some("x".repeat(101)), ..ok };
        assert_eq!(bad_dept.validate().unwrap_err().field, "department");
    }
}
