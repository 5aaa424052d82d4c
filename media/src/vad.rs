//! Speech detection (VAD) per 20 ms frame, for turn measurement (issue 21).
//!
//! Sans-IO: [`Vad::push`] takes frames of 16-bit PCM; time is counted in the samples pushed
//! (the first sample is time 0). There is no clock and no I/O.
//!
//! # How it decides
//!
//! The audio goes through the 200 Hz high-pass of [`crate::amd`] and is cut into 20 ms blocks.
//! A block's *level* is its mean absolute amplitude (Asterisk's silence measure, as in AMD).
//!
//! - **Noise floor**: the minimum block level over the last
//!   [`floor_window_ms`](VadConfig::floor_window_ms) (minimum statistics, kept as 8
//!   sub-window minima). Steady comfort noise or line noise sets the floor and is not speech;
//!   a steady signal of any kind (noise, a held chord) stops being speech once it has lasted
//!   the window. Speech keeps its floor low through its own pauses and stop closures.
//! - **Voiced block**: level at least [`min_level`](VadConfig::min_level) and at least
//!   [`ratio`](VadConfig::ratio) × floor (while speaking, [`keep_ratio`](VadConfig::keep_ratio)
//!   × floor: hysteresis).
//! - **DTMF**: a block whose strongest low-group and high-group DTMF frequencies (Goertzel)
//!   hold [`DTMF_PURITY`] of its power, each at least a tenth, is not voiced (and does not
//!   move the floor) when [`reject_dtmf`](VadConfig::reject_dtmf) is set.
//! - **Start**: [`start_ms`](VadConfig::start_ms) of voiced blocks (gaps of up to
//!   [`START_GAP_MS`] bridged, not counted); [`VadEvent::SpeechStart`] carries the start of the
//!   first of them.
//! - **End**: [`hangover_ms`](VadConfig::hangover_ms) without a voiced block;
//!   [`VadEvent::SpeechEnd`] carries the end of the last voiced block.
//!
//! What it can't tell: music on hold (or any non-steady tonal signal) is speech to it until
//! it has been steady for the floor window; for turn-taking an agent's music counted as its
//! speech is acceptable. A sudden step in steady noise is speech for up to
//! `floor_window_ms`. Speech right from the first sample raises the floor it starts from.

use std::collections::VecDeque;

use crate::amd::{coeff, goertzel_bank, HighPass, HIGHPASS_HZ};

/// Length of an analysis block, in milliseconds.
pub const BLOCK_MS: u32 = 20;
/// Power at the two strongest DTMF frequencies (one per group) over the block's mean square
/// above which the block is a DTMF digit.
pub const DTMF_PURITY: f32 = 0.7;
/// Longest gap bridged while speech is being confirmed (before the start is declared).
pub const START_GAP_MS: u32 = 40;
/// DTMF frequencies: the low group, then the high group.
const DTMF_HZ: [f64; 8] = [697.0, 770.0, 852.0, 941.0, 1209.0, 1336.0, 1477.0, 1633.0];
/// Sub-windows of the noise floor's minimum statistics.
const SUBWINDOWS: usize = 8;

/// Parameters of the detector. Durations are in milliseconds of audio pushed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// Sample rate of the audio (Hz); any multiple of 50 (8000, 16000, 48000).
    pub rate: u32,
    /// Voiced audio needed to declare a start. Default 60.
    pub start_ms: u32,
    /// Silence needed to declare an end (so that the gaps between words don't end a turn).
    /// Default 300.
    pub hangover_ms: u32,
    /// Lowest level (mean absolute amplitude after the high-pass) that can be speech.
    /// Default 100 (about -48 dBFS RMS for noise).
    pub min_level: u16,
    /// Level over the noise floor at which a block is voiced when not speaking. Default 3.0
    /// (about 9.5 dB).
    pub ratio: f32,
    /// The same while speaking. Default 2.0 (6 dB).
    pub keep_ratio: f32,
    /// Span of the noise floor's minimum. Default 2000.
    pub floor_window_ms: u32,
    /// Whether DTMF digits are rejected. Default true.
    pub reject_dtmf: bool,
}

