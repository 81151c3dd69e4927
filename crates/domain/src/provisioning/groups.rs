//! Groups the identity provider pushes (SCIM `Group`): created, renamed,
//! their members added, removed or replaced in one transaction per
//! request, deleted — never their members. Members of the admin group
//! named in Settings › Provisioning are admins: joining it makes an SSO
//! user an admin, leaving it (or its deletion) makes them a user, under
//! the last-admin rule. A password (break-glass) admin keeps their role.

use std::collections::HashSet;

use uuid::Uuid;

use crate::access::ServiceCaller;
use crate::audit::models::{AuditAction, AuditEvent, Change, RequestContext};
use crate::errors::FieldError;
use crate::provisioning::models::{
    Group, GroupAttributes, GroupSummary, MAX_GROUP_MEMBERS, MAX_GROUP_NAME_CHARS, MemberChange,
};
use crate::provisioning::ports::{GroupWrite, GroupWriteError};
use crate::provisioning::service::{ProvisioningError, ProvisioningService};
use crate::users::changes::{ValidUpdate, plan};
use crate::users::models::{Role, SignInMethod, UserId};
use crate::users::ports::UserChange;

/// A page of groups by position, and how many there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupsByPosition {
    /// The groups, in creation order.
    pub groups: Vec<Group>,
    /// Every group there is.
    pub total: u64,
}

/// How many times a group change is retried when a member changed
/// meanwhile.
const ATTEMPTS: usize = 5;

