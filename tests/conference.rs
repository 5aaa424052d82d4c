//! Issue 16's conference against real peers: three calls placed through three SIPp
//! carriers, each playing a tone of its own (400, 700, 1000 Hz), seated in one conference
//! with the API. Each call is then sent the other two tones and never its own (its
//! recording's "what we sent" channel); once one is muted the others stop hearing it while
//! it still hears them; taken out, it hears none; the conference's participants and the
//! calls' events say so. A voice agent seated as a member hears the room and is heard.

mod common;

use common::agent::Agent;
use common::http::{recording, send, serve_configured, trunks_at, wait_status};
use common::*;
use dialtone_media::resample::goertzel_power;
use serde_json::{json, Value};
use std::time::Duration;

const AUTH: [(&str, &str); 1] = [("X-Internal-Key", "k")];
const TONES: [f32; 3] = [400.0, 700.0, 1000.0];

fn carrier(name: &str, pcap: &str) -> SippPeer {
    SippPeer::carrier(name, pcap, 35_600, &[]) // 35600–35800: no other test's range
}

/// In 20 ms windows of `sent` (8 kHz): how many hold each of [`TONES`] clearly (well
/// above the band between them), as a 3-letter mask per window ('a' for 400 Hz…).
fn heard(sent: &[i16]) -> Vec<[bool; 3]> {
    sent.chunks_exact(160)
        .map(|w| {
            let floor = goertzel_power(w, 8000, 550.0).max(goertzel_power(w, 8000, 850.0)).max(1e4);
            let p = |hz: f32| goertzel_power(w, 8000, hz) > 30.0 * floor && goertzel_power(w, 8000, hz) > 1e6;
            [p(TONES[0]), p(TONES[1]), p(TONES[2])]
        })
        .collect()
}

fn post(http: u16, path: &str, body: Value) -> Value {
    let r = send(http, "POST", path, &AUTH, body.to_string().as_bytes());
    assert!(r.status == 201 || r.status == 202, "POST {path}: {} {}", r.status, r.json());
    r.json()["data"].clone()
}

#[test]
fn three_calls_in_a_conference_each_hear_the_other_two() {
    sipp();
    let peers: Vec<SippPeer> = TONES
        .iter()
        .enumerate()
        .map(|(i, hz)| carrier(&format!("conf-{i}"), &format!("conf_{}_pcmu.pcap", *hz as u32)))
        .collect();
    let ports: Vec<u16> = peers.iter().map(|p| p.port).collect();
    let (d, http) = serve_configured("conference", &trunks_at(&ports), &[("DIALTONE_RTP_PORTS", "41100-41149")]);
    let ids: Vec<String> = (1..=3)
        .map(|i| {
            let body = json!({"contact_id": "c", "phone_number": format!("+155500{i}0000"), "record": true});
            post(http, "/api/calls/create", body)["id"].as_str().unwrap().to_string()
        })
        .collect();
    for id in &ids {
        wait_status(&d, http, &AUTH, id, "in-progress", Duration::from_secs(10));
    }
    let conf = post(http, "/api/conferences", json!({"name": "three tones"}));
    let conf_id = conf["id"].as_str().unwrap().to_string();
    assert_eq!(conf["status"], "active");
    let seat = |id: &str| post(http, &format!("/api/conferences/{conf_id}/participants"), json!({"call_id": id}));
    for id in &ids {
        seat(id);
    }
    // Everyone talks for 2 s; then the 1000 Hz call is muted for 2 s; then taken out.
    std::thread::sleep(Duration::from_millis(2000));
    let path = format!("/api/conferences/{conf_id}/participants/{}", ids[2]);
    let r = send(http, "PATCH", &path, &AUTH, br#"{"muted": true}"#);
    assert_eq!(r.status, 200, "{}", r.json());
    assert!(r.json()["data"]["participants"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["call_id"] == ids[2].as_str() && p["muted"] == true));
    std::thread::sleep(Duration::from_millis(2000));
    let r = send(http, "DELETE", &path, &AUTH, b"");
    assert_eq!(r.status, 200, "{}", r.json());
    std::thread::sleep(Duration::from_millis(600));
    let r = send(http, "DELETE", &format!("/api/conferences/{conf_id}"), &AUTH, b"");
    assert_eq!(r.status, 200, "{}", r.json());
    let ended = r.json()["data"].clone();
    assert_eq!(ended["status"], "ended");
    assert!(ended["participants"].as_array().unwrap().iter().all(|p| p["active"] == false), "{ended}");
    // An ended conference takes nobody.
    let r = send(
        http,
        "POST",
        &format!("/api/conferences/{conf_id}/participants"),
        &AUTH,
        json!({"call_id": ids[0]}).to_string().as_bytes(),
    );
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (409, json!("conference_ended")));
    for id in &ids {
        assert!(send(http, "POST", &format!("/api/calls/{id}/hangup"), &AUTH, b"").status < 300);
        wait_status(&d, http, &AUTH, id, "completed", Duration::from_secs(10));
    }
    let events = |id: &str| -> Vec<String> {
        let c = send(http, "GET", &format!("/api/calls/{id}"), &AUTH, b"").json();
        c["data"]["events"].as_array().unwrap().iter().filter_map(|e| e["kind"].as_str().map(String::from)).collect()
    };
    let ev = events(&ids[2]);
    for kind in ["conference_joined", "conference_muted", "conference_left"] {
        assert!(ev.iter().any(|k| k == kind), "{kind} missing: {ev:?}");
    }
    // Right channel: what dialtone sent each call.
    let sent: Vec<Vec<[bool; 3]>> = ids
        .iter()
        .map(|id| heard(&recording(&d, http, &AUTH, id).iter().skip(1).step_by(2).copied().collect::<Vec<_>>()))
        .collect();
    let count = |w: &[[bool; 3]], f: &dyn Fn(&[bool; 3]) -> bool| w.iter().filter(|m| f(m)).count();
    for (i, windows) in sent.iter().enumerate() {
        let own = count(windows, &|m| m[i]);
        assert_eq!(own, 0, "call {i} was sent its own tone in {own} windows");
    }
    // a and b: both others together while c talked, then only each other while c was muted.
    for (i, windows) in sent.iter().take(2).enumerate() {
        let other = 1 - i;
        let both = count(windows, &|m| m[other] && m[2]);
        let without_c = count(windows, &|m| m[other] && !m[2]);
        assert!(both >= 60, "call {i} heard both others in {both} windows");
        assert!(without_c >= 60, "call {i} heard only the other unmuted one in {without_c} windows");
    }
    // c: both others all along, muted or not (about 4 s), and nothing once taken out.
    let c_both = count(&sent[2], &|m| m[0] && m[1]);
    assert!(c_both >= 150, "the muted call kept hearing the room: {c_both} windows");
    for peer in peers {
        assert_eq!(peer.finish(Duration::from_secs(15)), (Some(0), (1, 0)), "{}", d.log_text());
    }
}

