//! Listing and search at 1,000,000 users on SQLite: p95 latency of the
//! first page, a deep page, filtered pages and `q` searches, through the
//! domain's `list_users` (query + total count), as the API runs them.
//!
//! `cargo bench -p secureai-app --bench listing` (USERS=… to change the size;
//! CASES=a,b to time only the cases whose label contains `a` or `b`, e.g.
//! `CASES="by name,in a department"`)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait, Value};
use secureai_domain::users::listing::ListUsersRequest;
use secureai_domain::users::models::search_terms;
use secureai_domain::{DisplayName, EmailAddress};

// Names from syllables: 200 first names and 5,000 surnames, so that a
// surname is shared by ~200 of a million users and a first name by ~5,000 —
// closer to a real directory than a handful of famous names.
const START: [&str; 20] = [
    "Al", "Be", "Ca", "Da", "El", "Fa", "Ga", "Ha", "Il", "Jo", "Ka", "Le", "Ma", "No", "Ol", "Pa",
    "Ro", "Sa", "Ta", "Vi",
];
const MIDDLE: [&str; 10] = ["na", "ri", "lo", "ve", "mi", "da", "ra", "ne", "sa", "ti"];
const ENDING: [&str; 50] = [
    "son", "berg", "ton", "ley", "man", "ford", "well", "wood", "field", "stein", "ez", "ini",
    "ova", "sky", "ard", "ier", "ez", "ata", "oni", "ani", "ber", "ling", "dorf", "hill", "more",
    "worth", "by", "ham", "dale", "ridge", "shaw", "brook", "croft", "lund", "qvist", "strom",
    "sen", "ssen", "quez", "etti", "ucci", "escu", "idis", "opoulos", "akis", "oglu", "yan",
    "enko", "chuk", "ovic",
];

// Beside them, the skewed directory of issue 19: one first name held by
// 10 % of users ("Maria"), 100 surnames held by 1,000 users each
// ("Surname0000" … "Surname0099", 10 % in all) and one email domain held
// by 10 % ("globex.example"). Marias never work at Globex: two common
// words that never meet.
fn first_name(i: usize) -> String {
    if i % 10 == 4 {
        return "Maria".into();
    }
    format!("{}{}", START[i % 20], MIDDLE[(i / 20) % 10])
}

fn surname(i: usize) -> String {
    if i % 10 == 3 {
        return format!("Surname{:04}", (i / 10) % 100);
    }
    let k = (i / 200) % 5000;
    format!("{}{}{}", START[k % 20], MIDDLE[(k / 20) % 10], ENDING[(k / 200) % 25 + (k % 2) * 25])
}

fn domain(i: usize) -> String {
    if i % 10 == 5 { "globex.example".into() } else { format!("dept{}.example.com", i % 97) }
}

const DEPARTMENTS: [&str; 8] =
    ["Research", "Legal", "Sales", "Finance", "Support", "Marketing", "Engineering", "People"];

