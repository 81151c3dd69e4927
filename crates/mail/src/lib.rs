//! The mail adapter: renders outbox messages with templates (plain text and
//! HTML) and hands them to lettre — `.eml` files in a folder when no SMTP
//! server is set, else the SMTP server of the settings in force (none,
//! STARTTLS or implicit TLS, optional login, timeouts, a pooled transport
//! rebuilt when the settings change). Implements the domain's
//! `MailTransport` port; the domain's outbox delivery decides when to retry.

mod templates;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secureai_domain::mail::models::OutgoingMail;
use secureai_domain::mail::ports::{DeliveryError, MailTransport};
use secureai_domain::mail::settings::{EmailSettings, SmtpSecurity, SmtpServer};

pub use templates::{RenderedMail, TemplateError, Templates};

/// How the mailer reaches files and servers (from the operator's
/// configuration; the server itself comes with each message's settings).
#[derive(Debug, Clone)]
pub struct MailerOptions {
    /// Folder for `.eml` files when no SMTP server is set.
    pub files_dir: PathBuf,
    /// Give up on an SMTP connection or command after this long.
    pub timeout: Duration,
    /// Extra trusted root certificates (PEM) for SMTP servers with a
    /// private certificate authority; the public web roots are always trusted.
    pub extra_roots_pem: Option<Vec<u8>>,
}

/// Why the mailer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MailerError {
    /// The mail folder cannot be created.
    #[error("cannot create the mail folder {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The extra root certificates do not parse.
    #[error("the SMTP CA certificate file is not a PEM certificate: {0}")]
    Certificate(lettre::transport::smtp::Error),
    /// A template does not parse.
    #[error(transparent)]
    Template(#[from] TemplateError),
}

type SmtpTransport = AsyncSmtpTransport<Tokio1Executor>;

/// Renders and delivers messages.
pub struct Mailer {
    files: AsyncFileTransport<Tokio1Executor>,
    options: MailerOptions,
    roots: Option<Certificate>,
    templates: Templates,
    /// The pooled transport for the server last used, rebuilt when the
    /// settings name another server (or other credentials).
    smtp: Mutex<Option<(SmtpServer, SmtpTransport)>>,
}

impl Mailer {
    /// A mailer with these options and templates.
    ///
    /// # Errors
    /// [`MailerError`] if the folder, certificates or templates are unusable.
    pub fn new(options: MailerOptions, templates: Templates) -> Result<Self, MailerError> {
        std::fs::create_dir_all(&options.files_dir)
            .map_err(|source| MailerError::Folder { path: options.files_dir.clone(), source })?;
        let roots = options
            .extra_roots_pem
            .as_deref()
            .map(Certificate::from_pem)
            .transpose()
            .map_err(MailerError::Certificate)?;
        Ok(Self {
            files: AsyncFileTransport::<Tokio1Executor>::new(&options.files_dir),
            options,
            roots,
            templates,
            smtp: Mutex::new(None),
        })
    }

    fn transport_for(&self, server: &SmtpServer) -> Result<SmtpTransport, DeliveryError> {
        let mut cached = self.smtp.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((for_server, transport)) = cached.as_ref()
            && for_server == server
        {
            return Ok(transport.clone());
        }
        let transport = self.build_transport(server)?;
        *cached = Some((server.clone(), transport.clone()));
        Ok(transport)
    }

    fn build_transport(&self, server: &SmtpServer) -> Result<SmtpTransport, DeliveryError> {
        let tls = || {
            let mut params = TlsParameters::builder(server.host.clone());
            if let Some(roots) = &self.roots {
                params = params.add_root_certificate(roots.clone());
            }
            params.build_rustls().map_err(|e| {
                DeliveryError::Permanent(format!("cannot set up TLS for {}: {e}", server.host))
            })
        };
        let mut builder = SmtpTransport::builder_dangerous(server.host.as_str())
            .port(server.port)
            .timeout(Some(self.options.timeout));
        builder = match server.security {
            SmtpSecurity::None => builder.tls(Tls::None),
            SmtpSecurity::Starttls => builder.tls(Tls::Required(tls()?)),
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
        };
        if let (Some(user), Some(password)) = (&server.username, &server.password) {
            builder =
                builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
        }
        Ok(builder.build())
    }

    fn message(
        &self,
        settings: &EmailSettings,
        mail: &OutgoingMail,
    ) -> Result<Message, DeliveryError> {
        let rendered = self
            .templates
            .render(mail)
            .map_err(|e| DeliveryError::Permanent(format!("template error: {e}")))?;
        let address = |raw: &str, what: &str| {
            raw.parse()
                .map_err(|_| DeliveryError::Permanent(format!("the {what} address is invalid")))
        };
        // Names go through lettre's header encoding; the domain already
        // refuses control characters (CR/LF injection) in them.
        let from = Mailbox::new(
            Some(settings.from_name.to_string()),
            address(settings.from_address.as_str(), "sender")?,
        );
        let to =
            Mailbox::new(Some(mail.to_name.to_string()), address(mail.to.as_str(), "recipient")?);
        Message::builder()
            .from(from)
            .to(to)
            .subject(rendered.subject)
            .message_id(Some(format!("<{}@secureai>", mail.id)))
            .multipart(MultiPart::alternative_plain_html(rendered.text, rendered.html))
            .map_err(|e| DeliveryError::Permanent(format!("cannot build the message: {e}")))
    }
}

