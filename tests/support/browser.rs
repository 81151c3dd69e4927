//! Real Chromium for the panel tests: Debian's `chromium` driven through
//! `chromedriver` (WebDriver) with `thirtyfour`. One chromedriver per test
//! binary; browser tests take turns (two cores, one browser at a time).
//! A missing browser fails the test with the command to install it, never
//! skips it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use thirtyfour::prelude::*;
use tokio::sync::{Mutex, MutexGuard};

use crate::smtp::free_port;

/// Where Debian puts them.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A browser test's turn: one at a time (two cores), each with its own
/// chromedriver, stopped (with the browsers it started) when the turn ends,
/// even if the test failed.
pub struct Turn {
    port: u16,
    child: Child,
    _lock: MutexGuard<'static, ()>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        // SIGTERM, so chromedriver closes the browsers it started; if it
        // has not gone within two seconds (a failed test left a session
        // open), SIGKILL.
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        for _ in 0..40 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for the turn and starts chromedriver. Keep it to the end of the
/// test; windows are opened with it.
pub async fn take_turn() -> Turn {
    static TURN: OnceLock<Mutex<()>> = OnceLock::new();
    let lock = TURN.get_or_init(|| Mutex::new(())).lock().await;
    assert!(
        Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
        "Chromium is not installed: run `apt-get install chromium chromium-driver` \
         (./scripts/test.sh does)"
    );
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Turn { port, child, _lock: lock }
}

/// A headless Chromium window (its own profile: cookies are its own).
pub struct Browser {
    /// The WebDriver session.
    pub driver: WebDriver,
    /// chromedriver's address, for the commands `thirtyfour` does not have.
    driver_url: String,
}

impl Browser {
    /// Opens a browser window of `width` × `height` pixels.
    pub async fn open(turn: &Turn, width: u32, height: u32) -> Self {
        let driver_port = turn.port;
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(CHROMIUM).unwrap();
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            &format!("--window-size={width},{height}"),
        ] {
            caps.add_arg(arg).unwrap();
        }
        let driver_url = format!("http://127.0.0.1:{driver_port}");
        let driver = WebDriver::new(&driver_url, caps)
            .await
            .expect("a Chromium session through chromedriver");
        Self { driver, driver_url }
    }

