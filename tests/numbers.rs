//! Issue 15's inbound acceptance against real peers: numbers made through `/api/numbers`,
//! calls to them from a SIPp carrier. Number A goes to a Twilio-protocol agent that hears
//! the INVITE's `X-Customer-Id` in `customParameters`; number B asks a call webhook (a test
//! HTTP server checking the signature) whose answer plays a WAV, found in the recording
//! by frequency; number C's webhook answers after its deadline and the number's fallback
//! refuses the call; a number nobody has gets 404.

mod common;

use common::agent::Agent;
use common::hook::Hook;
use common::http::{recording, send, wait_port, wait_status};
use common::*;
use dialtone_media::resample::goertzel_power;
use serde_json::{json, Value};
use std::time::Duration;

const AUTH: [(&str, &str); 1] = [("X-Internal-Key", "k")];

fn header<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
    h.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

fn number(http: u16, body: Value) -> Value {
    let r = send(http, "POST", "/api/numbers", &AUTH, body.to_string().as_bytes());
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()["data"].clone()
}

/// The newest inbound call to `number_id`.
fn call_to(http: u16, number_id: &str) -> Value {
    let list = send(http, "GET", "/api/calls/list?limit=50", &AUTH, b"").json();
    let calls = list["data"]["calls"].as_array().cloned().unwrap_or_default();
    calls.into_iter().find(|c| c["number_id"] == number_id).unwrap_or(Value::Null)
}

#[test]
fn numbers_route_inbound_calls_to_an_agent_a_webhook_a_fallback_or_404() {
    sipp();
    let http = free_port();
    let listen = format!("127.0.0.1:{http}");
    let d = Dialtone::serve(
        "numbers",
        &[("DIALTONE_HTTP_LISTEN", &listen), ("DIALTONE_INTERNAL_KEY", "k"), ("DIALTONE_RTP_PORTS", "48800-48849")],
    );
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    std::fs::create_dir_all(d.data.join("prompts")).unwrap();
    write_tone_wav(&d.data.join("prompts/tone.wav"), 5.0, 1000.0);

    let agent = Agent::start("numbers-agent", "echo");
    let a = number(http, json!({"number": "+15550100", "action": {"type": "agent", "url": agent.url()}}));
    let hook = Hook::start(json!({"action": "play", "prompt": "tone.wav", "record": true}), Duration::ZERO);
    let b = number(http, json!({"number": "+1555020*", "action": {"type": "webhook", "url": hook.url()}}));
    let late = Hook::start(json!({"action": "echo"}), Duration::from_secs(3));
    let c = number(
        http,
        json!({"number": "+15550300", "action": {"type": "webhook", "url": late.url()},
               "webhook_timeout_ms": 500, "fallback": {"type": "reject", "status": 486}}),
    );
    // The engine learns of the numbers through the API's hand-over.
    std::thread::sleep(Duration::from_millis(300));
    let talk = root().join("fixtures/sipp/uac_x_header.xml");

    // A: the agent hears the INVITE's X- header among its customParameters.
    let run = call_service(&d, &talk, "+15550100");
    assert_eq!((run.status, run.successful), (Some(0), 1), "{}\n{}\n{}", run.stdout, run.errors, d.log_text());
    agent.wait_stop();
    let got = agent.got();
    let start = got.iter().find(|m| m["event"] == "start").unwrap_or_else(|| panic!("no start: {got:?}"));
    let params = &start["start"]["customParameters"];
    assert_eq!(params["X-Customer-Id"], "c-42", "{start}");
    let rec = call_to(http, a["id"].as_str().unwrap());
    assert_eq!(rec["from_number"], "+15550100", "the number called, as E.164: {rec}");
    assert_eq!(rec["phone_number"], "+15550199", "{rec}");
    assert_eq!(rec["sip_headers"]["X-Customer-Id"], "c-42", "{rec}");
    assert_eq!(rec["asserted_identity"], "sip:+15550199@carrier.example", "{rec}");
    assert_eq!(params["call_id"], rec["id"], "{start}");

    // B: the webhook is asked (signed), and its answer plays the WAV, recorded.
    let run = call_service(&d, &talk, "+15550201");
    assert_eq!((run.status, run.successful), (Some(0), 1), "{}\n{}\n{}", run.stdout, run.errors, d.log_text());
    let asked = hook.requests();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let (h, body) = &asked[0];
    let ts: i64 = header(h, "x-dialtone-timestamp").parse().unwrap();
    let secret = b["webhook_secret"].as_str().unwrap();
    assert_eq!(header(h, "x-dialtone-signature"), dialtone_api::webhooks::sign(secret.as_bytes(), ts, body));
    let facts: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        (&facts["number"], &facts["to"], &facts["from"]),
        (&json!("+1555020*"), &json!("+15550201"), &json!("+15550199")),
        "{facts}"
    );
    assert_eq!(facts["number_id"], b["id"], "{facts}");
    assert_eq!(facts["sip_headers"]["X-Customer-Id"], "c-42", "{facts}");
    let rec = call_to(http, b["id"].as_str().unwrap());
    let id = rec["id"].as_str().unwrap().to_string();
    let done = wait_status(&d, http, &AUTH, &id, "completed", Duration::from_secs(10));
    assert_eq!(facts["call_id"], done["id"]);
    let samples = recording(&d, http, &AUTH, &id);
    let ours: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let toned = ours
        .chunks_exact(160)
        .filter(|w| {
            let p = goertzel_power(w, 8000, 1000.0);
            p > 1e6 && p > 20.0 * goertzel_power(w, 8000, 500.0).max(goertzel_power(w, 8000, 1500.0))
        })
        .count();
    assert!(toned >= 100, "only {toned} windows (20 ms) of the prompt's tone were sent");

    // C: the webhook is late; the fallback refuses the call with 486.
    let refused = |status: &str, name: &str| {
        let dir = temp_dir(name);
        let path = dir.join("uac.xml");
        let text = std::fs::read_to_string(root().join("fixtures/sipp/uac_expect_final.xml")).unwrap();
        std::fs::write(&path, text.replace("STATUS", status)).unwrap();
        path
    };
    let run = call_service(&d, &refused("486", "numbers-486"), "+15550300");
    assert_eq!((run.status, run.successful), (Some(0), 1), "{}\n{}\n{}", run.stdout, run.errors, d.log_text());
    let rec = call_to(http, c["id"].as_str().unwrap());
    let id = rec["id"].as_str().unwrap().to_string();
    let done = wait_status(&d, http, &AUTH, &id, "busy", Duration::from_secs(5));
    let events = send(http, "GET", &format!("/api/calls/{id}"), &AUTH, b"").json()["data"]["events"].clone();
    let webhook = events.as_array().unwrap().iter().find(|e| e["kind"] == "webhook").cloned().unwrap_or(Value::Null);
    assert!(webhook["detail"].as_str().unwrap_or("").contains("fallback: reject"), "{events}\n{done}");

    // A number nobody has: 404.
    let run = call_service(&d, &refused("404", "numbers-404"), "+15559999");
    assert_eq!((run.status, run.successful), (Some(0), 1), "{}\n{}\n{}", run.stdout, run.errors, d.log_text());
}
