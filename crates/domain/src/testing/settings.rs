//! The in-memory store's instance settings.

use async_trait::async_trait;

use crate::audit::models::AuditEvent;
use crate::errors::StoreError;
use crate::mail::settings::EmailSettings;
use crate::settings::ports::{SettingsRepository, StoredSeatLimit};
use crate::sso::settings::SsoSettings;

use super::InMemoryStore;

#[async_trait]
impl SettingsRepository for InMemoryStore {
    async fn provisioning_settings(
        &self,
    ) -> Result<crate::provisioning::models::ProvisioningSettings, StoreError> {
        Ok(self.state().provisioning_settings.clone())
    }

    async fn set_provisioning_settings(
        &self,
        settings: &crate::provisioning::models::ProvisioningSettings,
        audit: crate::audit::models::AuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.provisioning_settings = settings.clone();
        state.audit.push(audit);
        Ok(())
    }

    async fn security_policy(&self) -> Result<crate::mfa::policy::SecurityPolicy, StoreError> {
        Ok(self.state().security_policy)
    }

    async fn set_security_policy(
        &self,
        policy: &crate::mfa::policy::SecurityPolicy,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.security_policy = *policy;
        state.audit.push(audit);
        Ok(())
    }

    async fn seat_limit(&self) -> Result<StoredSeatLimit, StoreError> {
        Ok(self.state().seat_limit)
    }

    async fn set_seat_limit(
        &self,
        limit: Option<u32>,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.seat_limit = Some(limit);
        state.audit.push(audit);
        Ok(())
    }

    async fn sso_settings(&self) -> Result<Option<SsoSettings>, StoreError> {
        Ok(self.state().sso_settings.clone())
    }

    async fn set_sso_settings(
        &self,
        settings: &SsoSettings,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.sso_settings = Some(settings.clone());
        state.audit.push(audit);
        Ok(())
    }

    async fn email_settings(&self) -> Result<Option<EmailSettings>, StoreError> {
        Ok(self.state().email_settings.clone())
    }

    async fn set_email_settings(
        &self,
        settings: &EmailSettings,
        audit: AuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        state.email_settings = Some(settings.clone());
        state.audit.push(audit);
        Ok(())
    }
}
