//! What a provisioning client (an identity provider holding a service
//! token with the `scim` scope) may read and do: create, change,
//! deactivate and detach users — never delete them — under the same rules
//! as an admin (rules 3, 4, 7, 14).

use std::sync::Arc;

use crate::access::ServiceCaller;
use crate::analytics::models::TokenScope;
use crate::audit::models::{AuditAction, AuditEvent, Change, RequestContext};
use crate::clock::Clock;
use crate::errors::{FieldError, StoreError};
use crate::invitations::models::{Invitation, InvitationState};
use crate::invitations::ports::InsertUserError;
use crate::provisioning::models::{
    Attributes, MAX_EXTERNAL_ID_CHARS, ProvisionedUser, ScimIdentity,
};
use crate::provisioning::ports::{NewProvisionedUser, ProvisioningRepository};
use crate::secrets::TokenGenerator;
use crate::settings::ports::SettingsRepository;
use crate::users::changes::{ValidUpdate, plan};
use crate::users::models::{
    Department, DisplayName, EmailAddress, Role, SignInMethod, User, UserId, UserState,
};
use crate::users::ports::{ChangeUserError, UserChange, UserRepository};

/// The ports ProvisioningService uses, and no others.
#[derive(Clone)]
pub struct ProvisioningPorts {
    /// User storage.
    pub users: Arc<dyn UserRepository>,
    /// Users with their link to the identity provider's record.
    pub provisioning: Arc<dyn ProvisioningRepository>,
    /// The seat limit in force.
    pub settings: Arc<dyn SettingsRepository>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Randomness (invitation tokens).
    pub tokens: Arc<dyn TokenGenerator>,
    /// Groups and their members.
    pub groups: Arc<dyn crate::provisioning::ports::GroupRepository>,
    /// Refusals by the guide's rules, audited on their own.
    pub audit: Arc<dyn crate::audit::ports::AuditLog>,
    /// Second factors: naming the admin group needs a recent check.
    pub mfa: Arc<dyn crate::mfa::ports::MfaRepository>,
}

/// The identity provider's side of user management. Every use case takes
/// the [`ServiceCaller`] the token check made, and refuses one whose token
/// does not have the `scim` scope.
pub struct ProvisioningService {
    pub(super) ports: ProvisioningPorts,
    pub(super) policy: Arc<crate::policy::Policy>,
}

/// Why a provisioning request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProvisioningError {
    /// The token does not have the `scim` scope.
    #[error("this service token does not have the `scim` scope")]
    Forbidden,
    /// No user has this id (or the identity provider deleted them).
    #[error("no user has this id")]
    NotFound,
    /// A value is invalid.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// Another user has this address, in any letter case.
    #[error("another user has this email address (addresses are unique in any letter case)")]
    EmailTaken,
    /// The change would leave no active admin (rule 3).
    #[error(
        "this is the last active admin: deactivating or demoting them would leave nobody to \
         manage users; make someone else an admin first"
    )]
    LastAdmin,
    /// Every seat is taken (rule 4).
    #[error(
        "all {limit} seats are taken: an admin can raise the seat limit or deactivate someone \
         under Settings > Seats"
    )]
    SeatLimitReached {
        /// The limit.
        limit: u32,
    },
    /// No group has this id.
    #[error("no group has this id")]
    GroupNotFound,
    /// Another group has this name, in any letter case.
    #[error("another group has this name (group names are unique in any letter case)")]
    GroupNameTaken,
    /// Naming the admin group makes its members admins: it needs a recent
    /// second-factor check.
    #[error(transparent)]
    StepUp(#[from] crate::errors::StepUpError),
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// A page of users by position, and how many there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsersByPosition {
    /// The users, in creation order.
    pub users: Vec<ProvisionedUser>,
    /// Every user there is (but those the identity provider deleted).
    pub total: u64,
}

/// How many times a change is retried when the user changed meanwhile.
const ATTEMPTS: usize = 5;

impl ProvisioningService {
    /// The use cases over these ports and rules.
    #[must_use]
    pub fn new(ports: ProvisioningPorts, policy: Arc<crate::policy::Policy>) -> Self {
        Self { ports, policy }
    }

