//! Rule 12 and usage analytics: service tokens (shown once, stored hashed,
//! revocable, audited), ingestion (idempotent, per-event refusals), the
//! dashboard's aggregates, a user's activity, retention.

use chrono::{Duration, NaiveDate};
use secureai_domain::access::Admin;
use secureai_domain::access::ServiceCaller;
use secureai_domain::analytics::errors::{IngestError, ServiceAuthError, ServiceTokenError};
use secureai_domain::analytics::models::TokenScope;
use secureai_domain::analytics::models::{DayRange, EventRejection, Period, UsageEventInput};
use secureai_domain::secrets::PlainToken;
use secureai_domain::testing::TestKit;
use secureai_domain::{AuditAction, Clock, Policy, UserId};

use crate::kit::{active_user, audit_of, ctx, detail, sign_in, with_admin, with_admin_under};

fn event(id: &str, user: UserId, conversation: &str, model: &str, at: &str) -> UsageEventInput {
    UsageEventInput {
        event_id: id.into(),
        user_id: user.to_string(),
        conversation_id: conversation.into(),
        model: model.into(),
        provider: "openai".into(),
        input_tokens: 100,
        output_tokens: 20,
        occurred_at: at.into(),
    }
}

/// The fake clock's now, as RFC 3339, moved by `hours`.
fn at(kit: &TestKit, hours: i64) -> String {
    (kit.clock.now() + Duration::hours(hours)).to_rfc3339()
}

fn today(kit: &TestKit) -> NaiveDate {
    kit.clock.now().date_naive()
}

async fn caller(kit: &TestKit, admin: &Admin) -> ServiceCaller {
    let issued = kit
        .service
        .service_tokens
        .create_service_token(admin, "chat service", None, &ctx())
        .await
        .unwrap();
    kit.service
        .service_tokens
        .authenticate_service(&issued.secret, TokenScope::Usage)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_service_token_is_shown_once_stored_hashed_and_audited() {
    let (kit, admin) = with_admin().await;
    let issued = kit
        .service
        .service_tokens
        .create_service_token(&admin, "  chat service  ", None, &ctx())
        .await
        .unwrap();
    let secret = issued.secret.expose().to_owned();
    assert!(secret.starts_with("sat_") && secret.len() >= 4 + 43, "{secret}");
    assert_eq!(issued.token.name, "chat service");
    // The store keeps the digest, never the secret.
    let stored = kit.store.state().usage.tokens.clone();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, issued.secret.hash());
    let listed = kit.service.service_tokens.service_tokens(&admin).await.unwrap();
    assert_eq!(listed, vec![issued.token.clone()]);
    // Audited with its id and name; the secret appears in no audit event.
    let created = audit_of(&kit, AuditAction::ServiceTokenCreated);
    assert_eq!(created.len(), 1);
    assert_eq!(detail(&created[0], "name"), Some("chat service"));
    assert!(!format!("{:?}", kit.store.state().audit).contains(&secret));

    // It authenticates, and records when it was used.
    let caller = kit
        .service
        .service_tokens
        .authenticate_service(&issued.secret, TokenScope::Usage)
        .await
        .unwrap();
    assert_eq!(caller.token().id, issued.token.id);
    let used = kit.service.service_tokens.service_tokens(&admin).await.unwrap();
    assert_eq!(used[0].last_used_at, Some(kit.clock.now()));
}

