//! Issue 5's acceptance over real sockets: a user logs in, makes a key, registers a
//! webhook and places a recorded call through a SIPp trunk; the call's life, its signed
//! webhooks (checked by a receiver written in Python) and its recording (the trunk's tone,
//! found by frequency) all come out as documented. Then `kill -9` in the middle of a call,
//! and a restart that loses no call, no recording and no webhook. Then the limits.

mod common;

use common::http::{send, wait_port, wait_status, Reply};
use common::*;
use dialtone_media::resample::goertzel_power;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_test_0123456789abcdef";

/// The Python webhook receiver (fixtures/webhooks/receiver.py) on a port of its own.
struct Receiver {
    child: Child,
    port: u16,
    out: PathBuf,
}

impl Receiver {
    fn start(name: &str, port: u16, fail_first: u32) -> Receiver {
        let out = temp_dir(name).join("events.jsonl");
        let child = Command::new("python3")
            .arg(root().join("fixtures/webhooks/receiver.py"))
            .args(["--port", &port.to_string(), "--secret", SECRET, "--fail-first", &fail_first.to_string()])
            .arg("--out")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the python3 webhook receiver");
        assert!(wait_port(port, Duration::from_secs(10)), "the webhook receiver did not listen");
        Receiver { child, port, out }
    }

