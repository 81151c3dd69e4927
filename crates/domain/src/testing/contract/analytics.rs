//! [`ServiceTokenRepository`](crate::analytics::ports::ServiceTokenRepository)
//! and [`UsageRepository`](crate::analytics::ports::UsageRepository).

use chrono::Duration;

use super::fixtures::{active, audit_of, event, join_all, now};
use crate::analytics::models::{DayRange, Period, RecordedUsage, ServiceToken, Usage, UsageEvent};
use crate::audit::models::AuditAction;
use crate::service::Ports;
use crate::users::models::{Role, User, UserId};

/// Tokens are found by the digest of their secret and listed newest first;
/// revoking makes a token inactive, revoking it again returns it unchanged
/// and writes nothing, and an unknown id answers `None`.
pub async fn a_service_token_is_revoked_once(ports: Ports) {
    let at = now(&ports);
    let root = active(&ports, "root@example.com", Role::Admin).await;
    let token = |name: &str, created_at| ServiceToken {
        id: crate::record_id(),
        name: name.to_owned(),
        created_by: Some(root.id),
        created_at,
        last_used_at: None,
        revoked_at: None,
        scopes: vec![crate::analytics::models::TokenScope::Usage],
    };
    let chat = token("chat service", at);
    // Scopes read back as stored.
    let search = ServiceToken {
        scopes: crate::analytics::models::TokenScope::ALL.to_vec(),
        ..token("search service", at + Duration::seconds(1))
    };
    let chat_secret = ports.tokens.generate();
    for (t, secret) in [(&chat, &chat_secret), (&search, &ports.tokens.generate())] {
        let audit = event(t.created_at, AuditAction::ServiceTokenCreated);
        ports.service_tokens.insert_service_token(t.clone(), secret.hash(), audit).await.unwrap();
    }
    assert_eq!(
        ports.service_tokens.service_tokens().await.unwrap(),
        vec![search.clone(), chat.clone()]
    );
    let by_hash = ports.service_tokens.service_token_by_hash(&chat_secret.hash()).await.unwrap();
    assert_eq!(by_hash, Some(chat.clone()));
    let unknown = ports.tokens.generate().hash();
    assert_eq!(ports.service_tokens.service_token_by_hash(&unknown).await.unwrap(), None);

    let used = at + Duration::minutes(1);
    ports.service_tokens.touch_service_token(chat.id, used).await.unwrap();
    let revoked_at = at + Duration::minutes(2);
    let audit = event(revoked_at, AuditAction::ServiceTokenRevoked);
    let revoked =
        ports.service_tokens.revoke_service_token(chat.id, revoked_at, audit).await.unwrap();
    let expected =
        ServiceToken { last_used_at: Some(used), revoked_at: Some(revoked_at), ..chat.clone() };
    assert_eq!(revoked, Some(expected.clone()));
    assert!(!expected.is_active());
    let again_at = at + Duration::minutes(3);
    let audit = event(again_at, AuditAction::ServiceTokenRevoked);
    let again = ports.service_tokens.revoke_service_token(chat.id, again_at, audit).await.unwrap();
    assert_eq!(again, Some(expected.clone()));
    let audit = event(again_at, AuditAction::ServiceTokenRevoked);
    let none = ports.service_tokens.revoke_service_token(crate::record_id(), again_at, audit).await;
    assert_eq!(none.unwrap(), None);
    assert_eq!(audit_of(&ports, AuditAction::ServiceTokenRevoked).await.len(), 1);
    let by_hash = ports.service_tokens.service_token_by_hash(&chat_secret.hash()).await.unwrap();
    assert_eq!(by_hash, Some(expected));
    let listed = ports.service_tokens.service_tokens().await.unwrap();
    assert_eq!(listed.iter().map(|t| t.is_active()).collect::<Vec<_>>(), vec![true, false]);
}

fn usage_event(
    id: &str,
    user: &User,
    conversation: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> UsageEvent {
    UsageEvent {
        id: id.to_owned(),
        user_id: user.id,
        conversation_id: conversation.to_owned(),
        model: "gpt-4o".into(),
        provider: "openai".into(),
        input_tokens: 100,
        output_tokens: 10,
        occurred_at: at,
    }
}

/// `record_usage` MUST ignore and list as a duplicate an event whose id is
/// stored (also when two batches race), MUST NOT record an event of an
/// unknown user, and counts a conversation once; purging raw events keeps
/// the aggregates.
pub async fn record_usage_reports_a_repeated_event_id_as_a_duplicate(ports: Ports) {
    let at = now(&ports);
    let ada = active(&ports, "ada@example.com", Role::User).await;
    let first = vec![usage_event("e1", &ada, "c1", at), usage_event("e2", &ada, "c1", at)];
    assert_eq!(ports.usage.record_usage(first).await.unwrap(), RecordedUsage::default());
    let mut repeated = usage_event("e1", &ada, "c9", at);
    repeated.input_tokens = 5_000;
    let second = vec![repeated, usage_event("e3", &ada, "c2", at)];
    let recorded = ports.usage.record_usage(second).await.unwrap();
    assert_eq!(recorded, RecordedUsage { duplicates: vec!["e1".into()], unknown_users: vec![] });
    let stranger = User { id: UserId::generate(), ..ada.clone() };
    let recorded =
        ports.usage.record_usage(vec![usage_event("e4", &stranger, "c3", at)]).await.unwrap();
    assert_eq!(recorded, RecordedUsage { duplicates: vec![], unknown_users: vec!["e4".into()] });

    let racing: Vec<_> = (0..2)
        .map(|_| {
            let usage = ports.usage.clone();
            let batch = vec![usage_event("e5", &ada, "c2", at)];
            async move { usage.record_usage(batch).await }
        })
        .collect();
    let outcomes = join_all(racing).await;
    let duplicates: usize = outcomes.iter().map(|o| o.as_ref().unwrap().duplicates.len()).sum();
    assert_eq!(duplicates, 1, "{outcomes:?}");

    let day = at.date_naive();
    let range = DayRange { from: day, to: day };
    let expected = Usage { events: 4, input_tokens: 400, output_tokens: 40, conversations: 2 };
    let days = ports.usage.usage_by_day(range).await.unwrap();
    assert_eq!(days.iter().map(|d| (d.day, d.usage)).collect::<Vec<_>>(), vec![(day, expected)]);
    let (last, models) = ports.usage.user_usage(ada.id, range).await.unwrap();
    assert_eq!(last, Some(at));
    assert_eq!(models.iter().map(|m| m.usage).collect::<Vec<_>>(), vec![expected]);
    let (last, models) = ports.usage.user_usage(stranger.id, range).await.unwrap();
    assert_eq!((last, models.len()), (None, 0));
    let active = ports.usage.active_users(Period::Day, range).await.unwrap();
    assert_eq!(active.iter().map(|p| (p.start, p.users)).collect::<Vec<_>>(), vec![(day, 1)]);

    assert_eq!(ports.usage.purge_usage_before(at + Duration::seconds(1)).await.unwrap(), 4);
    let days = ports.usage.usage_by_day(range).await.unwrap();
    assert_eq!(days.iter().map(|d| d.usage).collect::<Vec<_>>(), vec![expected]);
}