    /// A WebDriver extension command on this session
    /// (`/session/{id}/{path}`), for what `thirtyfour` has no method for.
    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let url = format!("{}/session/{}/{path}", self.driver_url, self.driver.session_id());
        let request = reqwest::Client::new().request(method, url);
        let request = if body.is_null() { request } else { request.json(&body) };
        let answer = request.send().await.expect("chromedriver answers");
        let status = answer.status();
        let json: serde_json::Value = answer.json().await.expect("chromedriver's JSON");
        assert!(status.is_success(), "chromedriver refused `{path}`: {json}");
        json["value"].clone()
    }

    /// Adds a virtual authenticator (WebDriver's WebAuthn extension): a
    /// platform authenticator with user verification, as a laptop's
    /// fingerprint reader that always says yes. Returns its id.
    pub async fn add_virtual_authenticator(&self) -> String {
        let options = serde_json::json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        });
        let id = self.command(reqwest::Method::POST, "webauthn/authenticator", options).await;
        id.as_str().expect("an authenticator id").to_owned()
    }

    /// The credentials the virtual authenticator `id` holds.
    pub async fn virtual_credentials(&self, id: &str) -> Vec<serde_json::Value> {
        let path = format!("webauthn/authenticator/{id}/credentials");
        let list = self.command(reqwest::Method::GET, &path, serde_json::Value::Null).await;
        list.as_array().cloned().unwrap_or_default()
    }

    /// Gives the virtual authenticator `id` a credential another one holds
    /// (as [`Self::virtual_credentials`] lists it, private key included):
    /// authenticators belong to one tab, so a second tab needs its own.
    pub async fn add_virtual_credential(&self, id: &str, credential: serde_json::Value) {
        let path = format!("webauthn/authenticator/{id}/credential");
        self.command(reqwest::Method::POST, &path, credential).await;
    }

    /// Opens a laptop-sized window.
    pub async fn laptop(turn: &Turn) -> Self {
        Self::open(turn, 1280, 860).await
    }

    /// Goes to `url`.
    pub async fn go(&self, url: &str) {
        self.driver.goto(url).await.unwrap();
    }

    /// Types into the input labelled by `id`, replacing what is there.
    pub async fn fill(&self, id: &str, text: &str) {
        let input = self.driver.find(By::Id(id)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    /// Types into the input named `name` (pages without ids).
    pub async fn fill_named(&self, name: &str, text: &str) {
        let input = self.driver.find(By::Name(name)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(text).await.unwrap();
    }

    /// Chooses an option of a select by its value.
    pub async fn choose(&self, id: &str, value: &str) {
        let select = self.driver.find(By::Id(id)).await.unwrap();
        select
            .find(By::Css(format!("option[value='{value}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Chooses a file for the file input `id`.
    pub async fn upload(&self, id: &str, file: &Path) {
        let input = self.driver.find(By::Id(id)).await.unwrap();
        input.send_keys(file.to_str().unwrap()).await.unwrap();
    }

    /// Toggles a checkbox.
    pub async fn click_checkbox(&self, id: &str) {
        self.driver.find(By::Id(id)).await.unwrap().click().await.unwrap();
    }

    /// Clicks the button or link showing `text`, and waits for the page it
    /// leads to.
    pub async fn click(&self, text: &str) {
        let text_wanted = text;
        let xpath = format!(
            "//button[normalize-space()='{text}'] | //a[normalize-space()='{text}'] | //input[@type='submit' and @value='{text}']"
        );
        let old_page = self.driver.find(By::Tag("html")).await.unwrap();
        let Ok(target) = self.driver.find(By::XPath(xpath)).await else {
            let url = self.url().await;
            let text = self.text().await;
            panic!("nothing to click named `{name}` on {url}:\n{text}", name = text_wanted);
        };
        target.click().await.unwrap();
        // The old document's root goes stale once the next page replaced it.
        for _ in 0..200 {
            if old_page.tag_name().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.settle().await;
    }

    /// Waits until the current document has loaded.
    async fn settle(&self) {
        for _ in 0..200 {
            let state = self.driver.execute("return document.readyState", Vec::new()).await;
            if state.ok().and_then(|r| r.json().as_str().map(|s| s == "complete")).unwrap_or(false)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Where the link showing `text` leads (its `href`, as written).
    pub async fn href_of(&self, text: &str) -> String {
        let xpath = format!("//a[normalize-space()='{text}']");
        let link = self.driver.find(By::XPath(xpath)).await.unwrap();
        link.attr("href").await.unwrap().unwrap_or_default()
    }

    /// The visible text of the page.
    pub async fn text(&self) -> String {
        self.settle().await;
        self.driver.find(By::Tag("body")).await.unwrap().text().await.unwrap()
    }

    /// The visible text of the page's table body.
    pub async fn table_text(&self) -> String {
        self.settle().await;
        self.driver.find(By::Tag("tbody")).await.unwrap().text().await.unwrap()
    }

    /// The visible text of the element with this id.
    pub async fn text_of(&self, id: &str) -> String {
        self.settle().await;
        self.driver.find(By::Id(id)).await.unwrap().text().await.unwrap()
    }

    /// How many elements match a CSS selector.
    pub async fn count(&self, css: &str) -> usize {
        self.settle().await;
        self.driver.find_all(By::Css(css)).await.unwrap().len()
    }

    /// The current address.
    pub async fn url(&self) -> String {
        self.driver.current_url().await.unwrap().to_string()
    }

    /// Saves a screenshot as `docs/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let dir = screenshots_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.driver.screenshot_as_png().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// Closes the window.
    pub async fn close(self) {
        self.driver.quit().await.unwrap();
    }
}

/// `docs/screenshots` of the workspace.
pub fn screenshots_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots")
}
