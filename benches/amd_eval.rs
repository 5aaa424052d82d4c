//! Accuracy and cost of answering-machine detection (`dialtone_media::amd`, issue 16) on the
//! labelled set written by `fixtures/amd/generate.py`.
//!
//! ```text
//! python3 fixtures/amd/generate.py                  # → target/amd-set (espeak-ng, sox)
//! cargo bench --bench amd_eval                      # both halves, both modes, 8 kHz
//! cargo bench --bench amd_eval -- DIR --half=test --rate=16000 --list --set=max_words=3
//! ```
//!
//! For each half of the set (`tune`, `test`) and each mode, a confusion matrix (rows: the
//! truth, columns: `answered_by`) and the decision times per class, in Markdown. `--rate=16000`
//! runs the detector at 16 kHz on the files upsampled by `dialtone_media::resample`;
//! `--set=field=value` overrides a field of `AmdConfig::default()` (for tuning); `--list`
//! names every misclassified file with the detector's cause. Then the cost of `Amd::push` per
//! 20 ms frame.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use dialtone_media::amd::{Amd, AmdConfig, AmdMode, AnsweredBy};
use dialtone_media::resample::Resampler;

const CLASSES: [&str; 5] = ["human", "machine_beep", "machine_nobeep", "fax", "silence"];
const ANSWERS: [AnsweredBy; 6] = [
    AnsweredBy::Human,
    AnsweredBy::MachineStart,
    AnsweredBy::MachineEndBeep,
    AnsweredBy::MachineEndSilence,
    AnsweredBy::Fax,
    AnsweredBy::Unknown,
];

struct Labelled {
    half: String,
    class: String,
    path: String,
    speech_start: Option<u32>,
    speech_end: Option<u32>,
    beep_start: Option<u32>,
    beep_end: Option<u32>,
    audio: Vec<i16>,
}

/// Splits one CSV line (RFC 4180 quoting).
fn csv_fields(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn load(dir: &Path, rate: u32) -> Vec<Labelled> {
    let labels = dir.join("labels.csv");
    let text = std::fs::read_to_string(&labels)
        .unwrap_or_else(|e| panic!("{}: {e} (run python3 fixtures/amd/generate.py first)", labels.display()));
    let mut lines = text.lines();
    let header = csv_fields(lines.next().expect("a header"));
    let col = |name: &str| header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}"));
    let (half, class, path) = (col("half"), col("cls"), col("path"));
    let (speech_start, speech_end, beep_start, beep_end) =
        (col("speech_start"), col("speech_end"), col("beep_start"), col("beep_end"));
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f = csv_fields(l);
            let mut r = hound::WavReader::open(dir.join(&f[path])).expect("a WAV file");
            assert_eq!((r.spec().channels, r.spec().sample_rate), (1, 8000), "{}", f[path]);
            let mut audio: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
            if rate != 8000 {
                let mut rs = Resampler::new(8000, rate).expect("a supported rate");
                let mut out = vec![0; rs.output_len(audio.len())];
                let n = rs.process(&audio, &mut out).unwrap();
                out.truncate(n);
                audio = out;
            }
            Labelled {
                half: f[half].clone(),
                class: f[class].clone(),
                path: f[path].clone(),
                speech_start: f[speech_start].parse().ok(),
                speech_end: f[speech_end].parse().ok(),
                beep_start: f[beep_start].parse().ok(),
                beep_end: f[beep_end].parse().ok(),
                audio,
            }
        })
        .collect()
}

fn set_field(c: &mut AmdConfig, kv: &str) {
    let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("--set=field=value, not {kv}"));
    let n: u32 = v.parse().unwrap_or_else(|_| panic!("{kv}: not a number"));
    match k {
        "initial_silence_ms" => c.initial_silence_ms = n,
        "greeting_ms" => c.greeting_ms = n,
        "after_greeting_silence_ms" => c.after_greeting_silence_ms = n,
        "total_analysis_ms" => c.total_analysis_ms = n,
        "min_word_ms" => c.min_word_ms = n,
        "between_words_silence_ms" => c.between_words_silence_ms = n,
        "max_words" => c.max_words = n,
        "silence_threshold" => c.silence_threshold = n as u16,
        "max_word_ms" => c.max_word_ms = n,
        "message_end_timeout_ms" => c.message_end_timeout_ms = n,
        _ => panic!("no AmdConfig field {k}"),
    }
}

struct Outcome {
    answered_by: AnsweredBy,
    after_ms: u32,
    cause: &'static str,
}

/// Runs one file through a detector in 20 ms frames; `frames` counts the frames pushed.
fn detect(audio: &[i16], rate: u32, config: AmdConfig, frames: &mut u64) -> Outcome {
    let mut amd = Amd::new(config, rate);
    for f in audio.chunks(rate as usize / 50) {
        *frames += 1;
        if let Some(r) = amd.push(f) {
            return Outcome { answered_by: r.answered_by, after_ms: r.after_ms, cause: amd.cause().unwrap_or("") };
        }
    }
    // The file ended first: what a hang-up would leave.
    let after_ms = (audio.len() as u64 * 1000 / u64::from(rate)) as u32;
    Outcome { answered_by: AnsweredBy::Unknown, after_ms, cause: "end_of_file" }
}

