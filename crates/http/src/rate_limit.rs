//! Per-address rate limits of anonymous requests that make the service
//! store something (each SSO sign-in begun keeps a row for ten minutes).
//! In memory, per instance: a token bucket per client address (governor).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// Addresses remembered before idle ones are forgotten.
const FORGET_IDLE_ABOVE: usize = 10_000;

/// A limit of so many requests a minute from one address (with the same
/// number as burst).
#[derive(Debug)]
pub struct PerAddress {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

impl PerAddress {
    /// `per_minute` requests a minute per address (at least one).
    pub fn per_minute(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(n)),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request from `address`'s allowance; `Err` with the time to
    /// wait when it is used up. Requests without an address share one
    /// allowance.
    ///
    /// # Errors
    /// How long until the next request is allowed.
    pub fn check(&self, address: Option<IpAddr>) -> Result<(), Duration> {
        if self.limiter.len() > FORGET_IDLE_ABOVE {
            self.limiter.retain_recent();
        }
        let key = address.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        self.limiter.check_key(&key).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_allowance() {
        let limit = PerAddress::per_minute(3);
        let a = Some("192.0.2.1".parse().unwrap());
        let b = Some("192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert!(limit.check(a).is_ok());
        }
        let wait = limit.check(a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(limit.check(b).is_ok());
    }
}