#[async_trait]
impl MailTransport for Mailer {
    async fn send(
        &self,
        settings: &EmailSettings,
        mail: &OutgoingMail,
    ) -> Result<String, DeliveryError> {
        let message = self.message(settings, mail)?;
        let Some(server) = &settings.smtp else {
            return self
                .files
                .send(message)
                .await
                .map(|id| {
                    format!(
                        "written to {}",
                        self.options.files_dir.join(format!("{id}.eml")).display()
                    )
                })
                .map_err(|e| DeliveryError::Transient(format!("cannot write the mail file: {e}")));
        };
        let transport = self.transport_for(server)?;
        // A whole send is bounded too: a peer that accepts the connection
        // but never greets would otherwise hold the worker forever.
        let limit = self.options.timeout.saturating_mul(4);
        let span = tracing::info_span!(
            target: "secureai_trace",
            "smtp.send",
            otel.kind = "client",
            server.address = %server.host,
            server.port = server.port,
        );
        let sending = tracing::Instrument::instrument(transport.send(message), span);
        let Ok(sent) = tokio::time::timeout(limit, sending).await else {
            return Err(DeliveryError::Transient(format!(
                "{}:{} accepted the connection but did not complete the SMTP exchange within {} s: \
                 is it an SMTP server, and does it expect implicit TLS (port 465)?",
                server.host,
                server.port,
                limit.as_secs()
            )));
        };
        match sent {
            Ok(response) => Ok(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Err(error) => Err(explain(&error, server, self.options.timeout)),
        }
    }
}

/// Splits `Name <address>` (or a bare address) into its name and address.
pub fn parse_mailbox(raw: &str) -> Option<(Option<String>, String)> {
    let mailbox: Mailbox = raw.parse().ok()?;
    Some((mailbox.name, mailbox.email.to_string()))
}

/// Turns a lettre error into words an operator can act on, keeping the
/// server's own text. Nothing here includes the password. Problems of the
/// server or its settings (login refused, no STARTTLS, TLS failures) are
/// transient: they concern every message, so messages wait with back-off
/// for an admin to fix the settings instead of failing one by one; only a
/// refusal of this message (5xx to it) is permanent.
pub fn explain(
    error: &lettre::transport::smtp::Error,
    server: &SmtpServer,
    timeout: Duration,
) -> DeliveryError {
    let at = format!("{}:{}", server.host, server.port);
    let raw = error.to_string();
    let lower = raw.to_lowercase();
    let code = error.status().map(|c| c.to_string());
    let port_hint = "implicit TLS (security \"tls\") usually listens on port 465, STARTTLS on 587, \
                     and plain SMTP on 25";
    if matches!(code.as_deref(), Some("535" | "534" | "530" | "538")) {
        return DeliveryError::Transient(format!(
            "the mail server at {at} refused the login: check the user name and password ({raw})"
        ));
    }
    if lower.contains("no compatible authentication mechanism") {
        return DeliveryError::Transient(format!(
            "the mail server at {at} offers no login method over this connection; many servers \
             allow login only after STARTTLS ({raw})"
        ));
    }
    if lower.contains("starttls is not supported") {
        return DeliveryError::Transient(format!(
            "the mail server at {at} does not offer STARTTLS; {port_hint} ({raw})"
        ));
    }
    if error.is_timeout() {
        let mode = match server.security {
            SmtpSecurity::Tls => "",
            _ => " A server that expects implicit TLS waits silently for a TLS handshake:",
        };
        return DeliveryError::Transient(format!(
            "no answer from {at} within {} s.{mode} {port_hint}; a firewall may also drop the \
             connection ({raw})",
            timeout.as_secs()
        ));
    }
    if lower.contains("connection refused") {
        return DeliveryError::Transient(format!(
            "nothing accepts connections at {at} (connection refused): check the host and port \
             and that the mail server is running ({raw})"
        ));
    }
    if lower.contains("lookup")
        || lower.contains("resolve")
        || lower.contains("name or service not known")
    {
        return DeliveryError::Transient(format!(
            "the host name {} cannot be resolved: check the spelling and the DNS ({raw})",
            server.host
        ));
    }
    if error.is_tls()
        || lower.contains("certificate")
        || lower.contains("corrupt message")
        || lower.contains("invalidcontenttype")
        || lower.contains("handshake")
    {
        return DeliveryError::Transient(format!(
            "the TLS handshake with {at} failed: the security mode may not match the port ({port_hint}), \
             or the server's certificate is not trusted for {} ({raw})",
            server.host
        ));
    }
    if error.is_permanent() {
        return DeliveryError::Permanent(format!(
            "the mail server at {at} refused the message ({raw})"
        ));
    }
    DeliveryError::Transient(format!("delivery through {at} failed ({raw})"))
}
