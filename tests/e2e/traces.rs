//! Traces over OTLP (issue 25): the real binary with the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a collector this test runs
//! (OTLP/HTTP, `http/json`), a real SMTP server for the mail. Each request
//! is a server span with its route and status; its database statements
//! are child spans (the statement with placeholders, never the values);
//! the mail sent is a client span; nothing a user typed or a token
//! appears in any span.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::web::{Data, Json};
use poem::{EndpointExt as _, Route, handler, post};
use reqwest::StatusCode;
use serde_json::{Value, json};

use secureai_tests::body;
use secureai_tests::smtp::{Security, SmtpPeer};

use crate::{ADMIN, first_admin, free_port, serve};

type Received = Arc<Mutex<Vec<Value>>>;

#[handler]
async fn collect(body: poem::Body, received: Data<&Received>) -> Json<Value> {
    let bytes = body.into_vec().await.unwrap();
    let batch = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| json!({"unreadable": e.to_string(), "bytes": bytes.len()}));
    received.lock().unwrap().push(batch);
    Json(json!({}))
}

/// A collector that keeps every batch of spans posted to `/v1/traces`.
async fn collector() -> (u16, Received) {
    let received = Received::default();
    let port = free_port();
    let app = Route::new().at("/v1/traces", post(collect)).data(received.clone());
    let listener = poem::listener::TcpListener::bind(format!("127.0.0.1:{port}"));
    tokio::spawn(poem::Server::new(listener).run(app));
    tokio::time::sleep(Duration::from_millis(200)).await;
    (port, received)
}

/// One exported span, flattened.
#[derive(Debug)]
struct Span {
    name: String,
    trace: String,
    id: String,
    parent: String,
    attributes: serde_json::Map<String, Value>,
}

impl Span {
    fn attribute(&self, key: &str) -> Option<String> {
        let value = self.attributes.get(key)?;
        let text = value.get("stringValue").or_else(|| value.get("intValue"))?;
        Some(text.as_str().map_or_else(|| text.to_string(), str::to_owned))
    }
}

fn spans(received: &Received) -> (Vec<Span>, Vec<Value>) {
    let mut spans = Vec::new();
    let mut resources = Vec::new();
    for batch in received.lock().unwrap().iter() {
        assert!(batch.get("unreadable").is_none(), "{batch}");
        for resource in batch["resourceSpans"].as_array().unwrap() {
            resources.push(resource["resource"].clone());
            for scope in resource["scopeSpans"].as_array().unwrap() {
                for span in scope["spans"].as_array().unwrap() {
                    let attributes = span["attributes"]
                        .as_array()
                        .map(|a| {
                            a.iter().map(|kv| {
                                (kv["key"].as_str().unwrap().to_owned(), kv["value"].clone())
                            })
                        })
                        .into_iter()
                        .flatten()
                        .collect();
                    let text = |key: &str| span[key].as_str().unwrap_or_default().to_owned();
                    spans.push(Span {
                        name: text("name"),
                        trace: text("traceId"),
                        id: text("spanId"),
                        parent: text("parentSpanId"),
                        attributes,
                    });
                }
            }
        }
    }
    (spans, resources)
}

// The collector must answer while this test waits on the child (blocking
// reads and waits): it gets worker threads of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_statements_and_mail_are_exported_as_spans_without_secrets() {
    let (otlp_port, received) = collector().await;
    let smtp = SmtpPeer::start(Security::None, None);
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let env = [
        ("SECUREAI_MAIL__SMTP__HOST", "127.0.0.1".to_owned()),
        ("SECUREAI_MAIL__SMTP__PORT", smtp.port.to_string()),
        ("SECUREAI_MAIL__SMTP__SECURITY", "none".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{otlp_port}")),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".to_owned()),
        ("OTEL_SERVICE_NAME", "secureai-e2e".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
    ];
    let (mut child, lines) = serve(dir.path(), port, &env, Stdio::null());
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let setup_token = first_admin(&http, &base, &lines).await;
    let (email, password) = ADMIN;

    let login = format!("{base}/api/v1/auth/login");
    let wrong = json!({"email": email, "password": "a wrong guess of it"});
    assert_eq!(http.post(&login).json(&wrong).send().await.unwrap().status(), 401);
    let right = http.post(&login).json(&json!({"email": email, "password": password}));
    let session = body(right.send().await.unwrap()).await["token"].as_str().unwrap().to_owned();
    let invite = json!({"email": "new@example.com", "name": "New Person", "role": "user"});
    let invited = http.post(format!("{base}/api/v1/users")).bearer_auth(&session).json(&invite);
    assert_eq!(invited.send().await.unwrap().status(), StatusCode::CREATED);
    let mails = smtp.wait_for(1, 30).await;
    let accept_link = mails[0].text.clone();
    // Stopping flushes what the exporter still holds.
    crate::stop(&mut child);

    let (spans, resources) = spans(&received);
    let named = resources.iter().any(|r| r.to_string().contains("\"secureai-e2e\""));
    assert!(named, "OTEL_SERVICE_NAME names the service: {resources:?}");
    let logins: Vec<&Span> = spans
        .iter()
        .filter(|s| s.attribute("http.route").as_deref() == Some("/api/v1/auth/login"))
        .collect();
    let statuses: Vec<String> =
        logins.iter().filter_map(|s| s.attribute("http.response.status_code")).collect();
    assert!(
        statuses.contains(&"401".to_owned()) && statuses.contains(&"200".to_owned()),
        "{statuses:?}"
    );
    for login in &logins {
        assert_eq!(login.name, "POST");
        assert_eq!(login.attribute("http.request.method").as_deref(), Some("POST"));
        // Its statements are its children, in its trace.
        let statements: Vec<&Span> = spans
            .iter()
            .filter(|s| s.parent == login.id && s.trace == login.trace)
            .filter(|s| s.name.starts_with("sea_orm."))
            .collect();
        assert!(!statements.is_empty(), "statements under {login:?}");
        assert!(statements.iter().all(|s| s.attribute("db.system").as_deref() == Some("sqlite")));
    }
    let mail = spans.iter().find(|s| s.name == "smtp.send").expect("a span for the mail sent");
    assert_eq!(mail.attribute("server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(mail.attribute("server.port"), Some(smtp.port.to_string()));

    let everything = received.lock().unwrap().iter().map(Value::to_string).collect::<String>();
    let token_in_mail = accept_link.split("token=").nth(1).unwrap_or_default();
    let token_in_mail: String = token_in_mail
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-_".contains(*c))
        .collect();
    assert!(token_in_mail.len() > 20, "{accept_link}");
    for secret in [password, "a wrong guess of it", session.as_str(), &setup_token, &token_in_mail]
    {
        assert!(!everything.contains(secret), "{secret} appears in a span");
    }
}
