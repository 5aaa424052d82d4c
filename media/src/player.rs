//! The player: a WAV file of any rate and channel count, played into a call.
//!
//! The file is read and converted once, before the call needs it ([`Prompt::load`]):
//! channels mixed down to mono, samples scaled to 16 bits, the rate converted to the
//! call's audio rate. Playing is then a copy from memory each tick, so the media path
//! never touches the disk; one prompt is shared by every call that plays it.

use crate::resample::Resampler;
use hound::{SampleFormat, WavReader};
use std::io;
use std::path::Path;
use std::sync::Arc;

/// A WAV file decoded to mono 16-bit PCM at one rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    rate: u32,
    samples: Vec<i16>,
}

impl Prompt {
    /// Reads `path` (PCM 8/16/24/32-bit or 32-bit float, any channels, any rate) and
    /// converts it to mono at `rate`.
    pub fn load(path: &Path, rate: u32) -> io::Result<Prompt> {
        let reader = WavReader::open(path)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))?;
        Prompt::read(reader, rate).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }

    /// As [`load`](Self::load), from any reader of WAV bytes.
    pub fn read<R: io::Read>(mut reader: WavReader<R>, rate: u32) -> io::Result<Prompt> {
        let spec = reader.spec();
        let channels = usize::from(spec.channels.max(1));
        let bad = |e: hound::Error| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
        let interleaved: Vec<f32> = match spec.sample_format {
            SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>().map_err(bad)?,
            SampleFormat::Int => {
                let scale = 1.0 / (1i64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
                reader.samples::<i32>().map(|s| s.map(|v| v as f32 * scale)).collect::<Result<_, _>>().map_err(bad)?
            }
        };
        let mono: Vec<i16> = interleaved
            .chunks(channels)
            .map(|c| {
                let m = c.iter().sum::<f32>() / c.len() as f32;
                (m * 32767.0).round().clamp(-32768.0, 32767.0) as i16
            })
            .collect();
        let mut r = Resampler::new(spec.sample_rate, rate)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{} Hz: {e}", spec.sample_rate)))?;
        // Flush the filter's delay with trailing silence so the end is not cut.
        let tail = r.delay_input_samples().ceil() as usize + 1;
        let mut input = mono;
        input.extend(std::iter::repeat_n(0, tail));
        let mut out = vec![0; r.max_output_len(input.len())];
        let n = r.process(&input, &mut out).map_err(|e| io::Error::other(e.to_string()))?;
        out.truncate(n);
        Ok(Prompt { rate, samples: out })
    }

    /// Its rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Its samples.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Its length.
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.rate.max(1)))
    }
}

/// One call's position in a shared [`Prompt`].
#[derive(Debug, Clone)]
pub struct Player {
    prompt: Arc<Prompt>,
    pos: usize,
}

impl Player {
    /// Plays `prompt` from the start.
    pub fn new(prompt: Arc<Prompt>) -> Player {
        Player { prompt, pos: 0 }
    }

    /// Fills `out` with the next samples, silence after the end; false once it has ended.
    pub fn fill(&mut self, out: &mut [i16]) -> bool {
        let s = &self.prompt.samples;
        let n = out.len().min(s.len().saturating_sub(self.pos));
        out[..n].copy_from_slice(&s[self.pos..self.pos + n]);
        out[n..].fill(0);
        self.pos += n;
        n > 0
    }

    /// Whether everything has been played.
    pub fn finished(&self) -> bool {
        self.pos >= self.prompt.samples.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resample::goertzel_power;
    use hound::{WavSpec, WavWriter};

    fn wav(rate: u32, channels: u16, bits: u16, float: bool, secs: f64, freq: f64) -> Vec<u8> {
        let spec = WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float { SampleFormat::Float } else { SampleFormat::Int },
        };
        let mut cur = io::Cursor::new(Vec::new());
        let mut w = WavWriter::new(&mut cur, spec).unwrap();
        let n = (f64::from(rate) * secs) as usize;
        for i in 0..n {
            let v = 0.5 * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin();
            for _ in 0..channels {
                if float {
                    w.write_sample(v as f32).unwrap();
                } else {
                    w.write_sample((v * f64::from((1i32 << (bits - 1)) - 1)) as i32).unwrap();
                }
            }
        }
        w.finalize().unwrap();
        cur.into_inner()
    }

    fn check(bytes: Vec<u8>, rate: u32) {
        let p = Prompt::read(WavReader::new(io::Cursor::new(bytes)).unwrap(), rate).unwrap();
        let secs = p.samples().len() as f64 / f64::from(rate);
        assert!((secs - 1.0).abs() < 0.01, "length {secs} s");
        let mid = &p.samples()[rate as usize / 4..rate as usize * 3 / 4];
        let tone = goertzel_power(mid, rate, 440.0);
        let off = goertzel_power(mid, rate, 1200.0);
        // Amplitude 0.5 of full scale: mean square ≈ (16384)² / 2.
        assert!(tone > 1.0e8 && tone > 1000.0 * off, "tone {tone}, off {off}");
    }

    #[test]
    fn any_rate_and_layout_becomes_mono_at_the_call_rate() {
        check(wav(44_100, 2, 16, false, 1.0, 440.0), 8000);
        check(wav(48_000, 1, 24, false, 1.0, 440.0), 16_000);
        check(wav(22_050, 2, 32, true, 1.0, 440.0), 8000);
        check(wav(8000, 1, 8, false, 1.0, 440.0), 8000);
    }

    #[test]
    fn the_player_plays_once_then_silence() {
        let p = Arc::new(Prompt { rate: 8000, samples: vec![7; 250] });
        let mut pl = Player::new(p);
        let mut f = [1i16; 160];
        assert!(pl.fill(&mut f));
        assert!(f.iter().all(|s| *s == 7));
        assert!(pl.fill(&mut f));
        assert_eq!((f[89], f[90]), (7, 0));
        assert!(pl.finished());
        assert!(!pl.fill(&mut f));
        assert!(f.iter().all(|s| *s == 0));
    }

    #[test]
    fn a_file_that_is_not_wav_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("dialtone-player-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x.wav");
        std::fs::write(&f, b"not a wav file").unwrap();
        let e = Prompt::load(&f, 8000).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("x.wav"), "{e}");
    }
}