    pub(super) fn check(caller: &ServiceCaller) -> Result<(), ProvisioningError> {
        if caller.token().allows(TokenScope::Scim) {
            Ok(())
        } else {
            Err(ProvisioningError::Forbidden)
        }
    }

    /// One user by id, unless the identity provider deleted them.
    ///
    /// # Errors
    /// See [`ProvisioningError`].
    pub async fn user(
        &self,
        caller: &ServiceCaller,
        id: UserId,
    ) -> Result<ProvisionedUser, ProvisioningError> {
        Self::check(caller)?;
        self.ports.provisioning.get(id).await?.ok_or(ProvisioningError::NotFound)
    }

    /// The user with this address (any letter case), if any.
    ///
    /// # Errors
    /// See [`ProvisioningError`].
    pub async fn user_by_email(
        &self,
        caller: &ServiceCaller,
        email: &EmailAddress,
    ) -> Result<Option<ProvisionedUser>, ProvisioningError> {
        Self::check(caller)?;
        Ok(self.ports.provisioning.find_by_email(email).await?)
    }

    /// The user with this `userName`: an account name sent at creation
    /// (any letter case), else an address.
    ///
    /// # Errors
    /// See [`ProvisioningError`].
    pub async fn user_by_user_name(
        &self,
        caller: &ServiceCaller,
        user_name: &str,
    ) -> Result<Option<ProvisionedUser>, ProvisioningError> {
        Self::check(caller)?;
        if let Some(found) = self.ports.provisioning.find_by_user_name(user_name).await? {
            return Ok(Some(found));
        }
        match EmailAddress::parse(user_name) {
            Ok(email) => Ok(self.ports.provisioning.find_by_email(&email).await?),
            Err(_) => Ok(None),
        }
    }

    /// Up to a page of users with this `externalId` (exact), in creation
    /// order.
    ///
    /// # Errors
    /// See [`ProvisioningError`].
    pub async fn users_by_external_id(
        &self,
        caller: &ServiceCaller,
        external_id: &str,
    ) -> Result<Vec<ProvisionedUser>, ProvisioningError> {
        Self::check(caller)?;
        let limit = self.policy.max_page_size;
        Ok(self.ports.provisioning.find_by_external_id(external_id, limit).await?)
    }

    /// Up to `count` users matching `filter` from position `offset`
    /// (0-based) in creation order, with how many match.
    ///
    /// # Errors
    /// See [`ProvisioningError`]; a filter that compares an attribute in a
    /// way it cannot be is `Invalid` on `filter`.
    pub async fn users_matching(
        &self,
        caller: &ServiceCaller,
        filter: &crate::provisioning::filter::ScimFilter,
        offset: u64,
        count: u32,
    ) -> Result<UsersByPosition, ProvisioningError> {
        Self::check(caller)?;
        filter.check().map_err(|e| FieldError::new("filter", e))?;
        let count = count.min(self.policy.max_page_size);
        let (users, total) = self.ports.provisioning.search(filter, offset, count).await?;
        Ok(UsersByPosition { users, total })
    }

    /// Up to `count` users from position `offset` (0-based) in creation
    /// order — a stable order: new users come last — with the total.
    /// `count` is clamped to the largest page.
    ///
    /// # Errors
    /// See [`ProvisioningError`].
    pub async fn users_by_position(
        &self,
        caller: &ServiceCaller,
        offset: u64,
        count: u32,
    ) -> Result<UsersByPosition, ProvisioningError> {
        Self::check(caller)?;
        let count = count.min(self.policy.max_page_size);
        let (users, total) = self.ports.provisioning.by_position(offset, count).await?;
        Ok(UsersByPosition { users, total })
    }

