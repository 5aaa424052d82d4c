//! A small Chrome DevTools Protocol client for the console's browser tests
//! (tests/console.rs): it starts Debian's headless Chromium with a fresh profile, opens one
//! page and drives it the way a person would (buttons and links by their visible text,
//! inputs by their `<label>`), over one blocking WebSocket (tungstenite, which the crate
//! already has through tokio-tungstenite). Every wait is bounded; JavaScript exceptions,
//! `console.error` calls, error log entries and Content-Security-Policy violations are
//! collected so a test can assert there were none. Chromium (its whole process group) is
//! killed and its profile removed on drop.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, ErrorKind};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

/// Debian's Chromium (`./dev test` installs the `chromium` package).
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long one DevTools command may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(30);

/// How long `click`, `fill` and `select` wait for their element.
const FIND_LIMIT: Duration = Duration::from_secs(10);

/// The binding the page calls on a `securitypolicyviolation` event.
const CSP_BINDING: &str = "__dialtoneCspViolation";

/// Fails the test with a clear message when Chromium is missing (never a silent skip).
pub fn chromium() -> &'static str {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run `./dev test`, which installs Debian's chromium package \
         (or `apt-get install chromium`)"
    );
    CHROMIUM
}

/// Something the page logged that a clean console page never does.
#[derive(Debug, Clone)]
pub struct Problem {
    /// "exception", "console.error", "csp" or "log".
    pub kind: &'static str,
    /// The page's URL when it was reported.
    pub url: String,
    pub text: String,
}

