//! Backups of the embedded SQLite database: `secureai backup FILE` copies a
//! running instance's database as of one moment; `secureai restore FILE`
//! puts a copy in place of a database no instance is using. PostgreSQL and
//! MariaDB have tools of their own for this (`pg_dump`, `mariadb-dump`).
//!
//! A running instance holds a shared lock on `<database>.lock`; a restore
//! takes it exclusively, so it never replaces a database in use.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use secureai_store::{SqlStore, StoreOptions};

use crate::Config;

const OTHER_DATABASES: &str = "`secureai backup` and `secureai restore` copy the embedded \
    SQLite database. On PostgreSQL use `pg_dump --format=custom` and `pg_restore`; on MariaDB \
    or MySQL `mariadb-dump --single-transaction` and `mariadb`. Back up the operator key with \
    the database either way (docs/OPERATIONS.md)";

/// The SQLite file the configuration names, or why there is none.
fn sqlite_file(config: &Config) -> anyhow::Result<PathBuf> {
    secureai_store::sqlite_file(&config.database_url()).context(OTHER_DATABASES)
}

/// Held by a running instance on a SQLite database: a shared lock on
/// `<database>.lock` (several instances may share the file; a restore may
/// not replace it under them).
#[derive(Debug)]
pub struct InUse {
    _file: Option<File>,
}

/// Takes the shared "in use" lock of the configured SQLite database (none
/// for another database).
///
/// # Errors
/// When the lock file cannot be created, or a restore holds it.
pub fn mark_in_use(config: &Config) -> anyhow::Result<InUse> {
    let Ok(path) = sqlite_file(config) else { return Ok(InUse { _file: None }) };
    let lock = lock_path(&path);
    if let Some(dir) = lock.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .with_context(|| format!("cannot open {}", lock.display()))?;
    file.try_lock_shared().map_err(|_| {
        anyhow::anyhow!(
            "a restore is replacing {} right now: start again when it is done",
            path.display()
        )
    })?;
    Ok(InUse { _file: Some(file) })
}

fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// A `sqlite://` URL for a file of ours: absolute, and refused when its
/// name holds what a URL would read differently (`?`, `#`, `%`).
fn file_url(file: &Path) -> anyhow::Result<String> {
    let absolute =
        std::path::absolute(file).with_context(|| format!("cannot resolve {}", file.display()))?;
    let text = absolute.to_str().context("the path is not UTF-8")?;
    if text.contains(['?', '#', '%']) {
        bail!("choose a path without `?`, `#` or `%`: {}", absolute.display());
    }
    Ok(format!("sqlite://{text}?mode=rw"))
}

/// `path` with `suffix` appended to its name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Copies the configured SQLite database into `file` (which must not
/// exist) while instances keep running: how many users it holds.
///
/// # Errors
/// On PostgreSQL or MariaDB (use their tools), an existing `file`, or a
/// failed copy.
pub async fn backup(config: &Config, file: &Path) -> anyhow::Result<u64> {
    let database = sqlite_file(config)?;
    if !database.is_file() {
        bail!("there is no database at {} to back up", database.display());
    }
    if file.exists() {
        bail!("{} exists already: choose a new file", file.display());
    }
    let url = file_url(file)?;
    let store = SqlStore::connect(&config.database_url(), &StoreOptions::default()).await?;
    let copied = store.backup_sqlite_into(&std::path::absolute(file)?).await;
    store.close().await?;
    copied?;
    let copy = SqlStore::connect(&url, &StoreOptions::default()).await?;
    let users = copy.count_all_users().await;
    copy.close().await?;
    Ok(users?)
}

/// Deletes a copy in progress and its journal files.
fn remove_partial(partial: &Path) {
    for file in [partial.to_path_buf(), with_suffix(partial, "-wal"), with_suffix(partial, "-shm")]
    {
        let _ = std::fs::remove_file(file);
    }
}

/// Puts the backup `file` in place of the configured SQLite database,
/// which no instance or command may be using. The database it replaces is
/// kept, with its journal, as `<database>.before-restore-<time>`. The copy
/// must be a sound SecureAI database whose schema is this version's or
/// older (the next start migrates it). How many users it holds.
///
/// # Errors
/// On PostgreSQL or MariaDB, a database in use, a damaged copy, a copy
/// made by a newer version or not a SecureAI database, or a failed copy.
pub async fn restore(config: &Config, file: &Path) -> anyhow::Result<u64> {
    let database = sqlite_file(config)?;
    if !file.is_file() {
        bail!("there is no backup at {}", file.display());
    }
    if let Some(dir) = database.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    }
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(&database))
        .context("cannot open the database's lock file")?;
    if lock.try_lock().is_err() {
        bail!(
            "an instance or a command is using {}: stop every instance, then restore",
            database.display()
        );
    }
    // Checked on a copy beside the database (the backup is left as it is),
    // then put in place by a rename.
    let partial = with_suffix(&database, ".restoring");
    remove_partial(&partial);
    let users = match copy_and_check(file, &partial).await {
        Ok(users) => users,
        Err(error) => {
            remove_partial(&partial);
            return Err(error);
        }
    };
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let kept = with_suffix(&database, &format!(".before-restore-{stamp}"));
    if kept.exists() {
        remove_partial(&partial);
        bail!("{} exists already: try again in a second", kept.display());
    }
    // The database it replaces goes aside with its journal, so that what
    // it committed last (still in its write-ahead log) is kept too.
    let moved = database.exists();
    if moved {
        std::fs::rename(&database, &kept).context("cannot set the current database aside")?;
        for side in ["-wal", "-shm"] {
            let from = with_suffix(&database, side);
            if from.exists() {
                std::fs::rename(&from, with_suffix(&kept, side))
                    .context("cannot set the current database's journal aside")?;
            }
        }
    }
    if let Err(error) = std::fs::rename(&partial, &database) {
        if moved {
            let _ = std::fs::rename(&kept, &database);
        }
        remove_partial(&partial);
        return Err(error).context("cannot put the backup in place");
    }
    if let Some(dir) = database.parent()
        && let Ok(dir) = File::open(dir)
    {
        let _ = dir.sync_all();
    }
    drop(lock);
    Ok(users)
}

/// Copies the backup to `partial`, flushed to disk, and checks it: a
/// sound SQLite file, a SecureAI database, this version's schema or older.
async fn copy_and_check(file: &Path, partial: &Path) -> anyhow::Result<u64> {
    std::fs::copy(file, partial).context("cannot copy the backup")?;
    File::open(partial).and_then(|f| f.sync_all()).context("cannot flush the copy")?;
    let store = SqlStore::connect(&file_url(partial)?, &StoreOptions::default())
        .await
        .context("the backup is not a SQLite database")?;
    let sound = store.integrity_check().await;
    let schema = store.migrations_ready().await;
    let users = store.count_all_users().await;
    store.close().await?;
    sound.map_err(|reason| anyhow::anyhow!("the backup cannot be restored: {reason}"))?;
    if let Err(reason) = schema
        && !reason.contains("pending")
    {
        bail!("this backup cannot be restored by this version: {reason}");
    }
    users.context("not a SecureAI database")
}
