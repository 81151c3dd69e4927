//! Message templates: built-in defaults an operator can override by putting
//! files of the same name in a folder (`invitation.subject.txt`,
//! `invitation.txt`, `invitation.html`). HTML templates escape every value.

use std::path::Path;

use minijinja::{Environment, context};
use secureai_domain::mail::models::{MailMessage, OutgoingMail};
use url::Url;

const DEFAULTS: &[(&str, &str)] = &[
    ("invitation.subject.txt", include_str!("../templates/invitation.subject.txt")),
    ("invitation.txt", include_str!("../templates/invitation.txt")),
    ("invitation.html", include_str!("../templates/invitation.html")),
    ("password_reset.subject.txt", include_str!("../templates/password_reset.subject.txt")),
    ("password_reset.txt", include_str!("../templates/password_reset.txt")),
    ("password_reset.html", include_str!("../templates/password_reset.html")),
    ("access_ready.subject.txt", include_str!("../templates/access_ready.subject.txt")),
    ("access_ready.txt", include_str!("../templates/access_ready.txt")),
    ("access_ready.html", include_str!("../templates/access_ready.html")),
    (
        "second_factor_reset.subject.txt",
        include_str!("../templates/second_factor_reset.subject.txt"),
    ),
    ("second_factor_reset.txt", include_str!("../templates/second_factor_reset.txt")),
    ("second_factor_reset.html", include_str!("../templates/second_factor_reset.html")),
    ("recovery_code_used.subject.txt", include_str!("../templates/recovery_code_used.subject.txt")),
    ("recovery_code_used.txt", include_str!("../templates/recovery_code_used.txt")),
    ("recovery_code_used.html", include_str!("../templates/recovery_code_used.html")),
    ("test.subject.txt", include_str!("../templates/test.subject.txt")),
    ("test.txt", include_str!("../templates/test.txt")),
    ("test.html", include_str!("../templates/test.html")),
];

/// A template problem.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// An override file cannot be read.
    #[error("cannot read mail template {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A template does not parse or render.
    #[error("mail template error: {0}")]
    Render(#[from] minijinja::Error),
}

/// A message ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
}

/// The loaded templates and the public base URL links are built from.
pub struct Templates {
    env: Environment<'static>,
    public_url: Url,
}