fn group_name(raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(FieldError::new("displayName", "is required"));
    }
    if name.chars().count() > MAX_GROUP_NAME_CHARS {
        return Err(FieldError::new(
            "displayName",
            format!("has at most {MAX_GROUP_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new("displayName", "must not hold control characters"));
    }
    Ok(name.to_owned())
}

impl From<GroupWriteError> for ProvisioningError {
    fn from(error: GroupWriteError) -> Self {
        match error {
            GroupWriteError::NameTaken => Self::GroupNameTaken,
            GroupWriteError::NotFound => Self::GroupNotFound,
            GroupWriteError::UnknownMember => Self::Invalid(FieldError::new(
                "members",
                "a member is no user: the identity provider pushes users before their groups",
            )),
            GroupWriteError::LastAdmin => Self::LastAdmin,
            GroupWriteError::Stale => {
                Self::Unexpected(crate::StoreError::msg("members kept changing meanwhile"))
            }
            GroupWriteError::Unexpected(e) => Self::Unexpected(e),
        }
    }
}

impl ProvisioningService {
    /// One group with its members.
    ///
    /// # Errors
    /// See [`ProvisioningError`].
    pub async fn group(
        &self,
        caller: &ServiceCaller,
        id: Uuid,
    ) -> Result<Group, ProvisioningError> {
        Self::check(caller)?;
        self.ports.groups.group(id).await?.ok_or(ProvisioningError::GroupNotFound)
    }

    /// The group with this name, in any letter case.
    ///
    /// # Errors
    /// See [`ProvisioningError`].
    pub async fn group_by_name(
        &self,
        caller: &ServiceCaller,
        name: &str,
    ) -> Result<Option<Group>, ProvisioningError> {
        Self::check(caller)?;
        Ok(self.ports.groups.group_by_name(name).await?)
    }

    /// Up to `count` groups from position `offset`, in creation order.
    ///
    /// # Errors
    /// See [`ProvisioningError`].
    pub async fn groups_by_position(
        &self,
        caller: &ServiceCaller,
        offset: u64,
        count: u32,
    ) -> Result<GroupsByPosition, ProvisioningError> {
        Self::check(caller)?;
        let count = count.min(self.policy.max_page_size);
        let (groups, total) = self.ports.groups.groups_by_position(offset, count).await?;
        Ok(GroupsByPosition { groups, total })
    }

    /// The groups a user is a member of.
    ///
    /// # Errors
    /// See [`ProvisioningError`].
    pub async fn groups_of(
        &self,
        caller: &ServiceCaller,
        user: UserId,
    ) -> Result<Vec<GroupSummary>, ProvisioningError> {
        Self::check(caller)?;
        Ok(self.ports.groups.groups_of(user).await?)
    }

    /// Creates a group with its members.
    ///
    /// # Errors
    /// See [`ProvisioningError`]; a member that is no user is `Invalid`.
    pub async fn create_group(
        &self,
        caller: &ServiceCaller,
        attributes: &GroupAttributes,
        context: &RequestContext,
    ) -> Result<Group, ProvisioningError> {
        Self::check(caller)?;
        let name = group_name(attributes.name.as_deref().unwrap_or_default())?;
        let external_id = external_id(attributes)?.flatten();
        let members = &attributes.members;
        let mut wanted: Vec<UserId> = members.replace.clone().unwrap_or_default();
        wanted.extend(members.add.iter().copied());
        let remove: HashSet<UserId> = members.remove.iter().copied().collect();
        let wanted: Vec<UserId> = dedup(wanted.into_iter().filter(|m| !remove.contains(m)));
        Self::check_members(&wanted)?;
        let now = self.ports.clock.now();
        let group = Group {
            id: crate::record_id(),
            name,
            external_id,
            created_at: now,
            updated_at: now,
            members: wanted.clone(),
        };
        let audit = AuditEvent::new(now, caller.actor(), AuditAction::GroupCreated, context)
            .change(Change::new("name", None, Some(&group.name)))
            .change(Change::detail("members", &wanted.len().to_string()));
        let write = GroupWrite {
            group: group.clone(),
            members: MemberChange { replace: Some(wanted), ..MemberChange::default() },
            role_changes: Vec::new(),
            audit: vec![audit],
            expected_members: None,
        };
        self.ports.groups.create_group(write).await?;
        Ok(group)
    }

    /// Renames a group, changes its `externalId` and its members (replace,
    /// then add, then remove), in one transaction with the role changes of
    /// the admin group's members.
    ///
    /// # Errors
    /// See [`ProvisioningError`].
    pub async fn change_group(
        &self,
        caller: &ServiceCaller,
        id: Uuid,
        attributes: &GroupAttributes,
        context: &RequestContext,
    ) -> Result<Group, ProvisioningError> {
        Self::check(caller)?;
        let name = attributes.name.as_deref().map(group_name).transpose()?;
        let external_id = external_id(attributes)?;
        let members = &attributes.members;
        let mut joining: Vec<UserId> = members.add.clone();
        joining.extend(members.replace.iter().flatten().copied());
        Self::check_members(&dedup(joining.into_iter()))?;
        for _ in 0..ATTEMPTS {
            let before =
                self.ports.groups.group(id).await?.ok_or(ProvisioningError::GroupNotFound)?;
            let after_members = apply(&before.members, members);
            let now = self.ports.clock.now();
            let mut group = before.clone();
            if let Some(name) = &name {
                group.name.clone_from(name);
            }
            if let Some(external_id) = &external_id {
                group.external_id.clone_from(external_id);
            }
            group.updated_at = now;
            group.members = after_members.clone();
            let added = difference(&after_members, &before.members);
            let removed = difference(&before.members, &after_members);
            let mut audit =
                AuditEvent::new(now, caller.actor(), AuditAction::GroupChanged, context);
            if group.name != before.name {
                audit = audit.change(Change::new("name", Some(&before.name), Some(&group.name)));
            }
            audit = audit
                .change(Change::detail("group", &group.name))
                .change(Change::detail("members_added", &added.len().to_string()))
                .change(Change::detail("members_removed", &removed.len().to_string()));
            let (admin_group, role_changes) =
                self.admin_group_roles(caller, id, &added, &removed, context).await?;
            let write = GroupWrite {
                group: group.clone(),
                members: members.clone(),
                role_changes,
                audit: vec![audit],
                expected_members: admin_group.then(|| before.members.clone()),
            };
            match self.ports.groups.change_group(write).await {
                Ok(()) => return Ok(group),
                Err(GroupWriteError::Stale) => continue,
                Err(GroupWriteError::LastAdmin) => {
                    let refused = Err(ProvisioningError::LastAdmin);
                    self.audit_refusal::<()>(caller, None, &refused, context).await?;
                    return Err(ProvisioningError::LastAdmin);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(crate::StoreError::msg("the group's members kept changing meanwhile").into())
    }

    /// Deletes a group: its memberships go, its members stay (those of the
    /// admin group become users, the last admin kept).
    ///
    /// # Errors
    /// See [`ProvisioningError`].
    pub async fn delete_group(
        &self,
        caller: &ServiceCaller,
        id: Uuid,
        context: &RequestContext,
    ) -> Result<(), ProvisioningError> {
        Self::check(caller)?;
        for _ in 0..ATTEMPTS {
            let group =
                self.ports.groups.group(id).await?.ok_or(ProvisioningError::GroupNotFound)?;
            let now = self.ports.clock.now();
            let audit = AuditEvent::new(now, caller.actor(), AuditAction::GroupDeleted, context)
                .change(Change::new("name", Some(&group.name), None))
                .change(Change::detail("members", &group.members.len().to_string()));
            let (admin_group, role_changes) =
                self.admin_group_roles(caller, id, &[], &group.members, context).await?;
            let expected = admin_group.then(|| group.members.clone());
            match self.ports.groups.delete_group(id, expected, role_changes, audit).await {
                Ok(()) => return Ok(()),
                Err(GroupWriteError::Stale) => continue,
                Err(GroupWriteError::LastAdmin) => {
                    let refused = Err(ProvisioningError::LastAdmin);
                    self.audit_refusal::<()>(caller, None, &refused, context).await?;
                    return Err(ProvisioningError::LastAdmin);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(crate::StoreError::msg("the group's members kept changing meanwhile").into())
    }

    /// At most [`MAX_GROUP_MEMBERS`] per request; the store checks, in
    /// batches, that each is a user.
    fn check_members(members: &[UserId]) -> Result<(), ProvisioningError> {
        if members.len() > MAX_GROUP_MEMBERS {
            return Err(FieldError::new(
                "members",
                format!("a group has at most {MAX_GROUP_MEMBERS} members"),
            )
            .into());
        }
        Ok(())
    }

    /// Whether the group is the admin group, and the role changes of SSO
    /// users joining or leaving it.
    async fn admin_group_roles(
        &self,
        caller: &ServiceCaller,
        group: Uuid,
        joined: &[UserId],
        left: &[UserId],
        context: &RequestContext,
    ) -> Result<(bool, Vec<UserChange>), ProvisioningError> {
        let settings = self.ports.settings.provisioning_settings().await?;
        if settings.admin_group != Some(group) {
            return Ok((false, Vec::new()));
        }
        let now = self.ports.clock.now();
        let mut changes = Vec::new();
        for (members, role) in [(joined, Role::Admin), (left, Role::User)] {
            for member in members {
                let Some(user) = self.ports.users.get(*member).await? else { continue };
                if user.sign_in != SignInMethod::Sso {
                    continue;
                }
                let update = ValidUpdate { role: Some(role), ..ValidUpdate::default() };
                if let Some(mut change) = plan(&caller.actor(), user, &update, now, context) {
                    for event in &mut change.audit {
                        event.changes.push(Change::detail("admin_group", "membership"));
                    }
                    changes.push(change);
                }
            }
        }
        Ok((true, changes))
    }
}

fn external_id(attributes: &GroupAttributes) -> Result<Option<Option<String>>, FieldError> {
    match &attributes.external_id {
        Some(Some(id)) if id.chars().count() > super::models::MAX_EXTERNAL_ID_CHARS => {
            Err(FieldError::new("externalId", "has at most 255 characters"))
        }
        Some(Some(id)) if id.is_empty() => Ok(Some(None)),
        other => Ok(other.clone()),
    }
}

fn dedup(members: impl Iterator<Item = UserId>) -> Vec<UserId> {
    let mut seen = HashSet::new();
    members.filter(|m| seen.insert(*m)).collect()
}

/// The members after a change: replace, then add, then remove.
fn apply(current: &[UserId], change: &MemberChange) -> Vec<UserId> {
    let mut members: Vec<UserId> = change.replace.clone().unwrap_or_else(|| current.to_vec());
    members.extend(change.add.iter().copied());
    let remove: HashSet<UserId> = change.remove.iter().copied().collect();
    dedup(members.into_iter().filter(|m| !remove.contains(m)))
}

fn difference(a: &[UserId], b: &[UserId]) -> Vec<UserId> {
    let b: HashSet<UserId> = b.iter().copied().collect();
    a.iter().copied().filter(|m| !b.contains(m)).collect()
}