#[tokio::test]
async fn a_revoked_unknown_or_foreign_token_authenticates_nothing() {
    let (kit, admin) = with_admin().await;
    let issued = kit
        .service
        .service_tokens
        .create_service_token(&admin, "reporter", None, &ctx())
        .await
        .unwrap();
    let revoked = kit
        .service
        .service_tokens
        .revoke_service_token(&admin, issued.token.id, &ctx())
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(kit.clock.now()));
    assert!(matches!(
        kit.service.service_tokens.authenticate_service(&issued.secret, TokenScope::Usage).await,
        Err(ServiceAuthError::InvalidToken)
    ));
    // Revoking again changes nothing and is not audited twice.
    kit.service.service_tokens.revoke_service_token(&admin, issued.token.id, &ctx()).await.unwrap();
    assert_eq!(audit_of(&kit, AuditAction::ServiceTokenRevoked).len(), 1);
    assert!(matches!(
        kit.service.service_tokens.revoke_service_token(&admin, uuid::Uuid::new_v4(), &ctx()).await,
        Err(ServiceTokenError::NotFound)
    ));
    for guess in ["sat_not-a-token", "", "a-session-token"] {
        assert!(matches!(
            kit.service
                .service_tokens
                .authenticate_service(&PlainToken::presented(guess), TokenScope::Usage)
                .await,
            Err(ServiceAuthError::InvalidToken)
        ));
    }
    // A session token is not a service token.
    let password = crate::kit::pw(crate::kit::ROOT_PASSWORD);
    let signed_in = kit.service.sessions.sign_in(crate::kit::ROOT_EMAIL, &password, &ctx()).await;
    let session = signed_in.unwrap().token;
    assert!(
        kit.service.service_tokens.authenticate_service(&session, TokenScope::Usage).await.is_err()
    );
    for name in ["", "   ", "line\nbreak", &"x".repeat(101)] {
        assert!(matches!(
            kit.service.service_tokens.create_service_token(&admin, name, None, &ctx()).await,
            Err(ServiceTokenError::InvalidName)
        ));
    }
}

#[tokio::test]
async fn events_are_recorded_once_whatever_how_often_they_are_sent() {
    let (kit, admin) = with_admin().await;
    let ada = active_user(&kit, &admin, "ada@example.com", "user", "ada's password").await;
    let service = caller(&kit, &admin).await;
    let batch = vec![
        event("e-1", ada, "c-1", "gpt-4o", &at(&kit, -2)),
        event("e-2", ada, "c-1", "gpt-4o", &at(&kit, -1)),
        event("e-1", ada, "c-1", "gpt-4o", &at(&kit, -2)),
    ];
    let report = kit.service.analytics.ingest_usage(&service, batch.clone()).await.unwrap();
    assert_eq!((report.received, report.accepted, report.duplicates), (3, 2, 1));
    assert!(report.rejected.is_empty());
    // The same batch again: nothing new.
    let again = kit.service.analytics.ingest_usage(&service, batch).await.unwrap();
    assert_eq!((again.accepted, again.duplicates), (0, 3));
    let dashboard =
        kit.service.analytics.dashboard(&admin, DayRange::ending(today(&kit), 7)).await.unwrap();
    assert_eq!(dashboard.total.events, 2);
    assert_eq!(dashboard.total.input_tokens, 200);
    assert_eq!(dashboard.total.output_tokens, 40);
    assert_eq!(dashboard.total.conversations, 1);
}

