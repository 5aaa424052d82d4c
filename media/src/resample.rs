//! Sample-rate conversion for 16-bit mono PCM, plus a Goertzel tone detector.
//!
//! [`Resampler`] converts between any two rates whose reduced ratio `L/M` (output/input)
//! has `L, M ≤ 1000`: 8 ↔ 16 ↔ 48 kHz for the codecs and agent bridges, 44.1 kHz → 8/16/48
//! kHz for WAV playback. It is a polyphase FIR: one Kaiser-windowed sinc prototype
//! (β = 8.6, ≈ 80 dB stopband, 24 zero crossings each side at the lower of the two rates,
//! cutoff at 0.92 × the lower Nyquist frequency), split into `L` phases.
//!
//! It streams: the last input samples are kept between calls, so consecutive 20 ms frames
//! join without a click and chunking never changes the output. All memory is allocated in
//! [`Resampler::new`]; [`Resampler::process`] never allocates. The filter delays the signal
//! by half its length (≈ 1.6 ms at 8 kHz).

use thiserror::Error;

/// Largest reduced numerator/denominator accepted (bounds the coefficient table size).
const MAX_RATIO_TERM: u32 = 1000;
/// Zero crossings of the sinc on each side of the centre, counted at the lower rate.
const ZERO_CROSSINGS: f64 = 24.0;
/// Cutoff as a fraction of the lower Nyquist frequency.
const ROLLOFF: f64 = 0.92;
/// Kaiser window shape: about 80 dB of stopband attenuation.
const KAISER_BETA: f64 = 8.6;

/// Errors of the resampler.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ResampleError {
    /// A rate of zero.
    #[error("sample rate must be positive")]
    ZeroRate,
    /// The reduced ratio needs too many polyphase branches (e.g. 44100 → 44099).
    #[error("unsupported rate ratio {from} Hz -> {to} Hz")]
    UnsupportedRatio {
        /// Input rate.
        from: u32,
        /// Output rate.
        to: u32,
    },
    /// `process` was given an output buffer shorter than the samples it would produce.
    #[error("output buffer holds {got} samples, {needed} needed")]
    OutputTooSmall {
        /// Samples this call produces ([`Resampler::output_len`]).
        needed: usize,
        /// Length of the buffer given.
        got: usize,
    },
}

