//! Conversions between rows and domain types, at the edge of the store.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, DbErr};
use secureai_domain::audit::models::{Actor, AuditEvent};
use secureai_domain::invitations::models::{Invitation, InvitationId, InvitationState};
use secureai_domain::resets::models::PasswordReset;
use secureai_domain::sessions::models::{Session, SessionId};
use secureai_domain::{
    Department, DisplayName, EmailAddress, Role, SignInMethod, StoreError, TokenHash, User, UserId,
    UserState,
};

use crate::entities::{audit_events, invitations, password_resets, sessions, users};

/// Statuses and the admin role as stored: the domain's own names.
pub(crate) const INVITED: &str = secureai_domain::UserStatus::Invited.as_str();
pub(crate) const ACTIVE: &str = secureai_domain::UserStatus::Active.as_str();
pub(crate) const DEACTIVATED: &str = secureai_domain::UserStatus::Deactivated.as_str();
pub(crate) const ADMIN: &str = Role::Admin.as_str();

/// Microseconds since the Unix epoch: the portable form of an instant.
pub(crate) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub(crate) fn instant(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .ok_or_else(|| StoreError::msg(format!("stored instant {micros} is out of range")))
}

pub(crate) fn opt_instant(micros: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    micros.map(instant).transpose()
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::msg(format!("stored {what} `{value}` is not valid"))
}

/// A database error as a [`StoreError`]; one a later run may cure (a
/// deadlock, a lock wait, SQLite busy: [`crate::is_retryable`]) is marked
/// busy, so that the request is answered 503 with `Retry-After` once the
/// store's own retries are spent, instead of 500.
pub(crate) fn db(context: &'static str) -> impl FnOnce(DbErr) -> StoreError {
    move |e| {
        let busy = crate::is_retryable(&e);
        contended(StoreError::new(context, e), busy)
    }
}

/// `error`, marked busy when the database refused for contention.
pub(crate) fn contended(error: StoreError, busy: bool) -> StoreError {
    if busy { error.with_retry_after(BUSY_RETRY_AFTER_SECS) } else { error }
}

/// Seconds a request refused for the database's contention is told to wait.
pub(crate) const BUSY_RETRY_AFTER_SECS: u64 = 1;

pub(crate) fn user_id(text: &str) -> Result<UserId, StoreError> {
    text.parse().map_err(|_| corrupt("user id", text))
}

fn uuid(text: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::parse_str(text).map_err(|_| corrupt("id", text))
}

pub(crate) fn token_hash(text: &str) -> Result<TokenHash, StoreError> {
    TokenHash::from_hex(text).ok_or_else(|| corrupt("token hash", text))
}

pub(crate) fn user_from_row(row: &users::Model) -> Result<User, StoreError> {
    let activated_at = opt_instant(row.activated_at)?;
    let state = match row.status.as_str() {
        INVITED => UserState::Invited,
        ACTIVE => UserState::Active {
            activated_at: activated_at.ok_or_else(|| corrupt("activation time", "null"))?,
        },
        DEACTIVATED => UserState::Deactivated {
            activated_at,
            deactivated_at: opt_instant(row.deactivated_at)?
                .ok_or_else(|| corrupt("deactivation time", "null"))?,
        },
        other => return Err(corrupt("status", other)),
    };
    Ok(User {
        id: user_id(&row.id)?,
        email: EmailAddress::from_stored(row.email.clone()),
        name: DisplayName::parse(&row.name).map_err(|_| corrupt("name", &row.name))?,
        role: Role::parse(&row.role).map_err(|_| corrupt("role", &row.role))?,
        state,
        sign_in: match row.sign_in.as_str() {
            "password" => SignInMethod::Password,
            "sso" => SignInMethod::Sso,
            other => return Err(corrupt("sign-in method", other)),
        },
        department: match &row.department {
            Some(d) => Department::parse(d).map_err(|_| corrupt("department", d))?,
            None => None,
        },
        created_at: instant(row.created_at)?,
        last_login_at: opt_instant(Some(row.last_login_at).filter(|at| *at != 0))?,
    })
}

pub(crate) fn user_to_row(user: &User, password_hash: Option<String>) -> users::ActiveModel {
    users::ActiveModel {
        id: Set(user.id.to_string()),
        email: Set(user.email.as_str().to_owned()),
        email_key: Set(user.email.key().to_owned()),
        name: Set(user.name.to_string()),
        name_key: Set(user.name.sort_key()),
        role: Set(user.role.as_str().to_owned()),
        status: Set(user.status().as_str().to_owned()),
        sign_in: Set(user.sign_in.as_str().to_owned()),
        department: Set(user.department.as_ref().map(ToString::to_string)),
        password_hash: Set(password_hash),
        created_at: Set(micros(user.created_at)),
        activated_at: Set(user.state.activated_at().map(micros)),
        deactivated_at: Set(user.state.deactivated_at().map(micros)),
        last_login_at: Set(user.last_login_at.map_or(0, micros)),
        search_text: Set(crate::directory::search_text(&user.email, &user.name)),
        modified_at: Set(micros(last_change(user))),
    }
}

/// The latest time a new row's user is known to have changed.
pub(crate) fn last_change(user: &User) -> chrono::DateTime<chrono::Utc> {
    [Some(user.created_at), user.state.activated_at(), user.state.deactivated_at()]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(user.created_at)
}

