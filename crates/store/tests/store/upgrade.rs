//! Upgrading a database of the previous release: migrate an empty database
//! to release 0.1's schema, fill it the way release 0.1 wrote its rows
//! (plain SQL, its columns only), apply the remaining migrations, and
//! check that the current code works with every kind of old row.

use chrono::{Duration, TimeZone, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use secrecy::SecretString;
use secureai_domain::mail::models::MailMessage;
use secureai_domain::mail::ports::OutboxRepository;
use secureai_domain::users::listing::ListUsersRequest;
use secureai_domain::users::ports::{UserFilter, UserQuery, UserRepository, UserSort};
use secureai_domain::{
    Clock, DisplayName, EmailAddress, PlainToken, Policy, RequestContext, UserStatus,
};
use secureai_migrations::{Migrator, MigratorTrait, RELEASES};
use secureai_store::test_databases::{Backend, TestDatabase};
use secureai_store::{SqlStore, StoreOptions, search_text};

use crate::support::service_over;

const ADMIN_ID: &str = "00000000-0000-4000-8000-000000000001";
const INVITED_ID: &str = "00000000-0000-4000-8000-000000000002";
const MAIL_ID: &str = "00000000-0000-4000-8000-000000000003";
const INVITATION_TOKEN: &str = "release-0.1-invitation-token";

/// Rows as release 0.1 wrote them: an active admin (password
/// `old admin passphrase` under the test hasher), an invited user with a
/// pending invitation and its queued email, their search terms and counts,
/// a seat limit and an audit event.
fn release_0_1_rows(invitation_hash: &str, created: i64, expires: i64) -> Vec<String> {
    vec![
        format!(
            "INSERT INTO users (id, email, email_key, name, name_key, role, status, sign_in, \
             department, password_hash, created_at, activated_at, deactivated_at, last_login_at) \
             VALUES ('{ADMIN_ID}', 'Root@Example.com', 'root@example.com', 'Root Admin', \
             'root admin', 'admin', 'active', 'password', 'IT', '$fake$old admin passphrase', \
             {created}, {created}, NULL, {created} + 7)"
        ),
        format!(
            "INSERT INTO users (id, email, email_key, name, name_key, role, status, sign_in, \
             department, password_hash, created_at, activated_at, deactivated_at, last_login_at) \
             VALUES ('{INVITED_ID}', 'ada@example.com', 'ada@example.com', 'Ada Lovelace', \
             'ada lovelace', 'user', 'invited', 'password', NULL, NULL, {created}, NULL, NULL, 0)"
        ),
        format!(
            "INSERT INTO invitations (id, user_id, token_hash, created_at, expires_at, state, \
             state_at) VALUES ('00000000-0000-4000-8000-000000000004', '{INVITED_ID}', \
             '{invitation_hash}', {created}, {expires}, 'pending', NULL)"
        ),
        format!(
            "INSERT INTO outbox (id, kind, recipient, recipient_name, payload, created_at, \
             status, attempts, next_attempt_at, leased_until, sent_at, last_error) VALUES \
             ('{MAIL_ID}', 'invitation', 'ada@example.com', 'Ada Lovelace', \
             '{{\"kind\":\"invitation\",\"token\":\"{INVITATION_TOKEN}\",\"expires_at\":{expires},\
             \"invited_by\":\"Root Admin\"}}', {created}, 'queued', 1, {created}, NULL, NULL, \
             'temporary delivery failure: connection refused')"
        ),
        "INSERT INTO user_search_terms (term, user_id) VALUES \
         ('admin', '00000000-0000-4000-8000-000000000001'), \
         ('example.com', '00000000-0000-4000-8000-000000000001'), \
         ('root', '00000000-0000-4000-8000-000000000001'), \
         ('root admin', '00000000-0000-4000-8000-000000000001'), \
         ('root@example.com', '00000000-0000-4000-8000-000000000001'), \
         ('ada', '00000000-0000-4000-8000-000000000002'), \
         ('ada lovelace', '00000000-0000-4000-8000-000000000002'), \
         ('ada@example.com', '00000000-0000-4000-8000-000000000002'), \
         ('example.com', '00000000-0000-4000-8000-000000000002'), \
         ('lovelace', '00000000-0000-4000-8000-000000000002')"
            .to_owned(),
        "UPDATE user_counts SET n = 1 WHERE role = 'admin' AND status = 'active'".to_owned(),
        "UPDATE user_counts SET n = 1 WHERE role = 'user' AND status = 'invited'".to_owned(),
        "INSERT INTO settings (\"key\", value) VALUES ('seat_limit', '10')".to_owned(),
        format!(
            "INSERT INTO audit_events (id, at, actor_kind, actor_id, actor_email, action, \
             target_id, target_email, changes, ip, user_agent) VALUES \
             ('00000000-0000-4000-8000-000000000005', {created}, 'user', '{ADMIN_ID}', \
             'root@example.com', 'user.invited', '{INVITED_ID}', 'ada@example.com', '[]', \
             '127.0.0.1', 'curl/8')"
        ),
    ]
}

async fn execute(db: &DatabaseConnection, sql: &str) {
    let sql = if db.get_database_backend() == sea_orm::DbBackend::MySql {
        sql.replace("\"key\"", "`key`")
    } else {
        sql.to_owned()
    };
    db.execute_unprepared(&sql).await.unwrap_or_else(|e| panic!("{e}: {sql}"));
}

async fn a_release_0_1_database_upgrades_and_keeps_working(backend: Backend) {
    let Some(database) = TestDatabase::create_or_skip(backend).await else { return };
    let store = SqlStore::connect(&database.url, &StoreOptions::default()).await.unwrap();
    Migrator::up(store.connection(), Some(RELEASE_0_1)).await.unwrap();
    upgrades_from_release_0_1(store, &database.url).await;
}

/// Migrations of release 0.1.
const RELEASE_0_1: u32 = RELEASES[RELEASES.len() - 2].1;

/// Every migration after release 0.1's can be undone (`sea-orm-cli migrate
/// down`, a developer's or an operator's step back by hand): the schema is
/// then release 0.1's exactly (tables, columns, indexes), and upgrades
/// again as a release 0.1 database does, old rows and all.
async fn every_later_migration_goes_down_and_up_again(backend: Backend) {
    let Some(database) = TestDatabase::create_or_skip(backend).await else { return };
    let store = SqlStore::connect(&database.url, &StoreOptions::default()).await.unwrap();
    let db = store.connection();
    Migrator::up(db, Some(RELEASE_0_1)).await.unwrap();
    let release_0_1 = schema(db).await;
    store.migrate().await.unwrap();
    let latest = schema(db).await;
    assert_ne!(latest, release_0_1);
    let later = Migrator::migrations().len() as u32 - RELEASE_0_1;
    Migrator::down(db, Some(later)).await.unwrap();
    assert_eq!(schema(db).await, release_0_1);
    let applied = store.migration_status().await.unwrap();
    assert_eq!(applied.iter().filter(|(_, applied)| *applied).count(), RELEASE_0_1 as usize);
    upgrades_from_release_0_1(store, &database.url).await;
}

/// The schema as the database reports it: each table's columns (name and
/// type) and indexes (name), sorted.
async fn schema(db: &DatabaseConnection) -> Vec<String> {
    let queries: &[&str] = match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => &[
            "SELECT m.name || '.' || p.name || ' ' || p.type FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
            "SELECT tbl_name || ' index ' || name FROM sqlite_master WHERE type = 'index'",
        ],
        sea_orm::DbBackend::Postgres => &[
            "SELECT table_name || '.' || column_name || ' ' || data_type \
             FROM information_schema.columns WHERE table_schema = 'public'",
            "SELECT tablename || ' index ' || indexname FROM pg_indexes WHERE schemaname = 'public'",
        ],
        _ => &[
            "SELECT CONCAT(table_name, '.', column_name, ' ', column_type) \
             FROM information_schema.columns WHERE table_schema = DATABASE()",
            "SELECT DISTINCT CONCAT(table_name, ' index ', index_name) \
             FROM information_schema.statistics WHERE table_schema = DATABASE()",
        ],
    };
    let mut schema = Vec::new();
    for sql in queries {
        schema.extend(strings(db, sql).await);
    }
    schema.sort();
    schema
}