#[tokio::test]
async fn each_bad_event_is_refused_with_its_reason_and_the_rest_recorded() {
    let (kit, admin) = with_admin().await;
    let ada = active_user(&kit, &admin, "ada@example.com", "user", "ada's password").await;
    let service = caller(&kit, &admin).await;
    let good = || event("ok-1", ada, "c-1", "gpt-4o", &at(&kit, -1));
    let cases: Vec<(UsageEventInput, EventRejection)> = vec![
        (UsageEventInput { event_id: "".into(), ..good() }, EventRejection::InvalidEventId),
        (UsageEventInput { event_id: "a b".into(), ..good() }, EventRejection::InvalidEventId),
        (UsageEventInput { event_id: "x".repeat(129), ..good() }, EventRejection::InvalidEventId),
        (
            UsageEventInput { event_id: "u".into(), user_id: "nobody".into(), ..good() },
            EventRejection::InvalidUserId,
        ),
        (
            UsageEventInput {
                event_id: "g".into(),
                user_id: UserId::generate().to_string(),
                ..good()
            },
            EventRejection::UnknownUser,
        ),
        (
            UsageEventInput { event_id: "c".into(), conversation_id: "".into(), ..good() },
            EventRejection::InvalidConversationId,
        ),
        (
            UsageEventInput { event_id: "m".into(), model: "".into(), ..good() },
            EventRejection::InvalidModel,
        ),
        (
            UsageEventInput { event_id: "p".into(), provider: "a\u{0}b".into(), ..good() },
            EventRejection::InvalidProvider,
        ),
        (
            UsageEventInput { event_id: "t".into(), input_tokens: -1, ..good() },
            EventRejection::InvalidTokenCount,
        ),
        (
            UsageEventInput { event_id: "t2".into(), output_tokens: 100_000_001, ..good() },
            EventRejection::InvalidTokenCount,
        ),
        (
            UsageEventInput { event_id: "d".into(), occurred_at: "yesterday".into(), ..good() },
            EventRejection::InvalidTime,
        ),
        (
            UsageEventInput { event_id: "o".into(), occurred_at: at(&kit, -24 * 91), ..good() },
            EventRejection::TooOld,
        ),
        (
            UsageEventInput { event_id: "f".into(), occurred_at: at(&kit, 1), ..good() },
            EventRejection::InTheFuture,
        ),
    ];
    let mut batch: Vec<UsageEventInput> = cases.iter().map(|(e, _)| e.clone()).collect();
    batch.push(good());
    let report = kit.service.analytics.ingest_usage(&service, batch).await.unwrap();
    assert_eq!(report.accepted, 1);
    let reasons: Vec<(usize, EventRejection)> =
        report.rejected.iter().map(|r| (r.index, r.reason)).collect();
    let expected: Vec<(usize, EventRejection)> =
        cases.iter().enumerate().map(|(i, (_, reason))| (i, *reason)).collect();
    assert_eq!(reasons, expected);
    assert_eq!(kit.store.state().usage.events.len(), 1);
}

#[tokio::test]
async fn a_batch_over_the_limit_is_refused_whole() {
    let mut policy = Policy::default();
    policy.analytics.max_batch = 2;
    let (kit, admin) = with_admin_under(policy).await;
    let ada = active_user(&kit, &admin, "ada@example.com", "user", "ada's password").await;
    let service = caller(&kit, &admin).await;
    let batch: Vec<_> =
        (0..3).map(|i| event(&format!("e{i}"), ada, "c", "m", &at(&kit, -1))).collect();
    assert!(matches!(
        kit.service.analytics.ingest_usage(&service, batch).await,
        Err(IngestError::TooLarge { limit: 2 })
    ));
    assert!(kit.store.state().usage.events.is_empty());
}

