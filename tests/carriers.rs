//! Issue 15's outbound acceptance against real carriers (SIPp on loopback): trunks from
//! the TOML file's `[[trunk]]`, failover from a carrier that answers 503 and from one that
//! never answers (within Timer B), each attempt an event on the call, caller ID asserted
//! as the trunk says, and the per-trunk limit that moves a call to the next trunk, then
//! answers 429 with `Retry-After` when none has room.

mod common;

use common::http::{send, serve_configured as serve, wait_status};
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const AUTH: [(&str, &str); 1] = [("X-Internal-Key", "k")];

fn create(http: u16, body: Value) -> common::http::Reply {
    send(http, "POST", "/api/calls/create", &AUTH, body.to_string().as_bytes())
}

/// The call's events of `kind`, their details.
fn events(http: u16, id: &str, kind: &str) -> Vec<String> {
    let c = send(http, "GET", &format!("/api/calls/{id}"), &AUTH, b"").json();
    let list = c["data"]["events"].as_array().cloned().unwrap_or_default();
    list.iter().filter(|e| e["kind"] == kind).map(|e| e["detail"].as_str().unwrap_or("").to_string()).collect()
}

#[test]
fn a_carrier_answering_503_hands_the_call_to_the_next_with_the_identity_asserted() {
    sipp();
    let down = SippPeer::start("carrier-503", &["-sf", &root().join("fixtures/sipp/uas_503.xml").to_string_lossy()]);
    let up = SippPeer::start(
        "carrier-pai",
        &["-sf", &root().join("fixtures/sipp/uas_answer_check_pai.xml").to_string_lossy()],
    );
    let toml = format!(
        "[[trunk]]\nname = \"first\"\nuri = \"sip:127.0.0.1:{}\"\npriority = 1\n\n\
         [[trunk]]\nname = \"second\"\nuri = \"sip:127.0.0.1:{}\"\npriority = 2\nprivacy = true\n",
        down.port, up.port
    );
    let (d, http) = serve("carrier-503", &toml, &[("DIALTONE_RTP_PORTS", "48700-48719")]);
    let r = create(
        http,
        json!({"contact_id": "c", "phone_number": "+15550100", "from_number": "+15550199",
               "sip_headers": {"X-Customer-Id": "c-42"}}),
    );
    assert_eq!(r.status, 201, "{}", r.json());
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    wait_status(&d, http, &AUTH, &id, "completed", Duration::from_secs(15));
    let attempts = events(http, &id, "attempt");
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert!(attempts[0].starts_with("trunk first") && attempts[1].starts_with("trunk second"), "{attempts:?}");
    let moves = events(http, &id, "failover");
    assert!(moves.len() == 1 && moves[0].contains("503") && moves[0].contains("trying trunk second"), "{moves:?}");
    assert_eq!(down.finish(Duration::from_secs(10)), (Some(0), (1, 0)), "the 503 carrier\n{}", d.log_text());
    assert_eq!(up.finish(Duration::from_secs(10)), (Some(0), (1, 0)), "the carrier checking PAI\n{}", d.log_text());
}

#[test]
fn a_dead_carrier_is_left_after_timer_b() {
    sipp();
    // A carrier that never answers: a bound socket nobody reads.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let up =
        SippPeer::start("carrier-up", &["-sf", &root().join("fixtures/sipp/uas_answer_bye.xml").to_string_lossy()]);
    let toml = format!(
        "[[trunk]]\nname = \"dead\"\nuri = \"sip:{}\"\npriority = 1\n\n\
         [[trunk]]\nname = \"alive\"\nuri = \"sip:127.0.0.1:{}\"\npriority = 2\n",
        dead.local_addr().unwrap(),
        up.port
    );
    // T1 = 100 ms: Timer B (64·T1) is 6.4 s.
    let (d, http) =
        serve("carrier-dead", &toml, &[("DIALTONE_RTP_PORTS", "48720-48739"), ("DIALTONE_SIP_T1_MS", "100")]);
    let started = Instant::now();
    let r = create(http, json!({"contact_id": "c", "phone_number": "+15550100"}));
    assert_eq!(r.status, 201, "{}", r.json());
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    wait_status(&d, http, &AUTH, &id, "in-progress", Duration::from_secs(15));
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(6400) && took < Duration::from_secs(12), "answered after {took:?}");
    wait_status(&d, http, &AUTH, &id, "completed", Duration::from_secs(10));
    let moves = events(http, &id, "failover");
    assert!(moves.len() == 1 && moves[0].contains("Timer B") && moves[0].contains("trying trunk alive"), "{moves:?}");
    assert_eq!(events(http, &id, "attempt").len(), 2);
    assert_eq!(up.finish(Duration::from_secs(10)), (Some(0), (1, 0)), "{}", d.log_text());
}