    /// Every request it got, in order.
    fn requests(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// The accepted events, waiting (bounded) until `done` holds for them.
    fn wait_for(&self, limit: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let got: Vec<Value> = self.requests().into_iter().filter(|r| r["refused"] == false).collect();
            if done(&got) || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A SIPp media port pair free in 34000–34999 (the other suites use other ranges).
fn media_port() -> u16 {
    free_media_port_in(34_000, 250)
}

fn body(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// 20 ms windows of `samples` (8 kHz) where 1 kHz clearly dominates.
fn tone_windows(samples: &[i16]) -> usize {
    samples
        .chunks_exact(160)
        .filter(|w| {
            let p = goertzel_power(w, 8000, 1000.0);
            p > 1e6 && p > 20.0 * goertzel_power(w, 8000, 500.0).max(goertzel_power(w, 8000, 1500.0))
        })
        .count()
}

fn wav(bytes: &[u8]) -> (hound::WavSpec, Vec<i16>) {
    let r = hound::WavReader::new(std::io::Cursor::new(bytes)).expect("a readable WAV");
    let spec = r.spec();
    (spec, r.into_samples::<i16>().map_while(Result::ok).collect())
}

fn kinds(events: &[Value]) -> Vec<String> {
    events.iter().map(|e| e["event"].as_str().unwrap_or("?").to_string()).collect()
}

#[test]
fn login_key_webhook_recorded_call_end_to_end() {
    sipp();
    let mp = media_port();
    let tone = root().join("fixtures/pcap/tone_1k_pcmu.pcap");
    let scenario = root().join("fixtures/sipp/uas_play_tone.xml");
    let trunk = SippPeer::start(
        "e2e-trunk",
        &[
            "-sf",
            &scenario.to_string_lossy(),
            "-mi",
            "127.0.0.1",
            "-mp",
            &mp.to_string(),
            "-key",
            "pcap",
            &tone.to_string_lossy(),
            "-key",
            "dtmf",
            "/usr/share/sip-tester/dtmf_2833_1.pcap",
        ],
    );
    // The receiver refuses the first delivery: it must come again.
    let receiver = Receiver::start("e2e-hooks", free_port(), 1);
    let http_port = free_port();
    let d = Dialtone::serve(
        "e2e",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http_port}")),
            ("DIALTONE_ADMIN_EMAIL", "ops@example.test"),
            ("DIALTONE_ADMIN_PASSWORD", "a long passphrase"),
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{}", trunk.port)),
            ("DIALTONE_RTP_PORTS", "48500-48599"),
            ("DIALTONE_WEBHOOK_RETRY_MS", "100"),
        ],
    );
    assert!(wait_port(http_port, Duration::from_secs(10)), "{}", d.log_text());

    // Log in, make a key with what the integration needs, register the webhook with it.
    let login = json!({"email": "ops@example.test", "password": "a long passphrase"});
    let r = send(http_port, "POST", "/api/v1/auth/user-login", &[], &body(&login));
    assert_eq!(r.status, 200, "{}", r.json());
    let jwt = format!("Bearer {}", r.json()["token"].as_str().unwrap());
    let perms = ["calls:read", "calls:write", "calls:recording", "calls:live", "webhooks:write", "webhooks:read"];
    let r = send(
        http_port,
        "POST",
        "/api/api-keys",
        &[("Authorization", &jwt)],
        &body(&json!({"name": "crm", "permissions": perms})),
    );
    assert_eq!(r.status, 201, "{}", r.json());
    let key = r.json()["data"]["key"].as_str().unwrap().to_string();
    let auth = [("X-API-Key", key.as_str())];
    let hook = json!({"url": format!("http://127.0.0.1:{}/hooks", receiver.port), "secret": SECRET});
    let r = send(http_port, "POST", "/api/webhooks", &auth, &body(&hook));
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!(r.json()["data"]["secret"], SECRET);
    let listed = send(http_port, "GET", "/api/webhooks", &auth, b"").json();
    assert_eq!(listed["data"]["webhooks"].as_array().unwrap().len(), 1, "{listed}");
    assert!(!listed.to_string().contains(SECRET), "the list shows the secret: {listed}");

    // The call, made safe to retry with an Idempotency-Key.
    let call = json!({"contact_id": "contact_e2e", "phone_number": "+15551230042", "record": true});
    let idem = [("X-API-Key", key.as_str()), ("Idempotency-Key", "order-42")];
    let first = send(http_port, "POST", "/api/calls/create", &idem, &body(&call));
    assert_eq!(first.status, 201, "{}", first.json());
    let id = first.json()["data"]["id"].as_str().unwrap().to_string();
    let again = send(http_port, "POST", "/api/calls/create", &idem, &body(&call));
    assert_eq!((again.status, again.header("idempotent-replayed")), (200, Some("true")), "{}", again.json());
    assert_eq!(again.json()["data"]["id"], id.as_str());
    let other = json!({"contact_id": "contact_e2e", "phone_number": "+15551230043", "record": true});
    let conflict = send(http_port, "POST", "/api/calls/create", &idem, &body(&other));
    assert_eq!((conflict.status, &conflict.json()["error"]["code"]), (409, &json!("idempotency_conflict")));

    // While it talks it is live; then the trunk hangs up (tone, a digit, BYE).
    wait_status(&d, http_port, &auth, &id, "in-progress", Duration::from_secs(10));
    let live = send(http_port, "GET", "/api/calls/live", &auth, b"").json();
    assert_eq!(live["data"]["calls"][0]["id"], id.as_str(), "{live}");
    let done = wait_status(&d, http_port, &auth, &id, "completed", Duration::from_secs(20));
    let duration = done["duration"].as_f64().unwrap();
    assert!((4.0..9.0).contains(&duration), "talked {duration} s: {done}");
    let evs: Vec<(String, String)> = done["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap().into(), e["detail"].as_str().unwrap().into()))
        .collect();
    assert!(evs.contains(&("dtmf".into(), "1".into())), "the trunk's RFC 4733 digit: {evs:?}");
    assert_eq!(done["ended_by"], "remote", "the trunk sent the BYE: {done}");
    assert!(evs.contains(&("ended_by".into(), "remote".into())), "{evs:?}");
    let statuses: Vec<&str> = evs.iter().filter(|(k, _)| k == "status").map(|(_, d)| d.as_str()).collect();
    assert_eq!(statuses, ["initiating", "ringing", "in-progress", "completed"]);
    let list = send(http_port, "GET", "/api/calls/list?contact_id=contact_e2e", &auth, b"").json();
    assert_eq!(list["data"]["total"], 1, "the replayed create made a second call: {list}");
    assert_eq!(list["data"]["calls"][0]["duration"], done["duration"]);
    let (code, stats) = trunk.finish(Duration::from_secs(10));
    assert_eq!((code, stats), (Some(0), (1, 0)), "the SIPp trunk\n{}", d.log_text());

    // The call's SIP ladder: every message of its dialog, in order, both ways (read live
    // first, then as stored at its end); its quality each second, with the E-model's MOS.
    let ladder = |path: &str| -> Vec<(String, String)> {
        let v = send(http_port, "GET", path, &auth, b"").json();
        v["data"]["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("{v}"))
            .iter()
            .map(|m| (m["direction"].as_str().unwrap().to_string(), m["label"].as_str().unwrap().to_string()))
            .collect()
    };
    let sip_path = format!("/api/calls/{id}/sip");
    let first_read = ladder(&sip_path);
    let at = |label: &str, dir: &str| first_read.iter().position(|(d, l)| l == label && d == dir);
    let (invite, ok, ack, bye) =
        (at("INVITE", "sent"), at("200 OK", "received"), at("ACK", "sent"), at("BYE", "received"));
    assert!(invite < ok && ok < ack && ack < bye && invite.is_some(), "{first_read:?}");
    assert!(first_read.iter().any(|(d, l)| d == "received" && l.starts_with("180")), "{first_read:?}");
    std::thread::sleep(Duration::from_millis(2500));
    let stored = ladder(&sip_path);
    assert_eq!(stored.last().map(|(d, l)| (d.as_str(), l.as_str())), Some(("sent", "200 OK")), "{stored:?}");
    assert!(stored.len() >= first_read.len(), "{stored:?} {first_read:?}");
    let q = send(http_port, "GET", &format!("/api/calls/{id}/quality"), &auth, b"").json();
    let samples = q["data"]["samples"].as_array().unwrap_or_else(|| panic!("{q}"));
    assert!(samples.len() >= 4, "{q}");
    assert_eq!((&q["data"]["codec"], &q["data"]["interval_ms"]), (&json!("PCMU"), &json!(1000)), "{q}");
    let heard: u64 = samples.iter().map(|s| s["inbound"]["packets"].as_u64().unwrap()).sum();
    assert!(heard >= 150, "{q}");
    // Loopback loses nothing: the E-model's best, 4.4 less the delay's little.
    let mos = q["data"]["summary"]["inbound"]["mos_min"].as_f64().unwrap();
    assert!((4.3..=4.5).contains(&mos), "{q}");
    assert_eq!(q["data"]["summary"]["inbound"]["loss_pct"], 0.0, "{q}");

    // The webhooks: every event, signed, in the order things happened, the refused one again.
    let want =
        ["call.initiated", "call.ringing", "call.answered", "dtmf.received", "call.completed", "recording.ready"];
    let got = receiver.wait_for(Duration::from_secs(15), |e| e.len() >= want.len());
    assert_eq!(kinds(&got), want, "{got:?}\n{}", d.log_text());
    assert!(got.iter().all(|e| e["valid"] == true), "a bad signature: {got:?}");
    assert!(receiver.requests()[0]["refused"] == true && receiver.requests().len() == want.len() + 1);
    assert_eq!(got[0]["body"]["data"]["id"], id.as_str());
    assert_eq!(got[3]["body"]["data"]["digit"], "1");
    assert_eq!(got[4]["body"]["data"]["status"], "completed");
    assert_eq!(got[5]["body"]["data"]["call_id"], id.as_str());
    // Each attempt is listed for the console: the refused first one (its 500 and body), then
    // every delivery, newest first.
    let hook_id = listed["data"]["webhooks"][0]["id"].as_str().unwrap().to_string();
    let tries = send(http_port, "GET", &format!("/api/webhooks/{hook_id}/deliveries?limit=100"), &auth, b"").json();
    let tries = tries["data"]["deliveries"].as_array().unwrap().clone();
    assert_eq!(tries.len(), want.len() + 1, "{tries:?}");
    let first = tries.last().unwrap();
    assert_eq!(
        (&first["event"], &first["attempt"], &first["outcome"]),
        (&json!("call.initiated"), &json!(1), &json!("failed"))
    );
    assert_eq!(
        (&first["status_code"], &first["error"], &first["call_id"]),
        (&json!(500), &json!("HTTP 500"), &json!(id))
    );
    assert!(first["next_retry_at"].is_string(), "{first}");
    let retried = &tries[tries.len() - 2];
    assert_eq!(
        (&retried["event"], &retried["attempt"], &retried["outcome"]),
        (&json!("call.initiated"), &json!(2), &json!("delivered"))
    );
    assert_eq!((&tries[0]["event"], &tries[0]["status_code"]), (&json!("recording.ready"), &json!(200)));
    let bad = send(http_port, "GET", &format!("/api/webhooks/{hook_id}/deliveries?limit=0"), &auth, b"");
    assert_eq!((bad.status, &bad.json()["error"]["message"]), (400, &json!("limit: must be an integer from 1 to 500")));
    let none = send(http_port, "GET", "/api/webhooks/wh_000000000000/deliveries", &auth, b"");
    assert_eq!(none.status, 404);

    // The recording: the far end's tone on the left channel, whole or by range.
    let path = format!("/api/calls/{id}/recording");
    let rec = send(http_port, "GET", &path, &auth, b"");
    assert_eq!((rec.status, rec.header("content-type")), (200, Some("audio/wav")), "{}", rec.head);
    let (spec, samples) = wav(&rec.body);
    assert_eq!((spec.channels, spec.sample_rate), (2, 8000));
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let toned = tone_windows(&left);
    assert!(toned >= 125, "only {toned} windows (20 ms) of the trunk's 3 s tone in the recording");
    // A call the API placed without an agent sends silence (DIALTONE_INBOUND's echo is for
    // inbound calls).
    let sent_peak = samples.iter().skip(1).step_by(2).map(|s| s.unsigned_abs()).max().unwrap_or(0);
    assert!(sent_peak < 100, "the API call sent audio (peak {sent_peak}) on the right channel");
    let len = rec.body.len();
    let part = send(http_port, "GET", &path, &[auth[0], ("Range", "bytes=0-43")], b"");
    assert_eq!((part.status, part.body.as_slice()), (206, &rec.body[..44]));
    assert_eq!(part.header("content-range"), Some(format!("bytes 0-43/{len}").as_str()));
    let tail = send(http_port, "GET", &path, &[auth[0], ("Range", "bytes=-100")], b"");
    assert_eq!((tail.status, tail.body.as_slice()), (206, &rec.body[len - 100..]));
    let past = send(http_port, "GET", &path, &[auth[0], ("Range", &format!("bytes={len}-"))], b"");
    assert_eq!((past.status, past.header("content-range")), (416, Some(format!("bytes */{len}").as_str())));

    // The figures.
    let m = String::from_utf8(send(http_port, "GET", "/metrics", &[], b"").body).unwrap();
    let metric = |name: &str| -> f64 {
        m.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap_or_else(|| panic!("{name}?\n{m}"))
    };
    assert_eq!(metric("dialtone_calls{status=\"completed\"}"), 1.0);
    assert!(metric("dialtone_rtp_packets_total{direction=\"rx\"}") >= 150.0, "{m}");
    assert!(metric("dialtone_webhook_deliveries_total{result=\"delivered\"}") >= want.len() as f64, "{m}");
    assert!(metric("dialtone_webhook_deliveries_total{result=\"failed\"}") >= 1.0, "{m}");
    assert_eq!(metric("dialtone_active_calls"), 0.0);
}

/// `sipp` with `uas_reliable_180.xml` (answers, waits for our BYE) for `calls` calls.
fn holding_trunk(name: &str, calls: u32) -> (Child, u16) {
    sipp();
    let port = free_port();
    let dir = temp_dir(name);
    let child = Command::new("sipp")
        .arg("-sf")
        .arg(root().join("fixtures/sipp/uas_reliable_180.xml"))
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", &calls.to_string(), "-nostdin", "-timeout", "40s"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sipp");
    std::thread::sleep(Duration::from_millis(300));
    (child, port)
}

#[test]
fn kill_9_during_a_call_loses_no_call_recording_or_webhook() {
    let (mut trunk, trunk_port) = holding_trunk("crash-trunk", 2);
    let hook_port = free_port(); // nothing listens there until after the restart
    let data = temp_dir("crash-data");
    let env = |http: u16| -> Vec<(String, String)> {
        vec![
            ("DIALTONE_HTTP_LISTEN".into(), format!("127.0.0.1:{http}")),
            ("DIALTONE_DATA_DIR".into(), data.to_string_lossy().into_owned()),
            ("DIALTONE_INTERNAL_KEY".into(), "k".into()),
            ("DIALTONE_TRUNK".into(), format!("sip:127.0.0.1:{trunk_port}")),
            ("DIALTONE_RTP_PORTS".into(), "48600-48699".into()),
            ("DIALTONE_WEBHOOK_RETRY_MS".into(), "100".into()),
        ]
    };
    let serve = |name: &str, http: u16| {
        let e = env(http);
        let refs: Vec<(&str, &str)> = e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let d = Dialtone::serve(name, &refs);
        assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
        d
    };
    let http = free_port();
    let mut d = serve("crash-1", http);
    let auth = [("X-Internal-Key", "k")];
    let r = send(
        http,
        "POST",
        "/api/webhooks",
        &auth,
        &body(&json!({"url": format!("http://127.0.0.1:{hook_port}/"), "secret": SECRET})),
    );
    assert_eq!(r.status, 201, "{}", r.json());
    let create = |n: u32| -> String {
        let c = json!({"contact_id": format!("crash-{n}"), "phone_number": format!("+1555123000{n}"), "record": true});
        let r = send(http, "POST", "/api/calls/create", &auth, &body(&c));
        assert_eq!(r.status, 201, "{}", r.json());
        r.json()["data"]["id"].as_str().unwrap().to_string()
    };
    // The first call ends normally; the second is talking when the process dies.
    let done = create(1);
    wait_status(&d, http, &auth, &done, "in-progress", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(send(http, "POST", &format!("/api/calls/{done}/hangup"), &auth, b"").status, 202);
    let finished = wait_status(&d, http, &auth, &done, "completed", Duration::from_secs(10));
    let talking = create(2);
    wait_status(&d, http, &auth, &talking, "in-progress", Duration::from_secs(10));
    // Let the recorder write some of it (its header is brought up to date every second).
    std::thread::sleep(Duration::from_millis(2500));
    d.child.kill().unwrap(); // SIGKILL
    d.child.wait().unwrap();
    let _ = trunk.kill();
    let _ = trunk.wait();

    // The receiver comes up, then dialtone again on the same data.
    let receiver = Receiver::start("crash-hooks", hook_port, 0);
    let http2 = free_port();
    let d2 = serve("crash-2", http2);
    let log = d2.log_text();
    assert!(log.contains("closed as failed (reason restart)"), "{log}");
    let get = |id: &str| send(http2, "GET", &format!("/api/calls/{id}"), &auth, b"").json()["data"].clone();
    let (a, b) = (get(&done), get(&talking));
    assert_eq!((&a["status"], &a["duration"]), (&json!("completed"), &finished["duration"]), "{a}");
    assert_eq!((&b["status"], &b["reason"]), (&json!("failed"), &json!("restart")), "{b}");
    // Both recordings download as WAV files; the interrupted one has what was written.
    for (id, min_s) in [(&done, 1.0), (&talking, 1.0)] {
        let r = send(http2, "GET", &format!("/api/calls/{id}/recording"), &auth, b"");
        assert_eq!(r.status, 200, "{id}: {}", String::from_utf8_lossy(&r.body));
        let (spec, samples) = wav(&r.body);
        let secs = samples.len() as f64 / f64::from(spec.sample_rate) / 2.0;
        assert!(secs >= min_s, "{id}: the recording holds {secs:.2} s");
    }
    // Every event of both calls reaches the receiver, each call's in order.
    let per_call = ["call.initiated", "call.ringing", "call.answered"];
    let got = receiver.wait_for(Duration::from_secs(30), |e| e.len() >= 10);
    assert!(got.iter().all(|e| e["valid"] == true), "{got:?}");
    let of = |id: &str| -> Vec<String> {
        got.iter()
            .filter(|e| e["body"]["data"]["id"] == id || e["body"]["data"]["call_id"] == id)
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect()
    };
    let mut want_done: Vec<&str> = per_call.to_vec();
    want_done.extend(["call.completed", "recording.ready"]);
    assert_eq!(of(&done), want_done, "{got:?}");
    let mut want_talking: Vec<&str> = per_call.to_vec();
    want_talking.extend(["call.failed", "recording.ready"]);
    assert_eq!(of(&talking), want_talking, "{got:?}\n{}", d2.log_text());
}

#[test]
fn sigterm_ends_live_calls_and_keeps_their_sip_ladder_and_quality() {
    let (mut trunk, trunk_port) = holding_trunk("term-trunk", 1);
    let data = temp_dir("term-data");
    let serve = |name: &str, http: u16| {
        let d = Dialtone::serve(
            name,
            &[
                ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
                ("DIALTONE_DATA_DIR", &data.to_string_lossy()),
                ("DIALTONE_INTERNAL_KEY", "k"),
                ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{trunk_port}")),
                ("DIALTONE_RTP_PORTS", "42600-42699"),
                // The drain gives the talking call 1 s, then hangs it up.
                ("DIALTONE_DRAIN_TIMEOUT", "1"),
            ],
        );
        assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
        d
    };
    let http = free_port();
    let mut d = serve("term-1", http);
    let auth = [("X-Internal-Key", "k")];
    let r = send(
        http,
        "POST",
        "/api/calls/create",
        &auth,
        &body(&json!({"contact_id": "t", "phone_number": "+15551230061"})),
    );
    assert_eq!(r.status, 201, "{}", r.json());
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    wait_status(&d, http, &auth, &id, "in-progress", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(2200));
    // SIGTERM: the drain's timeout passes, the talking call is ended with a BYE and
    // everything about it is stored before the process exits (its ladder and quality too,
    // not 2 s later).
    let term = Command::new("kill").args(["-TERM", &d.child.id().to_string()]).status().unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while d.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "dialtone did not exit after SIGTERM\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let first_log = d.log_text();
    let _ = trunk.wait();

    let http2 = free_port();
    let _d2 = serve("term-2", http2);
    let call = send(http2, "GET", &format!("/api/calls/{id}"), &auth, b"").json()["data"].clone();
    assert_eq!((&call["status"], &call["ended_by"]), (&json!("completed"), &json!("dialtone")), "{call}\n{first_log}");
    let sip = send(http2, "GET", &format!("/api/calls/{id}/sip"), &auth, b"").json()["data"].clone();
    let labels: Vec<(String, String)> = sip["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{sip}"))
        .iter()
        .map(|m| (m["direction"].as_str().unwrap().to_string(), m["label"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(labels.first().map(|(d, l)| (d.as_str(), l.as_str())), Some(("sent", "INVITE")), "{labels:?}");
    assert!(labels.iter().any(|(d, l)| d == "sent" && l == "BYE"), "{labels:?}\n{first_log}");
    let q = send(http2, "GET", &format!("/api/calls/{id}/quality"), &auth, b"").json()["data"].clone();
    assert!(q["samples"].as_array().is_some_and(|s| s.len() >= 2), "{q}");
}

#[test]
fn limits_answer_429_with_retry_after() {
    let http = free_port();
    let d = Dialtone::serve(
        "limits",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_RATE_LIMIT", "1"),
            ("DIALTONE_LOGIN_LIMIT", "3"),
            ("DIALTONE_ADMIN_EMAIL", "a@example.test"),
            ("DIALTONE_ADMIN_PASSWORD", "pw"),
        ],
    );
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let r = send(
        http,
        "POST",
        "/api/api-keys",
        &[("X-Internal-Key", "k")],
        &body(&json!({"name": "slow", "permissions": ["calls:read"]})),
    );
    let key = r.json()["data"]["key"].as_str().unwrap().to_string();
    // A burst of twice the rate, then 429 with Retry-After, in the envelope.
    let replies: Vec<Reply> =
        (0..3).map(|_| send(http, "GET", "/api/calls/list", &[("X-API-Key", key.as_str())], b"")).collect();
    assert_eq!(replies.iter().map(|r| r.status).collect::<Vec<_>>(), [200, 200, 429]);
    let limited = &replies[2];
    assert_eq!(limited.json()["error"]["code"], "rate_limited");
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After: {wait}");
    // The internal key is not limited.
    for _ in 0..10 {
        assert_eq!(send(http, "GET", "/api/calls/list", &[("X-Internal-Key", "k")], b"").status, 200);
    }
    // Login: three attempts a minute from one address, right password or not.
    let wrong = body(&json!({"email": "a@example.test", "password": "nope"}));
    let codes: Vec<u16> = (0..4).map(|_| send(http, "POST", "/api/v1/auth/user-login", &[], &wrong).status).collect();
    assert_eq!(codes, [401, 401, 401, 429]);
    let m = String::from_utf8(send(http, "GET", "/metrics", &[], b"").body).unwrap();
    assert!(m.contains("dialtone_http_rate_limited_total 2"), "{m}");
}

#[test]
fn auth_matrix_over_every_endpoint() {
    use dialtone_api::openapi::{spec, ROUTES};
    // A finished call to point the {id} routes at.
    let data = temp_dir("matrix-data");
    {
        let mut s = dialtone_api::store::Store::open(&data.join("dialtone.db")).unwrap();
        let c = dialtone_api::store::NewCall {
            id: "call_seed",
            contact_id: "c",
            phone_number: "+15551230000",
            from_number: None,
            record: false,
            created_at: 1_704_830_400_000,
            organization_id: dialtone_api::store::DEFAULT_ORG,
            sip_headers: &[],
            ring_timeout: None,
            max_duration: None,
            from_display_name: None,
            early_media: false,
            machine_detection: None,
        };
        s.insert_call(&c).unwrap();
        s.set_status("call_seed", dialtone_api::store::CallStatus::Failed, Some(503), None, 1_704_830_401_000).unwrap();
    }
    let http = free_port();
    let d = Dialtone::serve(
        "matrix",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
            ("DIALTONE_DATA_DIR", data.to_str().unwrap()),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_ADMIN_EMAIL", "a@example.test"),
            ("DIALTONE_ADMIN_PASSWORD", "pw"),
            ("DIALTONE_RATE_LIMIT", "10000"),
            ("DIALTONE_RATE_LIMIT_ADDR", "10000"),
        ],
    );
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let internal = [("X-Internal-Key", "k")];
    // The document served is the one checked here, and it documents exactly the routes.
    let doc = spec();
    assert_eq!(send(http, "GET", "/api/openapi.json", &[], b"").json(), doc);
    let mk_key = |perms: &[&str]| -> (String, String) {
        let r = send(http, "POST", "/api/api-keys", &internal, &body(&json!({"name": "m", "permissions": perms})));
        assert_eq!(r.status, 201, "{}", r.json());
        let v = r.json();
        (v["data"]["id"].as_str().unwrap().into(), v["data"]["key"].as_str().unwrap().into())
    };
    let all: Vec<&str> = dialtone_api::http::PERMISSIONS.to_vec();
    let (revoked_id, revoked) = mk_key(&all);
    assert_eq!(send(http, "DELETE", &format!("/api/api-keys/{revoked_id}"), &internal, b"").status, 200);
    let login = body(&json!({"email": "a@example.test", "password": "pw"}));
    let logged = send(http, "POST", "/api/v1/auth/user-login", &[], &login).json();
    let jwt = logged["token"].as_str().unwrap().to_string();
    let admin_id = logged["user"]["id"].as_str().unwrap().to_string();
    let secret = std::fs::read(data.join("jwt.secret")).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let perms: Vec<String> = all.iter().map(|p| p.to_string()).collect();
    let expired = dialtone_api::http::issue_jwt(&secret, &admin_id, &perms, now - 25 * 3600);
    let p: Vec<&str> = jwt.split('.').collect();
    let tampered = format!("{}.{}x.{}", p[0], p[1], p[2]);
    // {"alg":"none","typ":"JWT"}, base64url.
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", p[1]);
    let bearer = |t: &str| format!("Bearer {t}");
    let refused: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("no credentials", vec![]),
        ("unknown key", vec![("X-API-Key", "dk_0000000000000000ffffffffffffffff".into())]),
        ("revoked key", vec![("Authorization", bearer(&revoked))]),
        ("expired JWT", vec![("Authorization", bearer(&expired))]),
        ("tampered JWT", vec![("Authorization", bearer(&tampered))]),
        ("alg none JWT", vec![("Authorization", bearer(&none))]),
        ("wrong internal key", vec![("X-Internal-Key", "K".into())]),
    ];
    let mut checked = 0;
    for &(method, route) in ROUTES {
        let op = &doc["paths"][route][method.to_lowercase()];
        assert!(op.is_object(), "{method} {route} is not documented");
        let path = match route {
            r if r.starts_with("/api/calls/{id}") => r.replace("{id}", "call_seed"),
            r => r.replace("{id}", "nope"),
        };
        let body = match (method, route) {
            ("POST", "/api/v1/auth/user-login") => body(&json!({"email": "x@example.test", "password": "x"})),
            ("POST", "/api/calls/create") => body(&json!({"contact_id": "c", "phone_number": "+15551230000"})),
            ("POST", "/api/api-keys") => body(&json!({"name": "n", "permissions": []})),
            ("POST", "/api/webhooks") => body(&json!({"url": "http://127.0.0.1:9/"})),
            ("POST", r) if r.ends_with("/transfer") => body(&json!({"destination": "sip:x@127.0.0.1"})),
            ("POST", r) if r.ends_with("/dtmf") => body(&json!({"digits": "1"})),
            _ => Vec::new(),
        };
        let call = |headers: &[(&str, &str)]| send(http, method, &path, headers, &body);
        let passed = |r: &Reply, who: &str| {
            assert!(
                ![401, 403, 404, 405].contains(&r.status)
                    || (r.status == 404 && r.json()["error"]["message"] != "no such endpoint"),
                "{method} {path} as {who}: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        };
        let Some(perm) = op["x-permission"].as_str() else {
            // Public: no credentials needed (the login answers 401 for a wrong password).
            assert_eq!(op["security"], json!([]), "{method} {route}: neither public nor permissioned");
            let r = call(&[]);
            assert!(r.status != 403 && r.status != 404 && r.status != 405, "{method} {route}: {}", r.status);
            continue;
        };
        for (who, h) in &refused {
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = call(&h);
            assert_eq!(r.status, 401, "{method} {path} with {who}: {}", String::from_utf8_lossy(&r.body));
            assert_eq!(r.json()["success"], false);
        }
        let without: Vec<&str> = all.iter().copied().filter(|p| *p != perm).collect();
        let (_, lacking) = mk_key(&without);
        let r = call(&[("X-API-Key", &lacking)]);
        assert_eq!(r.status, 403, "{method} {path} without {perm}: {}", String::from_utf8_lossy(&r.body));
        assert!(r.json()["error"]["message"].as_str().unwrap().contains(perm));
        let (_, only) = mk_key(&[perm]);
        passed(&call(&[("X-API-Key", &only)]), &format!("a key with only {perm}"));
        passed(&call(&[("Authorization", &bearer(&only))]), "that key as Bearer");
        passed(&call(&[("Authorization", &bearer(&jwt))]), "the admin's JWT");
        passed(&call(&internal), "the internal key");
        checked += 1;
    }
    assert_eq!(checked, ROUTES.len() - 4, "every protected route was checked");

    // Bad webhook input names the field; so does a bad Idempotency-Key.
    for (bad, field) in [
        (json!({"url": "ftp://example.test/"}), "url"),
        (json!({"url": "http://"}), "url"),
        (json!({}), "url"),
        (json!({"url": "http://127.0.0.1:9/", "events": ["call.exploded"]}), "events"),
        (json!({"url": "http://127.0.0.1:9/", "events": "call.completed"}), "events"),
        (json!({"url": "http://127.0.0.1:9/", "secret": "short"}), "secret"),
    ] {
        let r = send(http, "POST", "/api/webhooks", &internal, &body(&bad));
        assert_eq!(r.status, 400, "{bad}: {}", r.json());
        assert!(r.json()["error"]["message"].as_str().unwrap().starts_with(field), "{bad}: {}", r.json());
    }
    let create = |extra: Value| {
        let mut b = json!({"contact_id": "c", "phone_number": "+15551230000"});
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body(&b)
    };
    for (bad, field) in [
        (json!({"agent_url": "http://agent.example/"}), "agent_url"),
        (json!({"agent_url": "ws://"}), "agent_url"),
        (json!({"agent_url": "ws://127.0.0.1:9/", "agent_format": "mp3"}), "agent_format"),
        (json!({"agent_format": "l16-16k"}), "agent_format"),
    ] {
        let r = send(http, "POST", "/api/calls/create", &internal, &create(bad.clone()));
        assert_eq!(r.status, 400, "{bad}: {}", r.json());
        assert!(r.json()["error"]["message"].as_str().unwrap().starts_with(field), "{bad}: {}", r.json());
    }
    // An agent needs calls:originate_ai beyond calls:write.
    let (_, writer) = mk_key(&["calls:write"]);
    let r = send(
        http,
        "POST",
        "/api/calls/create",
        &[("X-API-Key", &writer)],
        &create(json!({"agent_url": "ws://127.0.0.1:9/"})),
    );
    assert_eq!(r.status, 403, "{}", r.json());
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("calls:originate_ai"));
    let long = "x".repeat(300);
    let r = send(
        http,
        "POST",
        "/api/calls/create",
        &[internal[0], ("Idempotency-Key", &long)],
        &body(&json!({"contact_id": "c", "phone_number": "+15551230000"})),
    );
    assert_eq!(r.status, 400, "{}", r.json());
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("Idempotency-Key"));
}

#[test]
fn a_call_whose_peer_falls_silent_is_hung_up() {
    // The trunk answers and then sends no RTP (nor RTCP) and never hangs up.
    let (mut trunk, trunk_port) = holding_trunk("silent-trunk", 1);
    let http = free_port();
    let d = Dialtone::serve(
        "silent",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{trunk_port}")),
            ("DIALTONE_RTP_PORTS", "48700-48799"),
            ("DIALTONE_RTP_TIMEOUT", "2"),
        ],
    );
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let auth = [("X-Internal-Key", "k")];
    let r = send(http, "POST", "/api/calls/create", &auth, br#"{"contact_id": "s", "phone_number": "+15551230005"}"#);
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    let talking = wait_status(&d, http, &auth, &id, "in-progress", Duration::from_secs(10));
    let done = wait_status(&d, http, &auth, &id, "completed", Duration::from_secs(10));
    let reason = done["reason"].as_str().unwrap_or("");
    assert!(reason.starts_with("rtp timeout"), "{done}");
    let answered = talking["answered_at"].as_str().unwrap().to_string();
    assert_eq!(done["answered_at"], answered.as_str());
    let talked = done["duration"].as_f64().unwrap();
    assert!((1.9..4.0).contains(&talked), "hung up after {talked} s of silence (limit 2 s)");
    // The trunk got our BYE: its scenario ends cleanly.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = trunk.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = trunk.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", d.log_text());
    assert!(d.log_text().contains("no media from the peer: hanging up"));
}

#[test]
fn inbound_calls_are_kept_and_sent_to_webhooks() {
    sipp();
    let receiver = Receiver::start("inbound-hooks", free_port(), 0);
    let http = free_port();
    let d = Dialtone::serve(
        "inbound",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_RTP_PORTS", "48800-48899"),
        ],
    );
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let auth = [("X-Internal-Key", "k")];
    let hook = json!({"url": format!("http://127.0.0.1:{}/", receiver.port), "secret": SECRET});
    assert_eq!(send(http, "POST", "/api/webhooks", &auth, &body(&hook)).status, 201);
    // SIPp's built-in caller: INVITE to 15551230000, talks 1 s, BYE.
    let run = run_sipp(
        &args(&["-sn", "uac", &format!("127.0.0.1:{}", d.port), "-i", "127.0.0.1", "-p", &free_port().to_string()])
            .into_iter()
            .chain(args(&["-s", "15551230000", "-d", "1000", "-m", "1", "-timeout", "20s"]))
            .collect::<Vec<_>>(),
        Duration::from_secs(25),
    );
    assert_eq!((run.successful, run.failed), (1, 0), "{}\n{}", run.stderr, d.log_text());
    let deadline = Instant::now() + Duration::from_secs(10);
    let call = loop {
        let list = send(http, "GET", "/api/calls/list?status=completed", &auth, b"").json();
        if list["data"]["total"] == 1 {
            break list["data"]["calls"][0].clone();
        }
        assert!(Instant::now() < deadline, "{list}\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        (&call["direction"], &call["phone_number"], &call["from_number"]),
        // The number called, as E.164 (issue 15); the caller is no number, kept as it came.
        (&json!("inbound"), &json!("sipp"), &json!("+15551230000")),
        "{call}"
    );
    assert!(call["duration"].as_f64().unwrap() >= 0.9, "{call}");
    let id = call["id"].as_str().unwrap();
    let got = receiver.wait_for(Duration::from_secs(10), |e| e.len() >= 4);
    assert_eq!(kinds(&got), ["call.initiated", "call.ringing", "call.answered", "call.completed"], "{got:?}");
    assert!(got.iter().all(|e| e["valid"] == true && e["body"]["data"]["id"] == id), "{got:?}");
}

#[test]
fn users_log_in_with_their_own_permissions_until_deleted() {
    let http = free_port();
    let d = Dialtone::serve(
        "users",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
            ("DIALTONE_ADMIN_EMAIL", "root@example.test"),
            ("DIALTONE_ADMIN_PASSWORD", "root password"),
        ],
    );
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let login = |email: &str, password: &str| {
        send(http, "POST", "/api/v1/auth/user-login", &[], &body(&json!({"email": email, "password": password})))
    };
    let admin = format!("Bearer {}", login("root@example.test", "root password").json()["token"].as_str().unwrap());
    let as_admin = [("Authorization", admin.as_str())];
    let new_user = json!({"email": "Ann@Example.test", "password": "ann's password", "permissions": ["calls.read"]});
    let r = send(http, "POST", "/api/users", &as_admin, &body(&new_user));
    assert_eq!(r.status, 201, "{}", r.json());
    let ann = r.json()["data"].clone();
    assert_eq!(
        (&ann["email"], &ann["role"], &ann["permissions"]),
        (&json!("ann@example.test"), &json!("user"), &json!(["calls:read"]))
    );
    assert!(!r.json().to_string().contains("argon2"), "the hash is shown: {}", r.json());
    // Field errors, a taken e-mail.
    for (bad, field) in [
        (json!({"password": "long enough"}), "email"),
        (json!({"email": "x@example.test", "password": "short"}), "password"),
        (json!({"email": "x@example.test", "password": "long enough", "role": "root"}), "role"),
        (json!({"email": "x@example.test", "password": "long enough", "permissions": ["calls:fly"]}), "permissions"),
    ] {
        let r = send(http, "POST", "/api/users", &as_admin, &body(&bad));
        assert_eq!(r.status, 400, "{bad}: {}", r.json());
        assert!(r.json()["error"]["message"].as_str().unwrap().starts_with(field), "{bad}: {}", r.json());
    }
    assert_eq!(send(http, "POST", "/api/users", &as_admin, &body(&new_user)).status, 409);
    // Ann logs in and holds what she was given.
    let r = login("ann@example.test", "ann's password");
    assert_eq!(r.status, 200, "{}", r.json());
    let token = format!("Bearer {}", r.json()["token"].as_str().unwrap());
    let as_ann = [("Authorization", token.as_str())];
    assert_eq!(send(http, "GET", "/api/calls/list", &as_ann, b"").status, 200);
    assert_eq!(send(http, "GET", "/api/users", &as_ann, b"").status, 403);
    // She cannot make a user (nor an admin) with more than she holds.
    let r =
        send(http, "POST", "/api/users", &as_ann, &body(&json!({"email": "b@example.test", "password": "12345678"})));
    assert_eq!(r.status, 403, "{}", r.json());
    let users = send(http, "GET", "/api/users", &as_admin, b"").json();
    assert_eq!(users["data"]["users"].as_array().unwrap().len(), 2, "{users}");
    // Deleted: her token stops working at once, and she cannot log in.
    let id = ann["id"].as_str().unwrap();
    assert_eq!(send(http, "DELETE", &format!("/api/users/{id}"), &as_admin, b"").status, 200);
    assert_eq!(send(http, "GET", "/api/calls/list", &as_ann, b"").status, 401);
    assert_eq!(login("ann@example.test", "ann's password").status, 401);
    assert_eq!(send(http, "DELETE", &format!("/api/users/{id}"), &as_admin, b"").status, 404);
}

#[test]
fn the_engine_holds_calls_to_the_limits_and_destinations() {
    // A SIPp trunk that answers and holds each call until our BYE.
    let (mut trunk, trunk_port) = holding_trunk("limit-trunk", 2);
    let http = free_port();
    let d = Dialtone::serve(
        "org-limits",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{trunk_port}")),
            ("DIALTONE_RTP_PORTS", "48700-48799"),
            ("DIALTONE_MAX_CONCURRENT_CALLS", "1"),
            ("DIALTONE_ALLOWED_DESTINATIONS", "+1555"),
        ],
    );
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let auth = [("X-Internal-Key", "k")];
    let create = |number: &str| {
        send(http, "POST", "/api/calls/create", &auth, &body(&json!({"contact_id": "c", "phone_number": number})))
    };
    // Outside the allowed destinations: 403, nothing stored, nothing sent to the trunk.
    let r = create("+19005550100");
    assert_eq!(r.status, 403, "{:?}", r.json());
    assert_eq!(r.json()["error"]["code"], "destination_not_allowed");
    // The first allowed call is placed and answered; a second while it is up: 429.
    let r = create("+15551230001");
    assert_eq!(r.status, 201, "{:?}\n{}", r.json(), d.log_text());
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    wait_status(&d, http, &auth, &id, "in-progress", Duration::from_secs(10));
    let r = create("+15551230002");
    assert_eq!(r.status, 429, "{:?}", r.json());
    assert_eq!(r.json()["error"]["code"], "max_concurrent_calls");
    assert!(r.header("retry-after").is_some());
    let list = send(http, "GET", "/api/calls/list", &auth, b"").json();
    assert_eq!(list["data"]["total"], 1, "refused calls are not stored: {list}");
    // Once it ends, the next one goes through.
    assert_eq!(send(http, "POST", &format!("/api/calls/{id}/hangup"), &auth, b"").status, 202);
    wait_status(&d, http, &auth, &id, "completed", Duration::from_secs(10));
    let r = create("+15551230003");
    assert_eq!(r.status, 201, "{:?}\n{}", r.json(), d.log_text());
    let id2 = r.json()["data"]["id"].as_str().unwrap().to_string();
    wait_status(&d, http, &auth, &id2, "in-progress", Duration::from_secs(10));
    assert_eq!(send(http, "POST", &format!("/api/calls/{id2}/hangup"), &auth, b"").status, 202);
    wait_status(&d, http, &auth, &id2, "completed", Duration::from_secs(10));
    let _ = trunk.wait();
}

/// Issue 20's acceptance over real processes: two organizations made by the internal key,
/// each with its admin (placed in it by the internal key), a key the admin makes, a webhook
/// to a receiver of its own, and a recorded call through a SIPp trunk. Each reads only its
/// own calls and recordings (the other's answer 404, steering them too), each receiver gets
/// only its organization's events, and the internal key reads both, or one with
/// `X-Organization-Id`.
#[test]
fn two_organizations_share_a_dialtone_and_see_only_their_own() {
    let (mut trunk, trunk_port) = holding_trunk("orgs-trunk", 2);
    let receivers = [Receiver::start("orgs-hooks-a", free_port(), 0), Receiver::start("orgs-hooks-b", free_port(), 0)];
    let http = free_port();
    let d = Dialtone::serve(
        "orgs",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{trunk_port}")),
            ("DIALTONE_RTP_PORTS", "48900-48999"),
        ],
    );
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let internal = [("X-Internal-Key", "k")];
    // (organization, key, call) for each.
    let mut tenants: Vec<(String, String, String)> = Vec::new();
    for (i, (name, receiver)) in ["acme", "globex"].iter().zip(&receivers).enumerate() {
        // The second has a call policy: one call at a time, to +1 555 numbers only.
        let made = match i {
            0 => json!({"name": name}),
            _ => json!({"name": name, "max_concurrent_calls": 1, "allowed_destinations": ["+1555"]}),
        };
        let r = send(http, "POST", "/api/organizations", &internal, &body(&made));
        assert_eq!(r.status, 201, "{}", r.json());
        let org = r.json()["data"]["id"].as_str().unwrap().to_string();
        let email = format!("admin@{name}.test");
        let admin = json!({"email": email, "password": "a long passphrase", "role": "admin", "organization_id": org});
        assert_eq!(send(http, "POST", "/api/users", &internal, &body(&admin)).status, 201);
        let login = json!({"email": email, "password": "a long passphrase"});
        let r = send(http, "POST", "/api/v1/auth/user-login", &[], &body(&login));
        assert_eq!((r.status, &r.json()["user"]["organization_id"]), (200, &json!(org)), "{}", r.json());
        let jwt = format!("Bearer {}", r.json()["token"].as_str().unwrap());
        let perms = ["calls:read", "calls:write", "calls:hangup", "calls:recording", "webhooks:write"];
        let made = json!({"name": name, "permissions": perms});
        let r = send(http, "POST", "/api/api-keys", &[("Authorization", &jwt)], &body(&made));
        assert_eq!(r.status, 201, "{}", r.json());
        let key = r.json()["data"]["key"].as_str().unwrap().to_string();
        let auth = [("X-API-Key", key.as_str())];
        let hook = json!({"url": format!("http://127.0.0.1:{}/", receiver.port), "secret": SECRET});
        assert_eq!(send(http, "POST", "/api/webhooks", &auth, &body(&hook)).status, 201);
        let call = json!({"contact_id": name, "phone_number": format!("+155512300{i:02}"), "record": true});
        let r = send(http, "POST", "/api/calls/create", &auth, &body(&call));
        assert_eq!((r.status, &r.json()["data"]["organization_id"]), (201, &json!(org)), "{}", r.json());
        let id = r.json()["data"]["id"].as_str().unwrap().to_string();
        wait_status(&d, http, &auth, &id, "in-progress", Duration::from_secs(10));
        if i == 1 {
            // The engine holds it to its own policy, not the other's.
            let more = json!({"contact_id": name, "phone_number": "+15551230099"});
            let r = send(http, "POST", "/api/calls/create", &auth, &body(&more));
            assert_eq!((r.status, &r.json()["error"]["code"]), (429, &json!("max_concurrent_calls")), "{}", r.json());
            assert!(r.header("retry-after").is_some());
            let abroad = json!({"contact_id": name, "phone_number": "+442071234567"});
            let r = send(http, "POST", "/api/calls/create", &auth, &body(&abroad));
            assert_eq!((r.status, &r.json()["error"]["code"]), (403, &json!("destination_not_allowed")));
        }
        assert_eq!(send(http, "POST", &format!("/api/calls/{id}/hangup"), &auth, b"").status, 202);
        wait_status(&d, http, &auth, &id, "completed", Duration::from_secs(10));
        tenants.push((org, key, id));
    }
    // Each receiver hears its own organization's call, from initiated to its recording, and
    // nothing of the other's.
    for ((_, _, id), receiver) in tenants.iter().zip(&receivers) {
        let got = receiver.wait_for(Duration::from_secs(15), |e| e.iter().any(|x| x["event"] == "recording.ready"));
        let kinds = kinds(&got);
        assert!(
            kinds.starts_with(&["call.initiated".into()]) && kinds.contains(&"recording.ready".into()),
            "{kinds:?}"
        );
        for e in &got {
            let data = &e["body"]["data"];
            let call = data["id"].as_str().or(data["call_id"].as_str());
            assert_eq!((call, &e["valid"]), (Some(id.as_str()), &json!(true)), "{e}");
        }
    }
    // Each reads its own call and recording; the other's are as missing, and cannot be
    // steered; each list shows one call.
    for (i, (_, key, id)) in tenants.iter().enumerate() {
        let other = &tenants[1 - i].2;
        let auth = [("X-API-Key", key.as_str())];
        assert_eq!(send(http, "GET", &format!("/api/calls/{id}"), &auth, b"").status, 200);
        let rec = send(http, "GET", &format!("/api/calls/{id}/recording"), &auth, b"");
        assert_eq!((rec.status, rec.header("content-type")), (200, Some("audio/wav")), "{}", rec.head);
        assert_eq!(wav(&rec.body).0.channels, 2);
        for (method, path) in [
            ("GET", format!("/api/calls/{other}")),
            ("GET", format!("/api/calls/{other}/recording")),
            ("POST", format!("/api/calls/{other}/hangup")),
        ] {
            let r = send(http, method, &path, &auth, b"");
            assert_eq!((r.status, &r.json()["error"]["code"]), (404, &json!("not_found")), "{method} {path}");
        }
        let list = send(http, "GET", "/api/v1/calls", &auth, b"").json();
        assert_eq!((&list["data"]["total"], &list["data"]["calls"][0]["id"]), (&json!(1), &json!(id)), "{list}");
    }
    // The internal key reads across organizations, or inside the one it names.
    let all = send(http, "GET", "/api/calls/list", &internal, b"").json();
    assert_eq!(all["data"]["total"], 2, "{all}");
    let in_a = [("X-Internal-Key", "k"), ("X-Organization-Id", tenants[0].0.as_str())];
    let one = send(http, "GET", "/api/calls/list", &in_a, b"").json();
    assert_eq!((&one["data"]["total"], &one["data"]["calls"][0]["id"]), (&json!(1), &json!(tenants[0].2)), "{one}");
    assert_eq!(send(http, "GET", &format!("/api/calls/{}", tenants[1].2), &in_a, b"").status, 404);
    let r = send(
        http,
        "POST",
        "/api/calls/create",
        &internal,
        &body(&json!({"contact_id": "c", "phone_number": "+15551230009"})),
    );
    assert_eq!(r.status, 400, "several organizations and none named: {}", r.json());
    let _ = trunk.wait();
}

