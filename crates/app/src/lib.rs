//! The `secureai` application: reads configuration, wires the adapters to
//! the domain, migrates the database, runs the HTTP server and the outbox
//! worker. This is the only crate that names concrete adapters.

pub mod config;
pub mod secret_key;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use poem::listener::{Acceptor, Listener, TcpListener};
use secureai_domain::analytics::service::AnalyticsPolicy;
use secureai_domain::mail::service::{DeliveryPolicy, OutboxDelivery};
use secureai_domain::mail::settings::{EmailSettings, SmtpPassword, SmtpSecurity, SmtpServer};
use secureai_domain::service::{Policy, Ports, UserManagement};
use secureai_domain::sso::settings::{
    ClientSecret, OidcSettings, SamlSettings, SsoMode, SsoSettings,
};
use secureai_domain::{Clock, DisplayName, EmailAddress, PlainToken, RequestContext};
use secureai_http::{AppState, Readiness};
use secureai_mail::{Mailer, MailerOptions, Templates};
use secureai_sso::{SsoAdapter, SsoOptions};
use secureai_store::{SecretKey, SqlStore, StoreOptions};
use secureai_system::{Argon2Cost, Argon2Hasher, HashingLimits, OsTokens, SystemClock};
use tokio::sync::watch;

pub use config::Config;

/// The use cases and the store, wired from configuration.
pub struct Wiring {
    /// The use cases.
    pub service: Arc<UserManagement>,
    /// The store.
    pub store: SqlStore,
    /// The mail transport.
    pub mailer: Arc<Mailer>,
    /// The email settings of the configuration.
    pub email: EmailSettings,
}

/// The email settings the configuration gives (in force until an admin
/// saves others).
///
/// # Errors
/// When the sender or the SMTP server is invalid, naming the key.
pub fn configured_email(config: &Config) -> anyhow::Result<EmailSettings> {
    let (name, address) = secureai_mail::parse_mailbox(&config.mail.from).ok_or_else(|| {
        anyhow::anyhow!(
            "mail.from `{}` is not a mailbox such as `IT <it@example.com>`",
            config.mail.from
        )
    })?;
    let from_address =
        EmailAddress::parse(&address).map_err(|e| anyhow::anyhow!("mail.from: {e}"))?;
    let from_name = DisplayName::parse(name.as_deref().unwrap_or("SecureAI"))
        .map_err(|e| anyhow::anyhow!("mail.from: the name {e}"))?;
    let smtp = match &config.mail.smtp {
        None => None,
        Some(smtp) => {
            let server = SmtpServer {
                host: smtp.host.clone(),
                port: smtp.port,
                security: match smtp.security {
                    config::SmtpSecurityConfig::None => SmtpSecurity::None,
                    config::SmtpSecurityConfig::Starttls => SmtpSecurity::Starttls,
                    config::SmtpSecurityConfig::Tls => SmtpSecurity::Tls,
                },
                username: smtp.username.clone(),
                password: smtp
                    .password
                    .as_deref()
                    .map(SmtpPassword::parse)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("mail.smtp.{}: {}", e.field, e.reason))?,
            };
            server
                .validate()
                .map_err(|e| anyhow::anyhow!("mail.smtp.{}: {}", e.field, e.reason))?;
            Some(server)
        }
    };
    Ok(EmailSettings { smtp, from_address, from_name })
}

/// The mail transport: templates with links to `public_url`, files in the
/// mail folder, SMTP timeouts and extra certificates from the configuration.
///
/// # Errors
/// When the URL, templates, folder or certificate file are unusable.
pub fn mailer(config: &Config, public_url: &str) -> anyhow::Result<Mailer> {
    let url = url::Url::parse(public_url)
        .with_context(|| format!("the public URL `{public_url}` is not a valid URL"))?;
    let templates = Templates::load(url, config.mail.templates_dir.as_deref())?;
    let extra_roots_pem = match &config.mail.smtp_ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read mail.smtp_ca_file {}", path.display()))?,
        ),
        None => None,
    };
    let options = MailerOptions {
        files_dir: config.mail_dir(),
        timeout: std::time::Duration::from_secs(
            config.mail.smtp.as_ref().map_or(30, |s| s.timeout_secs),
        ),
        extra_roots_pem,
    };
    Ok(Mailer::new(options, templates)?)
}