/// Fills `store`, at release 0.1's schema, as release 0.1 did, migrates it
/// and checks that the current code works with every kind of old row.
async fn upgrades_from_release_0_1(store: SqlStore, url: &str) {
    assert!(store.migration_status().await.unwrap().iter().any(|(_, applied)| !applied));

    let created = Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).unwrap().timestamp_micros();
    let expires = Utc.with_ymd_and_hms(2026, 1, 8, 9, 0, 0).unwrap().timestamp_micros();
    let hash = PlainToken::presented(INVITATION_TOKEN).hash().to_hex();
    for sql in release_0_1_rows(&hash, created, expires) {
        execute(store.connection(), &sql).await;
    }

    store.migrate().await.unwrap();
    assert!(store.migration_status().await.unwrap().iter().all(|(_, applied)| *applied));
    search_terms_became_search_texts(&store, url).await;
    search_terms_carry_their_users_creation_times(&store).await;

    let (service, clock) = service_over(&store, Policy::default());
    let ctx = RequestContext::default();
    // The old admin signs in with the old password hash; as admins need a
    // second factor now, the session can only set one up, and then works.
    let signed_in = service
        .sessions
        .sign_in("root@example.com", &SecretString::from("old admin passphrase"), &ctx)
        .await
        .unwrap();
    let admin = crate::use_cases::enrol(&service, &signed_in).await;
    // Old rows are found by search, counted, and the seat limit holds.
    let page = service
        .users
        .list_users(&admin, &ListUsersRequest { q: Some("lovelace".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.total, 1);
    // Old rows are found by search with a filter and sorted.
    let invited = ListUsersRequest {
        q: Some("example".into()),
        status: Some("invited".into()),
        sort: Some("-name".into()),
        ..Default::default()
    };
    let page = service.users.list_users(&admin, &invited).await.unwrap();
    let emails: Vec<&str> = page.items.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(emails, ["ada@example.com"]);
    let seats = service.users.seat_usage(&admin).await.unwrap();
    assert_eq!((seats.used, seats.limit), (2, Some(10)));
    // The old queued message is delivered with its link; it names no user.
    let claimed = store
        .claim_due(clock.now() + Duration::days(1), clock.now() + Duration::days(2), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].mail.user_id, None);
    assert!(matches!(
        &claimed[0].mail.message,
        MailMessage::Invitation { token, .. } if token.expose() == INVITATION_TOKEN
    ));
    // The old invitation activates the old invited user.
    service
        .invitations
        .accept_invitation(
            &PlainToken::presented(INVITATION_TOKEN),
            SecretString::from("ada's long new password"),
            &ctx,
        )
        .await
        .unwrap();
    let ada = service.users.get_user(&admin, INVITED_ID.parse().unwrap()).await.unwrap();
    assert_eq!(ada.status(), UserStatus::Active);
    let active = ListUsersRequest { status: Some("active".into()), ..invited };
    let page = service.users.list_users(&admin, &active).await.unwrap();
    let emails: Vec<&str> = page.items.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(emails, ["Root@Example.com", "ada@example.com"]);
    // The old audit event reads back beside the new ones.
    let audit = service.audit.audit_log(&admin, &Default::default()).await.unwrap();
    assert!(audit.items.iter().any(|e| e.action.as_str() == "user.invited"
        && e.target_email.as_deref() == Some("ada@example.com")));
    let _ = store.close().await;
}

