//! Usage analytics on a real database: events recorded once even when
//! batches race, aggregates equal to the events, conversations counted
//! once, service tokens stored by digest and revoked with their audit
//! event, retention keeping the aggregates.

use chrono::Duration;
use futures::future::join_all;
use secureai_domain::analytics::models::TokenScope;
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
        let invited = service
            .invitations
            .invite_user(&admin, &invite(&format!("u{i}@example.com")), &ctx)
            .await
            .unwrap();
        users.push(invited.user.id);
    }
    let issued =
        service.service_tokens.create_service_token(&admin, "chat", None, &ctx).await.unwrap();
    let caller = service
        .service_tokens
        .authenticate_service(&issued.secret, TokenScope::Usage)
        .await
        .unwrap();
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
        tokio::spawn(async move { service.analytics.ingest_usage(&caller, events).await.unwrap() })
    });
    let reports: Vec<_> = join_all(sends).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(reports.iter().map(|r| r.accepted).sum::<usize>(), 120);
    assert_eq!(reports.iter().map(|r| r.duplicates).sum::<usize>(), 7 * 120);
    // Upper-case ids are other events.
    let upper = service.analytics.ingest_usage(&caller, batch("E")).await.unwrap();
    assert_eq!(upper.accepted, 120);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM usage_events").await, 240);

    let range = DayRange::ending(now.date_naive(), 7);
    let dashboard = service.analytics.dashboard(&admin, range).await.unwrap();
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
    let activity = service.analytics.user_activity(&admin, users[0]).await.unwrap();
    assert_eq!(activity.usage.events, 80);
    assert_eq!(activity.usage.conversations, 4);
    assert_eq!(activity.last_activity_at, Some(now - Duration::hours(1)));
    let weekly = service.analytics.active_users(&admin, Period::Week, range).await.unwrap();
    assert!(weekly.iter().map(|p| p.users).max().unwrap() >= 4);
}

pub async fn unknown_users_are_reported_and_nothing_of_theirs_is_kept(db: TestDb) {
    let (service, clock) = db.service(Policy::default());
    let admin = first_admin(&service).await;
    let ctx = RequestContext::default();
    let issued =
        service.service_tokens.create_service_token(&admin, "chat", None, &ctx).await.unwrap();
    let caller = service
        .service_tokens
        .authenticate_service(&issued.secret, TokenScope::Usage)
        .await
        .unwrap();
    let at = (clock.now() - Duration::minutes(5)).to_rfc3339();
    let batch = vec![
        event("known", admin.user().id, "c", "m", at.clone()),
        event("stranger", UserId::generate(), "c", "m", at),
    ];
    let report = service.analytics.ingest_usage(&caller, batch).await.unwrap();
    assert_eq!(report.accepted, 1);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(
        (report.rejected[0].index, report.rejected[0].reason),
        (1, EventRejection::UnknownUser)
    );
    assert_eq!(count(&db, "SELECT COUNT(*) FROM usage_events").await, 1);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM usage_user_totals").await, 1);
}

pub async fn service_tokens_are_kept_by_digest_and_revoked_once(db: TestDb) {
    let (service, _clock) = db.service(Policy::default());
    let admin = first_admin(&service).await;
    let ctx = RequestContext::default();
    let issued =
        service.service_tokens.create_service_token(&admin, "reporting", None, &ctx).await.unwrap();
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
    service.service_tokens.revoke_service_token(&admin, issued.token.id, &ctx).await.unwrap();
    service.service_tokens.revoke_service_token(&admin, issued.token.id, &ctx).await.unwrap();
    assert!(
        service
            .service_tokens
            .authenticate_service(&issued.secret, TokenScope::Usage)
            .await
            .is_err()
    );
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
    let issued =
        service.service_tokens.create_service_token(&admin, "chat", None, &ctx).await.unwrap();
    let caller = service
        .service_tokens
        .authenticate_service(&issued.secret, TokenScope::Usage)
        .await
        .unwrap();
    let at = (clock.now() - Duration::hours(2)).to_rfc3339();
    let batch = vec![
        event("a", admin.user().id, "c1", "m", at.clone()),
        event("b", admin.user().id, "c1", "m", at),
    ];
    service.analytics.ingest_usage(&caller, batch).await.unwrap();
    clock.advance(Duration::days(91));
    assert_eq!(service.analytics.purge_expired_usage().await.unwrap(), 2);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM usage_events").await, 0);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM usage_conversations").await, 0);
    let range = DayRange::ending(clock.now().date_naive(), 120);
    let dashboard = service.analytics.dashboard(&admin, range).await.unwrap();
    assert_eq!((dashboard.total.events, dashboard.total.conversations), (2, 1));
}

