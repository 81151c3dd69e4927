//! A change to one user worked out from what was asked: the new user, the
//! audit events, and what must go with it (sessions ended, links voided,
//! the rules the store re-checks). Used by the admin's use cases and the
//! identity provider's alike.

use chrono::{DateTime, Utc};

use crate::audit::models::{Actor, AuditAction, AuditEvent, Change, RequestContext};
use crate::users::models::{
    Department, DisplayName, EmailAddress, Role, SignInMethod, User, UserState, UserStatus,
};
use crate::users::ports::UserChange;

/// A checked change. The provisioning subdomain builds one from what the
/// identity provider sent, with the address it owns.
#[derive(Debug, Clone, Default)]
pub(crate) struct ValidUpdate {
    pub(crate) role: Option<Role>,
    pub(crate) active: Option<bool>,
    pub(crate) name: Option<DisplayName>,
    pub(crate) department: Option<Option<Department>>,
    pub(crate) to_sso: bool,
    /// A new address: only the identity provider changes an address this
    /// way (an admin corrects an invited user's through a new invitation).
    pub(crate) email: Option<EmailAddress>,
}

/// Works out the new user and everything that goes with the change, or
/// `None` if nothing changes.
pub(crate) fn plan(
    actor: &Actor,
    before: User,
    update: &ValidUpdate,
    now: DateTime<Utc>,
    context: &RequestContext,
) -> Option<UserChange> {
    let event = |action| AuditEvent::new(now, actor.clone(), action, context).target(&before);
    let mut after = before.clone();
    let mut audit = Vec::new();
    let mut change = UserChange {
        before: before.clone(),
        after: before.clone(),
        audit: Vec::new(),
        end_sessions: false,
        revoke_links: false,
        keep_an_admin: false,
        takes_seat: None,
    };

    if let Some(role) = update.role.filter(|r| *r != before.role) {
        after.role = role;
        audit.push(event(AuditAction::RoleChanged).change(Change::new(
            "role",
            Some(before.role.as_str()),
            Some(role.as_str()),
        )));
    }

    if let Some(email) = update.email.as_ref().filter(|e| e.as_str() != before.email.as_str()) {
        after.email = email.clone();
        // A password reset or invitation link went to the old address:
        // void it (an SSO user's access-ready email carries no link).
        if before.sign_in == SignInMethod::Password {
            change.revoke_links = true;
        }
        audit.push(event(AuditAction::EmailChanged).change(Change::new(
            "email",
            Some(before.email.as_str()),
            Some(email.as_str()),
        )));
    }

    let mut profile = Vec::new();
    if let Some(name) = update.name.as_ref().filter(|n| **n != before.name) {
        profile.push(Change::new("name", Some(before.name.as_ref()), Some(name.as_ref())));
        after.name = name.clone();
    }
    if let Some(department) = update.department.as_ref().filter(|d| **d != before.department) {
        profile.push(Change::new(
            "department",
            before.department.as_ref().map(AsRef::as_ref),
            department.as_ref().map(AsRef::as_ref),
        ));
        after.department = department.clone();
    }
    if !profile.is_empty() {
        let mut event = event(AuditAction::ProfileChanged);
        event.changes = profile;
        audit.push(event);
    }

    if update.to_sso && before.sign_in == SignInMethod::Password {
        after.sign_in = SignInMethod::Sso;
        change.end_sessions = true;
        audit.push(event(AuditAction::SignInMethodChanged).change(Change::new(
            "sign_in",
            Some("password"),
            Some("sso"),
        )));
    }

    match (update.active, before.status()) {
        (Some(false), UserStatus::Invited | UserStatus::Active) => {
            after.state = UserState::Deactivated {
                activated_at: before.state.activated_at(),
                deactivated_at: now,
            };
            change.end_sessions = true;
            change.revoke_links = true;
            audit.push(event(AuditAction::UserDeactivated).change(Change::new(
                "status",
                Some(before.status().as_str()),
                Some("deactivated"),
            )));
        }
        (Some(true), UserStatus::Deactivated) => {
            // Someone who never activated goes back to "invited"; the admin
            // re-sends their invitation.
            after.state = match before.state.activated_at() {
                Some(activated_at) => UserState::Active { activated_at },
                None => UserState::Invited,
            };
            change.takes_seat = Some(None);
            audit.push(event(AuditAction::UserReactivated).change(Change::new(
                "status",
                Some("deactivated"),
                Some(after.status().as_str()),
            )));
        }
        _ => {}
    }

    if audit.is_empty() {
        return None;
    }
    change.keep_an_admin = before.is_active_admin() && !after.is_active_admin();
    change.audit = audit;
    change.after = after;
    Some(change)
}
