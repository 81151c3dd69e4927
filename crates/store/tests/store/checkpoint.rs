//! SQLite: the store's checkpoint thread copies committed pages from the
//! write-ahead log back into the database file, without waiting for a
//! commit to push the log past `wal_autocheckpoint` (10,000 pages).

use std::time::{Duration, Instant};

use sea_orm::ConnectionTrait;

use crate::support::TestDb;

fn file_len(path: &str) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_commits_reach_the_database_file_in_the_background() {
    let db = TestDb::sqlite().await;
    let path = db.url.trim_start_matches("sqlite://").split('?').next().unwrap().to_owned();
    let before = file_len(&path);
    // About 500 pages (2 MB): far below the writers' own checkpoint.
    db.store
        .connection()
        .execute_unprepared(
            "CREATE TABLE filler (x BLOB); INSERT INTO filler SELECT randomblob(4000) \
             FROM (WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c \
             WHERE n < 500) SELECT n FROM c)",
        )
        .await
        .unwrap();
    assert!(
        std::fs::metadata(format!("{path}-wal")).map(|m| m.len()).unwrap_or(0) > 2_000_000,
        "the rows were written to the write-ahead log"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while file_len(&path) < before + 2_000_000 {
        assert!(
            Instant::now() < deadline,
            "the database file did not grow within 10 s: {} -> {} bytes",
            before,
            file_len(&path)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Dropping the store stops its thread (the test would hang otherwise).
    drop(db);
}
