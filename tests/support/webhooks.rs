//! A webhook receiver on 127.0.0.1 for the delivery tests: it records every
//! request (headers and body as received), answers 500 to the first
//! `fail_first` requests, 410 while told the endpoint is gone, else 204.
//! Signatures are checked afterwards with the Standard Webhooks reference
//! library ([`verify_with_reference_library`]).

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::http::StatusCode;
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::{Request, Route, Server, handler, post};
use serde_json::{Value, json};

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    /// `webhook-id`.
    pub id: String,
    /// `webhook-timestamp`.
    pub timestamp: String,
    /// `webhook-signature`.
    pub signature: String,
    /// The raw body.
    pub body: String,
    /// What the receiver answered.
    pub status: u16,
}

impl Received {
    /// The body parsed.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    fail_first: usize,
    gone: bool,
}

/// A running receiver.
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[handler]
fn hook(req: &Request, body: String, state: poem::web::Data<&Arc<Mutex<State>>>) -> StatusCode {
    let header = |name: &str| {
        req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    };
    let mut state = state.lock().unwrap();
    let status = if state.gone {
        StatusCode::GONE
    } else if state.received.len() < state.fail_first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    };
    state.received.push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
        status: status.as_u16(),
    });
    status
}

impl Receiver {
    /// Starts a receiver that fails its first `fail_first` requests.
    pub async fn start(fail_first: usize) -> Self {
        let state = Arc::new(Mutex::new(State { fail_first, ..State::default() }));
        let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await.unwrap();
        let port = acceptor.local_addr()[0].as_socket_addr().unwrap().port();
        let app = poem::EndpointExt::data(Route::new().at("/hook", post(hook)), state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(Server::new_with_acceptor(acceptor).run_with_graceful_shutdown(
            app,
            async move {
                let _ = stopped.await;
            },
            Some(Duration::from_secs(1)),
        ));
        Self { url: format!("http://127.0.0.1:{port}/hook"), state, stop: Some(stop) }
    }

    /// Answer 410 Gone from now on (or stop).
    pub fn set_gone(&self, gone: bool) {
        self.state.lock().unwrap().gone = gone;
    }

    /// Every request so far, in order of arrival.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// The requests answered 2xx, in order of arrival.
    pub fn accepted(&self) -> Vec<Received> {
        self.received().into_iter().filter(|r| r.status < 300).collect()
    }

    /// Waits (up to 10 s) until `count` requests arrived in all; all of them.
    pub async fn wait_for_requests(&self, count: usize) -> Vec<Received> {
        for _ in 0..500 {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{count} requests expected, got {:?}", self.received());
    }

    /// Waits (up to 10 s) until `count` requests were accepted.
    pub async fn wait_for_accepted(&self, count: usize) -> Vec<Received> {
        for _ in 0..500 {
            let accepted = self.accepted();
            if accepted.len() >= count {
                return accepted;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{count} accepted deliveries expected, got {:?}", self.received());
    }
}

/// Whether the Standard Webhooks reference library (`standardwebhooks`
/// from PyPI, installed by `scripts/test.sh`) accepts each case: `{"secret",
/// "id", "timestamp", "body", "signature"}`.
pub fn verify_with_reference_library(cases: &Value) -> Vec<bool> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/verify_webhook.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(cases.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the reference library did not run (./scripts/test.sh installs it: pip install \
         standardwebhooks): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Checks every request with the reference library and `secret`: panics
/// unless each verifies. The receiver's clock is the service's (a test's
/// fake clock, which jumps ahead to reach retries): each is checked as of
/// when it was sent; the timestamp tolerance itself is checked against the
/// real clock in `tests/api/webhooks.rs`.
pub fn assert_signed(received: &[Received], secret: &str) {
    let cases: Vec<Value> = received
        .iter()
        .map(|r| {
            let timestamp = r.timestamp.parse::<i64>().unwrap();
            json!({"secret": secret, "id": r.id, "timestamp": timestamp, "now": timestamp,
                   "body": r.body, "signature": r.signature})
        })
        .collect();
    let verdicts = verify_with_reference_library(&Value::Array(cases));
    assert!(
        verdicts.iter().all(|ok| *ok),
        "signatures the reference library refused: {verdicts:?}"
    );
    assert_eq!(verdicts.len(), received.len());
}
