//! Operations (issue 25): a backup of the embedded SQLite database taken
//! while users are being invited, restored into a new folder, serves every
//! user it holds; a database in use is never replaced; on PostgreSQL and
//! MariaDB the command names their own tools; `/readyz` is in `docs.rs`.

use reqwest::StatusCode;
use secureai_store::test_databases::Backend;
use secureai_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, body, http_backend, test_config};
use serde_json::json;

#[tokio::test]
async fn a_backup_under_writes_restores_into_a_new_folder_with_every_user() {
    let app = TestApp::with_admin().await;
    let admin = app.admin_token().await;
    let config = {
        let mut config = test_config(&app.data_dir);
        config.database_url = Some(app.database_url.clone());
        config
    };
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("secureai.backup");
    if http_backend() != Backend::Sqlite {
        let refused = secureai_app::backup::backup(&config, &file).await.unwrap_err();
        let said = format!("{refused:#}");
        assert!(said.contains("pg_dump") && said.contains("mariadb-dump"), "{said}");
        assert!(!file.exists());
        return;
    }

    // Invitations keep coming while the copy is taken.
    let writer = {
        let (base, admin) = (app.base.clone(), admin.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 0..60 {
                let invited = http
                    .post(format!("{base}/api/v1/users"))
                    .bearer_auth(&admin)
                    .json(&json!({"email": format!("w{i}@example.com"), "name": format!("W {i}"), "role": "user"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(invited.status(), StatusCode::CREATED);
            }
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let backed_up = secureai_app::backup::backup(&config, &file).await.unwrap();
    writer.await.unwrap();
    assert!(backed_up >= 1, "{backed_up}");
    let again = secureai_app::backup::backup(&config, &file).await;
    assert!(again.is_err(), "an existing file is never overwritten");

    // Never under a running instance.
    let refused = secureai_app::backup::restore(&config, &file).await.unwrap_err();
    assert!(format!("{refused:#}").contains("stop every instance"), "{refused:#}");

    // Not a SecureAI database: refused, nothing left behind.
    let junk = backups.path().join("notes.txt");
    std::fs::write(&junk, "not a database").unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let refused = secureai_app::backup::restore(&test_config(elsewhere.path()), &junk).await;
    assert!(refused.is_err());
    assert!(!elsewhere.path().join("secureai.db").exists());

    // Into a new folder, with the operator key of the original.
    let fresh = tempfile::tempdir().unwrap();
    let mut target = test_config(fresh.path());
    target.secret_key_file = Some(app.data_dir.join("secret.key"));
    let restored = secureai_app::backup::restore(&target, &file).await.unwrap();
    assert_eq!(restored, backed_up);
    let (dir, key) = (fresh.path().to_path_buf(), app.data_dir.join("secret.key"));
    let copy = TestApp::spawn_with(move |c| {
        c.data_dir = dir;
        c.database_url = None;
        c.secret_key_file = Some(key);
    })
    .await;
    assert!(copy.setup_link.is_none(), "the restored instance has its admin");
    let signed_in = copy.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let listed = body(copy.get("/api/v1/users?limit=1", Some(&signed_in)).await).await;
    assert_eq!(listed["total"], backed_up, "{listed}");
    let original = body(app.get("/api/v1/users?limit=1", Some(&admin)).await).await;
    assert_eq!(original["total"], 61, "the original kept every write");

    // Restored again once that instance stopped: the database it replaces
    // is kept, with its journal.
    drop(copy);
    let mut again = secureai_app::backup::restore(&target, &file).await;
    for _ in 0..100 {
        if again.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        again = secureai_app::backup::restore(&target, &file).await;
    }
    assert_eq!(again.unwrap(), backed_up);
    let kept: Vec<String> = std::fs::read_dir(fresh.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("secureai.db.before-restore-"))
        .collect();
    assert!(kept.iter().any(|n| !n.ends_with("-wal") && !n.ends_with("-shm")), "{kept:?}");

    // A backup a newer version made is refused, and nothing is replaced.
    let newer = backups.path().join("newer.backup");
    std::fs::copy(&file, &newer).unwrap();
    {
        use sea_orm::ConnectionTrait as _;
        let url = format!("sqlite://{}?mode=rw", newer.display());
        let store = secureai_store::SqlStore::connect(&url, &Default::default()).await.unwrap();
        let insert =
            "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29991231_000001_x', 0)";
        store
            .connection()
            .execute_raw(sea_orm::Statement::from_string(store.backend(), insert.to_owned()))
            .await
            .unwrap();
        store.close().await.unwrap();
    }
    let refused = secureai_app::backup::restore(&target, &newer).await.unwrap_err();
    assert!(format!("{refused:#}").contains("does not know"), "{refused:#}");
    assert!(!fresh.path().join("secureai.db.restoring").exists(), "nothing left behind");
}
