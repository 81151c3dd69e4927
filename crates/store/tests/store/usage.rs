//! Usage analytics on a real database: events recorded once even when
//! batches race, aggregates equal to the events, conversations counted
//! once, service tokens stored by digest and revoked with their audit
//! event, retention keeping the aggregates.

use chrono::Duration;
use futures::future::join_all;
use secureai_domain::analytics::models::{DayRange, EventRejection, Period, UsageEventInput};
use secureai_domain::analytics::ports::ServiceTokenRepository;
use secureai_domain::{Clock, Policy, RequestContext, UserId};

use crate::support::TestDb;
use crate::use_cases::{count, first_admin, invite};

fn event(id: &str, user: UserId, conversation: &str, model: &str, at: String) -> UsageEventInput {
    UsageEventInput {
        event_id: id.into(),
        user_id: user.to_string(),
        conversation_id: conversation.into(),
        model: model.into(),
        provider: "openai".into(),
        input_tokens: 1000,
        output_tokens: 10,
        occurred_at: at,
    }
}

pub async fn racing_batches_record_each_event_and_conversation_once(db: TestDb) {
    let (service, clock) = db.service(Policy::default());
    let admin = first_admin(&service).await;
    let ctx = RequestContext::default();
    let mut users = Vec::new();
    for i in 0..3 {
        let invited =
            service.invite_user(&admin, &invite(&format!("u{i}@example.com")), &ctx).await.unwrap();
        users.push(invited.user.id);
    }
    let issued = service.create_service_token(&admin, "chat", &ctx).await.unwrap();
    let caller = service.authenticate_service(&issued.secret).await.unwrap();
    let now = clock.now();
    // 120 distinct events over 3 users, 12 conversations, 2 models, 3 days;
    // event ids differ only by case from another batch's ("E" vs "e").
    let batch = |prefix: &str| -> Vec<UsageEventInput> {
        (0..120)
            .map(|i| {
                let at = (now - Duration::hours(i64::from(i / 3 % 3) * 24 + 1)).to_rfc3339();
                event(
                    &format!("{prefix}-{i}"),
                    users[i as usize % 3],
                    &format!("conv-{}", i % 12),
                    if i % 2 == 0 { "gpt-4o" } else { "claude" },
                    at,
                )
            })
            .collect()
    };
    // Eight senders at once, each sending the same 120 events (in a
    // different order).
    let sends = (0..8).map(|k| {
        let service = service.clone();
        let caller = caller.clone();
        let mut events = batch("e");
        events.rotate_left(k * 15);
        tokio::spawn(async move { service.ingest_usage(&caller, events).await.unwrap() })
    });
    let reports: Vec<_> = join_all(sends).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(reports.iter().map(|r| r.accepted).sum::<usize>(), 120);
    assert_eq!(reports.iter().map(|r| r.duplicates).sum::<usize>(), 7 * 120);
    // Upper-case ids are other events.
    let upper = service.ingest_usage(&caller, batch("E")).await.unwrap();
    assert_eq!(upper.accepted, 120);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM usage_events").await, 240);

    let range = DayRange::ending(now.date_naive(), 7);
    let dashboard = service.dashboard(&admin, range).await.unwrap();
    assert_eq!(dashboard.total.events, 240);
    assert_eq!(dashboard.total.input_tokens, 240_000);
    assert_eq!(dashboard.total.output_tokens, 2_400);
    // conv-k belongs to user k % 3: 12 (user, conversation) pairs, each
    // started once however many batches carried it.
    assert_eq!(dashboard.total.conversations, 12);
    let by_model: Vec<(String, u64)> =
        dashboard.by_model.iter().map(|m| (m.model.clone(), m.usage.events)).collect();
    assert_eq!(by_model, [("claude".to_owned(), 120), ("gpt-4o".to_owned(), 120)]);
    assert_eq!(dashboard.top_users.len(), 3);
    assert!(dashboard.top_users.iter().all(|u| u.usage.events == 80));
    let per_day: Vec<u64> = dashboard.by_day.iter().map(|d| d.usage.events).collect();
    assert_eq!(per_day.iter().sum::<u64>(), 240);
    assert_eq!(dashboard.daily_active.last().unwrap().users, 4, "3 users and the admin");
    let activity = service.user_activity(&admin, users[0]).await.unwrap();
    assert_eq!(activity.usage.events, 80);
    assert_eq!(activity.usage.conversations, 4);
    assert_eq!(activity.last_activity_at, Some(now - Duration::hours(1)));
    let weekly = service.active_users(&admin, Period::Week, range).await.unwrap();
    assert!(weekly.iter().map(|p| p.users).max().unwrap() >= 4);
}

