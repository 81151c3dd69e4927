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
    let store = SqlStore::connect(&config.database_url(), &StoreOptions::default()).await?;
    let copied = store.backup_sqlite_into(file).await;
    store.close().await?;
    copied?;
    let users = users_in(file).await?;
    Ok(users)
}

/// The users in a copy (opened read-write: connecting sets its journal
/// mode, so only a copy of ours is opened).
async fn users_in(file: &Path) -> anyhow::Result<u64> {
    let url = format!("sqlite://{}?mode=rw", file.display());
    let copy = SqlStore::connect(&url, &StoreOptions::default()).await?;
    let users = copy.count_all_users().await;
    copy.close().await?;
    Ok(users?)
}

/// Puts the backup `file` in place of the configured SQLite database,
/// which no instance may be using; the database it replaces is kept as
/// `<database>.before-restore`. The copy's schema must be this version's
/// or older (the next start migrates it). How many users it holds.
///
/// # Errors
/// On PostgreSQL or MariaDB, a database in use, a copy made by a newer
/// version or not a SecureAI database, or a failed copy.
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
        bail!("an instance is using {}: stop every instance, then restore", database.display());
    }
    // Checked on a copy beside the database (the backup is left as it is),
    // then put in place by a rename.
    let mut partial = database.as_os_str().to_owned();
    partial.push(".restoring");
    let partial = PathBuf::from(partial);
    std::fs::copy(file, &partial).context("cannot copy the backup")?;
    let checked = check_copy(&partial).await;
    let users = match checked {
        Ok(users) => users,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    if database.exists() {
        let mut kept = database.as_os_str().to_owned();
        kept.push(".before-restore");
        std::fs::rename(&database, &kept).context("cannot set the current database aside")?;
    }
    for suffix in ["-wal", "-shm"] {
        let mut side = database.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(side));
    }
    std::fs::rename(&partial, &database).context("cannot put the backup in place")?;
    drop(lock);
    Ok(users)
}

/// A copy's schema is this version's or older (the next start migrates
/// it), and it is a SecureAI database: its users.
async fn check_copy(copy: &Path) -> anyhow::Result<u64> {
    let url = format!("sqlite://{}?mode=rw", copy.display());
    let store = SqlStore::connect(&url, &StoreOptions::default()).await?;
    let status = store.migration_status().await;
    let schema = store.migrations_ready().await;
    let users = store.count_all_users().await;
    store.close().await?;
    let status = status.context("not a SecureAI database: it has no migration table")?;
    if !status.iter().any(|(_, applied)| *applied) {
        bail!("not a SecureAI database: no migration was ever applied to it");
    }
    if let Err(reason) = schema
        && !reason.contains("pending")
    {
        bail!("this backup cannot be restored by this version: {reason}");
    }
    Ok(users?)
}
