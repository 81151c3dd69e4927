//! Secrets written in clear by versions before sealing are sealed at the
//! next start and still read; a store with another key reads none of them.

use sea_orm::{ConnectionTrait, Statement};
use secureai_domain::settings::ports::SettingsRepository;
use secureai_store::{SecretKey, SqlStore, StoreOptions};

use crate::support::TestDb;

async fn raw(db: &TestDb, sql: &str) {
    let backend = db.store.backend();
    // Only the quoted column name differs.
    let quoted = if backend == sea_orm::DbBackend::MySql {
        sql.replacen(r#""key""#, "`key`", 1)
    } else {
        sql.to_owned()
    };
    db.store.connection().execute_raw(Statement::from_string(backend, quoted)).await.unwrap();
}

async fn values(db: &TestDb, sql: &str) -> Vec<String> {
    let backend = db.store.backend();
    let rows = db
        .store
        .connection()
        .query_all_raw(Statement::from_string(backend, sql.to_owned()))
        .await
        .unwrap();
    rows.iter().map(|r| r.try_get_by_index::<String>(0).unwrap()).collect()
}

pub async fn legacy_secrets_in_clear_are_sealed_at_start_and_still_read(db: TestDb) {
    let key = SecretKey::generate();
    let store = SqlStore::connect(
        &db.url,
        &StoreOptions { secret_key: Some(key.clone()), ..StoreOptions::default() },
    )
    .await
    .unwrap();
    // As an older version wrote them.
    raw(
        &db,
        r#"INSERT INTO settings ("key", value) VALUES ('email', '{"smtp":{"host":"smtp.example.com","port":587,"security":"starttls","username":"it","password":"old-clear-password"},"from_address":"it@example.com","from_name":"IT"}')"#,
    )
    .await;
    assert_eq!(store.check_secret_key().await.unwrap(), secureai_store::KeyCheck::Recorded);
    let sealed = store.seal_plaintext().await.unwrap();
    assert_eq!(sealed, 1);
    let stored = values(&db, "SELECT value FROM settings").await;
    assert!(stored.iter().all(|v| !v.contains("old-clear-password")), "{stored:?}");
    let settings = store.email_settings().await.unwrap().unwrap();
    assert_eq!(settings.smtp.unwrap().password.unwrap().expose(), "old-clear-password");
    // Nothing left to seal the next time.
    assert_eq!(store.seal_plaintext().await.unwrap(), 0);
    // Another key: the check says so, and the secret does not open.
    let other = SqlStore::connect(
        &db.url,
        &StoreOptions { secret_key: Some(SecretKey::generate()), ..StoreOptions::default() },
    )
    .await
    .unwrap();
    assert!(other.check_secret_key().await.is_err());
    assert!(other.email_settings().await.is_err());
}

/// An authenticator app's secret is sealed at rest: the table never holds
/// its base32 text, and a store with another key cannot read it.
pub async fn totp_secrets_are_sealed_at_rest(db: TestDb) {
    use secureai_domain::mfa::models::{TotpEnrolment, TotpSecret};
    use secureai_domain::mfa::ports::MfaRepository;
    let key = SecretKey::generate();
    let store = SqlStore::connect(
        &db.url,
        &StoreOptions { secret_key: Some(key.clone()), ..StoreOptions::default() },
    )
    .await
    .unwrap();
    let user = secureai_domain::UserId::generate();
    let secret = TotpSecret::from_bytes(&[42; 20]);
    let enrolment = TotpEnrolment {
        user_id: user,
        secret: secret.clone(),
        created_at: chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
        confirmed_at: None,
        last_step: None,
    };
    assert!(store.begin_totp(&enrolment).await.unwrap());
    let stored = values(&db, "SELECT secret FROM mfa_totp").await;
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].contains(secret.expose_base32()), "{stored:?}");
    assert_eq!(store.totp(user).await.unwrap().map(|t| t.secret), Some(secret));
    let other = SqlStore::connect(
        &db.url,
        &StoreOptions { secret_key: Some(SecretKey::generate()), ..StoreOptions::default() },
    )
    .await
    .unwrap();
    assert!(other.totp(user).await.is_err(), "another key opens nothing");
}

on_every_database!(
    legacy_secrets_in_clear_are_sealed_at_start_and_still_read,
    totp_secrets_are_sealed_at_rest
);
