//! `secureai`: the SecureAI user-management service and its operator
//! commands.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secureai_app::{Application, Config};

/// jemalloc rather than the system's allocator: glibc's arenas serialise
/// the frees a work-stealing runtime makes on other threads than the
/// allocations (lock waits were ~10 % of the process's time serving `/me`),
/// and jemalloc gives idle memory back from a background thread
/// (`.cargo/config.toml`; docs/PERFORMANCE.md, "Session 23 (2026-12-05): jemalloc").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// SecureAI user management.
#[derive(Debug, Parser)]
#[command(name = "secureai", version, about)]
struct Cli {
    /// Configuration file (TOML). Default: ./secureai.toml if present.
    #[arg(long, global = true, env = "SECUREAI_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (HTTP API, pages, mail delivery).
    Serve,
    /// Database migrations.
    Migrate {
        #[command(subcommand)]
        action: Option<MigrateAction>,
    },
    /// Administrators.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Users (operator tasks that the admin panel deliberately lacks).
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// Copy the embedded SQLite database into FILE while the service runs
    /// (on PostgreSQL or MariaDB it says which of their tools to use).
    /// Keep the operator key with it.
    Backup {
        /// The new backup file (must not exist).
        file: PathBuf,
    },
    /// Put a backup in place of the embedded SQLite database. Stop every
    /// instance first: a database in use is never replaced. The database
    /// it replaces is kept as `<database>.before-restore`; the next start
    /// migrates an older backup.
    Restore {
        /// The backup file.
        file: PathBuf,
    },
    /// The secret key that seals secrets at rest.
    Secrets {
        #[command(subcommand)]
        action: SecretsAction,
    },
}

#[derive(Debug, Subcommand)]
enum SecretsAction {
    /// Make a new secret key and re-seal every secret with it, in one
    /// transaction. Stop the other instances first; start them with the new
    /// key. The key file is replaced (the old one kept as
    /// `secret.key.previous`); with `SECUREAI_SECRET_KEY` the new key is
    /// written next to the key file for you to put in its place.
    Rotate,
}