impl Templates {
    /// Loads the defaults, replaced by any file of the same name in
    /// `overrides`.
    ///
    /// # Errors
    /// [`TemplateError`] if an override cannot be read or a template does not parse.
    pub fn load(public_url: Url, overrides: Option<&Path>) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        // Plain-text templates must not HTML-escape; HTML ones must.
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        for (name, default) in DEFAULTS {
            let source = match overrides.map(|dir| dir.join(name)).filter(|p| p.is_file()) {
                Some(path) => std::fs::read_to_string(&path).map_err(|source| {
                    TemplateError::Read { path: path.display().to_string(), source }
                })?,
                None => (*default).to_owned(),
            };
            env.add_template_owned(*name, source)?;
        }
        Ok(Self { env, public_url })
    }

    fn link(&self, path: &str, token: Option<&str>) -> String {
        let mut url = self.public_url.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}{path}"));
        if let Some(token) = token {
            url.query_pairs_mut().clear().append_pair("token", token);
        }
        url.to_string()
    }

    /// Renders one outbox message.
    ///
    /// # Errors
    /// [`TemplateError`] if a template fails to render.
    pub fn render(&self, mail: &OutgoingMail) -> Result<RenderedMail, TemplateError> {
        match &mail.message {
            MailMessage::Invitation { token, expires_at, invited_by } => {
                let ctx = context! {
                    name => mail.to_name.to_string(),
                    invited_by => invited_by,
                    link => self.link("/invitations/accept", Some(token.expose())),
                    expires_at => expires_at.format("%-d %B %Y at %H:%M UTC").to_string(),
                    valid_for => secureai_domain::dates::lifetime_in_words(*expires_at - mail.created_at),
                };
                self.render_set("invitation", &ctx)
            }
            MailMessage::AccessReady { invited_by } => {
                let ctx = context! {
                    name => mail.to_name.to_string(),
                    invited_by => invited_by,
                    sign_in_url => self.link("/sign-in", None),
                };
                self.render_set("access_ready", &ctx)
            }
            MailMessage::Test => {
                self.render_set("test", &context! { name => mail.to_name.to_string() })
            }
            MailMessage::SecondFactorReset { reset_by, required } => {
                let ctx = context! {
                    name => mail.to_name.to_string(),
                    reset_by => reset_by,
                    required => required,
                    sign_in_url => self.link("/sign-in", None),
                };
                self.render_set("second_factor_reset", &ctx)
            }
            MailMessage::RecoveryCodeUsed { codes_left } => {
                let ctx = context! {
                    name => mail.to_name.to_string(),
                    codes_left => codes_left,
                    used_at => mail.created_at.format("%-d %B %Y at %H:%M UTC").to_string(),
                };
                self.render_set("recovery_code_used", &ctx)
            }
            MailMessage::PasswordReset { token, expires_at } => {
                let ctx = context! {
                    name => mail.to_name.to_string(),
                    link => self.link("/password-resets/complete", Some(token.expose())),
                    expires_at => expires_at.format("%-d %B %Y at %H:%M UTC").to_string(),
                    valid_for => secureai_domain::dates::lifetime_in_words(*expires_at - mail.created_at),
                };
                self.render_set("password_reset", &ctx)
            }
        }
    }

    fn render_set(
        &self,
        base: &str,
        ctx: &minijinja::Value,
    ) -> Result<RenderedMail, TemplateError> {
        let render = |suffix: &str| -> Result<String, TemplateError> {
            Ok(self.env.get_template(&format!("{base}.{suffix}"))?.render(ctx)?)
        };
        Ok(RenderedMail {
            // A subject is one line, whatever the template did.
            subject: render("subject.txt")?
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
                .trim()
                .to_owned(),
            text: render("txt")?,
            html: render("html")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use secureai_domain::{DisplayName, EmailAddress, PlainToken};

    use super::*;

    fn invitation(name: &str) -> OutgoingMail {
        OutgoingMail {
            id: uuid_like(),
            user_id: None,
            to: EmailAddress::parse("ada@example.com").unwrap(),
            to_name: DisplayName::parse(name).unwrap(),
            message: MailMessage::Invitation {
                token: PlainToken::presented("tok_123"),
                expires_at: chrono::Utc.with_ymd_and_hms(2026, 1, 8, 9, 0, 0).unwrap(),
                invited_by: Some("Root <Admin>".to_owned()),
            },
            created_at: chrono::Utc.with_ymd_and_hms(2026, 1, 5, 9, 0, 0).unwrap(),
        }
    }

    fn uuid_like() -> uuid::Uuid {
        uuid::Uuid::nil()
    }

    #[test]
    fn an_invitation_links_to_the_public_url_and_states_the_expiry() {
        let templates =
            Templates::load(Url::parse("https://ai.example.com/base/").unwrap(), None).unwrap();
        let mail = templates.render(&invitation("Ada")).unwrap();
        assert_eq!(mail.subject, "You're invited to SecureAI");
        assert!(mail.text.contains("https://ai.example.com/base/invitations/accept?token=tok_123"));
        assert!(mail.text.contains("expires in 72 hours, on 8 January 2026 at 09:00 UTC"));
        // minijinja escapes `/` in HTML as `&#x2f;`, which browsers decode.
        let html = mail.html.replace("&#x2f;", "/");
        assert!(
            html.contains("href=\"https://ai.example.com/base/invitations/accept?token=tok_123\"")
        );
    }

    #[test]
    fn user_supplied_values_are_escaped_in_html_but_not_in_text() {
        let templates =
            Templates::load(Url::parse("http://localhost:8080").unwrap(), None).unwrap();
        let mail = templates.render(&invitation("<script>alert(1)</script>")).unwrap();
        assert!(mail.html.contains("&lt;script&gt;"));
        assert!(!mail.html.contains("<script>"));
        assert!(mail.html.contains("Root &lt;Admin&gt;"));
        assert!(mail.text.contains("Hello <script>alert(1)</script>,"));
    }

    #[test]
    fn sso_users_are_told_their_access_is_ready_with_no_password_link() {
        let templates =
            Templates::load(Url::parse("https://ai.example.com").unwrap(), None).unwrap();
        let mut mail = invitation("Ada");
        mail.message = MailMessage::AccessReady { invited_by: Some("Grace <IT>".into()) };
        let rendered = templates.render(&mail).unwrap();
        assert_eq!(rendered.subject, "Your SecureAI access is ready");
        assert!(rendered.text.contains("sign in with your company account"));
        assert!(rendered.text.contains("https://ai.example.com/sign-in"));
        assert!(!rendered.text.contains("token="), "no password link for SSO users");
        assert!(!rendered.text.to_lowercase().contains("set your password"));
        assert!(rendered.html.contains("Grace &lt;IT&gt;"));
    }

    #[test]
    fn every_message_has_a_text_and_an_html_part() {
        let templates =
            Templates::load(Url::parse("http://localhost:8080").unwrap(), None).unwrap();
        let base = invitation("Ada");
        let messages = [
            base.message.clone(),
            MailMessage::AccessReady { invited_by: None },
            MailMessage::PasswordReset {
                token: PlainToken::presented("tok_9"),
                expires_at: chrono::Utc.with_ymd_and_hms(2026, 1, 8, 9, 0, 0).unwrap(),
            },
            MailMessage::Test,
        ];
        for message in messages {
            let kind = message.kind();
            let rendered = templates.render(&OutgoingMail { message, ..base.clone() }).unwrap();
            assert!(!rendered.subject.is_empty(), "{kind}");
            assert!(rendered.text.contains("Hello Ada"), "{kind}");
            assert!(rendered.html.starts_with("<!doctype html>"), "{kind}");
        }
    }

    #[test]
    fn an_operator_can_override_a_template() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("invitation.subject.txt"), "Welcome aboard, {{ name }}")
            .unwrap();
        let templates =
            Templates::load(Url::parse("http://localhost:8080").unwrap(), Some(dir.path()))
                .unwrap();
        assert_eq!(templates.render(&invitation("Ada")).unwrap().subject, "Welcome aboard, Ada");
    }
}
