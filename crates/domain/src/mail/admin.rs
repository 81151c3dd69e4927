//! Admin use cases around mail: Settings > Email (read, save, send a test
//! message) and the outbox (list, retry a failed message).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::access::Admin;
use crate::audit::models::{AuditAction, AuditEvent, Change, RequestContext};
use crate::errors::FieldError;
use crate::errors::StoreError;
use crate::mail::models::{MailMessage, MailState, OutboxEntry, OutgoingMail};
use crate::mail::ports::DeliveryError;
use crate::mail::service::effective_settings;
use crate::mail::settings::{EmailSettings, EmailSettingsUpdate, SettingsSource, SmtpServer};
use crate::users::errors::SettingsError;

/// The ports MailService uses, and no others.
#[derive(Clone)]
pub struct MailPorts {
    /// The mail outbox.
    pub outbox: std::sync::Arc<dyn crate::mail::ports::OutboxRepository>,
    /// Mail delivery, for test messages sent now.
    pub transport: std::sync::Arc<dyn crate::mail::ports::MailTransport>,
    /// Instance settings (seat limit, email, SSO).
    pub settings: std::sync::Arc<dyn crate::settings::ports::SettingsRepository>,
    /// Stand-alone audit events.
    pub audit: std::sync::Arc<dyn crate::audit::ports::AuditLog>,
    /// Time.
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
    /// Second factors: the actions that need a recent check ask whether
    /// the admin has one (step-up).
    pub mfa: std::sync::Arc<dyn crate::mfa::ports::MfaRepository>,
}

/// Settings > Email (read, save, send a test message) and the outbox (what was
/// sent, what failed, retry).
pub struct MailService {
    ports: MailPorts,
    policy: std::sync::Arc<crate::policy::Policy>,
}

impl MailService {
    /// The use cases over these ports and rules.
    #[must_use]
    pub fn new(ports: MailPorts, policy: std::sync::Arc<crate::policy::Policy>) -> Self {
        Self { ports, policy }
    }
}