    /// Creates a user the identity provider sends: an SSO user, invited
    /// (their first SSO sign-in activates them) and sent the access-ready
    /// email — or deactivated, without email, when sent inactive — within
    /// the seat limit. An address held by a user the identity provider
    /// deleted earlier brings that person back (their history kept),
    /// reactivated within the seat limit.
    ///
    /// # Errors
    /// See [`ProvisioningError`].
    pub async fn create(
        &self,
        caller: &ServiceCaller,
        attributes: &Attributes,
        context: &RequestContext,
    ) -> Result<ProvisionedUser, ProvisioningError> {
        Self::check(caller)?;
        let raw_email = attributes.email.as_deref().ok_or_else(|| {
            FieldError::new(
                "userName",
                "needs the work email address: as userName, or as the primary or work email",
            )
        })?;
        let email = EmailAddress::parse(raw_email).map_err(|e| FieldError::new("userName", e))?;
        let name = match attributes.name.as_deref() {
            Some(name) => name.to_owned(),
            // Without a name, the address's local part stands in for one.
            None => email.as_str().split('@').next().unwrap_or_default().to_owned(),
        };
        let name = DisplayName::parse(&name).map_err(|e| FieldError::new("name", e))?;
        let department = department(attributes)?.flatten();
        let external_id = external_id(attributes)?.flatten();
        let user_name = user_name(attributes)?.flatten();
        let active = attributes.active.unwrap_or(true);
        let settings = self.ports.settings.provisioning_settings().await?;
        let admin_group_named = settings.admin_group.is_some();
        let now = self.ports.clock.now();
        let user = User {
            id: UserId::generate(),
            email: email.clone(),
            name,
            // With an admin group named, membership alone makes admins.
            role: if attributes.admin == Some(true) && !admin_group_named {
                Role::Admin
            } else {
                Role::User
            },
            state: if active {
                UserState::Invited
            } else {
                UserState::Deactivated { activated_at: None, deactivated_at: now }
            },
            sign_in: SignInMethod::Sso,
            department,
            created_at: now,
            last_login_at: None,
        };
        let token = self.ports.tokens.generate();
        let (mut invitation, mail) =
            Invitation::issue(&user, &token, self.policy.invitation_ttl, None, now);
        if !active {
            invitation.state = InvitationState::Revoked { at: now };
        }
        let audit = AuditEvent::new(now, caller.actor(), AuditAction::UserInvited, context)
            .target(&user)
            .change(Change::new("role", None, Some(user.role.as_str())))
            .change(Change::new("status", None, Some(user.status().as_str())))
            .change(Change::detail("sign_in", user.sign_in.as_str()))
            .change(Change::detail("source", "scim"));
        let new = NewProvisionedUser {
            user: user.clone(),
            invitation,
            mail: (active && settings.send_access_email).then_some(mail),
            audit,
            seat_limit: if active { self.seat_limit().await? } else { None },
            external_id: external_id.clone(),
            user_name: user_name.clone(),
        };
        match self.ports.provisioning.create(new).await {
            Ok(()) => {
                Ok(ProvisionedUser { modified_at: user.created_at, user, external_id, user_name })
            }
            Err(InsertUserError::EmailTaken) => {
                let Some(existing) = self.ports.users.find_by_email(&email).await? else {
                    return Err(ProvisioningError::EmailTaken);
                };
                let identity = self.ports.provisioning.identity(existing.id).await?;
                if identity.is_some_and(|i| i.detached_at.is_some()) {
                    let attributes = Attributes {
                        active: Some(active),
                        external_id: Some(external_id),
                        ..attributes.clone()
                    };
                    self.change(caller, existing.id, &attributes, context, Link::Reattach).await
                } else {
                    Err(ProvisioningError::EmailTaken)
                }
            }
            Err(InsertUserError::SeatLimitReached { limit }) => {
                let refused = Err(ProvisioningError::SeatLimitReached { limit });
                self.audit_refusal(caller, None, &refused, context).await?;
                refused
            }
            Err(InsertUserError::Unexpected(e)) => Err(e.into()),
        }
    }

    /// Applies what the identity provider sent (`PUT`, `PATCH`): address,
    /// name, department, role, `externalId`, and `active` — `false`
    /// deactivates exactly as the panel does (sessions end at once, links
    /// are voided, the seat is freed), `true` reactivates within the seat
    /// limit. The last active admin is kept. Every change is audited with
    /// before and after, the token as actor.
    ///
    /// # Errors
    /// See [`ProvisioningError`].
    pub async fn update(
        &self,
        caller: &ServiceCaller,
        id: UserId,
        attributes: &Attributes,
        context: &RequestContext,
    ) -> Result<ProvisionedUser, ProvisioningError> {
        Self::check(caller)?;
        let result = self.change(caller, id, attributes, context, Link::Keep).await;
        self.audit_refusal(caller, Some(id), &result, context).await?;
        result
    }

