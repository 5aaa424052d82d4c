//! Issue 16's early media against a real carrier (SIPp): it answers 183 with SDP and
//! plays a tone for 2.5 s before its 200. The call goes `ringing`/`early-media` →
//! `in-progress`, and the tone is in the recording before the answer time.

mod common;

use common::http::{recording, send, wait_port, wait_status};
use common::*;
use dialtone_media::resample::goertzel_power;
use serde_json::json;
use std::time::Duration;

const AUTH: [(&str, &str); 1] = [("X-Internal-Key", "k")];

#[test]
fn a_183s_tone_is_recorded_before_the_answer() {
    sipp();
    let mp = free_media_port_in(35_200, 50); // 35200–35400: no other test's range
    let tone = root().join("fixtures/pcap/tone_1k_pcmu.pcap");
    let carrier = SippPeer::start(
        "early-media",
        &[
            "-sf",
            &root().join("fixtures/sipp/uas_early_media.xml").to_string_lossy(),
            "-mi",
            "127.0.0.1",
            "-mp",
            &mp.to_string(),
            "-key",
            "pcap",
            &tone.to_string_lossy(),
        ],
    );
    let http = free_port();
    let listen = format!("127.0.0.1:{http}");
    let trunk = format!("sip:127.0.0.1:{}", carrier.port);
    let d = Dialtone::serve(
        "early-media",
        &[
            ("DIALTONE_HTTP_LISTEN", &listen),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_TRUNK", &trunk),
            ("DIALTONE_RTP_PORTS", "48860-48879"),
        ],
    );
    assert!(wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let body = json!({"contact_id": "c", "phone_number": "+15550100", "record": true, "early_media": true});
    let r = send(http, "POST", "/api/calls/create", &AUTH, body.to_string().as_bytes());
    assert_eq!(r.status, 201, "{}", r.json());
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    let done = wait_status(&d, http, &AUTH, &id, "completed", Duration::from_secs(20));
    assert_eq!(done["early_media"], true, "{done}");
    let statuses: Vec<String> = send(http, "GET", &format!("/api/calls/{id}"), &AUTH, b"").json()["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "status")
        .map(|e| e["detail"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["initiating", "early-media", "in-progress", "completed"], "{done}");
    let samples = recording(&d, http, &AUTH, &id);
    let far: Vec<i16> = samples.iter().step_by(2).copied().collect();
    // The recording starts with the early media; the answer came 2.5 s later. In its first
    // 2 s, the carrier's tone.
    let early = &far[..16_000.min(far.len())];
    let toned = early
        .chunks_exact(160)
        .filter(|w| {
            let p = goertzel_power(w, 8000, 1000.0);
            p > 1e6 && p > 20.0 * goertzel_power(w, 8000, 500.0).max(goertzel_power(w, 8000, 1500.0))
        })
        .count();
    assert!(toned >= 75, "only {toned} of 100 windows (20 ms) of the first 2 s carry the early tone");
    assert_eq!(carrier.finish(Duration::from_secs(10)), (Some(0), (1, 0)), "{}", d.log_text());
}
