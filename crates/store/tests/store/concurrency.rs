//! Invariants that must hold when requests race (rules 3, 4 and single-use
//! tokens), on a real database.

use chrono::Duration;
use futures::future::join_all;
use secrecy::SecretString;
use secureai_domain::mail::ports::OutboxRepository;
use secureai_domain::setup::errors::SetupError;
use secureai_domain::testing::FakeClock;
use secureai_domain::users::errors::InviteUserError;
use secureai_domain::{Clock, Policy, RequestContext};

use crate::support::TestDb;
use crate::use_cases::{count, first_admin, invite};

/// Rounds of each race: `SECUREAI_RACE_ROUNDS` (the test script asks for
/// 500), else a quick 20.
pub fn rounds() -> usize {
    std::env::var("SECUREAI_RACE_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(20)
}

/// Rule 4 under concurrency: with one seat left, 50 invitations at once
/// create exactly one user, round after round.
pub async fn concurrent_invitations_never_overshoot_the_seat_limit(db: TestDb) {
    let (service, _clock) = db.service(Policy::default());
    let admin = first_admin(&service).await;
    let ctx = RequestContext::default();

    for round in 0..rounds() {
        let used = service.users.seat_usage(&admin).await.unwrap().used;
        let limit = u32::try_from(used).unwrap() + 1;
        service.users.set_seat_limit(&admin, Some(limit), &ctx).await.unwrap();
        let attempts = (0..50).map(|i| {
            let service = service.clone();
            let admin = admin.clone();
            tokio::spawn(async move {
                service
                    .invitations
                    .invite_user(
                        &admin,
                        &invite(&format!("racer{round}-{i}@example.com")),
                        &RequestContext::default(),
                    )
                    .await
            })
        });
        let outcomes: Vec<_> = join_all(attempts).await.into_iter().map(Result::unwrap).collect();

        let created = outcomes.iter().filter(|o| o.is_ok()).count();
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, Err(InviteUserError::SeatLimitReached { .. })))
            .count();
        assert_eq!(
            (created, refused),
            (1, 49),
            "round {round}: {:?}",
            outcomes.iter().find(|o| o.is_err())
        );
    }
    let users = i64::try_from(rounds()).unwrap() + 1;
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users").await, users);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM outbox").await, users - 1);
}

pub async fn an_invitation_accepted_twice_at_once_activates_once(db: TestDb) {
    let (service, _clock) = db.service(Policy::default());
    let admin = first_admin(&service).await;
    for round in 0..rounds() {
        let invited = service
            .invitations
            .invite_user(
                &admin,
                &invite(&format!("twice{round}@example.com")),
                &RequestContext::default(),
            )
            .await
            .unwrap();
        let tries = (0..2).map(|i| {
            let service = service.clone();
            let token = invited.token.clone();
            tokio::spawn(async move {
                service
                    .invitations
                    .accept_invitation(
                        &token,
                        SecretString::from(format!("password number {i}")),
                        &RequestContext::default(),
                    )
                    .await
            })
        });
        let outcomes: Vec<_> = join_all(tries).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "round {round}");
    }
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM audit_events WHERE action = 'invitation.accepted'").await,
        i64::try_from(rounds()).unwrap()
    );
}

pub async fn two_setup_completions_at_once_make_one_admin(db: TestDb) {
    let (service, _clock) = db.service(Policy::default());
    let token = service.setup.prepare_setup().await.unwrap().unwrap();

    let tries = (0..2).map(|i| {
        let service = service.clone();
        let token = token.clone();
        tokio::spawn(async move {
            service
                .setup
                .complete_setup(
                    &token,
                    &format!("first{i}@example.com"),
                    "First",
                    SecretString::from("a long admin passphrase".to_owned()),
                    &RequestContext::default(),
                )
                .await
        })
    });
    let outcomes: Vec<_> = join_all(tries).await.into_iter().map(Result::unwrap).collect();

    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1);
    assert!(outcomes.iter().any(|o| matches!(o, Err(SetupError::InvalidLink))));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM users WHERE role = 'admin'").await, 1);
}

