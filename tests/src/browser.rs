//! A real headless Chromium driven over WebDriver (Debian's `chromium` and `chromedriver`), for
//! the UI tests: a small client of the W3C protocol over the crate's plain HTTP helper: open a
//! page, read an element's text, count, click and type into elements, read the console log, take a
//! screenshot.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{free_tcp_port, http_send};

/// The W3C key of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session; both end on drop.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session.
    ///
    /// # Panics
    /// When chromedriver or Chromium cannot start (install `chromium chromium-driver`).
    pub fn start() -> Browser {
        let port = free_tcp_port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts (Debian package chromium-driver)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let profile = tempfile::tempdir().expect("profile dir");
        let downloads = profile.path().join("downloads");
        std::fs::create_dir_all(&downloads).expect("downloads dir");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display())],
                "prefs": {"download.default_directory": downloads.display().to_string(),
                    "download.prompt_for_download": false}
            },
            "goog:loggingPrefs": {"browser": "ALL"}
        }}});
        // Built before anything can fail, so that dropping it stops chromedriver.
        let mut browser = Browser {
            driver,
            addr,
            session: String::new(),
            profile,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while crate::http_get(addr, "/status").is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer in 20 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let answer = browser.call("POST", "/session", Some(caps));
        browser.session = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"))
            .to_owned();
        browser
    }

    /// One WebDriver call; its `value`, or the WebDriver error (`stale element reference`, …)
    /// with the whole answer.
    fn try_call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, (String, Value)> {
        let text = body.map(|b| b.to_string());
        let (status, answer) =
            http_send(self.addr, method, path, text.as_deref()).expect("chromedriver answers");
        let answer: Value = serde_json::from_str(&answer).unwrap_or(Value::Null);
        if status == 200 {
            Ok(answer["value"].clone())
        } else {
            let error = answer["value"]["error"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            Err((error, answer))
        }
    }

    /// One WebDriver call that must succeed; its `value`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.try_call(method, path, body)
            .unwrap_or_else(|(_, answer)| panic!("{method} {path}: {answer}"))
    }

    /// A call on the first element matching `css`, found again if the page re-rendered it in
    /// between (a stale element); `None` when nothing matches.
    fn on_element(
        &self,
        css: &str,
        method: &str,
        action: &str,
        body: Option<Value>,
    ) -> Option<Value> {
        for _ in 0..5 {
            let id = self.find_all(css).into_iter().next()?;
            let path = format!("/session/{}/element/{id}{action}", self.session);
            match self.try_call(method, &path, body.clone()) {
                Ok(value) => return Some(value),
                Err((error, _)) if error == "stale element reference" => continue,
                Err((_, answer)) => panic!("{method} {path}: {answer}"),
            }
        }
        None
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    /// Opens `url`.
    pub fn open(&self, url: &str) {
        self.session_call("POST", "/url", Some(json!({ "url": url })));
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        self.session_call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e[ELEMENT].as_str().map(str::to_owned))
        .collect()
    }

    /// How many elements match `css`.
    pub fn count(&self, css: &str) -> usize {
        self.find_all(css).len()
    }

    /// The text of the first element matching `css`, if there is one.
    pub fn text(&self, css: &str) -> Option<String> {
        self.on_element(css, "GET", "/text", None)?
            .as_str()
            .map(str::to_owned)
    }

    /// Clicks the first element matching `css`.
    ///
    /// # Panics
    /// When nothing matches.
    pub fn click(&self, css: &str) {
        self.on_element(css, "POST", "/click", Some(json!({})))
            .unwrap_or_else(|| panic!("nothing matches {css} to click"));
    }

    /// Types `text` into the first element matching `css`, then Enter.
    ///
    /// # Panics
    /// When nothing matches.
    pub fn type_into(&self, css: &str, text: &str) {
        self.on_element(
            css,
            "POST",
            "/value",
            Some(json!({ "text": format!("{text}\u{E007}") })),
        )
        .unwrap_or_else(|| panic!("nothing matches {css} to type into"));
    }

    /// Sends keystrokes to the first element matching `css` (WebDriver key codes such as
    /// `\u{E011}` for Home), without Enter.
    ///
    /// # Panics
    /// When nothing matches.
    pub fn keys(&self, css: &str, keys: &str) {
        self.on_element(css, "POST", "/value", Some(json!({ "text": keys })))
            .unwrap_or_else(|| panic!("nothing matches {css} to send keys to"));
    }

    /// An attribute of the first element matching `css`, if both exist.
    pub fn attribute(&self, css: &str, name: &str) -> Option<String> {
        self.on_element(css, "GET", &format!("/attribute/{name}"), None)?
            .as_str()
            .map(str::to_owned)
    }

    /// Clicks with the mouse at `(x, y)` CSS pixels from the top left of the first element
    /// matching `css` (a canvas, say).
    ///
    /// # Panics
    /// When nothing matches.
    pub fn click_at(&self, css: &str, x: f64, y: f64) {
        let id = self
            .find_all(css)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("nothing matches {css} to click in"));
        let rect = self.session_call("GET", &format!("/element/{id}/rect"), None);
        let (w, h) = (
            rect["width"].as_f64().unwrap_or_default(),
            rect["height"].as_f64().unwrap_or_default(),
        );
        // Pointer offsets are from the element's centre, in whole pixels.
        let (dx, dy) = ((x - w / 2.0).round() as i64, (y - h / 2.0).round() as i64);
        let origin = json!({ ELEMENT: id });
        self.session_call(
            "POST",
            "/actions",
            Some(json!({"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [
                {"type": "pointerMove", "duration": 0, "origin": origin, "x": dx, "y": dy},
                {"type": "pointerDown", "button": 0},
                {"type": "pause", "duration": 50},
                {"type": "pointerUp", "button": 0}
            ]}]})),
        );
        self.session_call("DELETE", "/actions", None);
    }

    /// The file `name` the browser downloaded, once it is complete (waits up to 30 s).
    ///
    /// # Panics
    /// When it does not arrive.
    pub fn downloaded(&self, name: &str) -> Vec<u8> {
        let path = self.profile.path().join("downloads").join(name);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(bytes) = std::fs::read(&path) {
                if !bytes.is_empty() {
                    return bytes;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{name} was not downloaded in 30 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Signs in at `base` (`http://host:port`) through the app's sign-in form as `user`, and,
    /// for a one-time password, through the new-password form with `new_password`.
    ///
    /// # Panics
    /// When a form does not appear or the app does not show the user signed in.
    pub fn sign_in(&self, base: &str, user: &str, password: &str, new_password: Option<&str>) {
        self.open(&format!("{base}/"));
        self.wait_until(|b| b.count("#login-user") == 1, "the sign-in form");
        self.keys("#login-user", user);
        self.keys("#login-password", password);
        self.click("#login-submit");
        if let Some(new) = new_password {
            self.wait_until(|b| b.count("#pw-new") == 1, "the new-password form");
            self.keys("#pw-current", password);
            self.keys("#pw-new", new);
            self.keys("#pw-again", new);
            self.click("#pw-submit");
        }
        self.wait_until(|b| b.count("#signed-in") == 1, "the app, signed in");
    }

    /// Waits up to 30 s for `ok`.
    ///
    /// # Panics
    /// When it stays false, naming `what` and showing the page's text.
    pub fn wait_until(&self, mut ok: impl FnMut(&Browser) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if ok(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "the page did not show {what} in 30 s; it shows: {:?}; console: {:?}",
            self.text("body"),
            self.console()
        );
    }

    /// The browser console's entries so far: (level, message).
    pub fn console(&self) -> Vec<(String, String)> {
        self.session_call("POST", "/se/log", Some(json!({"type": "browser"})))
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["level"].as_str().unwrap_or_default().to_owned(),
                    e["message"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// A PNG of the window.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let data = self.session_call("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(data.as_str().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = http_send(
            self.addr,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
