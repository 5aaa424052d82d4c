//! Issue 17's acceptance: the web console driven in headless Chromium (Debian's
//! `chromium`, over the DevTools protocol: tests/common/browser.rs) against a real
//! `dialtone serve` with SIPp as trunk and callee. A person's path through it: sign in
//! (a wrong password first), make an API key and see its secret once, watch a call the API
//! placed appear in Live calls, hang it up from there (SIPp gets the BYE), find it in the
//! call log, open its detail (SIP ladder, quality charts, the recording playing), look at
//! the webhooks' deliveries and the trunks, in a narrow window too; no page may log a
//! JavaScript exception, a console error or a CSP violation.
//!
//! With `DIALTONE_CONSOLE_SCREENSHOTS=<dir>` it also saves each page at 1280×800 and
//! 400×800 as `<page>-1280.png` / `<page>-400.png` in that folder.
//!
//! A second test takes the live row's other actions (Hold, Unhold, DTMF, Transfer) against
//! a SIPp trunk that checks each on the wire.
//!
//! Ports of its own: dialtone's RTP 42400–42599, SIPp's media 37000–37200.

mod common;

use common::browser::{chromium, Browser};
use common::http::{send, wait_port, wait_status};
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const EMAIL: &str = "ops@example.test";
const PASSWORD: &str = "a long passphrase";
const WAIT: Duration = Duration::from_secs(15);