pub async fn two_workers_never_claim_the_same_message(db: TestDb) {
    let (service, _clock) = db.service(Policy::default());
    let admin = first_admin(&service).await;
    for i in 0..30 {
        service
            .invitations
            .invite_user(
                &admin,
                &invite(&format!("mail{i}@example.com")),
                &RequestContext::default(),
            )
            .await
            .unwrap();
    }
    let now = FakeClock::new().now();

    let workers = (0..3).map(|_| {
        let store = db.store.clone();
        tokio::spawn(
            async move { store.claim_due(now, now + Duration::minutes(5), 100).await.unwrap() },
        )
    });
    let claimed: Vec<_> = join_all(workers).await.into_iter().flat_map(Result::unwrap).collect();

    let mut ids: Vec<_> = claimed.iter().map(|q| q.mail.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30);
    assert_eq!(claimed.len(), 30, "a message was claimed twice");
    // Leased messages are not claimed again before the lease ends...
    assert!(db.store.claim_due(now, now + Duration::minutes(5), 100).await.unwrap().is_empty());
    // ...and are claimable once it has.
    let later = now + Duration::minutes(6);
    assert_eq!(
        db.store.claim_due(later, later + Duration::minutes(5), 100).await.unwrap().len(),
        30
    );
}

pub async fn a_sent_message_is_not_sent_again_and_loses_its_link(db: TestDb) {
    let (service, _clock) = db.service(Policy::default());
    let admin = first_admin(&service).await;
    service
        .invitations
        .invite_user(&admin, &invite("once@example.com"), &RequestContext::default())
        .await
        .unwrap();
    let now = FakeClock::new().now();
    let claimed = db.store.claim_due(now, now + Duration::minutes(5), 10).await.unwrap();

    db.store.mark_sent(claimed[0].mail.id, now).await.unwrap();

    let later = now + Duration::hours(1);
    assert!(db.store.claim_due(later, later + Duration::minutes(5), 10).await.unwrap().is_empty());
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM outbox WHERE status = 'sent' AND payload = '{}'").await,
        1
    );
}

/// Rule 3 under concurrency: two admins demoting (or deactivating) each
/// other at the same instant leave one admin, round after round.
pub async fn two_admins_removing_each_other_at_once_always_leave_one(db: TestDb) {
    use secureai_domain::users::errors::UpdateUserError;
    use secureai_domain::users::lifecycle::UserUpdate;

    let (service, _clock) = db.service(Policy::default());
    let root = first_admin(&service).await;
    let ctx = RequestContext::default();
    let other = service
        .invitations
        .invite_user(
            &root,
            &secureai_domain::invitations::service::InviteRequest {
                role: "admin".into(),
                ..invite("second@example.com")
            },
            &ctx,
        )
        .await
        .unwrap();
    service
        .invitations
        .accept_invitation(
            &other.token,
            SecretString::from("second admin password".to_owned()),
            &ctx,
        )
        .await
        .unwrap();
    let second = service
        .sessions
        .authenticate(
            &service
                .sessions
                .sign_in(
                    "second@example.com",
                    &SecretString::from("second admin password".to_owned()),
                    &ctx,
                )
                .await
                .unwrap()
                .token,
        )
        .await
        .unwrap()
        .admin()
        .unwrap();
    let demote = UserUpdate { role: Some("user".into()), ..UserUpdate::default() };
    let deactivate = UserUpdate { active: Some(false), ..UserUpdate::default() };
    let restore =
        UserUpdate { role: Some("admin".into()), active: Some(true), ..UserUpdate::default() };
    let rounds = rounds();

    for round in 0..rounds {
        // Odd rounds: one demotes while the other deactivates.
        let second_update = if round % 2 == 0 { demote.clone() } else { deactivate.clone() };
        let a = {
            let (service, root, target) = (service.clone(), root.clone(), second.user().id);
            let update = demote.clone();
            tokio::spawn(async move {
                service.users.update_user(&root, target, &update, &RequestContext::default()).await
            })
        };
        let b = {
            let (service, second, target) = (service.clone(), second.clone(), root.user().id);
            tokio::spawn(async move {
                service
                    .users
                    .update_user(&second, target, &second_update, &RequestContext::default())
                    .await
            })
        };
        let (a, b) = (a.await.unwrap(), b.await.unwrap());

        let admins =
            count(&db, "SELECT COUNT(*) FROM users WHERE role = 'admin' AND status = 'active'")
                .await;
        assert_eq!(admins, 1, "round {round}: {a:?} / {b:?}");
        assert!(
            matches!(a, Err(UpdateUserError::LastAdmin))
                ^ matches!(b, Err(UpdateUserError::LastAdmin)),
            "round {round}: exactly one must be refused: {a:?} / {b:?}"
        );
        // Put both admins back for the next round, as whichever is still admin.
        let (survivor, target) =
            if a.is_ok() { (&root, second.user().id) } else { (&second, root.user().id) };
        service
            .users
            .update_user(survivor, target, &restore, &RequestContext::default())
            .await
            .unwrap();
        assert_eq!(
            count(&db, "SELECT COUNT(*) FROM users WHERE role = 'admin' AND status = 'active'")
                .await,
            2
        );
    }
}