/// The first column of every row of `sql`, as text.
async fn strings(db: &DatabaseConnection, sql: &str) -> Vec<String> {
    let statement = Statement::from_string(db.get_database_backend(), sql);
    let rows = db.query_all_raw(statement).await.unwrap();
    rows.iter().map(|r| r.try_get_by_index(0).unwrap()).collect()
}

/// Migration 7 wrote each user's terms into the user's search text, exactly
/// as the code writes it for new users, and dropped whole-name terms; a
/// broad search (walking users, testing the text) finds the old users.
async fn search_terms_became_search_texts(store: &SqlStore, url: &str) {
    let db = store.connection();
    let texts = strings(db, "SELECT search_text FROM users ORDER BY id").await;
    let text = |email: &str, name: &str| {
        search_text(&EmailAddress::parse(email).unwrap(), &DisplayName::parse(name).unwrap())
    };
    assert_eq!(
        texts,
        [text("Root@Example.com", "Root Admin"), text("ada@example.com", "Ada Lovelace")]
    );
    assert_eq!(texts[1], " ada ada@example.com example.com lovelace");
    let terms = strings(db, "SELECT term FROM user_search_terms WHERE term LIKE '% %'").await;
    assert!(terms.is_empty(), "whole-name terms remain");

    let walking = SqlStore::connect(
        url,
        &StoreOptions { selective_search: 1, ordered_search: 1, ..Default::default() },
    )
    .await
    .unwrap();
    for (q, expected) in [("lovel", vec![INVITED_ID]), ("example.c", vec![INVITED_ID, ADMIN_ID])] {
        let query = UserQuery {
            filter: UserFilter { words: vec![q.to_owned()], ..Default::default() },
            sort: UserSort::Email,
            descending: false,
            limit: 10,
            after: None,
        };
        let page = UserRepository::list(&walking, &query, 100).await.unwrap();
        let ids: Vec<String> = page.items.iter().map(|u| u.id.to_string()).collect();
        assert_eq!(ids, expected, "broad search for {q:?}");
    }
    let _ = walking.close().await;
}