    /// The identity provider deleted the user (`DELETE`): they are
    /// deactivated as by `active: false` — never deleted: their history
    /// stays — and detached, so that their SCIM id answers 404 from now on.
    ///
    /// # Errors
    /// See [`ProvisioningError`].
    pub async fn delete(
        &self,
        caller: &ServiceCaller,
        id: UserId,
        context: &RequestContext,
    ) -> Result<(), ProvisioningError> {
        Self::check(caller)?;
        let attributes = Attributes { active: Some(false), ..Attributes::default() };
        let result = self.change(caller, id, &attributes, context, Link::Detach).await;
        self.audit_refusal(caller, Some(id), &result, context).await?;
        result.map(|_| ())
    }

    /// Records a refusal by the guide's rules (last admin, seats), so that
    /// admins see what their identity provider was refused and why.
    pub(super) async fn audit_refusal<T>(
        &self,
        caller: &ServiceCaller,
        target: Option<UserId>,
        result: &Result<T, ProvisioningError>,
        context: &RequestContext,
    ) -> Result<(), ProvisioningError> {
        let reason = match result {
            Err(
                e @ (ProvisioningError::LastAdmin | ProvisioningError::SeatLimitReached { .. }),
            ) => e.to_string(),
            _ => return Ok(()),
        };
        let mut event = AuditEvent::new(
            self.ports.clock.now(),
            caller.actor(),
            AuditAction::ProvisioningRefused,
            context,
        )
        .change(Change::detail("reason", &reason));
        if let Some(id) = target
            && let Some(user) = self.ports.users.get(id).await?
        {
            event = event.target(&user);
        }
        self.ports.audit.append(event).await?;
        Ok(())
    }

    async fn change(
        &self,
        caller: &ServiceCaller,
        id: UserId,
        attributes: &Attributes,
        context: &RequestContext,
        link: Link,
    ) -> Result<ProvisionedUser, ProvisioningError> {
        let valid = ValidUpdate {
            role: attributes.admin.map(|admin| if admin { Role::Admin } else { Role::User }),
            active: attributes.active,
            name: attributes
                .name
                .as_deref()
                .map(DisplayName::parse)
                .transpose()
                .map_err(|e| FieldError::new("name", e))?,
            department: department(attributes)?,
            to_sso: false,
            email: attributes
                .email
                .as_deref()
                .map(EmailAddress::parse)
                .transpose()
                .map_err(|e| FieldError::new("userName", e))?,
        };
        let asked_external_id = external_id(attributes)?;
        let asked_user_name = user_name(attributes)?;
        let admin_group_named =
            self.ports.settings.provisioning_settings().await?.admin_group.is_some();
        for _ in 0..ATTEMPTS {
            let before = self.ports.users.get(id).await?.ok_or(ProvisioningError::NotFound)?;
            let identity = self.ports.provisioning.identity(id).await?.unwrap_or_default();
            if identity.detached_at.is_some() && link != Link::Reattach {
                return Err(ProvisioningError::NotFound);
            }
            let now = self.ports.clock.now();
            // A password (break-glass) account keeps its role whatever the
            // identity provider's `roles` say (a PUT with `roles: []`
            // would demote the break-glass admin).
            // With an admin group named, membership alone sets the role.
            let valid = ValidUpdate {
                role: valid
                    .role
                    .filter(|_| before.sign_in != SignInMethod::Password && !admin_group_named),
                ..valid.clone()
            };
            let mut change = plan(&caller.actor(), before.clone(), &valid, now, context);
            if let Some(change) = change.as_mut()
                && change.takes_seat.is_some()
            {
                change.takes_seat = Some(self.seat_limit().await?);
            }
            let after_identity = ScimIdentity {
                external_id: asked_external_id.clone().unwrap_or(identity.external_id.clone()),
                // A detached user lets go of their account name: someone
                // rehired under it is created anew.
                user_name: if link == Link::Detach {
                    None
                } else {
                    asked_user_name.clone().unwrap_or(identity.user_name.clone())
                },
                detached_at: match link {
                    Link::Keep => None,
                    Link::Reattach => None,
                    Link::Detach => Some(now),
                },
            };
            if link == Link::Detach {
                let event = AuditEvent::new(
                    now,
                    caller.actor(),
                    AuditAction::ProvisioningDetached,
                    context,
                )
                .target(&before);
                change.get_or_insert_with(|| unchanged(&before)).audit.push(event);
            }
            if change.is_none() && after_identity == identity {
                return self.ports.provisioning.get(id).await?.ok_or(ProvisioningError::NotFound);
            }
            let after = change.as_ref().map_or_else(|| before.clone(), |c| c.after.clone());
            match self.ports.provisioning.update(id, change, after_identity.clone(), now).await {
                Ok(()) => {
                    return Ok(ProvisionedUser {
                        user: after,
                        modified_at: now,
                        external_id: after_identity.external_id,
                        user_name: after_identity.user_name,
                    });
                }
                Err(ChangeUserError::Stale) => continue,
                Err(ChangeUserError::LastAdmin) => return Err(ProvisioningError::LastAdmin),
                Err(ChangeUserError::SeatLimitReached { limit }) => {
                    return Err(ProvisioningError::SeatLimitReached { limit });
                }
                Err(ChangeUserError::EmailTaken) => return Err(ProvisioningError::EmailTaken),
                Err(ChangeUserError::Unexpected(e)) => return Err(e.into()),
            }
        }
        Err(StoreError::msg("the user kept changing while the identity provider changed them")
            .into())
    }