async fn seed(store: &secureai_store::SqlStore, users: usize) {
    let db = store.connection();
    let backend = db.get_database_backend();
    let txn = db.begin().await.unwrap();
    let start = 1_700_000_000_000_000_i64;
    let mut counts = std::collections::HashMap::<(&str, &str), i64>::new();
    for chunk_start in (0..users).step_by(500) {
        let chunk_end = (chunk_start + 500).min(users);
        let mut user_values: Vec<Value> = Vec::new();
        let mut term_values: Vec<Value> = Vec::new();
        let mut user_rows = 0;
        let mut term_rows = 0;
        for i in chunk_start..chunk_end {
            let first = first_name(i);
            let last = surname(i);
            let email = EmailAddress::parse(&format!(
                "{}.{}.{i}@{}",
                first.to_lowercase(),
                last.to_lowercase(),
                domain(i)
            ))
            .unwrap();
            let name = DisplayName::parse(&format!("{first} {last}")).unwrap();
            let id = format!("{:08x}-0000-4000-8000-{:012x}", i, i);
            let role = if i % 37 == 0 { "admin" } else { "user" };
            let status = match i % 10 {
                0 => "deactivated",
                1 => "invited",
                _ => "active",
            };
            *counts.entry((role, status)).or_default() += 1;
            let created = start + i as i64 * 1_000_000;
            let activated = (status != "invited").then_some(created + 1000);
            let deactivated = (status == "deactivated").then_some(created + 2000);
            let last_login =
                if status == "invited" { 0 } else { created + ((i * 7919) % 1_000_000) as i64 };
            user_values.extend([
                Value::from(id.clone()),
                email.as_str().into(),
                email.key().into(),
                name.to_string().into(),
                name.sort_key().into(),
                role.into(),
                status.into(),
                "password".into(),
                DEPARTMENTS[i % DEPARTMENTS.len()].into(),
                Value::from(Option::<String>::None),
                created.into(),
                activated.into(),
                deactivated.into(),
                last_login.into(),
                secureai_store::search_text(&email, &name).into(),
            ]);
            user_rows += 1;
            for term in search_terms(&email, &name) {
                term_values.extend([
                    Value::from(term),
                    Value::from(id.clone()),
                    created.into(),
                    name.sort_key().into(),
                    email.key().into(),
                ]);
                term_rows += 1;
            }
        }
        let placeholders = |cols: usize, rows: usize| {
            let mut n = 0;
            let mut next = || {
                n += 1;
                if backend == sea_orm::DbBackend::Postgres {
                    format!("${n}")
                } else {
                    "?".to_owned()
                }
            };
            (0..rows)
                .map(|_| format!("({})", (0..cols).map(|_| next()).collect::<Vec<_>>().join(",")))
                .collect::<Vec<_>>()
                .join(",")
        };
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO users (id,email,email_key,name,name_key,role,status,sign_in,department,\
                 password_hash,created_at,activated_at,deactivated_at,last_login_at,search_text) \
                 VALUES {}",
                placeholders(15, user_rows)
            ),
            user_values,
        ))
        .await
        .unwrap();
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO user_search_terms \
                 (term,user_id,created_at,name_key,email_key) VALUES {}",
                placeholders(5, term_rows)
            ),
            term_values,
        ))
        .await
        .unwrap();
    }
    for ((role, status), n) in counts {
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            if backend == sea_orm::DbBackend::Postgres {
                "UPDATE user_counts SET n = n + $1 WHERE role = $2 AND status = $3"
            } else {
                "UPDATE user_counts SET n = n + ? WHERE role = ? AND status = ?"
            },
            [n.into(), role.into(), status.into()],
        ))
        .await
        .unwrap();
    }
    txn.commit().await.unwrap();
    let analyze = match backend {
        sea_orm::DbBackend::MySql => "ANALYZE TABLE users, user_search_terms",
        _ => "ANALYZE",
    };
    db.execute_unprepared(analyze).await.unwrap();
}

/// Whether `CASES` (comma-separated parts of labels) asks for this case.
fn wanted(name: &str) -> bool {
    match std::env::var("CASES") {
        Ok(cases) if !cases.trim().is_empty() => {
            cases.split(',').map(str::trim).any(|part| !part.is_empty() && name.contains(part))
        }
        _ => true,
    }
}

async fn measure(
    name: &str,
    service: &secureai_domain::UserManagement,
    admin: &secureai_domain::access::Admin,
    requests: &[ListUsersRequest],
    rounds: usize,
) {
    if !wanted(name) {
        return;
    }
    let mut latencies = Vec::new();
    let mut total = 0;
    for round in 0..rounds {
        let request = &requests[round % requests.len()];
        let t = Instant::now();
        let page = service.users.list_users(admin, request).await.unwrap();
        latencies.push(t.elapsed());
        total = page.total;
    }
    latencies.sort();
    println!(
        "{name:<42} p50 {:>6.2} ms  p95 {:>6.2} ms  max {:>6.2} ms  (total {total})",
        common::ms(common::percentile(&latencies, 50.0)),
        common::ms(common::percentile(&latencies, 95.0)),
        common::ms(*latencies.last().unwrap_or(&Duration::ZERO)),
    );
}

