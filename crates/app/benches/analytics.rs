//! Usage analytics: the ingest rate of batches of 1,000 events through
//! `AnalyticsService::ingest_usage` (checks, idempotency, every aggregate, one
//! transaction per batch), then the dashboard queries over what was
//! ingested.
//!
//! `cargo bench -p secureai-app --bench analytics` — `EVENTS` (default
//! 10,000,000) events from `USERS` (default 10,000) users over the last 89
//! days, sent in the order they happened; `BENCH_DB=postgres` for
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use secureai_domain::analytics::models::TokenScope;
use std::time::{Duration, Instant};

use chrono::Utc;
use sea_orm::{ConnectionTrait, Statement, Value};
use secureai_domain::UserId;
use secureai_domain::analytics::models::{Period, UsageEventInput};

const MODELS: [(&str, &str); 5] = [
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
    ("claude-sonnet-4", "anthropic"),
    ("mistral-large", "mistral"),
    ("llama-3-70b", "on-prem"),
];

/// Users straight into the table (what matters here is that they exist).
async fn seed_users(store: &secureai_store::SqlStore, users: usize) -> Vec<UserId> {
    let db = store.connection();
    let backend = db.get_database_backend();
    let mut ids = Vec::with_capacity(users);
    let now = Utc::now().timestamp_micros();
    for chunk in (0..users).collect::<Vec<_>>().chunks(500) {
        let mut values = Vec::new();
        let mut rows = Vec::new();
        for i in chunk {
            let id = UserId::generate();
            ids.push(id);
            let email = format!("user{i}@example.com");
            let mut row = Vec::new();
            for value in [
                Value::from(id.to_string()),
                email.clone().into(),
                email.into(),
                format!("User {i}").into(),
                format!("user {i}").into(),
                "user".into(),
                "active".into(),
                "password".into(),
                Value::from(Option::<String>::None),
                Value::from(Option::<String>::None),
                now.into(),
                Value::from(Some(now)),
                Value::from(Option::<i64>::None),
                0_i64.into(),
            ] {
                values.push(value);
                row.push(if backend == sea_orm::DbBackend::Postgres {
                    format!("${}", values.len())
                } else {
                    "?".to_owned()
                });
            }
            rows.push(format!("({})", row.join(",")));
        }
        db.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO users (id,email,email_key,name,name_key,role,status,sign_in,department,\
                 password_hash,created_at,activated_at,deactivated_at,last_login_at) VALUES {}",
                rows.join(",")
            ),
            values,
        ))
        .await
        .unwrap();
    }
    ids
}

/// Event `n` of `total`: users skewed (a few heavy ones), conversations of
/// ~20 events, models skewed towards the first, occurring in order over
/// `spread_secs` from `start` (services report as things happen).
fn event(
    n: usize,
    total: usize,
    users: &[UserId],
    start: chrono::DateTime<Utc>,
    spread_secs: i64,
) -> UsageEventInput {
    let mix = n.wrapping_mul(2_654_435_761) % 1_000_003;
    let user =
        if mix.is_multiple_of(4) { mix % (users.len() / 10).max(1) } else { mix % users.len() };
    let model = MODELS[[0, 0, 0, 1, 1, 2, 2, 3, 4][mix % 9]];
    let offset = (n as f64 / total.max(1) as f64 * spread_secs as f64) as i64;
    let at = start + chrono::Duration::seconds(offset);
    UsageEventInput {
        event_id: format!("evt-{n}"),
        user_id: users[user].to_string(),
        conversation_id: format!("conv-{user}-{}", n / 20 / users.len()),
        model: model.0.to_owned(),
        provider: model.1.to_owned(),
        input_tokens: 200 + (mix % 3000) as i64,
        output_tokens: 50 + (mix % 800) as i64,
        occurred_at: at.to_rfc3339(),
    }
}

async fn measure<F, Fut>(name: &str, rounds: usize, mut f: F)
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut latencies = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let t = Instant::now();
        f(round).await;
        latencies.push(t.elapsed());
    }
    latencies.sort();
    println!(
        "{name:<44} p50 {:>7.2} ms  p95 {:>7.2} ms  max {:>7.2} ms",
        common::ms(common::percentile(&latencies, 50.0)),
        common::ms(common::percentile(&latencies, 95.0)),
        common::ms(*latencies.last().unwrap_or(&Duration::ZERO)),
    );
}

