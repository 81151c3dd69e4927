//! Settings › Provisioning, for admins: the admin group and whether users
//! created over SCIM get the access-ready email; and the groups an admin
//! sees (to choose the admin group, on a user's profile).

use uuid::Uuid;

use crate::access::Admin;
use crate::audit::models::{AuditAction, AuditEvent, Change, RequestContext};
use crate::errors::FieldError;
use crate::provisioning::models::{
    Group, GroupSummary, KEPT_FAILURES, ProvisioningSettings, RequestFailure,
};
use crate::provisioning::service::{ProvisioningError, ProvisioningService};
use crate::users::changes::{ValidUpdate, plan};
use crate::users::models::{Role, SignInMethod, UserId};
use crate::users::ports::{UserFilter, UserQuery, UserSort};

/// Most groups listed for choosing the admin group.
pub const MAX_LISTED_GROUPS: u32 = 500;

/// Admins looked at per page when an admin group is named.
const DEMOTION_PAGE: u32 = 200;

impl ProvisioningService {
    /// Settings › Provisioning as in force.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn settings(
        &self,
        _admin: &Admin,
    ) -> Result<ProvisioningSettings, crate::StoreError> {
        self.ports.settings.provisioning_settings().await
    }

    /// Saves Settings › Provisioning. Naming an admin group makes its SSO
    /// members admins and every other SSO admin a user at once (the last
    /// active admin kept); from then on, joining or leaving it sets their
    /// role, and SCIM `roles` no longer do. Password (break-glass) admins
    /// keep their role.
    ///
    /// # Errors
    /// `Invalid` on `admin_group` when no group has that id, or when the
    /// admin saving it signs in with SSO and is not a member (they would
    /// make themselves a user).
    pub async fn set_settings(
        &self,
        admin: &Admin,
        settings: &ProvisioningSettings,
        context: &RequestContext,
    ) -> Result<ProvisioningSettings, ProvisioningError> {
        let before = self.ports.settings.provisioning_settings().await?;
        if before.admin_group != settings.admin_group {
            // Its members become admins (or stop being admins): as making
            // someone an admin.
            let now = self.ports.clock.now();
            admin.require_recent_factor(self.ports.mfa.as_ref(), now).await?;
        }
        let group = match settings.admin_group {
            Some(id) => Some(self.ports.groups.group(id).await?.ok_or_else(|| {
                FieldError::new(
                    "admin_group",
                    "no group has this id: push it from the identity provider first",
                )
            })?),
            None => None,
        };
        if let Some(group) = group.as_ref().filter(|_| before.admin_group != settings.admin_group)
            && admin.user().sign_in == SignInMethod::Sso
            && !group.members.contains(&admin.user().id)
        {
            return Err(FieldError::new(
                "admin_group",
                format!(
                    "you are not a member of {}: naming it would make you a user. Add yourself \
                     to it in your identity provider first",
                    group.name
                ),
            )
            .into());
        }
        let show = |id: Option<Uuid>| id.map_or_else(|| "none".to_owned(), |id| id.to_string());
        let now = self.ports.clock.now();
        let mut audit =
            AuditEvent::new(now, admin.actor(), AuditAction::ProvisioningSettingsChanged, context);
        if before.admin_group != settings.admin_group {
            audit = audit.change(Change::new(
                "admin_group",
                Some(&show(before.admin_group)),
                Some(&show(settings.admin_group)),
            ));
        }
        if before.send_access_email != settings.send_access_email {
            audit = audit.change(Change::new(
                "send_access_email",
                Some(&before.send_access_email.to_string()),
                Some(&settings.send_access_email.to_string()),
            ));
        }
        if let Some(group) = &group {
            audit = audit.change(Change::detail("admin_group_name", &group.name));
        }
        self.ports.settings.set_provisioning_settings(settings, audit).await?;
        if let Some(group) = group.filter(|_| before.admin_group != settings.admin_group) {
            self.promote_members(admin, &group, context).await?;
            self.demote_others(admin, &group, context).await?;
        }
        Ok(settings.clone())
    }

    /// Makes the SSO admins outside the admin group users, one at a time
    /// under the last-admin rule (the last active admin stays one).
    async fn demote_others(
        &self,
        admin: &Admin,
        group: &Group,
        context: &RequestContext,
    ) -> Result<(), ProvisioningError> {
        let mut after = None;
        loop {
            let query = UserQuery {
                filter: UserFilter { role: Some(Role::Admin), ..UserFilter::default() },
                sort: UserSort::Created,
                descending: false,
                limit: DEMOTION_PAGE,
                after,
            };
            let page = self.ports.users.list(&query, 0).await?;
            for user in page.items {
                if user.sign_in != SignInMethod::Sso || group.members.contains(&user.id) {
                    continue;
                }
                let update = ValidUpdate { role: Some(Role::User), ..ValidUpdate::default() };
                let now = self.ports.clock.now();
                let Some(mut change) = plan(&admin.actor(), user, &update, now, context) else {
                    continue;
                };
                for event in &mut change.audit {
                    event.changes.push(Change::detail("admin_group", "not a member"));
                }
                // The last admin stays one; a user changed meanwhile is
                // looked at again when their membership next changes.
                if let Err(crate::users::ports::ChangeUserError::Unexpected(e)) =
                    self.ports.users.apply_change(change).await
                {
                    return Err(e.into());
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// Makes the SSO members of the admin group admins.
    async fn promote_members(
        &self,
        admin: &Admin,
        group: &Group,
        context: &RequestContext,
    ) -> Result<(), ProvisioningError> {
        for member in &group.members {
            // A promotion leaves every admin in place: only a change made
            // meanwhile (Stale) can refuse it, and then the member is
            // looked at again on their next membership change.
            let Some(user) = self.ports.users.get(*member).await? else { continue };
            if user.sign_in != SignInMethod::Sso {
                continue;
            }
            let update = ValidUpdate { role: Some(Role::Admin), ..ValidUpdate::default() };
            let now = self.ports.clock.now();
            if let Some(change) = plan(&admin.actor(), user, &update, now, context) {
                // Changed meanwhile, or not theirs to take (a seat): their
                // next membership change sets the role.
                if let Err(crate::users::ports::ChangeUserError::Unexpected(e)) =
                    self.ports.users.apply_change(change).await
                {
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    /// The groups there are (at most [`MAX_LISTED_GROUPS`]), in creation
    /// order, for choosing the admin group.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn groups_for_admin(&self, _admin: &Admin) -> Result<Vec<Group>, crate::StoreError> {
        Ok(self.ports.groups.groups_by_position(0, MAX_LISTED_GROUPS).await?.0)
    }

    /// The groups by name (at most [`MAX_LISTED_GROUPS`]), for the users
    /// list's group filter.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn group_names(
        &self,
        _admin: &Admin,
    ) -> Result<Vec<GroupSummary>, crate::StoreError> {
        self.ports.groups.group_names(MAX_LISTED_GROUPS).await
    }

    /// The groups a user is a member of, for their profile.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn groups_of_user(
        &self,
        _admin: &Admin,
        user: UserId,
    ) -> Result<Vec<GroupSummary>, crate::StoreError> {
        self.ports.groups.groups_of(user).await
    }

    /// Keeps a SCIM request the server refused (an authenticated one: an
    /// unauthenticated client writes nothing), the newest
    /// [`KEPT_FAILURES`] only.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn record_failure(&self, failure: &RequestFailure) -> Result<(), crate::StoreError> {
        self.ports.provisioning.record_failure(failure, KEPT_FAILURES).await
    }

    /// The newest refused SCIM requests, newest first.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure.
    pub async fn recent_failures(
        &self,
        _admin: &Admin,
        limit: u32,
    ) -> Result<Vec<RequestFailure>, crate::StoreError> {
        self.ports.provisioning.recent_failures(limit.min(KEPT_FAILURES)).await
    }
}
