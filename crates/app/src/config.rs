//! Configuration: built-in defaults, then a TOML file (`--config`, else
//! `./secureai.toml` if present), then `SECUREAI_*` environment variables
//! (nested keys with `__`, e.g. `SECUREAI_MAIL__FROM`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurityConfig {
    /// Plain text (only for a relay on the same host or network).
    None,
    /// STARTTLS upgrade, usually port 587.
    Starttls,
    /// TLS from the first byte, usually port 465.
    Tls,
}

/// SMTP settings from the configuration: in force until an admin saves
/// others in Settings > Email.
#[derive(Clone, Serialize, Deserialize)]
pub struct SmtpConfig {
    /// Host name.
    pub host: String,
    /// Port (465 for TLS, 587 for STARTTLS, 25 for none).
    pub port: u16,
    /// `none`, `starttls` or `tls`.
    pub security: SmtpSecurityConfig,
    /// User name, if any.
    #[serde(default)]
    pub username: Option<String>,
    /// Password, if any (never logged).
    #[serde(default)]
    pub password: Option<String>,
    /// Give up on a connection or command after this many seconds (also
    /// for servers saved in Settings > Email).
    #[serde(default = "default_smtp_timeout")]
    pub timeout_secs: u64,
}

fn default_smtp_timeout() -> u64 {
    30
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .finish_non_exhaustive()
    }
}

/// Mail settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct MailConfig {
    /// Sender, e.g. `SecureAI <no-reply@example.com>`.
    pub from: String,
    /// Folder for `.eml` files when no SMTP server is set (default `<data_dir>/mail`).
    pub dir: Option<PathBuf>,
    /// SMTP server; without it (and without saved settings) mail goes to files.
    pub smtp: Option<SmtpConfig>,
    /// PEM file of extra root certificates for SMTP servers with a private
    /// certificate authority.
    pub smtp_ca_file: Option<PathBuf>,
    /// Folder with template overrides.
    pub templates_dir: Option<PathBuf>,
    /// How often the outbox worker looks for due messages, in milliseconds.
    pub poll_interval_ms: u64,
    /// Attempts before a message is marked failed.
    pub max_attempts: u32,
    /// Delay before the first retry, in milliseconds (doubled each time,
    /// jittered, at most `max_retry_secs`).
    pub first_retry_ms: u64,
    /// Longest delay between attempts, in seconds.
    pub max_retry_secs: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            from: "SecureAI <no-reply@secureai.localhost>".to_owned(),
            dir: None,
            smtp: None,
            smtp_ca_file: None,
            templates_dir: None,
            poll_interval_ms: 1000,
            max_attempts: 12,
            first_retry_ms: 30_000,
            max_retry_secs: 3600,
        }
    }
}

/// argon2id cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct PasswordHashingConfig {
    /// Memory in KiB (OWASP: 19456).
    pub memory_kib: u32,
    /// Iterations (OWASP: 2).
    pub iterations: u32,
    /// Parallelism (OWASP: 1).
    pub parallelism: u32,
    /// Hashes admitted at once, computed or queued (default: twice the CPU
    /// cores).
    pub max_concurrent: Option<usize>,
    /// Threads computing them (default: the CPU cores; at most
    /// `max_concurrent`); each holds `memory_kib` of memory, reused from one
    /// hash to the next and given back after 5 s without work.
    pub threads: Option<usize>,
    /// How long a sign-in waits for a free hashing slot before it is
    /// answered 503 `busy` with `Retry-After`.
    pub max_wait_ms: u64,
}

impl Default for PasswordHashingConfig {
    fn default() -> Self {
        let owasp = secureai_system::Argon2Cost::OWASP;
        Self {
            memory_kib: owasp.memory_kib,
            iterations: owasp.iterations,
            parallelism: owasp.parallelism,
            max_concurrent: None,
            threads: None,
            max_wait_ms: 3000,
        }
    }
}

