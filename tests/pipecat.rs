//! Issue 21's first acceptance, over SIP: a real Pipecat bot from PyPI
//! (fixtures/agent/pipecat_bot.py: `FastAPIWebsocketTransport` with `TwilioFrameSerializer`,
//! as in Pipecat's Twilio examples) whose processor answers each caller turn with a tone a
//! fixed think time D after the caller stopped. Two API calls to SIPp carriers that say
//! "Hello?" twice (espeak-ng, 5 s apart), each bridged to such a bot (D = 400 ms and
//! 1200 ms, run with the venv `./dev test` makes). Each call's `turns` show two turns, both
//! answered, and every turn's response latency is D plus one constant, the pipeline's own,
//! within ±30 ms (the constant being the mean of latency − D over the four turns).
//!
//! The constant's parts: the bot's end-of-turn wait (15 quiet blocks of 20 ms after its last
//! speech block: 300 ms of the caller's audio); where dialtone's detector and the bot's
//! threshold disagree on the end of the same "Hello?" (they agree to the block here); and the
//! round trip dialtone → bot → dialtone (the deciding `media` out, the tone's first 40 ms
//! chunk back: a few ms) with the tone's wait for the next 20 ms media tick, which together
//! cost nothing: dialtone dates the frame a tick sends as it dates the frame that tick hears
//! (an agent answering at once reads 0 ms), so with D a multiple of 20 ms the constant is
//! 300 ms until the round trip passes 20 ms (then that turn reads 20 ms more). Latencies come
//! in whole 20 ms blocks.

mod common;

use common::agent::Agent;
use common::http::{agent_calls, hang_up, send, serve_configured, two_trunks, wait_status};
use common::*;
use serde_json::Value;
use std::time::Duration;

const AUTH: [(&str, &str); 1] = [("X-Internal-Key", "k")];
/// How far any turn's latency − D may be from the constant.
const TOLERANCE_MS: f64 = 30.0;

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
    let urls: Vec<String> = bots.iter().map(|(_, bot)| bot.url()).collect();
    let ids = agent_calls(&d, http, &AUTH, &urls);
    // Two turns of 5 s each, and the second reply.
    std::thread::sleep(Duration::from_millis(11_000));
    hang_up(http, &AUTH, &ids);
    // Every turn: (D, where dialtone and where the bot put the end of the caller's speech,
    // the latency dialtone reports).
    let mut turns_seen: Vec<(u64, i64, Option<i64>, i64)> = Vec::new();
    for ((delay, bot), id) in bots.iter().zip(&ids) {
        let done = wait_status(&d, http, &AUTH, id, "completed", Duration::from_secs(10));
        let turns: &Value = &done["turns"];
        let replies: Vec<Value> = bot.events().into_iter().filter(|e| e["sent"] == "reply").collect();
        let n = replies.len();
        assert_eq!(turns["summary"]["turns"], 2, "bot {delay} ms ({n} replies): {turns}\n{}", d.log_text());
        assert_eq!(turns["summary"]["answered"], 2, "bot {delay} ms ({n} replies): {turns}");
        for (i, t) in turns["turns"].as_array().unwrap().iter().enumerate() {
            let bot_end = replies.get(i).and_then(|r| r["speech_end_ms"].as_i64());
            turns_seen.push((*delay, t["caller_end_ms"].as_i64().unwrap(), bot_end, t["latency_ms"].as_i64().unwrap()));
        }
        eprintln!("Pipecat bot D = {delay} ms: {}", turns["summary"]);
    }
    let constant = turns_seen.iter().map(|(delay, _, _, l)| (l - *delay as i64) as f64).sum::<f64>() / 4.0;
    // The tone's wait for the media tick that sends it (the round trip to the bot is in it).
    let metrics = String::from_utf8(send(http, "GET", "/metrics", &[], b"").body).unwrap();
    let figure = |name: &str| {
        let line = format!("dialtone_agent_latency_seconds_{name}{{direction=\"to_caller\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(&line)).and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(0.0)
    };
    eprintln!(
        "pipeline constant {constant:.1} ms (mean of latency - D); the tone's wait for its media tick {:.1} ms on average",
        1000.0 * figure("sum") / figure("count").max(1.0)
    );
    for (delay, caller_end, bot_end, latency) in &turns_seen {
        let off = (latency - *delay as i64) as f64 - constant;
        eprintln!(
            "  D {delay:>4} ms: caller's end {caller_end} ms (the bot's {bot_end:?}), latency {latency} ms, latency - D - constant {off:+.1} ms"
        );
    }
    for (delay, _, _, latency) in &turns_seen {
        let off = (latency - *delay as i64) as f64 - constant;
        assert!(
            off.abs() <= TOLERANCE_MS,
            "D = {delay} ms: latency {latency} ms is {off:+.1} ms from D + the constant {constant:.1} ms (turns: {turns_seen:?})"
        );
    }
    // The constant is mostly the bot's 300 ms end-of-turn wait.
    assert!((250.0..=450.0).contains(&constant), "constant {constant:.1} ms (turns: {turns_seen:?})");
    for peer in [a, b] {
        assert_eq!(peer.finish(Duration::from_secs(15)), (Some(0), (1, 0)), "{}", d.log_text());
    }
}

