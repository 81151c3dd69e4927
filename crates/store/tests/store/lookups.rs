//! Many session lookups at once (on PostgreSQL and MariaDB they are
//! gathered into shared statements): each finds its own session, and each
//! sees every change committed before it was asked.

use futures::future::join_all;
use sea_orm::{ConnectionTrait, Statement};
use secrecy::SecretString;
use secureai_domain::sessions::errors::AuthenticateError;
use secureai_domain::{PlainToken, Policy, RequestContext, Role};

use crate::support::TestDb;
use crate::use_cases::{first_admin, invite};

const USERS: usize = 12;

pub async fn many_session_lookups_at_once_each_find_their_own_and_see_every_change(db: TestDb) {
    let (service, _clock) = db.service(Policy::default());
    let admin = first_admin(&service).await;
    let ctx = RequestContext::default();
    let password = || SecretString::from("a password of theirs".to_owned());
    let mut signed_in = Vec::new();
    for i in 0..USERS {
        let email = format!("looked-up{i}@example.com");
        let invited = service.invitations.invite_user(&admin, &invite(&email), &ctx).await.unwrap();
        service.invitations.accept_invitation(&invited.token, password(), &ctx).await.unwrap();
        let session = service.sessions.sign_in(&email, &password(), &ctx).await.unwrap();
        signed_in.push((email, session.token));
    }

    // 20 rounds of every session and as many unknown tokens, all at once.
    let lookups = (0..20).flat_map(|_| 0..2 * USERS).map(|i| {
        let service = service.clone();
        let known = signed_in.get(i).cloned();
        async move {
            match known {
                Some((email, token)) => {
                    let principal = service.sessions.authenticate(&token).await.unwrap();
                    assert_eq!(principal.user().email.as_str(), email);
                }
                None => {
                    let unknown = PlainToken::presented(format!("no such session {i}"));
                    assert!(matches!(
                        service.sessions.authenticate(&unknown).await,
                        Err(AuthenticateError::Unauthenticated)
                    ));
                }
            }
        }
    });
    join_all(lookups).await;
    if let Some((statements, lookups)) = db.store.gathered_session_lookups() {
        // 480 at once went to the database in fewer statements.
        assert!(lookups >= 480 && statements < lookups / 2, "{statements} for {lookups}");
    }

    // Changed through another connection, as another instance would.
    let run = |sql: &str| {
        let connection = db.store.connection().clone();
        let statement = Statement::from_string(connection.get_database_backend(), sql.to_owned());
        async move { connection.execute_raw(statement).await.unwrap() }
    };
    // Lookups keep going while the role changes: those asked after the
    // commit must not ride on a statement sent before it.
    let token = signed_in[3].1.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let background: Vec<_> = (0..8)
        .map(|_| {
            let (service, token, stop) = (service.clone(), token.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    service.sessions.authenticate(&token).await.unwrap();
                    // On SQLite the lookup never waits: let the test run.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    run("UPDATE users SET role = 'admin' WHERE email_key = 'looked-up3@example.com'").await;
    let roles = join_all((0..50).map(|_| service.sessions.authenticate(&token))).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in background {
        task.await.unwrap();
    }
    assert!(roles.into_iter().all(|p| p.unwrap().user().role == Role::Admin));

    run("DELETE FROM sessions WHERE user_id IN \
         (SELECT id FROM users WHERE email_key = 'looked-up5@example.com')")
    .await;
    let after = join_all((0..50).map(|i| service.sessions.authenticate(&signed_in[4 + i % 2].1)));
    for (i, result) in after.await.into_iter().enumerate() {
        match i % 2 {
            0 => assert_eq!(result.unwrap().user().email.as_str(), "looked-up4@example.com"),
            _ => assert!(matches!(result, Err(AuthenticateError::Unauthenticated))),
        }
    }
}

on_every_database!(many_session_lookups_at_once_each_find_their_own_and_see_every_change);
