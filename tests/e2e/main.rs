//! End to end: the real `secureai` binary, as a newcomer runs it.
//!
//! The binary must be built first (`cargo build -p secureai-app`; the test
//! script does it). It is found next to this test's own executable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod logs;
mod metrics;
mod operator;
mod traces;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::StatusCode;
use secureai_tests::{body, wait_for_link};
use serde_json::json;

fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/e2e-HASH -> target/debug/secureai
    let path = exe.parent().unwrap().parent().unwrap().join("secureai");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p secureai-app` first",
        path.display()
    );
    path
}

/// Stops a server with SIGTERM and waits for it.
fn stop(child: &mut Child) {
    Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    child.wait().unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn secureai(dir: &Path) -> Command {
    let mut command = Command::new(binary());
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SECUREAI_DATA_DIR", dir.join("data"))
        .env("SECUREAI_MAIL__POLL_INTERVAL_MS", "100");
    command
}

/// The first admin the e2e tests create.
const ADMIN: (&str, &str) = ("it@example.com", "a long admin passphrase");

/// `secureai serve` on `port` with these variables added, stderr to
/// `stderr`; its stdout lines arrive on the receiver, read to the end on a
/// thread of its own (a closed pipe would make the server's next line fail).
fn serve(
    dir: &Path,
    port: u16,
    env: &[(&str, String)],
    stderr: Stdio,
) -> (Child, mpsc::Receiver<String>) {
    let mut command = secureai(dir);
    command.arg("serve").env("SECUREAI_LISTEN", format!("127.0.0.1:{port}"));
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, lines)
}

/// Waits for the printed setup link, creates [`ADMIN`] with it (the form a
/// browser posts) and makes second factors optional, as the first admin
/// would: the setup token.
async fn first_admin(http: &reqwest::Client, base: &str, lines: &mpsc::Receiver<String>) -> String {
    let link = loop {
        let line = lines.recv_timeout(Duration::from_secs(60)).expect("a setup link");
        if line.contains("/setup?token=") {
            break line.trim().to_owned();
        }
    };
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let (email, password) = ADMIN;
    let form = [
        ("token", token.as_str()),
        ("email", email),
        ("name", "IT Admin"),
        ("password", password),
        ("password_confirm", password),
    ];
    let created = http.post(format!("{base}/setup")).form(&form).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::OK);
    let now = chrono::Utc::now();
    secureai_tests::make_second_factors_optional(http, base, ADMIN, now).await;
    token
}

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Server {
    fn start(dir: &Path, port: u16) -> Self {
        let mut child = secureai(dir)
            .arg("serve")
            .env("SECUREAI_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child, lines }
    }

    /// Waits for a printed line containing `needle`.
    fn wait_for_line(&self, needle: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("secureai never printed {needle:?}"));
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Stops with SIGTERM and returns whether it exited cleanly.
    fn stop(mut self) -> bool {
        Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        self.child.wait().unwrap().success()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test]
async fn a_newcomer_sets_up_the_first_admin_invites_a_user_who_signs_in() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(dir.path(), port);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    // 1. Follow the printed setup link, as a browser would.
    let link = server.wait_for_line("/setup?token=").trim().to_owned();
    assert!(link.starts_with(&base), "{link}");
    let form = http.get(&link).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    assert!(form.text().await.unwrap().contains("Create the first admin"));
    let token = link.split("token=").nth(1).unwrap();
    let created = http
        .post(format!("{base}/setup"))
        .form(&[
            ("token", token),
            ("email", "it@example.com"),
            ("name", "IT Admin"),
            ("password", "a long admin passphrase"),
            ("password_confirm", "a long admin passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert!(created.text().await.unwrap().contains("Your admin account is ready"));

    // 2. Sign in as the admin and invite a user.
    let login = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "it@example.com", "password": "a long admin passphrase"}))
        .send()
        .await
        .unwrap();
    let login = body(login).await;
    let admin = login["token"].as_str().unwrap().to_owned();
    // Admins need a second factor: the first sign-in can only set one up.
    assert_eq!(login["mfa_enrolment_required"], true, "{login}");
    let refused = http.get(format!("{base}/api/v1/users")).bearer_auth(&admin).send().await;
    assert_eq!(body(refused.unwrap()).await["code"], "mfa_enrolment_required");
    let started = http.post(format!("{base}/api/v1/me/mfa/totp")).bearer_auth(&admin).send();
    let secret = body(started.await.unwrap()).await["secret"].as_str().unwrap().to_owned();
    let code = json!({"code": secureai_tests::totp_code_at(&secret, chrono::Utc::now())});
    let confirm = http.post(format!("{base}/api/v1/me/mfa/totp/confirm")).bearer_auth(&admin);
    let recovery = body(confirm.json(&code).send().await.unwrap()).await;
    assert_eq!(recovery["recovery_codes"].as_array().unwrap().len(), 10, "{recovery}");
    let invited = http
        .post(format!("{base}/api/v1/users"))
        .bearer_auth(&admin)
        .json(&json!({"email": "ada@example.com", "name": "Ada Lovelace", "role": "user"}))
        .send()
        .await
        .unwrap();
    assert_eq!(invited.status(), StatusCode::CREATED);

    // 3. Read the invitation email the service wrote and accept it.
    let accept_link = wait_for_link(
        &dir.path().join("data/mail"),
        "ada@example.com",
        "/invitations/accept?token=",
    )
    .await;
    assert!(accept_link.starts_with(&base), "{accept_link}");
    let page = http.get(&accept_link).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("Activate your account"));
    let invitation = accept_link.split("token=").nth(1).unwrap();
    let activated = http
        .post(format!("{base}/invitations/accept"))
        .form(&[
            ("token", invitation),
            ("password", "ada's analytical engine"),
            ("password_confirm", "ada's analytical engine"),
        ])
        .send()
        .await
        .unwrap();
    assert!(activated.text().await.unwrap().contains("Your account is active"));

    // 4. Sign in as the user; an admin route is forbidden.
    let login = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "ada@example.com", "password": "ada's analytical engine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let user = body(login).await["token"].as_str().unwrap().to_owned();
    let me =
        body(http.get(format!("{base}/api/v1/me")).bearer_auth(&user).send().await.unwrap()).await;
    assert_eq!(me["email"], "ada@example.com");
    let users = http.get(format!("{base}/api/v1/users")).bearer_auth(&user).send().await.unwrap();
    assert_eq!(users.status(), StatusCode::FORBIDDEN);
    assert_eq!(body(users).await["code"], "forbidden");

    // 5. A restart prints no setup link now that an admin exists, and
    //    SIGTERM stops the service cleanly.
    assert!(server.stop(), "secureai did not exit cleanly on SIGTERM");
    let restarted = Server::start(dir.path(), port);
    restarted.wait_for_line("listening on");
    assert!(
        restarted.lines.recv_timeout(Duration::from_millis(500)).is_err(),
        "no setup link expected"
    );
    assert!(restarted.stop());

    // 6. The last admin lost their phone: the operator resets their second
    //    factor from the command line, and their next sign-in sets up a
    //    new one.
    let reset = |confirm: bool| {
        let mut command = secureai(dir.path());
        command.args(["users", "reset-mfa", "--email", "it@example.com"]);
        if confirm {
            command.arg("--yes");
        }
        command.output().unwrap()
    };
    let unconfirmed = reset(false);
    assert!(!unconfirmed.status.success());
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("--yes"));
    let done = reset(true);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    assert!(String::from_utf8_lossy(&done.stdout).contains("Reset the second factor"));
    let again = reset(true);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no second factor"));
    let server = Server::start(dir.path(), port);
    server.wait_for_line("listening on");
    let notice = wait_for_mail_subject(&dir.path().join("data/mail"), "second factor was reset");
    assert!(notice, "the admin is emailed (the instance's worker delivers it)");
    // A new client: the old one's pooled connections died with the server.
    let login = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "it@example.com", "password": "a long admin passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(login).await["mfa_enrolment_required"], true);
    assert!(server.stop());
}

/// Whether a message whose subject contains `text` is in `dir` within
/// ten seconds (the worker of a running instance delivers it).
fn wait_for_mail_subject(dir: &Path, text: &str) -> bool {
    for _ in 0..100 {
        if secureai_tests::read_mail(dir).iter().any(|m| m.subject.contains(text)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[tokio::test]
async fn two_instances_on_one_postgresql_share_every_invalidation_and_send_each_mail_once() {
    two_instances_share_one_database(secureai_store::test_databases::Backend::Postgres).await;
}

#[tokio::test]
async fn two_instances_on_one_mariadb_share_every_invalidation_and_send_each_mail_once() {
    two_instances_share_one_database(secureai_store::test_databases::Backend::MySql).await;
}

/// Two `secureai serve` processes on one server database (issue 4): a
/// session terminated or a user deactivated through one is refused by the
/// other on its next request, and every invitation email is delivered
/// exactly once although both outbox workers poll.
async fn two_instances_share_one_database(backend: secureai_store::test_databases::Backend) {
    use secureai_store::test_databases::TestDatabase;
    let database = match TestDatabase::create(backend).await {
        Ok(database) => database,
        Err(secureai_store::test_databases::TestDatabaseError::NotConfigured(_)) => {
            eprintln!("not run: {backend:?} is not configured");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let ports = [free_port(), free_port()];
    // Instances sharing a database share the key that seals its secrets.
    let key = secureai_store::SecretKey::generate().to_base64();
    let start = |i: usize| {
        let mut command = secureai(dirs[i].path());
        command
            .arg("serve")
            .env("SECUREAI_LISTEN", format!("127.0.0.1:{}", ports[i]))
            .env("SECUREAI_DATABASE_URL", &database.url)
            .env("SECUREAI_SECRET_KEY", &key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Server { child, lines }
    };
    let a = start(0);
    a.wait_for_line("/setup?token=");
    // B starts while no admin exists: its link replaces A's, which is void.
    let b = start(1);
    let link = b.wait_for_line("/setup?token=").trim().to_owned();
    let setup_token = link.split("token=").nth(1).unwrap().to_owned();
    let base = |i: usize| format!("http://127.0.0.1:{}", ports[i]);
    let http = reqwest::Client::new();
    let done = http
        .post(format!("{}/setup", base(0)))
        .form(&[
            ("token", setup_token.as_str()),
            ("email", "it@example.com"),
            ("name", "IT"),
            ("password", "a long admin passphrase"),
            ("password_confirm", "a long admin passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert!(done.text().await.unwrap().contains("Your admin account is ready"));
    let it = ("it@example.com", "a long admin passphrase");
    secureai_tests::make_second_factors_optional(&http, &base(0), it, chrono::Utc::now()).await;

    let login = |i: usize, email: &'static str, password: &'static str| {
        let http = http.clone();
        let url = format!("{}/api/v1/auth/login", base(i));
        async move {
            let response = http
                .post(url)
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "login of {email}");
            body(response).await["token"].as_str().unwrap().to_owned()
        }
    };
    let admin = login(0, "it@example.com", "a long admin passphrase").await;

    // Invitations through both instances; both workers poll the one outbox.
    let mut invited = Vec::new();
    for i in 0..6 {
        let email = format!("staff{i}@example.com");
        let response = http
            .post(format!("{}/api/v1/users", base(i % 2)))
            .bearer_auth(&admin)
            .json(&json!({"email": email, "name": "Staff", "role": "user"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        invited.push(email);
    }
    let mail_dirs = [dirs[0].path().join("data/mail"), dirs[1].path().join("data/mail")];
    let mut delivered = 0;
    for _ in 0..200 {
        delivered = mail_dirs.iter().map(|d| secureai_tests::read_mail(d).len()).sum::<usize>();
        if delivered >= invited.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut recipients: Vec<String> =
        mail_dirs.iter().flat_map(|d| secureai_tests::read_mail(d)).map(|m| m.to).collect();
    recipients.sort();
    let mut expected = invited.clone();
    expected.sort();
    assert_eq!(recipients, expected, "every invitation exactly once (delivered {delivered})");

    // Activate one user; a session made on B dies when A terminates it.
    let link = mail_dirs
        .iter()
        .flat_map(|d| secureai_tests::links_to(d, "staff0@example.com", "token="))
        .next()
        .unwrap();
    let invitation = link.split("token=").nth(1).unwrap();
    let accepted = http
        .post(format!("{}/api/v1/invitations/accept", base(1)))
        .json(&json!({"token": invitation, "password": "staff zero password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);
    let on_b = login(1, "staff0@example.com", "staff zero password").await;
    let me = |i: usize, token: String| {
        let http = http.clone();
        let url = format!("{}/api/v1/me", base(i));
        async move { http.get(url).bearer_auth(token).send().await.unwrap().status() }
    };
    assert_eq!(me(1, on_b.clone()).await, StatusCode::OK);
    let users: serde_json::Value = body(
        http.get(format!("{}/api/v1/users?q=staff0", base(0)))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let id = users["items"][0]["id"].as_str().unwrap().to_owned();
    let ended = http
        .delete(format!("{}/api/v1/users/{id}/sessions", base(0)))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::OK);
    assert_eq!(me(1, on_b).await, StatusCode::UNAUTHORIZED, "B still honoured a session A ended");

    // Deactivation through B is refused by A on the next request.
    let on_a = login(0, "staff0@example.com", "staff zero password").await;
    let deactivated = http
        .patch(format!("{}/api/v1/users/{id}", base(1)))
        .bearer_auth(&admin)
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(deactivated.status(), StatusCode::OK);
    assert_eq!(me(0, on_a).await, StatusCode::UNAUTHORIZED, "A still honoured a deactivated user");

    // The identity provider deactivates someone over SCIM through B: both
    // instances refuse them on the very next request.
    let link = mail_dirs
        .iter()
        .flat_map(|d| secureai_tests::links_to(d, "staff1@example.com", "token="))
        .next()
        .unwrap();
    let accepted = http
        .post(format!("{}/api/v1/invitations/accept", base(0)))
        .json(&json!({"token": link.split("token=").nth(1).unwrap(), "password": "staff one password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);
    let one_on_a = login(0, "staff1@example.com", "staff one password").await;
    let one_on_b = login(1, "staff1@example.com", "staff one password").await;
    let created = http
        .post(format!("{}/api/v1/service-tokens", base(0)))
        .bearer_auth(&admin)
        .json(&json!({"name": "Entra ID", "scopes": ["scim"]}))
        .send()
        .await
        .unwrap();
    let scim = body(created).await["secret"].as_str().unwrap().to_owned();
    let lookup =
        format!("{}/scim/v2/Users?filter=userName%20eq%20%22staff1@example.com%22", base(1));
    let found = body(http.get(lookup).bearer_auth(&scim).send().await.unwrap()).await;
    let one = found["Resources"][0]["id"].as_str().unwrap().to_owned();
    let disable = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    });
    let disabled = http
        .patch(format!("{}/scim/v2/Users/{one}", base(1)))
        .bearer_auth(&scim)
        .json(&disable)
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), StatusCode::OK);
    assert_eq!(
        me(0, one_on_a).await,
        StatusCode::UNAUTHORIZED,
        "A honoured a user SCIM deactivated"
    );
    assert_eq!(
        me(1, one_on_b).await,
        StatusCode::UNAUTHORIZED,
        "B honoured a user SCIM deactivated"
    );

    assert!(a.stop());
    assert!(b.stop());
}

#[test]
fn a_stopping_server_finishes_the_request_in_flight_and_refuses_new_ones() {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(dir.path(), port);
    server.wait_for_line("is listening on");

    // A sign-in whose body is still arriving when the signal comes.
    let body = r#"{"email":"nobody@example.com","password":"not the password"}"#;
    let (first, rest) = body.split_at(20);
    let mut in_flight = TcpStream::connect(("127.0.0.1", port)).unwrap();
    in_flight.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        in_flight,
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{first}",
        body.len()
    )
    .unwrap();
    in_flight.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    Command::new("kill").arg("-TERM").arg(server.child.id().to_string()).status().unwrap();
    // The listener closes: new connections are refused while the request
    // in flight is still open.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(std::time::Instant::now() < deadline, "still accepting after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }

    in_flight.write_all(rest.as_bytes()).unwrap();
    let mut response = String::new();
    in_flight.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(response.contains("invalid_credentials"), "{response}");

    let mut server = server;
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit status {status}");
}