pub async fn concurrent_sign_in_attempts_are_reserved_one_at_a_time(db: TestDb) {
    use secureai_domain::sessions::throttle::{AttemptKey, ThrottlePolicy, ThrottleRepository};
    let at = FakeClock::new().now();
    let policy = ThrottlePolicy::default();
    let keys = [
        AttemptKey { key: "account:victim@example.com".into(), free: 5 },
        AttemptKey { key: "ip:203.0.113.1".into(), free: 20 },
    ];

    // 40 attempts at once: exactly the 5 free ones are admitted, and each
    // of them counts under both keys.
    let attempts = (0..40).map(|_| {
        let (store, keys, policy) = (db.store.clone(), keys.clone(), policy.clone());
        tokio::spawn(async move { store.reserve(&keys, at, &policy).await })
    });
    let outcomes: Vec<_> =
        join_all(attempts).await.into_iter().map(|o| o.unwrap().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| o.is_none()).count(), 5);
    assert!(outcomes.iter().flatten().all(|until| *until == at + Duration::seconds(2)));
    assert_eq!(db.store.failures("account:victim@example.com").await.unwrap().unwrap().failures, 5);
    assert_eq!(db.store.failures("ip:203.0.113.1").await.unwrap().unwrap().failures, 5);

    // After the delay one more is admitted; after the window the count
    // starts over.
    let later = at + Duration::seconds(2);
    assert_eq!(db.store.reserve(&keys, later, &policy).await.unwrap(), None);
    // The seventh waits twice as long.
    assert_eq!(
        db.store.reserve(&keys, later, &policy).await.unwrap(),
        Some(later + Duration::seconds(4))
    );
    let next_day = at + Duration::hours(13);
    assert_eq!(db.store.reserve(&keys[..1], next_day, &policy).await.unwrap(), None);
    assert_eq!(db.store.failures("account:victim@example.com").await.unwrap().unwrap().failures, 1);
    db.store.clear("account:victim@example.com").await.unwrap();
    assert_eq!(db.store.failures("account:victim@example.com").await.unwrap(), None);
    // A refused reservation leaves no row behind for a new key.
    let fresh = [
        AttemptKey { key: "account:fresh@example.com".into(), free: 5 },
        AttemptKey { key: "ip:203.0.113.1".into(), free: 0 },
    ];
    assert!(db.store.reserve(&fresh, later, &policy).await.unwrap().is_some());
    assert_eq!(db.store.failures("account:fresh@example.com").await.unwrap(), None);
}

/// A key spelled otherwise never lowers another key's count. On MySQL and
/// MariaDB the key column's collation folds accents and trailing spaces, so
/// `account:víctim@…` shares `account:victim@…`'s row: it must read that
/// row's count (and be refused with it), not start from none and write 1
/// over it — which let anyone reset a victim's count between guesses.
/// Elsewhere the spellings are keys of their own.
pub async fn a_key_spelled_otherwise_never_lowers_another_keys_count(db: TestDb) {
    use secureai_domain::sessions::throttle::{AttemptKey, ThrottlePolicy, ThrottleRepository};
    let at = FakeClock::new().now();
    let policy = ThrottlePolicy::default();
    let victim = "account:victim@example.com";
    let key = |key: &str| [AttemptKey { key: key.into(), free: 5 }];
    for _ in 0..5 {
        assert_eq!(db.store.reserve(&key(victim), at, &policy).await.unwrap(), None);
    }
    let accented = "account:v\u{ed}ctim@example.com";
    let padded = format!("{victim}{}", " ".repeat(300));
    for other in [accented, padded.as_str()] {
        let _ = db.store.reserve(&key(other), at, &policy).await.unwrap();
        assert_eq!(db.store.failures(victim).await.unwrap().unwrap().failures, 5, "{other:?}");
        assert_eq!(
            db.store.reserve(&key(victim), at, &policy).await.unwrap(),
            Some(at + Duration::seconds(2)),
            "the victim's next attempt after one as {other:?}"
        );
    }
}