/// Why a test email did not go out.
#[derive(Debug, thiserror::Error)]
pub enum TestEmailError {
    /// The mail server or network refused; the text says what to check.
    #[error("{0}")]
    NotDelivered(String),
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

/// Why a failed message could not be retried.
#[derive(Debug, thiserror::Error)]
pub enum RetryMailError {
    /// No such message.
    #[error("no message has this id")]
    NotFound,
    /// The message is queued or sent, not failed.
    #[error("only a failed message can be retried; this one is {0}")]
    NotFailed(&'static str),
    /// Something unexpected failed.
    #[error(transparent)]
    Unexpected(#[from] StoreError),
}

fn describe(smtp: Option<&SmtpServer>) -> String {
    smtp.map_or_else(
        || "files in the data folder".to_owned(),
        |s| format!("{}:{} ({})", s.host, s.port, s.security.as_str()),
    )
}

impl MailService {
    /// The email settings in force and where they come from.
    ///
    /// # Errors
    /// [`StoreError`] on failure.
    pub async fn email_settings(
        &self,
        _admin: &Admin,
    ) -> Result<(EmailSettings, SettingsSource), StoreError> {
        effective_settings(&*self.ports.settings, &self.policy.email).await
    }

    /// Saves new email settings; every instance uses them from its next
    /// message on. The audit event names what changed — for the password
    /// only whether it changed, never its value.
    ///
    /// # Errors
    /// [`SettingsError::Invalid`] naming the field.
    pub async fn update_email_settings(
        &self,
        admin: &Admin,
        update: EmailSettingsUpdate,
        context: &RequestContext,
    ) -> Result<(EmailSettings, SettingsSource), SettingsError> {
        let now = self.ports.clock.now();
        admin.require_recent_factor(self.ports.mfa.as_ref(), now).await?;
        let (current, _) = effective_settings(&*self.ports.settings, &self.policy.email).await?;
        let next = update.apply(&current)?;
        let mut audit = AuditEvent::new(
            self.ports.clock.now(),
            admin.actor(),
            AuditAction::EmailSettingsChanged,
            context,
        );
        let server = |s: &EmailSettings| describe(s.smtp.as_ref());
        let user = |s: &EmailSettings| s.smtp.as_ref().and_then(|m| m.username.clone());
        let password = |s: &EmailSettings| s.smtp.as_ref().and_then(|m| m.password.clone());
        let changes = [
            ("server", Some(server(&current)), Some(server(&next))),
            ("username", user(&current), user(&next)),
            (
                "from_address",
                Some(current.from_address.to_string()),
                Some(next.from_address.to_string()),
            ),
            ("from_name", Some(current.from_name.to_string()), Some(next.from_name.to_string())),
        ];
        for (field, before, after) in changes {
            if before != after {
                audit = audit.change(Change::new(field, before.as_deref(), after.as_deref()));
            }
        }
        match (password(&current), password(&next)) {
            (None, None) => {}
            (Some(_), None) => audit = audit.change(Change::detail("password", "removed")),
            (before, Some(after)) => {
                if before.as_ref() != Some(&after) {
                    audit = audit.change(Change::detail("password", "changed"));
                }
            }
        }
        self.ports.settings.set_email_settings(&next, audit).await?;
        Ok((next, SettingsSource::Saved))
    }

    /// Sends a test message to the calling admin through the settings in
    /// force, now (not through the outbox), and returns the server's answer.
    ///
    /// # Errors
    /// [`TestEmailError::NotDelivered`] with an explanation an operator can
    /// act on (wrong port for the TLS mode, refused login, unreachable host).
    pub async fn send_test_email(
        &self,
        admin: &Admin,
        context: &RequestContext,
    ) -> Result<String, TestEmailError> {
        let (settings, _) = effective_settings(&*self.ports.settings, &self.policy.email).await?;
        let now = self.ports.clock.now();
        let mail = OutgoingMail {
            id: crate::record_id(),
            user_id: Some(admin.user().id),
            to: admin.user().email.clone(),
            to_name: admin.user().name.clone(),
            message: MailMessage::Test,
            created_at: now,
        };
        let outcome = self.ports.transport.send(&settings, &mail).await;
        let audit = AuditEvent::new(now, admin.actor(), AuditAction::EmailTested, context)
            .change(Change::detail("server", &describe(settings.smtp.as_ref())))
            .change(Change::detail(
                "outcome",
                match &outcome {
                    Ok(_) => "delivered",
                    Err(_) => "not delivered",
                },
            ));
        self.ports.audit.append(audit).await?;
        outcome.map_err(|error| match error {
            DeliveryError::Transient(why) | DeliveryError::Permanent(why) => {
                TestEmailError::NotDelivered(why)
            }
        })
    }

    /// Messages in the outbox, newest first: `state` filters (e.g. failed),
    /// `before` continues from the last entry of the previous page.
    ///
    /// # Errors
    /// [`SettingsError::Invalid`] for a page size out of range.
    pub async fn outbox(
        &self,
        _admin: &Admin,
        state: Option<MailState>,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: u32,
    ) -> Result<Vec<OutboxEntry>, SettingsError> {
        if limit == 0 || limit > self.policy.max_page_size {
            return Err(FieldError::new(
                "limit",
                format!("must be between 1 and {}", self.policy.max_page_size),
            )
            .into());
        }
        Ok(self.ports.outbox.list(state, before, limit).await?)
    }

    /// Puts a failed message back in the queue for an attempt now, with a
    /// fresh count of attempts.
    ///
    /// # Errors
    /// See [`RetryMailError`].
    pub async fn retry_mail(
        &self,
        admin: &Admin,
        id: Uuid,
        context: &RequestContext,
    ) -> Result<OutboxEntry, RetryMailError> {
        let entry = self.ports.outbox.entry(id).await?.ok_or(RetryMailError::NotFound)?;
        if entry.state != MailState::Failed {
            return Err(RetryMailError::NotFailed(entry.state.as_str()));
        }
        let now = self.ports.clock.now();
        let mut audit = AuditEvent::new(now, admin.actor(), AuditAction::MailRetried, context)
            .change(Change::detail("message", &id.to_string()))
            .change(Change::detail("kind", &entry.kind));
        if let Some(user) = entry.user_id {
            audit.target_id = Some(user);
        }
        if !self.ports.outbox.requeue_failed(id, now, audit).await? {
            // Another admin (or instance) requeued it first.
            return Err(RetryMailError::NotFailed(MailState::Queued.as_str()));
        }
        self.ports.outbox.entry(id).await?.ok_or(RetryMailError::NotFound)
    }

    /// Puts every failed message back in the queue ("Retry all"), each as
    /// [`MailService::retry_mail`] does (audited one by one), oldest last,
    /// at most `max_page_size` per call; returns how many were requeued.
    ///
    /// # Errors
    /// [`crate::StoreError`] on failure (those requeued stay requeued).
    pub async fn retry_all_failed(
        &self,
        admin: &Admin,
        context: &RequestContext,
    ) -> Result<u64, crate::StoreError> {
        let failed = self
            .ports
            .outbox
            .list(Some(MailState::Failed), None, self.policy.max_page_size)
            .await?;
        let mut requeued = 0;
        for entry in failed {
            match self.retry_mail(admin, entry.id, context).await {
                Ok(_) => requeued += 1,
                // Requeued meanwhile by someone else: nothing to do.
                Err(RetryMailError::NotFailed(_) | RetryMailError::NotFound) => {}
                Err(RetryMailError::Unexpected(e)) => return Err(e),
            }
        }
        Ok(requeued)
    }
}
