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
            if let Some(step) = detail("step") {
                data.insert("step".into(), json!(step));
            }
            // One event per pause: of an account (a user's id), else of
            // the client address — never per typed email, which anyone
            // can vary at will. A digest keeps the key short.
            dedupe_key = until.as_ref().map(|until| {
                let who = match audit.target_id {
                    Some(id) => format!("user {id}"),
                    None => format!("address {}", audit.context.ip.as_deref().unwrap_or("")),
                };
                let key = format!("signin.throttled\n{who}\n{until}");
                let digest = <sha2::Sha256 as sha2::Digest>::digest(key.as_bytes());
                digest.iter().map(|b| format!("{b:02x}")).collect()
            });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::models::{Change, RequestContext};

    fn audit(action: AuditAction) -> AuditEvent {
        let mut event = AuditEvent::new(
            chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default(),
            Actor::Operator,
            action,
            &RequestContext::default(),
        );
        event.target_id = Some(UserId::from_uuid(uuid::Uuid::from_u128(9)));
        event.target_email = Some(format!("{}@example.com", "a".repeat(240)));
        event
    }

    #[test]
    fn bodies_are_thin_and_keys_are_bounded() {
        let erased = event_of(&audit(AuditAction::UserErased)).unwrap();
        let body: Value = serde_json::from_str(&erased.body).unwrap();
        assert_eq!(body["type"], "user.erased");
        assert!(body["data"].get("email").is_none(), "the erased address never goes out");
        assert_eq!(body["data"]["actor"]["kind"], "operator");

        let paused = audit(AuditAction::SignInThrottled)
            .change(Change::detail("until", "2026-12-04T10:00:00+00:00"));
        let first = event_of(&paused).unwrap();
        let key = first.dedupe_key.clone().unwrap();
        assert_eq!(key.len(), 64, "a digest");
        let mut sprayed = paused.clone();
        sprayed.target_id = None;
        sprayed.target_email = Some("other@example.com".to_owned());
        let mut again = sprayed.clone();
        again.target_email = Some("another@example.com".to_owned());
        assert_eq!(
            event_of(&sprayed).unwrap().dedupe_key,
            event_of(&again).unwrap().dedupe_key,
            "an address's pause is one event whatever emails were typed"
        );
        let mut later = paused.clone();
        later.changes = vec![Change::detail("until", "2026-12-04T11:00:00+00:00")];
        assert_ne!(event_of(&later).unwrap().dedupe_key.unwrap(), key, "another pause");
        assert!(event_of(&audit(AuditAction::ProfileChanged)).is_none());
        assert_eq!(first.message_id, format!("msg_{}", paused.id.simple()));
    }
}