pub async fn unknown_users_are_reported_and_nothing_of_theirs_is_kept(db: TestDb) {
    let (service, clock) = db.service(Policy::default());
    let admin = first_admin(&service).await;
    let ctx = RequestContext::default();
    let issued = service.create_service_token(&admin, "chat", &ctx).await.unwrap();
    let caller = service.authenticate_service(&issued.secret).await.unwrap();
    let at = (clock.now() - Duration::minutes(5)).to_rfc3339();
    let batch = vec![
        event("known", admin.user().id, "c", "m", at.clone()),
        event("stranger", UserId::random(), "c", "m", at),
    ];
    let report = service.ingest_usage(&caller, batch).await.unwrap();
    assert_eq!(report.accepted, 1);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(
        (report.rejected[0].index, report.rejected[0].reason),
        (1, EventRejection::UnknownUser)
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM usage_events").await, 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM usage_user_days").await, 1);
}

pub async fn service_tokens_are_kept_by_digest_and_revoked_once(db: TestDb) {
    let (service, _clock) = db.service(Policy::default());
    let admin = first_admin(&service).await;
    let ctx = RequestContext::default();
    let issued = service.create_service_token(&admin, "reporting", &ctx).await.unwrap();
    let secret = issued.secret.expose().to_owned();
    let leaks = count(
        &db,
        &format!(
            "SELECT COUNT(*) FROM service_tokens WHERE token_hash = '{secret}' OR name = '{secret}'"
        ),
    )
    .await;
    assert_eq!(leaks, 0);
    let found = db.store.service_token_by_hash(&issued.secret.hash()).await.unwrap().unwrap();
    assert_eq!(found, issued.token);
    service.revoke_service_token(&admin, issued.token.id, &ctx).await.unwrap();
    service.revoke_service_token(&admin, issued.token.id, &ctx).await.unwrap();
    assert!(service.authenticate_service(&issued.secret).await.is_err());
    let audited =
        |action: &str| format!("SELECT COUNT(*) FROM audit_events WHERE action = '{action}'");
    assert_eq!(count(&db, &audited("service_token.created")).await, 1);
    assert_eq!(count(&db, &audited("service_token.revoked")).await, 1);
    let secret_in_audit =
        count(&db, &format!("SELECT COUNT(*) FROM audit_events WHERE changes LIKE '%{secret}%'"))
            .await;
    assert_eq!(secret_in_audit, 0);
}

pub async fn retention_deletes_raw_events_and_keeps_the_aggregates(db: TestDb) {
    let (service, clock) = db.service(Policy::default());
    let admin = first_admin(&service).await;
    let ctx = RequestContext::default();
    let issued = service.create_service_token(&admin, "chat", &ctx).await.unwrap();
    let caller = service.authenticate_service(&issued.secret).await.unwrap();
    let at = (clock.now() - Duration::hours(2)).to_rfc3339();
    let batch = vec![
        event("a", admin.user().id, "c1", "m", at.clone()),
        event("b", admin.user().id, "c1", "m", at),
    ];
    service.ingest_usage(&caller, batch).await.unwrap();
    clock.advance(Duration::days(91));
    assert_eq!(service.purge_expired_usage().await.unwrap(), 2);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM usage_events").await, 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM usage_conversations").await, 0);
    let range = DayRange::ending(clock.now().date_naive(), 120);
    let dashboard = service.dashboard(&admin, range).await.unwrap();
    assert_eq!((dashboard.total.events, dashboard.total.conversations), (2, 1));
}

on_every_database!(
    racing_batches_record_each_event_and_conversation_once,
    unknown_users_are_reported_and_nothing_of_theirs_is_kept,
    service_tokens_are_kept_by_digest_and_revoked_once,
    retention_deletes_raw_events_and_keeps_the_aggregates,
);
