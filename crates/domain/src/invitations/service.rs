//! Accepting an invitation: the invited user sets a password and becomes
//! active (rule 5).

use secrecy::SecretString;

use crate::audit::models::{Actor, AuditAction, AuditEvent, Change, RequestContext};
use crate::invitations::errors::{AcceptInvitationError, ResendInvitationError};
use crate::invitations::models::{Invitation, InvitationStatus};
use crate::invitations::ports::{AcceptStoreError, Acceptance, Reissue, ReissueError};
use crate::secrets::{Password, PlainToken};
use crate::service::UserManagement;
use crate::sessions::models::Admin;
use crate::users::models::{SignInMethod, User, UserId, UserState, UserStatus};

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

impl UserManagement {
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
            InvitationStatus::Accepted { .. } | InvitationStatus::Revoked { .. } => {
                return Err(AcceptInvitationError::Invalid);
            }
        }
        // SSO users' invitations were never sent as links and set no password.
        if user.status() != UserStatus::Invited || user.sign_in != SignInMethod::Password {
            return Err(AcceptInvitationError::Invalid);
        }
        let password = Password::new(password)?;
        let password_hash = self.ports.passwords.hash(&password).await?;
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

impl UserManagement {
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
            .reissue(Reissue { invitation: invitation.clone(), mail, audit })
            .await
        {
            Ok(()) => Ok(invitation),
            Err(ReissueError::NotInvited) => Err(ResendInvitationError::NotInvited),
            Err(ReissueError::Unexpected(e)) => Err(e.into()),
        }
    }
}
