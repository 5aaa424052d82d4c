//! Media engine acceptance (issue 3): SIPp calls `dialtone serve` (inbound echo, recording on)
//! and plays RTP captures into the call with `play_pcap_audio`: a clean 1 kHz PCMU tone, the
//! same tone lost, reordered and jittered (fixtures/pcap, see its README), and SIPp's own
//! RFC 4733 DTMF captures. The WAV recording and the log tell what dialtone made of them.
//!
//! SIPp sends pcap audio on a raw socket, so these tests need root (as SIPp does).

mod common;

use common::*;
use dialtone_media::resample::goertzel_power;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Length of the tone in the fixture captures.
const TONE_MS: u64 = 3000;
/// The pause after the play in uac_pcap_play.xml, and after each play in uac_pcap_dtmf.xml.
const PLAY_PAUSE_MS: u64 = 4000;
const DTMF_PAUSE_MS: u64 = 500;
/// Analysis window.
const WINDOW_MS: u32 = 20;
/// A window carries the tone when its 1 kHz power is above this (a sine of amplitude 1000,
/// about -30 dBFS; the capture's tone is at -6 dBFS) ...
const TONE_FLOOR: f32 = 1000.0 * 1000.0 / 2.0;
/// ... and more than this many times the power at 500 Hz and at 1500 Hz.
const TONE_DOMINANCE: f32 = 20.0;

fn pcap_fixture(name: &str) -> PathBuf {
    root().join("fixtures/pcap").join(name)
}

fn sipp_dtmf(name: &str) -> PathBuf {
    PathBuf::from("/usr/share/sip-tester").join(name)
}

/// The time from the first to the last packet of a libpcap capture, in milliseconds.
fn pcap_duration_ms(path: &Path) -> u64 {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(b.len() >= 24, "{}: not a pcap", path.display());
    let magic = u32::from_le_bytes(b[0..4].try_into().unwrap());
    let (big_endian, nanos) = match magic {
        0xa1b2_c3d4 => (false, false),
        0xa1b2_3c4d => (false, true),
        0xd4c3_b2a1 => (true, false),
        0x4d3c_b2a1 => (true, true),
        m => panic!("{}: not a pcap (magic {m:#x})", path.display()),
    };
    let word = |at: usize| {
        let w: [u8; 4] = b[at..at + 4].try_into().unwrap();
        u64::from(if big_endian { u32::from_be_bytes(w) } else { u32::from_le_bytes(w) })
    };
    let (mut off, mut first, mut last) = (24, None, 0);
    while off + 16 <= b.len() {
        let t_us = word(off) * 1_000_000 + if nanos { word(off + 4) / 1000 } else { word(off + 4) };
        first.get_or_insert(t_us);
        last = t_us;
        off += 16 + word(off + 8) as usize;
    }
    (last - first.expect("a packet")) / 1000
}

/// A port free for SIPp's media (-mp): SIPp also binds the one two above (video). Taken
/// from 30000-32699, below the kernel's ephemeral range (32768-60999 on Linux), so that no
/// socket bound to port 0 meanwhile (another test's, a dialtone's) can take it between
/// this check and SIPp's bind; and outside 40000-46999, where the tests' dialtones take
/// their RTP ports. Successive calls, and tests in other processes (offset by the pid),
/// walk the range in steps of four.
fn free_media_port() -> u16 {
    free_media_port_in(30_000, 675) // 30000 + 4 × 675 = 32700
}

/// Runs the SIPp scenario `file` (fixtures/sipp) against `d`, with `-key` keywords (the
/// captures to play), SIPp's RTP leaving from 127.0.0.1:`media_port`; the run and how long
/// it took.
fn call(d: &Dialtone, file: &str, keys: &[(&str, &Path)], media_port: u16) -> (SippRun, Duration) {
    let scenario = root().join("fixtures/sipp").join(file);
    let target = format!("127.0.0.1:{}", d.port);
    let (sip_port, media_port) = (free_port().to_string(), media_port.to_string());
    #[rustfmt::skip]
    let mut a = args(&[
        "-sf", scenario.to_str().unwrap(), &target, "-i", "127.0.0.1", "-p", &sip_port,
        "-mi", "127.0.0.1", "-mp", &media_port, "-m", "1",
    ]);
    for (k, path) in keys {
        assert!(path.is_file(), "no capture {}", path.display());
        a.extend(["-key".to_string(), k.to_string(), path.to_str().unwrap().to_string()]);
    }
    let start = Instant::now();
    let run = run_sipp(&a, Duration::from_secs(30));
    (run, start.elapsed())
}

