//! The HTTP API over a real socket: the envelope on every answer, X-Internal-Key auth,
//! parameter errors naming the field, and a restart that finds every call and closes the
//! ones left unfinished.

mod common;

use common::*;
use dialtone_api::store::{CallStatus, NewCall, Store};
use serde_json::Value;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One HTTP/1.1 request; the status and the parsed JSON body.
fn http(port: u16, method: &str, path: &str, key: Option<&str>) -> (u16, Value) {
    request(port, method, path, key, "")
}

/// One HTTP/1.1 request with a JSON body.
fn request(port: u16, method: &str, path: &str, key: Option<&str>, body: &str) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = key.map(|k| ("X-Internal-Key", k)).into_iter().collect();
    let r = common::http::send(port, method, path, &headers, body.as_bytes());
    (r.status, r.json())
}

fn assert_error(r: &(u16, Value), status: u16, mentions: &str) {
    assert_eq!(r.0, status, "{}", r.1);
    assert_eq!(r.1["success"], false, "{}", r.1);
    assert!(r.1["data"].is_null(), "{}", r.1);
    let msg = r.1["error"]["message"].as_str().unwrap_or("");
    assert!(r.1["error"]["code"].is_string() && msg.contains(mentions), "{}", r.1);
}

#[test]
fn api_serves_calls_from_the_store_with_the_envelope_and_auth() {
    // A data directory as a crashed run left it: one call over, one still talking.
    let data = temp_dir("api-data");
    {
        let mut s = Store::open(&data.join("dialtone.db")).unwrap();
        let call = |id: &'static str| NewCall {
            id,
            contact_id: "contact_123",
            phone_number: "+15551230000",
            from_number: Some("+15559870000"),
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
        s.insert_call(&call("call_done")).unwrap();
        s.set_status("call_done", CallStatus::InProgress, Some(200), None, 1_704_830_401_000).unwrap();
        s.set_status("call_done", CallStatus::Completed, None, None, 1_704_830_521_000).unwrap();
        s.insert_call(&call("call_live")).unwrap();
        s.set_status("call_live", CallStatus::InProgress, Some(200), None, 1_704_830_402_000).unwrap();
    }
    let http_port = free_port();
    let d = Dialtone::serve(
        "api",
        &[
            ("DIALTONE_DATA_DIR", data.to_str().unwrap()),
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http_port}")),
            ("DIALTONE_INTERNAL_KEY", "k3y-for-tests"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", http_port)).is_err() {
        assert!(Instant::now() < deadline, "the API did not listen; log:\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let key = Some("k3y-for-tests");

    let (status, health) = http(http_port, "GET", "/healthz", None);
    assert_eq!((status, &health["success"], &health["data"]["status"]), (200, &Value::Bool(true), &Value::from("ok")));

    // Auth: none, wrong, right.
    assert_error(&http(http_port, "GET", "/api/calls/list", None), 401, "missing credentials");
    assert_error(&http(http_port, "GET", "/api/calls/list", Some("k3y-for-test")), 401, "invalid credentials");
    let (status, list) = http(http_port, "GET", "/api/calls/list", key);
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        (&list["success"], &list["error"], &list["data"]["total"]),
        (&Value::Bool(true), &Value::Null, &Value::from(2))
    );

    // The restart closed the unfinished call; the finished one kept its duration.
    let (status, live) = http(http_port, "GET", "/api/calls/call_live", key);
    assert_eq!(status, 200, "{live}");
    assert_eq!((&live["data"]["status"], &live["data"]["reason"]), (&Value::from("failed"), &Value::from("restart")));
    assert_eq!(live["data"]["events"].as_array().unwrap().last().unwrap()["detail"], "failed");
    let (_, done) = http(http_port, "GET", "/api/calls/call_done", key);
    assert_eq!((&done["data"]["status"], &done["data"]["duration"]), (&Value::from("completed"), &Value::from(120.0)));
    assert_eq!(done["data"]["created_at"], "2024-01-09T20:00:00Z");
    let (_, failed) = http(http_port, "GET", "/api/calls/list?status=failed&contact_id=contact_123&limit=10", key);
    assert_eq!(failed["data"]["total"], 1);
    assert_eq!(failed["data"]["calls"][0]["id"], "call_live");

    // The date range: both calls were created at 2024-01-09T20:00:00Z.
    let (_, day) = http(http_port, "GET", "/api/calls/list?from=2024-01-09&to=2024-01-10", key);
    assert_eq!(day["data"]["total"], 2, "{day}");
    let (_, later) = http(http_port, "GET", "/api/calls/list?from=2024-01-09T20:00:01Z", key);
    assert_eq!(later["data"]["total"], 0, "{later}");
    assert_error(&http(http_port, "GET", "/api/calls/list?from=yesterday", key), 400, "from");

    // Bad input names the field; unknown things get the envelope too.
    assert_error(&http(http_port, "GET", "/api/calls/list?limit=5001", key), 400, "limit");
    assert_error(&http(http_port, "GET", "/api/calls/list?limit=abc", key), 400, "limit");
    assert_error(&http(http_port, "GET", "/api/calls/list?status=done", key), 400, "status");
    assert_error(&http(http_port, "GET", "/api/calls/call_nope", key), 404, "no such call");
    assert_error(&http(http_port, "GET", "/api/nothing", key), 404, "no such endpoint");
    assert_error(&http(http_port, "POST", "/healthz", None), 405, "method not allowed");
    assert!(d.log_text().contains("closed as failed (reason restart)"), "{}", d.log_text());
}

/// Waits for the API to listen on `port`.
fn wait_api(d: &Dialtone, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the API did not listen; log:\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn create_places_a_real_call_through_the_trunk_and_persists_its_life() {
    sipp();
    // The trunk: SIPp answers, talks 1 s, hangs up.
    let trunk =
        SippPeer::start("api-trunk", &["-sf", &root().join("fixtures/sipp/uas_answer_bye.xml").to_string_lossy()]);
    let http_port = free_port();
    let d = Dialtone::serve(
        "api-create",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http_port}")),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{}", trunk.port)),
            ("DIALTONE_RTP_PORTS", "47400-47499"),
        ],
    );
    wait_api(&d, http_port);
    let key = Some("k");

    // Bad input first: each field in turn, broken JSON, a body too large, no credentials.
    let post = |body: &str| request(http_port, "POST", "/api/calls/create", key, body);
    assert_error(&post(r#"{"phone_number": "+15551230000"}"#), 400, "contact_id");
    assert_error(&post(r#"{"contact_id": "", "phone_number": "+15551230000"}"#), 400, "contact_id");
    assert_error(&post(r#"{"contact_id": "c1"}"#), 400, "phone_number");
    assert_error(&post(r#"{"contact_id": "c1", "phone_number": "5551230000"}"#), 400, "phone_number");
    assert_error(
        &post(r#"{"contact_id": "c1", "phone_number": "+15551230000", "from_number": "x"}"#),
        400,
        "from_number",
    );
    assert_error(&post(r#"{"contact_id": "c1", "phone_number": "+15551230000", "record": "yes"}"#), 400, "record");
    assert_error(&post(r#"{"contact_id": "#), 400, "body");
    assert_error(&post(&format!(r#"{{"contact_id": "{}"}}"#, "x".repeat(70_000))), 413, "bytes");
    // Far over the limit (4 MiB): the client sends all of it without its connection being
    // reset under it, and reads the 413 envelope.
    {
        use std::io::{Read, Write};
        let big = format!(r#"{{"contact_id": "{}"}}"#, "x".repeat(4 << 20));
        let mut s = TcpStream::connect(("127.0.0.1", http_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let head = format!(
            "POST /api/calls/create HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Internal-Key: k\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            big.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(big.as_bytes()).expect("the connection was reset while the body was being sent");
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("the answer");
        assert!(raw.starts_with("HTTP/1.1 413") && raw.contains("payload_too_large"), "{raw}");
    }
    assert_error(&request(http_port, "POST", "/api/calls/create", None, "{}"), 401, "credentials");
    let (_, none) = http(http_port, "GET", "/api/calls/list", key);
    assert_eq!(none["data"]["total"], 0, "a refused create stored a call: {none}");

    // The real one.
    let (status, created) =
        post(r#"{"contact_id": "contact_123", "phone_number": "+15551230000", "from_number": "+15559870000"}"#);
    assert_eq!(status, 201, "{created}");
    assert_eq!((&created["success"], &created["data"]["status"]), (&Value::Bool(true), &Value::from("initiating")));
    let id = created["data"]["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("call_"), "{id}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let call = loop {
        let (_, c) = http(http_port, "GET", &format!("/api/calls/{id}"), key);
        if c["data"]["status"] == "completed" || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = d.log_text();
    assert_eq!(call["data"]["status"], "completed", "{call}\n{log}");
    let duration = call["data"]["duration"].as_f64().unwrap();
    assert!((0.8..3.0).contains(&duration), "talked {duration} s (SIPp hangs up after 1 s)");
    let events: Vec<&str> =
        call["data"]["events"].as_array().unwrap().iter().map(|e| e["detail"].as_str().unwrap()).collect();
    assert_eq!(events.len(), 5, "{call}");
    assert_eq!(
        [events[0], events[2], events[3], events[4]],
        ["initiating", "in-progress", "remote", "completed"],
        "{call}"
    );
    assert_eq!(call["data"]["ended_by"], "remote", "SIPp hung up: {call}");
    assert!(events[1].starts_with("trunk default (UDP:127.0.0.1:") && events[1].contains(": INVITE sip:+15551230000@"));
    let (code, stats) = trunk.finish(Duration::from_secs(10));
    assert_eq!((code, stats), (Some(0), (1, 0)), "the SIPp trunk\n{log}");
    let (_, listed) = http(http_port, "GET", "/api/calls/list?status=completed&contact_id=contact_123", key);
    assert_eq!(
        (&listed["data"]["total"], &listed["data"]["calls"][0]["id"]),
        (&Value::from(1), &Value::from(id.as_str()))
    );
    assert!(log.contains("INVITE sip:+15551230000@127.0.0.1") || log.contains("placing an API call"), "{log}");
}

/// A request with extra header lines (`Name: value\r\n` each).
fn with_headers(port: u16, method: &str, path: &str, headers: &str, body: &str) -> (u16, Value) {
    let list: Vec<(&str, &str)> =
        headers.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim(), v.trim())).collect();
    let r = common::http::send(port, method, path, &list, body.as_bytes());
    (r.status, r.json())
}

#[test]
fn api_keys_are_shown_once_hashed_scoped_and_revocable() {
    let http_port = free_port();
    let d = Dialtone::serve(
        "api-keys",
        &[("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http_port}")), ("DIALTONE_INTERNAL_KEY", "k")],
    );
    wait_api(&d, http_port);
    let internal = Some("k");
    let (status, created) = request(
        http_port,
        "POST",
        "/api/api-keys",
        internal,
        r#"{"name": "reader", "permissions": ["calls.read", "keys:write", "calls:read"]}"#,
    );
    assert_eq!(status, 201, "{created}");
    let secret = created["data"]["key"].as_str().unwrap().to_string();
    let id = created["data"]["id"].as_str().unwrap().to_string();
    assert!(secret.starts_with("dk_") && secret.len() > 30, "{secret}");
    assert_eq!(created["data"]["permissions"], serde_json::json!(["calls:read", "keys:write"]));

    // The key works as Bearer and as X-API-Key, within its permissions.
    let bearer = format!("Authorization: Bearer {secret}\r\n");
    let xkey = format!("X-API-Key: {secret}\r\n");
    let (status, list) = with_headers(http_port, "GET", "/api/calls/list", &bearer, "");
    assert_eq!((status, &list["success"]), (200, &Value::Bool(true)), "{list}");
    assert_eq!(with_headers(http_port, "GET", "/api/calls/list", &xkey, "").0, 200);
    let forbidden = with_headers(
        http_port,
        "POST",
        "/api/calls/create",
        &bearer,
        r#"{"contact_id":"c","phone_number":"+15551230000"}"#,
    );
    assert_error(&forbidden, 403, "calls:write");
    assert_error(&with_headers(http_port, "GET", "/api/api-keys", &bearer, ""), 403, "keys:read");
    // It cannot mint a key with more than it holds.
    let more =
        with_headers(http_port, "POST", "/api/api-keys", &bearer, r#"{"name":"x","permissions":["calls:write"]}"#);
    assert_error(&more, 403, "calls:write");
    assert_error(
        &request(http_port, "POST", "/api/api-keys", internal, r#"{"name":"x","permissions":["calls:fly"]}"#),
        400,
        "permissions",
    );
    assert_error(&request(http_port, "POST", "/api/api-keys", internal, r#"{"permissions":[]}"#), 400, "name");

    // The list never shows the secret; the store keeps only its hash.
    let (_, keys) = http(http_port, "GET", "/api/api-keys", internal);
    assert_eq!(keys["data"]["keys"][0]["id"], id.as_str());
    assert!(!keys.to_string().contains(&secret), "{keys}");
    assert!(keys["data"]["keys"][0]["last_used_at"].is_string(), "{keys}");
    let db = std::fs::read(d.data.join("dialtone.db")).unwrap_or_default();
    let wal = std::fs::read(d.data.join("dialtone.db-wal")).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&[db, wal].concat()).contains(&secret), "the secret is on disk");

    // Unknown and revoked keys are refused.
    assert_error(&with_headers(http_port, "GET", "/api/calls/list", "X-API-Key: dk_nope\r\n", ""), 401, "invalid");
    let (status, _) = request(http_port, "DELETE", &format!("/api/api-keys/{id}"), internal, "");
    assert_eq!(status, 200);
    assert_error(&with_headers(http_port, "GET", "/api/calls/list", &bearer, ""), 401, "invalid");
    assert_error(&request(http_port, "DELETE", &format!("/api/api-keys/{id}"), internal, ""), 404, "no such live key");
}

#[test]
fn control_endpoints_hold_resume_send_dtmf_and_transfer_a_live_call() {
    sipp();
    let trunk =
        SippPeer::start("api-control", &["-sf", &root().join("fixtures/sipp/uas_api_control.xml").to_string_lossy()]);
    let http_port = free_port();
    let d = Dialtone::serve(
        "api-control",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http_port}")),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{}", trunk.port)),
            ("DIALTONE_RTP_PORTS", "47500-47599"),
        ],
    );
    wait_api(&d, http_port);
    let key = Some("k");
    let (status, created) =
        request(http_port, "POST", "/api/calls/create", key, r#"{"contact_id": "c9", "phone_number": "+15551230009"}"#);
    assert_eq!(status, 201, "{created}");
    let id = created["data"]["id"].as_str().unwrap().to_string();
    let status_of = |id: &str| http(http_port, "GET", &format!("/api/calls/{id}"), key).1["data"]["status"].clone();
    let wait_for = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while status_of(&id) != want {
            assert!(Instant::now() < deadline, "never {want}: {}\n{}", status_of(&id), d.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("in-progress");
    let post = |path: &str, body: &str| request(http_port, "POST", &format!("/api/calls/{id}/{path}"), key, body);

    // Bad input and unknown calls first.
    assert_error(&post("dtmf", r#"{"digits": "12x"}"#), 400, "digits");
    assert_error(&post("transfer", r#"{"destination": "carol"}"#), 400, "destination");
    assert_error(&request(http_port, "POST", "/api/calls/call_nope/hangup", key, ""), 404, "no such call");

    for (path, body) in [("hold", ""), ("unhold", ""), ("dtmf", r#"{"digits": "1#"}"#)] {
        let (status, r) = post(path, body);
        assert_eq!((status, &r["data"]["action"]), (202, &Value::from(path)), "{r}");
        // Each re-INVITE is answered and ACKed before the next goes.
        std::thread::sleep(Duration::from_millis(400));
    }
    let (status, r) = post("transfer", r#"{"destination": "sip:carol@example.net"}"#);
    assert_eq!(status, 202, "{r}");
    // The trunk reports the transfer done (NOTIFY 200): dialtone leaves the call.
    wait_for("completed");
    let (code, stats) = trunk.finish(Duration::from_secs(10));
    let log = d.log_text();
    assert_eq!((code, stats), (Some(0), (1, 0)), "the SIPp trunk saw hold, unhold, REFER and BYE\n{log}");
    assert!(log.contains("Dtmf(\"1#\")"), "{log}");
    // The answered re-INVITEs are in the call's timeline.
    let call = http(http_port, "GET", &format!("/api/calls/{id}"), key).1;
    let steps: Vec<(&str, &str)> = call["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["detail"].as_str().unwrap()))
        .filter(|(k, _)| *k == "hold" || *k == "unhold")
        .collect();
    assert_eq!(steps, [("hold", "200 OK"), ("unhold", "200 OK")], "{call}");
    // A finished call cannot be steered.
    assert_error(&post("hangup", ""), 409, "completed");
}

#[test]
fn hangup_ends_a_live_call_with_bye() {
    sipp();
    // This trunk rings reliably (PRACK), answers, and waits for our BYE.
    let trunk =
        SippPeer::start("api-hangup", &["-sf", &root().join("fixtures/sipp/uas_reliable_180.xml").to_string_lossy()]);
    let http_port = free_port();
    let d = Dialtone::serve(
        "api-hangup",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http_port}")),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{}", trunk.port)),
            ("DIALTONE_RTP_PORTS", "47600-47699"),
        ],
    );
    wait_api(&d, http_port);
    let key = Some("k");
    let (_, created) =
        request(http_port, "POST", "/api/calls/create", key, r#"{"contact_id": "c", "phone_number": "+15551230001"}"#);
    let id = created["data"]["id"].as_str().unwrap().to_string();
    let get = || http(http_port, "GET", &format!("/api/calls/{id}"), key).1;
    let deadline = Instant::now() + Duration::from_secs(10);
    while get()["data"]["status"] != "in-progress" {
        assert!(Instant::now() < deadline, "{}\n{}", get(), d.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Record a stretch of the call on demand: start, (not ready yet), stop, ready, download.
    let rec = format!("/api/calls/{id}/recording");
    let (status, r) = request(http_port, "POST", &format!("{rec}/start"), key, "");
    assert_eq!((status, &r["data"]["action"]), (202, &Value::from("recording_start")), "{r}");
    while get()["data"]["recording"]["state"] != "recording" {
        assert!(Instant::now() < deadline, "{}\n{}", get(), d.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_error(&http(http_port, "GET", &rec, key), 409, "still being recorded");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(request(http_port, "POST", &format!("{rec}/stop"), key, "").0, 202);
    while get()["data"]["recording"]["state"] != "ready" {
        assert!(Instant::now() < deadline, "{}\n{}", get(), d.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    let wav = common::http::send(http_port, "GET", &rec, &[("X-Internal-Key", "k")], b"");
    assert_eq!(wav.status, 200);
    let reader = hound::WavReader::new(std::io::Cursor::new(&wav.body)).expect("a WAV");
    let secs = reader.duration() as f64 / f64::from(reader.spec().sample_rate);
    assert!((0.8..1.6).contains(&secs), "recorded {secs:.2} s between start and stop");

    let (status, r) = request(http_port, "POST", &format!("/api/calls/{id}/hangup"), key, "");
    assert_eq!(status, 202, "{r}");
    while get()["data"]["status"] != "completed" {
        assert!(Instant::now() < deadline, "{}\n{}", get(), d.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let events: Vec<String> =
        get()["data"]["events"].as_array().unwrap().iter().map(|e| e["detail"].as_str().unwrap().to_string()).collect();
    // The INVITE through the trunk is an event too (issue 15), between the first two.
    assert!(events[1].starts_with("trunk default"), "{events:?}");
    assert_eq!(
        [&events[..1], &events[2..]].concat(),
        ["initiating", "ringing", "in-progress", "recording", "ready", "dialtone", "completed"]
    );
    let (code, stats) = trunk.finish(Duration::from_secs(10));
    assert_eq!((code, stats), (Some(0), (1, 0)), "{}", d.log_text());
}

#[test]
fn admin_logs_in_for_a_jwt_and_bad_tokens_are_refused() {
    let http_port = free_port();
    let d = Dialtone::serve(
        "api-jwt",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http_port}")),
            ("DIALTONE_ADMIN_EMAIL", "Admin@Example.test"),
            ("DIALTONE_ADMIN_PASSWORD", "correct horse battery"),
        ],
    );
    wait_api(&d, http_port);
    let login = |body: &str| request(http_port, "POST", "/api/v1/auth/user-login", None, body);
    assert_error(&login(r#"{"email": "admin@example.test", "password": "wrong"}"#), 401, "wrong e-mail or password");
    assert_error(&login(r#"{"email": "nobody@example.test", "password": "x"}"#), 401, "wrong e-mail or password");
    assert_error(&login(r#"{"password": "x"}"#), 400, "email");
    let (status, r) = login(r#"{"email": "admin@example.test", "password": "correct horse battery"}"#);
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        (&r["user"]["role"], &r["data"]["user"]["email"]),
        (&Value::from("admin"), &Value::from("admin@example.test"))
    );
    let token = r["token"].as_str().unwrap().to_string();
    assert_eq!(r["data"]["token"], token.as_str());

    let bearer = |t: &str| format!("Authorization: Bearer {t}\r\n");
    let (status, list) = with_headers(http_port, "GET", "/api/calls/list", &bearer(&token), "");
    assert_eq!(status, 200, "{list}");
    // The admin holds every permission, so it can mint any key.
    let (status, _) = with_headers(
        http_port,
        "POST",
        "/api/api-keys",
        &bearer(&token),
        r#"{"name":"k","permissions":["calls:write"]}"#,
    );
    assert_eq!(status, 201);

    // Tampered, alg none, expired, and signed with another key: all 401.
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!("{}.{}x.{}", parts[0], parts[1], parts[2]);
    assert_error(&with_headers(http_port, "GET", "/api/calls/list", &bearer(&tampered), ""), 401, "token");
    let b64 = |s: &str| -> String {
        // base64url without padding (RFC 7515 §2)
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for c in s.as_bytes().chunks(3) {
            let n = c.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    };
    let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    assert_error(&with_headers(http_port, "GET", "/api/calls/list", &bearer(&none), ""), 401, "token");
    let secret = std::fs::read(d.data.join("jwt.secret")).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let expired = dialtone_api::http::issue_jwt(
        &secret,
        r["user"]["id"].as_str().unwrap(),
        &["calls:read".into()],
        now - 25 * 3600,
    );
    assert_error(&with_headers(http_port, "GET", "/api/calls/list", &bearer(&expired), ""), 401, "token");
    // A token we sign for the admin with fewer permissions: those bind it.
    let admin_id = r["user"]["id"].as_str().unwrap().to_string();
    let fresh = dialtone_api::http::issue_jwt(&secret, &admin_id, &["calls:read".into()], now);
    assert_eq!(with_headers(http_port, "GET", "/api/calls/list", &bearer(&fresh), "").0, 200);
    let foreign = dialtone_api::http::issue_jwt(&[7u8; 32], &admin_id, &["calls:read".into()], now);
    assert_error(&with_headers(http_port, "GET", "/api/calls/list", &bearer(&foreign), ""), 401, "token");
    // A token's permissions bind it: calls:read only cannot create.
    let create = with_headers(
        http_port,
        "POST",
        "/api/calls/create",
        &bearer(&fresh),
        r#"{"contact_id":"c","phone_number":"+15551230000"}"#,
    );
    assert_error(&create, 403, "calls:write");
}
