//! Mixed traffic from 16 clients against two instances sharing one database
//! (the database the HTTP suite runs on: SQLite, PostgreSQL or MariaDB):
//! reads of `/me` and the users list, invitations (one at a time and in
//! import batches), role changes, deactivations and reactivations,
//! sign-ins. No answer may be a 5xx
//! (a deadlock the database broke must be retried, not reported), and the
//! invariants hold afterwards: an active admin remains, seats stay within
//! the limit, and every change that was answered as done is in the audit
//! log exactly once.
//!
//! `SECUREAI_LOAD_SECONDS` sets how long the traffic runs (default 8).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use secureai_tests::{ADMIN_PASSWORD, Lcg, TestApp, body};
use serde_json::{Value, json};

const CLIENTS: usize = 16;
const SEAT_LIMIT: u64 = 60;
const PASSWORD: &str = "a long pool passphrase";

/// What the clients were told was done.
#[derive(Default)]
struct Done {
    invited: AtomicU64,
    imports: AtomicU64,
    role_changes: AtomicU64,
    deactivations: AtomicU64,
    reactivations: AtomicU64,
    sign_ins: AtomicU64,
    requests: AtomicU64,
}

async fn audit_count(app: &TestApp, admin: &str, action: &str) -> u64 {
    let mut count = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/audit?action={action}&limit=1000");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = body(app.get(&path, Some(admin)).await).await;
        count += page["items"].as_array().unwrap().len() as u64;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return count,
        }
    }
}