fn body(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// A JavaScript string literal.
fn js(s: &str) -> String {
    Value::from(s).to_string()
}

/// Saves the window at 1280×800 and 400×800 when `DIALTONE_CONSOLE_SCREENSHOTS` names a
/// folder; the window is 1280×800 again after.
fn shots(b: &mut Browser, dir: Option<&Path>, name: &str) {
    let Some(dir) = dir else { return };
    for (w, h) in [(1280, 800), (400, 800)] {
        b.set_viewport(w, h);
        // The layout settles (a frame or two) before the capture.
        b.eval("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))");
        b.screenshot(&dir.join(format!("{name}-{w}.png")));
    }
    b.set_viewport(1280, 800);
}

/// Whether the element matching `css` exists and shows.
fn shows(b: &mut Browser, css: &str) -> bool {
    b.eval(&format!(
        "(() => {{ const e = document.querySelector({}); return !!e && e.checkVisibility(); }})()",
        js(css)
    )) == json!(true)
}

/// Polls `GET path` with `auth` until it answers `want` (bounded): the last answer's status.
fn wait_http(port: u16, path: &str, auth: &[(&str, &str)], want: u16, limit: Duration) -> u16 {
    let deadline = Instant::now() + limit;
    loop {
        let s = send(port, "GET", path, auth, b"").status;
        if s == want || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Checks that the nav, with its five links and "Sign out", and the page's heading show
/// and that the page itself does not scroll sideways (tables scroll in their own box).
fn assert_frame(b: &mut Browser, h1: &str, width: u32) {
    b.wait_h1(h1, WAIT);
    let nav = b.eval(
        "(() => { const n = document.querySelector('nav'); if (!n || !n.checkVisibility()) return 'no visible nav'; \
         const want = ['Live calls', 'Call log', 'API keys', 'Webhooks', 'Trunks']; \
         const links = [...n.querySelectorAll('a')].filter((a) => a.checkVisibility()).map((a) => a.innerText.trim()); \
         const missing = want.filter((w) => !links.includes(w)); \
         const out = [...n.querySelectorAll('a, button')].filter((e) => { const r = e.getBoundingClientRect(); \
           return r.right > window.innerWidth + 1 || r.left < -1; }).map((e) => e.innerText.trim()); \
         const signOut = [...n.querySelectorAll('button')].some((x) => x.innerText.trim() === 'Sign out' && x.checkVisibility()); \
         return missing.length ? 'missing links: ' + missing.join(', ') : out.length ? 'outside the window: ' + out.join(', ') \
           : signOut ? 'ok' : 'no Sign out button'; })()",
    );
    assert_eq!(nav, "ok", "the nav of {h1:?} at {width} px wide");
    let wide = b.eval("document.documentElement.scrollWidth");
    assert!(
        wide.as_u64().is_some_and(|w| w <= u64::from(width)),
        "{h1:?} at {width} px wide scrolls sideways: the page is {wide} px wide"
    );
}

#[test]
fn console_sign_in_keys_live_call_hang_up_detail_recording() {
    sipp();
    chromium();
    let shots_dir = std::env::var_os("DIALTONE_CONSOLE_SCREENSHOTS").map(PathBuf::from);
    let shots_dir = shots_dir.as_deref();
    let trunk_port = free_port();
    let http = free_port();
    let d = Dialtone::serve(
        "console",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
            ("DIALTONE_ADMIN_EMAIL", EMAIL),
            ("DIALTONE_ADMIN_PASSWORD", PASSWORD),
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{trunk_port}")),
            ("DIALTONE_RECORD", "true"),
            ("DIALTONE_RTP_PORTS", "42400-42499"),
        ],
    );
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let base = format!("http://127.0.0.1:{http}/");
    let r = send(http, "POST", "/api/v1/auth/user-login", &[], &body(&json!({"email": EMAIL, "password": PASSWORD})));
    assert_eq!(r.status, 200, "{}", r.json());
    let v = r.json();
    let token = v["token"].as_str().or(v["data"]["token"].as_str()).expect("a token").to_string();
    let jwt = format!("Bearer {token}");
    let auth = [("Authorization", jwt.as_str())];
    // A webhook endpoint nobody answers: its deliveries fail, and the Webhooks page shows
    // the attempts.
    let hook = json!({"url": format!("http://127.0.0.1:{}/hooks", free_port()), "secret": "whsec_console_0123456789"});
    let r = send(http, "POST", "/api/webhooks", &auth, &body(&hook));
    assert_eq!(r.status, 201, "{}", r.json());

    let mut b = Browser::launch();

    // (a) Sign in: a wrong password is refused in an alert, the right one opens Live calls.
    b.goto(&base);
    b.wait_h1("Sign in", WAIT);
    assert!(shows(&mut b, "input[type=email]") && shows(&mut b, "input[type=password]"));
    shots(&mut b, shots_dir, "sign-in");
    b.fill("Email", EMAIL);
    b.fill("Password", "not the passphrase");
    b.click("Sign in");
    b.wait_until(
        "[...document.querySelectorAll('[role=alert]')].some((e) => e.checkVisibility() && e.innerText.trim() !== '')",
        WAIT,
    );
    b.wait_h1("Sign in", WAIT);
    let stored = b.eval("sessionStorage.getItem('dialtone.jwt')");
    assert_eq!(stored, Value::Null, "a refused sign in kept a token");
    b.fill("Password", PASSWORD);
    b.click("Sign in");
    assert_frame(&mut b, "Live calls", 1280);
    let href = b.eval("location.href");
    assert!(!href.as_str().unwrap_or("").contains("eyJ"), "the JWT is in the URL: {href}");
    b.assert_no_problems("sign in");

    // (b) API keys: the secret once, gone after a reload, working against the API until
    // revoked.
    b.click("API keys");
    assert_frame(&mut b, "API keys", 1280);
    b.fill("Name", "console-test");
    b.check("calls:read", true);
    b.click("Create key");
    b.wait_until("(document.querySelector('output[aria-label=Secret]') || {}).textContent", WAIT);
    let secret =
        b.eval("document.querySelector('output[aria-label=Secret]').textContent").as_str().unwrap().to_string();
    assert!(secret.len() >= 16 && !secret.contains(' '), "the secret shown: {secret:?}");
    b.wait_text("This secret is shown once.", WAIT);
    b.wait_text("New key", WAIT);
    assert!(b.has_button("Copy"), "no Copy button by the new secret");
    shots(&mut b, shots_dir, "api-keys");
    let key_auth = format!("Bearer {secret}");
    let r = send(http, "GET", "/api/calls/list", &[("Authorization", &key_auth)], b"");
    assert_eq!(r.status, 200, "the new key on the API: {}", String::from_utf8_lossy(&r.body));
    b.reload();
    b.wait_h1("API keys", WAIT);
    b.wait_text("console-test", WAIT);
    let all = b.eval(
        "document.documentElement.outerHTML + document.body.innerText + JSON.stringify(sessionStorage) + JSON.stringify(localStorage)",
    );
    assert!(!all.as_str().unwrap().contains(&secret), "the secret is still in the page after a reload");
    assert!(!b.text().contains("This secret is shown once."));
    let prefix: String = secret.chars().take(7).collect();
    b.wait_text(&prefix, WAIT);
    b.click("Revoke");
    b.click("Revoke key");
    let status = wait_http(http, "/api/calls/list", &[("Authorization", &key_auth)], 401, WAIT);
    assert_eq!(status, 401, "the revoked key still works");
    b.assert_no_problems("API keys");

    // (c) Live calls: the API places a call, its row appears without a reload; "Hang up"
    // there ends it and SIPp gets the BYE.
    b.click("Live calls");
    assert_frame(&mut b, "Live calls", 1280);
    b.wait_text("No calls right now.", WAIT);
    b.eval("window.__sameDocument = true");
    let callee = SippPeer::carrier_at("console-callee", trunk_port, "tone_1k_pcmu.pcap", 37_000, &[]);
    let call = json!({"contact_id": "console", "phone_number": "+15551230077", "record": true});
    let r = send(http, "POST", "/api/calls/create", &auth, &body(&call));
    assert_eq!(r.status, 201, "{}", r.json());
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    let row = format!("tr[data-call-id={}]", js(&id));
    let row_sel = format!("document.querySelector({})", js(&row));
    b.wait_until(&format!("!!{row_sel}"), WAIT);
    wait_status(&d, http, &auth, &id, "in-progress", WAIT);
    b.wait_until(&format!("{row_sel} && {row_sel}.innerText.includes('in-progress')"), WAIT);
    assert_eq!(b.eval("window.__sameDocument === true"), json!(true), "the page reloaded");
    let row_text = b.eval(&format!("{row_sel}.innerText"));
    assert!(row_text.as_str().unwrap().contains("+15551230077"), "the row: {row_text}");
    // Let the callee's 3 s tone reach the recording; the row's duration ticks meanwhile.
    std::thread::sleep(Duration::from_millis(3500));
    let later = b.eval(&format!("{row_sel}.innerText"));
    assert_ne!(later, row_text, "the live row's duration did not tick");
    shots(&mut b, shots_dir, "live-calls");
    b.click_in(Some(&row), "Hang up");
    b.wait_until("!!document.querySelector('dialog[open]')", WAIT);
    assert!(b.has_button("Cancel"), "the hang-up dialog has no Cancel");
    b.click("Hang up call");
    let done = wait_status(&d, http, &auth, &id, "completed", WAIT);
    assert_eq!(callee.finish(WAIT), (Some(0), (1, 0)), "SIPp did not get its BYE\n{}", d.log_text());
    b.wait_until(&format!("!{row_sel}"), WAIT);
    b.wait_text("No calls right now.", WAIT);
    b.assert_no_problems("Live calls");

    // The call log lists it, completed.
    b.click("Call log");
    assert_frame(&mut b, "Call log", 1280);
    b.wait_until(&format!("{row_sel} && {row_sel}.innerText.includes('completed')"), WAIT);
    b.wait_until("/\\b1 calls\\b/.test(document.body.innerText)", WAIT);
    shots(&mut b, shots_dir, "call-log");
    // Its filters: a status it does not have, its own, a number it does not match, none.
    let count = |n: u32| format!("/\\b{n} calls\\b/.test(document.body.innerText)");
    b.select("Status", "failed");
    b.click("Apply");
    b.wait_until(&count(0), WAIT);
    b.select("Status", "completed");
    b.select("Direction", "outbound");
    b.fill("Number", "1230077");
    b.click("Apply");
    b.wait_until(&format!("{} && !!{row_sel}", count(1)), WAIT);
    b.fill("Number", "99999");
    b.click("Apply");
    b.wait_until(&count(0), WAIT);
    b.select("Status", "any");
    b.select("Direction", "any");
    b.fill("Number", "");
    b.click("Apply");
    b.wait_until(&format!("{} && !!{row_sel}", count(1)), WAIT);
    // Export CSV: the page fetches the list as CSV with its token and saves it as a blob;
    // the save (an anchor's click) is caught here and the blob read back.
    b.eval(
        "window.__csv = null; const save = HTMLAnchorElement.prototype.click; \
         const blobUrl = URL.createObjectURL; \
         URL.createObjectURL = (blob) => { window.__blob = blob; return blobUrl(blob); }; \
         HTMLAnchorElement.prototype.click = function () { \
           if (this.download) { window.__csv = { name: this.download }; return; } \
           return save.call(this); }",
    );
    b.click("Export CSV");
    b.wait_until("!!window.__csv", WAIT);
    let saved = b.eval("window.__blob.text().then((text) => ({ name: window.__csv.name, text }))");
    let (name, csv) = (saved["name"].as_str().unwrap_or(""), saved["text"].as_str().unwrap_or(""));
    assert!(name.ends_with(".csv"), "the CSV's file name: {saved}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "a header and the one call: {csv}");
    assert!(lines[0].starts_with("id,") && lines[1].starts_with(&format!("{id},")), "{csv}");
    assert!(lines[1].contains("completed") && lines[1].contains("+15551230077"), "{csv}");
    b.wait_text("CSV saved", WAIT);
    b.assert_no_problems("Call log");

    // (d) The detail: facts, the SIP ladder, the quality charts, the recording playing.
    assert_eq!(wait_http(http, &format!("/api/calls/{id}/recording"), &auth, 200, WAIT), 200, "no recording");
    b.click_in(Some(&row), &id);
    assert_frame(&mut b, &format!("Call {id}"), 1280);
    let h2 = b.eval("[...document.querySelectorAll('h2')].map((h) => h.innerText.trim())");
    let want = ["Facts", "Timeline", "SIP ladder", "Quality", "Recording", "Agent"];
    let got: Vec<&str> = h2.as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let order: Vec<&str> = got.iter().copied().filter(|h| want.contains(h)).collect();
    assert_eq!(order, want, "the detail's sections: {got:?}");
    b.wait_until("(document.querySelector('dl') || {}).innerText?.includes('completed')", WAIT);
    b.wait_until("!!document.querySelector('svg[aria-label=\"SIP ladder\"]')", WAIT);
    let ladder = b.eval("document.querySelector('svg[aria-label=\"SIP ladder\"]').textContent");
    for label in ["INVITE", "200 OK", "ACK", "BYE"] {
        assert!(ladder.as_str().unwrap().contains(label), "the ladder has no {label}: {ladder}");
    }
    let charts = ["Loss (%)", "Jitter (ms)", "Round trip (ms)", "MOS"];
    for chart in charts {
        b.wait_until(&format!("!!document.querySelector({})", js(&format!("svg[aria-label=\"{chart}\"]"))), WAIT);
    }
    b.wait_until("!!document.querySelector('audio[aria-label=Recording]')", WAIT);
    let played = b.eval(
        "(async () => { const a = document.querySelector('audio[aria-label=Recording]'); a.muted = true; \
         if (a.readyState < 1) await new Promise((r) => { a.addEventListener('loadedmetadata', r, { once: true }); \
           setTimeout(r, 10000); }); \
         const t0 = a.currentTime; await a.play(); \
         for (let i = 0; i < 100 && a.currentTime <= t0; i++) await new Promise((r) => setTimeout(r, 100)); \
         const t1 = a.currentTime; a.pause(); return { t0, t1, duration: a.duration, error: a.error && a.error.message }; })()",
    );
    assert!(
        played["t1"].as_f64().unwrap_or(0.0) > played["t0"].as_f64().unwrap_or(0.0),
        "the recording did not play: {played}"
    );
    let duration = done["duration"].as_f64().unwrap_or(0.0);
    assert!(played["duration"].as_f64().unwrap_or(0.0) > 1.0, "the audio's duration (call: {duration} s): {played}");
    let wave = b.eval(
        "(() => { const c = document.querySelector('canvas[aria-label=Waveform]'); return !!c && c.width > 0 && c.height > 0; })()",
    );
    assert_eq!(wave, json!(true), "no waveform canvas");
    let link = b.eval(
        "(() => { const a = [...document.querySelectorAll('a')].find((a) => a.innerText.trim() === 'Download recording'); \
         return a ? { href: a.getAttribute('href'), download: a.getAttribute('download') } : null; })()",
    );
    assert!(
        link["href"].as_str().is_some_and(|h| h.starts_with("blob:"))
            && link["download"].as_str().is_some_and(|d| !d.is_empty()),
        "the Download recording link: {link}"
    );
    shots(&mut b, shots_dir, "call-detail");
    // The ladder and the charts, further down the page.
    for (heading, name) in [("SIP ladder", "call-detail-ladder"), ("Quality", "call-detail-quality")] {
        if shots_dir.is_some() {
            b.eval(&format!(
                "[...document.querySelectorAll('h2')].find((h) => h.innerText.trim() === '{heading}').scrollIntoView()"
            ));
            shots(&mut b, shots_dir, name);
        }
    }
    b.assert_no_problems("the call's detail");

    // Webhooks: the endpoint and its delivery attempts.
    b.click("Webhooks");
    assert_frame(&mut b, "Webhooks", 1280);
    b.wait_text("/hooks", WAIT);
    b.click("Deliveries");
    b.wait_until(
        "[...document.querySelectorAll('table')].some((t) => t.innerText.includes('Outcome') && t.innerText.includes('call.'))",
        WAIT,
    );
    shots(&mut b, shots_dir, "webhooks");
    b.assert_no_problems("Webhooks");

    // Trunks and numbers.
    b.click("Trunks");
    assert_frame(&mut b, "Trunks", 1280);
    b.wait_text("Numbers", WAIT);
    shots(&mut b, shots_dir, "trunks");
    b.assert_no_problems("Trunks");

    // (f) A narrow window: the nav and each page still there, nothing wider than it.
    b.set_viewport(400, 800);
    for (link, h1) in [
        ("Live calls", "Live calls".to_string()),
        ("Call log", "Call log".into()),
        ("API keys", "API keys".into()),
        ("Webhooks", "Webhooks".into()),
        ("Trunks", "Trunks".into()),
    ] {
        b.click(link);
        assert_frame(&mut b, &h1, 400);
    }
    b.goto(&format!("{base}#/calls/{id}"));
    assert_frame(&mut b, &format!("Call {id}"), 400);
    b.wait_until("!!document.querySelector('svg[aria-label=\"SIP ladder\"]')", WAIT);
    b.set_viewport(1280, 800);

    // Sign out: back to the sign-in page, the token forgotten.
    b.click("Sign out");
    b.wait_h1("Sign in", WAIT);
    assert_eq!(b.eval("sessionStorage.getItem('dialtone.jwt')"), Value::Null);

    // A token the API refuses (its signature spoilt): the first 401 signs out, with the
    // message.
    let (head_claims, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{head_claims}.c3BvaWx0LXNpZ25hdHVyZQ");
    b.eval(&format!(
        "sessionStorage.setItem('dialtone.jwt', JSON.stringify({{ token: {}, exp: Math.floor(Date.now() / 1000) + 3600, email: {} }}))",
        js(&forged),
        js(EMAIL)
    ));
    b.goto(&format!("{base}#/live"));
    b.wait_h1("Sign in", WAIT);
    b.wait_text("Your session has ended. Sign in again.", WAIT);
    let alert = b.eval(
        "[...document.querySelectorAll('[role=alert]')].some((e) => e.innerText.includes('Your session has ended. Sign in again.'))",
    );
    assert_eq!(alert, json!(true), "the session's end is not in a role=alert element");
    assert_eq!(b.eval("sessionStorage.getItem('dialtone.jwt')"), Value::Null, "the refused token was kept");

    // (e) Not one exception, console error or CSP violation on any page.
    b.assert_no_problems("the whole visit");
    println!("console journal:\n{}", b.journal().join("\n"));
}

/// The harness itself: a CSP violation and an uncaught exception on the console's page are
/// caught (so the "no problems" checks above are not vacuous), and a missing button fails
/// with the buttons that are there.
#[test]
fn browser_reports_csp_violations_exceptions_and_missing_buttons() {
    let http = free_port();
    let d = Dialtone::serve("console-harness", &[("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}"))]);
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let mut b = Browser::launch();
    b.goto(&format!("http://127.0.0.1:{http}/"));
    b.wait_h1("Sign in", WAIT);
    b.assert_no_problems("the sign-in page");
    b.eval("const s = document.createElement('script'); s.textContent = 'window.inlineRan = true'; document.body.append(s)");
    b.eval("setTimeout(() => { throw new Error('boom from the test'); }, 0)");
    assert!(b.poll("true", Duration::from_millis(300)));
    let kinds: Vec<&str> = b.problems().iter().map(|p| p.kind).collect();
    assert!(kinds.contains(&"csp"), "no CSP violation seen: {kinds:?} {:?}", b.journal());
    assert!(kinds.contains(&"exception"), "no exception seen: {kinds:?} {:?}", b.journal());
    assert_eq!(b.eval("window.inlineRan === true"), json!(false), "an inline script ran");
    eprintln!("(the panic below, about \"No such button\", is expected)");
    let missing = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.click("No such button")));
    let message = missing.expect_err("clicking a missing button passed");
    let message = message.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("button \"Sign in\""), "the failure does not list the buttons: {message}");
}