fn assert_call_ok(d: &mut Dialtone, run: &SippRun) {
    assert!(d.alive(), "dialtone died; log:\n{}", d.log_text());
    assert_eq!((run.status, run.successful, run.failed), (Some(0), 1, 0), "{run:#?}\ndialtone log:\n{}", d.log_text());
}

/// A recording: its format and its two channels.
struct Recording {
    path: PathBuf,
    spec: hound::WavSpec,
    left: Vec<i16>,
    right: Vec<i16>,
}

impl Recording {
    fn secs(&self) -> f64 {
        self.left.len() as f64 / f64::from(self.spec.sample_rate)
    }
}

/// The one recording in `d`'s data directory, once it is complete (the file stops growing
/// and reads as a WAV).
fn recording(d: &Dialtone) -> Recording {
    let dir = d.data.join("recordings");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = (PathBuf::new(), u64::MAX);
    loop {
        let wavs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|r| {
                r.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension() == Some("wav".as_ref())).collect()
            })
            .unwrap_or_default();
        if wavs.len() > 1 {
            panic!("{} recordings for one call: {wavs:?}", wavs.len());
        }
        if let Some(path) = wavs.into_iter().next() {
            let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            if (path.clone(), size) == last {
                if let Ok(mut rd) = hound::WavReader::open(&path) {
                    let spec = rd.spec();
                    if rd.len() > 0 {
                        assert_eq!(spec.sample_format, hound::SampleFormat::Int, "{}", path.display());
                        assert_eq!(spec.bits_per_sample, 16, "{}", path.display());
                        assert_eq!(spec.channels, 2, "{}: left caller, right what we sent", path.display());
                        let samples: Vec<i16> = rd.samples::<i16>().map(Result::unwrap).collect();
                        let left = samples.iter().step_by(2).copied().collect();
                        let right = samples.iter().skip(1).step_by(2).copied().collect();
                        return Recording { path, spec, left, right };
                    }
                }
            }
            last = (path, size);
        }
        assert!(Instant::now() < deadline, "no complete recording in {}; log:\n{}", dir.display(), d.log_text());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// For each 20 ms window of `samples`, whether it carries the 1 kHz tone.
fn tone_windows(samples: &[i16], rate: u32) -> Vec<bool> {
    let n = (rate * WINDOW_MS / 1000) as usize;
    samples
        .chunks_exact(n)
        .map(|w| {
            let p = goertzel_power(w, rate, 1000.0);
            let off = goertzel_power(w, rate, 500.0).max(goertzel_power(w, rate, 1500.0));
            p > TONE_FLOOR && p > TONE_DOMINANCE * off
        })
        .collect()
}

/// The windows as a line of text: `T` tone, `.` near silence, `x` anything else.
fn window_map(samples: &[i16], rate: u32) -> String {
    let n = (rate * WINDOW_MS / 1000) as usize;
    tone_windows(samples, rate)
        .iter()
        .zip(samples.chunks_exact(n))
        .map(|(&t, w)| match (t, w.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0)) {
            (true, _) => 'T',
            (false, peak) if peak < 100 => '.',
            _ => 'x',
        })
        .collect()
}

/// Where the tone is in a run of windows: from its first to its last tone window.
#[derive(Debug)]
struct ToneSpan {
    /// Windows from the first tone window to the last, both included.
    windows: usize,
    /// How many of those carry the tone.
    tone: usize,
    /// The longest run of windows without the tone inside the span.
    longest_gap: usize,
}

impl ToneSpan {
    fn of(w: &[bool]) -> Option<ToneSpan> {
        let first = w.iter().position(|&t| t)?;
        let last = w.iter().rposition(|&t| t)?;
        let span = &w[first..=last];
        let longest_gap = span.split(|&t| t).map(<[bool]>::len).max().unwrap_or(0);
        Some(ToneSpan { windows: span.len(), tone: span.iter().filter(|&&t| t).count(), longest_gap })
    }

    fn ms(&self) -> u64 {
        self.windows as u64 * u64::from(WINDOW_MS)
    }
}

/// The span of the tone in `samples`, which must be `TONE_MS` ± 200 ms long.
fn tone_span(what: &str, samples: &[i16], rate: u32, rec: &Recording) -> ToneSpan {
    let map = window_map(samples, rate);
    eprintln!("{what}, 20 ms windows (T tone, . silence, x other):\n{map}");
    let span = ToneSpan::of(&tone_windows(samples, rate))
        .unwrap_or_else(|| panic!("{what}: no 1 kHz tone in {}; 20 ms windows:\n{map}", rec.path.display()));
    assert!(
        span.ms().abs_diff(TONE_MS) <= 200,
        "{what}: the tone spans {} ms, want {TONE_MS} ± 200 ms: {span:?}; 20 ms windows:\n{map}",
        span.ms()
    );
    span
}

