//! Interop with a real softphone, baresip, over 127.0.0.1:
//!
//! - baresip calls `dialtone serve` (inbound `echo`), once with Opus only, once with PCMU
//!   only and once with G.722 only. It sends 1 s of silence and then a tone; what it receives
//!   must hold that tone (checked by frequency, not bytes, so any echo path — reflected
//!   packets or decode → re-encode — passes). The round trip is measured and printed, not
//!   asserted beyond a sanity bound. The G.722 tone is at 5 kHz, which only a wideband path
//!   carries, and serve must log the call's codec as G722.
//! - `dialtone call` calls baresip (auto-answer) with G.722 only: the call runs G722/8000
//!   and baresip decodes the 5 kHz tone dialtone plays.
//! - baresip calls `dialtone serve` with `DIALTONE_INBOUND=play:<wav>` (a 44.1 kHz stereo WAV,
//!   which dialtone converts to the call's 8 kHz): what baresip decodes starts with the
//!   prompt's tone, for the prompt's length, then silence.
//! - `dialtone call --dtmf --play` calls baresip (auto-answer): baresip reports each RFC 4733
//!   digit once, in order, and decodes the played tone.
//! - baresip sends RFC 4733 digits to `dialtone serve`, which logs each once, in order.
//! - baresip is the trunk of `dialtone serve`: a call placed with `POST /api/calls/create`
//!   reaches it, and digits sent with `POST /api/calls/{id}/dtmf` arrive as RFC 4733 events.
//!
//! baresip (1.0) runs headless: `aufile` is its audio source, no audio player at all, and the
//! `sndfile` filter dumps what it encodes (`*-enc.wav`) and what it decodes (`*-dec.wav`). The
//! dumps are written frame by frame as audio passes through, so both start at their first
//! frame and the tone sits at the same offset in each; the round trip is instead taken from
//! the wall clock, by watching the two files grow: the time the sent tone's onset was written
//! to the encode dump against the time the echoed onset was written to the decode dump.
//! baresip's jitter buffer is off (`jitter_buffer_delay 0-0`) so the figure is the path
//! through dialtone (and each side's codec), not baresip's own buffering; it also means the
//! decode dump holds exactly the audio packets received, in order (no RFC 4733 packets: while
//! a digit is sent, no audio is).
//!
//! baresip's log (stdout) is block-buffered into a file, so it is only read once baresip has
//! exited. The `cons` module takes key presses as UDP datagrams on `cons_listen`: the menu's
//! `0`-`9`, `*`, `#` send a digit during a call (until the key-release code 0x04), `q` quits.
//! baresip logs a digit it receives as `received event: '1' (end=0)` at its start and
//! `received event: '1' (end=1)` at its end, once each however often the end packet is
//! repeated, and one it sends as `audio: send DTMF digit: '1'`.

mod common;

use common::*;
use dialtone_media::resample::goertzel_power;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One codec setup for a call.
struct Codec {
    /// For test names and messages.
    name: &'static str,
    /// baresip codec module.
    module: &'static str,
    /// The account's `audio_codecs` (forces this codec alone into the offer).
    sdp: &'static str,
    /// baresip's audio rate and channels for this codec (aufile needs its source to match).
    rate: u32,
    channels: u16,
    /// The tone sent, and a frequency that must stay far below it.
    tone: f32,
    off: f32,
}

const OPUS: Codec =
    Codec { name: "opus", module: "opus.so", sdp: "opus/48000/2", rate: 48000, channels: 2, tone: 700.0, off: 1100.0 };
const PCMU: Codec =
    Codec { name: "pcmu", module: "g711.so", sdp: "pcmu", rate: 8000, channels: 1, tone: 1000.0, off: 1300.0 };
/// G.722: `G722/8000` in SDP (RFC 3551's RTP clock), audio at 16 kHz (baresip's g722 module
/// is spandsp's codec). The tone is above 4 kHz, out of reach of a narrowband path; the off
/// frequency is where an 8 kHz path would alias it.
const G722: Codec =
    Codec { name: "g722", module: "g722.so", sdp: "G722", rate: 16_000, channels: 1, tone: 5000.0, off: 3000.0 };

/// Amplitude of the sent tone (about −12 dBFS).
const AMPLITUDE: f32 = 8000.0;
/// A window holds the tone when its power there is above this (a quarter of the amplitude) ...
const TONE_FLOOR: f32 = (AMPLITUDE / 4.0) * (AMPLITUDE / 4.0) / 2.0;
/// ... and more than this many times the power at the off frequency.
const DOMINANCE: f32 = 20.0;
/// Analysis window, in milliseconds.
const WINDOW_MS: u32 = 20;
/// Silence before the tone, in seconds.
const LEAD_IN: u32 = 1;
/// baresip quits (hanging up) this many seconds after it starts.
const TALK_SECS: u32 = 5;
/// baresip is killed if it is still running after this.
const LIMIT: Duration = Duration::from_secs(15);

/// The inbound prompt: its tone, an off frequency, its length, and its WAV's layout.
const PROMPT_TONE: f32 = 800.0;
const PROMPT_OFF: f32 = 1300.0;
const PROMPT_SECS: f32 = 2.0;
const PROMPT_RATE: u32 = 44_100;
const PROMPT_CHANNELS: u16 = 2;

/// What `dialtone call --play` sends baresip, and the digits.
const CALL_TONE: f32 = 600.0;
const CALL_OFF: f32 = 1100.0;
const CALL_DTMF: &str = "123#";
/// The number `POST /api/calls/create` calls (baresip as the trunk).
const API_NUMBER: &str = "+15551230077";
/// The numbers the conference test calls, one per baresip (each behind a trunk of its own,
/// `common::http::trunks_at`'s prefixes).
const CONFERENCE_NUMBERS: [&str; 3] = ["+15550010000", "+15550020000", "+15550030000"];

#[test]
fn baresip_opus_call_gets_its_tone_back() {
    let mut d = Dialtone::serve("baresip-opus", &[("DIALTONE_RTP_PORTS", "43000-43099")]);
    call_and_check(&mut d, &OPUS, "43200-43249");
}

#[test]
fn baresip_pcmu_call_gets_its_tone_back() {
    let mut d = Dialtone::serve("baresip-pcmu", &[("DIALTONE_RTP_PORTS", "43100-43199")]);
    call_and_check(&mut d, &PCMU, "43250-43299");
}