/// The live row's other actions against a SIPp trunk that checks each of them on the wire
/// (`uas_api_control.xml`): Hold (a re-INVITE offering `sendonly`), Unhold (`sendrecv`),
/// DTMF (RFC 4733 digits), Transfer (a REFER to `sip:carol@example.net`; the trunk's NOTIFY
/// 200 ends the call with our BYE).
#[test]
fn console_holds_sends_digits_and_transfers_a_live_call() {
    sipp();
    chromium();
    let trunk = SippPeer::start(
        "console-control",
        &["-sf", &root().join("fixtures/sipp/uas_api_control.xml").to_string_lossy()],
    );
    let http = free_port();
    let d = Dialtone::serve(
        "console-control",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
            ("DIALTONE_ADMIN_EMAIL", EMAIL),
            ("DIALTONE_ADMIN_PASSWORD", PASSWORD),
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{}", trunk.port)),
            ("DIALTONE_RTP_PORTS", "42500-42599"),
        ],
    );
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let r = send(http, "POST", "/api/v1/auth/user-login", &[], &body(&json!({"email": EMAIL, "password": PASSWORD})));
    let token = r.json()["data"]["token"].as_str().expect("a token").to_string();
    let jwt = format!("Bearer {token}");
    let auth = [("Authorization", jwt.as_str())];

    let mut b = Browser::launch();
    b.goto(&format!("http://127.0.0.1:{http}/"));
    b.wait_h1("Sign in", WAIT);
    b.fill("Email", EMAIL);
    b.fill("Password", PASSWORD);
    b.click("Sign in");
    b.wait_h1("Live calls", WAIT);
    let call = json!({"contact_id": "console", "phone_number": "+15551230078"});
    let r = send(http, "POST", "/api/calls/create", &auth, &body(&call));
    assert_eq!(r.status, 201, "{}", r.json());
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    let row = format!("tr[data-call-id={}]", js(&id));
    let row_sel = format!("document.querySelector({})", js(&row));
    wait_status(&d, http, &auth, &id, "in-progress", WAIT);
    b.wait_until(&format!("{row_sel} && {row_sel}.innerText.includes('in-progress')"), WAIT);
    let button = |text: &str| {
        format!("[...{row_sel}.querySelectorAll('button')].some((x) => x.innerText.trim() === {})", js(text))
    };
    // Hold, then Unhold: each re-INVITE answered before the next goes.
    b.click_in(Some(&row), "Hold");
    b.wait_until(&button("Unhold"), WAIT);
    assert_eq!(b.eval(&button("Hold")), json!(false), "Hold still offered on a held call");
    std::thread::sleep(Duration::from_millis(400));
    b.click_in(Some(&row), "Unhold");
    b.wait_until(&button("Hold"), WAIT);
    std::thread::sleep(Duration::from_millis(400));
    // Digits, through the row's dialog.
    b.click_in(Some(&row), "DTMF");
    b.wait_until("!!document.querySelector('dialog[open]')", WAIT);
    b.fill("Digits", "1#");
    b.click("Send digits");
    b.wait_text("Digits 1# sent", WAIT);
    std::thread::sleep(Duration::from_millis(400));
    // The transfer: SIPp gets the REFER, reports success, and gets our BYE.
    b.click_in(Some(&row), "Transfer");
    b.wait_until("!!document.querySelector('dialog[open]')", WAIT);
    b.fill("Transfer to", "sip:carol@example.net");
    b.click("Transfer call");
    wait_status(&d, http, &auth, &id, "completed", WAIT);
    b.wait_until(&format!("!{row_sel}"), WAIT);
    let (code, stats) = trunk.finish(Duration::from_secs(10));
    let log = d.log_text();
    assert_eq!((code, stats), (Some(0), (1, 0)), "the SIPp trunk saw hold, unhold, REFER and BYE\n{log}");
    assert!(log.contains("Dtmf(\"1#\")"), "the digits did not reach the engine\n{log}");
    b.assert_no_problems("the live call's actions");
}