/// A one-time link's state from its two columns.
fn link_state(state: &str, at: Option<i64>) -> Result<InvitationState, StoreError> {
    let at = || at.map(instant).transpose()?.ok_or_else(|| corrupt("link state time", "null"));
    Ok(match state {
        "pending" => InvitationState::Pending,
        "accepted" => InvitationState::Accepted { at: at()? },
        "revoked" => InvitationState::Revoked { at: at()? },
        other => return Err(corrupt("link state", other)),
    })
}

/// A one-time link's state as its two columns.
fn link_state_columns(state: InvitationState) -> (&'static str, Option<i64>) {
    match state {
        InvitationState::Pending => ("pending", None),
        InvitationState::Accepted { at } => ("accepted", Some(micros(at))),
        InvitationState::Revoked { at } => ("revoked", Some(micros(at))),
    }
}

pub(crate) fn invitation_from_row(row: &invitations::Model) -> Result<Invitation, StoreError> {
    Ok(Invitation {
        id: InvitationId::from_uuid(uuid(&row.id)?),
        user_id: user_id(&row.user_id)?,
        token_hash: token_hash(&row.token_hash)?,
        created_at: instant(row.created_at)?,
        expires_at: instant(row.expires_at)?,
        state: link_state(&row.state, row.state_at)?,
    })
}

pub(crate) fn reset_from_row(row: &password_resets::Model) -> Result<PasswordReset, StoreError> {
    Ok(PasswordReset {
        id: uuid(&row.id)?,
        user_id: user_id(&row.user_id)?,
        token_hash: token_hash(&row.token_hash)?,
        created_at: instant(row.created_at)?,
        expires_at: instant(row.expires_at)?,
        state: link_state(&row.state, row.state_at)?,
    })
}

pub(crate) fn reset_to_row(reset: &PasswordReset) -> password_resets::ActiveModel {
    let (state, at) = link_state_columns(reset.state);
    password_resets::ActiveModel {
        id: Set(reset.id.to_string()),
        user_id: Set(reset.user_id.to_string()),
        token_hash: Set(reset.token_hash.to_hex()),
        created_at: Set(micros(reset.created_at)),
        expires_at: Set(micros(reset.expires_at)),
        state: Set(state.to_owned()),
        state_at: Set(at),
    }
}

pub(crate) fn invitation_to_row(invitation: &Invitation) -> invitations::ActiveModel {
    let (state, at) = link_state_columns(invitation.state);
    invitations::ActiveModel {
        id: Set(invitation.id.as_uuid().to_string()),
        user_id: Set(invitation.user_id.to_string()),
        token_hash: Set(invitation.token_hash.to_hex()),
        created_at: Set(micros(invitation.created_at)),
        expires_at: Set(micros(invitation.expires_at)),
        state: Set(state.to_owned()),
        state_at: Set(at),
    }
}

pub(crate) fn session_from_row(row: &sessions::Model) -> Result<Session, StoreError> {
    Ok(Session {
        id: SessionId::from_uuid(uuid(&row.id)?),
        user_id: user_id(&row.user_id)?,
        token_hash: token_hash(&row.token_hash)?,
        created_at: instant(row.created_at)?,
        last_seen_at: instant(row.last_seen_at)?,
        expires_at: instant(row.expires_at)?,
        enrolment_only: row.enrolment_only,
        second_factor_at: row.second_factor_at.map(instant).transpose()?,
    })
}

pub(crate) fn session_to_row(session: &Session) -> sessions::ActiveModel {
    sessions::ActiveModel {
        id: Set(session.id.as_uuid().to_string()),
        user_id: Set(session.user_id.to_string()),
        token_hash: Set(session.token_hash.to_hex()),
        created_at: Set(micros(session.created_at)),
        last_seen_at: Set(micros(session.last_seen_at)),
        expires_at: Set(micros(session.expires_at)),
        enrolment_only: Set(session.enrolment_only),
        second_factor_at: Set(session.second_factor_at.map(micros)),
    }
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

pub(crate) fn audit_to_row(event: &AuditEvent) -> audit_events::ActiveModel {
    let (actor_id, actor_email) = match &event.actor {
        Actor::User { id, email } | Actor::UserToken { id, email, .. } => {
            (Some(id.to_string()), Some(email.to_string()))
        }
        Actor::Operator | Actor::Anonymous | Actor::Service { .. } => (None, None),
    };
    let (actor_token_id, actor_token_name) = match &event.actor {
        Actor::Service { token_id, name } | Actor::UserToken { token_id, name, .. } => {
            (Some(token_id.to_string()), Some(truncate(name, 200)))
        }
        _ => (None, None),
    };
    let changes: Vec<serde_json::Value> = event
        .changes
        .iter()
        .map(|c| serde_json::json!({ "field": c.field, "before": c.before, "after": c.after }))
        .collect();
    audit_events::ActiveModel {
        id: Set(event.id.to_string()),
        at: Set(micros(event.at)),
        actor_kind: Set(event.actor.kind().to_owned()),
        actor_id: Set(actor_id),
        actor_token_id: Set(actor_token_id),
        actor_token_name: Set(actor_token_name),
        actor_email: Set(actor_email),
        action: Set(event.action.as_str().to_owned()),
        target_id: Set(event.target_id.map(|id| id.to_string())),
        target_email: Set(event.target_email.as_deref().map(|e| truncate(e, 254))),
        changes: Set(serde_json::Value::Array(changes).to_string()),
        ip: Set(event.context.ip.as_deref().map(|ip| truncate(ip, 64))),
        user_agent: Set(event.context.user_agent.as_deref().map(|ua| truncate(ua, 512))),
    }
}
