//! A headless Chromium driven over the DevTools protocol: just the handful of
//! commands the browser scenarios need (a context per user, a tab, navigate,
//! evaluate a script, a screenshot), as JSON over the WebSocket the browser
//! opens, with the `tokio-tungstenite` these tests already use.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// How long a scenario waits for something to appear on a page: generous,
/// for a shared machine; it is a deadline, not a measurement.
const PATIENCE: Duration = Duration::from_secs(30);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// The browser binary: `TICKETS_CHROMIUM`, else Debian's `/usr/bin/chromium`,
/// else `chromium` on the PATH. Missing, the scenarios fail saying what to
/// install: they never skip silently.
fn chromium() -> PathBuf {
    if let Ok(path) = std::env::var("TICKETS_CHROMIUM") {
        return PathBuf::from(path);
    }
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    let found = Command::new("sh")
        .args(["-c", "command -v chromium || command -v chromium-browser"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match found {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "the browser tests need Chromium: `apt-get install -y chromium` (Debian), or set \
             TICKETS_CHROMIUM to a Chromium or Chrome binary (.ci/run installs it)"
        ),
    }
}

/// One headless Chromium with a fresh profile, killed when dropped.
pub struct Browser {
    child: Child,
    sender: mpsc::UnboundedSender<Message>,
    pending: Pending,
    next: Arc<AtomicU64>,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn launch() -> Browser {
        let profile = tempfile::tempdir().expect("a profile folder");
        let mut child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows",
                "--window-size=1400,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let stderr = child.stderr.take().expect("chromium's stderr");
        let (found, address) = std::sync::mpsc::channel();
        // Chromium says where its DevTools listen on standard error; the rest
        // of what it prints is drained so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(url) = line.strip_prefix("DevTools listening on ") {
                        let _ = found.send(url.trim().to_string());
                        sent = true;
                    }
                }
            }
        });
        let url = address
            .recv_timeout(PATIENCE)
            .expect("chromium printed its DevTools address");
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("connect to chromium's DevTools");
        let (mut write, mut read) = socket.split();
        let (sender, mut outbox) = mpsc::unbounded_channel::<Message>();
        tokio::spawn(async move {
            while let Some(message) = outbox.recv().await {
                if write.send(message).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let answers = pending.clone();
        tokio::spawn(async move {
            while let Some(Ok(message)) = read.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(value) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                // Events (no id) are not needed: the scenarios poll the page.
                if let Some(id) = value["id"].as_u64() {
                    if let Some(waiter) = answers.lock().unwrap().remove(&id) {
                        let _ = waiter.send(value);
                    }
                }
            }
        });
        Browser {
            child,
            sender,
            pending,
            next: Arc::new(AtomicU64::new(1)),
            _profile: profile,
        }
    }

    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.sender
            .send(Message::text(message.to_string()))
            .expect("the DevTools socket is open");
        let answer = tokio::time::timeout(PATIENCE, rx)
            .await
            .unwrap_or_else(|_| panic!("chromium did not answer {method}"))
            .expect("an answer");
        assert!(
            answer.get("error").is_none(),
            "{method} failed: {}",
            answer["error"]
        );
        answer["result"].clone()
    }

    /// A fresh context (its own storage, like a separate browser profile),
    /// for one user.
    pub async fn context(&self) -> String {
        self.call(None, "Target.createBrowserContext", json!({}))
            .await["browserContextId"]
            .as_str()
            .expect("a context id")
            .to_string()
    }

    /// A new tab in `context`, at `url`.
    pub async fn tab<'a>(&'a self, context: &str, url: &str) -> Tab<'a> {
        let target = self
            .call(
                None,
                "Target.createTarget",
                json!({ "url": "about:blank", "browserContextId": context }),
            )
            .await["targetId"]
            .as_str()
            .expect("a target id")
            .to_string();
        let session = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target, "flatten": true }),
            )
            .await["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        let tab = Tab {
            browser: self,
            session,
        };
        tab.goto(url).await;
        tab
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One tab.
pub struct Tab<'a> {
    browser: &'a Browser,
    session: String,
}

impl Tab<'_> {
    pub async fn goto(&self, url: &str) {
        self.browser
            .call(Some(&self.session), "Page.navigate", json!({ "url": url }))
            .await;
    }

    /// The value of a script (awaited when it is a promise); a script that
    /// throws fails the test with its message.
    pub async fn eval(&self, script: &str) -> Value {
        let result = self
            .browser
            .call(
                Some(&self.session),
                "Runtime.evaluate",
                json!({ "expression": script, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        if let Some(details) = result.get("exceptionDetails") {
            panic!("the script `{script}` threw: {details}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until `condition` (a script) is truthy; on the deadline, saves
    /// a screenshot and fails saying what was awaited.
    pub async fn wait_for(&self, condition: &str, what: &str) {
        let deadline = Instant::now() + PATIENCE;
        let script =
            format!("(() => {{ try {{ return !!({condition}); }} catch {{ return false; }} }})()");
        loop {
            if self.eval(&script).await == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let shot = self.screenshot("timed-out").await;
                let text = self.eval("document.body.innerText").await;
                panic!(
                    "waited in vain for {what} ({condition}); screenshot {}; the page says:\n{}",
                    shot.display(),
                    text.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The text of the first element matching `selector` ("" when none).
    pub async fn text(&self, selector: &str) -> String {
        let script = format!(
            "document.querySelector({})?.innerText ?? ''",
            json!(selector)
        );
        self.eval(&script)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Clicks the first element matching `selector`.
    pub async fn click(&self, selector: &str) {
        let script = format!(
            "(() => {{ const e = document.querySelector({0}); if (!e) throw new Error('no ' + {0}); e.click(); }})()",
            json!(selector)
        );
        self.eval(&script).await;
    }

    /// Presses and releases `key` (a DOM key name with its virtual key
    /// code, e.g. `("Escape", 27)`) as the keyboard would: real key events,
    /// to whatever element has the focus.
    pub async fn press(&self, key: &str, code: u32) {
        for kind in ["keyDown", "keyUp"] {
            self.browser
                .call(
                    Some(&self.session),
                    "Input.dispatchKeyEvent",
                    json!({ "type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code }),
                )
                .await;
        }
    }

    /// Types `value` into the field `selector` as a user would: focus, the
    /// value, an input event.
    pub async fn fill(&self, selector: &str, value: &str) {
        let script = format!(
            "(() => {{ const e = document.querySelector({0}); if (!e) throw new Error('no ' + {0}); \
             e.focus(); e.value = {1}; e.dispatchEvent(new Event('input', {{ bubbles: true }})); \
             e.dispatchEvent(new Event('change', {{ bubbles: true }})); }})()",
            json!(selector),
            json!(value)
        );
        self.eval(&script).await;
    }

    /// Saves a PNG of the tab under `target/browser-screenshots/`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let shot = self
            .browser
            .call(
                Some(&self.session),
                "Page.captureScreenshot",
                json!({ "format": "png" }),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .expect("base64 PNG");
        let folder = screenshots();
        std::fs::create_dir_all(&folder).expect("the screenshots folder");
        let path = folder.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write a screenshot");
        path
    }
}

/// `target/browser-screenshots/` of this build (`CARGO_TARGET_DIR` when set).
fn screenshots() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("workspace root")
                .join("target")
        });
    target.join("browser-screenshots")
}
