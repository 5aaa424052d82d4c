//! Issue 16's answering-machine detection against real peers: two SIPp carriers answer and
//! play the espeak-ng fixtures (fixtures/amd: a "human" saying hello and waiting, a
//! "machine" with a long greeting and a beep). Calls placed with `machine_detection` get
//! `answered_by` `human` (`detect`) and `machine_end_beep` (`detect_message_end`) in the
//! API, in an `answered_by` call event, in the `call.answered_by` webhook event, and, for
//! the call bridged to a voice agent, in an `answered_by` message to the agent.

mod common;

use common::agent::Agent;
use common::hook::Hook;
use common::http::{send, serve_configured, two_trunks, wait_status};
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const AUTH: [(&str, &str); 1] = [("X-Internal-Key", "k")];

fn carrier(name: &str, pcap: &str) -> SippPeer {
    SippPeer::carrier(name, pcap, 36_000, &[]) // 36000–36200: no other test's range
}

/// Polls the call until answering-machine detection has decided (bounded).
fn answered_by(d: &Dialtone, http: u16, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let c = send(http, "GET", &format!("/api/calls/{id}"), &AUTH, b"").json()["data"].clone();
        if !c["answered_by"].is_null() {
            return c;
        }
        assert!(Instant::now() < deadline, "no answered_by for {id}: {c}\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_human_and_a_voicemail_are_told_apart() {
    sipp();
    let (human, machine) =
        (carrier("amd-human", "amd_human_pcmu.pcap"), carrier("amd-machine", "amd_machine_pcmu.pcap"));
    let (d, http) =
        serve_configured("amd", &two_trunks(human.port, machine.port), &[("DIALTONE_RTP_PORTS", "41400-41449")]);
    let hook = Hook::start(json!({}), Duration::ZERO);
    let body = json!({"url": hook.url(), "events": ["call.answered_by"]});
    let r = send(http, "POST", "/api/webhooks", &AUTH, body.to_string().as_bytes());
    assert_eq!(r.status, 201, "{}", r.json());
    let r = send(
        http,
        "POST",
        "/api/calls/create",
        &AUTH,
        br#"{"contact_id": "c", "phone_number": "+15550010000", "machine_detection": "sometimes"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.json());
    assert!(r.json()["error"]["message"].as_str().unwrap().starts_with("machine_detection"));
    let agent = Agent::start("amd-agent", "echo");
    let place = |number: &str, mode: &str| {
        let mut body = json!({"contact_id": "c", "phone_number": number, "machine_detection": mode});
        if mode == "detect" {
            body["agent_url"] = json!(agent.url());
        }
        let r = send(http, "POST", "/api/calls/create", &AUTH, body.to_string().as_bytes());
        assert_eq!(r.status, 201, "{}", r.json());
        assert_eq!(r.json()["data"]["machine_detection"], mode);
        r.json()["data"]["id"].as_str().unwrap().to_string()
    };
    let (h, m) = (place("+15550010000", "detect"), place("+15550020000", "detect_message_end"));
    let (ch, cm) = (answered_by(&d, http, &h), answered_by(&d, http, &m));
    assert_eq!(ch["answered_by"], "human", "{ch}");
    assert_eq!(cm["answered_by"], "machine_end_beep", "{cm}");
    for c in [&ch, &cm] {
        let ms = c["answered_by_ms"].as_u64().unwrap();
        assert!((300..=15_000).contains(&ms), "decided after {ms} ms: {c}");
    }
    for id in [&h, &m] {
        let c = send(http, "GET", &format!("/api/calls/{id}"), &AUTH, b"").json();
        assert!(c["data"]["events"].as_array().unwrap().iter().any(|e| e["kind"] == "answered_by"), "{c}");
        assert!(send(http, "POST", &format!("/api/calls/{id}/hangup"), &AUTH, b"").status < 300);
        wait_status(&d, http, &AUTH, id, "completed", Duration::from_secs(10));
    }
    // The human's call went to the agent, which was told who answered.
    agent.wait_stop();
    let told = agent.got().into_iter().find(|m| m["event"] == "answered_by");
    assert_eq!(told.as_ref().map(|m| m["answeredBy"].clone()), Some(json!("human")), "{:?}", agent.got());
    // The webhook heard both, each with its call and result.
    let deadline = Instant::now() + Duration::from_secs(10);
    let events: Vec<Value> = loop {
        let got: Vec<Value> =
            hook.requests().iter().filter_map(|(_, body)| serde_json::from_slice(body).ok()).collect();
        if got.len() >= 2 || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let result = |id: &str| {
        events
            .iter()
            .find(|e| e["event"] == "call.answered_by" && e["data"]["call_id"] == id)
            .map(|e| e["data"].clone())
    };
    assert_eq!(result(&h).map(|d| d["answered_by"].clone()), Some(json!("human")), "{events:?}");
    assert_eq!(result(&m).map(|d| d["answered_by"].clone()), Some(json!("machine_end_beep")), "{events:?}");
    for peer in [human, machine] {
        assert_eq!(peer.finish(Duration::from_secs(15)), (Some(0), (1, 0)), "{}", d.log_text());
    }
}
