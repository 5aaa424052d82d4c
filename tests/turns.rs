//! Issue 21's turn figures against real peers: two API calls to SIPp carriers that say
//! "Hello?" twice (espeak-ng, 5 s apart), each bridged to a Python bot that answers a caller
//! turn after a fixed think time D (400 ms and 1200 ms) plus its own 300 ms end-of-speech
//! wait. The call's `turns` show two turns, both answered, each response latency D plus a
//! constant (the bot's wait, its reply's lead-in, the detectors'), and the two bots'
//! latencies differ by the 800 ms between their think times, within 60 ms.

mod common;

use common::agent::Agent;
use common::http::{agent_calls, hang_up, send, serve_configured, two_trunks, wait_status};
use common::*;
use serde_json::Value;
use std::time::Duration;

const AUTH: [(&str, &str); 1] = [("X-Internal-Key", "k")];

fn carrier(name: &str) -> SippPeer {
    SippPeer::carrier(name, "turns_pcmu.pcap", 36_200, &[]) // 36200–36400: no other test's range
}

#[test]
fn each_turns_response_latency_is_the_bots_think_time() {
    sipp();
    // The bot's reply: the first 1.2 s of the "human" fixture (its "Hello?").
    let dir = temp_dir("turns");
    let reply = dir.join("reply.wav");
    {
        let mut r = hound::WavReader::open(root().join("fixtures/amd/human.wav")).unwrap();
        let spec = r.spec();
        let samples: Vec<i16> = r.samples::<i16>().take(9600).map(Result::unwrap).collect();
        let mut w = hound::WavWriter::create(&reply, spec).unwrap();
        for s in samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
    }
    let reply = reply.to_string_lossy().to_string();
    let bots: Vec<(u64, Agent)> = [400u64, 1200]
        .iter()
        .map(|d| {
            let delay = d.to_string();
            (
                *d,
                Agent::start_with(
                    &format!("turns-bot-{d}"),
                    "reply",
                    &["--reply-delay-ms", &delay, "--reply-wav", &reply],
                ),
            )
        })
        .collect();
    let (a, b) = (carrier("turns-a"), carrier("turns-b"));
    let (d, http) = serve_configured("turns", &two_trunks(a.port, b.port), &[("DIALTONE_RTP_PORTS", "41500-41549")]);
    let urls: Vec<String> = bots.iter().map(|(_, bot)| bot.url()).collect();
    let ids = agent_calls(&d, http, &AUTH, &urls);
    // Two turns of 5 s each, and the second reply.
    std::thread::sleep(Duration::from_millis(11_000));
    hang_up(http, &AUTH, &ids);
    let mut latencies = Vec::new();
    for ((delay, bot), id) in bots.iter().zip(&ids) {
        let done = wait_status(&d, http, &AUTH, id, "completed", Duration::from_secs(10));
        let turns: &Value = &done["turns"];
        let replies = bot.events().iter().filter(|e| e["sent"] == "reply").count();
        assert_eq!(turns["summary"]["turns"], 2, "bot {delay} ms ({replies} replies): {turns}\n{}", d.log_text());
        assert_eq!(turns["summary"]["answered"], 2, "bot {delay} ms: {turns}");
        for t in turns["turns"].as_array().unwrap() {
            // The think time, the bot's own 300 ms end-of-speech wait, and the lead-in of
            // its reply's WAV before its "Hello?" (a few hundred ms), with slack for load.
            let latency = t["latency_ms"].as_u64().unwrap();
            let (low, high) = (delay + 300, delay + 1_300);
            assert!((low..=high).contains(&latency), "bot {delay} ms: latency {latency} not in {low}..{high}: {turns}");
            latencies.push((*delay, latency));
        }
        eprintln!("bot think time {delay} ms: {}", turns["summary"]);
    }
    // The pipeline's own share is the same for both bots: their latencies differ by the
    // difference of their think times (800 ms), within three 20 ms frames.
    let mean = |d: u64| {
        let l: Vec<u64> = latencies.iter().filter(|(x, _)| *x == d).map(|(_, l)| *l).collect();
        l.iter().sum::<u64>() as i64 / l.len() as i64
    };
    let gap = mean(1200) - mean(400);
    assert!((740..=860).contains(&gap), "latencies {latencies:?}: the think times' 800 ms came out as {gap}");
    // And /metrics counts the four answered turns.
    let metrics = String::from_utf8(send(http, "GET", "/metrics", &[], b"").body).unwrap();
    let count = metrics
        .lines()
        .find_map(|l| l.strip_prefix("dialtone_turn_seconds_count{direction=\"response_latency\"} "))
        .unwrap_or_else(|| panic!("no turn histogram in /metrics"));
    assert_eq!(count.trim(), "4", "{metrics}");
    for peer in [a, b] {
        assert_eq!(peer.finish(Duration::from_secs(15)), (Some(0), (1, 0)), "{}", d.log_text());
    }
}