#[derive(Debug, Subcommand)]
enum UsersAction {
    /// Erase a person's personal data (GDPR): anonymises email, name and
    /// department, removes the password, deactivates the account; ids and
    /// aggregates stay; the erasure is audited. Cannot be undone.
    Erase {
        /// Their email address.
        #[arg(long)]
        email: String,
        /// Confirm: without it nothing is changed.
        #[arg(long)]
        yes: bool,
    },
    /// Reset a person's second factor (their authenticator app and recovery
    /// codes stop working; they are emailed): for the last admin, who has
    /// no other admin to ask. Where one is required, they set up a new one
    /// at their next sign-in. Audited as done by the operator.
    ResetMfa {
        /// Their email address.
        #[arg(long)]
        email: String,
        /// Confirm: without it nothing is changed.
        #[arg(long)]
        yes: bool,
    },
    /// Import users from a CSV file (columns email, name, role, optional
    /// department; header row required): each valid row becomes an invited
    /// user with an invitation email; invalid rows are skipped and listed
    /// in the report. Streams the file: no row limit.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Check every row and report, but create nothing.
        #[arg(long)]
        dry_run: bool,
        /// Where to write the skipped rows (default: FILE.skipped.csv).
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum MigrateAction {
    /// Apply pending migrations (the default).
    Up,
    /// List migrations and whether each is applied.
    Status,
}

#[derive(Debug, Subcommand)]
enum AdminAction {
    /// Invite an administrator; prints their activation link and emails it.
    Create {
        /// Their work email.
        #[arg(long)]
        email: String,
        /// Their display name.
        #[arg(long)]
        name: String,
    },
}

/// A progress bar over the file's lines (an upper bound of its rows), on
/// stderr, hidden when stderr is not a terminal.
fn progress_bar(file: &std::path::Path) -> indicatif::ProgressBar {
    use std::io::Read;
    let mut lines = 0_u64;
    if let Ok(mut f) = std::fs::File::open(file) {
        let mut buf = vec![0_u8; 1 << 16];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        }
    }
    let bar = indicatif::ProgressBar::new(lines.saturating_sub(1).max(1));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {bar:40} {pos}/{len} rows  {per_sec}  eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    // Every command that opens the SQLite database marks it in use for as
    // long as it runs, as a running instance does: a restore waits for
    // none of them, it refuses.
    let _in_use = match cli.command {
        Command::Serve | Command::Restore { .. } => None,
        _ => Some(secureai_app::backup::mark_in_use(&config)?),
    };
    match cli.command {
        Command::Serve => {
            let app = Application::build(&config).await?;
            tracing::info!(address = %app.address(), public_url = app.public_url(), "listening");
            // Written, not printed: a closed stdout (the reader of a pipe
            // gone) must not stop the server.
            let mut banner = format!("SecureAI is listening on {}\n", app.public_url());
            if let Some(link) = app.setup_link() {
                banner.push_str(&format!(
                    "\nNo administrator exists yet. Open this one-time link to create the first \
                     admin:\n\n    {link}\n\nThe link works once; restarting the service prints \
                     a new one and voids this one.\n"
                ));
            }
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(banner.as_bytes()).and_then(|()| stdout.flush());
            drop(stdout);
            app.run_until(shutdown_signal()).await
        }
        Command::Migrate { action } => {
            let store = secureai_app::connect(&config).await?;
            if matches!(action, None | Some(MigrateAction::Up)) {
                store.migrate().await?;
                println!("migrations applied");
            }
            for (name, applied) in store.migration_status().await? {
                println!("{} {name}", if applied { "applied" } else { "pending" });
            }
            store.close().await?;
            Ok(())
        }
        Command::Users { action: UsersAction::Erase { email, yes } } => {
            if !yes {
                anyhow::bail!("erasing {email} cannot be undone; run again with --yes to confirm");
            }
            let id = secureai_app::erase_user(&config, &email).await?;
            println!(
                "Erased the personal data of user {id} (was {email}). The erasure is in the audit log."
            );
            Ok(())
        }
        Command::Users { action: UsersAction::ResetMfa { email, yes } } => {
            if !yes {
                anyhow::bail!(
                    "resetting the second factor of {email} lets their password alone sign them in until they set up a new one; run again with --yes to confirm"
                );
            }
            secureai_app::reset_mfa(&config, &email).await?;
            println!(
                "Reset the second factor of {email}; they were emailed. The reset is in the audit log."
            );
            Ok(())
        }
        Command::Users { action: UsersAction::Import { file, dry_run, report } } => {
            let report = report.unwrap_or_else(|| {
                let mut name = file.clone().into_os_string();
                name.push(".skipped.csv");
                PathBuf::from(name)
            });
            let bar = progress_bar(&file);
            let mut progress = |rows: u64| bar.set_position(rows);
            let outcome =
                secureai_app::import_users(&config, &file, dry_run, &report, &mut progress).await;
            bar.finish_and_clear();
            let outcome = outcome?;
            let counts = outcome.record.counts;
            for warning in &outcome.record.warnings {
                println!("warning: {warning}");
            }
            if dry_run {
                println!(
                    "Dry run: {} rows read, {} would be imported, {} would be skipped. Nothing was written.",
                    counts.rows, counts.valid, counts.skipped
                );
            } else {
                println!(
                    "{} rows read: {} users invited (invitation emails queued), {} skipped.",
                    counts.rows, counts.valid, counts.skipped
                );
            }
            if let Some(path) = outcome.report {
                println!("Skipped rows, with line, email, field and reason: {}", path.display());
            }
            Ok(())
        }
        Command::Backup { file } => {
            let users = secureai_app::backup::backup(&config, &file).await?;
            println!("Backed up {users} users to {}.", file.display());
            println!(
                "Keep the operator key with it (the key file, or SECUREAI_SECRET_KEY): without it \
                 the sealed secrets in the copy cannot be read."
            );
            Ok(())
        }
        Command::Restore { file } => {
            let users = secureai_app::backup::restore(&config, &file).await?;
            println!("Restored {users} users from {}. Start the service as usual.", file.display());
            Ok(())
        }
        Command::Secrets { action: SecretsAction::Rotate } => {
            let rotation = secureai_app::secret_key::rotate(&config).await?;
            println!("Re-sealed {} secrets with a new key.", rotation.resealed);
            if rotation.replaced {
                println!("The key file {} holds the new key.", rotation.new_key_file.display());
                if let Some(previous) = rotation.previous_key_file {
                    println!(
                        "The old key is kept in {}; delete it once backups made with it are gone.",
                        previous.display()
                    );
                }
            } else {
                println!(
                    "The new key is in {}: set SECUREAI_SECRET_KEY to its content on every instance \
                     before starting them again, then delete the file.",
                    rotation.new_key_file.display()
                );
            }
            Ok(())
        }
        Command::Admin { action: AdminAction::Create { email, name } } => {
            let (email, link) = secureai_app::invite_admin(&config, &email, &name).await?;
            let valid_for = secureai_domain::dates::lifetime_in_words(chrono::Duration::hours(
                i64::from(config.invitation_ttl_hours),
            ));
            println!(
                "Invited {email} as an administrator. Activation link (valid {valid_for}, also emailed):"
            );
            println!();
            println!("    {link}");
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "secureai: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match secureai_app::traces::init(&config) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "secureai: cannot export traces: {error:#}");
            return ExitCode::from(2);
        }
    };
    let outcome = run(cli, config).await;
    telemetry.shutdown().await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "secureai: {error:#}");
            ExitCode::FAILURE
        }
    }
}
