//! Admin use cases on users: invite, list, look up.

use crate::audit::models::{Actor, AuditAction, AuditEvent, Change, RequestContext};
use crate::invitations::models::{Invitation, InvitationStatus};
use crate::secrets::PlainToken;
use crate::service::UserManagement;
use crate::sessions::models::Admin;
use crate::users::errors::{FieldError, GetUserError, InviteUserError};
use crate::users::models::{
    Department, DisplayName, EmailAddress, Role, SignInMethod, User, UserId, UserState,
};
use crate::users::ports::{InsertUserError, NewInvitedUser};

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

/// A user and their activity summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserProfile {
    /// The user (with created, activated, deactivated and last sign-in times).
    pub user: User,
    /// Their latest invitation's status, if they were ever invited.
    pub invitation: Option<InvitationStatus>,
    /// Sessions still usable now.
    pub active_sessions: u64,
    /// Where the last invitation (or access-ready) email is: queued, sent
    /// or failed, with the last error.
    pub invitation_email: Option<crate::mail::models::OutboxEntry>,
}

impl UserManagement {
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
        match self.ports.users.insert_invited(new).await {
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
    pub(crate) async fn default_sign_in(&self) -> Result<SignInMethod, crate::StoreError> {
        Ok(if self.sso_settings_in_force().await?.0.enabled() {
            SignInMethod::Sso
        } else {
            SignInMethod::Password
        })
    }

    /// One user with their activity summary: invitation state and live
    /// sessions (the profile page).
    ///
    /// # Errors
    /// See [`GetUserError`].
    pub async fn user_profile(
        &self,
        admin: &Admin,
        id: UserId,
    ) -> Result<UserProfile, GetUserError> {
        let user = self.get_user(admin, id).await?;
        let now = self.ports.clock.now();
        let invitation = self.ports.invitations.latest_for(id).await?.map(|i| i.status_at(now));
        let active_sessions =
            self.ports.sessions.count_live(id, now, now - self.policy.session_idle_timeout).await?;
        let mut invitation_email: Option<crate::mail::models::OutboxEntry> = None;
        for kind in ["invitation", "access_ready"] {
            let latest = self.ports.outbox.latest_for(id, kind).await?;
            if let Some(entry) = latest
                && invitation_email.as_ref().is_none_or(|e| e.created_at < entry.created_at)
            {
                invitation_email = Some(entry);
            }
        }
        Ok(UserProfile { user, invitation, active_sessions, invitation_email })
    }

    /// One user by id.
    ///
    /// # Errors
    /// See [`GetUserError`].
    pub async fn get_user(&self, _admin: &Admin, id: UserId) -> Result<User, GetUserError> {
        self.ports.users.get(id).await?.ok_or(GetUserError::NotFound)
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