    async fn seat_limit(&self) -> Result<Option<u32>, StoreError> {
        crate::settings::seat_limit_in_force(&*self.ports.settings, &self.policy).await
    }
}

/// What a change does to the user's link to the identity provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Leaves it (a detached user is not found).
    Keep,
    /// Detaches it (`DELETE`).
    Detach,
    /// Attaches a detached user again (created anew).
    Reattach,
}

/// A change that changes nothing but carries audit events.
fn unchanged(user: &User) -> UserChange {
    UserChange {
        before: user.clone(),
        after: user.clone(),
        audit: Vec::new(),
        end_sessions: false,
        revoke_links: false,
        keep_an_admin: false,
        takes_seat: None,
    }
}

fn department(attributes: &Attributes) -> Result<Option<Option<Department>>, FieldError> {
    attributes
        .department
        .as_ref()
        .map(|d| match d {
            None => Ok(None),
            Some(d) => Department::parse(d),
        })
        .transpose()
        .map_err(|e| FieldError::new("department", e))
}

fn external_id(attributes: &Attributes) -> Result<Option<Option<String>>, FieldError> {
    match &attributes.external_id {
        None => Ok(None),
        Some(None) => Ok(Some(None)),
        Some(Some(id)) if id.is_empty() => Ok(Some(None)),
        Some(Some(id)) if id.chars().count() > MAX_EXTERNAL_ID_CHARS => Err(FieldError::new(
            "externalId",
            format!("has at most {MAX_EXTERNAL_ID_CHARS} characters"),
        )),
        Some(Some(id)) if id.chars().any(char::is_control) => {
            Err(FieldError::new("externalId", "must not hold control characters"))
        }
        Some(Some(id)) => Ok(Some(Some(id.clone()))),
    }
}

fn user_name(attributes: &Attributes) -> Result<Option<Option<String>>, FieldError> {
    match &attributes.user_name {
        Some(Some(name)) if name.trim().is_empty() => Ok(Some(None)),
        Some(Some(name)) if name.chars().count() > EmailAddress::MAX_LEN => Err(FieldError::new(
            "userName",
            format!("has at most {} characters", EmailAddress::MAX_LEN),
        )),
        Some(Some(name)) if name.chars().any(char::is_control) => {
            Err(FieldError::new("userName", "must not hold control characters"))
        }
        Some(Some(name)) => Ok(Some(Some(name.trim().to_owned()))),
        other => Ok(other.clone()),
    }
}
