//! A real SAML identity provider for tests: npm `saml-idp` (signing with
//! `samlp`), one process per test on its own port with its own freshly
//! generated key; and a browser stand-in that signs in on its page and
//! brings back the auto-submitted response form.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use reqwest::Client;
use tempfile::TempDir;

use crate::peer::spawn_until_ready;
use crate::smtp::free_port;

/// The IdP's entity id.
pub const IDP_ENTITY_ID: &str = "urn:secureai:test-idp";

/// A key pair made with the `openssl` command: the certificate (PEM), the
/// private key in the "BEGIN RSA PRIVATE KEY" form saml-idp wants, and the
/// certificate's base64 body (as metadata carries it).
pub struct KeyPair {
    /// Certificate file.
    pub cert: PathBuf,
    /// Private key file (traditional RSA form).
    pub key: PathBuf,
    /// The certificate's DER, base64, on one line.
    pub cert_base64: String,
}

/// Makes a fresh self-signed RSA key pair in `dir` named `name`.
pub fn key_pair(dir: &Path, name: &str) -> KeyPair {
    let cert = dir.join(format!("{name}-cert.pem"));
    let pkcs8 = dir.join(format!("{name}-pkcs8.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    let run = |args: &[&str]| {
        let output = Command::new("openssl").args(args).output().expect("the openssl command");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=secureai-test-idp",
        "-keyout",
        pkcs8.to_str().unwrap(),
        "-out",
        cert.to_str().unwrap(),
    ]);
    run(&["rsa", "-in", pkcs8.to_str().unwrap(), "-traditional", "-out", key.to_str().unwrap()]);
    let pem = std::fs::read_to_string(&cert).unwrap();
    let cert_base64 = pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>();
    KeyPair { cert, key, cert_base64 }
}

/// How to start the IdP.
pub struct SamlPeerOptions<'a> {
    /// Our assertion consumer service URL.
    pub acs_url: &'a str,
    /// The audience it puts in assertions (our entity id, unless a test
    /// wants another).
    pub audience: &'a str,
    /// Its clock's offset from ours, in milliseconds (negative: its
    /// assertions are old).
    pub clock_shift_ms: i64,
}

/// A running SAML IdP.
pub struct SamlPeer {
    /// `http://localhost:PORT`.
    pub base: String,
    /// The key it signs with.
    pub keys: KeyPair,
    /// A folder for further keys.
    pub dir: TempDir,
    child: Child,
}

impl SamlPeer {
    /// Starts an IdP for this ACS URL and audience.
    pub fn start(options: &SamlPeerOptions<'_>) -> Self {
        let peers = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers");
        let package = peers.join("node_modules/saml-idp");
        assert!(
            package.is_dir(),
            "npm saml-idp is not installed: run `npm ci --prefix tests/peers` (./scripts/test.sh does)"
        );
        let dir = tempfile::tempdir().unwrap();
        let keys = key_pair(dir.path(), "idp");
        let port = free_port();
        let mut command = Command::new("node");
        command
            .arg("-r")
            .arg(peers.join("shifted_clock.cjs"))
            .arg(package.join("bin/run.js"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--cert")
            .arg(&keys.cert)
            .arg("--key")
            .arg(&keys.key)
            .args(["--issuer", IDP_ENTITY_ID, "--acsUrl", options.acs_url])
            .args(["--audience", options.audience])
            .arg("--configFile")
            .arg(package.join("config.js"))
            .env("SECUREAI_CLOCK_SHIFT_MS", options.clock_shift_ms.to_string())
            .env("FORCE_COLOR", "0")
            .current_dir(&peers);
        let child = spawn_until_ready(
            command,
            "IdP server ready",
            "the SAML test IdP",
            "./scripts/test.sh installs it with npm",
        );
        Self { base: format!("http://localhost:{port}"), keys, dir, child }
    }

    /// Its metadata (XML), as it serves it.
    pub async fn metadata(&self) -> String {
        reqwest::get(format!("{}/metadata", self.base)).await.unwrap().text().await.unwrap()
    }
}

impl Drop for SamlPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The response form the IdP's page posts to us.
#[derive(Debug, Clone)]
pub struct SamlPost {
    /// Where it posts (our ACS URL).
    pub action: String,
    /// The base64 SAML response.
    pub saml_response: String,
    /// The relay state.
    pub relay_state: String,
}

impl SamlPost {
    /// The response XML.
    pub fn xml(&self) -> String {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD.decode(&self.saml_response).unwrap();
        String::from_utf8(bytes).unwrap()
    }

    /// This post with other response XML.
    pub fn with_xml(&self, xml: &str) -> Self {
        use base64::Engine as _;
        Self {
            saml_response: base64::engine::general_purpose::STANDARD.encode(xml),
            ..self.clone()
        }
    }

    /// Posts it as the browser would.
    pub async fn send(&self, browser: &Client) -> reqwest::Response {
        browser
            .post(&self.action)
            .form(&[("SAMLResponse", &self.saml_response), ("RelayState", &self.relay_state)])
            .send()
            .await
            .unwrap()
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

fn html_unescape(text: &str) -> String {
    text.replace("&#x3D;", "=")
        .replace("&#x2F;", "/")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Signs in at the IdP as `email`, starting from its SSO URL (where our
/// redirect points); returns the form its page would post to us.
pub async fn sign_in_at_idp(browser: &Client, sso_url: &str, email: &str) -> SamlPost {
    let page = browser.get(sso_url).send().await.unwrap();
    assert!(page.status().is_success(), "the IdP answered {}", page.status());
    let base = page.url().clone();
    let html = page.text().await.unwrap();
    let request = between(&html, "name=\"_authnRequest\" type='hidden' value='", "'")
        .unwrap_or_else(|| panic!("no AuthnRequest on the IdP's page: {html}"));
    let fields = [
        ("userName", email),
        ("nameIdFormat", "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"),
        ("email", email),
        ("firstName", "Ada"),
        ("lastName", "Lovelace"),
        ("displayName", "Ada Lovelace"),
        ("_authnRequest", &html_unescape(request)),
    ];
    let answer = browser.post(base.join("/signin").unwrap()).form(&fields).send().await.unwrap();
    let html = answer.text().await.unwrap();
    let action = between(&html, "action=\"", "\"").unwrap_or_else(|| panic!("no form: {html}"));
    let saml_response = between(&html, "name=\"SAMLResponse\" \n               value=\"", "\"")
        .or_else(|| between(&html, "value=\"", "\""))
        .unwrap();
    let relay_state = between(&html, "name=\"RelayState\" value=\"", "\"").unwrap_or("");
    SamlPost {
        action: html_unescape(action),
        saml_response: html_unescape(saml_response),
        relay_state: html_unescape(relay_state),
    }
}
