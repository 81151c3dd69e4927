//! Instance settings kept in the database, so every instance sees the same
//! value and a change takes effect without a restart.

pub mod ports;

use crate::errors::StoreError;
use crate::mail::settings::SettingsSource;
use crate::policy::Policy;
use crate::settings::ports::SettingsRepository;
use crate::sso::settings::SsoSettings;
use crate::users::models::SignInMethod;

/// The seat limit in force: the one an admin set, else the configured one
/// (`None` = unlimited).
///
/// # Errors
/// [`StoreError`] on failure.
pub async fn seat_limit_in_force(
    settings: &dyn SettingsRepository,
    policy: &Policy,
) -> Result<Option<u32>, StoreError> {
    Ok(settings.seat_limit().await?.unwrap_or(policy.seat_limit))
}

/// The SSO settings in force: the ones an admin saved, else the configured
/// ones, with where they came from.
///
/// # Errors
/// [`StoreError`] on failure.
pub async fn sso_settings_in_force(
    settings: &dyn SettingsRepository,
    policy: &Policy,
) -> Result<(SsoSettings, SettingsSource), StoreError> {
    Ok(match settings.sso_settings().await? {
        Some(saved) => (saved, SettingsSource::Saved),
        None => (policy.sso.clone(), SettingsSource::Configuration),
    })
}

/// How a new user signs in unless asked otherwise: SSO while an identity
/// provider is configured, else password (rule 6).
///
/// # Errors
/// [`StoreError`] on failure.
pub async fn default_sign_in(
    settings: &dyn SettingsRepository,
    policy: &Policy,
) -> Result<SignInMethod, StoreError> {
    Ok(if sso_settings_in_force(settings, policy).await?.0.enabled() {
        SignInMethod::Sso
    } else {
        SignInMethod::Password
    })
}
