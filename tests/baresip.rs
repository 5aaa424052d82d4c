//! Interop with a real softphone: baresip calls `dialtone serve` (inbound `echo`) over
//! 127.0.0.1, once with Opus only and once with PCMU only. It sends 1 s of silence and then a
//! tone; what it receives must hold that tone (checked by frequency, not bytes, so any echo
//! path — reflected packets or decode → re-encode — passes). The round trip is measured and
//! printed, not asserted beyond a sanity bound.
//!
//! baresip (1.0) runs headless: `aufile` is its audio source, no audio player at all, and the
//! `sndfile` filter dumps what it encodes (`*-enc.wav`) and what it decodes (`*-dec.wav`). The
//! dumps are written frame by frame as audio passes through, so both start at their first
//! frame and the tone sits at the same offset in each; the round trip is instead taken from
//! the wall clock, by watching the two files grow: the time the sent tone's onset was written
//! to the encode dump against the time the echoed onset was written to the decode dump.
//! baresip's jitter buffer is off (`jitter_buffer_delay 0-0`) so the figure is the path
//! through dialtone (and each side's codec), not baresip's own buffering.

mod common;

use common::*;
use dialtone_media::resample::goertzel_power;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

/// Amplitude of the sent tone (about −12 dBFS).
const AMPLITUDE: f32 = 8000.0;
/// Silence before the tone, in seconds.
const LEAD_IN: u32 = 1;
/// baresip quits (hanging up) this many seconds after it starts.
const TALK_SECS: u32 = 5;
/// baresip is killed if it is still running after this.
const LIMIT: Duration = Duration::from_secs(15);

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

fn baresip_present() {
    let found = Command::new("baresip").arg("-h").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    assert!(found, "baresip is not installed: run `./dev test`, which installs Debian's baresip-core");
}

/// baresip (its own RTP ports `rtp_ports`) calls dialtone with `codec`, sends silence then the
/// tone, and the decoded audio it receives must hold the tone.
fn call_and_check(d: &mut Dialtone, codec: &Codec, rtp_ports: &str) {
    baresip_present();
    let dir = temp_dir(&format!("baresip-{}-ua", codec.name));
    let snd = dir.join("snd");
    std::fs::create_dir_all(&snd).unwrap();
    let src = dir.join("src.wav");
    write_source(&src, codec);
    write_config(&dir, &src, &snd, codec, rtp_ports);

    let log = dir.join("baresip.log");
    let logf = std::fs::File::create(&log).unwrap();
    let started = Instant::now();
    let mut child = Command::new("baresip")
        .arg("-f")
        .arg(&dir)
        .args(["-e", &format!("/dial sip:echo@127.0.0.1:{}", d.port), "-t", &TALK_SECS.to_string()])
        .stdin(Stdio::null())
        .stdout(logf.try_clone().unwrap())
        .stderr(logf)
        .spawn()
        .expect("start baresip");

    // Watch the two dumps grow until baresip quits: (when, size) at every change.
    let (mut enc, mut dec) = (Growth::default(), Growth::default());
    let status = loop {
        if enc.path.is_none() || dec.path.is_none() {
            find_dumps(&snd, &mut enc, &mut dec);
        }
        enc.poll();
        dec.poll();
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    let took = started.elapsed();
    let dialtone_alive = d.alive();
    let diag = || {
        format!(
            "baresip log ({}):\n{}\ndialtone log:\n{}",
            log.display(),
            tail(&std::fs::read_to_string(&log).unwrap_or_default(), 4000),
            tail(&d.log_text(), 4000)
        )
    };
    assert!(status.is_some(), "baresip still running after {LIMIT:?}; killed\n{}", diag());
    let (Some(enc_path), Some(dec_path)) = (enc.path.clone(), dec.path.clone()) else {
        panic!("baresip wrote no encode/decode dumps in {} (call not established?)\n{}", snd.display(), diag());
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
    let floor = (AMPLITUDE / 4.0).powi(2) / 2.0;
    assert!(
        p_tone > 20.0 * p_off && p_tone > floor,
        "{}: received {} Hz power {p_tone:.0} (floor {floor:.0}), {} Hz power {p_off:.0}\n{}",
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
    let _ = std::fs::remove_dir_all(&dir);
}

/// `LEAD_IN` s of silence, then the tone until after baresip has quit (aufile must not reach
/// the end of its file during the call), at baresip's rate and channel count for the codec.
fn write_source(path: &Path, codec: &Codec) {
    let spec = hound::WavSpec {
        channels: codec.channels,
        sample_rate: codec.rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let silence = LEAD_IN * codec.rate;
    for n in 0..(LEAD_IN + TALK_SECS + 2) * codec.rate {
        let x = if n < silence {
            0
        } else {
            let t = (n - silence) as f32 / codec.rate as f32;
            (AMPLITUDE * (2.0 * std::f32::consts::PI * codec.tone * t).sin()) as i16
        };
        for _ in 0..codec.channels {
            w.write_sample(x).unwrap();
        }
    }
    w.finalize().unwrap();
}

/// baresip's `config` and `accounts`: SIP and RTP on 127.0.0.1 only, one codec, aufile as the
/// source, no player, sndfile dumping to `snd`, no UI but the menu (for `/dial`).
fn write_config(dir: &Path, src: &Path, snd: &Path, codec: &Codec, rtp_ports: &str) {
    let config = format!(
        "sip_listen 127.0.0.1:{sip}\n\
         net_interface 127.0.0.1\n\
         audio_source aufile,{src}\n\
         rtp_ports {rtp_ports}\n\
         jitter_buffer_delay 0-0\n\
         statmode_default off\n\
         module_path /usr/lib/baresip/modules\n\
         module {module}\n\
         module aufile.so\n\
         module sndfile.so\n\
         module_tmp account.so\n\
         module_app menu.so\n\
         snd_path {snd}\n",
        sip = free_port(),
        src = src.display(),
        module = codec.module,
        snd = snd.display(),
    );
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(dir.join("accounts"), format!("<sip:baresip@127.0.0.1>;regint=0;audio_codecs={}\n", codec.sdp))
        .unwrap();
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
    if reference < (AMPLITUDE / 4.0).powi(2) / 2.0 {
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