fn correct(class: &str, a: AnsweredBy, mode: AmdMode) -> bool {
    match (class, mode) {
        ("human", _) => a == AnsweredBy::Human,
        ("machine_beep", AmdMode::Detect) | ("machine_nobeep", AmdMode::Detect) => a == AnsweredBy::MachineStart,
        ("machine_beep", AmdMode::DetectMessageEnd) => a == AnsweredBy::MachineEndBeep,
        ("machine_nobeep", AmdMode::DetectMessageEnd) => a == AnsweredBy::MachineEndSilence,
        ("fax", _) => a == AnsweredBy::Fax,
        _ => a == AnsweredBy::Unknown,
    }
}

fn stats(v: &mut [u32]) -> String {
    if v.is_empty() {
        return "–".into();
    }
    v.sort_unstable();
    let mean = v.iter().map(|&x| u64::from(x)).sum::<u64>() as f64 / v.len() as f64;
    format!("{:.0} / {} / {}", mean, v[v.len() / 2], v[v.len() - 1])
}

fn report(files: &[&Labelled], rate: u32, config: AmdConfig, list: bool, frames: &mut u64) {
    let mode = config.mode;
    let mut matrix: BTreeMap<(&str, &str), u32> = BTreeMap::new();
    let mut times: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    let (mut beep_lag, mut silence_lag) = (Vec::new(), Vec::new());
    let (mut human_lag, mut machine_lag) = (Vec::new(), Vec::new());
    let mut right = 0;
    let mut wrong = Vec::new();
    for f in files {
        let o = detect(&f.audio, rate, config, frames);
        *matrix.entry((f.class.as_str(), o.answered_by.as_str())).or_default() += 1;
        times.entry(f.class.as_str()).or_default().push(o.after_ms);
        if correct(&f.class, o.answered_by, mode) {
            right += 1;
            let after = |t: u32| i64::from(o.after_ms) - i64::from(t);
            match (o.answered_by, f.beep_end, f.speech_start, f.speech_end) {
                (AnsweredBy::MachineEndBeep, Some(b), _, _) => beep_lag.push(after(b)),
                (AnsweredBy::MachineEndSilence, _, _, Some(e)) => silence_lag.push(after(e)),
                (AnsweredBy::Human, _, _, Some(e)) => human_lag.push(after(e)),
                (AnsweredBy::MachineStart, _, Some(s), _) => machine_lag.push(after(s)),
                _ => {}
            }
        } else {
            wrong.push(format!("{} → {} ({}) at {} ms", f.path, o.answered_by.as_str(), o.cause, o.after_ms));
        }
    }
    let head: Vec<&str> = ANSWERS.iter().map(|a| a.as_str()).collect();
    println!("| truth \\ answered_by | {} | decision ms: mean / p50 / max |", head.join(" | "));
    println!("|---|{}---|", "---:|".repeat(ANSWERS.len()));
    for class in CLASSES {
        let n: u32 = ANSWERS.iter().map(|&a| matrix.get(&(class, a.as_str())).copied().unwrap_or(0)).sum();
        if n == 0 {
            continue;
        }
        let cells: Vec<String> = ANSWERS
            .iter()
            .map(|&a| {
                let k = matrix.get(&(class, a.as_str())).copied().unwrap_or(0);
                if k == 0 {
                    "·".into()
                } else if correct(class, a, mode) {
                    format!("**{k}**")
                } else {
                    k.to_string()
                }
            })
            .collect();
        let t = stats(times.get_mut(class).map(|v| v.as_mut_slice()).unwrap_or(&mut []));
        println!("| {class} ({n}) | {} | {t} |", cells.join(" | "));
    }
    println!("\nCorrect: {right} / {} ({:.1} %).", files.len(), 100.0 * right as f64 / files.len() as f64);
    let lag = |v: &[i64]| {
        let mean = v.iter().sum::<i64>() as f64 / v.len().max(1) as f64;
        format!("mean {mean:.0} ms, min {} ms, max {} ms", v.iter().min().unwrap_or(&0), v.iter().max().unwrap_or(&0))
    };
    let mut lags = vec![("human after the end of speech", human_lag)];
    if mode == AmdMode::Detect {
        lags.push(("machine_start after the start of speech", machine_lag));
    } else {
        lags.push(("machine_end_beep after the end of the beep", beep_lag));
        lags.push(("machine_end_silence after the end of the greeting", silence_lag));
    }
    for (what, v) in lags {
        println!("- {what}: {} ({} files)", lag(&v), v.len());
    }
    if list {
        for w in wrong {
            println!("- wrong: {w}");
        }
    }
    println!();
}