impl VadConfig {
    /// The defaults for audio at `rate` Hz.
    pub fn new(rate: u32) -> VadConfig {
        VadConfig {
            rate,
            start_ms: 60,
            hangover_ms: 300,
            min_level: 100,
            ratio: 3.0,
            keep_ratio: 2.0,
            floor_window_ms: 2000,
            reject_dtmf: true,
        }
    }
}

/// A change of state. `at_ms` is where the speech really started or ended (not when that was
/// declared, which is `start_ms` or `hangover_ms` later), from the first sample pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech started.
    SpeechStart {
        /// Start of the first voiced block.
        at_ms: u64,
    },
    /// Speech ended.
    SpeechEnd {
        /// End of the last voiced block.
        at_ms: u64,
    },
}

/// The detector for one direction of one call. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Vad {
    cfg: VadConfig,
    /// Samples analysed per block (at the analysis rate).
    block_len: usize,
    /// One sample in `step` is analysed: rates that are multiples of 8 kHz are analysed at
    /// 8 kHz (the telephone band holds what tells speech; what lies above folds into the
    /// level, which is fine for an energy measure).
    step: usize,
    /// Where in the next frame the next sample to analyse is.
    phase: usize,
    buf: Vec<i16>,
    highpass: HighPass,
    dtmf: [f32; 8],
    /// Samples pushed.
    samples: u64,
    /// Samples analysed (whole blocks).
    analysed: u64,
    speaking: bool,
    /// Voiced blocks of the speech being confirmed, the sample where it began, and the
    /// unvoiced blocks since its last voiced one.
    run: u32,
    run_start: u64,
    run_gap: u32,
    /// End (sample) of the last voiced block.
    last_voiced_end: u64,
    /// Unvoiced blocks since the last voiced one, while speaking.
    silence: u32,
    /// Minimum statistics: past sub-window minima, the current one and its block count.
    mins: [f32; SUBWINDOWS],
    cur_min: f32,
    cur_blocks: u32,
    sub_blocks: u32,
    pending: VecDeque<VadEvent>,
}

impl Vad {
    /// A detector with `cfg`.
    pub fn new(cfg: VadConfig) -> Vad {
        let rate = cfg.rate.max(50);
        let step = if rate.is_multiple_of(8000) { (rate / 8000) as usize } else { 1 };
        let rate = rate / step as u32;
        let block_len = (rate as usize * BLOCK_MS as usize / 1000).max(1);
        let sub_blocks = (cfg.floor_window_ms / BLOCK_MS / SUBWINDOWS as u32).max(1);
        Vad {
            cfg,
            block_len,
            step,
            phase: 0,
            buf: Vec::with_capacity(block_len),
            highpass: HighPass::new(HIGHPASS_HZ, f64::from(rate)),
            dtmf: DTMF_HZ.map(|hz| coeff(hz, f64::from(rate))),
            samples: 0,
            analysed: 0,
            speaking: false,
            run: 0,
            run_start: 0,
            run_gap: 0,
            last_voiced_end: 0,
            silence: 0,
            mins: [f32::INFINITY; SUBWINDOWS],
            cur_min: f32::INFINITY,
            cur_blocks: 0,
            sub_blocks,
            pending: VecDeque::new(),
        }
    }