#[tokio::test]
async fn the_dashboard_sums_days_models_and_users_and_counts_conversations_once() {
    let (kit, admin) = with_admin().await;
    let ada = active_user(&kit, &admin, "ada@example.com", "user", "ada's password").await;
    let bob = active_user(&kit, &admin, "bob@example.com", "user", "bob's password").await;
    let service = caller(&kit, &admin).await;
    let day = |n: i64| at(&kit, -24 * n);
    let batch = vec![
        // Ada: one conversation over two days, two models.
        event("a1", ada, "ada-c1", "gpt-4o", &day(2)),
        event("a2", ada, "ada-c1", "claude", &day(1)),
        event("a3", ada, "ada-c2", "claude", &day(1)),
        // Bob: three conversations today.
        event("b1", bob, "bob-c1", "gpt-4o", &day(0)),
        event("b2", bob, "bob-c2", "gpt-4o", &day(0)),
        event("b3", bob, "bob-c3", "gpt-4o", &day(0)),
        event("b4", bob, "bob-c3", "gpt-4o", &day(0)),
    ];
    kit.service.analytics.ingest_usage(&service, batch).await.unwrap();
    let range = DayRange::ending(today(&kit), 7);
    let dashboard = kit.service.analytics.dashboard(&admin, range).await.unwrap();

    // Every day of the range, idle ones at zero.
    assert_eq!(dashboard.by_day.len(), 7);
    let per_day: Vec<u64> = dashboard.by_day.iter().map(|d| d.usage.events).collect();
    assert_eq!(per_day, [0, 0, 0, 0, 1, 2, 4]);
    // Conversations count on the day of their first event, once.
    assert_eq!(dashboard.total.conversations, 5);
    // Models, most tokens first.
    let models: Vec<(&str, u64)> =
        dashboard.by_model.iter().map(|m| (m.model.as_str(), m.usage.events)).collect();
    assert_eq!(models, [("gpt-4o", 5), ("claude", 2)]);
    // Top users by tokens, and by conversations.
    let top: Vec<(UserId, u64)> =
        dashboard.top_users.iter().map(|u| (u.user_id, u.usage.tokens())).collect();
    assert_eq!(top, [(bob, 480), (ada, 360)]);
    let chats: Vec<(UserId, u64)> =
        dashboard.top_conversations.iter().map(|u| (u.user_id, u.usage.conversations)).collect();
    assert_eq!(chats, [(bob, 3), (ada, 2)]);
    // Active users: sign-ins count too (the admin signed in today; Ada and
    // Bob only through events).
    let daily: Vec<u64> = dashboard.daily_active.iter().map(|p| p.users).collect();
    assert_eq!(daily, [0, 0, 0, 0, 1, 1, 2]);
    let this_month = dashboard.monthly_active.last().unwrap();
    assert_eq!(this_month.start, Period::Month.start_of(today(&kit)));
    assert!(this_month.users >= 2);
}

#[tokio::test]
async fn a_sign_in_makes_a_user_active_that_day_week_and_month() {
    let (kit, admin) = with_admin().await;
    active_user(&kit, &admin, "ada@example.com", "user", "ada's password").await;
    kit.clock.advance(Duration::days(1));
    sign_in(&kit, "ada@example.com", "ada's password").await;
    let range = DayRange::ending(today(&kit), 2);
    let daily = kit.service.analytics.active_users(&admin, Period::Day, range).await.unwrap();
    // Yesterday: the admin signed in. Today: Ada.
    assert_eq!(daily.iter().map(|p| p.users).collect::<Vec<_>>(), [1, 1]);
    let monthly = kit.service.analytics.active_users(&admin, Period::Month, range).await.unwrap();
    assert_eq!(monthly.iter().map(|p| p.users).sum::<u64>(), 2);
}

#[tokio::test]
async fn a_profile_shows_the_last_30_days_and_the_last_activity() {
    let (kit, admin) = with_admin().await;
    let ada = active_user(&kit, &admin, "ada@example.com", "user", "ada's password").await;
    let service = caller(&kit, &admin).await;
    let old = at(&kit, -24 * 40);
    let batch = vec![
        event("old", ada, "c0", "gpt-4o", &old),
        event("n1", ada, "c1", "claude", &at(&kit, -3)),
        event("n2", ada, "c1", "claude", &at(&kit, -2)),
        event("n3", ada, "c2", "gpt-4o", &at(&kit, -1)),
    ];
    kit.service.analytics.ingest_usage(&service, batch).await.unwrap();
    let activity = kit.service.analytics.user_activity(&admin, ada).await.unwrap();
    assert_eq!(activity.range.days(), 30);
    assert_eq!(activity.usage.events, 3);
    assert_eq!(activity.usage.conversations, 2);
    assert_eq!(activity.last_activity_at, Some(kit.clock.now() - Duration::hours(1)));
    let models: Vec<&str> = activity.models.iter().map(|m| m.model.as_str()).collect();
    assert_eq!(models, ["claude", "gpt-4o"]);
    let nobody = kit.service.analytics.user_activity(&admin, admin.user().id).await.unwrap();
    assert_eq!((nobody.usage.events, nobody.last_activity_at), (0, None));
}

