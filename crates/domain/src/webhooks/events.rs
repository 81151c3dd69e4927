//! Which audit events are pushed to webhook endpoints, and their bodies.
//!
//! Every change that matters to another system is audited in the
//! transaction that makes it; the store turns each such audit event into
//! one delivery per subscribed endpoint in that same transaction
//! ([`event_of`]). So every path — panel, API, SCIM, command line, single
//! sign-on — emits its event without a call of its own, and an event is
//! never sent for a change that did not commit.

use serde_json::{Map, Value, json};

use crate::audit::models::{Actor, AuditAction, AuditEvent};
use crate::identity::UserId;
use crate::webhooks::models::EventType;

/// An event ready for its deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    /// What happened.
    pub event_type: EventType,
    /// The message id every delivery of it carries (`webhook-id`), the
    /// same across retries and endpoints: `msg_` and the audit event's id.
    pub message_id: String,
    /// Whom it is about: deliveries about one user reach an endpoint in
    /// the order the changes were made.
    pub user_id: Option<UserId>,
    /// The JSON body: `type`, `timestamp`, `data`.
    pub body: String,
    /// Events with the same key are delivered once per endpoint: a pause
    /// of sign-in is one event however many attempts it refuses.
    pub dedupe_key: Option<String>,
}

/// The event an audit event pushes out, if any.
pub fn event_of(audit: &AuditEvent) -> Option<WebhookEvent> {
    let detail =
        |field: &str| audit.changes.iter().find(|c| c.field == field).and_then(|c| c.after.clone());
    let mut data = Map::new();
    let mut dedupe_key = None;
    let event_type = match audit.action {
        AuditAction::UserInvited => EventType::UserInvited,
        AuditAction::InvitationAccepted | AuditAction::UserProvisioned => EventType::UserActivated,
        AuditAction::UserDeactivated | AuditAction::InvitationWithdrawn => {
            EventType::UserDeactivated
        }
        AuditAction::UserReactivated => EventType::UserReactivated,
        AuditAction::RoleChanged => {
            let change = audit.changes.iter().find(|c| c.field == "role")?;
            data.insert("previous_role".into(), json!(change.before));
            data.insert("role".into(), json!(change.after));
            EventType::UserRoleChanged
        }
        AuditAction::SessionsTerminated => EventType::UserSessionsTerminated,
        AuditAction::UserErased => EventType::UserErased,
        AuditAction::PasswordResetCompleted => EventType::UserPasswordReset,
        AuditAction::SsoSettingsChanged => EventType::SsoSettingsChanged,
        AuditAction::UsersImported => {
            for field in ["import", "rows", "created", "skipped"] {
                if let Some(value) = detail(field) {
                    let value = value.parse::<u64>().map_or(json!(value), |n| json!(n));
                    let name = if field == "import" { "import_id" } else { field };
                    data.insert(name.into(), value);
                }
            }
            EventType::ImportCompleted
        }
        AuditAction::SignInThrottled => {
            let until = detail("until");
            data.insert("until".into(), json!(until));
            dedupe_key = Some(format!(
                "signin.throttled:{}:{}",
                audit.target_email.as_deref().unwrap_or(""),
                until.as_deref().unwrap_or("")
            ));
            EventType::SigninThrottled
        }
        _ => return None,
    };
    if let Some(id) = audit.target_id {
        data.insert("user_id".into(), json!(id.to_string()));
    }
    // An erased user's email is what the erasure removed.
    if event_type != EventType::UserErased
        && let Some(email) = &audit.target_email
    {
        data.insert("email".into(), json!(email));
    }
    data.insert("actor".into(), actor_of(&audit.actor));
    let body = json!({
        "type": event_type.as_str(),
        "timestamp": audit.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": Value::Object(data),
    });
    Some(WebhookEvent {
        event_type,
        message_id: format!("msg_{}", audit.id.simple()),
        user_id: audit.target_id,
        body: body.to_string(),
        dedupe_key,
    })
}

/// Who acted: a kind, and the user's id or the token's id (never a name
/// or an email: a receiver that needs them asks the API).
fn actor_of(actor: &Actor) -> Value {
    match actor {
        Actor::User { id, .. } => json!({"kind": "user", "user_id": id.to_string()}),
        Actor::UserToken { id, token_id, .. } => json!({
            "kind": "user", "user_id": id.to_string(), "api_token_id": token_id.to_string()
        }),
        Actor::Service { token_id, .. } => {
            json!({"kind": "service", "service_token_id": token_id.to_string()})
        }
        Actor::Operator => json!({"kind": "operator"}),
        Actor::Anonymous => json!({"kind": "anonymous"}),
    }
}

/// The body of a test delivery ("Send test event").
pub fn test_body(now: chrono::DateTime<chrono::Utc>, endpoint: uuid::Uuid) -> String {
    json!({
        "type": "webhook.test",
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": {"endpoint_id": endpoint.to_string()},
    })
    .to_string()
}