/// A streaming polyphase sample-rate converter for mono `i16` audio.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    /// Interpolation factor (output side of the reduced ratio).
    l: usize,
    /// Decimation factor (input side of the reduced ratio).
    m: usize,
    /// Taps per phase.
    taps: usize,
    /// `l` phases × `taps` coefficients, each phase ordered oldest-sample-first.
    coeffs: Vec<f32>,
    /// The last `taps` input samples, stored twice so a window is always contiguous.
    hist: Vec<f32>,
    /// Slot in `0..taps` of the most recent input sample.
    head: usize,
    /// Input samples still to push before the next output sample is due.
    wait: usize,
    /// Polyphase branch of the next output sample.
    phase: usize,
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Zeroth-order modified Bessel function of the first kind (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..64 {
        term *= (half / k as f64) * (half / k as f64);
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

impl Resampler {
    /// A converter from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Result<Self, ResampleError> {
        if from == 0 || to == 0 {
            return Err(ResampleError::ZeroRate);
        }
        let g = gcd(from, to);
        let (l, m) = (to / g, from / g);
        if l > MAX_RATIO_TERM || m > MAX_RATIO_TERM {
            return Err(ResampleError::UnsupportedRatio { from, to });
        }
        let (l, m) = (l as usize, m as usize);

        if l == m {
            // Same rate: a pass-through, no filter and no delay.
            return Ok(Resampler {
                from,
                to,
                l,
                m,
                taps: 0,
                coeffs: Vec::new(),
                hist: Vec::new(),
                head: 0,
                wait: 1,
                phase: 0,
            });
        }

        // Cutoff in cycles per sample of the virtual upsampled stream (rate from × l).
        let lower = from.min(to) as f64;
        let fc = ROLLOFF * lower / 2.0 / (from as f64 * l as f64);
        // Input samples spanned by the filter: 2 × zero crossings × their spacing.
        let spacing = from as f64 / (ROLLOFF * lower);
        let taps = (2.0 * ZERO_CROSSINGS * spacing).ceil() as usize;
        let len = taps * l;
        let centre = (len as f64 - 1.0) / 2.0;
        let i0_beta = bessel_i0(KAISER_BETA);
        let proto: Vec<f64> = (0..len)
            .map(|n| {
                let t = n as f64 - centre;
                let x = 2.0 * fc * t;
                let sinc =
                    if x.abs() < 1e-12 { 1.0 } else { (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x) };
                let r = 2.0 * n as f64 / (len as f64 - 1.0) - 1.0;
                let w = bessel_i0(KAISER_BETA * (1.0 - r * r).max(0.0).sqrt()) / i0_beta;
                sinc * w
            })
            .collect();

        // Phase p uses proto[p + j·l] against input x[i − j]; store it reversed (oldest
        // first) and normalised to unit DC gain so every phase passes DC exactly.
        let mut coeffs = vec![0f32; l * taps];
        for p in 0..l {
            let sum: f64 = (0..taps).map(|j| proto[p + j * l]).sum();
            for k in 0..taps {
                let j = taps - 1 - k;
                coeffs[p * taps + k] = (proto[p + j * l] / sum) as f32;
            }
        }

        Ok(Resampler { from, to, l, m, taps, coeffs, hist: vec![0.0; 2 * taps], head: taps - 1, wait: 1, phase: 0 })
    }

    /// Input rate in Hz.
    pub fn input_rate(&self) -> u32 {
        self.from
    }

    /// Output rate in Hz.
    pub fn output_rate(&self) -> u32 {
        self.to
    }

    /// Whether this converter copies samples unchanged (equal rates).
    pub fn is_passthrough(&self) -> bool {
        self.l == self.m
    }

    /// Delay the filter adds, in input samples (0 for a pass-through).
    pub fn delay_input_samples(&self) -> f32 {
        self.taps as f32 / 2.0
    }

    /// Exactly how many samples the next [`process`](Self::process) call will produce for
    /// `input_len` input samples, given the current state.
    pub fn output_len(&self, input_len: usize) -> usize {
        if self.l == self.m {
            return input_len;
        }
        if input_len < self.wait {
            return 0;
        }
        // Output k (k ≥ 0) is due after wait + ⌊(phase + k·m) / l⌋ inputs.
        let span = (input_len - self.wait + 1) * self.l - self.phase;
        span.div_ceil(self.m)
    }

    /// An upper bound of [`output_len`](Self::output_len) for any state: size buffers with it.
    pub fn max_output_len(&self, input_len: usize) -> usize {
        (input_len * self.l).div_ceil(self.m) + 1
    }

    /// Converts `input`, writing into the front of `output`; returns the number of samples
    /// written. Fails, with the state untouched, if `output` is shorter than
    /// [`output_len`](Self::output_len).
    pub fn process(&mut self, input: &[i16], output: &mut [i16]) -> Result<usize, ResampleError> {
        let needed = self.output_len(input.len());
        if output.len() < needed {
            return Err(ResampleError::OutputTooSmall { needed, got: output.len() });
        }
        if self.l == self.m {
            output[..input.len()].copy_from_slice(input);
            return Ok(input.len());
        }
        let taps = self.taps;
        let mut produced = 0;
        for &x in input {
            self.head += 1;
            if self.head == taps {
                self.head = 0;
            }
            let v = x as f32;
            self.hist[self.head] = v;
            self.hist[self.head + taps] = v;
            self.wait -= 1;
            while self.wait == 0 {
                let window = &self.hist[self.head + 1..self.head + 1 + taps];
                let phase = &self.coeffs[self.phase * taps..(self.phase + 1) * taps];
                let y = dot(window, phase);
                output[produced] = y.round().clamp(i16::MIN as f32, i16::MAX as f32) as i16;
                produced += 1;
                self.phase += self.m;
                self.wait = self.phase / self.l;
                self.phase %= self.l;
            }
        }
        debug_assert_eq!(produced, needed);
        Ok(produced)
    }

    /// Forgets the stream history (as if newly constructed).
    pub fn reset(&mut self) {
        self.hist.iter_mut().for_each(|s| *s = 0.0);
        self.head = self.taps.saturating_sub(1);
        self.wait = 1;
        self.phase = 0;
    }
}

/// Dot product in four independent accumulators, which the compiler vectorises.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let tail: f32 = chunks_a.remainder().iter().zip(chunks_b.remainder()).map(|(x, y)| x * y).sum();
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Power of the `freq` component of `samples` (sampled at `rate` Hz), by the Goertzel
/// algorithm, normalised so that a sine of amplitude `A` at `freq` gives about `A²/2`
/// (its mean square) whatever the length. For test tones and DTMF checks; `freq` need not
/// fall on a DFT bin. Returns 0 for an empty slice or a zero rate.
pub fn goertzel_power(samples: &[i16], rate: u32, freq: f32) -> f32 {
    if samples.is_empty() || rate == 0 {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * freq as f64 / rate as f64;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = x as f64 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let mag2 = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = samples.len() as f64;
    (2.0 * mag2 / (n * n)) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, freq: f64, amp: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()).round() as i16)
            .collect()
    }

    fn mean_square(s: &[i16]) -> f64 {
        s.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>() / s.len() as f64
    }

    fn db(ratio: f64) -> f64 {
        10.0 * ratio.log10()
    }

    /// Runs `input` through `r` in 20 ms frames.
    fn run_frames(r: &mut Resampler, input: &[i16]) -> Vec<i16> {
        let frame = r.input_rate() as usize / 50;
        let mut out = Vec::new();
        let mut buf = vec![0i16; r.max_output_len(frame)];
        for chunk in input.chunks(frame) {
            let n = r.process(chunk, &mut buf).unwrap();
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    #[test]
    fn goertzel_measures_amplitude() {
        let s = tone(8000, 1000.0, 10000.0, 8000);
        let p = goertzel_power(&s, 8000, 1000.0) as f64;
        assert!((db(p / (10000.0f64.powi(2) / 2.0))).abs() < 0.1, "{p}");
        assert!(goertzel_power(&s, 8000, 1500.0) < p as f32 * 1e-4);
        assert_eq!(goertzel_power(&[], 8000, 1000.0), 0.0);
    }

    #[test]
    fn round_trip_8k_48k_8k_keeps_tone() {
        let input = tone(8000, 1000.0, 10000.0, 8000);
        let mut up = Resampler::new(8000, 48000).unwrap();
        let mut down = Resampler::new(48000, 8000).unwrap();
        let mid = run_frames(&mut up, &input);
        assert_eq!(mid.len(), 48000);
        let out = run_frames(&mut down, &mid);
        assert_eq!(out.len(), 8000);
        // Skip the start-up transient (filter delay), measure the rest.
        let settled_in = &input[2000..];
        let settled_mid = &mid[12000..];
        let settled_out = &out[2000..];
        let p_in = goertzel_power(settled_in, 8000, 1000.0) as f64;
        let p_mid = goertzel_power(settled_mid, 48000, 1000.0) as f64;
        let p_out = goertzel_power(settled_out, 8000, 1000.0) as f64;
        assert!(db(p_mid / p_in).abs() < 1.0, "8k→48k gain {} dB", db(p_mid / p_in));
        assert!(db(p_out / p_in).abs() < 1.0, "round-trip gain {} dB", db(p_out / p_in));
        // Frequency kept: the tone carries nearly all the energy.
        let ms = mean_square(settled_out);
        assert!(db(p_out / ms).abs() < 0.2, "tone/total {} dB", db(p_out / ms));
        for f in [500.0, 1500.0, 2000.0, 3000.0] {
            assert!(db(goertzel_power(settled_out, 8000, f) as f64 / p_out) < -40.0, "{f} Hz");
        }
    }

    #[test]
    fn upsample_16k_and_44k1_keep_tone() {
        for (from, to) in [(8000, 16000), (16000, 8000), (16000, 48000), (44100, 8000), (44100, 16000), (44100, 48000)]
        {
            let input = tone(from, 1000.0, 8000.0, from as usize);
            let mut r = Resampler::new(from, to).unwrap();
            let out = run_frames(&mut r, &input);
            assert_eq!(out.len(), to as usize, "{from}->{to}");
            let p_in = goertzel_power(&input[from as usize / 4..], from, 1000.0) as f64;
            let p_out = goertzel_power(&out[to as usize / 4..], to, 1000.0) as f64;
            assert!(db(p_out / p_in).abs() < 1.0, "{from}->{to}: {} dB", db(p_out / p_in));
        }
    }

    #[test]
    fn alias_rejection_48k_to_8k() {
        let input = tone(48000, 6000.0, 20000.0, 48000);
        let mut r = Resampler::new(48000, 8000).unwrap();
        let out = run_frames(&mut r, &input);
        let p_in = mean_square(&input);
        let p_out = mean_square(&out[800..]);
        // 6 kHz would alias to 2 kHz.
        let p_alias = goertzel_power(&out[800..], 8000, 2000.0) as f64;
        assert!(db(p_out / p_in) < -40.0, "attenuation {} dB", db(p_out / p_in));
        assert!(db(p_alias / p_in) < -40.0);
    }

    #[test]
    fn telephone_band_response_48k_to_8k() {
        let gain = |f: f64| {
            let input = tone(48000, f, 20000.0, 48000);
            let out = run_frames(&mut Resampler::new(48000, 8000).unwrap(), &input);
            db(mean_square(&out[800..]) / mean_square(&input))
        };
        assert!(gain(300.0).abs() < 0.1);
        assert!(gain(3400.0).abs() < 0.5, "3.4 kHz: {} dB", gain(3400.0));
        assert!(gain(4200.0) < -60.0, "4.2 kHz: {} dB", gain(4200.0));
    }

    #[test]
    fn alias_rejection_44k1_to_8k() {
        let input = tone(44100, 5000.0, 20000.0, 44100);
        let mut r = Resampler::new(44100, 8000).unwrap();
        let out = run_frames(&mut r, &input);
        let ratio = mean_square(&out[800..]) / mean_square(&input);
        assert!(db(ratio) < -40.0, "attenuation {} dB", db(ratio));
    }

    #[test]
    fn chunked_equals_one_shot() {
        for (from, to) in [(8000, 48000), (48000, 8000), (44100, 16000), (16000, 8000)] {
            let input: Vec<i16> = tone(from, 440.0, 6000.0, 5000)
                .iter()
                .zip(tone(from, 2300.0, 3000.0, 5000))
                .map(|(a, b)| a.saturating_add(b))
                .collect();
            let mut one = Resampler::new(from, to).unwrap();
            let mut whole = vec![0i16; one.max_output_len(input.len())];
            let n = one.process(&input, &mut whole).unwrap();
            whole.truncate(n);

            let mut chunked = Resampler::new(from, to).unwrap();
            let mut out = Vec::new();
            let mut buf = vec![0i16; 8192];
            let sizes = [1usize, 7, 160, 333, 2, 960, 41];
            let mut pos = 0;
            let mut i = 0;
            while pos < input.len() {
                let end = (pos + sizes[i % sizes.len()]).min(input.len());
                let k = chunked.process(&input[pos..end], &mut buf).unwrap();
                out.extend_from_slice(&buf[..k]);
                pos = end;
                i += 1;
            }
            assert_eq!(out, whole, "{from}->{to}");
        }
    }

    #[test]
    fn frame_sizes_are_exact() {
        let mut r = Resampler::new(8000, 48000).unwrap();
        let mut buf = [0i16; 961];
        for _ in 0..10 {
            assert_eq!(r.output_len(160), 960);
            assert_eq!(r.process(&[0; 160], &mut buf).unwrap(), 960);
        }
        let mut r = Resampler::new(44100, 8000).unwrap();
        let mut total = 0;
        for _ in 0..50 {
            total += r.process(&[0; 882], &mut buf).unwrap();
        }
        assert_eq!(total, 8000);
    }

    #[test]
    fn dc_passes_and_passthrough() {
        let mut r = Resampler::new(16000, 8000).unwrap();
        let out = run_frames(&mut r, &[1000i16; 4000]);
        assert!(out[500..].iter().all(|&s| s == 1000), "{:?}", &out[500..510]);

        let mut same = Resampler::new(8000, 8000).unwrap();
        assert!(same.is_passthrough());
        let mut buf = [0i16; 4];
        assert_eq!(same.process(&[1, 2, 3], &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], &[1, 2, 3]);
    }

    #[test]
    fn errors() {
        assert_eq!(Resampler::new(0, 8000).unwrap_err(), ResampleError::ZeroRate);
        assert!(matches!(Resampler::new(44100, 44099), Err(ResampleError::UnsupportedRatio { .. })));
        let mut r = Resampler::new(8000, 16000).unwrap();
        let err = r.process(&[0; 160], &mut [0; 100]).unwrap_err();
        assert_eq!(err, ResampleError::OutputTooSmall { needed: 320, got: 100 });
        // State untouched: the next call still produces the full frame.
        assert_eq!(r.process(&[0; 160], &mut [0; 320]).unwrap(), 320);
    }

    #[test]
    fn clipping_saturates() {
        // A full-scale square wave overshoots after filtering; the output must saturate.
        let input: Vec<i16> = (0..1600).map(|i| if (i / 20) % 2 == 0 { i16::MAX } else { i16::MIN }).collect();
        let mut r = Resampler::new(8000, 48000).unwrap();
        let out = run_frames(&mut r, &input);
        assert!(out.contains(&i16::MAX) || out.contains(&i16::MIN));
    }
}