    /// One frame (any length, typically 20 ms). Returns the oldest event not yet returned:
    /// with frames of 20 ms or less there is at most one per frame, returned at once.
    pub fn push(&mut self, frame: &[i16]) -> Option<VadEvent> {
        self.samples += frame.len() as u64;
        if self.step > 1 {
            let mut i = self.phase;
            while i < frame.len() {
                let take = (self.block_len - self.buf.len()).min((frame.len() - i).div_ceil(self.step));
                self.buf.extend(frame[i..].iter().step_by(self.step).take(take));
                i += take * self.step;
                if self.buf.len() == self.block_len {
                    self.block();
                    self.buf.clear();
                }
            }
            self.phase = i - frame.len();
            return self.pending.pop_front();
        }
        let mut rest = frame;
        while !rest.is_empty() {
            let take = (self.block_len - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() == self.block_len {
                self.block();
                self.buf.clear();
            }
        }
        self.pending.pop_front()
    }

    /// Whether speech has been declared and has not ended.
    pub fn speaking(&self) -> bool {
        self.speaking
    }

    /// Audio pushed, in milliseconds.
    pub fn elapsed_ms(&self) -> u64 {
        self.ms(self.samples)
    }

    fn ms(&self, samples: u64) -> u64 {
        samples * 1000 / u64::from(self.cfg.rate.max(1))
    }

    fn block(&mut self) {
        let mut buf = std::mem::take(&mut self.buf);
        let n = buf.len();
        // A quiet block (its AC RMS under `min_level`, so its high-passed mean absolute level
        // is too, in the steady state: mean |y| ≤ RMS y ≤ RMS x for a filter of gain ≤ 1)
        // cannot be voiced: it is not filtered, and the floor takes 0.8 × its RMS (the mean
        // absolute value of Gaussian noise), for a fraction of the cost.
        let (sum, squares) =
            buf.iter().fold((0i64, 0i64), |(s, q), &v| (s + i64::from(v), q + i64::from(v) * i64::from(v)));
        let mean = sum as f64 / n as f64;
        let ac_rms = (squares as f64 / n as f64 - mean * mean).max(0.0).sqrt() as f32;
        let (level, dtmf) = if ac_rms < f32::from(self.cfg.min_level) {
            self.highpass.skip(&buf);
            (0.8 * ac_rms, false)
        } else {
            self.highpass.run(&mut buf);
            let level = buf.iter().map(|&v| u32::from(v.unsigned_abs())).sum::<u32>() as f32 / n as f32;
            (level, self.cfg.reject_dtmf && level >= f32::from(self.cfg.min_level) && is_dtmf(&buf, &self.dtmf))
        };
        self.buf = buf;
        let start = self.analysed;
        self.analysed += (n * self.step) as u64;
        let end = self.analysed;
        if !dtmf {
            self.cur_min = self.cur_min.min(level);
            self.cur_blocks += 1;
            if self.cur_blocks >= self.sub_blocks {
                self.mins.rotate_left(1);
                self.mins[SUBWINDOWS - 1] = self.cur_min;
                (self.cur_min, self.cur_blocks) = (f32::INFINITY, 0);
            }
        }
        let floor = self.mins.iter().fold(self.cur_min, |a, &b| a.min(b)).max(1.0);
        let ratio = if self.speaking { self.cfg.keep_ratio } else { self.cfg.ratio };
        let voiced = !dtmf && level >= f32::from(self.cfg.min_level) && level >= ratio * floor;
        let block_ms = BLOCK_MS;
        if self.speaking {
            if voiced {
                self.last_voiced_end = end;
                self.silence = 0;
            } else {
                self.silence += 1;
                if self.silence * block_ms >= self.cfg.hangover_ms {
                    self.speaking = false;
                    self.run = 0;
                    self.pending.push_back(VadEvent::SpeechEnd { at_ms: self.ms(self.last_voiced_end) });
                }
            }
        } else if voiced {
            if self.run == 0 {
                self.run_start = start;
            }
            self.run += 1;
            self.run_gap = 0;
            self.last_voiced_end = end;
            if self.run * block_ms >= self.cfg.start_ms.max(1) {
                self.speaking = true;
                self.silence = 0;
                self.pending.push_back(VadEvent::SpeechStart { at_ms: self.ms(self.run_start) });
            }
        } else if self.run > 0 {
            self.run_gap += 1;
            if self.run_gap * block_ms > START_GAP_MS {
                self.run = 0;
            }
        }
    }
}

/// Whether `x` is a DTMF digit: one low-group and one high-group frequency holding
/// [`DTMF_PURITY`] of its power, each at least a tenth.
fn is_dtmf(x: &[i16], coeffs: &[f32; 8]) -> bool {
    let p = goertzel_bank(x, coeffs);
    let low = p[..4].iter().fold(0f32, |a, &b| a.max(b));
    let high = p[4..].iter().fold(0f32, |a, &b| a.max(b));
    let ms = x.iter().map(|&v| f32::from(v) * f32::from(v)).sum::<f32>() / x.len() as f32;
    ms > 0.0 && low + high >= DTMF_PURITY * ms && low.min(high) >= 0.1 * ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    struct Sig {
        rate: u32,
        s: Vec<i16>,
        seed: u32,
    }

    impl Sig {
        fn new(rate: u32) -> Sig {
            Sig { rate, s: Vec::new(), seed: 0x1234_5678 }
        }
        fn n(&self, ms: u32) -> usize {
            self.rate as usize * ms as usize / 1000
        }
        fn silence(mut self, ms: u32) -> Sig {
            let n = self.n(ms);
            self.s.extend(std::iter::repeat_n(0, n));
            self
        }
        fn tones(mut self, parts: &[(f64, f64)], ms: u32) -> Sig {
            let n = self.n(ms);
            for i in 0..n {
                let t = i as f64 / self.rate as f64;
                let v: f64 = parts.iter().map(|&(f, a)| a * (2.0 * PI * f * t).sin()).sum();
                self.s.push(v.round() as i16);
            }
            self
        }
        /// A voice-like burst: a gliding 130 Hz harmonic series.
        fn word(mut self, ms: u32) -> Sig {
            let n = self.n(ms);
            let mut phase = 0.0f64;
            for i in 0..n {
                let x = i as f64 / n as f64;
                phase += 2.0 * PI * 130.0 * (1.0 + 0.08 * (2.0 * PI * x).sin()) / self.rate as f64;
                let v: f64 = (3..26).map(|k| (k as f64 * phase).sin() / k as f64).sum();
                self.s.push((6000.0 * v).round() as i16);
            }
            self
        }
        /// White noise of mean absolute amplitude about `level`.
        fn noise(mut self, level: f64, ms: u32) -> Sig {
            for _ in 0..self.n(ms) {
                let r = self.rnd(level);
                self.s.push(r);
            }
            self
        }
        /// The same noise added to everything so far.
        fn add_noise(mut self, level: f64) -> Sig {
            for i in 0..self.s.len() {
                let r = self.rnd(level);
                self.s[i] = self.s[i].saturating_add(r);
            }
            self
        }
        fn rnd(&mut self, level: f64) -> i16 {
            self.seed = self.seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let u = (self.seed >> 8) as f64 / (1u32 << 24) as f64;
            ((u * 2.0 - 1.0) * 2.0 * level).round() as i16
        }
        fn run(&self, cfg: VadConfig) -> Vec<VadEvent> {
            let mut vad = Vad::new(cfg);
            let mut out = Vec::new();
            for f in self.s.chunks(self.n(20)) {
                out.extend(vad.push(f));
            }
            out
        }
    }

    fn near(got: &[VadEvent], want: &[VadEvent]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            let ok = match (g, w) {
                (VadEvent::SpeechStart { at_ms: a }, VadEvent::SpeechStart { at_ms: b })
                | (VadEvent::SpeechEnd { at_ms: a }, VadEvent::SpeechEnd { at_ms: b }) => a.abs_diff(*b) <= 20,
                _ => false,
            };
            assert!(ok, "{got:?} vs {want:?}");
        }
    }
    use VadEvent::{SpeechEnd as E, SpeechStart as S};

