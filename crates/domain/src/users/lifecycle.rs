//! Changing users: role, active (deactivate / reactivate), name and
//! department — the panel's "Save" — and the seat limit.
//!
//! The domain works out the new user and what must go with it (audit
//! events, ending sessions, the rules to re-check); the store applies it
//! atomically, re-checking the instance-wide rules (at least one active admin,
//! seats) against committed data.

use crate::access::Admin;
use crate::audit::models::{Actor, AuditAction, AuditEvent, Change, RequestContext};
use crate::errors::FieldError;
use crate::users::changes::{ValidUpdate, plan};
use crate::users::errors::{
    EraseUserError, SettingsError, UpdateUserError, WithdrawInvitationError,
};
use crate::users::models::{
    Department, DisplayName, EmailAddress, Role, User, UserId, UserState, UserStatus,
};
use crate::users::ports::{ChangeUserError, Erasure, UserChange};
use crate::users::service::UserService;

/// A change as an admin (or the user, for their own name) asked for it.
/// Absent fields stay as they are; an empty department clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    /// New role, `user` or `admin`.
    pub role: Option<String>,
    /// `false` deactivates, `true` reactivates.
    pub active: Option<bool>,
    /// New display name.
    pub name: Option<String>,
    /// New department (`""` clears it).
    pub department: Option<String>,
    /// `sso` switches a password account to single sign-on: its password
    /// is removed, its sessions end, and its next SSO sign-in links it.
    /// The only way a password (break-glass) account is ever linked.
    pub sign_in: Option<String>,
}

impl UserUpdate {
    /// Checks every field without changing anything, so that a caller
    /// combining this change with another can refuse both before either.
    ///
    /// # Errors
    /// [`FieldError`] naming the first invalid field.
    pub fn check(&self) -> Result<(), FieldError> {
        self.validate().map(|_| ())
    }

    /// Whether it asks for no change at all.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn validate(&self) -> Result<ValidUpdate, FieldError> {
        Ok(ValidUpdate {
            role: self
                .role
                .as_deref()
                .map(Role::parse)
                .transpose()
                .map_err(|e| FieldError::new("role", e))?,
            active: self.active,
            name: self
                .name
                .as_deref()
                .map(DisplayName::parse)
                .transpose()
                .map_err(|e| FieldError::new("name", e))?,
            department: self
                .department
                .as_deref()
                .map(Department::parse)
                .transpose()
                .map_err(|e| FieldError::new("department", e))?,
            to_sso: match self.sign_in.as_deref() {
                None => false,
                Some("sso") => true,
                Some(_) => {
                    return Err(FieldError::new(
                        "sign_in",
                        "can only be `sso`: a password account can be switched to single sign-on; \
                         the way back is a password reset",
                    ));
                }
            },
            email: None,
        })
    }
}

/// Seats in use and the limit in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatUsage {
    /// Invited + active users.
    pub used: u64,
    /// The limit (`None` = unlimited).
    pub limit: Option<u32>,
}

/// How many times a change is retried when the user changed meanwhile.
const ATTEMPTS: usize = 5;

impl UserService {
    /// Changes a user's role, active state, name or department (rules 3, 4,
    /// 7, 8, 14). Deactivation ends every session at once and frees the
    /// seat; reactivation needs a free seat; no change may leave the
    /// instance without an active admin.
    ///
    /// # Errors
    /// See [`UpdateUserError`].
    pub async fn update_user(
        &self,
        admin: &Admin,
        id: UserId,
        update: &UserUpdate,
        context: &RequestContext,
    ) -> Result<User, UpdateUserError> {
        let valid = update.validate()?;
        if valid.role == Some(Role::Admin) {
            let current = self.ports.users.get(id).await?.ok_or(UpdateUserError::NotFound)?;
            if current.role != Role::Admin {
                let now = self.ports.clock.now();
                admin.require_recent_factor(self.ports.mfa.as_ref(), now).await?;
            }
        }
        self.change_user(admin.actor(), id, &valid, context).await
    }

    /// Changes the signed-in user's own name.
    ///
    /// # Errors
    /// See [`UpdateUserError`].
    pub async fn update_own_name(
        &self,
        principal: &crate::access::Principal,
        name: &str,
        context: &RequestContext,
    ) -> Result<User, UpdateUserError> {
        let valid =
            UserUpdate { name: Some(name.to_owned()), ..UserUpdate::default() }.validate()?;
        self.change_user(principal.actor(), principal.user().id, &valid, context).await
    }

    async fn change_user(
        &self,
        actor: Actor,
        id: UserId,
        update: &ValidUpdate,
        context: &RequestContext,
    ) -> Result<User, UpdateUserError> {
        for _ in 0..ATTEMPTS {
            let before = self.ports.users.get(id).await?.ok_or(UpdateUserError::NotFound)?;
            let now = self.ports.clock.now();
            let Some(mut change) = plan(&actor, before.clone(), update, now, context) else {
                return Ok(before);
            };
            if change.takes_seat.is_some() {
                change.takes_seat = Some(self.seat_limit().await?);
            }
            let after = change.after.clone();
            match self.ports.users.apply_change(change).await {
                Ok(()) => return Ok(after),
                Err(ChangeUserError::Stale) => continue,
                Err(ChangeUserError::LastAdmin) => return Err(UpdateUserError::LastAdmin),
                Err(ChangeUserError::SeatLimitReached { limit }) => {
                    return Err(UpdateUserError::SeatLimitReached { limit });
                }
                Err(ChangeUserError::EmailTaken) => {
                    return Err(crate::StoreError::msg("an admin's change moved an address").into());
                }
                Err(ChangeUserError::Unexpected(e)) => return Err(e.into()),
            }
        }
        Err(crate::StoreError::msg("the user kept changing while we tried to update them").into())
    }