/// The same bots called by `dialtone test` straight into their WebSocket (no SIP): each
/// turn's latency is D plus one constant within ±30 ms again (the script's utterance ends
/// on an exact sample); then 50 callers at 10 a second against one bot all pass with a
/// report each, and an impossible expectation fails naming its turn.
#[test]
fn dialtone_test_measures_the_pipecat_bot_over_its_websocket() {
    use common::tester::{dialtone_test, latencies, run_calls, text};
    let dir = temp_dir("pipecat-test");
    let bots: Vec<(u64, Agent)> =
        [400u64, 1200].iter().map(|d| (*d, Agent::pipecat(&format!("pipecat-test-{d}"), *d))).collect();
    let mut seen: Vec<(u64, i64)> = Vec::new();
    for (delay, bot) in &bots {
        let json = dir.join(format!("{delay}.json"));
        let (o, report) = run_calls(&bot.url(), "two_turns.toml", 1, 1, &json, Duration::from_secs(60));
        assert_eq!(o.status.code(), Some(0), "bot {delay} ms: {}", text(&o));
        let l = latencies(&report);
        assert_eq!(l.len(), 2, "two turns, two replies: {}", text(&o));
        seen.extend(l.into_iter().map(|l| (*delay, l)));
    }
    let constant = seen.iter().map(|(d, l)| (*l - *d as i64) as f64).sum::<f64>() / seen.len() as f64;
    eprintln!("dialtone test ws://: (D, latency) {seen:?}, constant {constant:.1} ms");
    for (d, l) in &seen {
        let off = (*l - *d as i64) as f64 - constant;
        assert!(off.abs() <= TOLERANCE_MS, "D {d}: latency {l} is {off:+.1} ms off D + {constant:.1}: {seen:?}");
    }

    // Fifty callers at ten a second, all to the 400 ms bot.
    let (delay, bot) = &bots[0];
    let json = dir.join("fifty.json");
    let (o, report) = run_calls(&bot.url(), "two_turns.toml", 50, 10, &json, Duration::from_secs(90));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(report["calls"].as_array().map(Vec::len), Some(50), "a report per call: {report}");
    assert_eq!(report["summary"]["calls_passed"], 50, "{}", report["summary"]);
    let l = latencies(&report);
    assert_eq!(l.len(), 100, "every turn answered: {}", report["summary"]);
    let (min, max) = (l.iter().min().unwrap(), l.iter().max().unwrap());
    eprintln!("50 callers to the {delay} ms bot: latency {min}..{max} ms; summary {}", report["summary"]);

    // An expectation no bot can meet: exit 1, the turn named.
    let wav = root().join("fixtures/scripts/table_for_two.wav");
    let impossible = dir.join("impossible.toml");
    std::fs::write(
        &impossible,
        format!("name = \"impossible\"\n[[turn]]\nname = \"hello\"\nwav = {wav:?}\nexpect_answer_within_ms = 10\n"),
    )
    .unwrap();
    let o = dialtone_test(&[&bot.url(), "--script", &impossible.to_string_lossy()], Duration::from_secs(60));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.lines().any(|l| l.starts_with("FAIL call 1 turn 1 (\"hello\"): expect_answer_within_ms: measured ")),
        "no FAIL line naming the turn: {}",
        text(&o)
    );
}
