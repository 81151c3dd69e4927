//! Wiring: the configuration read into the domain's policy and settings,
//! the adapters built and connected to the domain's ports.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use secureai_domain::analytics::models::AnalyticsPolicy;
use secureai_domain::mail::settings::{EmailSettings, SmtpPassword, SmtpSecurity, SmtpServer};
use secureai_domain::sso::settings::{
    ClientSecret, OidcSettings, SamlSettings, SsoMode, SsoSettings,
};
use secureai_domain::{Clock, DisplayName, EmailAddress};
use secureai_domain::{Policy, Ports, UserManagement};
use secureai_mail::{Mailer, MailerOptions, Templates};
use secureai_sso::{SsoAdapter, SsoOptions};
use secureai_store::{SecretKey, SqlStore, StoreOptions};
use secureai_system::{Argon2Cost, Argon2Hasher, HashingLimits, OsTokens, SystemClock};

use crate::{Config, config, secret_key};

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
    /// The instance's metrics: sign-ins and password hashing are counted
    /// here as they happen (unless `metrics_enabled` is false).
    pub metrics: Arc<secureai_telemetry::Metrics>,
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
        webhooks: endpoint_policy(config),
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

/// Which webhook endpoint addresses the configuration accepts.
pub fn endpoint_policy(config: &Config) -> secureai_domain::webhooks::models::EndpointPolicy {
    secureai_domain::webhooks::models::EndpointPolicy {
        allow_insecure_loopback: config.webhooks.allow_insecure_loopback,
        allow_private: config.webhooks.allow_private,
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
            threads: hashing.threads.unwrap_or(defaults.threads),
            max_wait: std::time::Duration::from_millis(hashing.max_wait_ms),
            ..defaults
        },
    )?;
    let metrics = Arc::new(secureai_telemetry::Metrics::new());
    let hashed = metrics.clone();
    let (hasher, meter): (_, Arc<dyn secureai_domain::telemetry::Meter>) = if config.metrics_enabled
    {
        (hasher.observed(Arc::new(move |took| hashed.password_hashed(took))), metrics.clone())
    } else {
        (hasher, Arc::new(secureai_domain::telemetry::NoMeter))
    };
    let passkey_protocol: Arc<dyn secureai_domain::mfa::passkeys::PasskeyProtocol> =
        match secureai_passkeys::WebAuthnPasskeys::new(public_url) {
            Ok(passkeys) => {
                tracing::info!(origin = %passkeys.origin(), "passkeys work at this origin");
                Arc::new(passkeys)
            }
            Err(reason) => {
                tracing::warn!(%reason, "passkeys are off");
                Arc::new(secureai_domain::mfa::passkeys::NoPasskeys(reason.to_string()))
            }
        };
    let ports = Ports {
        identity: Arc::new(identity),
        passkey_protocol,
        meter,
        ..Arc::new(store.clone()).ports(clock, Arc::new(OsTokens), Arc::new(hasher), mailer.clone())
    };
    let policy = Policy { email: email.clone(), sso, ..policy(config) };
    let service = Arc::new(UserManagement::new(ports, policy));
    Ok(Wiring { service, store, mailer, email, metrics })
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