#[tokio::main]
async fn main() {
    let events = common::env("EVENTS", 10_000_000);
    let user_count = common::env("USERS", 10_000);
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    let _database = common::database(&mut config).await;
    let wiring = secureai_app::wire(&config).await.unwrap();
    println!("database: {:?}", wiring.store.backend());
    let admin = common::admin(&wiring).await;
    let users = seed_users(&wiring.store, user_count).await;
    let service = wiring.service.clone();
    let ctx = secureai_domain::RequestContext::default();
    let issued =
        service.service_tokens.create_service_token(&admin, "bench", None, &ctx).await.unwrap();
    let caller = service
        .service_tokens
        .authenticate_service(&issued.secret, TokenScope::Usage)
        .await
        .unwrap();

    let spread = 89 * 86_400;
    let start = Utc::now() - chrono::Duration::seconds(spread + 60);
    let t = Instant::now();
    let mut batch_times = Vec::new();
    let mut accepted = 0;
    for first in (0..events).step_by(1000) {
        let batch: Vec<UsageEventInput> = (first..(first + 1000).min(events))
            .map(|n| event(n, events, &users, start, spread))
            .collect();
        let b = Instant::now();
        let report = service.analytics.ingest_usage(&caller, batch).await.unwrap();
        batch_times.push(b.elapsed());
        accepted += report.accepted;
        if (first / 1000) % 1000 == 999 {
            println!(
                "  {} events in {:.0} s ({:.0} events/s so far)",
                first + 1000,
                t.elapsed().as_secs_f64(),
                (first + 1000) as f64 / t.elapsed().as_secs_f64()
            );
        }
    }
    let elapsed = t.elapsed().as_secs_f64();
    assert_eq!(accepted, events);
    batch_times.sort();
    println!(
        "ingested {events} events from {user_count} users in {elapsed:.1} s: {:.0} events/s \
         (batch of 1,000: p50 {:.1} ms, p95 {:.1} ms)",
        events as f64 / elapsed,
        common::ms(common::percentile(&batch_times, 50.0)),
        common::ms(common::percentile(&batch_times, 95.0)),
    );
    // The same batch again: every event a duplicate.
    let again: Vec<UsageEventInput> =
        (0..1000).map(|n| event(n, events, &users, start, spread)).collect();
    let t = Instant::now();
    let report = service.analytics.ingest_usage(&caller, again).await.unwrap();
    println!(
        "a batch of 1,000 already recorded: {:.1} ms, {} duplicates",
        common::ms(t.elapsed()),
        report.duplicates
    );
    // Late events: 1,000 new events that happened 30 days ago (each user's
    // running totals since then are rewritten).
    let late_start = Utc::now() - chrono::Duration::days(30);
    let late: Vec<UsageEventInput> = (0..1000)
        .map(|n| {
            let mut e = event(n, 1000, &users, late_start, 3600);
            e.event_id = format!("late-{n}");
            e
        })
        .collect();
    let t = Instant::now();
    let report = service.analytics.ingest_usage(&caller, late).await.unwrap();
    assert_eq!(report.accepted, 1000);
    println!("a batch of 1,000 events from 30 days ago: {:.1} ms", common::ms(t.elapsed()));

    let rounds = 100;
    let thirty = service.analytics.last_days(30);
    let ninety = service.analytics.last_days(90);
    measure("dashboard, last 30 days", rounds, |_| {
        let service = service.clone();
        let admin = admin.clone();
        async move {
            service.analytics.dashboard(&admin, thirty).await.unwrap();
        }
    })
    .await;
    measure("dashboard, last 90 days", rounds, |_| {
        let service = service.clone();
        let admin = admin.clone();
        async move {
            service.analytics.dashboard(&admin, ninety).await.unwrap();
        }
    })
    .await;
    measure("top users by tokens and conversations, 30 days", rounds, |_| {
        let store = wiring.store.clone();
        async move {
            use secureai_domain::analytics::ports::UsageRepository;
            store.top_users(thirty, 10).await.unwrap();
        }
    })
    .await;
    measure("active users per week, last 90 days", rounds, |_| {
        let service = service.clone();
        let admin = admin.clone();
        async move {
            service.analytics.active_users(&admin, Period::Week, ninety).await.unwrap();
        }
    })
    .await;
    measure("a user's activity (profile)", rounds, |round| {
        let service = service.clone();
        let admin = admin.clone();
        let user = users[round * 97 % users.len()];
        async move {
            service.analytics.user_activity(&admin, user).await.unwrap();
        }
    })
    .await;
    let dashboard = service.analytics.dashboard(&admin, ninety).await.unwrap();
    println!(
        "last 90 days: {} events, {} tokens, {} conversations, {} models, {} active today",
        dashboard.total.events,
        dashboard.total.tokens(),
        dashboard.total.conversations,
        dashboard.by_model.len(),
        dashboard.daily_active.last().map_or(0, |p| p.users)
    );
}