    #[test]
    fn words_with_gaps_are_one_turn() {
        for rate in [8000, 16_000] {
            let s = Sig::new(rate).silence(500).word(300).silence(150).word(400).silence(1000);
            near(&s.run(VadConfig::new(rate)), &[S { at_ms: 500 }, E { at_ms: 1350 }]);
        }
    }

    #[test]
    fn tone_and_noise_bursts_in_low_noise() {
        for rate in [8000, 16_000] {
            let s = Sig::new(rate)
                .silence(600)
                .tones(&[(440.0, 6000.0)], 400)
                .silence(700)
                .noise(2000.0, 500)
                .silence(800)
                .add_noise(30.0);
            let want = [S { at_ms: 600 }, E { at_ms: 1000 }, S { at_ms: 1700 }, E { at_ms: 2200 }];
            near(&s.run(VadConfig::new(rate)), &want);
        }
    }

    #[test]
    fn steady_noise_and_silence_are_not_speech() {
        for rate in [8000, 16_000] {
            assert!(Sig::new(rate).silence(3000).run(VadConfig::new(rate)).is_empty());
            assert!(Sig::new(rate).noise(40.0, 3000).run(VadConfig::new(rate)).is_empty());
            // Comfort noise well above min_level, present from the start.
            assert!(Sig::new(rate).noise(400.0, 5000).run(VadConfig::new(rate)).is_empty());
        }
    }

