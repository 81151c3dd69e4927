//! [`Policy`]: the tunable rules every service reads (lifetimes, limits,
//! throttling, the settings in force until an admin saves others).

use chrono::Duration;

use crate::analytics::models::AnalyticsPolicy;
use crate::mail::settings::EmailSettings;
use crate::sessions::throttle::ThrottlePolicy;
use crate::sso::settings::SsoSettings;

/// Tunable rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// How long an invitation link works (72 hours).
    pub invitation_ttl: Duration,
    /// How long a first-admin setup link works.
    pub setup_ttl: Duration,
    /// A session unused this long ends.
    pub session_idle_timeout: Duration,
    /// A session ends this long after sign-in, whatever the activity.
    pub session_absolute_timeout: Duration,
    /// Activity is recorded at most this often per session.
    pub session_touch_interval: Duration,
    /// Invited + active users allowed when no admin has set a limit;
    /// `None` = unlimited.
    pub seat_limit: Option<u32>,
    /// Largest page of users.
    pub max_page_size: u32,
    /// Brute-force throttling of sign-in.
    pub throttle: ThrottlePolicy,
    /// Email settings in force until an admin saves others.
    pub email: EmailSettings,
    /// SSO settings in force until an admin saves others.
    pub sso: SsoSettings,
    /// Usage analytics: batch size, retention.
    pub analytics: AnalyticsPolicy,
    /// Which webhook endpoint addresses are accepted.
    pub webhooks: crate::webhooks::models::EndpointPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            invitation_ttl: Duration::hours(72),
            setup_ttl: Duration::hours(24),
            session_idle_timeout: Duration::hours(2),
            session_absolute_timeout: Duration::hours(12),
            session_touch_interval: Duration::minutes(1),
            seat_limit: None,
            max_page_size: 200,
            throttle: ThrottlePolicy::default(),
            email: EmailSettings::embedded_default(),
            sso: SsoSettings::disabled(),
            analytics: AnalyticsPolicy::default(),
            webhooks: crate::webhooks::models::EndpointPolicy::default(),
        }
    }
}
