//! `dialtone test` (issue 21's scripted test callers) against a real bot: the Python agent
//! of fixtures/agent/echo_agent.py in `reply` mode (Twilio Media Streams on the `websockets`
//! package), which answers each caller turn after 300 ms of caller silence plus a think
//! time D. Straight into the bot (`ws://`), 50 callers at once, an impossible expectation,
//! malformed scripts, and over SIP through a `dialtone serve` that bridges its inbound
//! calls to the bot (the bot hears the script through two dialtones).

mod common;

use common::agent::Agent;
use common::tester::{dialtone_test, latencies, read_json, run_calls, script, text};
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The bot's reply: the first 1.2 s of the "human" fixture (its "Hello?", after a lead-in).
fn speech_reply(dir: &Path) -> PathBuf {
    let out = dir.join("reply.wav");
    let mut r = hound::WavReader::open(root().join("fixtures/amd/human.wav")).unwrap();
    let spec = r.spec();
    let samples: Vec<i16> = r.samples::<i16>().take(9600).map(Result::unwrap).collect();
    let mut w = hound::WavWriter::create(&out, spec).unwrap();
    for s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    out
}

fn bot(name: &str, delay_ms: u64, reply: &Path) -> Agent {
    let delay = delay_ms.to_string();
    let reply = reply.to_string_lossy().to_string();
    Agent::start_with(name, "reply", &["--reply-delay-ms", &delay, "--reply-wav", &reply, "--lifetime", "120"])
}