/// Issue 15's first step: `sip_headers` on create reach the INVITE a SIPp trunk receives (it
/// checks `X-Customer-Id`), and `ring_timeout` cancels a call nobody answers, which ends
/// `no-answer` with the reason.
#[test]
fn custom_headers_reach_the_trunk_and_ring_timeout_cancels() {
    sipp();
    let trunk = SippPeer::start(
        "ring-timeout-trunk",
        &["-sf", &root().join("fixtures/sipp/uas_ring_check_header.xml").to_string_lossy()],
    );
    let http = free_port();
    let d = Dialtone::serve(
        "ring-timeout",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{}", trunk.port)),
            ("DIALTONE_RTP_PORTS", "48600-48649"),
        ],
    );
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let auth = [("X-Internal-Key", "k")];
    let body = json!({"contact_id": "c", "phone_number": "+15551230000", "sip_headers": {"X-Customer-Id": "c-42"}, "ring_timeout": 2});
    let started = Instant::now();
    let r = send(http, "POST", "/api/calls/create", &auth, &body.to_string().into_bytes());
    assert_eq!(r.status, 201, "{}", r.json());
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    let done = wait_status(&d, http, &auth, &id, "no-answer", Duration::from_secs(10));
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(6), "took {took:?}");
    assert_eq!(
        (&done["reason"], &done["sip_headers"]["X-Customer-Id"]),
        (&json!("ring_timeout"), &json!("c-42")),
        "{done}"
    );
    let (code, (ok, failed)) = trunk.finish(Duration::from_secs(10));
    assert_eq!((code, ok, failed), (Some(0), 1, 0), "the trunk's check of the header\n{}", d.log_text());
}
