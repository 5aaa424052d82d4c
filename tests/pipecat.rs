//! Issue 21's first acceptance, over SIP: a real Pipecat bot from PyPI
//! (fixtures/agent/pipecat_bot.py: `FastAPIWebsocketTransport` with `TwilioFrameSerializer`,
//! as in Pipecat's Twilio examples) whose processor answers each caller turn with a tone a
//! fixed think time D after the caller stopped. Two API calls to SIPp carriers that say
//! "Hello?" twice (espeak-ng, 5 s apart), each bridged to such a bot (D = 400 ms and
//! 1200 ms, run with the venv `./dev test` makes). Each call's `turns` show two turns, both
//! answered, and every turn's response latency is D plus one constant, the pipeline's own,
//! within ±30 ms (the constant being the mean of latency − D over the four turns).
//!
//! The constant's parts: the bot's end-of-turn wait (15 blocks of 20 ms, counted from the
//! first quiet block it gets: 280 ms), the difference between where dialtone's detector and
//! the bot's fixed threshold put the end of the same "Hello?", and the hops between
//! (the caller's frame to the bot, the tone's first chunk back, each up to a 20 ms media
//! tick).

mod common;

use common::agent::Agent;
use common::http::{send, serve_configured, two_trunks, wait_status};
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const AUTH: [(&str, &str); 1] = [("X-Internal-Key", "k")];
/// How far any turn's latency − D may be from the constant.
const TOLERANCE_MS: i64 = 30;

fn carrier(name: &str) -> SippPeer {
    SippPeer::carrier(name, "turns_pcmu.pcap", 36_400, &[]) // 36400–36600: no other test's range
}

#[test]
fn each_turns_response_latency_is_the_pipecat_bots_delay_plus_a_constant() {
    sipp();
    let bots: Vec<(u64, Agent)> =
        [400u64, 1200].iter().map(|d| (*d, Agent::pipecat(&format!("pipecat-bot-{d}"), *d))).collect();
    let (a, b) = (carrier("pipecat-a"), carrier("pipecat-b"));
    let (d, http) = serve_configured("pipecat", &two_trunks(a.port, b.port), &[("DIALTONE_RTP_PORTS", "41550-41599")]);
    let ids: Vec<String> = bots
        .iter()
        .zip(["+15550010000", "+15550020000"])
        .map(|((_, bot), number)| {
            let body = json!({"contact_id": "c", "phone_number": number, "agent_url": bot.url()});
            let r = send(http, "POST", "/api/calls/create", &AUTH, body.to_string().as_bytes());
            assert_eq!(r.status, 201, "{}", r.json());
            r.json()["data"]["id"].as_str().unwrap().to_string()
        })
        .collect();
    for id in &ids {
        wait_status(&d, http, &AUTH, id, "in-progress", Duration::from_secs(10));
    }
    // Two turns of 5 s each, and the second reply.
    std::thread::sleep(Duration::from_millis(11_000));
    for id in &ids {
        assert!(send(http, "POST", &format!("/api/calls/{id}/hangup"), &AUTH, b"").status < 300);
    }
    // (D, latency) of every turn.
    let mut latencies: Vec<(u64, i64)> = Vec::new();
    for ((delay, bot), id) in bots.iter().zip(&ids) {
        let done = wait_status(&d, http, &AUTH, id, "completed", Duration::from_secs(10));
        let turns: &Value = &done["turns"];
        let replies = bot.events().iter().filter(|e| e["sent"] == "reply").count();
        assert_eq!(turns["summary"]["turns"], 2, "bot {delay} ms ({replies} replies): {turns}\n{}", d.log_text());
        assert_eq!(turns["summary"]["answered"], 2, "bot {delay} ms ({replies} replies): {turns}");
        for t in turns["turns"].as_array().unwrap() {
            latencies.push((*delay, t["latency_ms"].as_i64().unwrap()));
        }
        eprintln!("Pipecat bot D = {delay} ms: {turns}");
    }
    let constant = latencies.iter().map(|(delay, l)| l - *delay as i64).sum::<i64>() / latencies.len() as i64;
    let off: Vec<i64> = latencies.iter().map(|(delay, l)| l - *delay as i64 - constant).collect();
    eprintln!(
        "pipeline constant {constant} ms; per turn (D, latency, latency - D - constant): {:?}",
        latencies.iter().zip(&off).map(|((d, l), o)| (d, l, o)).collect::<Vec<_>>()
    );
    for ((delay, latency), o) in latencies.iter().zip(&off) {
        assert!(
            o.abs() <= TOLERANCE_MS,
            "D = {delay} ms: latency {latency} ms is {o} ms from D + the constant {constant} ms (all: {latencies:?})"
        );
    }
    // The constant is mostly the bot's 280 ms end-of-turn wait.
    assert!((200..=600).contains(&constant), "constant {constant} ms (turns {latencies:?})");
    for peer in [a, b] {
        assert_eq!(peer.finish(Duration::from_secs(15)), (Some(0), (1, 0)), "{}", d.log_text());
    }
}
