//! Issue 16's bridge against real peers: two calls placed through two SIPp carriers, each
//! playing a tone of its own (1 kHz, 600 Hz), joined with `POST /api/calls/{id}/bridge`.
//! Each call is then sent the other's tone: its recording's "what we sent" channel holds
//! the other carrier's frequency, not its own.

mod common;

use common::http::{recording, send, serve_configured, two_trunks, wait_status};
use common::*;
use dialtone_media::resample::goertzel_power;
use serde_json::{json, Value};
use std::time::Duration;

const AUTH: [(&str, &str); 1] = [("X-Internal-Key", "k")];

/// 20 ms windows of `samples` (8 kHz) where `hz` clearly dominates the other tone and
/// its neighbours.
fn windows_of(samples: &[i16], hz: f32, other: f32) -> usize {
    samples
        .chunks_exact(160)
        .filter(|w| {
            let p = goertzel_power(w, 8000, hz);
            p > 1e6 && p > 20.0 * goertzel_power(w, 8000, other).max(goertzel_power(w, 8000, hz * 1.5))
        })
        .count()
}

fn carrier(name: &str, pcap: &str) -> SippPeer {
    SippPeer::carrier(name, pcap, 35_400, &[]) // 35400–35600: no other test's range
}

#[test]
fn two_bridged_calls_hear_each_other() {
    sipp();
    let (a, b) = (carrier("bridge-a", "tone_1k_pcmu.pcap"), carrier("bridge-b", "tone_600_pcmu.pcap"));
    let (d, http) = serve_configured("bridge", &two_trunks(a.port, b.port), &[("DIALTONE_RTP_PORTS", "48880-48899")]);
    let place = |number: &str| {
        let body = json!({"contact_id": "c", "phone_number": number, "record": true});
        let r = send(http, "POST", "/api/calls/create", &AUTH, body.to_string().as_bytes());
        assert_eq!(r.status, 201, "{}", r.json());
        r.json()["data"]["id"].as_str().unwrap().to_string()
    };
    let (ida, idb) = (place("+15550010000"), place("+15550020000"));
    wait_status(&d, http, &AUTH, &ida, "in-progress", Duration::from_secs(10));
    wait_status(&d, http, &AUTH, &idb, "in-progress", Duration::from_secs(10));
    let r =
        send(http, "POST", &format!("/api/calls/{ida}/bridge"), &AUTH, json!({"call_id": idb}).to_string().as_bytes());
    assert_eq!(r.status, 202, "{}", r.json());
    std::thread::sleep(Duration::from_millis(2800));
    let r = send(http, "POST", &format!("/api/calls/{idb}/unbridge"), &AUTH, b"");
    assert_eq!(r.status, 202, "{}", r.json());
    let r = send(http, "POST", &format!("/api/calls/{ida}/unbridge"), &AUTH, b"");
    assert_eq!(r.status, 409, "no bridge any more: {}", r.json());
    for id in [&ida, &idb] {
        assert!(send(http, "POST", &format!("/api/calls/{id}/hangup"), &AUTH, b"").status < 300);
        wait_status(&d, http, &AUTH, id, "completed", Duration::from_secs(10));
    }
    let kinds = |id: &str| -> Vec<Value> {
        let c = send(http, "GET", &format!("/api/calls/{id}"), &AUTH, b"").json();
        c["data"]["events"].as_array().unwrap().iter().filter(|e| e["kind"] != "status").cloned().collect()
    };
    let ev = kinds(&ida);
    assert!(ev.iter().any(|e| e["kind"] == "bridged" && e["detail"] == idb.as_str()), "{ev:?}");
    assert!(ev.iter().any(|e| e["kind"] == "unbridged"), "{ev:?}");
    // Right channel: what dialtone sent the call.
    let sent = |id: &str| -> Vec<i16> { recording(&d, http, &AUTH, id).iter().skip(1).step_by(2).copied().collect() };
    let (to_a, to_b) = (sent(&ida), sent(&idb));
    let (a_got_b, a_got_own) = (windows_of(&to_a, 600.0, 1000.0), windows_of(&to_a, 1000.0, 600.0));
    let (b_got_a, b_got_own) = (windows_of(&to_b, 1000.0, 600.0), windows_of(&to_b, 600.0, 1000.0));
    assert!(a_got_b >= 50 && a_got_own == 0, "call a was sent {a_got_b} windows of b's tone, {a_got_own} of its own");
    assert!(b_got_a >= 50 && b_got_own == 0, "call b was sent {b_got_a} windows of a's tone, {b_got_own} of its own");
    for peer in [a, b] {
        assert_eq!(peer.finish(Duration::from_secs(10)), (Some(0), (1, 0)), "{}", d.log_text());
    }
}
