//! `secureai`: the SecureAI user-management service and its operator
//! commands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secureai_app::{Application, Config};
use tracing_subscriber::EnvFilter;

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

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},sqlx=warn,sea_orm=warn", config.log)));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
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
    match cli.command {
        Command::Serve => {
            let app = Application::build(&config).await?;
            tracing::info!(address = %app.address(), public_url = app.public_url(), "listening");
            println!("SecureAI is listening on {}", app.public_url());
            if let Some(link) = app.setup_link() {
                println!();
                println!(
                    "No administrator exists yet. Open this one-time link to create the first admin:"
                );
                println!();
                println!("    {link}");
                println!();
                println!(
                    "The link works once; restarting the service prints a new one and voids this one."
                );
            }
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
        Command::Admin { action: AdminAction::Create { email, name } } => {
            let (email, link) = secureai_app::invite_admin(&config, &email, &name).await?;
            println!(
                "Invited {email} as an administrator. Activation link (valid 72 hours, also emailed):"
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
            eprintln!("secureai: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    match run(cli, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("secureai: {error:#}");
            ExitCode::FAILURE
        }
    }
}