#[test]
fn recording_holds_the_callers_tone() {
    let mut d = Dialtone::serve("media-tone", &[("DIALTONE_RECORD", "true"), ("DIALTONE_RTP_PORTS", "44000-44099")]);
    let pcap = pcap_fixture("tone_1k_pcmu.pcap");
    assert!(pcap_duration_ms(&pcap) + 500 <= PLAY_PAUSE_MS, "uac_pcap_play.xml's pause is too short");
    let (run, took) = call(&d, "uac_pcap_play.xml", &[("pcap", &pcap)], free_media_port());
    assert_call_ok(&mut d, &run);

    let rec = recording(&d);
    let rate = rec.spec.sample_rate;
    // The whole tone and nothing much besides: at least the 3 s sent, at most the call.
    assert!(
        rec.secs() >= 3.0 && rec.secs() <= took.as_secs_f64() + 1.0,
        "recording is {:.2} s long, call took {:.2} s",
        rec.secs(),
        took.as_secs_f64()
    );
    // Left, the caller: 3 s of tone, every window of it.
    let left = tone_span("left channel (caller)", &rec.left, rate, &rec);
    assert_eq!(left.tone, left.windows, "left channel: the tone has gaps: {left:?}\n{}", window_map(&rec.left, rate));
    // Right, what dialtone sent: the echo of the same 3 s.
    let right = tone_span("right channel (echo)", &rec.right, rate, &rec);
    assert_eq!(
        right.tone,
        right.windows,
        "right channel: the tone has gaps: {right:?}\n{}",
        window_map(&rec.right, rate)
    );
}

#[test]
fn late_offer_gets_media_from_the_ack() {
    // The INVITE has no SDP: dialtone offers in the 200, SIPp answers in the ACK.
    let mut d = Dialtone::serve("media-late", &[("DIALTONE_RECORD", "true"), ("DIALTONE_RTP_PORTS", "44300-44399")]);
    let pcap = pcap_fixture("tone_1k_pcmu.pcap");
    let (run, _) = call(&d, "uac_late_offer.xml", &[("pcap", &pcap)], free_media_port());
    assert_call_ok(&mut d, &run);
    let rec = recording(&d);
    let left = tone_span("left channel (caller)", &rec.left, rec.spec.sample_rate, &rec);
    assert_eq!(left.tone, left.windows, "the tone has gaps: {left:?}\n{}", window_map(&rec.left, rec.spec.sample_rate));
}

#[test]
fn impaired_stream_records_continuously() {
    let mut d =
        Dialtone::serve("media-impaired", &[("DIALTONE_RECORD", "true"), ("DIALTONE_RTP_PORTS", "44100-44199")]);
    let pcap = pcap_fixture("tone_1k_pcmu_impaired.pcap");
    assert!(pcap_duration_ms(&pcap) + 500 <= PLAY_PAUSE_MS, "uac_pcap_play.xml's pause is too short");
    let (run, took) = call(&d, "uac_pcap_play.xml", &[("pcap", &pcap)], free_media_port());
    assert_call_ok(&mut d, &run);

    let rec = recording(&d);
    let rate = rec.spec.sample_rate;
    assert!(
        rec.secs() >= 2.8 && rec.secs() <= took.as_secs_f64() + 1.0,
        "recording is {:.2} s long, call took {:.2} s",
        rec.secs(),
        took.as_secs_f64()
    );
    // 8 of 150 packets never arrive and 10 arrive out of order, up to 30 ms early or late:
    // the tone still spans 3 s of the recording (lost packets keep their place), with at
    // most short holes where a packet was lost.
    let span = tone_span("left channel (caller)", &rec.left, rate, &rec);
    let map = window_map(&rec.left, rate);
    assert!(span.tone * 10 >= span.windows * 9, "under 90 % of the windows carry the tone: {span:?}\n{map}");
    assert!(
        span.longest_gap * WINDOW_MS as usize <= 100,
        "a hole of {} ms in the tone: {span:?}\n{map}",
        span.longest_gap * WINDOW_MS as usize
    );
}

/// UDP packets to or from one port on 127.0.0.1, seen on a raw socket (root only, as SIPp's
/// pcap play is): what went on the wire, independent of both SIPp and dialtone.
struct Sniffer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Datagram>>,
}

/// A UDP datagram seen by the sniffer.
#[derive(Debug)]
struct Datagram {
    src_port: u16,
    dst_port: u16,
    payload: Vec<u8>,
}