/// Every speech file scanned for beeps from its first 20 ms of voice: a detector that takes
/// anything for a machine at once (one word of 20 ms) and never ends the greeting on silence.
/// Prints the files where it reports a beep before the real one (or where there is none).
fn beep_stress(files: &[&Labelled], rate: u32, list: bool, frames: &mut u64) {
    let config = AmdConfig {
        max_words: 1,
        min_word_ms: 20,
        initial_silence_ms: 600_000,
        after_greeting_silence_ms: 600_000,
        total_analysis_ms: 600_000,
        mode: AmdMode::DetectMessageEnd,
        ..AmdConfig::default()
    };
    let speech: Vec<&&Labelled> =
        files.iter().filter(|f| f.class.starts_with("machine") || f.class == "human").collect();
    let mut wrong = Vec::new();
    let mut speech_ms = 0u64;
    for f in &speech {
        let end = f.beep_start.unwrap_or(u32::MAX);
        speech_ms += u64::from(f.speech_end.unwrap_or(0).saturating_sub(f.speech_start.unwrap_or(0)));
        let o = detect(&f.audio, rate, config, frames);
        if o.answered_by == AnsweredBy::MachineEndBeep && o.after_ms < end {
            wrong.push(format!("{} → beep at {} ms", f.path, o.after_ms));
        }
    }
    println!(
        "Speech scanned for beeps: {} files, {:.0} s of speech; a beep found in the speech of {}.",
        speech.len(),
        speech_ms as f64 / 1000.0,
        wrong.len()
    );
    if list {
        for w in wrong {
            println!("- {w}");
        }
    }
    println!();
}

/// ns per 20 ms frame of `push` for a frame that never lets the detector decide.
fn cost(rate: u32, frame: &[i16]) -> f64 {
    let never = AmdConfig {
        initial_silence_ms: u32::MAX,
        greeting_ms: u32::MAX,
        after_greeting_silence_ms: u32::MAX,
        total_analysis_ms: u32::MAX,
        max_words: u32::MAX,
        max_word_ms: u32::MAX,
        ..AmdConfig::default()
    };
    let mut amd = Amd::new(never, rate);
    let n = 200_000;
    let t = Instant::now();
    for _ in 0..n {
        black_box(amd.push(black_box(frame)));
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let mut dir = None;
    let (mut half, mut rate, mut list) = ("all".to_string(), 8000u32, false);
    let mut config = AmdConfig::default();
    for a in std::env::args().skip(1) {
        if let Some(h) = a.strip_prefix("--half=") {
            half = h.into();
        } else if let Some(r) = a.strip_prefix("--rate=") {
            rate = r.parse().expect("--rate=8000|16000");
        } else if let Some(kv) = a.strip_prefix("--set=") {
            set_field(&mut config, kv);
        } else if a == "--list" {
            list = true;
        } else if !a.starts_with("--") {
            dir = Some(PathBuf::from(a));
        } // else: cargo bench's own flags (--bench)
    }
    let dir = dir.unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/amd-set"));
    if dir.extension().is_some_and(|e| e == "wav") {
        // One file (e.g. fixtures/amd/machine.wav): what each mode says, and when.
        let mut r = hound::WavReader::open(&dir).expect("a WAV file");
        let from = r.spec().sample_rate;
        let audio: Vec<i16> = r.samples::<i16>().map(|s| s.unwrap()).collect();
        for mode in [AmdMode::Detect, AmdMode::DetectMessageEnd] {
            let o = detect(&audio, from, AmdConfig { mode, ..config }, &mut 0);
            println!("{}: {mode:?}: {} ({}) at {} ms", dir.display(), o.answered_by.as_str(), o.cause, o.after_ms);
        }
        return;
    }
    if !dir.join("labels.csv").exists() {
        // `cargo bench` runs every bench: without the set, say how to make it and pass.
        println!("amd_eval: no labelled set in {} (python3 fixtures/amd/generate.py makes it); skipped", dir.display());
        return;
    }
    let files = load(&dir, rate);
    println!("{} files from {}, at {rate} Hz; {config:?}\n", files.len(), dir.display());
    let mut frames = 0u64;
    let t = Instant::now();
    for h in ["tune", "test"] {
        if half != "all" && half != h {
            continue;
        }
        let subset: Vec<&Labelled> = files.iter().filter(|f| f.half == h).collect();
        for mode in [AmdMode::Detect, AmdMode::DetectMessageEnd] {
            println!("### `{h}` half, {mode:?}\n");
            report(&subset, rate, AmdConfig { mode, ..config }, list, &mut frames);
        }
        beep_stress(&subset, rate, list, &mut frames);
    }
    let elapsed = t.elapsed();
    println!(
        "Over the set: {frames} frames of 20 ms pushed in {:.1} ms, {:.0} ns per frame.",
        elapsed.as_secs_f64() * 1e3,
        elapsed.as_nanos() as f64 / frames.max(1) as f64
    );
    let n = rate as usize / 50;
    let speech: Vec<i16> =
        (0..n).map(|i| (3000.0 * ((i as f64 * 0.21).sin() + 0.5 * (i as f64 * 0.77).sin())) as i16).collect();
    let tone: Vec<i16> = (0..n)
        .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / rate as f64).sin()) as i16)
        .collect();
    println!(
        "push per 20 ms frame at {rate} Hz: silence {:.0} ns, voice (tone analysis) {:.0} ns, tone {:.0} ns.",
        cost(rate, &vec![0; n]),
        cost(rate, &speech),
        cost(rate, &tone)
    );
}
