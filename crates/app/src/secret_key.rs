//! The operator's secret key, which seals secrets at rest (the SMTP
//! password, the OIDC client secret, links in mail not yet sent).
//!
//! `SECUREAI_SECRET_KEY` (base64 of 32 bytes) wins; otherwise the key file
//! (`secret_key_file`, default `<data_dir>/secret.key`). On the first start
//! against a database that holds no sealed secrets the service creates the
//! key file, readable by its owner only (mode 0600). It never makes up a new
//! key for a database sealed with another: a wrong or missing key stops the
//! start with a message saying so, rather than losing the secrets.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use secureai_store::{SecretKey, SqlStore};

use crate::Config;

/// Where the key in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `SECUREAI_SECRET_KEY`.
    Environment,
    /// The key file.
    File(PathBuf),
    /// Nowhere yet: a new key, to be written to this file if the database
    /// holds no sealed secrets.
    New(PathBuf),
}

/// The key and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedKey {
    /// The key.
    pub key: SecretKey,
    /// Its source.
    pub source: KeySource,
}

/// The key file's path.
pub fn key_file(config: &Config) -> PathBuf {
    config.secret_key_file.clone().unwrap_or_else(|| config.data_dir.join("secret.key"))
}

/// Reads the key from the environment or the key file; a new one if neither
/// has it.
///
/// # Errors
/// A malformed key, or a key file that cannot be read.
pub fn load(config: &Config) -> anyhow::Result<LoadedKey> {
    if let Some(text) = config.secret_key.as_ref() {
        let key = SecretKey::from_base64(text.expose()).context("SECUREAI_SECRET_KEY")?;
        return Ok(LoadedKey { key, source: KeySource::Environment });
    }
    let path = key_file(config);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = SecretKey::from_base64(&text)
                .with_context(|| format!("the key file {}", path.display()))?;
            if let Ok(meta) = std::fs::metadata(&path)
                && meta.permissions().mode() & 0o077 != 0
            {
                tracing::warn!(
                    file = %path.display(),
                    "the secret key file is readable by others; run `chmod 600` on it"
                );
            }
            Ok(LoadedKey { key, source: KeySource::File(path) })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(LoadedKey { key: SecretKey::generate(), source: KeySource::New(path) })
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the key file {}", path.display())),
    }
}

/// Writes `key` to a new file only its owner can read.
///
/// # Errors
/// When the file exists already or cannot be written.
pub fn write_key_file(path: &Path, key: &SecretKey, replace: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o600);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create the key file {}", path.display()))?;
    file.write_all(format!("{}\n", key.to_base64()).as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// After migrating: makes sure `store`'s key is the database's, creating
/// the key file on a database without sealed secrets. A database without a
/// key check value was last written by a version before sealing: its
/// secrets in clear are sealed, once, before the check value is recorded
/// (every later write is sealed as it is made, so later starts skip this).
///
/// # Errors
/// A missing or wrong key, with what to do about it.
pub async fn settle(store: &SqlStore, loaded: &LoadedKey) -> anyhow::Result<()> {
    let sealed_before = store.has_key_check().await?;
    if let KeySource::New(path) = &loaded.source {
        if sealed_before {
            anyhow::bail!(
                "no secret key: SECUREAI_SECRET_KEY is not set and {} does not exist, but this \
                 database's secrets are sealed with a key. Set SECUREAI_SECRET_KEY to that key \
                 (the other instances' key), or restore the key file; a new key could not read \
                 them",
                path.display()
            );
        }
        write_key_file(path, &loaded.key, false)?;
        tracing::info!(file = %path.display(), "created the secret key file; back it up with the database");
    }
    if !sealed_before {
        let sealed = store.seal_plaintext().await?;
        if sealed > 0 {
            tracing::info!(sealed, "sealed secrets that were stored in clear");
        }
    }
    store.check_secret_key().await?;
    Ok(())
}

/// Connects with `loaded`'s key, migrates, and [`settle`]s the key.
///
/// # Errors
/// When the database cannot be reached or migrated, or the key is wrong
/// or missing.
pub async fn open_store(config: &Config, loaded: &LoadedKey) -> anyhow::Result<SqlStore> {
    let store = crate::connect_with_key(config, loaded.key.clone()).await?;
    store.migrate().await?;
    settle(&store, loaded).await?;
    Ok(store)
}

/// What a rotation did.
#[derive(Debug)]
pub struct Rotation {
    /// Values re-sealed.
    pub resealed: u64,
    /// Where the new key is.
    pub new_key_file: PathBuf,
    /// Whether the key file in use was replaced (else the operator sets
    /// `SECUREAI_SECRET_KEY` to the new key).
    pub replaced: bool,
    /// The old key file, kept.
    pub previous_key_file: Option<PathBuf>,
}

/// `secureai secrets rotate`: a new key; every sealed value re-sealed
/// under it in one transaction; the key file replaced (the old one kept as
/// `secret.key.previous`). Run it with the other instances stopped.
///
/// # Errors
/// When there is no key yet, or anything fails (the database is then
/// unchanged, and the key in use still works).
pub async fn rotate(config: &Config) -> anyhow::Result<Rotation> {
    let loaded = load(config)?;
    if let KeySource::New(path) = &loaded.source {
        anyhow::bail!("there is no secret key to rotate yet ({} does not exist)", path.display());
    }
    let store = open_store(config, &loaded).await?;
    let new_key = SecretKey::generate();
    let path = key_file(config);
    let staged = path.with_extension("key.new");
    // The new key is on disk before any value is sealed with it.
    write_key_file(&staged, &new_key, true)?;
    let resealed = store.rotate_secret_key(&new_key).await?;
    store.close().await?;
    match loaded.source {
        KeySource::File(path) => {
            let previous = path.with_extension("key.previous");
            std::fs::copy(&path, &previous)
                .with_context(|| format!("cannot keep the old key as {}", previous.display()))?;
            std::fs::rename(&staged, &path).with_context(|| {
                format!("the new key is in {}; move it to {}", staged.display(), path.display())
            })?;
            Ok(Rotation {
                resealed,
                new_key_file: path,
                replaced: true,
                previous_key_file: Some(previous),
            })
        }
        _ => Ok(Rotation {
            resealed,
            new_key_file: staged,
            replaced: false,
            previous_key_file: None,
        }),
    }
}
