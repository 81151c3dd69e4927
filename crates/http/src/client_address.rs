//! The client's address behind reverse proxies.
//!
//! The TCP peer is the client unless it is one of the operator's trusted
//! proxies (`trusted_proxies`, CIDR blocks; none by default). Only then are
//! `Forwarded` (RFC 7239) or else `X-Forwarded-For` read, from the right:
//! each hop a trusted proxy appended is skipped, and the first address no
//! trusted proxy vouches for is the client. Whatever a client writes into
//! these headers itself stays to the left of that hop and is never believed,
//! so it cannot choose its throttling key or its address in the audit log.

use std::net::IpAddr;

use ipnet::IpNet;
use poem::http::HeaderMap;

/// The proxies whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

/// Most hops read from the forwarding headers; a longer chain is cut there.
const MAX_HOPS: usize = 32;

impl TrustedProxies {
    /// Trusts the proxies in `networks`.
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(&address))
    }

    /// The client's address: `peer` itself unless it is a trusted proxy,
    /// else the rightmost hop of the forwarding headers that is not one.
    pub fn client_address(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let mut client = peer.map(|ip| ip.to_canonical())?;
        if !self.trusts(client) {
            return Some(client);
        }
        for hop in forwarded_hops(headers).into_iter().rev().take(MAX_HOPS) {
            // A hop that is no address ("unknown", an obfuscated name, junk)
            // ends the chain: the last proxy we trust is what we know.
            let Some(address) = hop.map(|ip| ip.to_canonical()) else {
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        Some(client)
    }
}

/// The hops of `Forwarded` (its `for=` parameters) if present, else of
/// `X-Forwarded-For`, left to right, every header line in order; `None`
/// for a hop that is not an address.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let lines = |name: &str| {
        headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>()
    };
    let forwarded = lines("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|line| line.split(','))
            .map(|element| {
                element
                    .split(';')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                    .and_then(|(_, value)| node_address(value.trim().trim_matches('"')))
            })
            .collect();
    }
    lines("x-forwarded-for")
        .iter()
        .flat_map(|line| line.split(','))
        .map(|hop| node_address(hop.trim()))
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`
/// or a bare IPv6 address.
fn node_address(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']').and_then(|(ip, _)| ip.parse().ok());
    }
    node.rsplit_once(':')
        .and_then(|(ip, port)| {
            (port.bytes().all(|b| b.is_ascii_digit()))
                .then(|| ip.parse::<std::net::Ipv4Addr>().ok())?
        })
        .map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

    use super::*;

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_it_claims() {
        let claims =
            headers(&[("x-forwarded-for", "203.0.113.9"), ("forwarded", "for=198.51.100.1")]);
        assert_eq!(
            TrustedProxies::default().client_address(ip("10.0.0.5"), &claims),
            ip("10.0.0.5")
        );
        // A trusted list that does not hold the peer changes nothing.
        assert_eq!(
            proxies(&["10.1.0.0/16"]).client_address(ip("10.0.0.5"), &claims),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "::1/128"]);
        // The client forged the leftmost entry; the proxies appended the rest.
        let chain = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.0.7")]);
        assert_eq!(trusted.client_address(ip("10.0.0.5"), &chain), ip("203.0.113.9"));
        // Over several header lines, and from an IPv6 loopback proxy.
        let lines = headers(&[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(trusted.client_address(ip("::1"), &lines), ip("203.0.113.9"));
        // Every hop trusted: the leftmost is what we know.
        let inner = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.7")]);
        assert_eq!(trusted.client_address(ip("10.0.0.5"), &inner), ip("10.9.9.9"));
        // No header: the proxy itself.
        assert_eq!(trusted.client_address(ip("10.0.0.5"), &HeaderMap::new()), ip("10.0.0.5"));
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_its_forms_are_read() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let both = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            (
                "forwarded",
                "for=192.0.2.60;proto=https, for=\"[2001:db8:cafe::17]:4711\";by=10.0.0.1",
            ),
        ]);
        assert_eq!(trusted.client_address(ip("10.0.0.5"), &both), ip("2001:db8:cafe::17"));
        let port = headers(&[("forwarded", "For=\"192.0.2.43:47011\"")]);
        assert_eq!(trusted.client_address(ip("10.0.0.5"), &port), ip("192.0.2.43"));
    }

    #[test]
    fn a_hop_that_is_no_address_ends_the_chain_at_the_last_trusted_proxy() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let junk = headers(&[("x-forwarded-for", "203.0.113.9, unknown, 10.0.0.7")]);
        assert_eq!(trusted.client_address(ip("10.0.0.5"), &junk), ip("10.0.0.7"));
        let hidden = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(trusted.client_address(ip("10.0.0.5"), &hidden), ip("10.0.0.5"));
    }

    #[test]
    fn ipv4_mapped_peers_count_as_their_ipv4_address() {
        let trusted = proxies(&["127.0.0.0/8"]);
        let chain = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(trusted.client_address(ip("::ffff:127.0.0.1"), &chain), ip("203.0.113.9"));
    }
}