#[tokio::main]
async fn main() {
    let users: usize =
        std::env::var("USERS").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path());
    // `BENCH_DATABASE_URL` keeps the seeded directory between runs (seeded
    // once, when it holds fewer users than asked); otherwise a throw-away
    // database (`BENCH_DB`) or SQLite file.
    let reused = std::env::var("BENCH_DATABASE_URL").ok();
    let _database = match &reused {
        Some(url) => {
            config.database_url = Some(url.clone());
            // The key the database was first opened with, kept beside it.
            config.secret_key_file = Some(std::env::temp_dir().join("secureai-listing-bench.key"));
            None
        }
        None => common::database(&mut config).await,
    };
    let wiring = secureai_app::wire(&config).await.unwrap();
    println!("database: {:?}", wiring.store.backend());
    if reused.is_some() {
        // The authenticator secret a previous run set up is gone with that
        // run: the admin sets up a new one, as after losing a phone.
        for table in ["mfa_recovery_codes", "mfa_totp"] {
            let forget = format!("DELETE FROM {table}");
            wiring.store.connection().execute_unprepared(&forget).await.unwrap();
        }
    }
    let admin = common::admin(&wiring).await;
    let held =
        wiring.service.users.list_users(&admin, &ListUsersRequest::default()).await.unwrap().total;
    if held < users as u64 {
        let t = Instant::now();
        seed(&wiring.store, users).await;
        println!("seeded {users} users in {:.1} s", t.elapsed().as_secs_f64());
        // What autovacuum does within a minute of a bulk import: statistics
        // for the planner and (PostgreSQL) a visibility map for index-only
        // scans.
        let analyze = match wiring.store.backend() {
            DbBackend::Postgres => "VACUUM ANALYZE",
            DbBackend::MySql => "ANALYZE TABLE users, user_search_terms",
            _ => "ANALYZE",
        };
        wiring.store.connection().execute_unprepared(analyze).await.unwrap();
    } else {
        println!("reusing {held} users");
    }
    let service = wiring.service.clone();

    // A cursor ~90 % of the way through, reached by paging (which also shows
    // that every page costs the same).
    let t = Instant::now();
    let mut cursor = None;
    let mut pages = 0;
    while wanted("deep page (~90 %)") && pages * 1000 < users * 9 / 10 {
        let request =
            ListUsersRequest { limit: Some(1000), cursor: cursor.clone(), ..Default::default() };
        cursor = service.users.list_users(&admin, &request).await.unwrap().next_cursor;
        pages += 1;
    }
    println!(
        "paged through {} users, {pages} pages of 1000, in {:.1} s",
        pages * 1000,
        t.elapsed().as_secs_f64()
    );
    // The 41st page of invited admins (1 in 370 users), reached by cursor.
    let invited_admins = |cursor: Option<String>| ListUsersRequest {
        role: Some("admin".into()),
        status: Some("invited".into()),
        limit: Some(50),
        cursor,
        ..Default::default()
    };
    let mut admin_cursor = None;
    for _ in 0..if wanted("role=admin&status=invited, 41st page") { 40 } else { 0 } {
        admin_cursor = service
            .users
            .list_users(&admin, &invited_admins(admin_cursor))
            .await
            .unwrap()
            .next_cursor;
    }

    let rounds = 300;
    let page = |f: fn(&mut ListUsersRequest)| {
        let mut request = ListUsersRequest { limit: Some(50), ..Default::default() };
        f(&mut request);
        vec![request]
    };
    measure("first page (created)", &service, &admin, &page(|_| {}), rounds).await;
    measure("first page (name)", &service, &admin, &page(|r| r.sort = Some("name".into())), rounds)
        .await;
    measure(
        "first page (-last_sign_in)",
        &service,
        &admin,
        &page(|r| r.sort = Some("-last_sign_in".into())),
        rounds,
    )
    .await;
    measure(
        "deep page (~90 %)",
        &service,
        &admin,
        &[ListUsersRequest { limit: Some(50), cursor: cursor.clone(), ..Default::default() }],
        rounds,
    )
    .await;
    measure(
        "status=deactivated&role=admin",
        &service,
        &admin,
        &page(|r| {
            r.status = Some("deactivated".into());
            r.role = Some("admin".into());
        }),
        rounds,
    )
    .await;
    measure(
        "role=admin&status=invited, 41st page",
        &service,
        &admin,
        &[invited_admins(admin_cursor)],
        rounds,
    )
    .await;
    measure(
        "department=Engineering (12.5 %)",
        &service,
        &admin,
        &page(|r| r.department = Some("Engineering".into())),
        rounds,
    )
    .await;
    let named = |i: usize| (first_name(i).to_lowercase(), surname(i).to_lowercase());
    let searches: Vec<(String, String)> = vec![
        ("Maria (10 %)".into(), "maria".into()),
        ("a surname (1,000 users)".into(), "surname0042".into()),
        ("surname prefix (10,000 users)".into(), "surname004".into()),
        ("surname prefix (100,000 users)".into(), "surname00".into()),
        ("email domain (10 %)".into(), "globex".into()),
        ("a full email that matches nobody".into(), "nobody.at.all@globex.example".into()),
        ("a surname (200 users)".into(), named(123_456).1),
        ("first name + surname".into(), format!("{} {}", named(777_777).0, named(777_777).1)),
        ("surname prefix (4 letters)".into(), named(424_242).1[..4].to_owned()),
        ("an email prefix".into(), format!("{}.{}.98765", named(98_765).0, named(98_765).1)),
        ("a first name (~4,500 users)".into(), named(31_337).0),
        ("a broad prefix (\"ma\")".into(), "ma".into()),
        ("an email domain (~9,000 users)".into(), "dept42".into()),
        ("two 10 % words that never meet".into(), "maria globex".into()),
        ("a first name in a department".into(), named(31_337).0),
        ("a surname (1,000 users), by name".into(), "surname0042".into()),
        ("a first name (~4,500 users), by name".into(), named(31_337).0),
        ("a surname (1,000 users), by email".into(), "surname0042".into()),
        ("a surname (1,000 users), by last sign-in".into(), "surname0042".into()),
        ("Maria (10 %), newest first".into(), "maria".into()),
    ];
    for (label, q) in &searches {
        let mut request =
            ListUsersRequest { q: Some(q.clone()), limit: Some(50), ..Default::default() };
        if label.contains("department") {
            request.department = Some("Engineering".into());
        }
        if label.contains("by name") {
            request.sort = Some("name".into());
        }
        if label.contains("by email") {
            request.sort = Some("email".into());
        }
        if label.contains("by last sign-in") {
            request.sort = Some("-last_sign_in".into());
        }
        if label.contains("newest first") {
            request.sort = Some("-created".into());
        }
        measure(&format!("q: {label}"), &service, &admin, &[request], 100).await;
    }
    if wiring.store.backend() == sea_orm::DbBackend::Sqlite && wanted("store list alone") {
        compare_readers(&wiring.store, &config.database_url(), &searches).await;
    }
}

