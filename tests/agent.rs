//! The agent bridge (issue 6) against peers nobody here wrote: SIPp calls `dialtone serve`
//! with `DIALTONE_INBOUND=agent:ws://…`, and the agent is a Python program on the
//! `websockets` package (fixtures/agent/echo_agent.py) speaking the Twilio Media Streams
//! protocol. The call is recorded (left the caller, right what dialtone sent it, i.e. the
//! agent's audio) and the agent logs every message it gets, so both directions are checked
//! from outside dialtone's code.
//!
//! SIPp plays pcap audio on a raw socket, so these tests need root (as tests/media.rs do).
//! Ports: dialtone's RTP in 49000-49999 (a block of 100 or 50 per test), SIPp's media in
//! 33000-33999.

mod common;

use common::agent::*;
use common::*;
use dialtone_media::resample::goertzel_power;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// 20 ms analysis windows.
const WINDOW_MS: u32 = 20;

/// A SIPp media port in 33000-33899 (SIPp also binds the one two above); successive calls,
/// and test processes (offset by the pid), walk the range in steps of four. (33900-33999 is
/// baresip's.)
fn free_media_port() -> u16 {
    free_media_port_in(33_000, 225)
}

/// `dialtone serve` bridging inbound calls to `url`, recording them, RTP in `rtp`.
fn serve(name: &str, url: &str, rtp: &str, extra: &[(&str, &str)]) -> Dialtone {
    let inbound = format!("agent:{url}");
    let mut env =
        vec![("DIALTONE_INBOUND", inbound.as_str()), ("DIALTONE_RECORD", "true"), ("DIALTONE_RTP_PORTS", rtp)];
    env.extend_from_slice(extra);
    Dialtone::serve(name, &env)
}

/// SIPp runs fixtures/sipp/`file` against `d`, with `-key` captures.
fn call(d: &Dialtone, file: &str, keys: &[(&str, &Path)]) -> SippRun {
    let scenario = root().join("fixtures/sipp").join(file);
    let target = format!("127.0.0.1:{}", d.port);
    let (sip_port, media_port) = (free_port().to_string(), free_media_port().to_string());
    #[rustfmt::skip]
    let mut a = args(&[
        "-sf", scenario.to_str().unwrap(), &target, "-i", "127.0.0.1", "-p", &sip_port,
        "-mi", "127.0.0.1", "-mp", &media_port, "-m", "1",
    ]);
    for (k, path) in keys {
        assert!(path.is_file(), "no capture {}", path.display());
        a.extend(["-key".to_string(), k.to_string(), path.to_str().unwrap().to_string()]);
    }
    run_sipp(&a, Duration::from_secs(30))
}

fn tone_pcap() -> PathBuf {
    root().join("fixtures/pcap/tone_1k_pcmu.pcap")
}

fn assert_call_ok(d: &mut Dialtone, run: &SippRun, agent: &Agent) {
    assert!(d.alive(), "dialtone died; log:\n{}", d.log_text());
    assert_eq!(
        (run.status, run.successful, run.failed),
        (Some(0), 1, 0),
        "{run:#?}\ndialtone log:\n{}\nagent log:\n{}",
        d.log_text(),
        std::fs::read_to_string(&agent.log).unwrap_or_default()
    );
}