#[tokio::test]
async fn raw_events_expire_but_their_aggregates_stay_and_a_replay_is_refused() {
    let (kit, admin) = with_admin().await;
    let ada = active_user(&kit, &admin, "ada@example.com", "user", "ada's password").await;
    let service = caller(&kit, &admin).await;
    let first = event("e-1", ada, "c-1", "gpt-4o", &at(&kit, -1));
    kit.service.analytics.ingest_usage(&service, vec![first.clone()]).await.unwrap();
    kit.clock.advance(Duration::days(91));
    assert_eq!(kit.service.analytics.purge_expired_usage().await.unwrap(), 1);
    assert!(kit.store.state().usage.events.is_empty());
    let range = DayRange::ending(today(&kit), 100);
    let dashboard = kit.service.analytics.dashboard(&admin, range).await.unwrap();
    assert_eq!(dashboard.total.events, 1);
    // Sent again after its raw record is gone: too old, not counted twice.
    let service = kit
        .service
        .service_tokens
        .authenticate_service(&issue_again(&kit, &admin).await, TokenScope::Usage)
        .await
        .unwrap();
    let replay = kit.service.analytics.ingest_usage(&service, vec![first]).await.unwrap();
    assert_eq!(replay.rejected[0].reason, EventRejection::TooOld);
    assert_eq!(kit.service.analytics.dashboard(&admin, range).await.unwrap().total.events, 1);
}

async fn issue_again(kit: &TestKit, admin: &Admin) -> PlainToken {
    kit.service
        .service_tokens
        .create_service_token(admin, "again", None, &ctx())
        .await
        .unwrap()
        .secret
}

#[tokio::test]
async fn a_range_must_run_forward_and_not_exceed_a_year() {
    let (kit, admin) = with_admin().await;
    let day = today(&kit);
    let backwards = DayRange { from: day, to: day - Duration::days(1) };
    assert!(kit.service.analytics.dashboard(&admin, backwards).await.is_err());
    let too_long = DayRange::ending(day, 367);
    assert!(kit.service.analytics.dashboard(&admin, too_long).await.is_err());
    assert!(kit.service.analytics.dashboard(&admin, DayRange::ending(day, 366)).await.is_ok());
}

#[tokio::test]
async fn a_service_token_opens_only_what_its_scopes_name() {
    let (kit, admin) = with_admin().await;
    let tokens = &kit.service.service_tokens;
    let scopes = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let scim = scopes(&["scim"]);
    let provisioning =
        tokens.create_service_token(&admin, "Entra ID", Some(&scim), &ctx()).await.unwrap();
    assert_eq!(provisioning.token.scopes, [TokenScope::Scim]);
    let refused = tokens.authenticate_service(&provisioning.secret, TokenScope::Usage).await;
    assert!(
        matches!(refused, Err(ServiceAuthError::MissingScope { scope: TokenScope::Usage })),
        "{refused:?}"
    );
    tokens.authenticate_service(&provisioning.secret, TokenScope::Scim).await.unwrap();

    let both = scopes(&["scim", "usage", "scim"]);
    let issued = tokens.create_service_token(&admin, "both", Some(&both), &ctx()).await.unwrap();
    assert_eq!(issued.token.scopes, [TokenScope::Usage, TokenScope::Scim]);
    let default = tokens.create_service_token(&admin, "chat", None, &ctx()).await.unwrap();
    assert_eq!(default.token.scopes, [TokenScope::Usage]);
    let before = kit.store.state().audit.len();
    for bad in [scopes(&[]), scopes(&["admin"]), scopes(&["usage", "everything"])] {
        let refused = tokens.create_service_token(&admin, "bad", Some(&bad), &ctx()).await;
        assert!(
            matches!(refused, Err(ServiceTokenError::InvalidScopes(_))),
            "{bad:?}: {refused:?}"
        );
    }
    assert_eq!(kit.store.state().audit.len(), before, "a refused token writes nothing");
    let created = audit_of(&kit, AuditAction::ServiceTokenCreated);
    assert_eq!(detail(&created[0], "scopes"), Some("scim"));
}
