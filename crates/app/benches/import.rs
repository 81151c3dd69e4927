//! Bulk import through the command line's code path (`import_users`), then
//! a raw baseline: the same rows (users, search terms, invitations, outbox
//! messages, audit events) inserted with plain multi-row SQL in one
//! transaction, into a fresh database. Peak RSS is read from the kernel
//! (VmHWM) after the import, before the baseline runs.
//!
//! `ROWS=n` (default 100000); `BENCH_DB=postgres` for PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::time::Instant;

use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait, Value};
use secureai_domain::users::models::search_terms;
use secureai_domain::{DisplayName, EmailAddress, PlainToken};

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn write_file(path: &std::path::Path, rows: usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "email,name,role,department").unwrap();
    for i in 0..rows {
        writeln!(out, "person{i}@example.com,\"Person {i}, Import\",user,Dept {}", i % 8).unwrap();
    }
}

fn placeholders(backend: DbBackend, cols: usize, rows: usize) -> String {
    let mut n = 0;
    let mut next = || {
        n += 1;
        if backend == DbBackend::Postgres { format!("${n}") } else { "?".to_owned() }
    };
    (0..rows)
        .map(|_| format!("({})", (0..cols).map(|_| next()).collect::<Vec<_>>().join(",")))
        .collect::<Vec<_>>()
        .join(",")
}

async fn insert(
    txn: &impl ConnectionTrait,
    table: &str,
    columns: &str,
    cols: usize,
    values: Vec<Value>,
) {
    let backend = txn.get_database_backend();
    let rows = values.len() / cols;
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        format!("INSERT INTO {table} ({columns}) VALUES {}", placeholders(backend, cols, rows)),
        values,
    ))
    .await
    .unwrap();
}

/// The same rows the import writes, with plain SQL in one transaction.
async fn raw_baseline(store: &secureai_store::SqlStore, rows: usize) {
    let db = store.connection();
    let txn = db.begin().await.unwrap();
    let now = 1_800_000_000_000_000_i64;
    for start in (0..rows).step_by(500) {
        let end = (start + 500).min(rows);
        let (mut users, mut terms, mut invitations, mut outbox, mut audit) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in start..end {
            let email = EmailAddress::parse(&format!("person{i}@example.com")).unwrap();
            let name = DisplayName::parse(&format!("Person {i}, Import")).unwrap();
            let id = secureai_domain::record_id().to_string();
            let token = PlainToken::presented(format!("token-{i}"));
            users.extend([
                Value::from(id.clone()),
                email.as_str().into(),
                email.key().into(),
                name.to_string().into(),
                name.sort_key().into(),
                "user".into(),
                "invited".into(),
                "password".into(),
                format!("Dept {}", i % 8).into(),
                Value::from(Option::<String>::None),
                now.into(),
                Value::from(Option::<i64>::None),
                Value::from(Option::<i64>::None),
                0_i64.into(),
                secureai_store::search_text(&email, &name).into(),
            ]);
            for term in search_terms(&email, &name) {
                terms.extend([
                    Value::from(term),
                    Value::from(id.clone()),
                    now.into(),
                    name.sort_key().into(),
                    email.key().into(),
                ]);
            }
            invitations.extend([
                Value::from(secureai_domain::record_id().to_string()),
                id.clone().into(),
                token.hash().to_hex().into(),
                now.into(),
                (now + 1).into(),
                "pending".into(),
                Value::from(Option::<i64>::None),
            ]);
            outbox.extend([
                Value::from(secureai_domain::record_id().to_string()),
                "invitation".into(),
                email.as_str().into(),
                name.to_string().into(),
                format!(
                    "{{\"kind\":\"invitation\",\"token\":\"{}\",\"expires_at\":1}}",
                    token.expose()
                )
                .into(),
                now.into(),
                "queued".into(),
                0_i32.into(),
                now.into(),
                Value::from(Option::<i64>::None),
                Value::from(Option::<i64>::None),
                Value::from(Option::<String>::None),
                Value::from(Some(id.clone())),
            ]);
            audit.extend([
                Value::from(secureai_domain::record_id().to_string()),
                now.into(),
                "operator".into(),
                Value::from(Option::<String>::None),
                Value::from(Option::<String>::None),
                "user.invited".into(),
                id.clone().into(),
                email.as_str().into(),
                "[]".into(),
                Value::from(Option::<String>::None),
                Value::from(Option::<String>::None),
            ]);
        }
        insert(&txn, "users", "id,email,email_key,name,name_key,role,status,sign_in,department,password_hash,created_at,activated_at,deactivated_at,last_login_at,search_text", 15, users).await;
        insert(&txn, "user_search_terms", "term,user_id,created_at,name_key,email_key", 5, terms)
            .await;
        insert(
            &txn,
            "invitations",
            "id,user_id,token_hash,created_at,expires_at,state,state_at",
            7,
            invitations,
        )
        .await;
        insert(&txn, "outbox", "id,kind,recipient,recipient_name,payload,created_at,status,attempts,next_attempt_at,leased_until,sent_at,last_error,user_id", 13, outbox).await;
        insert(&txn, "audit_events", "id,at,actor_kind,actor_id,actor_email,action,target_id,target_email,changes,ip,user_agent", 11, audit).await;
    }
    txn.commit().await.unwrap();
}

#[tokio::main]
async fn main() {
    let rows: usize = std::env::var("ROWS").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("people.csv");
    write_file(&file, rows);

    let mut config = common::config(&dir.path().join("import"));
    let _database = common::database(&mut config).await;
    let before = peak_rss_mib();
    let t = Instant::now();
    let outcome = secureai_app::import_users(
        &config,
        &file,
        false,
        &dir.path().join("skipped.csv"),
        &mut |_| {},
    )
    .await
    .unwrap();
    let import_secs = t.elapsed().as_secs_f64();
    let peak = peak_rss_mib();
    assert_eq!(outcome.record.counts.valid, rows as u64);
    println!("database: {}", std::env::var("BENCH_DB").unwrap_or_else(|_| "sqlite".into()));
    println!(
        "import of {rows} rows: {import_secs:.1} s, {:.0} rows/s, peak RSS {peak:.0} MiB (before: {before:.0} MiB)",
        rows as f64 / import_secs
    );

    let mut config = common::config(&dir.path().join("raw"));
    let _raw_database = common::database(&mut config).await;
    let wiring = secureai_app::wire(&config).await.unwrap();
    let t = Instant::now();
    raw_baseline(&wiring.store, rows).await;
    let raw_secs = t.elapsed().as_secs_f64();
    println!(
        "raw SQL insert of the same rows in one transaction: {raw_secs:.1} s, {:.0} rows/s",
        rows as f64 / raw_secs
    );
    println!("import / raw rate: {:.1} %", 100.0 * raw_secs / import_secs);
}