/// Migration 8 gave every search term its user's creation time, and
/// migration 22 its name and email keys; a search reads its page from the
/// terms in those orders (and by last sign-in from the users).
async fn search_terms_carry_their_users_creation_times(store: &SqlStore) {
    let db = store.connection();
    let count = |sql: &'static str| async move {
        let statement = Statement::from_string(db.get_database_backend(), sql);
        let row = db.query_one_raw(statement).await.unwrap().unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    };
    let terms = count("SELECT COUNT(*) FROM user_search_terms").await;
    let carried = count(
        "SELECT COUNT(*) FROM user_search_terms t JOIN users u ON u.id = t.user_id \
         WHERE t.created_at = u.created_at",
    )
    .await;
    assert_eq!((terms, carried), (8, 8));
    let keys = count(
        "SELECT COUNT(*) FROM user_search_terms t JOIN users u ON u.id = t.user_id \
         WHERE t.name_key = u.name_key AND t.email_key = u.email_key",
    )
    .await;
    assert_eq!(keys, 8, "every term carries its user's name and email keys");
    for (sort, descending, first) in [
        (UserSort::Name, false, INVITED_ID),
        (UserSort::Email, true, ADMIN_ID),
        (UserSort::LastSignIn, true, ADMIN_ID),
        (UserSort::LastSignIn, false, INVITED_ID),
    ] {
        let query = UserQuery {
            filter: UserFilter { words: vec!["example".to_owned()], ..Default::default() },
            sort,
            descending,
            limit: 1,
            after: None,
        };
        let page = UserRepository::list(store, &query, 100).await.unwrap();
        let ids: Vec<String> = page.items.iter().map(|u| u.id.to_string()).collect();
        assert_eq!(ids, [first], "{sort:?}, descending: {descending}");
    }
    let query = UserQuery {
        filter: UserFilter { words: vec!["example".to_owned()], ..Default::default() },
        sort: UserSort::Created,
        descending: true,
        limit: 1,
        after: None,
    };
    let page = UserRepository::list(store, &query, 100).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.total, secureai_domain::users::ports::UserTotal { count: 2, exact: true });
}

