//! Email settings (Admin Panel > Settings > Email): where mail goes and who
//! it comes from. Stored in the database so that every instance uses the
//! same server and a change takes effect without a restart; until an admin
//! saves them, the operator's configuration file gives them.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::errors::FieldError;
use crate::identity::{DisplayName, EmailAddress};

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SmtpSecurity {
    /// Plain text (only for a relay on the same host or network).
    None,
    /// Plain connection upgraded with STARTTLS, usually port 587.
    Starttls,
    /// TLS from the first byte ("implicit TLS", SMTPS), usually port 465.
    Tls,
}

impl SmtpSecurity {
    /// The stable name (`none`, `starttls`, `tls`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Starttls => "starttls",
            Self::Tls => "tls",
        }
    }

    /// Parses a stable name, case-insensitively.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "none" => Some(Self::None),
            "starttls" => Some(Self::Starttls),
            "tls" => Some(Self::Tls),
            _ => None,
        }
    }
}

/// An SMTP password: never displayed, logged or returned.
#[derive(Clone)]
pub struct SmtpPassword(SecretString);

impl SmtpPassword {
    /// Longest accepted password.
    pub const MAX_LEN: usize = 1024;

    /// Wraps a password.
    ///
    /// # Errors
    /// [`FieldError`] on `password` when empty, too long or containing
    /// control characters.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() {
            return Err(FieldError::new(
                "password",
                "must not be empty (omit it to keep the saved one)",
            ));
        }
        if raw.chars().count() > Self::MAX_LEN {
            return Err(FieldError::new("password", "must be at most 1024 characters"));
        }
        if raw.chars().any(char::is_control) {
            return Err(FieldError::new("password", "must not contain control characters"));
        }
        Ok(Self(SecretString::from(raw.to_owned())))
    }

    /// The password, for the transport and the store only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl PartialEq for SmtpPassword {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for SmtpPassword {}

impl fmt::Debug for SmtpPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmtpPassword([REDACTED])")
    }
}

/// An SMTP server and how to log in to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Connection security.
    pub security: SmtpSecurity,
    /// User name, if the server wants authentication.
    pub username: Option<String>,
    /// Password, if the server wants authentication.
    pub password: Option<SmtpPassword>,
}

impl SmtpServer {
    /// Checks host, port and user name.
    ///
    /// # Errors
    /// [`FieldError`] naming the first invalid field.
    pub fn validate(&self) -> Result<(), FieldError> {
        let host = self.host.as_str();
        if host.is_empty() || host.len() > 253 {
            return Err(FieldError::new("host", "must be a host name of 1 to 253 characters"));
        }
        let allowed =
            |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']');
        if !host.chars().all(allowed) {
            return Err(FieldError::new(
                "host",
                "must be a host name or IP address (letters, digits, dots and hyphens)",
            ));
        }
        if self.port == 0 {
            return Err(FieldError::new("port", "must be between 1 and 65535"));
        }
        if let Some(username) = &self.username {
            if username.is_empty() || username.chars().count() > 254 {
                return Err(FieldError::new("username", "must be 1 to 254 characters"));
            }
            if username.chars().any(char::is_control) {
                return Err(FieldError::new("username", "must not contain control characters"));
            }
        }
        if self.password.is_some() && self.username.is_none() {
            return Err(FieldError::new("username", "is required when a password is set"));
        }
        Ok(())
    }
}

/// Where mail goes and who it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSettings {
    /// The SMTP server; `None` writes `.eml` files into the data folder
    /// (the embedded default).
    pub smtp: Option<SmtpServer>,
    /// The sender address.
    pub from_address: EmailAddress,
    /// The sender name.
    pub from_name: DisplayName,
}

impl EmailSettings {
    /// Files in the data folder, from `SecureAI <no-reply@secureai.localhost>`.
    pub fn embedded_default() -> Self {
        Self {
            smtp: None,
            from_address: EmailAddress::from_stored("no-reply@secureai.localhost"),
            from_name: DisplayName::from_stored("SecureAI"),
        }
    }
}

/// Where the settings in force come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsSource {
    /// Saved by an admin (Settings > Email).
    Saved,
    /// The operator's configuration (file or environment), never saved over.
    Configuration,
}

impl SettingsSource {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Saved => "saved",
            Self::Configuration => "configuration",
        }
    }
}

/// What to do with the saved SMTP password on an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordChange {
    /// Keep the password in force (the form left it blank).
    Keep,
    /// Remove it.
    Clear,
    /// Replace it.
    Set(SmtpPassword),
}