impl Sniffer {
    fn start(port: u16) -> Sniffer {
        use socket2::{Domain, Protocol, Socket, Type};
        use std::io::Read;
        // SOCK_RAW (Linux); socket2's Type::RAW needs its "all" feature, which we do not enable.
        const SOCK_RAW: i32 = 3;
        let mut sock =
            Socket::new(Domain::IPV4, Type::from(SOCK_RAW), Some(Protocol::UDP)).expect("raw socket (needs root)");
        sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut buf = vec![0u8; 65536];
            while !stopped.load(Ordering::Relaxed) {
                let Ok(n) = sock.read(&mut buf) else { continue };
                // IPv4 header (a raw socket gets it), then UDP.
                let b = &buf[..n];
                let ihl = usize::from(b.first().copied().unwrap_or(0) & 0x0f) * 4;
                if n < ihl + 8 || b[0] >> 4 != 4 || b[12..16] != [127, 0, 0, 1] || b[16..20] != [127, 0, 0, 1] {
                    continue;
                }
                let u = &b[ihl..];
                let (src_port, dst_port) = (u16::from_be_bytes([u[0], u[1]]), u16::from_be_bytes([u[2], u[3]]));
                if src_port == port || dst_port == port {
                    seen.push(Datagram { src_port, dst_port, payload: u[8..].to_vec() });
                }
            }
            seen
        });
        Sniffer { stop, thread }
    }

    fn finish(self) -> Vec<Datagram> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// The DTMF digits in RFC 4733 telephone-event packets (payload type `pt`), one per event
/// (its packets share one RTP timestamp), in order.
fn rfc4733_digits<'a>(packets: impl Iterator<Item = &'a [u8]>, pt: u8) -> String {
    let mut digits = String::new();
    let mut last_ts = None;
    for p in packets.filter(|p| p.len() >= 16 && p[0] >> 6 == 2 && p[1] & 0x7f == pt) {
        let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        if last_ts != Some(ts) {
            last_ts = Some(ts);
            digits.push(match p[12] {
                e @ 0..=9 => char::from(b'0' + e),
                10 => '*',
                11 => '#',
                12..=15 => char::from(b'A' + p[12] - 12),
                _ => '?',
            });
        }
    }
    digits
}