#[test]
fn a_full_trunk_sends_the_call_to_the_next_then_429() {
    sipp();
    let ring = root().join("fixtures/sipp/uas_ring_forever.xml");
    let a = SippPeer::start_calls("carrier-a", &["-sf", &ring.to_string_lossy()], 2);
    let b = SippPeer::start("carrier-b", &["-sf", &ring.to_string_lossy()]);
    let toml = format!(
        "[[trunk]]\nname = \"a\"\nuri = \"sip:127.0.0.1:{}\"\npriority = 1\nmax_concurrent_calls = 2\n\n\
         [[trunk]]\nname = \"b\"\nuri = \"sip:127.0.0.1:{}\"\npriority = 2\nmax_concurrent_calls = 1\n",
        a.port, b.port
    );
    let (d, http) = serve("carrier-limits", &toml, &[("DIALTONE_RTP_PORTS", "48740-48779")]);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = create(http, json!({"contact_id": "c", "phone_number": "+15550100"}));
        assert_eq!(r.status, 201, "{}", r.json());
        let id = r.json()["data"]["id"].as_str().unwrap().to_string();
        wait_status(&d, http, &AUTH, &id, "ringing", Duration::from_secs(10));
        ids.push(id);
    }
    let trunk_of = |id: &str| events(http, id, "attempt").first().cloned().unwrap_or_default();
    assert!(trunk_of(&ids[0]).starts_with("trunk a") && trunk_of(&ids[1]).starts_with("trunk a"));
    assert!(trunk_of(&ids[2]).starts_with("trunk b"), "the third goes to the next trunk: {}", trunk_of(&ids[2]));
    let r = create(http, json!({"contact_id": "c", "phone_number": "+15550100"}));
    assert_eq!(r.status, 429, "{}", r.json());
    assert_eq!(r.json()["error"]["code"], "trunk_limit", "{}", r.json());
    assert_eq!(r.header("retry-after"), Some("1"));
    let listed = send(http, "GET", "/api/calls/list", &AUTH, b"").json();
    assert_eq!(listed["data"]["total"], 3, "the refused call is not stored: {listed}");
    let m = send(http, "GET", "/metrics", &AUTH, b"");
    let text = String::from_utf8_lossy(&m.body).to_string();
    assert!(text.contains("dialtone_trunk_calls{trunk=\"a\"} 2"), "{text}");
    assert!(text.contains("dialtone_trunk_calls{trunk=\"b\"} 1"), "{text}");
    for id in &ids {
        let r = send(http, "POST", &format!("/api/calls/{id}/hangup"), &AUTH, b"");
        assert!(r.status < 300, "{}", r.json());
        wait_status(&d, http, &AUTH, id, "canceled", Duration::from_secs(10));
    }
    // Their places are free again.
    let r = create(http, json!({"contact_id": "c", "phone_number": "+15550100"}));
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!(a.finish(Duration::from_secs(10)).1, (2, 0), "{}", d.log_text());
    assert_eq!(b.finish(Duration::from_secs(10)).1, (1, 0), "{}", d.log_text());
}