/// The Chromium process group and its profile, killed and removed on drop.
struct Proc {
    child: Child,
    dir: PathBuf,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn stderr_tail(&self) -> String {
        self.stderr.lock().unwrap_or_else(|p| p.into_inner()).join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Chromium was started as the leader of its own process group: end the group (the
        // browser, its zygotes and renderers), by its id.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-9", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        for _ in 0..20 {
            if std::fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One headless Chromium with one page.
pub struct Browser {
    ws: WebSocket<TcpStream>,
    next_id: u64,
    problems: Vec<Problem>,
    /// Every console message, log entry and exception, for diagnostics.
    journal: Vec<String>,
    url: String,
    // Last: dropped after the WebSocket.
    proc: Proc,
}

fn connect(url: &str) -> WebSocket<TcpStream> {
    let rest = url.strip_prefix("ws://").unwrap_or_else(|| panic!("not a ws:// URL: {url}"));
    let host = rest.split('/').next().unwrap();
    let stream = TcpStream::connect(host).unwrap_or_else(|e| panic!("connect to DevTools at {host}: {e}"));
    stream.set_nodelay(true).ok();
    let (ws, _) = tungstenite::client(url, stream).unwrap_or_else(|e| panic!("DevTools WebSocket {url}: {e}"));
    ws.get_ref().set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    ws
}

/// A JavaScript string literal of `s`.
fn js(s: &str) -> String {
    Value::from(s).to_string()
}

/// The script (run before each document's own) that reports CSP violations to the test.
fn csp_script() -> String {
    format!(
        "document.addEventListener('securitypolicyviolation', (e) => {{ try {{ {CSP_BINDING}(JSON.stringify({{ \
         directive: e.violatedDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber, \
         sample: e.sample }})); }} catch (_) {{}} }});"
    )
}

/// Shared helpers defined in the page for `click`, `fill` and `select`: visible buttons
/// and links by their text, controls by their label's text.
const HELPERS: &str = r#"(() => {
  const norm = (s) => (s || '').replace(/\s+/g, ' ').trim();
  const visible = (e) => (e.checkVisibility ? e.checkVisibility({ visibilityProperty: true }) : e.getClientRects().length > 0);
  const modal = () => { try { return document.querySelector('dialog:modal'); } catch (_) { return null; } };
  const usable = (e) => { const m = modal(); return visible(e) && !e.closest('[inert]') && (!m || m.contains(e)); };
  const name = (e) => norm(e.tagName === 'INPUT' ? e.value : e.innerText);
  const clickables = (scope) => [...(scope || document).querySelectorAll(
    'button, a[href], [role=button], [role=link], input[type=submit], input[type=button], summary')];
  const labelText = (l) => {
    const c = l.cloneNode(true);
    c.querySelectorAll('input, select, textarea, output').forEach((x) => x.remove());
    return norm(c.textContent);
  };
  const describe = (scope) => clickables(scope).filter(usable)
    .map((e) => `${e.tagName.toLowerCase()} "${name(e)}"${e.disabled ? ' (disabled)' : ''}`).join(', ') || '(none)';
  return {
    find(text, scopeCss) {
      const scopes = scopeCss ? [...document.querySelectorAll(scopeCss)] : [document];
      for (const s of scopes) {
        const m = clickables(s).filter((e) => usable(e) && name(e) === text && !e.disabled);
        if (m.length) return m[0];
      }
      return null;
    },
    describe(scopeCss) {
      const s = scopeCss ? document.querySelector(scopeCss) : document;
      return s ? describe(s) : `(nothing matches ${scopeCss})`;
    },
    control(text) {
      for (const l of document.querySelectorAll('label')) {
        if (labelText(l) === text && l.control && usable(l.control)) return l.control;
      }
      return null;
    },
    labels() {
      return [...document.querySelectorAll('label')].filter((l) => visible(l)).map((l) => `"${labelText(l)}"`).join(', ') || '(none)';
    },
  };
})()"#;

impl Browser {
    /// Starts Chromium headless with a fresh profile and opens an empty page.
    pub fn launch() -> Browser {
        let bin = chromium();
        let dir = super::temp_dir("chromium");
        let mut cmd = Command::new(bin);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--mute-audio",
            // Containers' /dev/shm is often tiny: the profile's folder instead.
            "--disable-dev-shm-usage",
            "--autoplay-policy=no-user-gesture-required",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", dir.display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("start {bin}: {e}"));
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let proc = Proc { child, dir, stderr: lines.clone() };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.trim().strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
                let mut l = lines.lock().unwrap_or_else(|p| p.into_inner());
                if l.len() < 400 {
                    l.push(line);
                }
            }
        });
        let Ok(browser_url) = rx.recv_timeout(Duration::from_secs(30)) else {
            panic!(
                "Chromium printed no `DevTools listening on ws://…` within 30 s; its stderr:\n{}",
                proc.stderr_tail()
            );
        };
        // The browser endpoint makes a page; the page's own endpoint drives it.
        let mut b = Browser {
            ws: connect(&browser_url),
            next_id: 0,
            problems: Vec::new(),
            journal: Vec::new(),
            url: "about:blank".into(),
            proc,
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().expect("a target id").to_string();
        let host = browser_url.trim_start_matches("ws://").split('/').next().unwrap().to_string();
        let _ = b.ws.close(None);
        b.ws = connect(&format!("ws://{host}/devtools/page/{target}"));
        b.call("Runtime.enable", json!({}));
        b.call("Log.enable", json!({}));
        b.call("Runtime.addBinding", json!({"name": CSP_BINDING}));
        b.call("Page.addScriptToEvaluateOnNewDocument", json!({"source": csp_script()}));
        b.set_viewport(1280, 800);
        b
    }

    /// Sends one DevTools command and waits (bounded) for its answer, handling the events
    /// that arrive meanwhile.
    pub fn try_call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(msg)).map_err(|e| format!("send {method}: {e}"))?;
        let deadline = Instant::now() + COMMAND_LIMIT;
        loop {
            if Instant::now() > deadline {
                return Err(format!("{method}: no answer within {COMMAND_LIMIT:?}"));
            }
            let Some(v) = self.read_one().map_err(|e| format!("{method}: {e}"))? else { continue };
            if v["id"].as_u64() == Some(id) {
                if let Some(err) = v.get("error") {
                    return Err(format!("{method}: {err}"));
                }
                return Ok(v["result"].clone());
            }
        }
    }

    /// [`Browser::try_call`], panicking on an error.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        match self.try_call(method, params) {
            Ok(v) => v,
            Err(e) => panic!("DevTools {e}\nChromium's stderr:\n{}", self.proc.stderr_tail()),
        }
    }

    /// One message (None after a read timeout), events handled.
    fn read_one(&mut self) -> Result<Option<Value>, String> {
        match self.ws.read() {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).map_err(|e| format!("bad JSON from DevTools: {e}"))?;
                if v.get("method").is_some() && v.get("id").is_none() {
                    self.event(&v);
                }
                Ok(Some(v))
            }
            Ok(_) => Ok(None),
            Err(tungstenite::Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Ok(None)
            }
            Err(e) => Err(format!("DevTools connection: {e}")),
        }
    }

    /// Reads the events that are waiting (without a command).
    pub fn pump(&mut self) {
        // A read that times out ends it; at most a few hundred events at a time.
        for _ in 0..500 {
            match self.read_one() {
                Ok(Some(_)) => {}
                _ => break,
            }
        }
    }

    fn event(&mut self, v: &Value) {
        let p = &v["params"];
        let url = self.url.clone();
        let arg_text = |args: &Value| -> String {
            args.as_array()
                .map(|a| {
                    a.iter()
                        .map(|x| match x.get("value") {
                            Some(Value::String(s)) => s.clone(),
                            Some(v) => v.to_string(),
                            None => x["description"].as_str().unwrap_or("?").to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default()
        };
        match v["method"].as_str().unwrap_or("") {
            "Runtime.consoleAPICalled" => {
                let kind = p["type"].as_str().unwrap_or("").to_string();
                let text = arg_text(&p["args"]);
                self.journal.push(format!("console.{kind}: {text}"));
                if kind == "error" || kind == "assert" {
                    self.problems.push(Problem { kind: "console.error", url, text });
                }
            }
            "Runtime.exceptionThrown" => {
                let d = &p["exceptionDetails"];
                let text = format!(
                    "{} {} ({}:{}:{})",
                    d["text"].as_str().unwrap_or(""),
                    d["exception"]["description"].as_str().unwrap_or(""),
                    d["url"].as_str().unwrap_or(""),
                    d["lineNumber"],
                    d["columnNumber"]
                );
                self.journal.push(format!("exception: {text}"));
                self.problems.push(Problem { kind: "exception", url, text });
            }
            "Log.entryAdded" => {
                let e = &p["entry"];
                let (source, level) = (e["source"].as_str().unwrap_or(""), e["level"].as_str().unwrap_or(""));
                let text = format!("{} {}", e["text"].as_str().unwrap_or(""), e["url"].as_str().unwrap_or(""));
                self.journal.push(format!("log {source}/{level}: {text}"));
                if level == "error" {
                    if text.contains("Content Security Policy") || text.contains("Content-Security-Policy") {
                        self.problems.push(Problem { kind: "csp", url, text });
                    } else if source != "network" {
                        // Network errors (a 401 on a wrong password, say) are the API's
                        // answers, not the page's faults.
                        self.problems.push(Problem { kind: "log", url, text });
                    }
                }
            }
            "Runtime.bindingCalled" if p["name"] == CSP_BINDING => {
                let text = p["payload"].as_str().unwrap_or("").to_string();
                self.journal.push(format!("csp violation: {text}"));
                self.problems.push(Problem { kind: "csp", url, text });
            }
            _ => {}
        }
    }

    /// Everything logged so far that a clean page never logs.
    pub fn problems(&mut self) -> Vec<Problem> {
        self.pump();
        self.problems.clone()
    }

    /// Every console message, log entry, exception and CSP violation so far.
    pub fn journal(&self) -> &[String] {
        &self.journal
    }

    /// Fails the test if any exception, console error, error log entry or CSP violation
    /// was reported.
    pub fn assert_no_problems(&mut self, context: &str) {
        let p = self.problems();
        assert!(
            p.is_empty(),
            "{context}: the page reported {} problem(s):\n{}\n(journal:\n{})",
            p.len(),
            p.iter().map(|p| format!("  [{}] {} — {}", p.kind, p.url, p.text)).collect::<Vec<_>>().join("\n"),
            self.journal.join("\n")
        );
    }

    /// Evaluates `expr` in the page (promises awaited): its value, or the exception's text.
    pub fn try_eval(&mut self, expr: &str) -> Result<Value, String> {
        let r = self.try_call(
            "Runtime.evaluate",
            json!({"expression": expr, "awaitPromise": true, "returnByValue": true, "userGesture": true}),
        )?;
        if let Some(d) = r.get("exceptionDetails") {
            let text = d["exception"]["description"].as_str().or(d["text"].as_str()).unwrap_or("exception");
            return Err(format!("{expr}: {text}"));
        }
        Ok(r["result"].get("value").cloned().unwrap_or(Value::Null))
    }

    /// [`Browser::try_eval`], panicking on an exception.
    pub fn eval(&mut self, expr: &str) -> Value {
        self.try_eval(expr).unwrap_or_else(|e| panic!("eval in {}: {e}", self.url))
    }

    /// Polls `predicate` (a JavaScript expression) every 100 ms until it is truthy: whether
    /// it became so within `limit`.
    pub fn poll(&mut self, predicate: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.try_eval(predicate).unwrap_or(Value::Null);
            if !matches!(v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("") {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            self.pump_for(Duration::from_millis(100));
        }
    }

    /// [`Browser::poll`], failing the test (with the page's text) when it times out.
    pub fn wait_until(&mut self, predicate: &str, limit: Duration) {
        if !self.poll(predicate, limit) {
            let text = self.text();
            panic!("waited {limit:?} for `{predicate}` on {}; the page says:\n{text}", self.url);
        }
    }

    fn pump_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if let Ok(None) | Err(_) = self.read_one() {
                std::thread::sleep(Duration::from_millis(10).min(end.saturating_duration_since(Instant::now())));
            }
        }
    }

    /// Navigates to `url` and waits (bounded) for its document to load.
    pub fn goto(&mut self, url: &str) {
        let _ = self.try_eval("window.__dialtoneOld = true");
        let r = self.call("Page.navigate", json!({"url": url}));
        if let Some(e) = r.get("errorText").and_then(Value::as_str) {
            panic!("navigate to {url}: {e}");
        }
        self.url = url.to_string();
        // A new document (Page.navigate names its loader) replaces the marked one; a
        // same-document navigation (a hash route) keeps it, and the page may route on.
        let loaded = if r.get("loaderId").is_some_and(|l| l.as_str().is_some_and(|l| !l.is_empty())) {
            "!window.__dialtoneOld && document.readyState === 'complete'"
        } else {
            "document.readyState === 'complete'"
        };
        self.wait_until(loaded, Duration::from_secs(20));
    }

    /// Reloads the page and waits (bounded) for the new document to load.
    pub fn reload(&mut self) {
        self.eval("window.__dialtoneOld = true");
        self.call("Page.reload", json!({"ignoreCache": true}));
        self.wait_until("!window.__dialtoneOld && document.readyState === 'complete'", Duration::from_secs(20));
    }

    /// The page's visible text (`document.body.innerText`).
    pub fn text(&mut self) -> String {
        match self.try_eval("document.body ? document.body.innerText : ''") {
            Ok(Value::String(s)) => s,
            other => format!("(no text: {other:?})"),
        }
    }

    /// Waits (bounded) until the page's visible text contains `text`.
    pub fn wait_text(&mut self, text: &str, limit: Duration) {
        let p = format!("document.body && document.body.innerText.includes({})", js(text));
        if !self.poll(&p, limit) {
            let now = self.text();
            panic!("waited {limit:?} for the text {text:?} on {}; the page says:\n{now}", self.url);
        }
    }

    /// Waits (bounded) until the page's `<h1>` reads exactly `text`.
    pub fn wait_h1(&mut self, text: &str, limit: Duration) {
        let p = format!(
            "[...document.querySelectorAll('h1')].some((h) => h.innerText.replace(/\\s+/g, ' ').trim() === {})",
            js(text)
        );
        if !self.poll(&p, limit) {
            let h1 = self.eval("[...document.querySelectorAll('h1')].map((h) => h.innerText).join(' | ')");
            let now = self.text();
            panic!("waited {limit:?} for the heading {text:?} on {}; the h1s: {h1}; the page says:\n{now}", self.url);
        }
    }

    /// Clicks (with the mouse, at its centre) the first visible, enabled button or link
    /// whose visible text is exactly `text` (inside an open modal dialog when there is
    /// one), waiting for it up to 10 s.
    pub fn click(&mut self, text: &str) {
        self.click_in(None, text)
    }

    /// [`Browser::click`] among the descendants of the elements matching `scope` (CSS).
    pub fn click_in(&mut self, scope: Option<&str>, text: &str) {
        let scope_js = scope.map_or("null".to_string(), js);
        let find = format!("{HELPERS}.find({}, {scope_js})", js(text));
        if !self.poll(&format!("!!{find}"), FIND_LIMIT) {
            let seen = self.eval(&format!("{HELPERS}.describe({scope_js})"));
            let page = self.text();
            panic!(
                "no visible, enabled button or link {text:?}{} on {} after {FIND_LIMIT:?}; the visible ones: {}\nthe page says:\n{}",
                scope.map(|s| format!(" in {s}")).unwrap_or_default(),
                self.url,
                seen.as_str().unwrap_or(""),
                page
            );
        }
        let spot = self.eval(&format!(
            "(() => {{ const e = {find}; e.scrollIntoView({{ block: 'center', inline: 'center' }}); \
             const r = e.getBoundingClientRect(); const x = r.left + r.width / 2, y = r.top + r.height / 2; \
             const hit = document.elementFromPoint(x, y); \
             return {{ x, y, ok: !!hit && (hit === e || e.contains(hit)), \
             hit: hit ? hit.outerHTML.slice(0, 200) : null }}; }})()"
        ));
        assert!(
            spot["ok"] == true,
            "the button or link {text:?} on {} is covered at its centre by: {}",
            self.url,
            spot["hit"]
        );
        let (x, y) = (spot["x"].as_f64().unwrap(), spot["y"].as_f64().unwrap());
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "buttons": if kind == "mousePressed" { 1 } else { 0 }, "clickCount": 1}),
            );
        }
    }

    /// Whether a visible button or link reads exactly `text` right now.
    pub fn has_button(&mut self, text: &str) -> bool {
        self.eval(&format!("!!{HELPERS}.find({}, null)", js(text))) == json!(true)
    }

    fn control(&mut self, label: &str) -> String {
        let find = format!("{HELPERS}.control({})", js(label));
        if !self.poll(&format!("!!{find}"), FIND_LIMIT) {
            let labels = self.eval(&format!("{HELPERS}.labels()"));
            let page = self.text();
            panic!(
                "no visible control labelled {label:?} on {} after {FIND_LIMIT:?}; the labels: {}\nthe page says:\n{}",
                self.url,
                labels.as_str().unwrap_or(""),
                page
            );
        }
        find
    }

    /// Types `value` into the input labelled `label` (its value set, `input` and `change`
    /// dispatched).
    pub fn fill(&mut self, label: &str, value: &str) {
        let c = self.control(label);
        self.eval(&format!(
            "(() => {{ const e = {c}; e.focus(); \
             const proto = e instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype; \
             Object.getOwnPropertyDescriptor(proto, 'value').set.call(e, {v}); \
             e.dispatchEvent(new Event('input', {{ bubbles: true }})); \
             e.dispatchEvent(new Event('change', {{ bubbles: true }})); }})()",
            v = js(value)
        ));
    }

    /// Ticks (or unticks) the checkbox labelled `label`, by clicking it when it differs.
    pub fn check(&mut self, label: &str, on: bool) {
        let c = self.control(label);
        self.eval(&format!("(() => {{ const e = {c}; if (e.checked !== {on}) e.click(); }})()"));
    }

    /// Chooses, in the `<select>` labelled `label`, the option whose value or text is `value`.
    pub fn select(&mut self, label: &str, value: &str) {
        let c = self.control(label);
        let ok = self.eval(&format!(
            "(() => {{ const e = {c}; const o = [...e.options].find((o) => o.value === {v} || o.text.trim() === {v}); \
             if (!o) return [...e.options].map((o) => o.value + '/' + o.text).join(', '); \
             e.value = o.value; e.dispatchEvent(new Event('input', {{ bubbles: true }})); \
             e.dispatchEvent(new Event('change', {{ bubbles: true }})); return true; }})()",
            v = js(value)
        ));
        assert!(ok == json!(true), "the select {label:?} has no option {value:?}; it has: {ok}");
    }

    /// Resizes the page's window (CSS pixels, scale 1).
    pub fn set_viewport(&mut self, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
    }

    /// Saves what the window shows as a PNG.
    pub fn screenshot(&mut self, path: &Path) {
        use base64::Engine;
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("screenshot base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// The URL last navigated to.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ask politely (bounded by the socket's read timeout); Proc's drop kills the rest.
        let _ = self.ws.send(Message::text(json!({"id": 0, "method": "Browser.close"}).to_string()));
        let _ = self.ws.close(None);
    }
}
