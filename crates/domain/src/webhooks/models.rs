//! The events a webhook endpoint may subscribe to, and which addresses may
//! receive them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::users::models::UserId;

/// A receiver of security events (never its secret, which the store keeps
/// sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// Identifier.
    pub id: Uuid,
    /// Where deliveries go (checked with [`check_endpoint`]).
    pub url: String,
    /// What it receives.
    pub events: Vec<EventType>,
    /// When it was added.
    pub created_at: DateTime<Utc>,
    /// Who added it.
    pub created_by: Option<UserId>,
    /// When deliveries stopped (the receiver answered 410 Gone, or an
    /// admin paused it), and why.
    pub disabled: Option<(DateTime<Utc>, String)>,
}

/// A security event pushed to subscribed endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// Someone was invited.
    UserInvited,
    /// Someone accepted their invitation (or first signed in by SSO).
    UserActivated,
    /// Someone lost access: deactivated.
    UserDeactivated,
    /// Someone got access back.
    UserReactivated,
    /// Someone's role changed (to or from admin).
    UserRoleChanged,
    /// Someone's sessions were ended.
    UserSessionsTerminated,
    /// Someone was erased.
    UserErased,
    /// Someone's password was reset.
    UserPasswordReset,
    /// Single sign-on settings changed.
    SsoSettingsChanged,
    /// A bulk import finished.
    ImportCompleted,
    /// Sign-in was paused after failed attempts.
    SigninThrottled,
}

impl EventType {
    /// Every event, in the order the API lists them.
    pub const ALL: [EventType; 11] = [
        Self::UserInvited,
        Self::UserActivated,
        Self::UserDeactivated,
        Self::UserReactivated,
        Self::UserRoleChanged,
        Self::UserSessionsTerminated,
        Self::UserErased,
        Self::UserPasswordReset,
        Self::SsoSettingsChanged,
        Self::ImportCompleted,
        Self::SigninThrottled,
    ];

    /// The stable name (`user.deactivated`, …), the body's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserInvited => "user.invited",
            Self::UserActivated => "user.activated",
            Self::UserDeactivated => "user.deactivated",
            Self::UserReactivated => "user.reactivated",
            Self::UserRoleChanged => "user.role_changed",
            Self::UserSessionsTerminated => "user.sessions_terminated",
            Self::UserErased => "user.erased",
            Self::UserPasswordReset => "user.password_reset",
            Self::SsoSettingsChanged => "sso.settings_changed",
            Self::ImportCompleted => "import.completed",
            Self::SigninThrottled => "signin.throttled",
        }
    }

    /// Parses a stable name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// Which endpoint addresses the instance accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointPolicy {
    /// `http://` to a loopback address (development and tests only;
    /// `webhooks.allow_insecure_loopback`).
    pub allow_insecure_loopback: bool,
    /// Addresses in private, loopback, link-local and other non-public
    /// ranges (an instance whose receivers live on the internal network;
    /// `webhooks.allow_private`).
    pub allow_private: bool,
}

/// Why an endpoint address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointRefused {
    /// Not an absolute URL.
    #[error("not an absolute https:// address")]
    NotAUrl,
    /// Too long.
    #[error("an endpoint address has at most 2,000 characters")]
    TooLong,
    /// Not `https://` (nor an allowed `http://` to loopback).
    #[error("endpoints must use https://")]
    NotHttps,
    /// User name or password in the address.
    #[error("an endpoint address must not carry a user name or password")]
    Credentials,
    /// A private, loopback, link-local or otherwise non-public address.
    #[error("the address is in a private or reserved range; endpoints must be public")]
    Private,
}

const MAX_URL_LEN: usize = 2000;

/// Checks an endpoint address as given (the host a name resolves to is
/// checked again, with [`public_ip`], when a delivery connects: a name may
/// point anywhere later).
///
/// # Errors
/// See [`EndpointRefused`].
pub fn check_endpoint(url: &str, policy: EndpointPolicy) -> Result<url::Url, EndpointRefused> {
    if url.len() > MAX_URL_LEN {
        return Err(EndpointRefused::TooLong);
    }
    let parsed = url::Url::parse(url.trim()).map_err(|_| EndpointRefused::NotAUrl)?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(EndpointRefused::Credentials);
    }
    let host = parsed.host().ok_or(EndpointRefused::NotAUrl)?;
    let ip = match &host {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(*ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(*ip)),
        url::Host::Domain(_) => None,
    };
    let loopback = match (&host, ip) {
        (_, Some(ip)) => ip.is_loopback(),
        (url::Host::Domain(name), None) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        _ => false,
    };
    match parsed.scheme() {
        "https" => {}
        "http" if loopback && policy.allow_insecure_loopback => return Ok(parsed),
        _ => return Err(EndpointRefused::NotHttps),
    }
    let private = loopback || ip.is_some_and(|ip| !public_ip(ip));
    if ip.is_some_and(never_allowed) || (private && !policy.allow_private) {
        return Err(EndpointRefused::Private);
    }
    Ok(parsed)
}