/// Polls `GET /api/trunks` until the trunk named `name` satisfies `ok` (bounded).
fn wait_trunk(d: &Dialtone, http: u16, name: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = send(http, "GET", "/api/trunks", &AUTH, b"").json();
        let found = list["data"]["trunks"].as_array().and_then(|l| l.iter().find(|t| t["name"] == name).cloned());
        if let Some(t) = found.filter(|t| ok(t)) {
            return t;
        }
        assert!(Instant::now() < deadline, "trunk {name} never as wanted: {list}\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_organizations_trunk_made_through_the_api_carries_the_numbers_of_its_prefix() {
    sipp();
    let carrier =
        SippPeer::start("carrier-api", &["-sf", &root().join("fixtures/sipp/uas_answer_bye.xml").to_string_lossy()]);
    let (d, http) = serve("carrier-api", "", &[("DIALTONE_RTP_PORTS", "48780-48799")]);
    let body = json!({"name": "uk", "uri": format!("sip:127.0.0.1:{}", carrier.port), "prefixes": ["+44"],
                      "codecs": ["PCMU"], "max_concurrent_calls": 5});
    let r = send(http, "POST", "/api/trunks", &AUTH, body.to_string().as_bytes());
    assert_eq!(r.status, 201, "{}", r.json());
    // The engine has it once it reports its status.
    wait_trunk(&d, http, "uk", |t| t["status"].is_object());
    let r = create(http, json!({"contact_id": "c", "phone_number": "+15550100"}));
    assert_eq!(r.status, 503, "no trunk serves +1: {}", r.json());
    let r = create(http, json!({"contact_id": "c", "phone_number": "+442071234567"}));
    assert_eq!(r.status, 201, "{}", r.json());
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    wait_status(&d, http, &AUTH, &id, "in-progress", Duration::from_secs(10));
    wait_trunk(&d, http, "uk", |t| t["status"]["calls"] == 1);
    wait_status(&d, http, &AUTH, &id, "completed", Duration::from_secs(10));
    assert!(events(http, &id, "attempt")[0].starts_with("trunk uk"));
    wait_trunk(&d, http, "uk", |t| t["status"]["calls"] == 0);
    assert_eq!(carrier.finish(Duration::from_secs(10)), (Some(0), (1, 0)), "{}", d.log_text());
}

#[test]
fn options_keep_alives_mark_a_trunk_up_then_down() {
    sipp();
    let carrier = SippPeer::start_calls(
        "carrier-options",
        &["-sf", &root().join("fixtures/sipp/uas_options.xml").to_string_lossy()],
        3,
    );
    let toml =
        format!("[[trunk]]\nname = \"probed\"\nuri = \"sip:127.0.0.1:{}\"\noptions_interval = 1\n", carrier.port);
    let (d, http) = serve("carrier-options", &toml, &[("DIALTONE_RTP_PORTS", "48800-48819")]);
    let t = wait_trunk(&d, http, "probed", |t| t["status"]["options_rtt_ms"].is_number());
    assert_eq!((&t["source"], &t["status"]["up"]), (&json!("settings"), &json!(true)), "{t}");
    assert_eq!(t["status"]["last_options_status"], 200, "{t}");
    assert!(t["status"]["last_options_at"].is_string(), "{t}");
    // After three answers the carrier is gone: the next probe finds the last unanswered.
    let t = wait_trunk(&d, http, "probed", |t| t["status"]["up"] == false);
    assert_eq!(t["status"]["up"], false);
    let m = send(http, "GET", "/metrics", &AUTH, b"");
    let text = String::from_utf8_lossy(&m.body).to_string();
    assert!(text.contains("dialtone_trunk_up{trunk=\"probed\"} 0"), "{text}");
    let r = create(http, json!({"contact_id": "c", "phone_number": "+15550100"}));
    assert_eq!(r.status, 503, "the only trunk is down: {}", r.json());
    assert_eq!(carrier.finish(Duration::from_secs(10)), (Some(0), (3, 0)), "{}", d.log_text());
}

#[test]
fn dialtone_max_calls_caps_calls_of_every_kind() {
    sipp();
    let ring = root().join("fixtures/sipp/uas_ring_forever.xml");
    let carrier = SippPeer::start("carrier-max-calls", &["-sf", &ring.to_string_lossy()]);
    let toml = format!("[[trunk]]\nname = \"only\"\nuri = \"sip:127.0.0.1:{}\"\n", carrier.port);
    let (d, http) = serve("max-calls", &toml, &[("DIALTONE_RTP_PORTS", "48820-48839"), ("DIALTONE_MAX_CALLS", "1")]);
    let r = create(http, json!({"contact_id": "c", "phone_number": "+15550100"}));
    assert_eq!(r.status, 201, "{}", r.json());
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    wait_status(&d, http, &AUTH, &id, "ringing", Duration::from_secs(10));
    let r = create(http, json!({"contact_id": "c", "phone_number": "+15550100"}));
    assert_eq!((r.status, &r.json()["error"]["code"]), (429, &json!("max_calls")), "{}", r.json());
    // A call coming in meanwhile is turned away too (503).
    let dir = temp_dir("max-calls-uac");
    let scenario = dir.join("uac.xml");
    let text = std::fs::read_to_string(root().join("fixtures/sipp/uac_expect_final.xml")).unwrap();
    std::fs::write(&scenario, text.replace("STATUS", "503")).unwrap();
    let run = run_sipp(
        &args(&[
            "-sf",
            &scenario.to_string_lossy(),
            "-s",
            "+15550100",
            "-i",
            "127.0.0.1",
            "-p",
            &free_port().to_string(),
            "-m",
            "1",
            &format!("127.0.0.1:{}", d.port),
        ]),
        Duration::from_secs(15),
    );
    assert_eq!((run.status, run.successful), (Some(0), 1), "{}\n{}\n{}", run.stdout, run.errors, d.log_text());
    let r = send(http, "POST", &format!("/api/calls/{id}/hangup"), &AUTH, b"");
    assert!(r.status < 300);
    wait_status(&d, http, &AUTH, &id, "canceled", Duration::from_secs(10));
    assert_eq!(carrier.finish(Duration::from_secs(10)).1, (1, 0), "{}", d.log_text());
}

#[test]
fn an_organizations_trunk_registers_and_unregisters_when_deleted() {
    sipp();
    // The registrar challenges (alice / s3cret), grants 4 s, wants a refresh within 6 s and
    // the un-REGISTER at the end; its call succeeds only with all of them.
    let registrar =
        SippPeer::start("trunk-registrar", &["-sf", &root().join("fixtures/sipp/uas_registrar.xml").to_string_lossy()]);
    let (d, http) = serve("trunk-register", "", &[]);
    let body = json!({"name": "registered", "uri": format!("sip:127.0.0.1:{}", registrar.port),
                      "username": "alice", "password": "s3cret", "register": true});
    let r = send(http, "POST", "/api/trunks", &AUTH, body.to_string().as_bytes());
    assert_eq!(r.status, 201, "{}", r.json());
    assert_eq!(r.json()["data"]["register"], true);
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    wait_trunk(&d, http, "registered", |t| t["status"]["registered"] == true);
    // Refreshed within the grant: still registered 5 s on.
    std::thread::sleep(Duration::from_secs(5));
    wait_trunk(&d, http, "registered", |t| t["status"]["registered"] == true);
    let r = send(http, "DELETE", &format!("/api/trunks/{id}"), &AUTH, b"");
    assert_eq!(r.status, 200, "{}", r.json());
    assert_eq!(registrar.finish(Duration::from_secs(10)), (Some(0), (1, 0)), "{}", d.log_text());
    let bad = json!({"name": "x", "uri": "sip:127.0.0.1", "register": true});
    let r = send(http, "POST", "/api/trunks", &AUTH, bad.to_string().as_bytes());
    assert_eq!(r.status, 400, "{}", r.json());
    assert!(r.json()["error"]["message"].as_str().unwrap_or("").starts_with("register:"), "{}", r.json());
}
