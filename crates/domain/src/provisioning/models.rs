//! What an identity provider says about a user, and the link between a
//! provisioned user and the identity provider's record.

use chrono::{DateTime, Utc};

use crate::users::models::User;

/// Longest `externalId` kept, in characters.
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;

/// A user's link to the identity provider's record: its `externalId`, and
/// when a SCIM `DELETE` detached it (the user stays, deactivated; their
/// SCIM id answers 404 from then on).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScimIdentity {
    /// The identity provider's id for the user (case-exact).
    pub external_id: Option<String>,
    /// The `userName` it sent, when that is not the address itself (an
    /// account name): unique in any letter case, and what lookups by
    /// `userName` find.
    pub user_name: Option<String>,
    /// When the identity provider deleted the user.
    pub detached_at: Option<DateTime<Utc>>,
}

/// A user as the identity provider sees them: the user and their
/// `externalId`. A detached user is never one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedUser {
    /// The user.
    pub user: User,
    /// When the user last changed as the identity provider sees them
    /// (`meta.lastModified`): created, or any change of address, name,
    /// department, role, status or identity since. A sign-in is none.
    pub modified_at: DateTime<Utc>,
    /// The identity provider's id for them, if it sent one.
    pub external_id: Option<String>,
    /// Their `userName` when it is not their address.
    pub user_name: Option<String>,
}

impl ProvisionedUser {
    /// The `userName` shown: the one sent, else the address.
    pub fn user_name(&self) -> &str {
        self.user_name.as_deref().unwrap_or(self.user.email.as_str())
    }
}

/// What the identity provider sent about a user, already read from the
/// protocol: a field left `None` stays as it is (or takes its default on
/// creation). Checked by the provisioning service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// The work email address (`userName` when it is one, else the
    /// primary or work email).
    pub email: Option<String>,
    /// `userName` when it is not an address (an account name);
    /// `Some(None)` when `userName` is the address (no account name).
    pub user_name: Option<Option<String>>,
    /// The name (`name.formatted`, `displayName`, or given + family name).
    pub name: Option<String>,
    /// The department; `Some(None)` clears it.
    pub department: Option<Option<String>>,
    /// `false` deactivates, `true` (re)activates.
    pub active: Option<bool>,
    /// Whether the user is an admin (`roles`).
    pub admin: Option<bool>,
    /// The identity provider's id; `Some(None)` clears it.
    pub external_id: Option<Option<String>>,
}

/// Longest group name, in characters.
pub const MAX_GROUP_NAME_CHARS: usize = 255;

/// Most members one group may hold.
pub const MAX_GROUP_MEMBERS: usize = 100_000;

/// A group the identity provider pushes (SCIM `Group`): a name unique in
/// any letter case, and its members. Deleting a group never touches them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Unique id.
    pub id: uuid::Uuid,
    /// The name (`displayName`).
    pub name: String,
    /// The identity provider's id for it.
    pub external_id: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its name or members last changed.
    pub updated_at: DateTime<Utc>,
    /// Its members, in no particular order.
    pub members: Vec<crate::users::models::UserId>,
}

/// A group as a user's profile lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// Its id.
    pub id: uuid::Uuid,
    /// Its name.
    pub name: String,
}

/// A change to a group's members, as one PATCH or PUT asks for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberChange {
    /// Members to add (already members: no change).
    pub add: Vec<crate::users::models::UserId>,
    /// Members to remove (not members: no change).
    pub remove: Vec<crate::users::models::UserId>,
    /// The whole new member list, applied before `add` and `remove`.
    pub replace: Option<Vec<crate::users::models::UserId>>,
}

/// What the identity provider sent about a group: a field left `None`
/// stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupAttributes {
    /// The name.
    pub name: Option<String>,
    /// The identity provider's id; `Some(None)` clears it.
    pub external_id: Option<Option<String>>,
    /// The members to add, remove or set.
    pub members: MemberChange,
}

/// Settings › Provisioning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisioningSettings {
    /// The group whose members are admins (SSO users; a password
    /// break-glass admin keeps their role), and everyone else a user;
    /// SCIM `roles` are then ignored. `None`: roles come from `roles` or
    /// the panel.
    pub admin_group: Option<uuid::Uuid>,
    /// Whether users created over SCIM get the access-ready email.
    pub send_access_email: bool,
}

impl Default for ProvisioningSettings {
    fn default() -> Self {
        Self { admin_group: None, send_access_email: true }
    }
}

/// A SCIM request the server refused, for Settings › Provisioning: what
/// was asked (never the query string or body, which may carry personal
/// data) and the answer's detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFailure {
    /// When.
    pub at: DateTime<Utc>,
    /// The HTTP method.
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// The answer's detail, in words.
    pub detail: String,
    /// The name of the token that made it.
    pub token: String,
}

/// How many refused requests are kept (the newest).
pub const KEPT_FAILURES: u32 = 100;
