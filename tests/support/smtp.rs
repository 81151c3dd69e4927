//! A real SMTP server for tests: `tests/peers/smtp_server.py` (aiosmtpd),
//! one process per test on its own port and mail folder. The test script
//! installs `aiosmtpd` and `trustme`; a missing Python package fails the
//! test with the command to run, never skips it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use tempfile::TempDir;

use crate::peer::spawn_until_ready;
use crate::{Mail, read_mail};

/// How the peer secures connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP.
    None,
    /// STARTTLS required before MAIL.
    Starttls,
    /// Implicit TLS.
    Tls,
}

impl Security {
    fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Starttls => "starttls",
            Self::Tls => "tls",
        }
    }
}

/// A running SMTP server.
pub struct SmtpPeer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Where accepted messages are stored.
    pub maildir: PathBuf,
    /// The CA certificate its TLS certificate chains to (TLS modes).
    pub ca_file: PathBuf,
    child: Child,
    _dir: TempDir,
}

/// A free TCP port on 127.0.0.1 that nothing listens on afterwards, taken
/// below Linux's ephemeral range (32768–60999) so that no server bound to
/// port 0 by another test can be given it while a test keeps it free.
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919);
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(131)) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl SmtpPeer {
    /// Starts a server on a free port; with `login`, AUTH is required.
    pub fn start(security: Security, login: Option<(&str, &str)>) -> Self {
        Self::start_on(free_port(), security, login)
    }

    /// Starts a server on `port`.
    pub fn start_on(port: u16, security: Security, login: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("received");
        let ca_file = dir.path().join("ca.pem");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/smtp_server.py");
        let python = std::env::var("SECUREAI_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut command = Command::new(&python);
        command
            .arg(&script)
            .arg("--port")
            .arg(port.to_string())
            .arg("--security")
            .arg(security.as_str())
            .arg("--maildir")
            .arg(&maildir)
            .arg("--ca-out")
            .arg(&ca_file);
        if let Some((user, password)) = login {
            command.arg("--user").arg(user).arg("--password").arg(password);
        }
        let child = spawn_until_ready(
            command,
            "READY",
            &format!("the test SMTP server ({python} {})", script.display()),
            "is `pip install aiosmtpd trustme` done? ./scripts/test.sh installs them",
        );
        Self { port, maildir, ca_file, child, _dir: dir }
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<Mail> {
        read_mail(&self.maildir)
    }

    /// Waits (up to `seconds`) until at least `count` messages arrived.
    pub async fn wait_for(&self, count: usize, seconds: u64) -> Vec<Mail> {
        for _ in 0..seconds * 20 {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the SMTP server received {} of {count} messages", self.messages().len());
    }
}

impl Drop for SmtpPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