/// Everything `secureai` can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Whether metrics are counted and `/metrics` served (default true).
    pub metrics_enabled: bool,
    /// A separate address for `/metrics` (e.g. `127.0.0.1:9464`); when set,
    /// the main listener no longer serves it.
    pub metrics_listen: Option<SocketAddr>,
    /// Public base URL used in links (default `http://<listen>`).
    pub public_url: Option<String>,
    /// Folder for the SQLite database and mail files.
    pub data_dir: PathBuf,
    /// Database URL (default: SQLite file `<data_dir>/secureai.db`).
    pub database_url: Option<String>,
    /// Most database connections.
    pub database_max_connections: u32,
    /// Log filter (`info`, `secureai=debug`, …); `RUST_LOG` wins if set.
    pub log: String,
    /// Invitation and reset links work this many hours.
    pub invitation_ttl_hours: u32,
    /// Sessions end after this many idle minutes.
    pub session_idle_minutes: u32,
    /// Sessions end this many hours after sign-in.
    pub session_absolute_hours: u32,
    /// Invited + active users allowed (absent = unlimited).
    pub seat_limit: Option<u32>,
    /// Mail.
    pub mail: MailConfig,
    /// Password hashing cost.
    pub password_hashing: PasswordHashingConfig,
    /// Limits of imports through the API (the command line has none).
    pub import: ImportConfig,
    /// Single sign-on.
    pub sso: SsoConfig,
    /// Usage analytics.
    pub analytics: AnalyticsConfig,
    /// Webhooks: which endpoint addresses are accepted, how often due
    /// deliveries are looked for.
    pub webhooks: WebhooksConfig,
    /// `text` (readable) or `json` (one object per line, for a log
    /// collector).
    pub log_format: LogFormat,
    /// Reverse proxies (CIDR blocks) whose `Forwarded` / `X-Forwarded-For`
    /// headers name the client; empty: the TCP peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How often expired SSO sign-ins and stale attempt counts are deleted.
    pub sweep_interval_secs: u64,
    /// The key sealing secrets at rest, base64 of 32 bytes
    /// (`SECUREAI_SECRET_KEY`); wins over the key file.
    pub secret_key: Option<OperatorKey>,
    /// The key file (default `<data_dir>/secret.key`), created on first
    /// start with mode 0600.
    pub secret_key_file: Option<PathBuf>,
}

/// The operator's secret key as configured: never printed.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct OperatorKey(String);

impl From<String> for OperatorKey {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl OperatorKey {
    /// The configured text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Webhook endpoints and their deliveries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhooksConfig {
    /// Accept `http://` endpoints on a loopback address (development and
    /// tests only): `SECUREAI_WEBHOOKS__ALLOW_INSECURE_LOOPBACK`.
    pub allow_insecure_loopback: bool,
    /// Accept endpoints in private, loopback and other non-public address
    /// ranges (receivers on the internal network).
    pub allow_private: bool,
    /// How often the worker looks for due deliveries, in milliseconds.
    pub poll_interval_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self { allow_insecure_loopback: false, allow_private: false, poll_interval_ms: 250 }
    }
}

/// Usage analytics: how much one report may carry, how long raw events
/// are kept (daily aggregates are kept for good).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalyticsConfig {
    /// Most events in one `POST /api/v1/usage-events`.
    pub max_batch: usize,
    /// Raw usage events are deleted after this many days.
    pub raw_retention_days: u32,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self { max_batch: 1000, raw_retention_days: 90 }
    }
}

/// Single sign-on from the configuration: in force until an admin saves
/// other settings in Settings > SSO.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SsoConfig {
    /// `none`, `oidc` or `saml`.
    pub mode: String,
    /// OIDC: the issuer URL (discovery).
    pub issuer_url: Option<String>,
    /// OIDC: our client id.
    pub client_id: Option<String>,
    /// OIDC: our client secret.
    pub client_secret: Option<String>,
    /// OIDC: scopes besides `openid`.
    pub scopes: Vec<String>,
    /// SAML: the IdP metadata file (XML, with its signing certificate).
    pub idp_metadata_file: Option<PathBuf>,
    /// SAML: our entity id (default `<public_url>/auth/saml/metadata`).
    pub sp_entity_id: Option<String>,
    /// SAML: the attribute carrying the email (default: the NameID).
    pub email_attribute: Option<String>,
    /// SAML: accept IdP-initiated sign-in.
    pub allow_idp_initiated: bool,
    /// Whether a SAML email may link an existing account that is already
    /// linked at another provider (accounts awaiting their first SSO
    /// sign-in are always linked).
    pub trust_saml_email_for_linking: bool,
    /// Create accounts at first sign-in for verified emails (role user).
    pub jit_provisioning: bool,
    /// Clock difference tolerated with the provider, in seconds.
    pub clock_skew_secs: u32,
    /// Timeout of each request to the provider, in seconds.
    pub timeout_secs: u64,
    /// SSO sign-ins one client address may begin per minute (each keeps a
    /// row for ten minutes); more are answered 429.
    pub begin_per_minute: u32,
}