/// The store's `list` alone (no domain), on the same file, alternating
/// between the synchronous reader (rusqlite on a blocking thread, memchr
/// substring test) and the pool (sqlx, SQLite's `instr`): the same moment
/// of a machine whose speed drifts.
async fn compare_readers(
    store: &secureai_store::SqlStore,
    url: &str,
    searches: &[(String, String)],
) {
    use secureai_domain::users::ports::{UserFilter, UserQuery, UserRepository, UserSort};
    let options = secureai_store::StoreOptions { synchronous_reads: false, ..Default::default() };
    let pool = secureai_store::SqlStore::connect(url, &options).await.unwrap();
    println!("store list alone, p50 / p95 ms: synchronous reader | pool");
    for (label, q) in searches {
        let query = UserQuery {
            filter: UserFilter {
                words: q.split_whitespace().map(str::to_owned).collect(),
                ..Default::default()
            },
            sort: UserSort::Created,
            descending: true,
            limit: 50,
            after: None,
        };
        let (mut reader, mut pooled) = (Vec::new(), Vec::new());
        for _ in 0..100 {
            for (store, times) in [(store, &mut reader), (&pool, &mut pooled)] {
                let t = Instant::now();
                UserRepository::list(store, &query, 10_000).await.unwrap();
                times.push(t.elapsed());
            }
        }
        reader.sort();
        pooled.sort();
        let p = |times: &[Duration], at| common::ms(common::percentile(times, at));
        println!(
            "  q: {label:<36} {:>6.2} / {:>6.2}  | {:>6.2} / {:>6.2}",
            p(&reader, 50.0),
            p(&reader, 95.0),
            p(&pooled, 50.0),
            p(&pooled, 95.0),
        );
    }
}