/// The SSO settings the configuration gives (in force until an admin saves
/// others). Checked against the provider when an admin saves settings, and
/// at each sign-in.
///
/// # Errors
/// When the mode is unknown, a required key is missing or invalid, or the
/// SAML metadata file cannot be read.
pub fn configured_sso(config: &Config, public_url: &str) -> anyhow::Result<SsoSettings> {
    let sso = &config.sso;
    let mode = match sso.mode.trim().to_ascii_lowercase().as_str() {
        "none" | "" => SsoMode::None,
        "oidc" => {
            let need = |value: &Option<String>, key: &str| {
                value
                    .clone()
                    .ok_or_else(|| anyhow::anyhow!("sso.{key} is required when sso.mode is oidc"))
            };
            SsoMode::Oidc(OidcSettings {
                issuer_url: need(&sso.issuer_url, "issuer_url")?,
                client_id: need(&sso.client_id, "client_id")?,
                client_secret: sso
                    .client_secret
                    .as_deref()
                    .map(ClientSecret::parse)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("sso.client_secret {}", e.reason))?,
                scopes: sso.scopes.clone(),
            })
        }
        "saml" => {
            let file = sso.idp_metadata_file.as_ref().ok_or_else(|| {
                anyhow::anyhow!("sso.idp_metadata_file is required when sso.mode is saml")
            })?;
            let xml = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read sso.idp_metadata_file {}", file.display()))?;
            SsoMode::Saml(SamlSettings {
                idp_metadata_url: None,
                idp_metadata_xml: xml,
                sp_entity_id: sso
                    .sp_entity_id
                    .clone()
                    .unwrap_or_else(|| format!("{public_url}/auth/saml/metadata")),
                email_attribute: sso.email_attribute.clone(),
                allow_idp_initiated: sso.allow_idp_initiated,
                trust_email_for_linking: sso.trust_saml_email_for_linking,
            })
        }
        other => anyhow::bail!("sso.mode must be none, oidc or saml, not `{other}`"),
    };
    let settings = SsoSettings {
        mode,
        jit_provisioning: sso.jit_provisioning,
        clock_skew_secs: sso.clock_skew_secs,
    };
    settings.validate().map_err(|e| anyhow::anyhow!("sso.{} {}", e.field, e.reason))?;
    Ok(settings)
}

/// The domain rules configured.
pub fn policy(config: &Config) -> Policy {
    Policy {
        invitation_ttl: chrono::Duration::hours(i64::from(config.invitation_ttl_hours)),
        session_idle_timeout: chrono::Duration::minutes(i64::from(config.session_idle_minutes)),
        session_absolute_timeout: chrono::Duration::hours(i64::from(config.session_absolute_hours)),
        seat_limit: config.seat_limit,
        analytics: AnalyticsPolicy {
            max_batch: config.analytics.max_batch.max(1),
            raw_retention: chrono::Duration::days(i64::from(
                config.analytics.raw_retention_days.max(1),
            )),
            ..AnalyticsPolicy::default()
        },
        ..Policy::default()
    }
}

/// Connects (and migrates) the database and builds the use cases.
///
/// # Errors
/// When the data folder, the database or the hasher cannot be set up.
pub async fn wire(config: &Config) -> anyhow::Result<Wiring> {
    let url = public_url(config, config.listen);
    wire_with_clock(config, &url, Arc::new(SystemClock)).await
}

/// [`wire`] with links to `public_url` and another clock (tests move time
/// with a fake one).
///
/// # Errors
/// As [`wire`].
pub async fn wire_with_clock(
    config: &Config,
    public_url: &str,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Wiring> {
    let email = configured_email(config)?;
    let sso = configured_sso(config, public_url)?;
    let identity = SsoAdapter::new(
        public_url,
        SsoOptions {
            timeout: std::time::Duration::from_secs(config.sso.timeout_secs.max(1)),
            ..SsoOptions::default()
        },
    )?;
    let mailer = Arc::new(mailer(config, public_url)?);
    let store = secret_key::open_store(config, &secret_key::load(config)?).await?;
    let hashing = &config.password_hashing;
    let defaults = HashingLimits::default();
    let hasher = Argon2Hasher::new(
        Argon2Cost {
            memory_kib: hashing.memory_kib,
            iterations: hashing.iterations,
            parallelism: hashing.parallelism,
        },
        HashingLimits {
            concurrent: hashing.max_concurrent.unwrap_or(defaults.concurrent),
            max_wait: std::time::Duration::from_millis(hashing.max_wait_ms),
            ..defaults
        },
    )?;
    let ports = Ports::from_store(
        Arc::new(store.clone()),
        clock,
        Arc::new(OsTokens),
        Arc::new(hasher),
        mailer.clone(),
    )
    .with_identity_provider(Arc::new(identity));
    let policy = Policy { email: email.clone(), sso, ..policy(config) };
    Ok(Wiring { service: Arc::new(UserManagement::new(ports, policy)), store, mailer, email })
}

/// Creates the data folder and connects to the database (not migrating).
///
/// # Errors
/// When the folder cannot be created or the database reached.
pub async fn connect(config: &Config) -> anyhow::Result<SqlStore> {
    connect_with_key(config, secret_key::load(config)?.key).await
}

/// Creates the data folder and connects with this secret key (not
/// migrating, not checking the key).
///
/// # Errors
/// When the database cannot be reached.
pub async fn connect_with_key(config: &Config, key: SecretKey) -> anyhow::Result<SqlStore> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data folder {}", config.data_dir.display()))?;
    let options = StoreOptions {
        max_connections: config.database_max_connections,
        secret_key: Some(key),
        ..StoreOptions::default()
    };
    Ok(SqlStore::connect(&config.database_url(), &options).await?)
}

