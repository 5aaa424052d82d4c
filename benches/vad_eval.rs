//! Accuracy and cost of the speech detector (`dialtone_media::vad`, issue 21) on the labelled
//! set written by `fixtures/vad/generate.py`, against a plain energy-threshold baseline.
//!
//! ```text
//! python3 fixtures/vad/generate.py                  # → target/vad-set (espeak-ng, sox)
//! cargo bench --bench vad_eval                      # or: cargo bench --bench vad_eval -- DIR
//! ```
//!
//! Detectors: `vad` (`VadConfig::new(8000)`), `energy` (the same start/hangover logic with
//! a fixed threshold, Asterisk's 256 mean absolute amplitude, no noise floor, no DTMF check),
//! and two crates whose per-frame decisions go through the same start (60 ms of voiced
//! frames) and hangover (300 ms) logic: `webrtc` (the `webrtc-vad` crate, bindings to
//! WebRTC's GMM VAD in C, 8 kHz 20 ms frames, mode Aggressive) and `earshot` (the `earshot`
//! crate, a small neural network in pure Rust, 16 kHz 16 ms frames: our 8 kHz audio
//! resampled, score ≥ 0.5).
//! Detected segments are rebuilt from the events' `at_ms`. Per class and overall: frame-level
//! precision and recall of speech (20 ms frames), start and end error (mean and p95 |ms|) of
//! the true segments found, segments missed, and false starts per minute of non-speech (a
//! start whose segment overlaps no true one). Then the cost of `Vad::push` per frame.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dialtone_media::resample::Resampler;
use dialtone_media::vad::{Vad, VadConfig, VadEvent};

struct Labelled {
    class: String,
    path: String,
    truth: Vec<(u64, u64)>,
    audio: Vec<i16>,
}

fn load(dir: &Path) -> Vec<Labelled> {
    let text = std::fs::read_to_string(dir.join("labels.json")).expect("labels.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    v["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            let path = f["path"].as_str().expect("path").to_string();
            let mut r = hound::WavReader::open(dir.join(&path)).expect("a WAV file");
            assert_eq!((r.spec().channels, r.spec().sample_rate), (1, 8000), "{path}");
            let audio = r.samples::<i16>().map(|s| s.expect("a sample")).collect();
            let truth = f["segments"]
                .as_array()
                .expect("segments")
                .iter()
                .map(|s| (s[0].as_u64().expect("ms"), s[1].as_u64().expect("ms")))
                .collect();
            Labelled { class: f["class"].as_str().expect("class").into(), path, truth, audio }
        })
        .collect()
}

/// Detected segments (ms), from the events.
fn detect(audio: &[i16], cfg: VadConfig) -> Vec<(u64, u64)> {
    let mut vad = Vad::new(cfg);
    let (mut segs, mut open) = (Vec::new(), None);
    for f in audio.chunks(cfg.rate as usize / 50) {
        match vad.push(f) {
            Some(VadEvent::SpeechStart { at_ms }) => open = Some(at_ms),
            Some(VadEvent::SpeechEnd { at_ms }) => segs.push((open.take().expect("a start"), at_ms)),
            None => {}
        }
    }
    if let Some(s) = open {
        segs.push((s, vad.elapsed_ms()));
    }
    segs
}

/// Segments (ms) from per-20 ms-frame decisions, with `vad`'s start and hangover: a start
/// after 3 voiced frames in a row (at the first), an end after 15 unvoiced ones (at the end of
/// the last voiced frame).
fn segments(decisions: impl Iterator<Item = bool>) -> Vec<(u64, u64)> {
    let (mut segs, mut open, mut run, mut quiet, mut last_end, mut t) = (Vec::new(), None, 0u64, 0u64, 0u64, 0u64);
    for voiced in decisions {
        match (open, voiced) {
            (None, true) => {
                run += 1;
                if run == 3 {
                    open = Some(t - 40);
                }
                last_end = t + 20;
            }
            (None, false) => run = 0,
            (Some(_), true) => {
                quiet = 0;
                last_end = t + 20;
            }
            (Some(s), false) => {
                quiet += 1;
                if quiet == 15 {
                    segs.push((s, last_end));
                    (open, run, quiet) = (None, 0, 0);
                }
            }
        }
        t += 20;
    }
    if let Some(s) = open {
        segs.push((s, t));
    }
    segs
}

/// WebRTC's VAD (the `webrtc-vad` crate): a decision per 20 ms frame at 8 kHz.
fn webrtc(audio: &[i16]) -> Vec<(u64, u64)> {
    let mut v =
        webrtc_vad::Vad::new_with_rate_and_mode(webrtc_vad::SampleRate::Rate8kHz, webrtc_vad::VadMode::Aggressive);
    segments(audio.chunks_exact(160).map(|f| v.is_voice_segment(f).unwrap_or(false)))
}

/// `earshot`: 16 kHz frames of 256 samples; each 20 ms frame takes the last score.
struct Earshot {
    det: earshot::Detector,
    up: Resampler,
    buf: Vec<i16>,
    score: f32,
}

impl Earshot {
    fn new() -> Earshot {
        Earshot {
            det: earshot::Detector::default(),
            up: Resampler::new(8000, 16_000).expect("rates"),
            buf: Vec::new(),
            score: 0.0,
        }
    }

    fn push(&mut self, frame: &[i16]) -> bool {
        let mut out = [0i16; 320];
        let n = self.up.process(frame, &mut out).unwrap_or(0);
        self.buf.extend_from_slice(&out[..n]);
        while self.buf.len() >= 256 {
            self.score = self.det.predict_i16(&self.buf[..256]);
            self.buf.drain(..256);
        }
        self.score >= 0.5
    }
}

