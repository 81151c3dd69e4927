//! Listing and search at 1,000,000 users on SQLite: p95 latency of the
//! first page, a deep page, filtered pages and `q` searches, through the
//! domain's `list_users` (query + total count), as the API runs them.
//!
//! `cargo bench -p secureai-app --bench listing` (USERS=… to change the size)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement, TransactionTrait, Value};
use secureai_domain::users::listing::ListUsersRequest;
use secureai_domain::users::models::search_terms;
use secureai_domain::{DisplayName, EmailAddress};

const FIRST: [&str; 20] = [
    "Ada",
    "Grace",
    "Alan",
    "Barbara",
    "Edsger",
    "Frances",
    "Donald",
    "Margaret",
    "Ken",
    "Radia",
    "Tim",
    "Shafi",
    "John",
    "Sophie",
    "Dennis",
    "Katherine",
    "Linus",
    "Hedy",
    "Niklaus",
    "Anita",
];
const LAST: [&str; 50] = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Liskov",
    "Dijkstra",
    "Allen",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Perlman",
    "Berners",
    "Goldwasser",
    "McCarthy",
    "Wilson",
    "Ritchie",
    "Johnson",
    "Torvalds",
    "Lamarr",
    "Wirth",
    "Borg",
    "Smith",
    "Jones",
    "Brown",
    "Taylor",
    "Wilson",
    "Davies",
    "Evans",
    "Thomas",
    "Roberts",
    "Walker",
    "Wright",
    "Robinson",
    "Thompson",
    "White",
    "Hughes",
    "Edwards",
    "Green",
    "Hall",
    "Wood",
    "Harris",
    "Lewis",
    "Martin",
    "Jackson",
    "Clarke",
    "Clark",
    "Turner",
    "Hill",
    "Scott",
    "Cooper",
    "Morris",
];
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
            let first = FIRST[i % FIRST.len()];
            let last = LAST[(i / FIRST.len()) % LAST.len()];
            let email = EmailAddress::parse(&format!(
                "{}.{}.{i}@dept{}.example.com",
                first.to_lowercase(),
                last.to_lowercase(),
                i % 97
            ))
            .unwrap();
            let name = DisplayName::parse(&format!("{first} {last}")).unwrap();
            let id = format!("{:08x}-0000-4000-8000-{:012x}", i, i);
            let role = if i % 40 == 0 { "admin" } else { "user" };
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
            ]);
            user_rows += 1;
            for term in search_terms(&email, &name) {
                term_values.extend([Value::from(term), Value::from(id.clone())]);
                term_rows += 1;
            }
        }
        let placeholders = |cols: usize, rows: usize| {
            vec![format!("({})", vec!["?"; cols].join(",")); rows].join(",")
        };
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO users (id,email,email_key,name,name_key,role,status,sign_in,department,\
                 password_hash,created_at,activated_at,deactivated_at,last_login_at) VALUES {}",
                placeholders(14, user_rows)
            ),
            user_values,
        ))
        .await
        .unwrap();
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "INSERT INTO user_search_terms (term,user_id) VALUES {}",
                placeholders(2, term_rows)
            ),
            term_values,
        ))
        .await
        .unwrap();
    }
    for ((role, status), n) in counts {
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            "UPDATE user_counts SET n = n + ? WHERE role = ? AND status = ?",
            [n.into(), role.into(), status.into()],
        ))
        .await
        .unwrap();
    }
    txn.commit().await.unwrap();
    db.execute_unprepared("ANALYZE").await.unwrap();
}

async fn measure(
    name: &str,
    service: &secureai_domain::UserManagement,
    admin: &secureai_domain::sessions::models::Admin,
    requests: &[ListUsersRequest],
    rounds: usize,
) {
    let mut latencies = Vec::new();
    let mut total = 0;
    for round in 0..rounds {
        let request = &requests[round % requests.len()];
        let t = Instant::now();
        let page = service.list_users(admin, request).await.unwrap();
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
    let config = common::config(dir.path());
    let wiring = secureai_app::wire(&config).await.unwrap();
    let admin = common::first_admin(&wiring).await;
    let t = Instant::now();
    seed(&wiring.store, users).await;
    println!("seeded {users} users in {:.1} s", t.elapsed().as_secs_f64());
    let service = wiring.service.clone();

    // A cursor ~90 % of the way through, reached by paging (which also shows
    // that every page costs the same).
    let t = Instant::now();
    let mut cursor = None;
    let mut pages = 0;
    while pages * 1000 < users * 9 / 10 {
        let request =
            ListUsersRequest { limit: Some(1000), cursor: cursor.clone(), ..Default::default() };
        cursor = service.list_users(&admin, &request).await.unwrap().next_cursor;
        pages += 1;
    }
    println!(
        "paged through {} users, {pages} pages of 1000, in {:.1} s",
        pages * 1000,
        t.elapsed().as_secs_f64()
    );

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
    let searches: Vec<ListUsersRequest> = [
        "hopper",
        "lovel",
        "ada turing",
        "grace.hopper.12",
        "knuth",
        "dept42",
        "margaret ham",
        "sophie wilson",
    ]
    .iter()
    .map(|q| ListUsersRequest { q: Some((*q).into()), limit: Some(50), ..Default::default() })
    .collect();
    measure("q search (mixed words, first page)", &service, &admin, &searches, rounds).await;
    let exact: Vec<ListUsersRequest> = (0..50)
        .map(|i| ListUsersRequest {
            q: Some(
                format!("{}.", FIRST[i % FIRST.len()].to_lowercase())
                    + &LAST[(i * 7) % LAST.len()].to_lowercase()
                    + &format!(".{}", i * 1000 + (i * 7 % 50) * 20 + i % 20),
            ),
            limit: Some(50),
            ..Default::default()
        })
        .collect();
    measure("q search (an email prefix)", &service, &admin, &exact, rounds).await;
}