/// The public base URL: configured, or derived from the bound address.
pub fn public_url(config: &Config, bound: SocketAddr) -> String {
    config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{bound}"))
        .trim_end_matches('/')
        .to_owned()
}

struct StoreReadiness(SqlStore);

#[async_trait]
impl Readiness for StoreReadiness {
    async fn check(&self) -> Result<(), String> {
        self.0.ping().await.map_err(|_| "unreachable".to_owned())
    }
}

/// A built application, bound to its port, not yet serving.
pub struct Application {
    acceptor: poem::listener::TcpAcceptor,
    address: SocketAddr,
    public_url: String,
    state: AppState,
    delivery: Arc<OutboxDelivery>,
    poll_interval: std::time::Duration,
    sweep_interval: std::time::Duration,
    setup_token: Option<PlainToken>,
    wiring: Wiring,
}

impl Application {
    /// Wires everything and binds the listening socket (port 0 picks a free
    /// port, which [`Application::address`] tells).
    ///
    /// # Errors
    /// When configuration, database, mail or the socket cannot be set up.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with another clock (tests move time with a
    /// fake one).
    ///
    /// # Errors
    /// As [`Application::build`].
    pub async fn build_with_clock(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let acceptor = TcpListener::bind(config.listen)
            .into_acceptor()
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let address = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .context("the listener has no address")?;
        let public_url = public_url(config, address);
        let wiring = wire_with_clock(config, &public_url, clock.clone()).await?;
        let delivery = Arc::new(OutboxDelivery::new(
            Arc::new(wiring.store.clone()),
            Arc::new(wiring.store.clone()),
            wiring.mailer.clone(),
            clock,
            DeliveryPolicy {
                configured: wiring.email.clone(),
                max_attempts: config.mail.max_attempts,
                // At most a day: larger values would only overflow.
                first_retry: chrono::Duration::milliseconds(
                    i64::try_from(config.mail.first_retry_ms.min(86_400_000)).unwrap_or(0),
                ),
                max_retry: chrono::Duration::seconds(
                    i64::try_from(config.mail.max_retry_secs.min(86_400)).unwrap_or(0),
                ),
                ..DeliveryPolicy::default()
            },
        ));
        let state = AppState {
            service: wiring.service.clone(),
            secure_cookies: !public_url.starts_with("http://"),
            public_url: public_url.clone(),
            readiness: Arc::new(StoreReadiness(wiring.store.clone())),
            import_limits: secureai_http::ImportLimits {
                max_bytes: config.import.max_bytes,
                max_rows: config.import.max_rows,
            },
            trusted_proxies: secureai_http::TrustedProxies::new(config.trusted_proxies.clone()),
            sso_begin_limit: Arc::new(secureai_http::PerAddress::per_minute(
                config.sso.begin_per_minute,
            )),
        };
        let setup_token = wiring.service.prepare_setup().await?;
        Ok(Self {
            acceptor,
            address,
            public_url,
            state,
            delivery,
            poll_interval: std::time::Duration::from_millis(config.mail.poll_interval_ms),
            // A second to a day: longer would only overflow the timer.
            sweep_interval: std::time::Duration::from_secs(
                config.sweep_interval_secs.clamp(1, 86_400),
            ),
            setup_token,
            wiring,
        })
    }