/// The digits of dialtone's `dtmf received … digit=<d>` log lines, in order.
fn logged_digits(log: &str) -> String {
    log.lines()
        .map(strip_ansi)
        .filter(|l| l.contains("dtmf received"))
        .filter_map(|l| {
            l.split_whitespace().find_map(|t| t.strip_prefix("digit=")).map(|d| d.trim_matches(['"', '\'']).to_string())
        })
        .collect()
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, up to a final letter
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn dtmf_2833_digits_reported_once_each() {
    // SIPp's captures: telephone-event on payload type 101 (what our offer says), one SSRC,
    // each digit a start packet (marker), 6 updates and 3 end packets, 140 ms in all.
    let mut d = Dialtone::serve(
        "media-dtmf",
        &[("DIALTONE_RECORD", "true"), ("DIALTONE_RTP_PORTS", "44200-44299"), ("DIALTONE_LOG", "debug")],
    );
    let keys = ["dtmf1", "dtmf2", "dtmf3", "dtmf4"];
    let pcaps = ["dtmf_2833_1.pcap", "dtmf_2833_2.pcap", "dtmf_2833_3.pcap", "dtmf_2833_pound.pcap"].map(sipp_dtmf);
    for p in &pcaps {
        assert!(pcap_duration_ms(p) + 200 <= DTMF_PAUSE_MS, "{}: longer than uac_pcap_dtmf.xml's pauses", p.display());
    }
    let keys: Vec<(&str, &Path)> = keys.iter().copied().zip(pcaps.iter().map(PathBuf::as_path)).collect();
    let media_port = free_media_port();
    let sniffer = Sniffer::start(media_port);
    let (run, _) = call(&d, "uac_pcap_dtmf.xml", &keys, media_port);
    std::thread::sleep(Duration::from_millis(200));
    let wire = sniffer.finish();
    assert_call_ok(&mut d, &run);

    // The plumbing: SIPp put the four digits on the wire, to dialtone's RTP port.
    let ours = 44200..=44299;
    let sent = rfc4733_digits(wire.iter().filter(|p| p.src_port == media_port).map(|p| &p.payload[..]), 101);
    let to: Vec<u16> = wire.iter().filter(|p| p.src_port == media_port).map(|p| p.dst_port).collect();
    assert_eq!(sent, "123#", "SIPp did not send the digits");
    assert!(to.iter().all(|p| ours.contains(p)), "SIPp sent RTP outside dialtone's range: {to:?}");
    // Whether the echo returned them: an echo that reflects packets does, one that decodes
    // and re-encodes audio does not. Reported for diagnosis, not required.
    let echoed = rfc4733_digits(
        wire.iter().filter(|p| p.dst_port == media_port && ours.contains(&p.src_port)).map(|p| &p.payload[..]),
        101,
    );
    eprintln!("telephone-events sent by SIPp: {sent:?}, echoed back by dialtone: {echoed:?}");

    // What dialtone reports: each digit once, in order.
    let log = d.log_text();
    assert_eq!(
        logged_digits(&log),
        "123#",
        "digits in dialtone's `dtmf received` log lines (SIPp sent {sent:?}, dialtone's echo returned {echoed:?}); \
         log:\n{log}"
    );
}

#[test]
fn dtmf_log_lines_parse() {
    // The log line the engine is to write, plain, coloured and with a quoted digit.
    let log = "2026-01-01T00:00:00Z  INFO dialtone::serve: call confirmed call=1\n\
               2026-01-01T00:00:01Z  INFO dialtone::serve: dtmf received call=1 digit=1\n\
               2026-01-01T00:00:02Z  \u{1b}[32m INFO\u{1b}[0m \u{1b}[2mdialtone::serve\u{1b}[0m: dtmf received \
               \u{1b}[3mcall\u{1b}[0m\u{1b}[2m=\u{1b}[0m1 \u{1b}[3mdigit\u{1b}[0m\u{1b}[2m=\u{1b}[0m2\n\
               2026-01-01T00:00:03Z  INFO dialtone::serve: dtmf received call=1 digit=\"#\" duration_ms=280\n";
    assert_eq!(logged_digits(log), "12#");
}

/// A 1 kHz tone WAV of `secs` at `rate` with `channels`, written with hound.
fn tone_wav(path: &Path, rate: u32, channels: u16, secs: f64) {
    let spec =
        hound::WavSpec { channels, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(f64::from(rate) * secs) as usize {
        let v = (16000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / f64::from(rate)).sin()) as i16;
        for _ in 0..channels {
            w.write_sample(v).unwrap();
        }
    }
    w.finalize().unwrap();
}

#[test]
fn dialtone_call_plays_records_and_sends_dtmf() {
    // `dialtone call --play --record --dtmf` against `dialtone serve` (echo): the played WAV
    // (44.1 kHz stereo, converted to the call's 8 kHz) comes back in the recording's left
    // channel and is what the right channel sent; serve reports the digits once each.
    let mut d = Dialtone::serve("media-cli", &[("DIALTONE_RTP_PORTS", "44400-44499")]);
    let dir = temp_dir("media-cli");
    let (wav, rec) = (dir.join("tone.wav"), dir.join("call.wav"));
    tone_wav(&wav, 44_100, 2, 3.0);
    let mut call = std::process::Command::new(dialtone_bin());
    call.arg("call")
        .arg(format!("sip:echo@127.0.0.1:{}", d.port))
        .args(["--duration", "3.5", "--dtmf", "159#*"])
        .arg("--play")
        .arg(&wav)
        .arg("--record")
        .arg(&rec)
        .env("DIALTONE_SIP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("DIALTONE_RTP_PORTS", "44500-44599");
    let out = run_bounded(call, Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("call: sending DTMF 159#*"), "{stderr}");
    assert!(d.alive());
    // The file is complete when the command exits.
    let mut r = hound::WavReader::open(&rec).expect("the --record WAV");
    assert_eq!((r.spec().channels, r.spec().sample_rate), (2, 8000));
    let s: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    let left: Vec<i16> = s.iter().step_by(2).copied().collect();
    let right: Vec<i16> = s.iter().skip(1).step_by(2).copied().collect();
    let secs = left.len() as f64 / 8000.0;
    assert!((3.3..=4.0).contains(&secs), "recording is {secs:.2} s long\n{stderr}");
    // Right, the prompt we sent; left, its echo (less the digits' time: while an RFC 4733
    // event is sent, no audio is).
    for (what, ch) in [("right (sent)", &right), ("left (echo)", &left)] {
        let w = tone_windows(ch, 8000);
        let toned = w.iter().filter(|t| **t).count();
        assert!(toned >= 100, "{what}: {toned} windows of tone\n{}", window_map(ch, 8000));
    }
    // serve logs each digit once, in order.
    let deadline = Instant::now() + Duration::from_secs(3);
    while logged_digits(&d.log_text()).len() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(logged_digits(&d.log_text()), "159#*", "{}", d.log_text());
}
