//! Shared set-up for the bench binaries: a temporary SQLite instance with a
//! first admin.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use secrecy::SecretString;
use secureai_app::{Config, Wiring};
use secureai_domain::RequestContext;
use secureai_domain::access::Admin;

pub const ADMIN_EMAIL: &str = "root@example.com";
pub const ADMIN_PASSWORD: &str = "a long admin passphrase";

pub fn config(dir: &std::path::Path) -> Config {
    let mut config = Config { data_dir: dir.to_path_buf(), ..Config::default() };
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.mail.poll_interval_ms = 60_000;
    config
}

/// The first admin's capability: set up on a new database, signed in on
/// one a previous run set up.
pub async fn admin(wiring: &Wiring) -> Admin {
    let ctx = RequestContext::default();
    let pw = || SecretString::from(ADMIN_PASSWORD.to_owned());
    if let Some(token) = wiring.service.setup.prepare_setup().await.unwrap() {
        wiring.service.setup.complete_setup(&token, ADMIN_EMAIL, "Root", pw(), &ctx).await.unwrap();
    }
    let sessions = &wiring.service.sessions;
    let signed_in = sessions.sign_in(ADMIN_EMAIL, &pw(), &ctx).await.unwrap();
    if signed_in.session.enrolment_only {
        // Admins need a second factor (the default): set one up, as the
        // first admin does right after the setup link.
        let enrolling = sessions.authenticate_for_enrolment(&signed_in.token).await.unwrap();
        let mfa = &wiring.service.mfa;
        let setup = mfa.start_totp(enrolling.user()).await.unwrap();
        let code = totp_code(setup.secret.expose_base32());
        mfa.confirm_totp(&enrolling, &code, &ctx).await.unwrap();
    }
    sessions.authenticate(&signed_in.token).await.unwrap().admin().unwrap()
}

/// The code an authenticator app with this base32 secret shows now.
pub fn totp_code(secret: &str) -> String {
    totp_code_in(secret, 0)
}

/// The code the app shows `seconds` from now.
pub fn totp_code_in(secret: &str, seconds: u64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    let app = totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    );
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    app.generate(now.as_secs() + seconds)
}

/// The password of the users [`user`] makes.
pub const USER_PASSWORD: &str = "a long user passphrase";

/// Invites a user and accepts the invitation with [`USER_PASSWORD`]:
/// their email.
pub async fn user(wiring: &Wiring, admin: &Admin, email: &str) -> String {
    user_via(&wiring.service, admin, email).await;
    email.to_owned()
}

/// Completes the setup form of the instance at `base` and signs its first
/// admin in, setting up their second factor as they must: their session
/// token.
pub async fn first_admin_session(http: &reqwest::Client, base: &str, setup_link: &str) -> String {
    let token = setup_link.split("token=").nth(1).unwrap().to_owned();
    http.post(format!("{base}/setup"))
        .form(&[
            ("token", token.as_str()),
            ("email", ADMIN_EMAIL),
            ("name", "Root"),
            ("password", ADMIN_PASSWORD),
            ("password_confirm", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let credentials = serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD});
    let login = http.post(format!("{base}/api/v1/auth/login")).json(&credentials).send().await;
    let login: serde_json::Value = login.unwrap().json().await.unwrap();
    let session = login["token"].as_str().unwrap().to_owned();
    if login["mfa_enrolment_required"] == true {
        let started = http.post(format!("{base}/api/v1/me/mfa/totp")).bearer_auth(&session);
        let started: serde_json::Value = started.send().await.unwrap().json().await.unwrap();
        let code = totp_code(started["secret"].as_str().unwrap());
        let confirmed = http
            .post(format!("{base}/api/v1/me/mfa/totp/confirm"))
            .bearer_auth(&session)
            .json(&serde_json::json!({"code": code}))
            .send()
            .await
            .unwrap();
        assert!(confirmed.status().is_success(), "{}", confirmed.status());
    }
    session
}

/// Percentile of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The database a bench runs on: `BENCH_DB=postgres|mysql` creates a
/// throw-away database on the server named by `SECUREAI_TEST_POSTGRES_URL`
/// / `SECUREAI_TEST_MYSQL_URL`; default SQLite in the temporary folder.
pub async fn database(config: &mut Config) -> Option<secureai_store::test_databases::TestDatabase> {
    use secureai_store::test_databases::{Backend, TestDatabase};
    let backend = Backend::parse(&std::env::var("BENCH_DB").ok()?)?;
    if backend == Backend::Sqlite {
        return None;
    }
    let database = TestDatabase::create(backend).await.unwrap();
    config.database_url = Some(database.url.clone());
    Some(database)
}

/// [`user`] through the use cases of a running application: their id.
pub async fn user_via(
    service: &secureai_domain::UserManagement,
    admin: &Admin,
    email: &str,
) -> String {
    let ctx = RequestContext::default();
    let request = secureai_domain::invitations::service::InviteRequest {
        email: email.to_owned(),
        name: format!("Name of {email}"),
        role: "user".to_owned(),
        department: None,
        sign_in: None,
    };
    let invited = service.invitations.invite_user(admin, &request, &ctx).await.unwrap();
    let password = SecretString::from(USER_PASSWORD.to_owned());
    service.invitations.accept_invitation(&invited.token, password, &ctx).await.unwrap();
    invited.user.id.to_string()
}

/// A field of this process's `/proc/self/status`, in KiB (`VmRSS:`,
/// `VmHWM:` for the peak).
pub fn status_kib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// A number from the environment, else `default`.
pub fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `GET /healthz` per second from `clients` clients for 3 s: the
/// reference each figure stands beside.
pub async fn healthz(base: &str, clients: usize) -> f64 {
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let started = std::time::Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (client, url) = (client.clone(), format!("{base}/healthz"));
            tokio::spawn(async move {
                let mut n = 0_u64;
                while std::time::Instant::now() < deadline {
                    client.get(&url).send().await.unwrap().bytes().await.unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

/// `GET url` from `connections` clients for `seconds`, with a bearer
/// token if given: requests per second and every latency, sorted.
pub async fn load(
    url: String,
    token: Option<String>,
    connections: usize,
    seconds: u64,
) -> (f64, Vec<Duration>) {
    use std::sync::Arc;
    use std::time::Instant;
    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build().unwrap();
    let url = Arc::new(url);
    let token = Arc::new(token);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let mut request = client.get(url.as_str());
                    if let Some(token) = token.as_ref() {
                        request = request.bearer_auth(token);
                    }
                    let response = request.send().await.unwrap();
                    assert!(response.status().is_success());
                    response.bytes().await.unwrap();
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let all = latencies_of(workers).await;
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    (rate, all)
}

/// Every latency the client tasks measured, sorted.
pub async fn latencies_of(workers: Vec<tokio::task::JoinHandle<Vec<Duration>>>) -> Vec<Duration> {
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    all.sort();
    all
}
