//! Driven port for instance settings.

use async_trait::async_trait;

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::mail::settings::EmailSettings;
use crate::sso::settings::SsoSettings;

/// A seat limit as stored: `Some(None)` means "set to unlimited"; a port
/// answering `None` means "never set" (the configured default applies).
pub type StoredSeatLimit = Option<Option<u32>>;

/// Storage of settings.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait SettingsRepository: Send + Sync {
    /// The seat limit an admin set, if any.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn seat_limit(&self) -> Result<StoredSeatLimit, StoreError>;

    /// Settings › Provisioning as saved (the defaults if never saved).
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn provisioning_settings(
        &self,
    ) -> Result<crate::provisioning::models::ProvisioningSettings, StoreError>;

    /// Stores Settings › Provisioning with its audit event.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn set_provisioning_settings(
        &self,
        settings: &crate::provisioning::models::ProvisioningSettings,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;

    /// Settings › Security as saved (the defaults if never saved).
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn security_policy(&self) -> Result<crate::mfa::policy::SecurityPolicy, StoreError>;

    /// Stores Settings › Security with its audit event.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn set_security_policy(
        &self,
        policy: &crate::mfa::policy::SecurityPolicy,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;

    /// Stores the seat limit (`None` = unlimited) with its audit event.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn set_seat_limit(&self, limit: Option<u32>, audit: AuditEvent)
    -> Result<(), StoreError>;

    /// The email settings an admin saved, if any.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn email_settings(&self) -> Result<Option<EmailSettings>, StoreError>;

    /// Stores the email settings with their audit event.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn set_email_settings(
        &self,
        settings: &EmailSettings,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;

    /// The SSO settings an admin saved, if any.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn sso_settings(&self) -> Result<Option<SsoSettings>, StoreError>;

    /// Stores the SSO settings with their audit event.
    ///
    /// # Errors
    /// [`StoreError`] only on failure.
    async fn set_sso_settings(
        &self,
        settings: &SsoSettings,
        audit: AuditEvent,
    ) -> Result<(), StoreError>;
}
