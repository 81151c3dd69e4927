//! The mail adapter: renders outbox messages with templates (plain text and
//! HTML) and hands them to lettre — files in a folder by default, SMTP by
//! configuration. Implements the domain's `MailTransport` port; the outbox
//! worker in the domain decides when to retry.

mod templates;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use secureai_domain::mail::models::OutgoingMail;
use secureai_domain::mail::ports::{DeliveryError, MailTransport};

pub use templates::{RenderedMail, TemplateError, Templates};

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain text (only for a relay on the same host).
    None,
    /// STARTTLS upgrade, usually port 587.
    Starttls,
    /// TLS from the first byte, usually port 465.
    Tls,
}

/// SMTP server settings.
#[derive(Clone)]
pub struct SmtpSettings {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Connection security.
    pub security: SmtpSecurity,
    /// User name, if the server wants authentication.
    pub username: Option<String>,
    /// Password (never logged).
    pub password: Option<SecretString>,
    /// Give up on a connection or command after this long.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// Where mail goes.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// `.eml` files in this folder (the embedded default).
    Files(PathBuf),
    /// An SMTP server.
    Smtp(SmtpSettings),
}

/// Why the mailer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// The sender address is not valid.
    #[error("the sender address `{0}` is not a valid mailbox")]
    InvalidSender(String),
    /// The mail folder cannot be created.
    #[error("cannot create the mail folder {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The SMTP host cannot be used for TLS.
    #[error("cannot set up TLS for SMTP host `{host}`: {source}")]
    Tls {
        /// The host.
        host: String,
        /// The cause.
        source: lettre::transport::smtp::Error,
    },
    /// A template does not parse.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

enum Transport {
    Files(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

/// Renders and delivers outbox messages.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    templates: Templates,
}

impl Mailer {
    /// A mailer sending from `from` (e.g. `SecureAI <no-reply@example.com>`).
    ///
    /// # Errors
    /// [`MailerError`] if the sender, folder, TLS setup or templates are unusable.
    pub fn new(delivery: &Delivery, from: &str, templates: Templates) -> Result<Self, MailerError> {
        let from: Mailbox =
            from.parse().map_err(|_| MailerError::InvalidSender(from.to_owned()))?;
        let transport = match delivery {
            Delivery::Files(path) => {
                std::fs::create_dir_all(path)
                    .map_err(|source| MailerError::Folder { path: path.clone(), source })?;
                Transport::Files(AsyncFileTransport::<Tokio1Executor>::new(path))
            }
            Delivery::Smtp(settings) => Transport::Smtp(smtp_transport(settings)?),
        };
        Ok(Self { transport, from, templates })
    }
}

fn smtp_transport(
    settings: &SmtpSettings,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailerError> {
    let tls_error = |source| MailerError::Tls { host: settings.host.clone(), source };
    let mut builder = match settings.security {
        SmtpSecurity::None => {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.as_str())
        }
        SmtpSecurity::Starttls => {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
                .map_err(tls_error)?
        }
        SmtpSecurity::Tls => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host).map_err(tls_error)?
        }
    };
    builder = builder.port(settings.port).timeout(Some(settings.timeout));
    if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
        builder = builder
            .credentials(Credentials::new(user.clone(), password.expose_secret().to_owned()));
    }
    Ok(builder.build())
}

impl Mailer {
    fn message(&self, mail: &OutgoingMail) -> Result<Message, DeliveryError> {
        let rendered = self
            .templates
            .render(mail)
            .map_err(|e| DeliveryError::Permanent(format!("template error: {e}")))?;
        let to = Mailbox::new(
            Some(mail.to_name.to_string()),
            mail.to
                .as_str()
                .parse()
                .map_err(|_| DeliveryError::Permanent("the recipient address is invalid".into()))?,
        );
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .message_id(Some(format!("<{}@secureai>", mail.id)))
            .multipart(MultiPart::alternative_plain_html(rendered.text, rendered.html))
            .map_err(|e| DeliveryError::Permanent(format!("cannot build the message: {e}")))
    }
}

#[async_trait]
impl MailTransport for Mailer {
    async fn send(&self, mail: &OutgoingMail) -> Result<(), DeliveryError> {
        let message = self.message(mail)?;
        match &self.transport {
            Transport::Files(files) => {
                files.send(message).await.map(|_| ()).map_err(|e| {
                    DeliveryError::Transient(format!("cannot write the mail file: {e}"))
                })
            }
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    DeliveryError::Permanent(e.to_string())
                } else {
                    DeliveryError::Transient(e.to_string())
                }
            }),
        }
    }
}