/// Link-local addresses — the cloud's metadata service at
/// 169.254.169.254 among them — are refused whatever the policy: no
/// receiver lives there, and an instance's credentials do.
pub fn never_allowed(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.is_link_local(),
            None => (v6.segments()[0] & 0xffc0) == 0xfe80,
        },
    }
}

/// Whether an address is on the public internet: not loopback, private
/// (RFC 1918, unique local), link-local (with cloud metadata at
/// 169.254.169.254), shared (100.64/10), unspecified, multicast, broadcast,
/// documentation or benchmarking ranges; IPv4 inside IPv6 judged as IPv4.
pub fn public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let first = s[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // IPv4-compatible (::a.b.c.d, deprecated), and the rest of ::/8.
        || first == 0
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfe80
        // Site-local (deprecated).
        || (first & 0xffc0) == 0xfec0
        || first == 0x2001 && s[1] == 0x0db8
        // NAT64, well-known and local-use prefixes.
        || first == 0x0064 && s[1] == 0xff9b
        // Discard-only.
        || first == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0
        // 6to4 carries an IPv4 address that may be private.
        || first == 0x2002)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: EndpointPolicy =
        EndpointPolicy { allow_insecure_loopback: false, allow_private: false };
    const DEV: EndpointPolicy =
        EndpointPolicy { allow_insecure_loopback: true, allow_private: false };

    #[test]
    fn event_names_round_trip() {
        for event in EventType::ALL {
            assert_eq!(EventType::parse(event.as_str()), Some(event));
        }
        assert_eq!(EventType::parse("user.deleted"), None);
    }

    #[test]
    fn only_public_https_endpoints_pass_by_default() {
        assert!(check_endpoint("https://hooks.example.com/secureai", STRICT).is_ok());
        assert!(check_endpoint("https://93.184.215.14/in", STRICT).is_ok());
        let refused = |url: &str, policy| check_endpoint(url, policy).unwrap_err();
        assert_eq!(refused("http://hooks.example.com/", STRICT), EndpointRefused::NotHttps);
        assert_eq!(refused("ftp://hooks.example.com/", STRICT), EndpointRefused::NotHttps);
        assert_eq!(refused("hooks.example.com", STRICT), EndpointRefused::NotAUrl);
        assert_eq!(refused("https://u:p@hooks.example.com/", STRICT), EndpointRefused::Credentials);
        assert_eq!(
            refused(&format!("https://a.com/{}", "x".repeat(2000)), STRICT),
            EndpointRefused::TooLong
        );
        for private in [
            "https://127.0.0.1/",
            "https://localhost/",
            "https://api.localhost./",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[::127.0.0.1]/",
            "https://[2002:a00:1::1]/",
            "https://[fec0::1]/",
            "https://[64:ff9b:1::a00:1]/",
            "https://2130706433/",
            "https://0x7f.1/",
        ] {
            assert_eq!(refused(private, STRICT), EndpointRefused::Private, "{private}");
        }
    }

    #[test]
    fn loopback_http_only_when_allowed_and_private_ranges_only_when_allowed() {
        assert!(check_endpoint("http://127.0.0.1:8099/hook", DEV).is_ok());
        assert!(check_endpoint("http://localhost:8099/hook", DEV).is_ok());
        assert_eq!(
            check_endpoint("http://10.0.0.5/hook", DEV).unwrap_err(),
            EndpointRefused::NotHttps,
            "plain http only to loopback"
        );
        let internal = EndpointPolicy { allow_insecure_loopback: false, allow_private: true };
        assert!(check_endpoint("https://10.0.0.5/hook", internal).is_ok());
        for metadata in
            ["https://169.254.169.254/", "https://[fe80::1]/", "https://[::ffff:169.254.1.1]/"]
        {
            assert_eq!(
                check_endpoint(metadata, internal).unwrap_err(),
                EndpointRefused::Private,
                "link-local whatever the policy: {metadata}"
            );
        }
        assert!(public_ip("8.8.8.8".parse().unwrap()));
        assert!(public_ip("2606:4700::1111".parse().unwrap()));
        assert!(!public_ip("::ffff:192.168.0.1".parse().unwrap()));
    }
}