#[test]
fn baresip_g722_call_gets_its_tone_back() {
    let mut d = Dialtone::serve("baresip-g722", &[("DIALTONE_RTP_PORTS", "45000-45099")]);
    call_and_check(&mut d, &G722, "45100-45149");
    // serve logs the call's media summary, with its codec, when the call ends.
    let logged = |log: &str| log.lines().any(|l| l.contains("call media") && l.contains("codec=\"G722\""));
    let deadline = Instant::now() + Duration::from_secs(3);
    while !logged(&d.log_text()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = d.log_text();
    assert!(logged(&log), "serve did not log the call's codec as G722\n{}", tail(&log, 4000));
}

#[test]
fn dialtone_call_to_baresip_negotiates_g722() {
    // baresip offers nothing: it answers our offer (PCMU PCMA opus G722) with G.722, the only
    // codec it has; `dialtone call` plays a 16 kHz tone at 5 kHz for 3 s.
    let dir = temp_dir("baresip-g722-callee");
    let (src, tone) = (dir.join("silence.wav"), dir.join("tone.wav"));
    write_silence(&src, &G722);
    write_tone(&tone, 16_000, 1, 0, 4.0, G722.tone);
    let mut b = Baresip::start(&dir, &src, &G722, "45150-45199", ";answermode=auto", &["-t", "14"]);
    b.wait_listening();

    let mut call = Command::new(dialtone_bin());
    call.arg("call")
        .arg(format!("sip:baresip@127.0.0.1:{}", b.sip_port))
        .args(["--duration", "3", "--play"])
        .arg(&tone)
        .env("DIALTONE_SIP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("DIALTONE_RTP_PORTS", "45200-45299");
    let out = run_bounded(call, Duration::from_secs(12));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    b.quit();
    let status = b.wait(LIMIT);
    let diag = || b.diag(&said);
    assert!(status.is_some(), "baresip still running after {LIMIT:?}; killed\n{}", diag());
    assert_eq!(out.status.code(), Some(0), "dialtone call failed\n{}", diag());
    assert!(said.contains("call: media G722/8000"), "the call did not run G.722\n{}", diag());
    assert!(said.contains("call: media G722: received"), "{}", diag());

    let Some(dec) = b.dumps().1 else { panic!("baresip wrote no decode dump (call not established?)\n{}", diag()) };
    let got = first_channel(&dec, &G722);
    let rate = G722.rate;
    let secs = got.len() as f32 / rate as f32;
    let w = tone_windows(&got, rate, G722.tone, G722.off);
    let toned = w.iter().filter(|t| **t).count();
    let (p_tone, p_off) = (goertzel_power(&got, rate, G722.tone), goertzel_power(&got, rate, G722.off));
    eprintln!(
        "baresip G.722 callee: decoded {secs:.2} s of audio, {} Hz in {toned} windows of {WINDOW_MS} ms ({:.0}x \
         the power at {} Hz); baresip ran {:.1} s",
        G722.tone,
        p_tone / p_off.max(1.0),
        G722.off,
        b.started.elapsed().as_secs_f32()
    );
    assert!(secs >= 2.5, "baresip decoded only {secs:.2} s of audio\n{}", diag());
    assert!(
        toned as f32 >= 0.9 * w.len() as f32,
        "{} Hz in only {toned} of {} windows\n{}\n{}",
        G722.tone,
        w.len(),
        window_map(&w),
        diag()
    );
    assert!(
        p_tone > DOMINANCE * p_off && p_tone > TONE_FLOOR,
        "received {} Hz power {p_tone:.0} (floor {TONE_FLOOR:.0}), {} Hz power {p_off:.0}\n{}",
        G722.tone,
        G722.off,
        diag()
    );
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn baresip_hears_the_inbound_prompt() {
    // The prompt is 44.1 kHz stereo; the call is PCMU at 8 kHz mono.
    let dir = temp_dir("baresip-prompt");
    let prompt = dir.join("prompt.wav");
    write_tone(&prompt, PROMPT_RATE, PROMPT_CHANNELS, 0, PROMPT_SECS, PROMPT_TONE);
    let inbound = format!("play:{}", prompt.display());
    let mut d = Dialtone::serve(
        "baresip-prompt",
        &[("DIALTONE_RTP_PORTS", "43400-43499"), ("DIALTONE_INBOUND", inbound.as_str())],
    );

    let src = dir.join("silence.wav");
    write_silence(&src, &PCMU);
    let dial = format!("/dial sip:prompt@127.0.0.1:{}", d.port);
    let mut b = Baresip::start(&dir, &src, &PCMU, "43700-43749", "", &["-e", &dial, "-t", &TALK_SECS.to_string()]);
    let status = b.wait(LIMIT);
    let dialtone_alive = d.alive();
    let diag = || b.diag(&d.log_text());
    assert!(status.is_some(), "baresip still running after {LIMIT:?}; killed\n{}", diag());
    let Some(dec) = b.dumps().1 else { panic!("baresip wrote no decode dump (call not established?)\n{}", diag()) };

    let got = first_channel(&dec, &PCMU);
    let rate = PCMU.rate;
    let secs = got.len() as f32 / rate as f32;
    assert!(secs >= PROMPT_SECS + 1.0, "baresip received only {secs:.2} s of audio\n{}", diag());
    let w = tone_windows(&got, rate, PROMPT_TONE, PROMPT_OFF);
    let ms = |i: usize| i as u32 * WINDOW_MS;
    let (Some(first), Some(last)) = (w.iter().position(|t| *t), w.iter().rposition(|t| *t)) else {
        panic!(
            "no {PROMPT_TONE} Hz in the {secs:.2} s baresip received ({PROMPT_TONE} Hz power {:.0}, \
             {PROMPT_OFF} Hz {:.0})\n{}\n{}",
            goertzel_power(&got, rate, PROMPT_TONE),
            goertzel_power(&got, rate, PROMPT_OFF),
            window_map(&w),
            diag()
        );
    };
    let span = ms(last + 1 - first);
    let toned = w.iter().filter(|t| **t).count();
    eprintln!(
        "baresip prompt: {PROMPT_TONE} Hz from {} ms to {} ms of the {secs:.2} s received ({toned} of {} windows \
         in between hold it); baresip ran {:.1} s",
        ms(first),
        ms(last + 1),
        last + 1 - first,
        b.started.elapsed().as_secs_f32()
    );
    // The prompt starts with the call's audio (the dump's first frame is the first packet
    // received), lasts as long as the WAV, unbroken, and nothing of it follows.
    assert!(ms(first) <= 200, "the prompt starts {} ms into the call\n{}\n{}", ms(first), window_map(&w), diag());
    let want = (PROMPT_SECS * 1000.0) as u32;
    assert!(
        span.abs_diff(want) <= 3 * WINDOW_MS,
        "the prompt lasted {span} ms, not {want} ms\n{}\n{}",
        window_map(&w),
        diag()
    );
    assert!(toned >= last + 1 - first - 1, "the prompt has gaps\n{}\n{}", window_map(&w), diag());
    let steady = &got[(first * frame(rate) + rate as usize / 10)..(last * frame(rate))];
    let (p_tone, p_off) = (goertzel_power(steady, rate, PROMPT_TONE), goertzel_power(steady, rate, PROMPT_OFF));
    assert!(
        p_tone > DOMINANCE * p_off && p_tone > TONE_FLOOR,
        "received {PROMPT_TONE} Hz power {p_tone:.0} (floor {TONE_FLOOR:.0}), {PROMPT_OFF} Hz power {p_off:.0}\n{}",
        diag()
    );
    assert!(dialtone_alive, "dialtone exited during the call\n{}", diag());
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dialtone_call_sends_dtmf_and_audio_to_baresip() {
    // baresip answers by itself (`answermode=auto`); `dialtone call` plays a tone (16 kHz
    // mono WAV, converted to the call's 8 kHz) and sends the digits 500 ms after the answer.
    let dir = temp_dir("baresip-callee");
    let (src, tone) = (dir.join("silence.wav"), dir.join("tone.wav"));
    write_silence(&src, &PCMU);
    write_tone(&tone, 16_000, 1, 0, 4.0, CALL_TONE);
    let mut b = Baresip::start(&dir, &src, &PCMU, "43750-43799", ";answermode=auto", &["-t", "14"]);
    b.wait_listening();

    let started = Instant::now();
    let mut call = Command::new(dialtone_bin());
    call.arg("call")
        .arg(format!("sip:baresip@127.0.0.1:{}", b.sip_port))
        .args(["--dtmf", CALL_DTMF, "--duration", "3", "--play"])
        .arg(&tone)
        .env("DIALTONE_SIP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("DIALTONE_RTP_PORTS", "43500-43599");
    let out = run_bounded(call, Duration::from_secs(12));
    let took = started.elapsed();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    b.quit();
    let status = b.wait(LIMIT);
    let diag = || b.diag(&said);
    assert!(status.is_some(), "baresip still running after {LIMIT:?}; killed\n{}", diag());
    assert_eq!(out.status.code(), Some(0), "dialtone call failed\n{}", diag());
    assert!(said.contains(&format!("call: sending DTMF {CALL_DTMF}")), "{}", diag());

    // Each digit starts and ends once, in order.
    let log = b.log_text();
    let want: Vec<char> = CALL_DTMF.chars().collect();
    assert_eq!(received_events(&log, false), want, "digits started\n{}", diag());
    assert_eq!(received_events(&log, true), want, "digits ended\n{}", diag());

    let Some(dec) = b.dumps().1 else { panic!("baresip wrote no decode dump (call not established?)\n{}", diag()) };
    let got = first_channel(&dec, &PCMU);
    let rate = PCMU.rate;
    let secs = got.len() as f32 / rate as f32;
    let w = tone_windows(&got, rate, CALL_TONE, CALL_OFF);
    let toned = w.iter().filter(|t| **t).count();
    let (p_tone, p_off) = (goertzel_power(&got, rate, CALL_TONE), goertzel_power(&got, rate, CALL_OFF));
    eprintln!(
        "baresip callee: dialtone call took {:.2} s; baresip decoded {secs:.2} s of audio, {CALL_TONE} Hz in {toned} \
         windows of {WINDOW_MS} ms ({:.0}x the power at {CALL_OFF} Hz); digits {:?}; baresip ran {:.1} s",
        took.as_secs_f32(),
        p_tone / p_off.max(1.0),
        received_events(&log, true),
        b.started.elapsed().as_secs_f32()
    );
    // The 3 s of talk less the digits' time (no audio while an event is sent): about 2.4 s.
    assert!(secs >= 2.0, "baresip decoded only {secs:.2} s of audio\n{}", diag());
    assert!(
        toned as f32 >= 0.9 * w.len() as f32,
        "{CALL_TONE} Hz in only {toned} of {} windows\n{}\n{}",
        w.len(),
        window_map(&w),
        diag()
    );
    assert!(
        p_tone > DOMINANCE * p_off && p_tone > TONE_FLOOR,
        "received {CALL_TONE} Hz power {p_tone:.0} (floor {TONE_FLOOR:.0}), {CALL_OFF} Hz power {p_off:.0}\n{}",
        diag()
    );
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn api_call_and_dtmf_reach_baresip() {
    let dir = temp_dir("baresip-api");
    let src = dir.join("silence.wav");
    write_silence(&src, &PCMU);
    let mut b = Baresip::start(&dir, &src, &PCMU, "43800-43849", ";answermode=auto", &["-t", "30"]);
    b.wait_listening();
    let http = free_port();
    let d = Dialtone::serve(
        "baresip-api-trunk",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{}", b.sip_port)),
            ("DIALTONE_RTP_PORTS", "43850-43899"),
        ],
    );
    assert!(common::http::wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let key = [("X-Internal-Key", "k")];
    let r = common::http::send(
        http,
        "POST",
        "/api/calls/create",
        &key,
        format!(r#"{{"contact_id": "baresip", "phone_number": "{API_NUMBER}"}}"#).as_bytes(),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    let status =
        || common::http::send(http, "GET", &format!("/api/calls/{id}"), &key, b"").json()["data"]["status"].clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while status() != "in-progress" {
        assert!(Instant::now() < deadline, "{}\n{}", status(), b.diag(&d.log_text()));
        std::thread::sleep(Duration::from_millis(50));
    }
    // The call's quality: baresip's RTCP receiver reports give the outbound figures and the
    // round trip (RFC 3550 §6.4.1), within a few report intervals.
    let quality =
        || common::http::send(http, "GET", &format!("/api/calls/{id}/quality"), &key, b"").json()["data"].clone();
    let until = Instant::now() + Duration::from_secs(15);
    let q = loop {
        let q = quality();
        let measured =
            q["samples"].as_array().and_then(|s| s.last()).is_some_and(|s| s["outbound"]["rtt_ms"].is_number());
        if measured || Instant::now() > until {
            break q;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let last = q["samples"].as_array().and_then(|s| s.last()).cloned().unwrap_or_default();
    let (rtt, mos) = (last["outbound"]["rtt_ms"].as_f64(), last["outbound"]["mos"].as_f64());
    assert!(rtt.is_some_and(|r| r < 50.0), "no round trip from baresip's reports: {q}\n{}", b.diag(&d.log_text()));
    assert!(mos.is_some_and(|m| m > 4.3), "{q}");
    assert_eq!(
        (&last["outbound"]["loss_pct"], &last["inbound"]["loss_pct"]),
        (&serde_json::json!(0.0), &serde_json::json!(0.0)),
        "{q}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let r = common::http::send(http, "POST", &format!("/api/calls/{id}/dtmf"), &key, br#"{"digits": "123#"}"#);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    // Four digits of about 100 ms with gaps; then baresip hangs up.
    std::thread::sleep(Duration::from_millis(1500));
    b.quit();
    let exited = b.wait(LIMIT);
    let diag = b.diag(&d.log_text());
    assert!(exited.is_some(), "baresip still running; killed\n{diag}");
    let want: Vec<char> = CALL_DTMF.chars().collect();
    let log = b.log_text();
    assert_eq!(received_events(&log, false), want, "digits started\n{diag}");
    assert_eq!(received_events(&log, true), want, "digits ended\n{diag}");
    while status() != "completed" {
        assert!(Instant::now() < deadline + Duration::from_secs(5), "{}\n{diag}", status());
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn baresip_dtmf_reaches_dialtone() {
    // baresip calls serve (echo) and, once the call's audio runs, presses each key for 120 ms.
    let mut d = Dialtone::serve("baresip-dtmf", &[("DIALTONE_RTP_PORTS", "43600-43699")]);
    let dir = temp_dir("baresip-dtmf");
    let src = dir.join("silence.wav");
    write_silence(&src, &PCMU);
    let dial = format!("/dial sip:echo@127.0.0.1:{}", d.port);
    let mut b = Baresip::start(&dir, &src, &PCMU, "43800-43849", "", &["-e", &dial, "-t", "10"]);
    let digits = "1593*#0";

    // The dumps appear when the call's audio starts (on the 200).
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.dumps().1.is_none() && Instant::now() < deadline && b.try_wait().is_none() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let established = b.dumps().1.is_some();
    if established {
        std::thread::sleep(Duration::from_millis(300));
        for key in digits.bytes() {
            b.keys(&[key]);
            std::thread::sleep(Duration::from_millis(120));
            b.keys(&[KEY_RELEASE]);
            std::thread::sleep(Duration::from_millis(120));
        }
        std::thread::sleep(Duration::from_millis(300));
        b.quit();
    }
    let status = b.wait(LIMIT);
    // serve logs a digit at its end; give it a moment after the hangup.
    let deadline = Instant::now() + Duration::from_secs(2);
    while logged_digits(&d.log_text()).len() < digits.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let dialtone_alive = d.alive();
    let diag = || b.diag(&d.log_text());
    assert!(established, "the call's audio did not start within 5 s\n{}", diag());
    assert!(status.is_some(), "baresip still running after {LIMIT:?}; killed\n{}", diag());
    let sent: String = b.log_text().lines().filter_map(|l| quoted_after(l, "audio: send DTMF digit: ")).collect();
    assert_eq!(sent, digits, "baresip did not send the digits\n{}", diag());
    let got = logged_digits(&d.log_text());
    let log = d.log_text();
    let durations: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("dtmf received"))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("duration_ms=")))
        .collect();
    eprintln!(
        "baresip → dialtone DTMF: sent {sent:?}, dialtone logged {got:?} (durations {durations:?} ms); baresip ran \
         {:.1} s",
        b.started.elapsed().as_secs_f32()
    );
    assert_eq!(got, digits, "{}", diag());
    assert!(dialtone_alive, "dialtone exited during the call\n{}", diag());
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}

/// How baresip does TLS.
enum BaresipTls {
    /// Not at all.
    None,
    /// It calls over TLS (its account says `;transport=tls`); baresip 1.0 checks no
    /// certificate.
    Client,
    /// It serves TLS on its SIP port + 1 with this PEM file (certificate and key).
    Server(PathBuf),
}

fn baresip_present() {
    let found = Command::new("baresip").arg("-h").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    assert!(found, "baresip is not installed: run `./dev test`, which installs Debian's baresip-core");
}

/// baresip's key-release code (`KEYCODE_REL`): ends a digit started by a key press.
const KEY_RELEASE: u8 = 0x04;

/// A running baresip, killed on drop.
struct Baresip {
    child: Child,
    /// Where its dumps go.
    snd: PathBuf,
    /// Its stdout and stderr.
    log: PathBuf,
    /// Its SIP port (UDP and TCP) on 127.0.0.1.
    sip_port: u16,
    /// The `cons` module's port: key presses.
    cons_port: u16,
    started: Instant,
}

impl Baresip {
    /// Writes a config for `codec` into `dir` (audio source `src`, RTP on `rtp_ports`, the
    /// account's extra `account_params`) and starts `baresip -f dir args…`.
    fn start(dir: &Path, src: &Path, codec: &Codec, rtp_ports: &str, account_params: &str, args: &[&str]) -> Self {
        Baresip::launch(dir, src, codec, rtp_ports, account_params, args, &BaresipTls::None)
    }

    /// [`Baresip::start`], with TLS set up as `tls` says.
    fn launch(
        dir: &Path,
        src: &Path,
        codec: &Codec,
        rtp_ports: &str,
        account_params: &str,
        args: &[&str],
        tls: &BaresipTls,
    ) -> Self {
        baresip_present();
        let snd = dir.join("snd");
        std::fs::create_dir_all(&snd).unwrap();
        let (sip_port, cons_port) = (free_sip_port(), free_port());
        write_config(dir, src, &snd, codec, rtp_ports, sip_port, cons_port, account_params, tls);
        let log = dir.join("baresip.log");
        let logf = std::fs::File::create(&log).unwrap();
        let started = Instant::now();
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .expect("start baresip");
        Baresip { child, snd, log, sip_port, cons_port, started }
    }

    /// Waits (up to 5 s) until baresip takes SIP connections.
    fn wait_listening(&mut self) {
        let addr = format!("127.0.0.1:{}", self.sip_port).parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && self.try_wait().is_none() {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("baresip does not listen on {addr}\n{}", self.diag(""));
    }

    /// Presses keys (the `cons` module).
    fn keys(&self, keys: &[u8]) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.send_to(keys, ("127.0.0.1", self.cons_port)).unwrap();
    }

    /// Quits: hangs up any call, then exits (flushing its log).
    fn quit(&self) {
        self.keys(b"q");
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits until baresip exits, or kills it `limit` after its start (None).
    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        loop {
            if let Some(status) = self.try_wait() {
                return Some(status);
            }
            if self.started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The encode and decode dumps, once sndfile has created them.
    fn dumps(&self) -> (Option<PathBuf>, Option<PathBuf>) {
        let (mut enc, mut dec) = (Growth::default(), Growth::default());
        find_dumps(&self.snd, &mut enc, &mut dec);
        (enc.path, dec.path)
    }

    /// baresip's log and the other side's, for failure messages.
    fn diag(&self, other: &str) -> String {
        format!(
            "baresip log ({}):\n{}\ndialtone:\n{}",
            self.log.display(),
            tail(&self.log_text(), 4000),
            tail(other, 4000)
        )
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A free port for baresip's SIP: it also takes the next one for TLS.
fn free_sip_port() -> u16 {
    for _ in 0..100 {
        let p = free_port();
        if p < u16::MAX && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
    panic!("no free port pair on 127.0.0.1");
}

/// baresip (its own RTP ports `rtp_ports`) calls dialtone with `codec`, sends silence then the
/// tone, and the decoded audio it receives must hold the tone.
fn call_and_check(d: &mut Dialtone, codec: &Codec, rtp_ports: &str) {
    let target = format!("sip:echo@127.0.0.1:{}", d.port);
    call_and_check_to(d, codec, rtp_ports, &target, &BaresipTls::None, "");
}

/// [`call_and_check`] calling `target`, baresip set up for TLS as `tls` says, its account
/// with `account_params`.
fn call_and_check_to(
    d: &mut Dialtone,
    codec: &Codec,
    rtp_ports: &str,
    target: &str,
    tls: &BaresipTls,
    account_params: &str,
) -> String {
    let dir = temp_dir(&format!("baresip-{}-ua", codec.name));
    let src = dir.join("src.wav");
    write_tone(&src, codec.rate, codec.channels, LEAD_IN, (LEAD_IN + TALK_SECS + 2) as f32, codec.tone);
    let dial = format!("/dial {target}");
    let talk = TALK_SECS.to_string();
    let mut b = Baresip::launch(&dir, &src, codec, rtp_ports, account_params, &["-e", &dial, "-t", &talk], tls);

    // Watch the two dumps grow until baresip quits: (when, size) at every change.
    let (mut enc, mut dec) = (Growth::default(), Growth::default());
    let status = loop {
        if enc.path.is_none() || dec.path.is_none() {
            find_dumps(&b.snd, &mut enc, &mut dec);
        }
        enc.poll();
        dec.poll();
        if let Some(status) = b.try_wait() {
            break Some(status);
        }
        if b.started.elapsed() > LIMIT {
            break b.wait(Duration::ZERO);
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    let took = b.started.elapsed();
    let dialtone_alive = d.alive();
    let diag = || b.diag(&d.log_text());
    assert!(status.is_some(), "baresip still running after {LIMIT:?}; killed\n{}", diag());
    let (Some(enc_path), Some(dec_path)) = (enc.path.clone(), dec.path.clone()) else {
        panic!("baresip wrote no encode/decode dumps in {} (call not established?)\n{}", b.snd.display(), diag());
    };

    let rate = codec.rate;
    let sent = first_channel(&enc_path, codec);
    let got = first_channel(&dec_path, codec);
    let secs = got.len() as f32 / rate as f32;
    assert!(secs >= 3.0, "baresip received only {secs:.2} s of audio\n{}", diag());

    // The echoed tone is there, clean, over its steady part.
    let Some(got_onset) = tone_onset(&got, rate, codec.tone) else {
        panic!(
            "no {} Hz tone in the {secs:.2} s baresip received ({} Hz power {:.0}, {} Hz {:.0})\n{}",
            codec.tone,
            codec.tone,
            goertzel_power(&got, rate, codec.tone),
            codec.off,
            goertzel_power(&got, rate, codec.off),
            diag()
        );
    };
    let end = got.len() - rate as usize / 10;
    let steady = &got[(got_onset + rate as usize / 5).min(end)..end];
    assert!(
        steady.len() >= rate as usize,
        "only {:.2} s of tone received (onset at {:.3} s of {secs:.2} s)\n{}",
        steady.len() as f32 / rate as f32,
        got_onset as f32 / rate as f32,
        diag()
    );
    let (p_tone, p_off) = (goertzel_power(steady, rate, codec.tone), goertzel_power(steady, rate, codec.off));
    assert!(
        p_tone > DOMINANCE * p_off && p_tone > TONE_FLOOR,
        "{}: received {} Hz power {p_tone:.0} (floor {TONE_FLOOR:.0}), {} Hz power {p_off:.0}\n{}",
        codec.name,
        codec.tone,
        codec.off,
        diag()
    );

    // Round trip: when the sent onset went into the encoder against when the echoed onset
    // came out of the decoder, each corrected for the onset's place within its frame.
    let sent_onset = tone_onset(&sent, rate, codec.tone).expect("the tone in baresip's own encode dump");
    let block = u64::from(codec.channels) * 2;
    let (Some(t_sent), Some(t_got)) =
        (enc.time_of(sent_onset, block, rate, &enc_path), dec.time_of(got_onset, block, rate, &dec_path))
    else {
        panic!("could not time the onsets from the dumps' growth\n{}", diag());
    };
    let rtt = t_got.checked_duration_since(t_sent).unwrap_or_default();
    eprintln!(
        "baresip {} round trip: {} ms (tone onset at {:.3} s of the sent audio, {:.3} s of the received; \
         {} Hz {:.0}x the power at {} Hz; baresip ran {:.1} s)",
        codec.name,
        rtt.as_millis(),
        sent_onset as f32 / rate as f32,
        got_onset as f32 / rate as f32,
        codec.tone,
        p_tone / p_off.max(1.0),
        codec.off,
        took.as_secs_f32()
    );
    assert!(rtt < Duration::from_secs(2), "round trip {rtt:?}");
    assert!(dialtone_alive, "dialtone exited during the call\n{}", diag());
    let log = b.log_text();
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
    log
}

/// A 16-bit WAV of `lead_in` s of silence, then a tone of `freq` at `AMPLITUDE` (in every
/// channel) up to `secs` s in all.
fn write_tone(path: &Path, rate: u32, channels: u16, lead_in: u32, secs: f32, freq: f32) {
    write_wav(path, rate, channels, lead_in, secs, freq, AMPLITUDE);
}

/// Silence for baresip's source, at its rate and channels for `codec`, longer than baresip
/// can run (aufile must not reach the end of its file during the call).
fn write_silence(path: &Path, codec: &Codec) {
    write_wav(path, codec.rate, codec.channels, 0, LIMIT.as_secs_f32() + 2.0, 0.0, 0.0);
}

fn write_wav(path: &Path, rate: u32, channels: u16, lead_in: u32, secs: f32, freq: f32, amplitude: f32) {
    let spec =
        hound::WavSpec { channels, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let silence = lead_in * rate;
    for n in 0..(secs * rate as f32) as u32 {
        let x = if n < silence {
            0
        } else {
            let t = (n - silence) as f32 / rate as f32;
            (amplitude * (2.0 * std::f32::consts::PI * freq * t).sin()) as i16
        };
        for _ in 0..channels {
            w.write_sample(x).unwrap();
        }
    }
    w.finalize().unwrap();
}

/// baresip's `config` and `accounts`: SIP and RTP on 127.0.0.1 only, one codec, aufile as the
/// source, no player, sndfile dumping to `snd`, no UI but the menu (for `/dial` and keys) fed
/// by `cons` on `cons_port`.
#[allow(clippy::too_many_arguments)]
fn write_config(
    dir: &Path,
    src: &Path,
    snd: &Path,
    codec: &Codec,
    rtp_ports: &str,
    sip_port: u16,
    cons_port: u16,
    account_params: &str,
    tls: &BaresipTls,
) {
    let mut config = format!(
        "sip_listen 127.0.0.1:{sip_port}\n\
         net_interface 127.0.0.1\n\
         audio_source aufile,{src}\n\
         rtp_ports {rtp_ports}\n\
         jitter_buffer_delay 0-0\n\
         statmode_default off\n\
         module_path /usr/lib/baresip/modules\n\
         module {module}\n\
         module aufile.so\n\
         module sndfile.so\n\
         module srtp.so\n\
         module cons.so\n\
         cons_listen 127.0.0.1:{cons_port}\n\
         module_tmp account.so\n\
         module_app menu.so\n\
         snd_path {snd}\n",
        src = src.display(),
        module = codec.module,
        snd = snd.display(),
    );
    let transport = match tls {
        BaresipTls::None => "",
        BaresipTls::Client => ";transport=tls",
        BaresipTls::Server(combined) => {
            // baresip serves TLS on its SIP port + 1 with this certificate and key.
            config.push_str(&format!("sip_certificate {}\n", combined.display()));
            ""
        }
    };
    std::fs::write(dir.join("config"), config).unwrap();
    // The other accounts take the calls a trunk-side test sends to an E.164 number
    // (baresip answers only Request-URIs whose user is one of its accounts').
    let accounts: String = ["baresip", API_NUMBER]
        .iter()
        .chain(CONFERENCE_NUMBERS.iter())
        .map(|user| format!("<sip:{user}@127.0.0.1{transport}>;regint=0{account_params};audio_codecs={}\n", codec.sdp))
        .collect();
    std::fs::write(dir.join("accounts"), accounts).unwrap();
}

/// The digits baresip logged as `received event: '<d>' (end=<0|1>)`, starts or ends.
fn received_events(log: &str, end: bool) -> Vec<char> {
    let tail = if end { " (end=1)" } else { " (end=0)" };
    log.lines().filter(|l| l.trim_end().ends_with(tail)).filter_map(|l| quoted_after(l, "received event: ")).collect()
}

/// The character in `'…'` right after `prefix` in `line`.
fn quoted_after(line: &str, prefix: &str) -> Option<char> {
    let rest = &line[line.find(prefix)? + prefix.len()..];
    let mut c = rest.chars();
    match (c.next(), c.next(), c.next()) {
        (Some('\''), Some(d), Some('\'')) => Some(d),
        _ => None,
    }
}

/// The digits `dialtone serve` logged (`dtmf received … digit=<d>`), in order.
fn logged_digits(log: &str) -> String {
    log.lines()
        .filter(|l| l.contains("dtmf received"))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("digit=")))
        .filter_map(|d| d.chars().next())
        .collect()
}

/// Samples in one analysis window.
fn frame(rate: u32) -> usize {
    (rate * WINDOW_MS / 1000) as usize
}

/// Per `WINDOW_MS` window: whether `tone` is there, above `TONE_FLOOR` and `DOMINANCE` times
/// the power at `off`.
fn tone_windows(x: &[i16], rate: u32, tone: f32, off: f32) -> Vec<bool> {
    x.chunks_exact(frame(rate))
        .map(|w| {
            let (p, q) = (goertzel_power(w, rate, tone), goertzel_power(w, rate, off));
            p > TONE_FLOOR && p > DOMINANCE * q
        })
        .collect()
}

/// The windows as a string, `#` with the tone, `.` without (50 to a line, 1 s).
fn window_map(w: &[bool]) -> String {
    w.chunks(50).map(|l| l.iter().map(|&t| if t { '#' } else { '.' }).collect::<String>() + "\n").collect()
}

/// A dump file's size over time.
#[derive(Default)]
struct Growth {
    path: Option<PathBuf>,
    sizes: Vec<(Instant, u64)>,
}

impl Growth {
    fn poll(&mut self) {
        let Some(path) = &self.path else { return };
        let Ok(meta) = std::fs::metadata(path) else { return };
        if self.sizes.last().is_none_or(|&(_, s)| s != meta.len()) {
            self.sizes.push((Instant::now(), meta.len()));
        }
    }

    /// When frame `frame` (of `block` bytes) was captured, in wall-clock time: the first
    /// moment the file held it, less the playing time of the frames written with it.
    fn time_of(&self, frame: usize, block: u64, rate: u32, path: &Path) -> Option<Instant> {
        let data = data_offset(&std::fs::read(path).ok()?)?;
        let need = data + (frame as u64 + 1) * block;
        let &(t, size) = self.sizes.iter().find(|&&(_, s)| s >= need)?;
        let later = (size - need) / block;
        t.checked_sub(Duration::from_secs_f64(later as f64 / f64::from(rate)))
    }
}

/// sndfile names its dumps `dump-<time>-enc.wav` and `dump-<time>-dec.wav`.
fn find_dumps(snd: &Path, enc: &mut Growth, dec: &mut Growth) {
    let Ok(entries) = std::fs::read_dir(snd) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with("-enc.wav") && enc.path.is_none() {
            enc.path = Some(e.path());
        } else if name.ends_with("-dec.wav") && dec.path.is_none() {
            dec.path = Some(e.path());
        }
    }
}

/// Where the `data` chunk's samples start in a RIFF/WAVE file.
fn data_offset(bytes: &[u8]) -> Option<u64> {
    if bytes.get(0..4)? != b"RIFF" || bytes.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut at = 12usize;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if id == b"data" {
            return Some(at as u64 + 8);
        }
        at += 8 + len + (len & 1);
    }
    None
}

/// The first channel of a dump, checking it has baresip's rate and channels for the codec.
fn first_channel(path: &Path, codec: &Codec) -> Vec<i16> {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    assert_eq!((spec.sample_rate, spec.channels), (codec.rate, codec.channels), "{}", path.display());
    let all: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    all.iter().step_by(usize::from(codec.channels)).copied().collect()
}

/// Where a steady tone of `freq` starts: the first 10 ms window (1 ms steps) holding a
/// quarter of the tone's power over the second half of the signal, i.e. half filled with
/// tone, so the onset is its middle. None when there is no tone to speak of.
fn tone_onset(x: &[i16], rate: u32, freq: f32) -> Option<usize> {
    let reference = goertzel_power(&x[x.len() / 2..], rate, freq);
    if reference < TONE_FLOOR {
        return None;
    }
    let (win, hop) = (rate as usize / 100, rate as usize / 1000);
    (0..x.len().saturating_sub(win))
        .step_by(hop)
        .find(|&i| goertzel_power(&x[i..i + win], rate, freq) >= reference / 4.0)
        .map(|i| i + win / 2)
}

fn tail(s: &str, n: usize) -> String {
    let skip = s.chars().count().saturating_sub(n);
    s.chars().skip(skip).collect()
}

#[test]
fn baresip_calls_dialtone_over_tls_and_gets_its_tone_back() {
    // dialtone serves SIP over TLS with its own certificate; baresip (a TLS client) calls
    // `;transport=tls`. The SIP trace shows the INVITE came over TLS.
    let dir = temp_dir("baresip-tls-server");
    let (_, cert, key, _) = private_ca(&dir);
    let tls_port = free_port();
    let mut d = Dialtone::serve(
        "baresip-tls-in",
        &[
            ("DIALTONE_RTP_PORTS", "43900-43949"),
            ("DIALTONE_SIP_TLS_LISTEN", &format!("127.0.0.1:{tls_port}")),
            ("DIALTONE_TLS_CERT", cert.to_str().unwrap()),
            ("DIALTONE_TLS_KEY", key.to_str().unwrap()),
            ("DIALTONE_SIP_TRACE", "true"),
        ],
    );
    let target = format!("sip:echo@127.0.0.1:{tls_port};transport=tls");
    call_and_check_to(&mut d, &PCMU, "43950-43999", &target, &BaresipTls::Client, "");
    let log = d.log_text();
    assert!(
        log.contains("<<< recv TLS") && log.contains("INVITE sip:echo@"),
        "the INVITE did not come over TLS\n{}",
        tail(&log, 3000)
    );
    // A new certificate on SIGHUP: new connections get it, dialtone goes on.
    let served = || {
        let out = Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{tls_port}")])
            .stdin(Stdio::null())
            .output()
            .expect("run openssl s_client");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let start = text.find("-----BEGIN CERTIFICATE-----").unwrap_or(0);
        let end = text.find("-----END CERTIFICATE-----").map_or(0, |e| e + 25);
        text.get(start..end).unwrap_or("").to_string()
    };
    let pem = |p: &Path| std::fs::read_to_string(p).unwrap().trim().to_string();
    assert_eq!(served(), pem(&cert), "the certificate served");
    let renewed = temp_dir("baresip-tls-renewed");
    let (_, cert2, key2, _) = private_ca(&renewed);
    std::fs::copy(&cert2, &cert).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    let hup = Command::new("sh").arg("-c").arg(format!("kill -HUP {}", d.child.id())).status().unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while !d.log_text().contains("TLS certificate reloaded") {
        assert!(Instant::now() < deadline, "{}", tail(&d.log_text(), 2000));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(served(), pem(&cert2), "the renewed certificate is served");
    assert!(d.alive(), "dialtone exited on SIGHUP");
    let _ = std::fs::remove_dir_all(&renewed);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dialtone_call_reaches_baresip_over_tls_and_checks_its_certificate() {
    let dir = temp_dir("baresip-tls-callee");
    let (ca, _, _, combined) = private_ca(&dir);
    let (src, tone) = (dir.join("silence.wav"), dir.join("tone.wav"));
    write_silence(&src, &PCMU);
    write_tone(&tone, 8000, 1, 0, 4.0, CALL_TONE);
    let server = BaresipTls::Server(combined);
    let mut b = Baresip::launch(&dir, &src, &PCMU, "44000-44049", ";answermode=auto", &["-t", "14"], &server);
    b.wait_listening();
    let target = format!("sips:baresip@127.0.0.1:{}", b.sip_port + 1);
    let call = |ca: Option<&Path>, rtp: &str| {
        let mut c = Command::new(dialtone_bin());
        c.arg("call")
            .arg(&target)
            .args(["--duration", "3", "--play"])
            .arg(&tone)
            .env("DIALTONE_SIP_LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("DIALTONE_RTP_PORTS", rtp);
        if let Some(ca) = ca {
            c.env("DIALTONE_TLS_CA", ca);
        }
        let out = run_bounded(c, Duration::from_secs(12));
        (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    };
    // Its certificate is from a private CA: without trusting it, nothing is sent.
    let (code, said) = call(None, "44050-44099");
    assert_ne!(code, Some(0), "a call to an untrusted certificate went through\n{said}");
    assert!(said.contains("TLS connection refused"), "{said}");
    // Trusting the CA (DIALTONE_TLS_CA), the call goes over TLS and its audio arrives.
    let (code, said) = call(Some(&ca), "44100-44149");
    b.quit();
    let _ = b.wait(LIMIT);
    let diag = b.diag(&said);
    assert_eq!(code, Some(0), "dialtone call failed\n{diag}");
    assert!(said.contains("via TLS:"), "{diag}");
    let Some(dec) = b.dumps().1 else { panic!("baresip wrote no decode dump\n{diag}") };
    let got = first_channel(&dec, &PCMU);
    let w = tone_windows(&got, PCMU.rate, CALL_TONE, CALL_OFF);
    let toned = w.iter().filter(|t| **t).count();
    assert!(
        toned as f32 >= 0.8 * w.len() as f32 && !w.is_empty(),
        "{CALL_TONE} Hz in {toned} of {} windows\n{diag}",
        w.len()
    );
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_api_call_goes_out_through_a_tls_trunk() {
    // baresip is the trunk, over TLS only (`;transport=tls`), its certificate from a CA
    // dialtone is told to trust.
    let dir = temp_dir("baresip-tls-trunk");
    let (ca, _, _, combined) = private_ca(&dir);
    let src = dir.join("silence.wav");
    write_silence(&src, &PCMU);
    let server = BaresipTls::Server(combined);
    let mut b = Baresip::launch(&dir, &src, &PCMU, "44150-44199", ";answermode=auto", &["-t", "14"], &server);
    b.wait_listening();
    let http = free_port();
    let d = Dialtone::serve(
        "baresip-tls-trunk",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{};transport=tls", b.sip_port + 1)),
            ("DIALTONE_TLS_CA", ca.to_str().unwrap()),
            ("DIALTONE_RTP_PORTS", "44200-44249"),
            ("DIALTONE_SIP_TRACE", "true"),
        ],
    );
    assert!(common::http::wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let key = [("X-Internal-Key", "k")];
    let body = format!(r#"{{"contact_id": "tls", "phone_number": "{API_NUMBER}"}}"#);
    let r = common::http::send(http, "POST", "/api/calls/create", &key, body.as_bytes());
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    let status =
        || common::http::send(http, "GET", &format!("/api/calls/{id}"), &key, b"").json()["data"]["status"].clone();
    let wait = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while status() != want {
            assert!(Instant::now() < deadline, "{} not {want}\n{}", status(), b.diag(&d.log_text()));
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait("in-progress");
    let r = common::http::send(http, "POST", &format!("/api/calls/{id}/hangup"), &key, b"");
    assert_eq!(r.status, 202);
    wait("completed");
    assert!(d.log_text().contains(">>> send TLS"), "the INVITE did not go over TLS\n{}", tail(&d.log_text(), 2000));
    b.quit();
    let _ = b.wait(LIMIT);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn baresip_calls_dialtone_over_tls_with_mandatory_srtp() {
    // Both insist on SRTP (baresip `mediaenc=srtp-mand` offers RTP/SAVP with a=crypto;
    // dialtone DIALTONE_SRTP=mandatory), keys over TLS: the tone comes back through
    // dialtone's SRTP (baresip drops anything not SRTP from it).
    let dir = temp_dir("baresip-srtp-in");
    let (_, cert, key, _) = private_ca(&dir);
    let tls_port = free_port();
    let mut d = Dialtone::serve(
        "baresip-srtp-in",
        &[
            ("DIALTONE_RTP_PORTS", "44250-44299"),
            ("DIALTONE_SIP_TLS_LISTEN", &format!("127.0.0.1:{tls_port}")),
            ("DIALTONE_TLS_CERT", cert.to_str().unwrap()),
            ("DIALTONE_TLS_KEY", key.to_str().unwrap()),
            ("DIALTONE_SRTP", "mandatory"),
            ("DIALTONE_SIP_TRACE", "true"),
        ],
    );
    let target = format!("sip:echo@127.0.0.1:{tls_port};transport=tls");
    let blog = call_and_check_to(&mut d, &PCMU, "44300-44349", &target, &BaresipTls::Client, ";mediaenc=srtp-mand");
    let log = d.log_text();
    assert!(log.contains("RTP/SAVP") && log.contains("a=crypto:"), "no SDES in the trace\n{}", tail(&log, 3000));
    assert!(blog.contains("SRTP is Enabled"), "baresip did not run SRTP\n{}", tail(&blog, 3000));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dialtone_call_with_mandatory_srtp_reaches_baresip_over_tls() {
    let dir = temp_dir("baresip-srtp-out");
    let (ca, _, _, combined) = private_ca(&dir);
    let (src, tone) = (dir.join("silence.wav"), dir.join("tone.wav"));
    write_silence(&src, &PCMU);
    write_tone(&tone, 8000, 1, 0, 4.0, CALL_TONE);
    let server = BaresipTls::Server(combined);
    let params = ";answermode=auto;mediaenc=srtp-mand";
    let mut b = Baresip::launch(&dir, &src, &PCMU, "44350-44399", params, &["-t", "14"], &server);
    b.wait_listening();
    let mut c = Command::new(dialtone_bin());
    c.arg("call")
        .arg(format!("sips:baresip@127.0.0.1:{}", b.sip_port + 1))
        .args(["--duration", "3", "--play"])
        .arg(&tone)
        .env("DIALTONE_SIP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("DIALTONE_RTP_PORTS", "44400-44449")
        .env("DIALTONE_TLS_CA", &ca)
        .env("DIALTONE_SRTP", "mandatory");
    let out = run_bounded(c, Duration::from_secs(12));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    b.quit();
    let _ = b.wait(LIMIT);
    let diag = b.diag(&said);
    assert_eq!(out.status.code(), Some(0), "dialtone call failed\n{diag}");
    assert!(b.log_text().contains("SRTP is Enabled"), "baresip did not run SRTP\n{diag}");
    let Some(dec) = b.dumps().1 else { panic!("baresip wrote no decode dump\n{diag}") };
    let got = first_channel(&dec, &PCMU);
    let w = tone_windows(&got, PCMU.rate, CALL_TONE, CALL_OFF);
    let toned = w.iter().filter(|t| **t).count();
    assert!(
        !w.is_empty() && toned as f32 >= 0.8 * w.len() as f32,
        "{CALL_TONE} Hz in {toned} of {} windows\n{diag}",
        w.len()
    );
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_api_call_goes_through_a_tls_carrier_to_a_softphone_with_mandatory_srtp() {
    // POST /api/calls/create → TLS to a carrier (Kamailio, challenging the INVITE) → UDP to
    // baresip (srtp-mand, auto-answer), SRTP end to end. The call is bridged to an echoing
    // voice agent, so baresip's tone comes back to it: its decode dump holds the tone (dialtone
    // → baresip) and dialtone's recording holds it (baresip → dialtone), both through SRTP.
    use common::agent::Agent;
    use common::kamailio::Kamailio;
    let dir = temp_dir("carrier-srtp");
    let (ca, cert, key, _) = private_ca(&dir);
    let src = dir.join("tone.wav");
    write_tone(&src, PCMU.rate, PCMU.channels, 1, 16.0, PCMU.tone);
    let params = ";answermode=auto;mediaenc=srtp-mand";
    let mut b = Baresip::launch(&dir, &src, &PCMU, "44450-44499", params, &["-t", "14"], &BaresipTls::None);
    b.wait_listening();
    let mut k = Kamailio::tls_carrier("carrier-srtp-kamailio", &cert, &key, b.sip_port);
    let agent = Agent::start("carrier-srtp-agent", "echo");
    let http = free_port();
    let d = Dialtone::serve(
        "carrier-srtp",
        &[
            ("DIALTONE_HTTP_LISTEN", &format!("127.0.0.1:{http}")),
            ("DIALTONE_INTERNAL_KEY", "k"),
            ("DIALTONE_TRUNK", &format!("sip:127.0.0.1:{};transport=tls", k.port)),
            ("DIALTONE_TRUNK_USER", "alice"),
            ("DIALTONE_TRUNK_PASSWORD", "s3cret"),
            ("DIALTONE_TLS_CA", ca.to_str().unwrap()),
            ("DIALTONE_SRTP", "mandatory"),
            ("DIALTONE_RTP_PORTS", "44500-44549"),
        ],
    );
    assert!(common::http::wait_port(http, Duration::from_secs(10)), "{}", d.log_text());
    let key_h = [("X-Internal-Key", "k")];
    let body = format!(
        r#"{{"contact_id": "carrier", "phone_number": "{API_NUMBER}", "record": true, "agent_url": "{}"}}"#,
        agent.url()
    );
    let r = common::http::send(http, "POST", "/api/calls/create", &key_h, body.as_bytes());
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["data"]["id"].as_str().unwrap().to_string();
    let status = || common::http::send(http, "GET", &format!("/api/calls/{id}"), &key_h, b"").json()["data"].clone();
    let wait = |want: &str, limit: Duration| {
        let deadline = Instant::now() + limit;
        loop {
            let c = status();
            if c["status"] == want {
                return c;
            }
            assert!(Instant::now() < deadline, "{c}\n{}\nkamailio:\n{}", b.diag(&d.log_text()), k.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait("in-progress", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(common::http::send(http, "POST", &format!("/api/calls/{id}/hangup"), &key_h, b"").status, 202);
    wait("completed", Duration::from_secs(10));
    assert!(k.log_text().contains("fixture: challenging INVITE"), "{}", k.log_text());
    b.quit();
    let _ = b.wait(LIMIT);
    let diag = b.diag(&d.log_text());
    assert!(b.log_text().contains("SRTP is Enabled"), "baresip did not run SRTP\n{diag}");
    // dialtone → baresip: the echoed tone in baresip's decode dump.
    let Some(dec) = b.dumps().1 else { panic!("baresip wrote no decode dump\n{diag}") };
    let got = first_channel(&dec, &PCMU);
    let heard = tone_windows(&got, PCMU.rate, PCMU.tone, PCMU.off).iter().filter(|t| **t).count();
    assert!(heard >= 50, "baresip heard its tone back in only {heard} windows\n{diag}");
    // baresip → dialtone: the tone in the recording's left (received) channel.
    let deadline = Instant::now() + Duration::from_secs(10);
    while status()["recording"]["state"] != "ready" {
        assert!(Instant::now() < deadline, "{}", status());
        std::thread::sleep(Duration::from_millis(100));
    }
    let rec = common::http::send(http, "GET", &format!("/api/calls/{id}/recording"), &key_h, b"");
    let mut r = hound::WavReader::new(std::io::Cursor::new(rec.body)).expect("a WAV");
    let channels = r.spec().channels as usize;
    let left: Vec<i16> = r.samples::<i16>().map_while(Result::ok).step_by(channels).collect();
    let recorded = tone_windows(&left, 8000, PCMU.tone, PCMU.off).iter().filter(|t| **t).count();
    assert!(recorded >= 50, "the recording holds baresip's tone in only {recorded} windows\n{diag}");
    assert!(k.stop());
    drop(agent);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 16's conference acceptance: three API calls to three baresips, each sending a tone
/// of its own (G.711), seated in one conference. What each baresip decoded (its `-dec.wav`
/// dump) holds the other two tones and not its own.
#[test]
fn three_baresip_calls_in_a_conference_each_hear_the_other_two() {
    let tones = [500.0f32, 800.0, 1200.0];
    let dir = temp_dir("baresip-conference");
    let mut phones: Vec<Baresip> = tones
        .iter()
        .enumerate()
        .map(|(i, hz)| {
            let home = dir.join(format!("phone{i}"));
            std::fs::create_dir_all(&home).unwrap();
            let src = home.join("tone.wav");
            write_tone(&src, 8000, 1, 0, 14.0, *hz);
            let rtp = format!("{}-{}", 45_300 + i * 50, 45_349 + i * 50);
            Baresip::start(&home, &src, &PCMU, &rtp, ";answermode=auto", &["-t", "14"])
        })
        .collect();
    for b in phones.iter_mut() {
        b.wait_listening();
    }
    let ports: Vec<u16> = phones.iter().map(|b| b.sip_port).collect();
    let (d, http) = common::http::serve_configured(
        "baresip-conference",
        &common::http::trunks_at(&ports),
        &[("DIALTONE_RTP_PORTS", "45450-45499")],
    );
    let key = [("X-Internal-Key", "k")];
    let post = |path: &str, body: String| {
        let r = common::http::send(http, "POST", path, &key, body.as_bytes());
        assert!(r.status == 201 || r.status == 202, "POST {path}: {}", String::from_utf8_lossy(&r.body));
        r.json()["data"].clone()
    };
    let ids: Vec<String> = CONFERENCE_NUMBERS
        .iter()
        .map(|number| {
            let body = format!(r#"{{"contact_id": "phone", "phone_number": "{number}"}}"#);
            post("/api/calls/create", body)["id"].as_str().unwrap().to_string()
        })
        .collect();
    for id in &ids {
        common::http::wait_status(&d, http, &key, id, "in-progress", Duration::from_secs(10));
    }
    let conf = post("/api/conferences", "{}".into())["id"].as_str().unwrap().to_string();
    for id in &ids {
        post(&format!("/api/conferences/{conf}/participants"), format!(r#"{{"call_id": "{id}"}}"#));
    }
    std::thread::sleep(Duration::from_millis(3000));
    for b in &phones {
        b.quit();
    }
    for b in phones.iter_mut() {
        assert!(b.wait(LIMIT).is_some(), "baresip still running; killed\n{}", b.diag(&d.log_text()));
    }
    for (i, b) in phones.iter().enumerate() {
        let (_, dec) = b.dumps();
        let dec = dec.unwrap_or_else(|| panic!("phone {i} dumped nothing\n{}", b.diag(&d.log_text())));
        let heard = first_channel(&dec, &PCMU);
        let windows: Vec<[bool; 3]> = heard
            .chunks_exact(160)
            .map(|w| {
                let floor = goertzel_power(w, 8000, 650.0).max(goertzel_power(w, 8000, 1000.0)).max(1e4);
                let p = |hz: f32| goertzel_power(w, 8000, hz) > 30.0 * floor && goertzel_power(w, 8000, hz) > 1e6;
                [p(tones[0]), p(tones[1]), p(tones[2])]
            })
            .collect();
        let others: Vec<usize> = (0..3).filter(|j| *j != i).collect();
        let both = windows.iter().filter(|m| m[others[0]] && m[others[1]]).count();
        let own = windows.iter().filter(|m| m[i]).count();
        assert!(both >= 100 && own == 0, "phone {i} heard both others in {both} windows, itself in {own}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