/// Usage over any range is exactly the events inside it, whatever order
/// the events arrived in (late events rewrite the running totals after
/// them) and however the range cuts the days.
pub async fn ranges_count_exactly_the_usage_inside_them_whatever_the_arrival_order(db: TestDb) {
    let (service, clock) = db.service(Policy::default());
    let admin = first_admin(&service).await;
    let ctx = RequestContext::default();
    let mut users = Vec::new();
    for i in 0..3 {
        let invited = service
            .invitations
            .invite_user(&admin, &invite(&format!("r{i}@example.com")), &ctx)
            .await
            .unwrap();
        users.push(invited.user.id);
    }
    let issued =
        service.service_tokens.create_service_token(&admin, "chat", None, &ctx).await.unwrap();
    let caller = service
        .service_tokens
        .authenticate_service(&issued.secret, TokenScope::Usage)
        .await
        .unwrap();
    let now = clock.now();
    // 90 events over the last 12 days, three users, five conversations
    // each, token counts all different.
    let events: Vec<UsageEventInput> = (0..90_u32)
        .map(|i| {
            let mix = i.wrapping_mul(2_654_435_761) % 1_009;
            let at = now - Duration::hours(i64::from(mix % (12 * 24)) + 1);
            let mut e = event(
                &format!("ev-{i}"),
                users[(mix % 3) as usize],
                &format!("conv-{}", mix % 5),
                "gpt-4o",
                at.to_rfc3339(),
            );
            e.input_tokens = i64::from(100 + i);
            e.output_tokens = i64::from(mix % 50);
            e
        })
        .collect();
    // Arrival: the newest third first, then the oldest third (late), then
    // the rest one by one in reverse.
    let mut by_time = events.clone();
    by_time.sort_by(|a, b| a.occurred_at.cmp(&b.occurred_at));
    let (old, rest) = by_time.split_at(30);
    let (middle, new) = rest.split_at(30);
    service.analytics.ingest_usage(&caller, new.to_vec()).await.unwrap();
    service.analytics.ingest_usage(&caller, old.to_vec()).await.unwrap();
    for e in middle.iter().rev() {
        service.analytics.ingest_usage(&caller, vec![e.clone()]).await.unwrap();
    }

    // The day each conversation started: that of the earliest event of the
    // first batch that carried it (an earlier event arriving later does
    // not move it).
    let day_of = |e: &UsageEventInput| {
        chrono::DateTime::parse_from_rfc3339(&e.occurred_at).unwrap().date_naive()
    };
    let mut started = std::collections::BTreeMap::new();
    let singles: Vec<Vec<UsageEventInput>> = middle.iter().rev().map(|e| vec![e.clone()]).collect();
    for batch in [new.to_vec(), old.to_vec()].iter().chain(&singles) {
        let mut batch = batch.clone();
        batch.sort_by(|a, b| (&a.occurred_at, &a.event_id).cmp(&(&b.occurred_at, &b.event_id)));
        let mut here = std::collections::BTreeMap::new();
        for e in &batch {
            here.entry((e.user_id.clone(), e.conversation_id.clone())).or_insert(day_of(e));
        }
        for (key, day) in here {
            started.entry(key).or_insert(day);
        }
    }
    let today = now.date_naive();
    for (back, days) in [(0, 1), (0, 3), (2, 5), (5, 4), (11, 1), (0, 12), (0, 30), (20, 5)] {
        let range = DayRange::ending(today - Duration::days(back), days);
        let inside = |day: chrono::NaiveDate| range.from <= day && day <= range.to;
        let mut expected: Vec<(String, u64, u64, u64)> = users
            .iter()
            .map(|user| {
                let mine: Vec<&UsageEventInput> = events
                    .iter()
                    .filter(|e| e.user_id == user.to_string() && inside(day_of(e)))
                    .collect();
                let tokens: i64 = mine.iter().map(|e| e.input_tokens + e.output_tokens).sum();
                let conversations = started
                    .iter()
                    .filter(|((u, _), day)| *u == user.to_string() && inside(**day))
                    .count();
                (user.to_string(), mine.len() as u64, tokens as u64, conversations as u64)
            })
            .filter(|(_, events, _, _)| *events > 0)
            .collect();
        expected.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
        let dashboard = service.analytics.dashboard(&admin, range).await.unwrap();
        let got: Vec<(String, u64, u64, u64)> = dashboard
            .top_users
            .iter()
            .map(|u| {
                (u.user_id.to_string(), u.usage.events, u.usage.tokens(), u.usage.conversations)
            })
            .collect();
        assert_eq!(got, expected, "top users by tokens over {range:?}");
        let mut by_conversations: Vec<(String, u64)> =
            expected.iter().filter(|e| e.3 > 0).map(|e| (e.0.clone(), e.3)).collect();
        by_conversations.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let got: Vec<(String, u64)> = dashboard
            .top_conversations
            .iter()
            .map(|u| (u.user_id.to_string(), u.usage.conversations))
            .collect();
        assert_eq!(got, by_conversations, "top users by conversations over {range:?}");
        let events_in_range = events.iter().filter(|e| inside(day_of(e))).count() as u64;
        assert_eq!(dashboard.total.events, events_in_range, "{range:?}");
    }
    // The active-user counts kept beside the rows agree with the rows.
    let wrong = count(
        &db,
        "SELECT COUNT(*) FROM active_counts c WHERE c.users <> (SELECT COUNT(*) \
         FROM active_users a WHERE a.period = c.period AND a.start_day = c.start_day)",
    )
    .await;
    assert_eq!(wrong, 0);
    let uncounted = count(
        &db,
        "SELECT COUNT(*) FROM active_users a WHERE NOT EXISTS (SELECT 1 FROM active_counts c \
         WHERE c.period = a.period AND c.start_day = a.start_day)",
    )
    .await;
    assert_eq!(uncounted, 0);
}

on_every_database!(
    ranges_count_exactly_the_usage_inside_them_whatever_the_arrival_order,
    racing_batches_record_each_event_and_conversation_once,
    unknown_users_are_reported_and_nothing_of_theirs_is_kept,
    service_tokens_are_kept_by_digest_and_revoked_once,
    retention_deletes_raw_events_and_keeps_the_aggregates,
);