impl Default for SsoConfig {
    fn default() -> Self {
        Self {
            mode: "none".to_owned(),
            issuer_url: None,
            client_id: None,
            client_secret: None,
            scopes: vec!["email".to_owned(), "profile".to_owned()],
            idp_metadata_file: None,
            sp_entity_id: None,
            email_attribute: None,
            allow_idp_initiated: false,
            trust_saml_email_for_linking: false,
            jit_provisioning: false,
            clock_skew_secs: 60,
            timeout_secs: 10,
            begin_per_minute: 600,
        }
    }
}

impl std::fmt::Debug for SsoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoConfig")
            .field("mode", &self.mode)
            .field("issuer_url", &self.issuer_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[REDACTED]"))
            .field("scopes", &self.scopes)
            .field("idp_metadata_file", &self.idp_metadata_file)
            .field("sp_entity_id", &self.sp_entity_id)
            .field("email_attribute", &self.email_attribute)
            .field("allow_idp_initiated", &self.allow_idp_initiated)
            .field("jit_provisioning", &self.jit_provisioning)
            .field("clock_skew_secs", &self.clock_skew_secs)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

/// Limits of one import through the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ImportConfig {
    /// Largest file, in bytes.
    pub max_bytes: usize,
    /// Most data rows.
    pub max_rows: u64,
}

impl Default for ImportConfig {
    fn default() -> Self {
        Self { max_bytes: 10 * 1024 * 1024, max_rows: 50_000 }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_enabled: true,
            metrics_listen: None,
            public_url: None,
            data_dir: PathBuf::from("data"),
            database_url: None,
            database_max_connections: 10,
            log: "info".to_owned(),
            invitation_ttl_hours: 72,
            session_idle_minutes: 120,
            session_absolute_hours: 12,
            seat_limit: None,
            mail: MailConfig::default(),
            password_hashing: PasswordHashingConfig::default(),
            import: ImportConfig::default(),
            analytics: AnalyticsConfig::default(),
            webhooks: WebhooksConfig::default(),
            log_format: LogFormat::Text,
            sso: SsoConfig::default(),
            trusted_proxies: Vec::new(),
            sweep_interval_secs: 60,
            secret_key: None,
            secret_key_file: None,
        }
    }
}

impl Config {
    /// Loads defaults ← file ← environment.
    ///
    /// # Errors
    /// A [`figment::Error`] naming the bad key and where it came from.
    pub fn load(file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::from(Serialized::defaults(Self::default()));
        figment = match file {
            Some(path) => figment.merge(Toml::file_exact(path)),
            None => figment.merge(Toml::file("secureai.toml")),
        };
        figment
            .merge(Env::prefixed("SECUREAI_").split("__").ignore(&["config"]))
            .extract()
            .map_err(Box::new)
    }

    /// The database URL in force.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!("sqlite://{}?mode=rwc", self.data_dir.join("secureai.db").display())
        })
    }

    /// The mail folder in force.
    pub fn mail_dir(&self) -> PathBuf {
        self.mail.dir.clone().unwrap_or_else(|| self.data_dir.join("mail"))
    }
}

#[cfg(test)]
// figment's `Jail` closures return its large error type; that is its API.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_ones() {
        let config = Config::default();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database_url(), "sqlite://data/secureai.db?mode=rwc");
        assert_eq!(config.mail_dir(), PathBuf::from("data/mail"));
        assert!(config.mail.smtp.is_none());
    }

    #[test]
    fn the_file_and_the_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "custom.toml",
                "listen = \"127.0.0.1:9000\"\nseat_limit = 25\n[mail]\nfrom = \"IT <it@example.com>\"\n",
            )?;
            jail.set_env("SECUREAI_LISTEN", "127.0.0.1:9100");
            jail.set_env("SECUREAI_DATABASE_URL", "postgres://db/secureai");
            jail.set_env("SECUREAI_MAIL__POLL_INTERVAL_MS", "250");
            let config = Config::load(Some(Path::new("custom.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.listen.to_string(), "127.0.0.1:9100");
            assert_eq!(config.seat_limit, Some(25));
            assert_eq!(config.mail.from, "IT <it@example.com>");
            assert_eq!(config.mail.poll_interval_ms, 250);
            assert_eq!(config.database_url(), "postgres://db/secureai");
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_names_its_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SECUREAI_LISTEN", "not an address");
            let error = Config::load(None).unwrap_err().to_string();
            assert!(error.to_lowercase().contains("listen"), "{error}");
            Ok(())
        });
    }
}
