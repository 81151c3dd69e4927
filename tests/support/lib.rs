//! Test support: start the real application on a random port (`TestApp`),
//! drive it over HTTP, read the mail it writes; start a real SMTP server
//! (`smtp::SmtpPeer`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, Response, StatusCode};
use secureai_app::{Application, Config};
use secureai_domain::testing::FakeClock;
use secureai_store::test_databases::{Backend, TestDatabase};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub mod browser;
pub mod metrics;
pub mod oidc;
mod peer;
pub mod saml;
pub mod smtp;
pub mod webhooks;

/// The first admin every `TestApp::with_admin` creates.
pub const ADMIN_EMAIL: &str = "root@example.com";
/// Their password.
pub const ADMIN_PASSWORD: &str = "a long admin passphrase";

/// A running application on its own port, data folder and SQLite database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The one-time setup link printed at start.
    pub setup_link: Option<String>,
    /// The data folder (database, mail).
    pub data_dir: PathBuf,
    /// The application's clock.
    pub clock: Arc<FakeClock>,
    /// A client without cookies.
    pub http: Client,
    /// The database the application uses.
    pub database_url: String,
    stop: Option<oneshot::Sender<()>>,
    _database: Option<TestDatabase>,
    _dir: TempDir,
}

/// The database the HTTP suite runs on: `SECUREAI_TEST_HTTP_DB` (`sqlite`,
/// `postgres` or `mysql`; default `sqlite`).
pub fn http_backend() -> Backend {
    std::env::var("SECUREAI_TEST_HTTP_DB")
        .ok()
        .map(|name| {
            Backend::parse(&name)
                .unwrap_or_else(|| panic!("unknown SECUREAI_TEST_HTTP_DB {name:?}"))
        })
        .unwrap_or(Backend::Sqlite)
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The configuration tests start from: a temporary data folder, port 0,
/// fast mail polling.
pub fn test_config(data_dir: &Path) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    };
    config.mail.poll_interval_ms = 50;
    config.webhooks.poll_interval_ms = 50;
    // Receivers in tests listen on 127.0.0.1 over plain HTTP.
    config.webhooks.allow_insecure_loopback = true;
    config
}