#[test]
fn a_voice_agent_in_a_conference_hears_the_room_and_is_heard() {
    sipp();
    let caller = carrier("conf-agent-call", "conf_400_pcmu.pcap");
    let (d, http) =
        serve_configured("conference-agent", &trunks_at(&[caller.port]), &[("DIALTONE_RTP_PORTS", "41150-41199")]);
    let body = json!({"contact_id": "c", "phone_number": "+15550010000", "record": true});
    let id = post(http, "/api/calls/create", body)["id"].as_str().unwrap().to_string();
    wait_status(&d, http, &AUTH, &id, "in-progress", Duration::from_secs(10));
    let conf = post(http, "/api/conferences", json!({}))["id"].as_str().unwrap().to_string();
    let members = format!("/api/conferences/{conf}/participants");
    post(http, &members, json!({"call_id": id}));
    // An echoing agent: what it hears of the room (the caller) it says back into the room,
    // so the caller, who never hears itself, is sent its own voice only through the agent.
    let agent = Agent::start("conference-agent", "echo");
    let r =
        send(http, "POST", &members, &AUTH, json!({"agent_url": agent.url(), "call_id": id}).to_string().as_bytes());
    assert_eq!(r.status, 400, "one of call_id and agent_url: {}", r.json());
    let seated = post(http, &members, json!({"agent_url": agent.url()}));
    let agent_id = seated["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|p| p["agent_id"].as_str().map(String::from))
        .unwrap_or_else(|| panic!("no agent member: {seated}"));
    std::thread::sleep(Duration::from_millis(2500));
    let r = send(http, "DELETE", &format!("{members}/{agent_id}"), &AUTH, b"");
    assert_eq!(r.status, 200, "{}", r.json());
    agent.wait_stop();
    let got = agent.got();
    assert!(
        got.iter().any(|m| m["event"] == "start") && got.iter().filter(|m| m["event"] == "media").count() >= 50,
        "the agent heard the room: {} messages",
        got.len()
    );
    assert!(send(http, "POST", &format!("/api/calls/{id}/hangup"), &AUTH, b"").status < 300);
    wait_status(&d, http, &AUTH, &id, "completed", Duration::from_secs(10));
    let sent: Vec<i16> = recording(&d, http, &AUTH, &id).iter().skip(1).step_by(2).copied().collect();
    let own = heard(&sent).iter().filter(|m| m[0]).count();
    assert!(own >= 40, "the caller was sent the agent's echo of it in {own} windows of 20 ms");
    assert_eq!(caller.finish(Duration::from_secs(15)), (Some(0), (1, 0)), "{}", d.log_text());
}
