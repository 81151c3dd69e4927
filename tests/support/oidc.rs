//! A real OpenID Provider for tests: `tests/peers/oidc_provider.mjs`
//! (npm `oidc-provider`, installed by the test script into
//! `tests/peers/node_modules`), one process per test on its own port; and a
//! browser stand-in that signs in on its login page without JavaScript.

use std::path::Path;
use std::process::{Child, Command};

use reqwest::{Client, header};

use crate::peer::spawn_until_ready;
use crate::smtp::free_port;

/// The client secret the peer's `secureai` client is registered with.
pub const CLIENT_SECRET: &str = "test-client-secret-9f2c";

/// A running OpenID Provider.
pub struct OidcPeer {
    /// Its issuer URL, `http://127.0.0.1:PORT`.
    pub issuer: String,
    child: Child,
}

impl OidcPeer {
    /// Starts a provider whose client `secureai` redirects to `redirect_uri`.
    pub fn start(redirect_uri: &str) -> Self {
        let port = free_port();
        let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers");
        assert!(
            peers.join("node_modules/oidc-provider").is_dir(),
            "npm oidc-provider is not installed: run `npm ci --prefix tests/peers` \
             (./scripts/test.sh does)"
        );
        let mut command = Command::new("node");
        command
            .arg(peers.join("oidc_provider.mjs"))
            .arg(port.to_string())
            .arg(redirect_uri)
            .arg(CLIENT_SECRET)
            .current_dir(&peers);
        let child = spawn_until_ready(
            command,
            "READY",
            "the OIDC test provider",
            "./scripts/test.sh installs it with npm",
        );
        Self { issuer: format!("http://127.0.0.1:{port}"), child }
    }
}

impl Drop for OidcPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser stand-in: keeps cookies, follows no redirect by itself.
pub fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Where a redirect answer points, resolved against the request URL.
pub fn location(response: &reqwest::Response) -> String {
    let raw = response
        .headers()
        .get(header::LOCATION)
        .unwrap_or_else(|| panic!("no Location in a {} answer", response.status()))
        .to_str()
        .unwrap();
    response.url().join(raw).unwrap().to_string()
}

/// The value of `attribute="…"` in an HTML tag.
fn attribute(tag: &str, attribute: &str) -> Option<String> {
    let start = tag.find(&format!("{attribute}=\""))? + attribute.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].replace("&amp;", "&"))
}

/// Signs in at the provider as `login`, starting from its authorization
/// URL: follows its redirects and submits its login (and any consent) form,
/// until a redirect leaves the provider. Returns that URL: our callback,
/// with `code`, `state` and `iss`.
pub async fn sign_in_at_provider(
    browser: &Client,
    issuer: &str,
    start: &str,
    login: &str,
) -> String {
    let mut next = start.to_owned();
    let mut form: Option<Vec<(String, String)>> = None;
    for _ in 0..12 {
        let request = match form.take() {
            Some(fields) => browser.post(&next).form(&fields),
            None => browser.get(&next),
        };
        let response = request.send().await.unwrap();
        if response.status().is_redirection() {
            let to = location(&response);
            if !to.starts_with(issuer) {
                return to;
            }
            next = to;
            continue;
        }
        let url = response.url().clone();
        let status = response.status();
        let html = response.text().await.unwrap();
        let form_start = html
            .find("<form")
            .unwrap_or_else(|| panic!("the provider answered {status} without a form: {html}"));
        let form_html = &html[form_start..html[form_start..].find("</form>").unwrap() + form_start];
        let tag_end = form_html.find('>').unwrap();
        let action = attribute(&form_html[..tag_end], "action").unwrap();
        let mut fields = Vec::new();
        for input in form_html.split("<input").skip(1) {
            let tag = &input[..input.find('>').unwrap_or(input.len())];
            let Some(name) = attribute(tag, "name") else { continue };
            let value = match name.as_str() {
                "login" => login.to_owned(),
                "password" => "any password".to_owned(),
                _ => attribute(tag, "value").unwrap_or_default(),
            };
            fields.push((name, value));
        }
        next = url.join(&action).unwrap().to_string();
        form = Some(fields);
    }
    panic!("the sign-in at the provider did not come back within 12 steps");
}

/// Replaces (or adds) one query parameter of a URL.
pub fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs).append_pair(name, value);
    parsed.to_string()
}

/// One query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