impl TestApp {
    /// Starts the application with the test configuration.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the application after `adjust` changed the configuration.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = test_config(dir.path());
        let database = match http_backend() {
            Backend::Sqlite => None,
            backend => {
                let database =
                    TestDatabase::create(backend).await.unwrap_or_else(|e| panic!("{e}"));
                config.database_url = Some(database.url.clone());
                Some(database)
            }
        };
        adjust(&mut config);
        let clock = Arc::new(FakeClock::at(chrono::Utc::now()));
        Self::start(config, clock, database, dir).await
    }

    async fn start(
        config: Config,
        clock: Arc<FakeClock>,
        database: Option<TestDatabase>,
        dir: TempDir,
    ) -> Self {
        let database_url = config.database_url();
        let app = Application::build_with_clock(&config, clock.clone()).await.unwrap();
        let base = format!("http://{}", app.address());
        let setup_link = app.setup_link();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        Self {
            base,
            setup_link,
            data_dir: dir.path().to_path_buf(),
            clock,
            http: Client::new(),
            database_url,
            stop: Some(stop),
            _database: database,
            _dir: dir,
        }
    }

    /// Stops the application (its requests and worker rounds in flight
    /// finish first) and starts it again on the same data folder, database
    /// and secret key, its clock where it was; `adjust` changes the
    /// configuration of the new start.
    pub async fn restart(mut self, adjust: impl FnOnce(&mut Config)) -> Self {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Stopped when the port no longer answers.
        for _ in 0..250 {
            if self.http.get(self.url("/healthz")).send().await.is_err() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        let mut config = test_config(dir.path());
        config.database_url = Some(self.database_url.clone());
        adjust(&mut config);
        let clock = Arc::new(FakeClock::at(secureai_domain::Clock::now(&*self.clock)));
        Self::start(config, clock, self._database.take(), dir).await
    }

    /// Starts the application and creates the first admin through the
    /// setup page.
    pub async fn with_admin() -> Self {
        Self::with_admin_using(|_| {}).await
    }

    /// [`TestApp::with_admin`] after `adjust` changed the configuration.
    pub async fn with_admin_using(adjust: impl FnOnce(&mut Config)) -> Self {
        let app = Self::spawn_with(adjust).await;
        app.complete_setup(ADMIN_EMAIL, "Root Admin", ADMIN_PASSWORD).await;
        app.make_second_factors_optional().await;
        app
    }

    /// Makes second factors optional for admins and users, as the first
    /// admin would: their first sign-in can only set one up, so they set
    /// one up, save Settings › Security, remove it again and sign out.
    /// Tests about something else run so; `tests/api/mfa_policy.rs` and
    /// the browser's first-admin test keep the default (required of
    /// admins).
    pub async fn make_second_factors_optional(&self) {
        use secureai_domain::Clock as _;
        let admin = (ADMIN_EMAIL, ADMIN_PASSWORD);
        make_second_factors_optional(&self.http, &self.base, admin, self.clock.now()).await;
    }

    /// Rows in `table` of the application's database (counted directly).
    pub async fn rows(&self, table: &str) -> i64 {
        use sea_orm::ConnectionTrait as _;
        let store = secureai_store::SqlStore::connect(&self.database_url, &Default::default())
            .await
            .unwrap();
        let backend = store.backend();
        let row = store
            .connection()
            .query_one_raw(sea_orm::Statement::from_string(
                backend,
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .unwrap()
            .unwrap();
        let n: i64 = row.try_get("", "n").unwrap();
        store.close().await.unwrap();
        n
    }

    /// Every value of every column of every table of the application's
    /// database, as text (for scans of what is stored at rest).
    pub async fn all_text(&self) -> Vec<(String, String, String)> {
        stored_text(&self.database_url).await
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Submits the setup form.
    pub async fn complete_setup(&self, email: &str, name: &str, password: &str) -> Response {
        let link = self.setup_link.clone().expect("a fresh instance prints a setup link");
        let token = link.split("token=").nth(1).unwrap().to_owned();
        let response = self
            .http
            .post(self.url("/setup"))
            .form(&[
                ("token", token.as_str()),
                ("email", email),
                ("name", name),
                ("password", password),
                ("password_confirm", password),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response
    }

    /// Signs in; returns the bearer token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let response = self
            .post("/api/v1/auth/login", None, json!({"email": email, "password": password}))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "login of {email} failed");
        body(response).await["token"].as_str().unwrap().to_owned()
    }

    /// The code an authenticator app with this base32 `secret` shows at
    /// the application's (fake) time, `seconds_ago` earlier.
    pub fn totp_code(&self, secret: &str, seconds_ago: i64) -> String {
        use secureai_domain::Clock as _;
        totp_code_at(secret, self.clock.now() - chrono::Duration::seconds(seconds_ago))
    }

    /// The admin's bearer token.
    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// POSTs a CSV file (any bytes) to `/api/v1/users/import?{query}`.
    pub async fn import_csv(&self, token: &str, query: &str, csv: impl Into<Vec<u8>>) -> Response {
        self.http
            .post(self.url(&format!("/api/v1/users/import?{query}")))
            .bearer_auth(token)
            .header("content-type", "text/csv")
            .body(csv.into())
            .send()
            .await
            .unwrap()
    }

    /// POSTs JSON, with a bearer token if given.
    pub async fn post(&self, path: &str, token: Option<&str>, json: Value) -> Response {
        let mut request = self.http.post(self.url(path)).json(&json);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// PUTs JSON, with a bearer token if given.
    pub async fn put(&self, path: &str, token: Option<&str>, json: Value) -> Response {
        let mut request = self.http.put(self.url(path)).json(&json);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// PATCHes JSON as `token`.
    pub async fn patch(&self, path: &str, token: &str, json: Value) -> Response {
        self.http.patch(self.url(path)).bearer_auth(token).json(&json).send().await.unwrap()
    }

    /// DELETEs as `token`.
    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.http.delete(self.url(path)).bearer_auth(token).send().await.unwrap()
    }

    /// GETs, with a bearer token if given.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Invites a user as the admin; returns the created user.
    pub async fn invite(&self, admin: &str, email: &str, role: &str) -> Value {
        let response = self
            .post(
                "/api/v1/users",
                Some(admin),
                json!({"email": email, "name": format!("Name of {email}"), "role": role}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "inviting {email}");
        body(response).await
    }

    /// The id of the user with this email (searching as `admin`).
    pub async fn user_id(&self, admin: &str, email: &str) -> String {
        let page = body(self.get("/api/v1/users?limit=200", Some(admin)).await).await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["email"] == email)
            .and_then(|u| u["id"].as_str())
            .unwrap_or_else(|| panic!("no user {email}"))
            .to_owned()
    }

    /// Waits for the invitation email to `email` and returns its token.
    pub async fn invitation_token(&self, email: &str) -> String {
        let link =
            wait_for_link(&self.data_dir.join("mail"), email, "/invitations/accept?token=").await;
        link.split("token=").nth(1).unwrap().to_owned()
    }

    /// Invites a user, accepts the invitation with `password`; returns their token.
    pub async fn active_user(
        &self,
        admin: &str,
        email: &str,
        role: &str,
        password: &str,
    ) -> String {
        self.invite(admin, email, role).await;
        let token = self.invitation_token(email).await;
        let response = self
            .post("/api/v1/invitations/accept", None, json!({"token": token, "password": password}))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        self.login(email, password).await
    }
}

/// The code an authenticator app with this base32 `secret` shows at `at`.
pub fn totp_code_at(secret: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.replace(' ', "")).to_bytes().unwrap();
    let generator = totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    );
    generator.generate(u64::try_from(at.timestamp()).unwrap())
}

/// [`TestApp::make_second_factors_optional`] for the instance at `base`
/// whose clock reads `now`, and whose first admin is `admin`
/// (email, password).
pub async fn make_second_factors_optional(
    http: &Client,
    base: &str,
    admin: (&str, &str),
    now: chrono::DateTime<chrono::Utc>,
) {
    let credentials = json!({"email": admin.0, "password": admin.1});
    let login = http.post(format!("{base}/api/v1/auth/login")).json(&credentials).send().await;
    let login = body(login.unwrap()).await;
    assert_eq!(login["mfa_enrolment_required"], true, "{login}");
    let token = login["token"].as_str().unwrap().to_owned();
    let call = |method: reqwest::Method, path: &str| {
        http.request(method, format!("{base}/api/v1{path}")).bearer_auth(&token)
    };
    let started = call(reqwest::Method::POST, "/me/mfa/totp").send().await.unwrap();
    let secret = body(started).await["secret"].as_str().expect("a new secret").to_owned();
    let code = json!({"code": totp_code_at(&secret, now)});
    let confirmed = call(reqwest::Method::POST, "/me/mfa/totp/confirm").json(&code).send().await;
    assert_eq!(confirmed.unwrap().status(), StatusCode::OK);
    let optional = json!({"admin_mfa": "optional", "user_mfa": "optional"});
    let saved = call(reqwest::Method::PUT, "/settings/security").json(&optional).send().await;
    assert_eq!(saved.unwrap().status(), StatusCode::OK);
    let removed = call(reqwest::Method::DELETE, "/me/mfa/totp").send().await.unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    let signed_out = call(reqwest::Method::POST, "/auth/logout").send().await.unwrap();
    assert_eq!(signed_out.status(), StatusCode::NO_CONTENT);
}

/// The JSON body of a response.
pub async fn body(response: Response) -> Value {
    response.json().await.unwrap()
}

/// Asserts an error response's status and code; returns the body.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    let body = body(response).await;
    assert_eq!(body["code"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body
}

/// A parsed email from the mail folder.
pub struct Mail {
    /// `To` address.
    pub to: String,
    /// `From` address.
    pub from: String,
    /// `From` name.
    pub from_name: String,
    /// `Message-ID`.
    pub message_id: String,
    /// Subject.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
}

/// Every `.eml` file in `dir`, parsed.
pub fn read_mail(dir: &Path) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .filter_map(|e| {
            let raw = std::fs::read(e.path()).ok()?;
            let message = mail_parser::MessageParser::default().parse(&raw)?;
            let to = message.to()?.first()?.address()?.to_owned();
            let from = message.from()?.first()?;
            Some(Mail {
                to,
                from: from.address().unwrap_or_default().to_owned(),
                from_name: from.name().unwrap_or_default().to_owned(),
                message_id: message.message_id().unwrap_or_default().to_owned(),
                subject: message.subject().unwrap_or_default().to_owned(),
                text: message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
                html: message.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
            })
        })
        .collect()
}

/// Every link containing `marker` in the mails to `email` so far.
pub fn links_to(dir: &Path, email: &str, marker: &str) -> Vec<String> {
    read_mail(dir)
        .iter()
        .filter(|m| m.to.eq_ignore_ascii_case(email))
        .flat_map(|m| m.text.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter(|word| word.contains(marker))
        .collect()
}

/// Waits (up to 10 s) until `count` links containing `marker` reached
/// `email`, and returns them all.
pub async fn wait_for_links(dir: &Path, email: &str, marker: &str, count: usize) -> Vec<String> {
    for _ in 0..200 {
        let links = links_to(dir, email, marker);
        if links.len() >= count {
            return links;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {count} mails to {email} with {marker} arrived in {}", dir.display());
}

/// Waits (up to 10 s) for a mail to `email` containing `marker`, and
/// returns the whole link that contains it.
pub async fn wait_for_link(dir: &Path, email: &str, marker: &str) -> String {
    for _ in 0..200 {
        let mails = read_mail(dir);
        let link = mails
            .iter()
            .filter(|m| m.to.eq_ignore_ascii_case(email))
            .flat_map(|m| m.text.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .rfind(|word| word.contains(marker));
        if let Some(link) = link {
            return link;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no mail to {email} with {marker} arrived in {}", dir.display());
}

/// The new value (or detail) of `field` in an audit event as the API returns it.
pub fn audit_change<'a>(event: &'a Value, field: &str) -> Option<&'a str> {
    event["changes"].as_array()?.iter().find(|c| c["field"] == field)?["after"].as_str()
}

/// The `sign_in.failed` event audited with this reason (found by content:
/// the test clock stands still, so order says nothing); panics listing the
/// reasons and details audited if there is none.
pub async fn sign_in_refusal(app: &TestApp, admin: &str, reason: &str) -> Value {
    let page = body(app.get("/api/v1/audit?action=sign_in.failed", Some(admin)).await).await;
    let items = page["items"].as_array().unwrap();
    items.iter().find(|e| audit_change(e, "reason") == Some(reason)).cloned().unwrap_or_else(|| {
        let reasons: Vec<_> =
            items.iter().map(|e| (audit_change(e, "reason"), audit_change(e, "detail"))).collect();
        panic!("no refusal for {reason}; refusals: {reasons:?}")
    })
}

/// Every value of every column of every table of the database at `url`,
/// as (table, column, text).
pub async fn stored_text(url: &str) -> Vec<(String, String, String)> {
    use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
    let store = secureai_store::SqlStore::connect(url, &Default::default()).await.unwrap();
    let backend = store.backend();
    let db = store.connection();
    let query = |sql: String| Statement::from_string(backend, sql);
    let columns_sql = match backend {
        DbBackend::Sqlite => "SELECT m.name AS t, p.name AS c FROM sqlite_master m \
             JOIN pragma_table_info(m.name) p WHERE m.type = 'table'"
            .to_owned(),
        DbBackend::Postgres => "SELECT table_name::text AS t, column_name::text AS c \
             FROM information_schema.columns WHERE table_schema = 'public'"
            .to_owned(),
        _ => "SELECT CAST(table_name AS CHAR) AS t, CAST(column_name AS CHAR) AS c \
             FROM information_schema.columns WHERE table_schema = DATABASE()"
            .to_owned(),
    };
    let mut out = Vec::new();
    for row in db.query_all_raw(query(columns_sql)).await.unwrap() {
        let table: String = row.try_get("", "t").unwrap();
        let column: String = row.try_get("", "c").unwrap();
        let (q, text) = match backend {
            DbBackend::Sqlite => ('"', "TEXT"),
            DbBackend::Postgres => ('"', "TEXT"),
            _ => ('`', "CHAR"),
        };
        let sql = format!("SELECT CAST({q}{column}{q} AS {text}) AS v FROM {q}{table}{q}");
        for value in db.query_all_raw(query(sql)).await.unwrap() {
            if let Ok(Some(v)) = value.try_get::<Option<String>>("", "v") {
                out.push((table.clone(), column.clone(), v));
            }
        }
    }
    store.close().await.unwrap();
    out
}

/// A small deterministic generator for tests that want varied input a
/// failure can be replayed with (same seed, same sequence).
pub struct Lcg(pub u64);

impl Lcg {
    /// The next number below `bound`.
    pub fn next(&mut self, bound: u64) -> u64 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

impl TestApp {
    /// A cookie-keeping client signed in to the admin panel as the first
    /// admin (not following redirects).
    pub async fn panel_browser(&self) -> Client {
        let panel = Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let signed_in = panel
            .post(self.url("/sign-in"))
            .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        panel
    }
}