#[test]
fn ws_latency_is_the_bots_think_time_plus_a_constant() {
    let dir = temp_dir("bot-test-ws");
    let reply = speech_reply(&dir);
    let runs: Vec<(u64, Agent)> =
        [400u64, 1200].iter().map(|d| (*d, bot(&format!("bot-test-ws-{d}"), *d, &reply))).collect();
    // Both callers at once, each to its own bot.
    let outs: Vec<(u64, Output, PathBuf, PathBuf, PathBuf)> = std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(d, agent)| {
                let (json, junit, rec) =
                    (dir.join(format!("{d}.json")), dir.join(format!("{d}.xml")), dir.join(format!("rec-{d}")));
                let url = agent.url();
                let d = *d;
                s.spawn(move || {
                    let o = dialtone_test(
                        &[
                            &url,
                            "--script",
                            &script("two_turns.toml"),
                            "--json",
                            &json.to_string_lossy(),
                            "--junit",
                            &junit.to_string_lossy(),
                            "--record",
                            &rec.to_string_lossy(),
                        ],
                        Duration::from_secs(60),
                    );
                    (d, o, json, junit, rec)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut means = Vec::new();
    for (d, o, json, junit, rec) in &outs {
        assert_eq!(o.status.code(), Some(0), "bot {d} ms: {}", text(o));
        let report = read_json(json);
        assert_eq!(report["summary"]["calls_passed"], 1, "{report}");
        let l = latencies(&report);
        assert_eq!(l.len(), 2, "two turns, two replies: {report}");
        // The think time, the bot's own 300 ms end-of-speech wait, and the lead-in of its
        // reply before the "Hello?" (a few hundred ms), with slack for a loaded machine.
        for latency in &l {
            let (low, high) = (*d as i64 + 300, *d as i64 + 1300);
            assert!((low..=high).contains(latency), "bot {d} ms: latency {latency} not in {low}..{high}: {report}");
        }
        means.push(l.iter().sum::<i64>() / 2);
        eprintln!("bot think time {d} ms: latencies {l:?}");
        // The caller's timing is exact: the 1.6 s sentence ends 1607 ms in (16 kHz → 8 kHz).
        let t1 = &report["calls"][0]["turns"][0];
        assert_eq!(t1["caller_end_ms"].as_u64().unwrap() - t1["caller_start_ms"].as_u64().unwrap(), 1607, "{t1}");
        let xml = std::fs::read_to_string(junit).unwrap();
        assert!(xml.contains("tests=\"2\" failures=\"0\""), "{xml}");
        assert!(xml.contains("name=\"turn 2 (second): expect_answer_within_ms\""), "{xml}");
        // The recording: two channels, the bot left, the caller right, as long as the call.
        let wav = hound::WavReader::open(rec.join("call-1.wav")).unwrap();
        assert_eq!((wav.spec().channels, wav.spec().sample_rate), (2, 8000));
        let secs = f64::from(wav.duration()) / 8000.0;
        let call_secs = report["calls"][0]["duration_ms"].as_f64().unwrap() / 1000.0;
        assert!((secs - call_secs).abs() < 0.5, "recorded {secs} s of a {call_secs} s call");
    }
    // The pipeline's own share is the same for both: the latencies differ by the 800 ms
    // between the think times, within three 20 ms frames.
    let gap = means[1] - means[0];
    assert!((740..=860).contains(&gap), "the think times' 800 ms came out as {gap} ({means:?})");
}

#[test]
fn fifty_calls_at_ten_a_second_all_pass() {
    let dir = temp_dir("bot-test-fifty");
    let agent = bot("bot-test-fifty", 300, &speech_reply(&dir));
    let json = dir.join("report.json");
    let (o, report) = run_calls(&agent.url(), "two_turns.toml", 50, 10, &json, Duration::from_secs(120));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let calls = report["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 50);
    assert!(calls.iter().all(|c| c["passed"] == true && c["error"].is_null()), "{report}");
    assert_eq!(report["summary"]["calls_passed"], 50);
    assert_eq!(latencies(&report).len(), 100, "every turn of every call answered");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("50/50 started") && stderr.contains("50 done, 0 failed"), "{stderr}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("50 calls") && stdout.trim_end().ends_with("PASS"), "{stdout}");
    eprintln!("{stdout}");
}

#[test]
fn an_impossible_expectation_fails_naming_the_turn() {
    let dir = temp_dir("bot-test-impossible");
    let agent = bot("bot-test-impossible", 300, &speech_reply(&dir));
    let wav = root().join("fixtures/scripts/table_for_two.wav");
    let s = dir.join("impossible.toml");
    std::fs::write(
        &s,
        format!(
            "name = \"impossible\"\n[[turn]]\nwav = {wav:?}\nexpect_answer_within_ms = 4000\n\
             [[turn]]\nname = \"the second\"\nwait_ms = 300\nwav = {wav:?}\nexpect_answer_within_ms = 10\n"
        ),
    )
    .unwrap();
    let junit = dir.join("junit.xml");
    let o = dialtone_test(
        &[&agent.url(), "--script", &s.to_string_lossy(), "--junit", &junit.to_string_lossy()],
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("FAIL call 1 turn 2 (\"the second\"): expect_answer_within_ms: measured "))
        .unwrap_or_else(|| panic!("no FAIL line naming the turn: {}", text(&o)));
    assert!(line.ends_with("expected <= 10 ms"), "{line}");
    assert!(!stdout.contains("FAIL call 1 turn 1"), "turn 1 held: {stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"2\" failures=\"1\"") && xml.contains("<failure message=\"measured "), "{xml}");
}

#[test]
fn a_malformed_script_is_refused_naming_the_turn_and_field() {
    let dir = temp_dir("bot-test-malformed");
    let cases = [
        ("[[turn]]\nexpect_answer_in_ms = 5\n", vec!["expect_answer_in_ms"]),
        ("[[turn]]\nwait_ms = 10\n[[turn]]\nname = \"pin\"\ndtmf = \"12x\"\n", vec!["turn 2 (\"pin\"): dtmf", "'x'"]),
        ("[[turn]]\nwav = \"missing.wav\"\n", vec!["turn 1: wav", "missing.wav"]),
        ("[[turn]]\nsay = \"hi\"\nexpect_stop_within_ms = 300\n", vec!["turn 1: expect_stop_within_ms", "barge_in_ms"]),
        ("name = \"no turns\"\n", vec!["no [[turn]]"]),
        ("[[turn]\nsay = \"unclosed\"\n", vec!["bad.toml"]),
    ];
    for (i, (body, want)) in cases.iter().enumerate() {
        let s = dir.join(format!("bad{i}.toml"));
        std::fs::write(&s, body).unwrap();
        // Nothing is called: the script is refused first.
        let o = dialtone_test(&["ws://127.0.0.1:9", "--script", &s.to_string_lossy()], Duration::from_secs(20));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{body}: {}", text(&o));
        for w in want {
            let w = w.replace("bad.toml", &format!("bad{i}.toml"));
            assert!(err.contains(&w), "{body}: {w:?} not in {err}");
        }
    }
}

#[test]
fn sip_target_through_dialtone_serve_to_the_bot() {
    let dir = temp_dir("bot-test-sip");
    // This bot replies with 800 ms of a 1 kHz tone and ignores barge-in.
    let tone = dir.join("tone.wav");
    write_tone_wav(&tone, 0.8, 1000.0);
    let delay = 400i64;
    let agent = bot("bot-test-sip", delay as u64, &tone);
    let inbound = format!("agent:{}", agent.url());
    // 40100–40299: no other test's RTP range.
    let d = Dialtone::serve(
        "bot-test-sip",
        &[("DIALTONE_INBOUND", inbound.as_str()), ("DIALTONE_RTP_PORTS", "40100-40199")],
    );
    let wav = root().join("fixtures/scripts/table_for_two.wav");
    let s = dir.join("sip.toml");
    std::fs::write(
        &s,
        format!(
            "name = \"over sip\"\nhangup_after_ms = 30000\n\
             [[turn]]\nwav = {wav:?}\nexpect_answer_within_ms = 4000\nexpect_tone_hz = 1000\n\
             [[turn]]\nname = \"interrupts\"\nbarge_in_ms = 200\nwav = {wav:?}\nexpect_stop_within_ms = 2000\n"
        ),
    )
    .unwrap();
    let json = dir.join("report.json");
    let target = format!("sip:bot@127.0.0.1:{}", d.port);
    let o = dialtone_test(
        &[
            &target,
            "--sip-listen",
            "127.0.0.1:0",
            "--rtp-ports",
            "40200-40299",
            "--script",
            &s.to_string_lossy(),
            "--calls",
            "2",
            "--rate",
            "5",
            "--json",
            &json.to_string_lossy(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(0), "{}\nserve:\n{}", text(&o), d.log_text());
    let report = read_json(&json);
    assert_eq!(report["summary"]["calls_passed"], 2, "{report}");
    for call in report["calls"].as_array().unwrap() {
        let t1 = &call["turns"][0];
        // The think time and the bot's 300 ms wait (which starts on the sentence's quiet
        // last syllable, a little before its last sample); the tone has no lead-in; then
        // two jitter buffers and packetization, with slack for load.
        let latency = t1["latency_ms"].as_i64().unwrap();
        assert!((delay + 100..=delay + 900).contains(&latency), "latency {latency}: {call}");
        assert!(t1["tone_at_ms"].is_u64(), "the 1 kHz reply was found: {t1}");
        // The caller barged 200 ms into the 800 ms tone, which the bot played to its end.
        let t2 = &call["turns"][1];
        let stop = t2["stop_ms"].as_u64().unwrap_or_else(|| panic!("no stop measured: {t2}"));
        assert!((450..=800).contains(&stop), "the bot stopped {stop} ms after the barge-in, not ~600: {t2}");
        assert_eq!(
            t2["barge_in_at_ms"].as_u64().unwrap() - call["turns"][0]["reply_start_ms"].as_u64().unwrap(),
            200,
            "{call}"
        );
    }
    // The bot heard the script: two connections, each with a `start`.
    let starts = agent.got().iter().filter(|m| m["event"] == "start").count();
    assert_eq!(starts, 2, "{}", d.log_text());
}

/// A reply of DTMF 5 and # (150 ms each, 100 ms apart), then 500 ms of a 1 kHz tone.
fn keys_and_tone_reply(path: &Path) {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: 8000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let sine = |f: f64, i: usize| (2.0 * std::f64::consts::PI * f * i as f64 / 8000.0).sin();
    let mut put = |ms: usize, f: &dyn Fn(usize) -> f64| {
        for i in 0..ms * 8 {
            w.write_sample((f(i) * 6000.0) as i16).unwrap();
        }
    };
    put(150, &|i| sine(770.0, i) + sine(1336.0, i));
    put(100, &|_| 0.0);
    put(150, &|i| sine(941.0, i) + sine(1477.0, i));
    put(100, &|_| 0.0);
    put(500, &|i| 2.0 * sine(1000.0, i));
    w.finalize().unwrap();
}

#[test]
fn ws_reply_digits_and_tones_are_checked() {
    let dir = temp_dir("bot-test-keys");
    let reply = dir.join("keys.wav");
    keys_and_tone_reply(&reply);
    let agent = bot("bot-test-keys", 200, &reply);
    let wav = root().join("fixtures/scripts/table_for_two.wav");
    let s = dir.join("keys.toml");
    std::fs::write(
        &s,
        format!(
            "[[turn]]\nwav = {wav:?}\nexpect_dtmf = \"5#\"\nexpect_tone_hz = 1000\n\
             [[turn]]\nname = \"wrong tone\"\nwait_ms = 300\nwav = {wav:?}\nexpect_tone_hz = 2000\n"
        ),
    )
    .unwrap();
    let json = dir.join("report.json");
    let o = dialtone_test(
        &[&agent.url(), "--script", &s.to_string_lossy(), "--json", &json.to_string_lossy()],
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report = read_json(&json);
    let turns = &report["calls"][0]["turns"];
    assert_eq!(turns[0]["dtmf"], "5#", "{report}");
    assert!(turns[0]["checks"].as_array().unwrap().iter().all(|c| c["passed"] == true), "{report}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(
            "FAIL call 1 turn 2 (\"wrong tone\"): expect_tone_hz: measured no such tone in the reply, expected 2000 Hz"
        ),
        "{}",
        text(&o)
    );
    assert!(!stdout.contains("FAIL call 1 turn 1"), "{stdout}");
}

#[test]
fn barge_in_into_a_bot_that_clears_its_audio() {
    // The `clear` bot plays 5 s of a 1 kHz tone at once and sends `clear` 1 s after `start`
    // (its own timer: it does not listen). The caller barges in 300 ms into the tone; the
    // bot's audio stops when the clear comes, about 700 ms later, not after the 5 s.
    let agent = Agent::start_with("bot-test-clear", "clear", &["--lifetime", "60"]);
    let dir = temp_dir("bot-test-clear");
    let wav = root().join("fixtures/scripts/table_for_two.wav");
    let s = dir.join("clear.toml");
    std::fs::write(
        &s,
        format!(
            "hangup_after_ms = 8000\n[[turn]]\nname = \"into the greeting\"\nbarge_in_ms = 300\nwav = {wav:?}\n\
             expect_stop_within_ms = 1500\nreply_timeout_ms = 1000\n"
        ),
    )
    .unwrap();
    let json = dir.join("report.json");
    let o = dialtone_test(
        &[&agent.url(), "--script", &s.to_string_lossy(), "--json", &json.to_string_lossy()],
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report = read_json(&json);
    let t = &report["calls"][0]["turns"][0];
    let stop = t["stop_ms"].as_u64().unwrap_or_else(|| panic!("no stop measured: {report}"));
    assert!((400..=1200).contains(&stop), "stopped {stop} ms after the barge-in: {t}");
    assert!(agent.events().iter().any(|e| e["sent"] == "clear"), "the bot sent its clear");
}

#[test]
fn say_turns_are_spoken_by_espeak_ng_or_refused_naming_the_turn() {
    let dir = temp_dir("bot-test-say");
    let s = dir.join("say.toml");
    std::fs::write(
        &s,
        "[[turn]]\nname = \"hello\"\nsay = \"Hello, is anybody there?\"\nexpect_answer_within_ms = 4000\n",
    )
    .unwrap();
    // Without espeak-ng (an empty PATH): a clear error naming the turn, before any call.
    let mut cmd = Command::new(dialtone_bin());
    cmd.args(["test", "ws://127.0.0.1:9", "--script"]).arg(&s).env("PATH", &dir);
    let o = run_bounded(cmd, Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("turn 1 (\"hello\"): say") && err.contains("espeak-ng is not installed"), "{err}");
    // With it (when this machine has it), the bot hears the sentence and answers it.
    let has_espeak = Command::new("espeak-ng").arg("--version").output().is_ok_and(|o| o.status.success());
    if !has_espeak {
        eprintln!("espeak-ng is not installed: the spoken run is skipped");
        return;
    }
    let agent = bot("bot-test-say", 300, &speech_reply(&dir));
    let json = dir.join("report.json");
    let o = dialtone_test(
        &[&agent.url(), "--script", &s.to_string_lossy(), "--json", &json.to_string_lossy()],
        Duration::from_secs(40),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report = read_json(&json);
    let t = &report["calls"][0]["turns"][0];
    let said = t["caller_end_ms"].as_u64().unwrap() - t["caller_start_ms"].as_u64().unwrap();
    assert!((800..=4000).contains(&said), "the sentence lasted {said} ms: {t}");
    assert_eq!(latencies(&report).len(), 1, "{report}");
}