/// Usage aggregates written before running totals (migration 5's
/// `usage_user_days`, active users without counts) are carried over:
/// totals through each day, each user's last totals, the counts.
async fn usage_aggregates_of_migration_5_carry_over(backend: Backend) {
    let Some(database) = TestDatabase::create_or_skip(backend).await else { return };
    let store = SqlStore::connect(&database.url, &StoreOptions::default()).await.unwrap();
    Migrator::up(store.connection(), Some(5)).await.unwrap();
    let db = store.connection();
    execute(db, &release_0_1_rows("h", 1, 2)[0]).await;
    execute(db, &release_0_1_rows("h", 1, 2)[1]).await;
    // Admin: days 100 and 102; Ada: day 101.
    execute(
        db,
        &format!(
            "INSERT INTO usage_user_days (day, user_id, events, input_tokens, output_tokens, \
             conversations) VALUES (100, '{ADMIN_ID}', 2, 200, 20, 1), \
             (102, '{ADMIN_ID}', 3, 300, 30, 2), (101, '{INVITED_ID}', 5, 50, 5, 1)"
        ),
    )
    .await;
    execute(
        db,
        &format!(
            "INSERT INTO active_users (period, start_day, user_id) VALUES \
             ('day', 100, '{ADMIN_ID}'), ('day', 101, '{INVITED_ID}'), \
             ('day', 102, '{ADMIN_ID}'), ('week', 95, '{ADMIN_ID}'), ('week', 95, '{INVITED_ID}')"
        ),
    )
    .await;

    store.migrate().await.unwrap();

    use secureai_domain::analytics::models::{DayRange, Period};
    use secureai_domain::analytics::ports::UsageRepository;
    let day = |n: i64| chrono::NaiveDate::default() + Duration::days(n);
    let whole = DayRange { from: day(100), to: day(102) };
    let top = store.top_users(whole, 10).await.unwrap();
    let tokens: Vec<(String, u64, u64)> = top
        .by_tokens
        .iter()
        .map(|u| (u.user_id.to_string(), u.usage.events, u.usage.tokens()))
        .collect();
    assert_eq!(tokens, [(ADMIN_ID.to_owned(), 5, 550), (INVITED_ID.to_owned(), 5, 55)]);
    // The last day alone: the admin's day 102 (their totals minus day 100).
    let last = store.top_users(DayRange { from: day(102), to: day(102) }, 10).await.unwrap();
    let conversations: Vec<(String, u64)> = last
        .by_conversations
        .iter()
        .map(|u| (u.user_id.to_string(), u.usage.conversations))
        .collect();
    assert_eq!(conversations, [(ADMIN_ID.to_owned(), 2)]);
    // A range ending before the admin's last day: day 100 only.
    let first = store.top_users(DayRange { from: day(99), to: day(100) }, 10).await.unwrap();
    assert_eq!(first.by_tokens.len(), 1);
    assert_eq!(first.by_tokens[0].usage.tokens(), 220);
    let daily: Vec<u64> =
        store.active_users(Period::Day, whole).await.unwrap().iter().map(|p| p.users).collect();
    assert_eq!(daily, [1, 1, 1]);
    let weekly = store.active_users(Period::Week, whole).await.unwrap();
    assert_eq!(weekly.iter().map(|p| p.users).collect::<Vec<_>>(), [2]);
    let _ = store.close().await;
}

mod sqlite {
    #[tokio::test]
    async fn a_release_0_1_database_upgrades_and_keeps_working() {
        super::a_release_0_1_database_upgrades_and_keeps_working(super::Backend::Sqlite).await;
    }
    #[tokio::test]
    async fn usage_aggregates_of_migration_5_carry_over() {
        super::usage_aggregates_of_migration_5_carry_over(super::Backend::Sqlite).await;
    }
    #[tokio::test]
    async fn every_later_migration_goes_down_and_up_again() {
        super::every_later_migration_goes_down_and_up_again(super::Backend::Sqlite).await;
    }
}
mod postgres {
    #[tokio::test]
    async fn a_release_0_1_database_upgrades_and_keeps_working() {
        super::a_release_0_1_database_upgrades_and_keeps_working(super::Backend::Postgres).await;
    }
    #[tokio::test]
    async fn usage_aggregates_of_migration_5_carry_over() {
        super::usage_aggregates_of_migration_5_carry_over(super::Backend::Postgres).await;
    }
    #[tokio::test]
    async fn every_later_migration_goes_down_and_up_again() {
        super::every_later_migration_goes_down_and_up_again(super::Backend::Postgres).await;
    }
}
mod mysql {
    #[tokio::test]
    async fn a_release_0_1_database_upgrades_and_keeps_working() {
        super::a_release_0_1_database_upgrades_and_keeps_working(super::Backend::MySql).await;
    }
    #[tokio::test]
    async fn usage_aggregates_of_migration_5_carry_over() {
        super::usage_aggregates_of_migration_5_carry_over(super::Backend::MySql).await;
    }
    #[tokio::test]
    async fn every_later_migration_goes_down_and_up_again() {
        super::every_later_migration_goes_down_and_up_again(super::Backend::MySql).await;
    }
}