    /// Withdraws an invited user's invitation (a stale or mistaken one):
    /// they are deactivated, their link stops working and their seat is
    /// free at once; audited as `invitation.withdrawn`. Reactivating them
    /// later makes them invited again, for a new invitation.
    ///
    /// # Errors
    /// See [`WithdrawInvitationError`].
    pub async fn withdraw_invitation(
        &self,
        admin: &Admin,
        id: UserId,
        context: &RequestContext,
    ) -> Result<User, WithdrawInvitationError> {
        for _ in 0..ATTEMPTS {
            let before =
                self.ports.users.get(id).await?.ok_or(WithdrawInvitationError::NotFound)?;
            if before.status() != UserStatus::Invited {
                return Err(WithdrawInvitationError::NotInvited);
            }
            let now = self.ports.clock.now();
            let mut after = before.clone();
            after.state = UserState::Deactivated { activated_at: None, deactivated_at: now };
            let audit =
                AuditEvent::new(now, admin.actor(), AuditAction::InvitationWithdrawn, context)
                    .target(&before)
                    .change(Change::new("status", Some("invited"), Some("deactivated")));
            let change = UserChange {
                before,
                after: after.clone(),
                audit: vec![audit],
                end_sessions: true,
                revoke_links: true,
                keep_an_admin: false,
                takes_seat: None,
            };
            match self.ports.users.apply_change(change).await {
                Ok(()) => return Ok(after),
                // Accepted or changed meanwhile: look again.
                Err(ChangeUserError::Stale) => continue,
                Err(ChangeUserError::Unexpected(e)) => return Err(e.into()),
                Err(other) => return Err(crate::StoreError::msg(other.to_string()).into()),
            }
        }
        Err(crate::StoreError::msg("the user kept changing while we tried to withdraw").into())
    }

    /// Seats in use and the limit in force.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn seat_usage(&self, _admin: &Admin) -> Result<SeatUsage, crate::StoreError> {
        Ok(SeatUsage {
            used: self.ports.users.count_seats().await?,
            limit: self.seat_limit().await?,
        })
    }

    /// Sets the seat limit (`None` = unlimited). A limit below the seats in
    /// use keeps everyone's access but refuses new invitations and
    /// reactivations until seats are freed.
    ///
    /// # Errors
    /// [`SettingsError::Invalid`] for a limit of zero.
    pub async fn set_seat_limit(
        &self,
        admin: &Admin,
        limit: Option<u32>,
        context: &RequestContext,
    ) -> Result<SeatUsage, SettingsError> {
        if limit == Some(0) {
            return Err(
                FieldError::new("limit", "must be at least 1, or null for unlimited").into()
            );
        }
        let before = self.seat_limit().await?;
        let show = |l: Option<u32>| l.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
        let audit = AuditEvent::new(
            self.ports.clock.now(),
            admin.actor(),
            AuditAction::SeatLimitChanged,
            context,
        )
        .change(Change::new("seat_limit", Some(&show(before)), Some(&show(limit))));
        self.ports.settings.set_seat_limit(limit, audit).await?;
        Ok(self.seat_usage(admin).await?)
    }
}

impl UserService {
    /// Erases a person's personal data on the operator's request (GDPR,
    /// rule 9): email, name and department are replaced, the password is
    /// removed, the account is deactivated; ids, timestamps and aggregates
    /// stay, and the erasure is itself audited. The last active admin is
    /// refused. There is deliberately no way to do this from the admin API.
    ///
    /// # Errors
    /// See [`EraseUserError`].
    pub async fn erase_user_as_operator(
        &self,
        email: &str,
        context: &RequestContext,
    ) -> Result<User, EraseUserError> {
        let email = EmailAddress::parse(email).map_err(|_| EraseUserError::NotFound)?;
        for _ in 0..ATTEMPTS {
            let before =
                self.ports.users.find_by_email(&email).await?.ok_or(EraseUserError::NotFound)?;
            let now = self.ports.clock.now();
            let mut after = before.clone();
            after.email = EmailAddress::from_stored(format!("erased-{}@erased.invalid", before.id));
            // A constant, valid name: parsing it cannot fail.
            after.name = DisplayName::parse("Erased user")
                .map_err(|e| crate::StoreError::msg(e.to_string()))?;
            after.department = None;
            after.state = UserState::Deactivated {
                activated_at: before.state.activated_at(),
                deactivated_at: before.state.deactivated_at().unwrap_or(now),
            };
            let mut audit = AuditEvent::new(now, Actor::Operator, AuditAction::UserErased, context);
            audit.target_id = Some(before.id);
            let erasure = Erasure { before, after: after.clone(), audit };
            match self.ports.users.erase(erasure).await {
                Ok(()) => return Ok(after),
                Err(ChangeUserError::Stale) => continue,
                Err(ChangeUserError::LastAdmin) => return Err(EraseUserError::LastAdmin),
                Err(
                    e @ (ChangeUserError::SeatLimitReached { .. } | ChangeUserError::EmailTaken),
                ) => {
                    return Err(
                        crate::StoreError::msg(format!("erasing cannot fail so: {e}")).into()
                    );
                }
                Err(ChangeUserError::Unexpected(e)) => return Err(e.into()),
            }
        }
        Err(crate::StoreError::msg("the user kept changing while we tried to erase them").into())
    }
}

impl UserService {
    /// The seat limit in force: the one an admin set, else the configured
    /// one (`None` = unlimited).
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn seat_limit(&self) -> Result<Option<u32>, crate::StoreError> {
        crate::settings::seat_limit_in_force(&*self.ports.settings, &self.policy).await
    }
}