fn check(status: StatusCode, what: &str, answer: &Value) {
    assert!(!status.is_server_error(), "{what} answered {status}: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_traffic_on_two_instances_gets_no_5xx_and_keeps_every_invariant() {
    let seconds: u64 =
        std::env::var("SECUREAI_LOAD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(8);
    let key = secureai_store::SecretKey::generate().to_base64();
    let first = TestApp::with_admin_using(|c| c.secret_key = Some(key.clone().into())).await;
    let admin = first.admin_token().await;
    let seats =
        first.put("/api/v1/settings/seats", Some(&admin), json!({"limit": SEAT_LIMIT})).await;
    assert_eq!(seats.status(), StatusCode::OK);
    // One pool user per client, each changed by its client only, so that
    // every change answered as done is a real change.
    let mut pool = Vec::new();
    for i in 0..CLIENTS {
        let email = format!("pool{i}@example.com");
        let role = if i % 4 == 0 { "admin" } else { "user" };
        first.active_user(&admin, &email, role, PASSWORD).await;
        pool.push((first.user_id(&admin, &email).await, email, role == "admin"));
    }
    // The second instance starts once the pool's invitation mail is read
    // (each instance writes the mail it delivers into its own folder).
    let url = first.database_url.clone();
    let second = TestApp::spawn_with(|c| {
        c.database_url = Some(url.clone());
        c.secret_key = Some(key.clone().into());
    })
    .await;
    let baseline_sign_ins = audit_count(&first, &admin, "sign_in.succeeded").await;

    let apps = Arc::new([first, second]);
    let done = Arc::new(Done::default());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let clients: Vec<_> = pool
        .into_iter()
        .enumerate()
        .map(|(i, (id, email, admin_role))| {
            let (apps, done, admin) = (apps.clone(), done.clone(), admin.clone());
            tokio::spawn(async move {
                let mut random = Lcg(i as u64 + 1);
                let (mut is_admin, mut active, mut invited) = (admin_role, true, 0);
                while Instant::now() < deadline {
                    let app = &apps[(random.next(2)) as usize];
                    done.requests.fetch_add(1, Ordering::Relaxed);
                    match random.next(10) {
                        0..=2 => {
                            let r = app.get("/api/v1/me", Some(&admin)).await;
                            let status = r.status();
                            check(status, "GET /me", &Value::Null);
                            assert_eq!(status, StatusCode::OK);
                        }
                        3 | 4 => {
                            let r = app.get("/api/v1/users?limit=20&sort=name", Some(&admin)).await;
                            let status = r.status();
                            check(status, "GET /users", &Value::Null);
                            assert_eq!(status, StatusCode::OK);
                        }
                        5 if random.next(2) == 0 => {
                            // Two rows in one import batch.
                            invited += 1;
                            let csv = format!(
                                "name,email,role\nImported,imported{i}-{invited}a@example.com,user\n\
                                 Imported,imported{i}-{invited}b@example.com,user\n"
                            );
                            let query = "mode=commit&file_name=load.csv";
                            let r = app.import_csv(&admin, query, csv).await;
                            let status = r.status();
                            let answer = body(r).await;
                            check(status, "importing", &answer);
                            assert!(status.is_success(), "importing answered {status}: {answer}");
                            // Rows past the seat limit are skipped, not created.
                            let created = answer["valid"].as_u64().unwrap();
                            assert!(created <= 2, "{answer}");
                            done.invited.fetch_add(created, Ordering::Relaxed);
                            done.imports.fetch_add(1, Ordering::Relaxed);
                        }
                        5 => {
                            invited += 1;
                            let email = format!("new{i}-{invited}@example.com");
                            let r = app
                                .post(
                                    "/api/v1/users",
                                    Some(&admin),
                                    json!({"email": email, "name": "New", "role": "user"}),
                                )
                                .await;
                            let status = r.status();
                            let answer = body(r).await;
                            check(status, "inviting", &answer);
                            match status {
                                StatusCode::CREATED => {
                                    done.invited.fetch_add(1, Ordering::Relaxed);
                                }
                                StatusCode::CONFLICT => {
                                    assert_eq!(answer["code"], "seat_limit_reached")
                                }
                                other => panic!("inviting answered {other}: {answer}"),
                            }
                        }
                        6 | 7 => {
                            let role = if is_admin { "user" } else { "admin" };
                            let r = app
                                .http
                                .patch(app.url(&format!("/api/v1/users/{id}")))
                                .bearer_auth(&admin)
                                .json(&json!({"role": role}))
                                .send()
                                .await
                                .unwrap();
                            let status = r.status();
                            let answer = body(r).await;
                            check(status, "changing a role", &answer);
                            match status {
                                StatusCode::OK => {
                                    is_admin = !is_admin;
                                    done.role_changes.fetch_add(1, Ordering::Relaxed);
                                }
                                StatusCode::CONFLICT => assert_eq!(answer["code"], "last_admin"),
                                other => panic!("changing a role answered {other}: {answer}"),
                            }
                        }
                        8 => {
                            let r = app
                                .http
                                .patch(app.url(&format!("/api/v1/users/{id}")))
                                .bearer_auth(&admin)
                                .json(&json!({"active": !active}))
                                .send()
                                .await
                                .unwrap();
                            let status = r.status();
                            let answer = body(r).await;
                            check(status, "(de)activating", &answer);
                            match status {
                                StatusCode::OK if active => {
                                    active = false;
                                    done.deactivations.fetch_add(1, Ordering::Relaxed);
                                }
                                StatusCode::OK => {
                                    active = true;
                                    done.reactivations.fetch_add(1, Ordering::Relaxed);
                                }
                                StatusCode::CONFLICT => {
                                    let code = answer["code"].as_str().unwrap_or_default();
                                    assert!(
                                        matches!(code, "last_admin" | "seat_limit_reached"),
                                        "{answer}"
                                    );
                                }
                                other => panic!("(de)activating answered {other}: {answer}"),
                            }
                        }
                        _ => {
                            let r = app
                                .post(
                                    "/api/v1/auth/login",
                                    None,
                                    json!({"email": email, "password": PASSWORD}),
                                )
                                .await;
                            let status = r.status();
                            let answer = body(r).await;
                            check(status, "signing in", &answer);
                            match status {
                                StatusCode::OK => {
                                    assert!(active, "a deactivated user signed in");
                                    done.sign_ins.fetch_add(1, Ordering::Relaxed);
                                }
                                StatusCode::FORBIDDEN => {
                                    assert!(!active);
                                    assert_eq!(answer["code"], "account_deactivated");
                                }
                                other => panic!("signing in answered {other}: {answer}"),
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }

    let app = &apps[0];
    let admin = app.login(secureai_tests::ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let requests = done.requests.load(Ordering::Relaxed);
    assert!(requests > 200, "only {requests} requests in {seconds} s");
    // An active admin remains; seats within the limit.
    let admins = body(app.get("/api/v1/users?role=admin&status=active", Some(&admin)).await).await;
    assert!(admins["total"].as_u64().unwrap() >= 1);
    let seats = body(app.get("/api/v1/settings/seats", Some(&admin)).await).await;
    assert!(seats["used"].as_u64().unwrap() <= SEAT_LIMIT, "{seats}");
    // Every change answered as done is audited, once.
    let expect = |n: &AtomicU64| n.load(Ordering::Relaxed);
    assert_eq!(
        audit_count(app, &admin, "user.invited").await,
        expect(&done.invited) + CLIENTS as u64
    );
    assert_eq!(audit_count(app, &admin, "user.role_changed").await, expect(&done.role_changes));
    assert_eq!(audit_count(app, &admin, "user.deactivated").await, expect(&done.deactivations));
    assert_eq!(audit_count(app, &admin, "user.reactivated").await, expect(&done.reactivations));
    assert_eq!(
        audit_count(app, &admin, "sign_in.succeeded").await,
        baseline_sign_ins + expect(&done.sign_ins) + 1
    );
    assert_eq!(audit_count(app, &admin, "users.imported").await, expect(&done.imports));
    eprintln!(
        "mixed traffic: {requests} requests in {seconds} s on two instances; {} invited ({} \
         imports), {} role changes, {} deactivations, {} reactivations, {} sign-ins; no 5xx",
        expect(&done.invited),
        expect(&done.imports),
        expect(&done.role_changes),
        expect(&done.deactivations),
        expect(&done.reactivations),
        expect(&done.sign_ins)
    );
}
