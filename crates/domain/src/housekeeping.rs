//! Housekeeping on a schedule: rows that anonymous requests create — SSO
//! sign-ins in flight, remembered assertion ids, sign-in attempt counts —
//! are deleted once they can no longer matter, so that nobody can make the
//! database grow by knocking on the door.

use crate::errors::StoreError;

/// The ports Housekeeping uses, and no others.
#[derive(Clone)]
pub struct HousekeepingPorts {
    /// Sign-in attempt counts.
    pub throttle: std::sync::Arc<dyn crate::sessions::throttle::ThrottleRepository>,
    /// SSO sign-ins in flight, identity links, seen assertions.
    pub sso: std::sync::Arc<dyn crate::sso::ports::SsoRepository>,
    /// Password sign-ins waiting for a second factor.
    pub mfa: std::sync::Arc<dyn crate::mfa::ports::MfaRepository>,
    /// Passkey challenges waiting for their answer.
    pub passkeys: std::sync::Arc<dyn crate::mfa::passkeys::PasskeyRepository>,
    /// Webhook deliveries, kept 30 days once settled.
    pub webhooks: std::sync::Arc<dyn crate::webhooks::ports::WebhookRepository>,
    /// Time.
    pub clock: std::sync::Arc<dyn crate::clock::Clock>,
}

/// Deleting what anonymous requests leave behind once it can no longer matter.
pub struct Housekeeping {
    ports: HousekeepingPorts,
    policy: std::sync::Arc<crate::policy::Policy>,
}

impl Housekeeping {
    /// The use cases over these ports and rules.
    #[must_use]
    pub fn new(ports: HousekeepingPorts, policy: std::sync::Arc<crate::policy::Policy>) -> Self {
        Self { ports, policy }
    }
}

/// What one sweep deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Expired SSO sign-ins and assertion ids, and password sign-ins that
    /// waited for a second factor in vain.
    pub sso: u64,
    /// Attempt counts outside the throttling window, or back at zero.
    pub throttles: u64,
    /// Webhook deliveries delivered or failed more than 30 days ago.
    pub deliveries: u64,
}

impl Housekeeping {
    /// Deletes expired SSO sign-ins in flight and assertion ids, sign-in
    /// attempt counts that no longer block anyone, and webhook deliveries
    /// settled more than 30 days ago.
    ///
    /// # Errors
    /// [`StoreError`] on failure (the next sweep tries again).
    pub async fn sweep_expired(&self) -> Result<SweepReport, StoreError> {
        let now = self.ports.clock.now();
        let sso = self.ports.sso.forget_expired(now).await?
            + self.ports.mfa.forget_expired_sign_ins(now).await?
            + self.ports.passkeys.forget_expired_ceremonies(now).await?;
        let throttles = self.ports.throttle.forget_stale(now - self.policy.throttle.window).await?;
        let kept = now - crate::webhooks::deliveries::KEPT_FOR;
        let deliveries = self.ports.webhooks.forget_old_deliveries(kept).await?;
        Ok(SweepReport { sso, throttles, deliveries })
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use secrecy::SecretString;

    use crate::RequestContext;
    use crate::testing::TestKit;

    #[tokio::test]
    async fn a_sweep_forgets_attempt_counts_once_the_window_has_passed() {
        let kit = TestKit::new();
        let ctx = RequestContext {
            ip: Some("192.0.2.8".into()),
            user_agent: None,
            ..RequestContext::default()
        };
        for i in 0..3 {
            let pw = SecretString::from("a guess".to_owned());
            let _ = kit.service.sessions.sign_in(&format!("n{i}@example.com"), &pw, &ctx).await;
        }
        assert_eq!(kit.store.state().failures.len(), 4);
        // Inside the window nothing goes: the counts still throttle.
        assert_eq!(kit.service.housekeeping.sweep_expired().await.unwrap().throttles, 0);
        kit.clock.advance(Duration::hours(12));
        assert_eq!(kit.service.housekeeping.sweep_expired().await.unwrap().throttles, 4);
        assert!(kit.store.state().failures.is_empty());
    }
}