    /// The bound address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The public base URL.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The one-time first-admin link, while no admin exists.
    pub fn setup_link(&self) -> Option<String> {
        self.setup_token.as_ref().map(|t| format!("{}/setup?token={}", self.public_url, t.expose()))
    }

    /// The use cases (for tests and embedding).
    pub fn service(&self) -> Arc<UserManagement> {
        self.wiring.service.clone()
    }

    /// Serves until `shutdown` resolves, then finishes requests in flight
    /// and stops the outbox worker after its current round.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let worker =
            tokio::spawn(worker::run(self.delivery.clone(), self.poll_interval, stop_rx.clone()));
        let retention = tokio::spawn(worker::purge_usage(
            self.wiring.service.clone(),
            std::time::Duration::from_secs(3600),
            stop_rx.clone(),
        ));
        let sweep =
            tokio::spawn(worker::sweep(self.wiring.service.clone(), self.sweep_interval, stop_rx));
        let app = secureai_http::app(self.state);
        let served = poem::Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(app, shutdown, Some(std::time::Duration::from_secs(20)))
            .await;
        let _ = stop_tx.send(true);
        let _ = worker.await;
        let _ = retention.await;
        let _ = sweep.await;
        self.wiring.store.close().await?;
        served.context("the HTTP server failed")
    }
}

/// Invites an admin from the command line; returns the user's email and the
/// activation link (also emailed).
///
/// # Errors
/// When the invitation is refused (email taken, invalid input, seats).
pub async fn invite_admin(
    config: &Config,
    email: &str,
    name: &str,
) -> anyhow::Result<(String, String)> {
    let wiring = wire(config).await?;
    let invited = wiring
        .service
        .invite_admin_as_operator(email, name, &RequestContext::command_line())
        .await?;
    let link = format!(
        "{}/invitations/accept?token={}",
        public_url(config, config.listen),
        invited.token.expose()
    );
    wiring.store.close().await?;
    Ok((invited.user.email.to_string(), link))
}

/// Erases a user's personal data from the command line; returns their id.
///
/// # Errors
/// When the user is unknown or the last active admin.
pub async fn erase_user(config: &Config, email: &str) -> anyhow::Result<String> {
    let wiring = wire(config).await?;
    let erased =
        wiring.service.erase_user_as_operator(email, &RequestContext::command_line()).await?;
    wiring.store.close().await?;
    Ok(erased.id.to_string())
}

/// What `secureai users import` did.
pub struct ImportOutcome {
    /// The import's record (counts, warnings).
    pub record: secureai_domain::imports::models::ImportRecord,
    /// Where the skipped rows were written, if any were skipped.
    pub report: Option<std::path::PathBuf>,
}

/// Imports a CSV file on the operator's behalf, streaming it in batches
/// (no row limit), calling `progress` with the rows done; writes the
/// skipped rows (`line,email,field,reason`) to `report`.
///
/// # Errors
/// When the file cannot be read or is refused as a whole, or the database
/// fails.
pub async fn import_users(
    config: &Config,
    file: &std::path::Path,
    dry_run: bool,
    report: &std::path::Path,
    progress: &mut (dyn FnMut(u64) + Send),
) -> anyhow::Result<ImportOutcome> {
    use secureai_domain::imports::models::ImportMode;
    use secureai_domain::imports::service::ImportRequest;

    let input =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let wiring = wire(config).await?;
    let request = ImportRequest {
        file_name: file
            .file_name()
            .map_or_else(|| "import.csv".into(), |n| n.to_string_lossy().into_owned()),
        mode: if dry_run { ImportMode::Preview } else { ImportMode::Commit },
        max_rows: None,
        keep_all_rows: false,
    };
    let record = wiring
        .service
        .import_csv_as_operator(
            std::io::BufReader::with_capacity(1 << 16, input),
            &request,
            &RequestContext::command_line(),
            progress,
        )
        .await?;
    let mut written = None;
    if record.counts.skipped > 0 {
        let mut writer = csv::Writer::from_path(report)
            .with_context(|| format!("cannot write the report {}", report.display()))?;
        writer.write_record(secureai_http::SKIPPED_ROWS_HEADER)?;
        let mut after = 0;
        loop {
            let rows = wiring.service.skipped_rows_as_operator(record.id, after, 5000).await?;
            let Some(last) = rows.last() else { break };
            after = last.line;
            secureai_http::write_skipped_rows(&mut writer, &rows)?;
        }
        writer.flush()?;
        written = Some(report.to_path_buf());
    }
    wiring.store.close().await?;
    Ok(ImportOutcome { record, report: written })
}