/// A connection goes back to the pool clean (on PostgreSQL without a ping:
/// the vendored sqlx-core only finishes what its last user left): a
/// transaction dropped without commit is rolled back before the one
/// connection serves anyone else, a statement given up part-way leaves
/// nothing for the next one to read, and a connection whose server side is
/// gone is replaced.
pub async fn a_connection_comes_back_to_the_pool_clean(db: TestDb) {
    use sea_orm::{ConnectionTrait, Statement, TransactionTrait};
    let store = db
        .reopen(secureai_store::StoreOptions {
            max_connections: 1,
            synchronous_reads: false,
            ..Default::default()
        })
        .await;
    let conn = store.connection();
    let backend = conn.get_database_backend();
    let sql = |sql: &str| Statement::from_string(backend, sql.to_owned());
    let count = || async {
        let row = conn
            .query_one_raw(sql("SELECT COUNT(*) AS n FROM throttles WHERE failures = 7"))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    };
    // `key` is a reserved word on MySQL.
    let key = if backend == sea_orm::DbBackend::MySql { "`key`" } else { "\"key\"" };
    for round in 0..20 {
        {
            let txn = conn.begin().await.unwrap();
            txn.execute_raw(sql(&format!(
                "INSERT INTO throttles ({key}, failures, last_failure_at) \
                 VALUES ('dropped {round}', 7, 0)"
            )))
            .await
            .unwrap();
            // Dropped here, neither committed nor rolled back.
        }
        assert_eq!(count().await, 0, "round {round}: a dropped transaction's row is visible");
    }
    let txn = conn.begin().await.unwrap();
    txn.execute_raw(sql("UPDATE throttles SET failures = 7 WHERE 1 = 0")).await.unwrap();
    txn.commit().await.unwrap();

    // A statement given up part-way (its request went away), after one
    // poll, two, …: each a new statement, so that preparing it is part of
    // what is given up. The next statement on the one connection still
    // gets its own answer.
    // An integer literal is 32 bits on PostgreSQL.
    let big = |n: i64| match backend {
        sea_orm::DbBackend::Postgres => format!("CAST({n} AS BIGINT)"),
        _ => n.to_string(),
    };
    for polls in 1..40_i64 {
        let mut given_up = Box::pin(conn.query_all_raw(sql(&format!(
            "SELECT {} AS n FROM throttles UNION ALL SELECT {} AS n",
            big(polls),
            big(polls)
        ))));
        for _ in 0..polls {
            if futures::poll!(given_up.as_mut()).is_ready() {
                break;
            }
            tokio::task::yield_now().await;
        }
        drop(given_up);
        let next = conn.query_one_raw(sql(&format!("SELECT {} AS n", big(1_000 + polls)))).await;
        let next: i64 = next.unwrap().unwrap().try_get("", "n").unwrap();
        assert_eq!(next, 1_000 + polls, "after giving up at poll {polls}");
    }

    // The server ends the pool's one connection (as a restart or a proxy
    // would); the pool notices and opens another.
    if backend != sea_orm::DbBackend::Sqlite {
        let killer = db.store.connection();
        let kill = match backend {
            sea_orm::DbBackend::Postgres => {
                let pid = conn.query_one_raw(sql("SELECT pg_backend_pid() AS id")).await;
                let pid: i32 = pid.unwrap().unwrap().try_get("", "id").unwrap();
                format!("SELECT pg_terminate_backend({pid})")
            }
            _ => {
                let id = conn.query_one_raw(sql("SELECT CONNECTION_ID() AS id")).await;
                let id: u64 = id.unwrap().unwrap().try_get("", "id").unwrap();
                format!("KILL {id}")
            }
        };
        killer.execute_raw(sql(&kill)).await.unwrap();
        // The first use may fail (nothing tells a pooled connection its
        // server went away); the next one works on a new connection.
        let _ = conn.query_one_raw(sql("SELECT 1 AS n")).await;
        assert_eq!(count().await, 0);
    }
}

on_every_database!(
    a_connection_comes_back_to_the_pool_clean,
    two_admins_removing_each_other_at_once_always_leave_one,
    concurrent_sign_in_attempts_are_reserved_one_at_a_time,
    a_key_spelled_otherwise_never_lowers_another_keys_count,
    concurrent_invitations_never_overshoot_the_seat_limit,
    an_invitation_accepted_twice_at_once_activates_once,
    two_setup_completions_at_once_make_one_admin,
    two_workers_never_claim_the_same_message,
    a_sent_message_is_not_sent_again_and_loses_its_link,
);
