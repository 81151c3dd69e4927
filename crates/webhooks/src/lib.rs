//! Sends webhook deliveries: a POST with the Standard Webhooks headers,
//! no redirects followed, no proxy, bounded time, and every address a
//! name resolves to checked when the connection is made (a name that
//! pointed to a public address when the endpoint was added may point to
//! `127.0.0.1` or the cloud's metadata service later: DNS rebinding).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use secureai_domain::webhooks::deliveries::{SendFailed, SignedRequest};
use secureai_domain::webhooks::models::{EndpointPolicy, public_ip};
use secureai_domain::webhooks::ports::WebhookSender;

/// How long one attempt may take, connection included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of a receiver's answer is read (then dropped).
const MAX_ANSWER: usize = 64 * 1024;

/// Whether a delivery may connect to `ip` under `policy`.
fn allowed(ip: IpAddr, policy: EndpointPolicy) -> bool {
    policy.allow_private || public_ip(ip) || (policy.allow_insecure_loopback && ip.is_loopback())
}

/// Resolves names with the system resolver and keeps only the addresses
/// the policy allows.
struct GuardedResolver {
    policy: EndpointPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> =
                found.iter().copied().filter(|a| allowed(a.ip(), policy)).collect();
            if kept.is_empty() {
                let reason = if found.is_empty() {
                    format!("{host} does not resolve")
                } else {
                    format!("{host} resolves only to private or reserved addresses: refused")
                };
                return Err(reason.into());
            }
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// Delivers over HTTP(S) with reqwest.
pub struct HttpWebhookSender {
    client: reqwest::Client,
    policy: EndpointPolicy,
}

impl HttpWebhookSender {
    /// A sender that connects only where `policy` allows.
    ///
    /// # Errors
    /// If the TLS backend cannot be set up.
    pub fn new(policy: EndpointPolicy) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("SecureAI-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver { policy }))
            .build()?;
        Ok(Self { client, policy })
    }
}

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(&self, request: &SignedRequest) -> Result<u16, SendFailed> {
        let url = reqwest::Url::parse(&request.url)
            .map_err(|_| SendFailed("the endpoint's address is not a URL".to_owned()))?;
        // An address written as an IP is not resolved: check it here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        if literal.is_some_and(|ip| !allowed(ip, self.policy)) {
            return Err(SendFailed("the address is private or reserved: refused".to_owned()));
        }
        let span = tracing::info_span!(
            target: "secureai_trace",
            "webhook.send",
            otel.kind = "client",
            server.address = url.host_str().unwrap_or_default(),
            webhook.id = %request.message_id,
            http.response.status_code = tracing::field::Empty,
        );
        let answer = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &request.message_id)
            .header("webhook-timestamp", request.timestamp.to_string())
            .header("webhook-signature", &request.signature)
            .body(request.body.clone())
            .send();
        let answer = tracing::Instrument::instrument(answer, span.clone())
            .await
            .map_err(|e| SendFailed(describe(&e)))?;
        let status = answer.status().as_u16();
        span.record("http.response.status_code", status);
        // Read a little of the answer so the connection can be reused;
        // a receiver that sends more is cut off.
        let mut answer = answer;
        let mut read = 0;
        while read < MAX_ANSWER {
            match answer.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                _ => break,
            }
        }
        Ok(status)
    }
}

/// Why a request got no answer, in words, with the causes reqwest chains
/// (the resolver's refusal among them).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(url: &str) -> SignedRequest {
        SignedRequest {
            url: url.to_owned(),
            message_id: "msg_1".to_owned(),
            timestamp: 1,
            signature: "v1,x".to_owned(),
            body: "{}".to_owned(),
        }
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_a_private_address_is_refused_when_connecting() {
        let strict = HttpWebhookSender::new(EndpointPolicy::default()).unwrap();
        // `localhost` passes no check as written here: the resolver refuses
        // the loopback address it resolves to, as it would a public name
        // pointed at 127.0.0.1 or 169.254.169.254 after the endpoint was added.
        for url in ["https://localhost:9/hook", "http://localhost:9/hook"] {
            let refused = strict.send(&request(url)).await.unwrap_err();
            assert!(refused.0.contains("private or reserved"), "{url}: {refused}");
        }
        for url in ["https://127.0.0.1:9/", "https://[::1]:9/", "https://169.254.169.254/"] {
            let refused = strict.send(&request(url)).await.unwrap_err();
            assert!(refused.0.contains("private or reserved"), "{url}: {refused}");
        }
        // Allowed for development: it connects (nothing listens on port 9).
        let dev = EndpointPolicy { allow_insecure_loopback: true, allow_private: false };
        let dev = HttpWebhookSender::new(dev).unwrap();
        let unreachable = dev.send(&request("http://localhost:9/hook")).await.unwrap_err();
        assert!(unreachable.0.contains("could not connect"), "{unreachable}");
    }
}