/// The call's recording once complete: (rate, left = the caller, right = what we sent).
fn recording(d: &Dialtone) -> (u32, Vec<i16>, Vec<i16>) {
    let dir = d.data.join("recordings");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = None;
    loop {
        let wav = std::fs::read_dir(&dir)
            .ok()
            .and_then(|r| r.filter_map(Result::ok).map(|e| e.path()).find(|p| p.extension() == Some("wav".as_ref())));
        if let Some(path) = wav {
            let size = std::fs::metadata(&path).map(|m| m.len()).ok();
            if size.is_some() && size == last {
                if let Ok(mut rd) = hound::WavReader::open(&path) {
                    let spec = rd.spec();
                    if rd.len() > 0 && spec.channels == 2 {
                        let s: Vec<i16> = rd.samples::<i16>().map_while(Result::ok).collect();
                        let left = s.iter().step_by(2).copied().collect();
                        let right = s.iter().skip(1).step_by(2).copied().collect();
                        return (spec.sample_rate, left, right);
                    }
                }
            }
            last = size;
        }
        assert!(Instant::now() < deadline, "no complete recording in {}; log:\n{}", dir.display(), d.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Per 20 ms window: 'T' where the 1 kHz tone dominates, '.' near silence, 'x' otherwise.
fn window_map(x: &[i16], rate: u32) -> String {
    let n = (rate * WINDOW_MS / 1000) as usize;
    x.chunks_exact(n)
        .map(|w| {
            let p = goertzel_power(w, rate, 1000.0);
            let off = goertzel_power(w, rate, 500.0).max(goertzel_power(w, rate, 1500.0));
            let peak = w.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
            match () {
                _ if p > 1000.0 * 1000.0 / 2.0 && p > 20.0 * off => 'T',
                _ if peak < 100 => '.',
                _ => 'x',
            }
        })
        .collect()
}

fn tone_ms(map: &str) -> u32 {
    map.chars().filter(|&c| c == 'T').count() as u32 * WINDOW_MS
}

#[test]
fn echo_agent_returns_the_callers_tone() {
    let agent = Agent::start("agent-echo", "echo");
    let http = free_port();
    let listen = format!("127.0.0.1:{http}");
    let mut d = serve("agent-echo", &agent.url(), "49100-49149", &[("DIALTONE_HTTP_LISTEN", &listen)]);
    let run = call(&d, "uac_pcap_play.xml", &[("pcap", &tone_pcap())]);
    assert_call_ok(&mut d, &run, &agent);
    let (rate, left, right) = recording(&d);
    let (lmap, rmap) = (window_map(&left, rate), window_map(&right, rate));
    eprintln!("caller (left):\n{lmap}\nsent to the caller (right):\n{rmap}");
    assert!(tone_ms(&lmap) >= 2800, "the caller's tone is not in the recording:\n{lmap}");
    // The caller hears its 3 s tone back through the agent.
    assert!(tone_ms(&rmap) >= 2600, "the caller did not get its tone back ({} ms):\n{rmap}", tone_ms(&rmap));

    // The wire format, as the Python agent parsed it.
    agent.wait_stop();
    let got = agent.got();
    let events: Vec<&str> = got.iter().filter_map(|m| m["event"].as_str()).collect();
    assert_eq!(events.first(), Some(&"connected"), "{events:?}");
    assert_eq!(got[0]["protocol"], "Call");
    assert_eq!(events.get(1), Some(&"start"), "{events:?}");
    assert_eq!(events.last(), Some(&"stop"), "{events:?}");
    let start = &got[1];
    let sid = start["streamSid"].as_str().expect("streamSid");
    assert!(sid.starts_with("MZ") && start["start"]["streamSid"] == sid, "{start}");
    assert!(start["start"]["callSid"].as_str().is_some_and(|c| c.starts_with("CA")), "{start}");
    assert_eq!(start["sequenceNumber"], "1");
    assert_eq!(start["start"]["tracks"], serde_json::json!(["inbound"]));
    assert_eq!(
        start["start"]["mediaFormat"],
        serde_json::json!({"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1})
    );
    let params = &start["start"]["customParameters"];
    assert!(params["call_id"].as_str().is_some_and(|c| c.starts_with("call_")), "{params}");
    assert!(params["from"].as_str().is_some_and(|f| f.starts_with("sip:agentcaller@") || f.starts_with("sip:pcap@")));
    assert!(params["to"].as_str().is_some_and(|t| t.starts_with("sip:")), "{params}");
    let media: Vec<&Value> = got.iter().filter(|m| m["event"] == "media").collect();
    assert!(media.len() >= 150, "{} media messages", media.len());
    for (i, m) in media.iter().enumerate() {
        assert_eq!(m["streamSid"], sid);
        assert_eq!(m["media"]["track"], "inbound");
        assert_eq!(m["media"]["bytes"], 160, "{m}");
        assert_eq!(m["media"]["chunk"], (i + 1).to_string(), "{m}");
        assert_eq!(m["media"]["timestamp"], (i * 20).to_string(), "{m}");
    }
    let seqs: Vec<u64> = got.iter().skip(1).filter_map(|m| m["sequenceNumber"].as_str()?.parse().ok()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "sequence numbers not consecutive");

    // What the bridge added, from /metrics.
    let metrics = String::from_utf8(common::http::send(http, "GET", "/metrics", &[], b"").body).unwrap_or_default();
    let (to_agent, to_caller) = (latency(&metrics, "to_agent"), latency(&metrics, "to_caller"));
    eprintln!("bridge latency to_agent {to_agent:?}\nto_caller {to_caller:?}");
    assert!(to_agent.count >= 140 && to_caller.count >= 100, "{metrics}");
    // Caller -> agent: no wait for a timer (the media task wakes the bridge).
    assert!(to_agent.p50_ms <= 2.0 && to_agent.p99_ms <= 10.0, "to_agent {to_agent:?}");
    // Agent -> caller: at most the wait for the next 20 ms tick, and a little.
    assert!(to_caller.p50_ms <= 20.0 && to_caller.p99_ms <= 30.0, "to_caller {to_caller:?}");
}

/// A latency histogram from /metrics: its count, and the bucket bounds (ms) under which
/// half and 99 % of it fall.
#[derive(Debug)]
struct Latency {
    count: u64,
    p50_ms: f64,
    p99_ms: f64,
}

fn latency(metrics: &str, direction: &str) -> Latency {
    let prefix = format!("dialtone_agent_latency_seconds_bucket{{direction=\"{direction}\",le=\"");
    let buckets: Vec<(f64, u64)> = metrics
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (le, n) = rest.split_once("\"} ")?;
            Some((if le == "+Inf" { f64::INFINITY } else { le.parse::<f64>().ok()? * 1000.0 }, n.trim().parse().ok()?))
        })
        .collect();
    let count = buckets.last().map_or(0, |b| b.1);
    let at = |q: f64| buckets.iter().find(|b| b.1 as f64 >= q * count as f64).map_or(f64::NAN, |b| b.0);
    Latency { count, p50_ms: at(0.5), p99_ms: at(0.99) }
}

#[test]
fn clear_cuts_the_agents_audio_at_once() {
    // The agent sends 5 s of tone at once and `clear` 1 s later: the caller hears ~1 s.
    let agent = Agent::start("agent-clear", "clear");
    let mut d = serve("agent-clear", &agent.url(), "49150-49199", &[]);
    let run = call(&d, "uac_pcap_play.xml", &[("pcap", &tone_pcap())]);
    assert_call_ok(&mut d, &run, &agent);
    let (rate, _, right) = recording(&d);
    let map = window_map(&right, rate);
    eprintln!("sent to the caller (right):\n{map}");
    let heard = tone_ms(&map);
    // What the agent did, by its own clock: the gap between its audio and its clear.
    let events = agent.events();
    let t = |what: &str| events.iter().find(|e| e["sent"] == what).and_then(|e| e["t"].as_f64());
    let gap = (t("clear").expect("the agent sent clear") - t("tone 5 s").expect("the agent sent its tone")) * 1000.0;
    eprintln!("clear {gap:.0} ms after the audio; the caller heard {heard} ms of it");
    // The caller hears the audio until the clear, and then at most one more frame.
    assert!(
        f64::from(heard) <= gap + 40.0 && f64::from(heard) >= gap - 200.0,
        "the caller heard {heard} ms of the agent's 5 s, which it cleared after {gap:.0} ms:\n{map}"
    );
}

#[test]
fn mark_comes_back_after_the_audio_before_it_played() {
    let agent = Agent::start("agent-mark", "mark");
    let mut d = serve("agent-mark", &agent.url(), "49200-49299", &[]);
    let run = call(&d, "uac_pcap_play.xml", &[("pcap", &tone_pcap())]);
    assert_call_ok(&mut d, &run, &agent);
    let events = agent.events();
    let t = |pred: &dyn Fn(&Value) -> bool| events.iter().find(|e| pred(e)).and_then(|e| e["t"].as_f64());
    let first_audio = t(&|e| e["sent"] == "tone 100 ms").expect("the agent sent its tone");
    let sent = t(&|e| e["sent"] == "mark").expect("the agent sent its mark");
    let back = t(&|e| e["got"]["event"] == "mark").unwrap_or_else(|| panic!("no mark came back: {events:?}"));
    let (rate, _, right) = recording(&d);
    let map = window_map(&right, rate);
    eprintln!(
        "mark sent {:.3} s after the first audio, back {:.3} s after that\n{map}",
        sent - first_audio,
        back - sent
    );
    let mark = events.iter().find(|e| e["got"]["event"] == "mark").unwrap();
    assert_eq!(mark["got"]["mark"]["name"], "after-tone");
    // The 2 s of audio before the mark went out in a burst; the echo waits for its playout.
    assert!(sent - first_audio < 0.5, "the agent was slow sending: {:.3} s", sent - first_audio);
    assert!((1.9..=2.4).contains(&(back - first_audio)), "mark back {:.3} s after the audio began", back - first_audio);
    assert!(tone_ms(&map) >= 1900, "the caller heard {} ms of the 2 s:\n{map}", tone_ms(&map));
}

#[test]
fn callers_dtmf_reaches_the_agent() {
    let agent = Agent::start("agent-dtmf", "echo");
    let mut d = serve("agent-dtmf", &agent.url(), "49300-49349", &[]);
    let dir = PathBuf::from("/usr/share/sip-tester");
    let pcaps =
        ["dtmf_2833_1.pcap", "dtmf_2833_2.pcap", "dtmf_2833_3.pcap", "dtmf_2833_pound.pcap"].map(|p| dir.join(p));
    let keys: Vec<(&str, &Path)> =
        ["dtmf1", "dtmf2", "dtmf3", "dtmf4"].into_iter().zip(pcaps.iter().map(PathBuf::as_path)).collect();
    let run = call(&d, "uac_pcap_dtmf.xml", &keys);
    assert_call_ok(&mut d, &run, &agent);
    agent.wait_stop();
    let got = agent.got();
    let dtmf: Vec<&Value> = got.iter().filter(|m| m["event"] == "dtmf").collect();
    let digits: String = dtmf.iter().filter_map(|m| m["dtmf"]["digit"].as_str()).collect();
    assert_eq!(digits, "123#", "dtmf messages: {dtmf:?}");
    assert!(dtmf.iter().all(|m| m["dtmf"]["track"] == "inbound_track" && m["streamSid"].is_string()), "{dtmf:?}");
}

#[test]
fn sip_info_dtmf_reaches_the_agent() {
    // uac_info_dtmf.xml sends 5 and # as application/dtmf-relay, 9 as application/dtmf.
    let agent = Agent::start("agent-info", "echo");
    let mut d = serve("agent-info", &agent.url(), "49350-49399", &[]);
    let run = call(&d, "uac_info_dtmf.xml", &[]);
    assert_call_ok(&mut d, &run, &agent);
    agent.wait_stop();
    let got = agent.got();
    let digits: String =
        got.iter().filter(|m| m["event"] == "dtmf").filter_map(|m| m["dtmf"]["digit"].as_str()).collect();
    assert_eq!(digits, "5#9", "{got:?}");
}

#[test]
fn binary_mode_carries_pcm16_at_16_khz() {
    // DIALTONE_AGENT_FORMAT=l16-16k: binary frames of PCM16LE 16 kHz both ways (the call is
    // PCMU at 8 kHz, so the bridge converts up and down), events as JSON text.
    let agent = Agent::start_with("agent-l16", "echo", &["--l16"]);
    let mut d = serve("agent-l16", &agent.url(), "49000-49049", &[("DIALTONE_AGENT_FORMAT", "l16-16k")]);
    let run = call(&d, "uac_pcap_play.xml", &[("pcap", &tone_pcap())]);
    assert_call_ok(&mut d, &run, &agent);
    let (rate, _, right) = recording(&d);
    let map = window_map(&right, rate);
    assert!(tone_ms(&map) >= 2600, "the caller did not get its tone back ({} ms):\n{map}", tone_ms(&map));
    agent.wait_stop();
    let got = agent.got();
    let start = got.iter().find(|m| m["event"] == "start").expect("start");
    assert_eq!(
        start["start"]["mediaFormat"],
        serde_json::json!({"encoding": "pcm_s16le", "sampleRate": 16000, "channels": 1}),
        "{start}"
    );
    let frames: Vec<&Value> = got.iter().filter(|m| m.get("binary").is_some()).collect();
    assert!(frames.len() >= 150 && frames.iter().all(|m| m["binary"] == 640), "{} binary frames", frames.len());
    assert!(!got.iter().any(|m| m["event"] == "media"), "JSON media in the binary mode");
}

#[test]
fn binary_mode_clear_cuts_the_audio() {
    let agent = Agent::start_with("agent-l16-clear", "clear", &["--l16"]);
    let mut d = serve("agent-l16-clear", &agent.url(), "49050-49099", &[("DIALTONE_AGENT_FORMAT", "l16-16k")]);
    let run = call(&d, "uac_pcap_play.xml", &[("pcap", &tone_pcap())]);
    assert_call_ok(&mut d, &run, &agent);
    let (rate, _, right) = recording(&d);
    let map = window_map(&right, rate);
    let heard = tone_ms(&map);
    assert!((800..=1100).contains(&heard), "the caller heard {heard} ms of the agent's 5 s:\n{map}");
}

#[test]
fn unreachable_agent_hangs_the_call_up() {
    // Nothing listens on this port.
    let port = free_port();
    let url = format!("ws://127.0.0.1:{port}");
    let mut d = serve("agent-down", &url, "49400-49499", &[]);
    let run = call(&d, "uac_agent_hangup.xml", &[]);
    assert!(d.alive(), "dialtone died; log:\n{}", d.log_text());
    assert_eq!((run.status, run.successful), (Some(0), 1), "{run:#?}\n{}", d.log_text());
    let log = d.log_text();
    assert!(log.contains(&format!("agent {url} unreachable")) && log.contains("hanging up"), "{log}");
}

#[test]
fn unreachable_agent_plays_the_fallback_then_hangs_up() {
    let dir = temp_dir("agent-fallback");
    let wav = dir.join("sorry.wav");
    write_tone(&wav, 16_000, 1.0);
    let url = format!("ws://127.0.0.1:{}", free_port());
    let mut d = serve("agent-fallback", &url, "49500-49549", &[("DIALTONE_AGENT_FALLBACK", wav.to_str().unwrap())]);
    let run = call(&d, "uac_agent_hangup.xml", &[]);
    assert!(d.alive(), "dialtone died; log:\n{}", d.log_text());
    assert_eq!((run.status, run.successful), (Some(0), 1), "{run:#?}\n{}", d.log_text());
    let log = d.log_text();
    assert!(log.contains("unreachable") && log.contains("playing the fallback"), "{log}");
    let (rate, _, right) = recording(&d);
    let map = window_map(&right, rate);
    assert!((900..=1100).contains(&tone_ms(&map)), "the fallback's 1 s tone:\n{map}");
}

fn tls_agent(name: &str) -> Agent {
    let tls = root().join("fixtures/agent/tls");
    let (cert, key) = (tls.join("server.pem"), tls.join("server.key"));
    Agent::start_with(name, "echo", &["--tls", cert.to_str().unwrap(), key.to_str().unwrap()])
}

#[test]
fn wss_agent_behind_a_private_ca() {
    // wss:// with DIALTONE_AGENT_CA naming the CA that signed the agent's certificate.
    let agent = tls_agent("agent-wss");
    let url = format!("wss://127.0.0.1:{}", agent.port);
    let ca = root().join("fixtures/agent/tls/ca.pem");
    let mut d = serve("agent-wss", &url, "49550-49574", &[("DIALTONE_AGENT_CA", ca.to_str().unwrap())]);
    let run = call(&d, "uac_pcap_play.xml", &[("pcap", &tone_pcap())]);
    assert_call_ok(&mut d, &run, &agent);
    let (rate, _, right) = recording(&d);
    let map = window_map(&right, rate);
    assert!(tone_ms(&map) >= 2600, "the caller did not get its tone back over wss:\n{map}");
}

#[test]
fn wss_agent_with_an_unknown_certificate_is_unreachable() {
    // Without DIALTONE_AGENT_CA the agent's certificate is not trusted: the call is hung up.
    let agent = tls_agent("agent-wss-untrusted");
    let url = format!("wss://127.0.0.1:{}", agent.port);
    let mut d = serve("agent-wss-untrusted", &url, "49575-49599", &[]);
    let run = call(&d, "uac_agent_hangup.xml", &[]);
    assert!(d.alive(), "dialtone died; log:\n{}", d.log_text());
    assert_eq!((run.status, run.successful), (Some(0), 1), "{run:#?}\n{}", d.log_text());
    let log = d.log_text();
    assert!(log.contains(&format!("agent {url} unreachable")) && log.contains("certificate"), "{log}");
}

#[test]
fn agent_closing_hangs_the_call_up() {
    let agent = Agent::start("agent-close", "close");
    let mut d = serve("agent-close", &agent.url(), "49600-49699", &[]);
    let run = call(&d, "uac_agent_hangup.xml", &[]);
    assert!(d.alive(), "dialtone died; log:\n{}", d.log_text());
    assert_eq!((run.status, run.successful), (Some(0), 1), "{run:#?}\n{}", d.log_text());
    let log = d.log_text();
    assert!(log.contains(&format!("agent {} closed", agent.url())), "{log}");
}

#[test]
fn garbage_from_the_agent_is_counted_and_survived() {
    let agent = Agent::start("agent-garbage", "garbage");
    let mut d = serve("agent-garbage", &agent.url(), "49700-49799", &[]);
    let run = call(&d, "uac_pcap_play.xml", &[("pcap", &tone_pcap())]);
    assert_call_ok(&mut d, &run, &agent);
    let log = d.log_text();
    let bad = log.lines().filter(|l| l.contains("ignored") && l.contains("agent sent")).count();
    assert_eq!(bad, 6, "malformed messages logged:\n{log}");
    // And the agent's echo still plays.
    let (rate, _, right) = recording(&d);
    let map = window_map(&right, rate);
    assert!(tone_ms(&map) >= 2600, "echo after the garbage:\n{map}");
}

#[test]
fn an_agent_reading_nothing_does_not_stall_the_call() {
    // The agent reads nothing for the first 10 s of a 13 s call, with a 4 KB receive buffer,
    // so dialtone's writes to it back up: the call's audio goes on in full (recorded), the
    // messages that do not fit are dropped and counted, the call ends normally, and the
    // agent, reading again, gets the audio that came after.
    let agent = Agent::start_with("agent-silent", "silent", &["--rcvbuf", "4096"]);
    let mut d = serve("agent-silent", &agent.url(), "49800-49849", &[]);
    let started = Instant::now();
    let run = call(&d, "uac_pcap_long.xml", &[("pcap", &tone_pcap())]);
    let took = started.elapsed();
    assert_call_ok(&mut d, &run, &agent);
    assert!(took < Duration::from_secs(20), "the call took {took:?}");
    let (rate, left, right) = recording(&d);
    let map = window_map(&left, rate);
    assert!(tone_ms(&map) >= 2800, "the caller's tone, recorded while the agent read nothing:\n{map}");
    let secs = left.len() as f64 / f64::from(rate);
    assert!(secs >= 12.5, "{secs:.2} s recorded of a 13 s call");
    assert_eq!(right.len(), left.len());
    let log = d.log_text();
    assert!(log.contains("agent is not reading: messages dropped"), "no write drops counted:\n{log}");
    agent.wait_stop();
    let got = agent.got();
    let chunks: Vec<u64> = got
        .iter()
        .filter(|m| m["event"] == "media")
        .filter_map(|m| m["media"]["chunk"].as_str()?.parse().ok())
        .collect();
    let last = chunks.last().copied().unwrap_or(0);
    eprintln!("the agent got {} of {last} media chunks", chunks.len());
    assert!(last >= 600, "the agent got audio up to chunk {last} only (13 s is 650)");
    assert!(chunks.len() < last as usize, "nothing was dropped: {} of {last}", chunks.len());
    assert!(got.iter().any(|m| m["event"] == "stop"), "no stop at the end");
}

/// A mono 1 kHz tone WAV.
fn write_tone(path: &Path, rate: u32, secs: f64) {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(f64::from(rate) * secs) as usize {
        let v = 12000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / f64::from(rate)).sin();
        w.write_sample(v as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// `dialtone call <uri> --agent <url> <extra…>` with RTP in 49900-49949, bounded.
fn dialtone_call_agent(uri: &str, url: &str, extra: &[&str]) -> (Option<i32>, String, Duration) {
    let mut call = Command::new(dialtone_bin());
    call.arg("call")
        .arg(uri)
        .args(["--agent", url])
        .args(extra)
        .env("DIALTONE_SIP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("DIALTONE_RTP_PORTS", "49900-49949");
    let started = Instant::now();
    let out = run_bounded(call, Duration::from_secs(30));
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), started.elapsed())
}

#[test]
fn dialtone_call_bridges_to_the_agent() {
    // `dialtone call --agent` to a SIPp UAS that echoes RTP: the agent's 2 s of tone goes
    // to the callee (right channel), comes back from SIPp (left), and its mark returns.
    let agent = Agent::start("agent-cli", "mark");
    let mp = free_media_port().to_string();
    let uas = SippPeer::start("agent-cli-uas", &["-sn", "uas", "-rtp_echo", "-mi", "127.0.0.1", "-mp", &mp]);
    let rec = temp_dir("agent-cli").join("call.wav");
    let uri = format!("sip:service@127.0.0.1:{}", uas.port);
    let (code, stderr, _) =
        dialtone_call_agent(&uri, &agent.url(), &["--duration", "3", "--record", rec.to_str().unwrap()]);
    let (status, stats) = uas.finish(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("call: bridging to the agent at ws://127.0.0.1:"), "{stderr}");
    assert_eq!((status, stats), (Some(0), (1, 0)), "{stderr}");
    let mut r = hound::WavReader::open(&rec).expect("the --record WAV");
    let rate = r.spec().sample_rate;
    let s: Vec<i16> = r.samples::<i16>().map_while(Result::ok).collect();
    let left: Vec<i16> = s.iter().step_by(2).copied().collect();
    let right: Vec<i16> = s.iter().skip(1).step_by(2).copied().collect();
    let (lmap, rmap) = (window_map(&left, rate), window_map(&right, rate));
    assert!(tone_ms(&rmap) >= 1900, "the agent's tone sent to the callee:\n{rmap}\n{stderr}");
    assert!(tone_ms(&lmap) >= 1500, "SIPp's echo of it:\n{lmap}\n{stderr}");
    agent.wait_stop();
    let got = agent.got();
    assert!(got.iter().any(|m| m["event"] == "mark" && m["mark"]["name"] == "after-tone"), "no mark back");
    let start = got.iter().find(|m| m["event"] == "start").expect("start");
    assert_eq!(start["start"]["customParameters"]["to"], uri.as_str(), "{start}");
    assert!(got.iter().filter(|m| m["event"] == "media").count() >= 100, "the callee's audio did not reach the agent");
}

#[test]
fn dialtone_call_hangs_up_when_the_agent_is_unreachable() {
    let uas = SippPeer::start("agent-cli-down", &["-sn", "uas"]);
    let url = format!("ws://127.0.0.1:{}", free_port());
    let uri = format!("sip:service@127.0.0.1:{}", uas.port);
    let (code, stderr, took) = dialtone_call_agent(&uri, &url, &["--duration", "15"]);
    let (status, stats) = uas.finish(Duration::from_secs(10));
    assert!(stderr.contains(&format!("call: agent {url} unreachable")), "{stderr}");
    assert!(took < Duration::from_secs(10), "the call was not hung up at once: {took:?}\n{stderr}");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!((status, stats), (Some(0), (1, 0)), "{stderr}");
}

#[test]
fn baresip_opus_call_is_bridged_at_16_khz() {
    // baresip calls with Opus alone: the call's audio is 16 kHz, so the bridge converts the
    // caller's audio to 8 kHz µ-law for the agent and the agent's echo back to 16 kHz.
    let agent = Agent::start("agent-opus", "echo");
    let mut d = serve("agent-opus", &agent.url(), "49850-49899", &[]);
    let dir = temp_dir("agent-opus-baresip");
    let src = dir.join("src.wav");
    // baresip's Opus runs at 48 kHz stereo; aufile needs its source to match.
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&src, spec).unwrap();
    for i in 0..48_000 * 6 {
        let v = (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * f64::from(i) / 48_000.0).sin()) as i16;
        w.write_sample(v).unwrap();
        w.write_sample(v).unwrap();
    }
    w.finalize().unwrap();
    let snd = dir.join("snd");
    std::fs::create_dir_all(&snd).unwrap();
    let sip_port = free_port();
    let config = format!(
        "sip_listen 127.0.0.1:{sip_port}\n\
         net_interface 127.0.0.1\n\
         audio_source aufile,{src}\n\
         rtp_ports 33900-33999\n\
         jitter_buffer_delay 0-0\n\
         statmode_default off\n\
         module_path /usr/lib/baresip/modules\n\
         module opus.so\n\
         module aufile.so\n\
         module sndfile.so\n\
         module_tmp account.so\n\
         module_app menu.so\n\
         snd_path {snd}\n",
        src = src.display(),
        snd = snd.display(),
    );
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(dir.join("accounts"), "<sip:baresip@127.0.0.1>;regint=0;audio_codecs=opus/48000/2\n").unwrap();
    let dial = format!("/dial sip:echo@127.0.0.1:{}", d.port);
    let mut cmd = Command::new("baresip");
    cmd.arg("-f").arg(&dir).args(["-e", &dial, "-t", "5"]);
    let out = run_bounded(cmd, Duration::from_secs(20));
    let baresip_log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(d.alive(), "dialtone died; log:\n{}", d.log_text());
    let (rate, left, right) = recording(&d);
    let (lmap, rmap) = (window_map(&left, rate), window_map(&right, rate));
    let diag = || format!("caller:\n{lmap}\nsent:\n{rmap}\nbaresip:\n{baresip_log}\ndialtone:\n{}", d.log_text());
    assert_eq!(rate, 16_000, "not an Opus call\n{}", diag());
    assert!(tone_ms(&lmap) >= 3000, "baresip's tone did not arrive\n{}", diag());
    assert!(tone_ms(&rmap) >= 3000, "the agent's echo at 16 kHz\n{}", diag());
    agent.wait_stop();
    let media: Vec<Value> = agent.got().into_iter().filter(|m| m["event"] == "media").collect();
    assert!(media.len() >= 150 && media.iter().all(|m| m["media"]["bytes"] == 160), "{} media messages", media.len());
}

/// `dialtone serve` with the API (internal key `k`) and a SIPp trunk; the API's port.
fn serve_api(name: &str, trunk: &SippPeer, rtp: &str) -> (Dialtone, u16) {
    let http = free_port();
    let d = Dialtone::serve(
        name,
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{}", trunk.port)),
            ("DIALTONE_RTP_PORTS", rtp),
        ],
    );
    assert!(common::http::wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    (d, http)
}

fn api(http: u16, method: &str, path: &str, body: &str) -> Value {
    common::http::send(http, method, path, &[("X-Internal-Key", "k")], body.as_bytes()).json()
}

/// Polls the API call `id` (bounded) until `done` says so; its `data`.
fn api_wait(d: &Dialtone, http: u16, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let c = api(http, "GET", &format!("/api/calls/{id}"), "");
        if done(&c["data"]) {
            return c["data"].clone();
        }
        assert!(Instant::now() < deadline, "{c}\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn api_call_with_agent_url_is_bridged_to_its_agent() {
    // POST /api/calls/create with agent_url: the trunk (SIPp, echoing RTP) answers, the
    // agent's 2 s of tone goes out and its mark comes back; the agent learns the API's ids.
    let agent = Agent::start("agent-api", "mark");
    let mp = free_media_port().to_string();
    let trunk = SippPeer::start("agent-api-trunk", &["-sn", "uas", "-rtp_echo", "-mi", "127.0.0.1", "-mp", &mp]);
    let (d, http) = serve_api("agent-api", &trunk, "49950-49974");
    let body =
        format!(r#"{{"contact_id": "contact_ai", "phone_number": "+15551230042", "agent_url": "{}"}}"#, agent.url());
    let created = api(http, "POST", "/api/calls/create", &body);
    let id = created["data"]["id"].as_str().unwrap_or_else(|| panic!("{created}")).to_string();
    api_wait(&d, http, &id, |c| c["status"] == "in-progress");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !agent.got().iter().any(|m| m["event"] == "mark") {
        assert!(Instant::now() < deadline, "no mark back\n{}", d.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    api(http, "POST", &format!("/api/calls/{id}/hangup"), "");
    api_wait(&d, http, &id, |c| c["status"] == "completed");
    let (code, stats) = trunk.finish(Duration::from_secs(10));
    assert_eq!((code, stats), (Some(0), (1, 0)), "{}", d.log_text());
    agent.wait_stop();
    let got = agent.got();
    let start = got.iter().find(|m| m["event"] == "start").expect("start");
    let params = &start["start"]["customParameters"];
    assert_eq!(params["call_id"], id.as_str(), "{start}");
    assert_eq!(params["contact_id"], "contact_ai", "{start}");
    assert!(params["to"].as_str().is_some_and(|t| t.starts_with("sip:+15551230042@")), "{start}");
    assert!(got.iter().filter(|m| m["event"] == "media").count() >= 50, "the callee's audio did not reach the agent");
}

#[test]
fn api_call_whose_agent_is_unreachable_ends_with_the_reason() {
    let trunk = SippPeer::start("agent-api-down-trunk", &["-sn", "uas"]);
    let (d, http) = serve_api("agent-api-down", &trunk, "49975-49999");
    let body = format!(
        r#"{{"contact_id": "c", "phone_number": "+15551230043", "agent_url": "ws://127.0.0.1:{}/bot?token=secret"}}"#,
        free_port()
    );
    let created = api(http, "POST", "/api/calls/create", &body);
    let id = created["data"]["id"].as_str().unwrap_or_else(|| panic!("{created}")).to_string();
    let done = api_wait(&d, http, &id, |c| c["status"] == "completed");
    assert_eq!(done["reason"], "agent unreachable", "{done}");
    let (code, stats) = trunk.finish(Duration::from_secs(10));
    assert_eq!((code, stats), (Some(0), (1, 0)), "{}", d.log_text());
    let log = d.log_text();
    assert!(log.contains("unreachable") && !log.contains("secret"), "the log shows the agent's token:\n{log}");
}