fn earshot(audio: &[i16]) -> Vec<(u64, u64)> {
    let mut e = Earshot::new();
    segments(audio.chunks_exact(160).map(|f| e.push(f)))
}

#[derive(Default)]
struct Acc {
    tp: u64,
    fp: u64,
    fneg: u64,
    start_err: Vec<u64>,
    end_err: Vec<u64>,
    found: u32,
    missed: u32,
    false_starts: u32,
    nonspeech_ms: u64,
}

fn inside(segs: &[(u64, u64)], t: u64) -> bool {
    segs.iter().any(|&(a, b)| a <= t && t < b)
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

fn score(f: &Labelled, det: &[(u64, u64)], acc: &mut Acc) {
    let ms = f.audio.len() as u64 / 8;
    for t in (10..ms).step_by(20) {
        match (inside(&f.truth, t), inside(det, t)) {
            (true, true) => acc.tp += 1,
            (false, true) => acc.fp += 1,
            (true, false) => acc.fneg += 1,
            _ => {}
        }
    }
    for &tr in &f.truth {
        let hit: Vec<&(u64, u64)> = det.iter().filter(|d| overlaps(**d, tr)).collect();
        match (hit.first(), hit.last()) {
            (Some(first), Some(last)) => {
                acc.found += 1;
                acc.start_err.push(first.0.abs_diff(tr.0));
                acc.end_err.push(last.1.abs_diff(tr.1));
            }
            _ => acc.missed += 1,
        }
    }
    acc.false_starts += det.iter().filter(|d| !f.truth.iter().any(|t| overlaps(**d, *t))).count() as u32;
    acc.nonspeech_ms += ms - f.truth.iter().map(|t| t.1 - t.0).sum::<u64>();
}

fn mean_p95(v: &mut [u64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.sort_unstable();
    let mean = v.iter().sum::<u64>() as f64 / v.len() as f64;
    format!("{mean:.0} / {}", v[(v.len() * 95).div_ceil(100) - 1])
}

fn row(name: &str, class: &str, a: &mut Acc) {
    let p = a.tp as f64 / (a.tp + a.fp).max(1) as f64;
    let r = a.tp as f64 / (a.tp + a.fneg).max(1) as f64;
    let fpm = f64::from(a.false_starts) / (a.nonspeech_ms as f64 / 60_000.0).max(1e-9);
    let pr = if a.tp + a.fneg == 0 { format!("- | -  ({} fp frames)", a.fp) } else { format!("{p:.3} | {r:.3}") };
    println!(
        "| {name} | {class} | {pr} | {} | {} | {}/{} | {fpm:.1} |",
        mean_p95(&mut a.start_err),
        mean_p95(&mut a.end_err),
        a.missed,
        a.missed + a.found
    );
}

fn cost(frame: &[i16]) -> f64 {
    let mut vad = Vad::new(VadConfig::new(8000));
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        black_box(vad.push(black_box(frame)));
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/vad-set"));
    if !dir.join("labels.json").exists() {
        println!("vad_eval: no labelled set in {} (python3 fixtures/vad/generate.py makes it); skipped", dir.display());
        return;
    }
    let list = std::env::args().any(|a| a == "--list");
    let files = load(&dir);
    println!("{} files from {}\n", files.len(), dir.display());
    let energy = VadConfig { min_level: 256, ratio: 0.0, keep_ratio: 0.0, reject_dtmf: false, ..VadConfig::new(8000) };
    println!("| detector | class | precision | recall | start err mean/p95 ms | end err mean/p95 ms | missed | false starts/min |");
    println!("|---|---|---|---|---|---|---|---|");
    type Detect<'a> = Box<dyn Fn(&[i16]) -> Vec<(u64, u64)> + 'a>;
    let detectors: [(&str, Detect); 4] = [
        ("vad", Box::new(|a: &[i16]| detect(a, VadConfig::new(8000)))),
        ("energy", Box::new(move |a: &[i16]| detect(a, energy))),
        ("webrtc", Box::new(|a: &[i16]| webrtc(a))),
        ("earshot", Box::new(|a: &[i16]| earshot(a))),
    ];
    for (name, run) in &detectors {
        let mut by: BTreeMap<String, Acc> = BTreeMap::new();
        let mut all = Acc::default();
        for f in &files {
            let det = run(&f.audio);
            if list {
                eprintln!("{name} {}: truth {:?} detected {:?}", f.path, f.truth, det);
            }
            score(f, &det, by.entry(f.class.clone()).or_default());
            score(f, &det, &mut all);
        }
        for (class, a) in &mut by {
            row(name, class, a);
        }
        row(name, "**all**", &mut all);
    }
    let n = 160;
    let speech: Vec<i16> =
        (0..n).map(|i| (3000.0 * ((i as f64 * 0.21).sin() + 0.5 * (i as f64 * 0.77).sin())) as i16).collect();
    let t = Instant::now();
    let mut frames = 0;
    for f in &files {
        black_box(detect(&f.audio, VadConfig::new(8000)));
        frames += f.audio.len() / n;
    }
    let el = t.elapsed();
    println!(
        "\nOver the set: {frames} frames in {:.1} ms, {:.0} ns per frame. push per 20 ms frame at 8 kHz: silence {:.0} ns, voice {:.0} ns.",
        el.as_secs_f64() * 1e3,
        el.as_nanos() as f64 / frames as f64,
        cost(&vec![0; n]),
        cost(&speech)
    );
    // The crates' cost per 20 ms frame at 8 kHz over the same set (earshot's includes the
    // 8 → 16 kHz resampling it needs).
    for (name, run) in &detectors[2..] {
        let t = Instant::now();
        for f in &files {
            black_box(run(&f.audio));
        }
        println!("{name}: {:.0} ns per 20 ms frame over the set", t.elapsed().as_nanos() as f64 / frames as f64);
    }
}