/// An admin's new SMTP server, before the saved password is merged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServerUpdate {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Security.
    pub security: SmtpSecurity,
    /// User name.
    pub username: Option<String>,
    /// Password change.
    pub password: PasswordChange,
}

/// An admin's change to the email settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSettingsUpdate {
    /// The new server, or `None` for files in the data folder.
    pub smtp: Option<SmtpServerUpdate>,
    /// The sender address.
    pub from_address: EmailAddress,
    /// The sender name.
    pub from_name: DisplayName,
}

impl EmailSettingsUpdate {
    /// The settings this update gives when `current` are in force: a kept
    /// password is carried over only to the same host, port, security mode
    /// and user name, so a password is never sent to a server, or over a
    /// connection, it was not saved for.
    ///
    /// # Errors
    /// [`FieldError`] for an invalid server.
    pub fn apply(self, current: &EmailSettings) -> Result<EmailSettings, FieldError> {
        let smtp = match self.smtp {
            None => None,
            Some(update) => {
                let password = match update.password {
                    PasswordChange::Set(password) => Some(password),
                    PasswordChange::Clear => None,
                    PasswordChange::Keep => current.smtp.as_ref().and_then(|old| {
                        (old.host.eq_ignore_ascii_case(update.host.trim())
                            && old.port == update.port
                            && old.security == update.security
                            && old.username == update.username)
                            .then(|| old.password.clone())
                            .flatten()
                    }),
                };
                let server = SmtpServer {
                    host: update.host.trim().to_owned(),
                    port: update.port,
                    security: update.security,
                    username: update.username.filter(|u| !u.is_empty()),
                    password,
                };
                server.validate()?;
                Some(server)
            }
        };
        Ok(EmailSettings { smtp, from_address: self.from_address, from_name: self.from_name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(smtp: Option<SmtpServer>) -> EmailSettings {
        EmailSettings {
            smtp,
            from_address: EmailAddress::parse("it@example.com").unwrap(),
            from_name: DisplayName::parse("IT").unwrap(),
        }
    }

    fn server(host: &str, user: Option<&str>, password: Option<&str>) -> SmtpServer {
        SmtpServer {
            host: host.into(),
            port: 587,
            security: SmtpSecurity::Starttls,
            username: user.map(Into::into),
            password: password.map(|p| SmtpPassword::parse(p).unwrap()),
        }
    }

    fn update(host: &str, user: Option<&str>, password: PasswordChange) -> EmailSettingsUpdate {
        EmailSettingsUpdate {
            smtp: Some(SmtpServerUpdate {
                host: host.into(),
                port: 587,
                security: SmtpSecurity::Starttls,
                username: user.map(Into::into),
                password,
            }),
            from_address: EmailAddress::parse("it@example.com").unwrap(),
            from_name: DisplayName::parse("IT").unwrap(),
        }
    }

    #[test]
    fn a_kept_password_follows_only_the_same_host_and_user() {
        let current = settings(Some(server("smtp.example.com", Some("it"), Some("s3cret"))));
        let kept = update("SMTP.example.com", Some("it"), PasswordChange::Keep).apply(&current);
        assert_eq!(kept.unwrap().smtp.unwrap().password.unwrap().expose(), "s3cret");
        let moved =
            update("evil.example.net", Some("it"), PasswordChange::Keep).apply(&current).unwrap();
        assert!(moved.smtp.unwrap().password.is_none(), "never carried to another server");
        let other_user =
            update("smtp.example.com", Some("bob"), PasswordChange::Keep).apply(&current).unwrap();
        assert!(other_user.smtp.unwrap().password.is_none());
    }

    #[test]
    fn a_password_without_a_user_name_is_refused() {
        let set = PasswordChange::Set(SmtpPassword::parse("pw").unwrap());
        let error = update("smtp.example.com", None, set).apply(&settings(None)).unwrap_err();
        assert_eq!(error.field, "username");
    }

    #[test]
    fn header_and_command_injection_in_server_fields_is_refused() {
        for host in ["smtp.example.com\r\nRCPT TO:<x@y>", "smtp example.com", ""] {
            let error =
                update(host, None, PasswordChange::Keep).apply(&settings(None)).unwrap_err();
            assert_eq!(error.field, "host", "{host:?}");
        }
        let error = update("smtp.example.com", Some("it\r\nAUTH"), PasswordChange::Keep)
            .apply(&settings(None))
            .unwrap_err();
        assert_eq!(error.field, "username");
        assert!(SmtpPassword::parse("a\nb").is_err());
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let shown = format!("{:?}", server("h.example.com", Some("u"), Some("hunter2-secret")));
        assert!(!shown.contains("hunter2-secret"), "{shown}");
    }
}
