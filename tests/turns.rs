//! Issue 21's turn figures against real peers: two API calls to SIPp carriers that say
//! "Hello?" twice (espeak-ng, 5 s apart), each bridged to a Python bot that answers a caller
//! turn after a fixed think time D (400 ms and 1200 ms) plus its own 300 ms end-of-speech
//! wait. The call's `turns` show two turns, both answered, each response latency D plus a
//! constant (the bot's wait, its reply's lead-in, the detectors'), and the two bots'
//! latencies differ by the 800 ms between their think times, within 60 ms. The first bot
//! asks for speech events (`?dialtone_events=speech`) and gets them; the other does not.

mod common;

use common::agent::Agent;
use common::http::{agent_calls, hang_up, send, serve_configured, trunks_at, two_trunks, wait_status};
use common::*;
use serde_json::Value;
use std::time::Duration;

const AUTH: [(&str, &str); 1] = [("X-Internal-Key", "k")];

fn carrier(name: &str, base: u16) -> SippPeer {
    SippPeer::carrier(name, "turns_pcmu.pcap", base, &[]) // 36200–36400: no other test's range
}

/// `secs` of a 1 kHz tone in "syllables" (200 ms on, 50 ms off) at 8 kHz: speech to the
/// detector for as long as it lasts (a steady tone would become its noise floor).
fn write_syllables_wav(path: &std::path::Path, secs: f64) {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(secs * 8000.0) as u32 {
        let on = i % 2000 < 1600;
        let s =
            if on { (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(i) / 8000.0).sin()) as i16 } else { 0 };
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
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
    let (a, b) = (carrier("turns-a", 36_200), carrier("turns-b", 36_200));
    let (d, http) = serve_configured("turns", &two_trunks(a.port, b.port), &[("DIALTONE_RTP_PORTS", "41500-41549")]);
    // The first bot asks for speech events; the other gets Twilio's messages only.
    let urls: Vec<String> = bots
        .iter()
        .map(|(delay, bot)| if *delay == 400 { format!("{}/?dialtone_events=speech", bot.url()) } else { bot.url() })
        .collect();
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
    // Speech events went to the bot that asked for them, at the turns' times; none to the other.
    let speech = |bot: &Agent, event: &str, track: &str| -> Vec<u64> {
        bot.events()
            .iter()
            .filter(|e| e["got"]["event"] == event && e["got"]["speech"]["track"] == track)
            .map(|e| e["got"]["speech"]["timestamp"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    let (asked, plain) = (&bots[0].1, &bots[1].1);
    let stopped = speech(asked, "speech_stopped", "inbound");
    assert_eq!(speech(asked, "speech_started", "inbound").len(), 2, "{:?}", asked.events());
    assert_eq!(stopped.len(), 2, "{:?}", asked.events());
    assert!(speech(asked, "speech_started", "outbound").len() >= 2, "its own replies too: {:?}", asked.events());
    let first = ids[0].as_str();
    let done = wait_status(&d, http, &AUTH, first, "completed", Duration::from_secs(10));
    let ends: Vec<u64> =
        done["turns"]["turns"].as_array().unwrap().iter().map(|t| t["caller_end_ms"].as_u64().unwrap()).collect();
    assert_eq!(stopped, ends, "speech_stopped carries where the caller's turn ended");
    assert!(plain.events().iter().all(|e| !e["got"]["event"].as_str().unwrap_or("").starts_with("speech")));
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

/// Barge-in and playout health, told apart per bot. The carriers say "Hello?" at 0 s and
/// 5 s; each bot answers the first with 6 s of speech-like tone, so the second "Hello?"
/// comes over the reply (a barge-in). Four bots: one that honours the barge-in (stops and
/// sends `clear`), one that talks on, both sending at real time; one that talks on and
/// stalls 300 ms halfway (a TTS hiccup), one that sends its whole reply in one message.
#[test]
fn barge_in_and_playout_tell_the_bots_apart() {
    sipp();
    let dir = temp_dir("turns-barge");
    let reply = dir.join("reply.wav");
    write_syllables_wav(&reply, 6.0);
    let reply = reply.to_string_lossy().to_string();
    let kinds: [(&str, &[&str]); 4] = [
        ("clear", &["--reply-pace", "realtime", "--on-barge", "clear"]),
        ("ignore", &["--reply-pace", "realtime"]),
        ("stall", &["--reply-pace", "realtime", "--reply-stall-ms", "300"]),
        ("burst", &["--reply-pace", "burst"]),
    ];
    let bots: Vec<Agent> = kinds
        .iter()
        .map(|(kind, extra)| {
            let mut args = vec!["--reply-delay-ms", "100", "--reply-wav", &reply];
            args.extend_from_slice(extra);
            Agent::start_with(&format!("turns-{kind}"), "reply", &args)
        })
        .collect();
    let carriers: Vec<SippPeer> = kinds.iter().map(|(kind, _)| carrier(&format!("turns-{kind}"), 36_300)).collect();
    let ports: Vec<u16> = carriers.iter().map(|c| c.port).collect();
    let (d, http) = serve_configured("turns-barge", &trunks_at(&ports), &[("DIALTONE_RTP_PORTS", "41600-41649")]);
    let urls: Vec<String> = bots.iter().map(Agent::url).collect();
    let ids = agent_calls(&d, http, &AUTH, &urls);
    // The first reply (from about 1.5 s) and the barge-in at 5 s have played out by 9 s.
    std::thread::sleep(Duration::from_millis(9_500));
    hang_up(http, &AUTH, &ids);
    let turns: Vec<Value> = ids
        .iter()
        .map(|id| wait_status(&d, http, &AUTH, id, "completed", Duration::from_secs(10))["turns"].clone())
        .collect();
    for ((kind, _), t) in kinds.iter().zip(&turns) {
        eprintln!("{kind}: {} playout {}", t["summary"], t["playout"]["summary"]);
    }
    let first_barge = |i: usize| -> &Value {
        let b = &turns[i]["barge_ins"][0];
        assert!(b.is_object(), "{}: no barge-in: {}", kinds[i].0, turns[i]);
        b
    };
    // The bot that honours the barge-in stops within a few frames, with a `clear`; the one
    // that talks on stops only when its reply ends, about 2 s later, without one.
    let (clear, ignore) = (first_barge(0), first_barge(1));
    assert_eq!(clear["cleared"], true, "{}", turns[0]);
    let stop = clear["time_to_stop_ms"].as_u64().unwrap();
    assert!(stop <= 700, "the clearing bot took {stop} ms to stop: {}", turns[0]);
    assert_eq!(ignore["cleared"], false, "{}", turns[1]);
    let on = ignore["time_to_stop_ms"].as_u64().unwrap();
    assert!(on >= 1_200 && on >= stop + 900, "the bot that talks on stopped after {on} ms: {}", turns[1]);
    assert_eq!(turns[0]["summary"]["barge_ins_cleared"], 1, "{}", turns[0]);
    assert_eq!(turns[1]["summary"]["barge_ins_cleared"], 0, "{}", turns[1]);
    // The stall is a gap inside the reply, of the agent's making (300 ms less the bot's
    // 60 ms lead), with little queued; the burst is a reply queued whole, with no gap.
    let (stall, burst) = (&turns[2]["playout"]["summary"], &turns[3]["playout"]["summary"]);
    assert!(stall["gaps"].as_u64().unwrap() >= 1, "{}", turns[2]);
    assert_eq!(stall["dialtone_gaps"], 0, "{}", turns[2]);
    let gap = stall["max_gap_ms"].as_u64().unwrap();
    assert!((160..=400).contains(&gap), "the 300 ms stall came out as a {gap} ms gap: {}", turns[2]);
    assert_eq!(stall["bursts"], 0, "{}", turns[2]);
    assert!(stall["max_queued_ms"].as_u64().unwrap() < 500, "{}", turns[2]);
    assert_eq!(burst["gaps"], 0, "{}", turns[3]);
    assert!(burst["bursts"].as_u64().unwrap() >= 1, "{}", turns[3]);
    assert!(burst["max_queued_ms"].as_u64().unwrap() >= 5_000, "the 6 s reply sent at once: {}", turns[3]);
    // /metrics has the stall among the agents' gaps.
    let metrics = String::from_utf8(send(http, "GET", "/metrics", &[], b"").body).unwrap();
    let gaps = metrics
        .lines()
        .find_map(|l| l.strip_prefix("dialtone_agent_playout_gap_seconds_count{cause=\"agent\"} "))
        .unwrap_or_else(|| panic!("no playout gaps in /metrics"));
    assert!(gaps.trim().parse::<u64>().unwrap() >= 1, "{metrics}");
    for c in carriers {
        assert_eq!(c.finish(Duration::from_secs(15)), (Some(0), (1, 0)), "{}", d.log_text());
    }
}