    #[test]
    fn speech_over_comfort_noise() {
        let s = Sig::new(8000).silence(1000).word(500).silence(1500).add_noise(300.0);
        near(&s.run(VadConfig::new(8000)), &[S { at_ms: 1000 }, E { at_ms: 1500 }]);
    }

    #[test]
    fn dtmf_is_not_speech() {
        for rate in [8000, 16_000] {
            let mut s = Sig::new(rate).silence(500);
            for (lo, hi) in [(697.0, 1209.0), (941.0, 1477.0), (852.0, 1633.0)] {
                s = s.tones(&[(lo, 5000.0), (hi, 5000.0)], 100).silence(100);
            }
            assert!(s.silence(500).run(VadConfig::new(rate)).is_empty());
            let mut cfg = VadConfig::new(rate);
            cfg.reject_dtmf = false;
            let mut s = Sig::new(rate).silence(500);
            s = s.tones(&[(697.0, 5000.0), (1209.0, 5000.0)], 200).silence(500);
            near(&s.run(cfg), &[S { at_ms: 500 }, E { at_ms: 700 }]);
        }
    }

    #[test]
    fn short_blip_is_not_a_start() {
        let s = Sig::new(8000).silence(500).noise(2000.0, 40).silence(500);
        assert!(s.run(VadConfig::new(8000)).is_empty());
    }

    #[test]
    fn elapsed_and_long_frames() {
        let s = Sig::new(16_000).silence(500).word(300).silence(600);
        let mut vad = Vad::new(VadConfig::new(16_000));
        let mut got: Vec<VadEvent> = vad.push(&s.s).into_iter().collect();
        while let Some(e) = vad.push(&[]) {
            got.push(e);
        }
        near(&got, &[S { at_ms: 500 }, E { at_ms: 800 }]);
        assert_eq!(vad.elapsed_ms(), 1400);
        assert!(!vad.speaking());
    }

    #[test]
    fn frames_of_any_length_give_the_same_events_at_16k() {
        // 16 kHz is analysed at 8 kHz (one sample in two): odd frame lengths keep the phase.
        let s = Sig::new(16_000).silence(500).word(300).silence(150).word(400).silence(1000).add_noise(20.0);
        let want = s.run(VadConfig::new(16_000));
        for len in [7, 333, 641] {
            let mut vad = Vad::new(VadConfig::new(16_000));
            let mut got = Vec::new();
            for f in s.s.chunks(len) {
                got.extend(vad.push(f));
            }
            while let Some(e) = vad.push(&[]) {
                got.push(e);
            }
            assert_eq!(got, want, "frames of {len} samples");
        }
    }
}
