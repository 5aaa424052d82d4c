//! Answering-machine detection (AMD) on the decoded audio of the callee (issue 16).
//!
//! Sans-IO: [`Amd::push`] takes the frames of 16-bit PCM the far end sent, and time is counted
//! in the samples pushed (the first frame is time 0); there is no clock and no I/O.
//!
//! # How it decides
//!
//! The audio goes through a 200 Hz high-pass filter (the telephone band starts at 300 Hz;
//! below it there is only hum and rumble, which would otherwise read as voice) and is cut into
//! 20 ms blocks. A block is *voice* when its mean absolute amplitude is at least
//! [`AmdConfig::silence_threshold`], *silence* otherwise (Asterisk's `ast_dsp_silence` measure).
//! On top of that, the word logic of Asterisk's `AMD()` application:
//!
//! - voice lasting [`min_word_ms`](AmdConfig::min_word_ms) is a word; a word ends after
//!   [`between_words_silence_ms`](AmdConfig::between_words_silence_ms) of silence. The first word
//!   starts the greeting.
//! - **machine** ([`AnsweredBy::MachineStart`]) when the greeting's voice adds up to
//!   [`greeting_ms`](AmdConfig::greeting_ms), when [`max_words`](AmdConfig::max_words) words have
//!   been heard, or when one word lasts [`max_word_ms`](AmdConfig::max_word_ms);
//! - **human** when [`after_greeting_silence_ms`](AmdConfig::after_greeting_silence_ms) of silence
//!   follows the greeting;
//! - **unknown** when nothing was heard for [`initial_silence_ms`](AmdConfig::initial_silence_ms)
//!   (Asterisk says MACHINE here; a silent line is no evidence of a machine, and Twilio also says
//!   `unknown`), or when [`total_analysis_ms`](AmdConfig::total_analysis_ms) passes before a
//!   word was heard;
//! - **machine** when `total_analysis_ms` passes during a greeting that is still undecided
//!   (Asterisk says NOTSURE; a greeting that goes on that long is not a person's "Hello?").
//!
//! One difference from Asterisk: voice shorter than `min_word_ms` (a click, a noise burst) does
//! not restart the silence counts, so a noisy line does not keep postponing "human" or
//! "unknown"; such blips only pause them.
//!
//! Tones are found per block: candidate frequencies are the block's own, estimated by least
//! squares on `x[n-1] + x[n+1] = 2cos(w)·x[n]` (exact for a sine, at any frequency), the same
//! estimate after a low-pass (for a beep with harmonics), and [`COMMON_TONES_HZ`] (1000 Hz is
//! the most common beep; 440, 480, 600, 850, 950, 1400, 1800, 2000 Hz occur too; 1100 and
//! 2100 Hz are the fax tones). The Goertzel algorithm measures each, then a finer grid around
//! the best; the block is *tonal* when the power at that frequency is at least
//! [`TONE_PURITY`] of the block's mean square (a sine gives 1, two equal tones 0.5, speech with
//! its several harmonics less) and the frequency lies in 300–3400 Hz. Consecutive tonal blocks
//! at the same frequency (±[`TONE_TOLERANCE_HZ`]) make a tone; one non-tonal block inside a
//! tone is bridged (a packet loss, a phase reversal).
//!
//! A vowel can pass that test block by block: with the fundamental cut by the telephone band, a
//! female voice's second harmonic can hold 80 % of a block's power for 100–200 ms. What it is
//! not is one steady sine: its pitch moves. So a tone is a beep only if its first
//! [`BEEP_MIN_MS`] are *coherent*: one Goertzel over that whole span, with its eight times
//! finer frequency resolution, still holds [`TONE_COHERENCE`] of the power. On the labelled set
//! (BENCHMARKS.md) beeps score 0.86 or more and the one vowel that made a 160 ms tone 0.43.
//!
//! - **fax** when, before any word, a tone at 1100 ± 40 Hz lasts [`CNG_MIN_MS`] (CNG, T.30:
//!   1100 Hz, 0.5 s on, 3 s off) or one at 2100 ± 30 Hz lasts [`CED_MIN_MS`] (CED or V.25 ANSam,
//!   the answer tone an answering fax sends; the calling side's CNG is what the issue names, and
//!   both are detected).
//!
//! In [`AmdMode::DetectMessageEnd`], once a machine is found the detector keeps listening for
//! the end of the greeting:
//!
//! - **machine_end_beep** at the end of a tone of at least [`BEEP_MIN_MS`] (or once a tone has
//!   lasted [`BEEP_MAX_MS`]), so that a message played then starts after the beep;
//! - **machine_end_silence** after [`AmdConfig::message_end_silence_ms`] of silence, or when
//!   [`message_end_timeout_ms`](AmdConfig::message_end_timeout_ms) has passed since the machine was
//!   found with neither (the greeting never ended: leaving the message then is still the best
//!   the caller can do; [`Amd::cause`] says `"end_timeout"`).
//!
//! A human, a fax or an unknown is reported at once in both modes.

/// Length of an analysis block, in milliseconds.
pub const BLOCK_MS: u32 = 20;
/// Power at a block's own frequency over its mean square above which the block is a tone.
pub const TONE_PURITY: f64 = 0.8;
/// The same over a tone's first [`BEEP_MIN_MS`] (one Goertzel over the whole span), above
/// which the tone is one steady sine and can be a beep.
pub const TONE_COHERENCE: f64 = 0.7;
/// How far (Hz) a block's frequency may be from its tone's (mean) frequency.
pub const TONE_TOLERANCE_HZ: f64 = 25.0;
/// Lowest and highest frequency (Hz) of a tone (the telephone band).
pub const TONE_BAND_HZ: (f64, f64) = (300.0, 3400.0);
/// Shortest tone taken as a voicemail beep.
pub const BEEP_MIN_MS: u32 = 160;
/// A tone still on after this long is reported as the beep without waiting for its end.
pub const BEEP_MAX_MS: u32 = 2000;
/// Shortest 1100 Hz tone (before any word) taken as fax CNG (whose tones last 0.5 s ± 15 %).
pub const CNG_MIN_MS: u32 = 400;
/// Shortest 2100 Hz tone (before any word) taken as a fax answer tone (CED lasts 2.6–4 s).
pub const CED_MIN_MS: u32 = 500;

/// What the detector reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AmdMode {
    /// Human, machine or fax as soon as it is known (a machine is [`AnsweredBy::MachineStart`]).
    #[default]
    Detect,
    /// For a machine, wait for the end of its greeting: [`AnsweredBy::MachineEndBeep`] or
    /// [`AnsweredBy::MachineEndSilence`]. Other outcomes are reported as soon as known.
    DetectMessageEnd,
}

/// Parameters of the detector, named after Asterisk's `amd.conf`. All durations are in
/// milliseconds of audio pushed. The defaults are Asterisk's, except `max_words` and
/// `between_words_silence_ms`, which were tuned on the `tune` half of the labelled set of
/// `fixtures/amd/generate.py` (see BENCHMARKS.md, "Answering-machine detection").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmdConfig {
    /// Silence before the first word after which the result is `unknown` (Asterisk says
    /// MACHINE). Default 2500, Asterisk's: people in the set start talking after 0.3-1.5 s.
    pub initial_silence_ms: u32,
    /// Voice in the greeting above which it is a machine. Default 1500, Asterisk's: 2000 or
    /// 2500 classified the set the same but decided machines later.
    pub greeting_ms: u32,
    /// Silence after the greeting above which it is a human. Default 800, Asterisk's: 600 to
    /// 1200 classified the tuning half the same (500 let a machine's pause pass for the end of
    /// its greeting); every 100 ms less answers a person 100 ms sooner.
    pub after_greeting_silence_ms: u32,
    /// Audio after which the detector stops looking for human or machine. Default 5000,
    /// Asterisk's (no file of the set got that far).
    pub total_analysis_ms: u32,
    /// Shortest voice that is a word. Default 100, Asterisk's (60 to 140 made no difference).
    pub min_word_ms: u32,
    /// Silence that ends a word. Default 100 (Asterisk: 50): at 50, the dips between the
    /// syllables of "Hello, who is this?" count as words, and a person is taken for a machine.
    pub between_words_silence_ms: u32,
    /// Words at which it is a machine. Default 3 (Asterisk's sample `amd.conf`: 2, its older
    /// releases 3): at 2, 18 of the 30 people of the tuning half were machines; at 4 or more,
    /// the short greetings ("Hey, it's Jess, leave a message!") pass for people.
    pub max_words: u32,
    /// Mean absolute amplitude of a 20 ms block of 16-bit PCM (after the 200 Hz high-pass)
    /// below which the block is silence: the measure of Asterisk's `silence_threshold`; 256 is
    /// about -40 dBFS RMS for noise. Default 256, Asterisk's (192 to 384 did as well).
    pub silence_threshold: u16,
    /// Longest single word; longer is a machine. Default 5000, Asterisk's.
    pub max_word_ms: u32,
    /// In [`AmdMode::DetectMessageEnd`], how long after a machine is found to wait for a beep
    /// or the silence that ends its greeting before reporting `machine_end_silence` anyway.
    /// Default 30000 (Twilio's default detection timeout is 30 s; the longest greeting of the
    /// set ends 8.8 s in).
    pub message_end_timeout_ms: u32,
    /// What to report; default [`AmdMode::Detect`].
    pub mode: AmdMode,
}

impl Default for AmdConfig {
    fn default() -> AmdConfig {
        AmdConfig {
            initial_silence_ms: 2500,
            greeting_ms: 1500,
            after_greeting_silence_ms: 800,
            total_analysis_ms: 5000,
            min_word_ms: 100,
            between_words_silence_ms: 100,
            max_words: 3,
            silence_threshold: 256,
            max_word_ms: 5000,
            message_end_timeout_ms: 30_000,
            mode: AmdMode::Detect,
        }
    }
}

impl AmdConfig {
    /// In [`AmdMode::DetectMessageEnd`], the silence after a machine's greeting that ends it
    /// when no beep came: `after_greeting_silence_ms` + 700 ms, because machines leave up to
    /// about a second between the greeting and the beep, and a person's pause
    /// (`after_greeting_silence_ms`) is shorter than that.
    pub fn message_end_silence_ms(&self) -> u32 {
        self.after_greeting_silence_ms.saturating_add(700)
    }
}

/// Who (or what) answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnsweredBy {
    /// A person: a short greeting, then silence.
    Human,
    /// A machine, reported as soon as known ([`AmdMode::Detect`]).
    MachineStart,
    /// A machine whose greeting ended with a beep ([`AmdMode::DetectMessageEnd`]).
    MachineEndBeep,
    /// A machine whose greeting ended in silence, or did not end in time
    /// ([`AmdMode::DetectMessageEnd`]).
    MachineEndSilence,
    /// A fax machine (CNG or CED tone).
    Fax,
    /// Nothing heard, or undecidable.
    Unknown,
}

impl AnsweredBy {
    /// The API's name: `human`, `machine_start`, `machine_end_beep`, `machine_end_silence`,
    /// `fax`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnsweredBy::Human => "human",
            AnsweredBy::MachineStart => "machine_start",
            AnsweredBy::MachineEndBeep => "machine_end_beep",
            AnsweredBy::MachineEndSilence => "machine_end_silence",
            AnsweredBy::Fax => "fax",
            AnsweredBy::Unknown => "unknown",
        }
    }
}

/// The decision and when it was taken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AmdResult {
    /// Who answered.
    pub answered_by: AnsweredBy,
    /// Milliseconds of audio analysed when decided, from the first sample pushed (a multiple
    /// of [`BLOCK_MS`]).
    pub after_ms: u32,
}

/// A run of tonal blocks at one frequency.
#[derive(Debug, Clone, Copy, Default)]
struct Tone {
    /// Mean frequency of its blocks.
    hz: f64,
    /// Tonal blocks in it.
    blocks: u32,
    /// Non-tonal blocks since its last tonal one (0 or 1 while it lasts).
    misses: u32,
    /// A word had been heard when it started.
    after_word: bool,
    /// Its first [`BEEP_MIN_MS`] are one steady sine (see [`coherence`]).
    coherent: bool,
}

/// The detector for one call. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Amd {
    config: AmdConfig,
    rate: u32,
    /// Samples per block.
    block_len: usize,
    /// The block being filled.
    buf: Vec<i16>,
    /// Removes what is below the voice band before anything is measured.
    highpass: HighPass,
    /// Blocks analysed.
    blocks: u32,
    /// Silence (in blocks) since the last word-length voice; voice shorter than a word pauses it.
    silence: u32,
    /// Consecutive silent blocks (any voice block resets it).
    gap: u32,
    /// Voice blocks of the current word (dips shorter than between-words silence included).
    voice_run: u32,
    /// Voice blocks of the greeting's words.
    voice_total: u32,
    words: u32,
    in_word: bool,
    in_greeting: bool,
    /// Block count when a machine was found (DetectMessageEnd).
    machine_at: Option<u32>,
    tone: Option<Tone>,
    /// The (filtered) audio of the current tone's first [`BEEP_MIN_MS`].
    tone_audio: Vec<i16>,
    result: Option<AmdResult>,
    cause: Option<&'static str>,
    /// Goertzel coefficients and frequencies of the tone candidates (see [`tone_frequency`]).
    bank: [f32; BANK],
    bank_hz: [f64; BANK],
}

/// Whole blocks in `ms`, rounded up (so a limit is never reached early).
fn blocks(ms: u32) -> u32 {
    ms.div_ceil(BLOCK_MS)
}

impl Amd {
    /// A detector for audio at `rate` Hz (8000 for G.711 and G.722's audio as decoded to 8 kHz,
    /// 16000 for wideband; any multiple of 50 works, the block being `rate / 50` samples).
    pub fn new(config: AmdConfig, rate: u32) -> Amd {
        let rate = rate.max(50); // a block of at least one sample
        let block_len = (rate as usize * BLOCK_MS as usize / 1000).max(1);
        // Unused slots (the two estimates until a block fills them, the padding) repeat 1000 Hz.
        let mut bank_hz = [1000.0; BANK];
        bank_hz[2..2 + COMMON_TONES_HZ.len()].copy_from_slice(&COMMON_TONES_HZ);
        let bank = bank_hz.map(|hz| coeff(hz, f64::from(rate)));
        Amd {
            config,
            rate,
            block_len,
            buf: Vec::with_capacity(block_len),
            highpass: HighPass::new(HIGHPASS_HZ, f64::from(rate)),
            blocks: 0,
            silence: 0,
            gap: 0,
            voice_run: 0,
            voice_total: 0,
            words: 0,
            in_word: false,
            in_greeting: false,
            machine_at: None,
            tone: None,
            tone_audio: Vec::with_capacity(block_len * blocks(BEEP_MIN_MS) as usize),
            result: None,
            cause: None,
            bank,
            bank_hz,
        }
    }

    /// One frame of what the callee sent (any length, typically 20 ms). Returns the result
    /// once, when decided; `None` before and after.
    pub fn push(&mut self, frame: &[i16]) -> Option<AmdResult> {
        if self.result.is_some() {
            return None;
        }
        let mut rest = frame;
        while !rest.is_empty() {
            let take = (self.block_len - self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() == self.block_len {
                let decided = self.block();
                self.buf.clear();
                if let Some((answered_by, cause)) = decided {
                    let r = AmdResult { answered_by, after_ms: self.blocks * BLOCK_MS };
                    self.result = Some(r);
                    self.cause = Some(cause);
                    return Some(r);
                }
            }
        }
        None
    }

    /// The result, once decided.
    pub fn result(&self) -> Option<AmdResult> {
        self.result
    }

    /// Why it decided, once decided, like Asterisk's `AMDCAUSE`: `"initial_silence"`,
    /// `"too_long"` (unknown or machine), `"long_greeting"`, `"max_words"`,
    /// `"max_word_length"` (machine), `"after_greeting_silence"` (human), `"cng"`, `"ced"`
    /// (fax), `"beep"`, `"end_silence"`, `"end_timeout"` (message end).
    pub fn cause(&self) -> Option<&'static str> {
        self.cause
    }

    /// The sample rate given to [`Amd::new`].
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Analyses the full block in `self.buf`.
    fn block(&mut self) -> Option<(AnsweredBy, &'static str)> {
        self.blocks += 1;
        let c = self.config;
        self.highpass.run(&mut self.buf);
        let sum_abs: u64 = self.buf.iter().map(|&s| u64::from(s.unsigned_abs())).sum();
        let voiced = sum_abs >= u64::from(c.silence_threshold) * self.block_len as u64;
        let hz = if voiced { tone_frequency(&self.buf, self.rate, &self.bank, &self.bank_hz) } else { None };
        let ended = self.track_tone(hz);
        self.track_words(voiced);

        if let Some(m) = self.machine_at {
            // DetectMessageEnd: waiting for the beep or the silence after the greeting.
            if ended.is_some_and(|t| t.coherent && t.blocks >= blocks(BEEP_MIN_MS))
                || self.tone.is_some_and(|t| t.coherent && t.blocks >= blocks(BEEP_MAX_MS))
            {
                return Some((AnsweredBy::MachineEndBeep, "beep"));
            }
            if self.tone.is_none() && self.silence >= blocks(c.message_end_silence_ms()) {
                return Some((AnsweredBy::MachineEndSilence, "end_silence"));
            }
            if self.blocks - m >= blocks(c.message_end_timeout_ms) {
                return Some((AnsweredBy::MachineEndSilence, "end_timeout"));
            }
            return None;
        }

        if let Some(t) = self.tone.filter(|t| !t.after_word) {
            if (t.hz - 1100.0).abs() <= 40.0 && t.blocks >= blocks(CNG_MIN_MS) {
                return Some((AnsweredBy::Fax, "cng"));
            }
            if (t.hz - 2100.0).abs() <= 30.0 && t.blocks >= blocks(CED_MIN_MS) {
                return Some((AnsweredBy::Fax, "ced"));
            }
        }

        let machine = if self.voice_run >= blocks(c.max_word_ms) {
            Some("max_word_length")
        } else if self.words >= c.max_words {
            Some("max_words")
        } else if self.in_greeting && self.voice_total >= blocks(c.greeting_ms) {
            Some("long_greeting")
        } else if self.blocks >= blocks(c.total_analysis_ms) && self.in_greeting {
            Some("too_long")
        } else {
            None
        };
        if let Some(cause) = machine {
            return match c.mode {
                AmdMode::Detect => Some((AnsweredBy::MachineStart, cause)),
                AmdMode::DetectMessageEnd => {
                    self.machine_at = Some(self.blocks);
                    None
                }
            };
        }
        if self.in_greeting && self.silence >= blocks(c.after_greeting_silence_ms) {
            return Some((AnsweredBy::Human, "after_greeting_silence"));
        }
        if !self.in_greeting && self.silence >= blocks(c.initial_silence_ms) {
            return Some((AnsweredBy::Unknown, "initial_silence"));
        }
        if self.blocks >= blocks(c.total_analysis_ms) {
            return Some((AnsweredBy::Unknown, "too_long"));
        }
        None
    }

    /// Word and silence counts (Asterisk's state machine, with blips pausing the silence).
    fn track_words(&mut self, voiced: bool) {
        let c = &self.config;
        if voiced {
            self.gap = 0;
            self.voice_run += 1;
            let min_word = blocks(c.min_word_ms);
            if self.voice_run == min_word {
                // The blocks of a word count from its start, once it is known to be one.
                self.voice_total += self.voice_run;
            } else if self.voice_run > min_word {
                self.voice_total += 1;
            }
            if self.voice_run >= min_word {
                self.silence = 0;
                if !self.in_word {
                    self.words += 1;
                    self.in_word = true;
                }
                self.in_greeting = true;
            }
        } else {
            self.gap += 1;
            self.silence += 1;
            if self.gap >= blocks(c.between_words_silence_ms) {
                self.in_word = false;
                self.voice_run = 0;
            }
        }
    }

    /// Follows the current tone with this block's tonal frequency (if any); returns the tone
    /// that ended with this block.
    fn track_tone(&mut self, hz: Option<f64>) -> Option<Tone> {
        let ended = match (self.tone.as_mut(), hz) {
            (Some(t), Some(f)) if (f - t.hz).abs() <= TONE_TOLERANCE_HZ => {
                t.hz = (t.hz * t.blocks as f64 + f) / (t.blocks + 1) as f64;
                t.blocks += 1;
                t.misses = 0;
                None
            }
            (_, Some(f)) => {
                self.tone_audio.clear();
                let t = Tone { hz: f, blocks: 1, misses: 0, after_word: self.in_greeting, coherent: false };
                self.tone.replace(t)
            }
            (Some(t), None) => {
                t.misses += 1;
                if t.misses >= 2 {
                    self.tone.take()
                } else {
                    None
                }
            }
            (None, None) => None,
        };
        if let Some(t) = self.tone.as_mut() {
            let cap = self.tone_audio.capacity();
            if self.tone_audio.len() < cap {
                self.tone_audio.extend_from_slice(&self.buf);
                if self.tone_audio.len() >= cap {
                    t.coherent = coherence(&self.tone_audio, self.rate, t.hz) >= TONE_COHERENCE;
                }
            }
        }
        ended
    }
}

/// Share of the power of `x` (a tone's first [`BEEP_MIN_MS`]) in one sine near `hz`, over the
/// whole span: a beep is one steady sine, while the harmonic of a sustained vowel that passed
/// for a tone in each 20 ms block drifts with the pitch and smears over several of the finer
/// bins of the longer window. Tried at 8 frequencies ¼ of a bin apart around `hz`.
fn coherence(x: &[i16], rate: u32, hz: f64) -> f64 {
    let rate_f = f64::from(rate);
    let step = rate_f / x.len() as f64 / 4.0;
    let freqs: [f64; 8] = std::array::from_fn(|k| hz + (k as f64 - 3.5) * step);
    let p = goertzel_bank(x, &freqs.map(|f| coeff(f, rate_f)));
    let best = p.iter().fold(0.0f32, |a, &b| a.max(b));
    let mean_square = x.iter().map(|&v| i64::from(v) * i64::from(v)).sum::<i64>() as f64 / x.len() as f64;
    if mean_square > 0.0 {
        f64::from(best) / mean_square
    } else {
        0.0
    }
}

/// Corner frequency of the high-pass filter the audio goes through first.
pub const HIGHPASS_HZ: f64 = 200.0;

/// A second-order Butterworth high-pass filter (RBJ's cookbook biquad, direct form I).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HighPass {
    b: [f32; 3],
    a: [f32; 2],
    x: [f32; 2],
    y: [f32; 2],
}

impl HighPass {
    pub(crate) fn new(hz: f64, rate: f64) -> HighPass {
        let w = 2.0 * std::f64::consts::PI * hz.min(0.45 * rate) / rate;
        let alpha = w.sin() / (2.0 * std::f64::consts::FRAC_1_SQRT_2);
        let a0 = 1.0 + alpha;
        let b0 = (1.0 + w.cos()) / 2.0 / a0;
        HighPass {
            b: [b0 as f32, (-2.0 * b0) as f32, b0 as f32],
            a: [(-2.0 * w.cos() / a0) as f32, ((1.0 - alpha) / a0) as f32],
            x: [0.0; 2],
            y: [0.0; 2],
        }
    }

    /// Skips `buf` (a quiet block not worth filtering): the input state becomes its last two
    /// samples and the output state zero, which a quiet block's output is close to.
    pub(crate) fn skip(&mut self, buf: &[i16]) {
        if let [.., a, b] = buf {
            self.x = [f32::from(*b), f32::from(*a)];
            self.y = [0.0; 2];
        }
    }

    /// Filters `buf` in place.
    pub(crate) fn run(&mut self, buf: &mut [i16]) {
        let (b, a) = (self.b, self.a);
        let ([mut x1, mut x2], [mut y1, mut y2]) = (self.x, self.y);
        for s in buf {
            let x0 = f32::from(*s);
            let y0 = b[0] * x0 + b[1] * x1 + b[2] * x2 - a[0] * y1 - a[1] * y2;
            (x2, x1, y2, y1) = (x1, x0, y1, y0);
            *s = y0 as i16; // saturating
        }
        (self.x, self.y) = ([x1, x2], [y1, y2]);
    }
}

/// Frequencies (Hz) always tried for a tone: usual voicemail beeps and the fax tones (1100,
/// 2100).
pub const COMMON_TONES_HZ: [f64; 11] =
    [440.0, 480.0, 600.0, 850.0, 950.0, 1000.0, 1100.0, 1400.0, 1800.0, 2000.0, 2100.0];

/// Least-squares estimate of `2cos(w)` for `x[n-1] + x[n+1] = 2cos(w)·x[n]`: exact for a sine,
/// a power-weighted mean of the components' `2cos(w)` otherwise.
fn two_cos(x: impl Iterator<Item = i64> + Clone) -> Option<f64> {
    let (mut num, mut den) = (0i64, 0i64);
    let (mut a, mut b) = (0i64, 0i64);
    for (i, c) in x.enumerate() {
        if i >= 2 {
            num += (a + c) * b;
            den += b * b;
        }
        (a, b) = (b, c);
    }
    (den > 0).then(|| (num as f64 / den as f64).clamp(-2.0, 2.0))
}

/// Slots of the Goertzel bank: the two estimates, then [`COMMON_TONES_HZ`], then padding.
const BANK: usize = 16;

/// Powers of the components of `x` at the frequencies whose Goertzel coefficients
/// (`2cos(2π·f/rate)`) are `coeffs`, normalised so that a sine of amplitude `A` gives `A²/2`.
/// All in one pass (independent recursions side by side, which the compiler vectorises).
pub(crate) fn goertzel_bank<const K: usize>(x: &[i16], coeffs: &[f32; K]) -> [f32; K] {
    let (mut s1, mut s2) = ([0f32; K], [0f32; K]);
    for &v in x {
        let v = f32::from(v);
        for k in 0..K {
            let s0 = v + coeffs[k] * s1[k] - s2[k];
            s2[k] = s1[k];
            s1[k] = s0;
        }
    }
    let n2 = (x.len() * x.len()) as f32;
    std::array::from_fn(|k| 2.0 * (s1[k] * s1[k] + s2[k] * s2[k] - coeffs[k] * s1[k] * s2[k]) / n2)
}

/// The Goertzel coefficient `2cos(2π·hz/rate)`.
pub(crate) fn coeff(hz: f64, rate: f64) -> f32 {
    (2.0 * (2.0 * std::f64::consts::PI * hz / rate).cos()) as f32
}

/// The frequency of `x` if it is a tone in the telephone band, one component holding
/// [`TONE_PURITY`] of the power. Candidates: the least-squares frequency of the block (any
/// frequency; exact for a pure sine), the same after a `(1 + z⁻ᵈ)³` low-pass (which finds the
/// fundamental of a beep with harmonics), and [`COMMON_TONES_HZ`]; the Goertzel power decides
/// between them, and is refined over ±2 DFT bins around the best. `bank` holds the
/// coefficients of [`COMMON_TONES_HZ`] from slot 2 on, and `bank_hz` their frequencies.
fn tone_frequency(x: &[i16], rate: u32, bank: &[f32; BANK], bank_hz: &[f64; BANK]) -> Option<f64> {
    let n = x.len();
    if n < 16 {
        return None;
    }
    let rate_f = f64::from(rate);
    let (lo, hi) = (TONE_BAND_HZ.0, TONE_BAND_HZ.1.min(0.45 * rate_f));
    let hz_of = |c: f64| (c / 2.0).acos() * rate_f / (2.0 * std::f64::consts::PI);
    let raw = two_cos(x.iter().map(|&v| i64::from(v))).map(hz_of);
    // (1 + z⁻ᵈ)³ with d = rate / 8000: the same response below 4 kHz at every rate.
    let d = (rate as usize / 8000).max(1);
    let smooth = two_cos(
        x.windows(3 * d + 1)
            .map(|w| i64::from(w[0]) + 3 * i64::from(w[d]) + 3 * i64::from(w[2 * d]) + i64::from(w[3 * d])),
    )
    .map(hz_of);
    let (mut coeffs, mut freqs) = (*bank, *bank_hz);
    for (slot, hz) in [raw, smooth].into_iter().enumerate() {
        if let Some(hz) = hz.filter(|hz| (lo..=hi).contains(hz)) {
            (coeffs[slot], freqs[slot]) = (coeff(hz, rate_f), hz);
        }
    }
    let powers = goertzel_bank(x, &coeffs);
    let (mut best_hz, mut best_p) = (0.0, -1.0f32);
    for (k, &p) in powers.iter().enumerate() {
        if p > best_p && (lo..=hi).contains(&freqs[k]) {
            (best_hz, best_p) = (freqs[k], p);
        }
    }
    if best_p < 0.0 {
        return None;
    }
    // A finer look around the best: 16 frequencies ¼ of a DFT bin apart (12.5 Hz for a 20 ms
    // block), which also finds the true peak when the estimate was off by up to ~2 bins (the
    // fundamental of a low beep with harmonics).
    let step = rate_f / n as f64 / 4.0;
    let around: [f64; BANK] = std::array::from_fn(|k| best_hz + (k as f64 - 7.5) * step);
    let p = goertzel_bank(x, &around.map(|hz| coeff(hz, rate_f)));
    for (hz, p) in around.into_iter().zip(p) {
        if p > best_p {
            (best_hz, best_p) = (hz, p);
        }
    }
    let mean_square = x.iter().map(|&v| i64::from(v) * i64::from(v)).sum::<i64>() as f64 / n as f64;
    (f64::from(best_p) >= TONE_PURITY * mean_square && (lo..=hi).contains(&best_hz)).then_some(best_hz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// Test signal builder at one rate.
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
            (self.rate as usize) * ms as usize / 1000
        }
        fn ms(&self) -> u32 {
            (self.s.len() * 1000 / self.rate as usize) as u32
        }
        fn silence(mut self, ms: u32) -> Sig {
            let n = self.n(ms);
            self.s.extend(std::iter::repeat_n(0, n));
            self
        }
        /// Sum of sines (Hz, amplitude) for `ms`, with 5 ms ramps.
        fn tones(mut self, parts: &[(f64, f64)], ms: u32) -> Sig {
            let n = self.n(ms);
            let ramp = self.n(5).max(1);
            for i in 0..n {
                let t = i as f64 / self.rate as f64;
                let g = (i.min(n - 1 - i) as f64 / ramp as f64).min(1.0);
                let v: f64 = parts.iter().map(|&(f, a)| a * (2.0 * PI * f * t).sin()).sum();
                self.s.push((v * g).round() as i16);
            }
            self
        }
        /// A sine gliding from `from` to `to` Hz (the harmonic of a vowel whose pitch moves).
        fn glide(mut self, from: f64, to: f64, ms: u32) -> Sig {
            let n = self.n(ms);
            let mut phase = 0.0f64;
            for i in 0..n {
                let f = from + (to - from) * i as f64 / n as f64;
                phase += 2.0 * PI * f / self.rate as f64;
                self.s.push((8000.0 * phase.sin()).round() as i16);
            }
            self
        }
        fn tone(self, hz: f64, ms: u32) -> Sig {
            self.tones(&[(hz, 8000.0)], ms)
        }
        /// A voice-like "word": a 130 Hz harmonic series (telephone band, falling with
        /// frequency), its pitch gliding ±8 %, under a syllabic envelope.
        fn word(mut self, ms: u32) -> Sig {
            let n = self.n(ms);
            let mut phase = 0.0f64;
            for i in 0..n {
                let x = i as f64 / n as f64;
                let f0 = 130.0 * (1.0 + 0.08 * (2.0 * PI * x).sin());
                phase += 2.0 * PI * f0 / self.rate as f64;
                let v: f64 = (3..26).map(|k| (k as f64 * phase).sin() / k as f64).sum();
                let env = (PI * x).sin().powf(0.3);
                self.s.push((6000.0 * env * v).round() as i16);
            }
            self
        }
        /// White noise of mean absolute amplitude about `level`.
        fn noise(mut self, level: f64, ms: u32) -> Sig {
            for _ in 0..self.n(ms) {
                self.seed = self.seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let u = (self.seed >> 8) as f64 / (1u32 << 24) as f64; // uniform 0..1: mean |x| = level
                self.s.push(((u * 2.0 - 1.0) * 2.0 * level).round() as i16);
            }
            self
        }
        fn run(&self, config: AmdConfig) -> (Option<AmdResult>, Option<&'static str>) {
            run_frames(&self.s, self.rate, config, self.n(20))
        }
    }

    fn run_frames(s: &[i16], rate: u32, config: AmdConfig, frame: usize) -> (Option<AmdResult>, Option<&'static str>) {
        let mut amd = Amd::new(config, rate);
        let mut got = None;
        for f in s.chunks(frame) {
            if let Some(r) = amd.push(f) {
                assert!(got.is_none(), "a second result");
                got = Some(r);
            }
        }
        assert_eq!(got, amd.result());
        (got, amd.cause())
    }

    fn detect() -> AmdConfig {
        AmdConfig::default()
    }

    fn message_end() -> AmdConfig {
        AmdConfig { mode: AmdMode::DetectMessageEnd, ..AmdConfig::default() }
    }

    /// A greeting of `n` words of 400 ms with 200 ms between them.
    fn greeting(mut s: Sig, n: u32) -> Sig {
        for _ in 0..n {
            s = s.word(400).silence(200);
        }
        s
    }

    fn expect(got: (Option<AmdResult>, Option<&'static str>), who: AnsweredBy, cause: &str, ms: std::ops::Range<u32>) {
        let (r, c) = got;
        let r = r.unwrap_or_else(|| panic!("no result, expected {who:?}"));
        assert_eq!((r.answered_by, c), (who, Some(cause)), "{r:?}");
        assert!(ms.contains(&r.after_ms), "{} ms not in {ms:?}", r.after_ms);
    }

    #[test]
    fn names() {
        let all = [
            (AnsweredBy::Human, "human"),
            (AnsweredBy::MachineStart, "machine_start"),
            (AnsweredBy::MachineEndBeep, "machine_end_beep"),
            (AnsweredBy::MachineEndSilence, "machine_end_silence"),
            (AnsweredBy::Fax, "fax"),
            (AnsweredBy::Unknown, "unknown"),
        ];
        for (a, s) in all {
            assert_eq!(a.as_str(), s);
        }
    }

    #[test]
    fn short_greeting_then_silence_is_human() {
        for rate in [8000, 16000] {
            let s = Sig::new(rate).silence(600).word(450).silence(3000);
            // Decided once after-greeting silence has passed after the word.
            let end = 600 + 450;
            let agreed = detect().after_greeting_silence_ms;
            expect(s.run(detect()), AnsweredBy::Human, "after_greeting_silence", end..end + agreed + 100);
            // Reported at once in DetectMessageEnd too.
            expect(s.run(message_end()), AnsweredBy::Human, "after_greeting_silence", end..end + agreed + 100);
        }
    }

    #[test]
    fn two_words_are_still_human() {
        let s = Sig::new(8000).silence(300).word(300).silence(150).word(350).silence(3000);
        expect(s.run(detect()), AnsweredBy::Human, "after_greeting_silence", 800..2000);
    }

    #[test]
    fn many_words_are_a_machine() {
        for rate in [8000, 16000] {
            let s = greeting(Sig::new(rate).silence(300), 6).silence(3000);
            // The third word (at 300 + 2·600 ms) starts counting after min_word_ms.
            expect(s.run(detect()), AnsweredBy::MachineStart, "max_words", 1500..1700);
        }
    }

    #[test]
    fn long_greeting_is_a_machine() {
        let c = AmdConfig { max_words: 100, ..detect() };
        let s = greeting(Sig::new(8000).silence(300), 6);
        // 1500 ms of voice in words of 400 ms: in the fourth word, at 300 + 3·600 + 300.
        expect(s.run(c), AnsweredBy::MachineStart, "long_greeting", 2350..2450);
    }

    #[test]
    fn one_endless_word_is_a_machine() {
        let c = AmdConfig { max_words: 100, greeting_ms: 100_000, max_word_ms: 2000, ..detect() };
        let s = Sig::new(8000).silence(200).word(4000);
        expect(s.run(c), AnsweredBy::MachineStart, "max_word_length", 2180..2260);
    }

    #[test]
    fn nothing_heard_is_unknown() {
        let c = detect();
        let s = Sig::new(8000).silence(6000);
        expect(s.run(c), AnsweredBy::Unknown, "initial_silence", 2500..2520);
        // Noise under the threshold, with sparse clicks above it, is still nothing.
        let mut s = Sig::new(8000);
        for _ in 0..20 {
            s = s.noise(100.0, 180).noise(2000.0, 40);
        }
        expect(s.run(c), AnsweredBy::Unknown, "initial_silence", 2500..3200);
        let s = Sig::new(16000).noise(150.0, 6000);
        expect(s.run(message_end()), AnsweredBy::Unknown, "initial_silence", 2500..2520);
    }

    #[test]
    fn undecided_at_the_end_of_analysis() {
        // Short words (a word each, never 3 in a row: max_words high) with pauses shorter than
        // the after-greeting silence, until the analysis time: a machine.
        let c = AmdConfig { max_words: 100, ..detect() };
        let mut s = Sig::new(8000);
        for _ in 0..12 {
            s = s.word(150).silence(500);
        }
        expect(s.run(c), AnsweredBy::MachineStart, "too_long", 5000..5020);
        // Blips only (shorter than a word), never silence for long enough: unknown.
        let c = AmdConfig { initial_silence_ms: 10_000, ..detect() };
        let mut s = Sig::new(8000);
        for _ in 0..30 {
            s = s.noise(2000.0, 60).silence(200);
        }
        expect(s.run(c), AnsweredBy::Unknown, "too_long", 5000..5020);
    }

    #[test]
    fn fax_tones() {
        for rate in [8000, 16000] {
            // CNG: 0.5 s of 1100 Hz every 3.5 s.
            let s = Sig::new(rate).silence(700).tone(1100.0, 500).silence(3000).tone(1100.0, 500);
            expect(s.run(detect()), AnsweredBy::Fax, "cng", 1100..1220);
            // CED, plain and with ANSam's phase reversals every 450 ms.
            let s = Sig::new(rate).silence(300).tone(2100.0, 3000).silence(1000);
            expect(s.run(message_end()), AnsweredBy::Fax, "ced", 800..900);
            let mut s = Sig::new(rate).silence(300);
            for i in 0..7 {
                let a = if i % 2 == 0 { 8000.0 } else { -8000.0 };
                s = s.tones(&[(2100.0, a)], 450);
            }
            expect(s.run(detect()), AnsweredBy::Fax, "ced", 800..1000);
        }
    }

    #[test]
    fn an_1100_hz_beep_after_words_is_not_fax() {
        // Two words and then a 1100 Hz beep inside the after-greeting pause.
        let s = Sig::new(8000).silence(300).word(300).silence(300).tone(1100.0, 600).silence(3000);
        let (r, c) = s.run(detect());
        assert_ne!(r.map(|r| r.answered_by), Some(AnsweredBy::Fax), "{c:?}");
    }

    #[test]
    fn message_end_at_the_beep() {
        for rate in [8000, 16000] {
            for hz in [440.0, 850.0, 1000.0, 1400.0, 1800.0] {
                let s = greeting(Sig::new(rate).silence(300), 8).silence(300).tone(hz, 500);
                let beep_end = s.ms();
                let s = s.silence(3000);
                // Reported at the end of the beep (confirmed one or two blocks later).
                expect(s.run(message_end()), AnsweredBy::MachineEndBeep, "beep", beep_end..beep_end + 60);
                // The same call in Detect mode: the machine as soon as found.
                expect(s.run(detect()), AnsweredBy::MachineStart, "max_words", 1500..1700);
            }
        }
        // A beep with a third harmonic (a square-ish beep), and a long one.
        let s = greeting(Sig::new(8000), 5).tones(&[(950.0, 8000.0), (2850.0, 2400.0)], 400);
        let beep_end = s.ms();
        expect(s.silence(2000).run(message_end()), AnsweredBy::MachineEndBeep, "beep", beep_end..beep_end + 60);
        let s = greeting(Sig::new(8000), 5).silence(200);
        let start = s.ms();
        let s = s.tone(1000.0, 5000);
        expect(s.run(message_end()), AnsweredBy::MachineEndBeep, "beep", start + BEEP_MAX_MS..start + BEEP_MAX_MS + 60);
    }

    #[test]
    fn message_end_in_silence() {
        for rate in [8000, 16000] {
            let s = greeting(Sig::new(rate).silence(300), 8);
            let end = s.ms() - 200; // the last word's end
            let s = s.silence(4000);
            let wait = message_end().message_end_silence_ms();
            expect(s.run(message_end()), AnsweredBy::MachineEndSilence, "end_silence", end + wait..end + wait + 40);
        }
    }

    #[test]
    fn message_end_timeout() {
        let c = AmdConfig { message_end_timeout_ms: 4000, ..message_end() };
        // Words without a pause long enough to end the greeting; found at 1500-1700 ms.
        let s = greeting(Sig::new(8000), 20);
        // Found at 1300 ms (the third word), then 4 s.
        expect(s.run(c), AnsweredBy::MachineEndSilence, "end_timeout", 5300..5320);
    }

    #[test]
    fn tones_anywhere_in_the_band() {
        for rate in [8000, 16000] {
            let amd = Amd::new(detect(), rate);
            let n = rate as usize / 50;
            // The second 20 ms block of 60 ms of signal (no ramp in it).
            let freq = |s: &Sig| tone_frequency(&s.s[n..2 * n], rate, &amd.bank, &amd.bank_hz);
            for hz in [350.0, 730.0, 1000.0, 1234.0, 1650.0, 2950.0] {
                // Pure, with a third harmonic (if in band), and with noise 20 dB down.
                let mut cases = vec![Sig::new(rate).tone(hz, 60)];
                if 3.0 * hz < 3400.0 {
                    cases.push(Sig::new(rate).tones(&[(hz, 8000.0), (3.0 * hz, 2400.0)], 60));
                }
                let mut noisy = Sig::new(rate).tone(hz, 60);
                let noise = Sig::new(rate).noise(500.0, 60);
                for (a, b) in noisy.s.iter_mut().zip(&noise.s) {
                    *a += b;
                }
                cases.push(noisy);
                for s in cases {
                    let f = freq(&s).unwrap_or_else(|| panic!("{hz} Hz at {rate} Hz: no tone"));
                    assert!((f - hz).abs() < 15.0, "{hz} Hz at {rate} Hz: found {f}");
                }
            }
            // Noise, a voice-like word, two tones of equal power, a tone out of the band.
            assert_eq!(freq(&Sig::new(rate).noise(3000.0, 60)), None);
            assert_eq!(freq(&Sig::new(rate).word(60)), None);
            assert_eq!(freq(&Sig::new(rate).tones(&[(697.0, 5000.0), (1209.0, 5000.0)], 60)), None);
            assert_eq!(freq(&Sig::new(rate).tone(150.0, 60)), None);
        }
    }

    #[test]
    fn sustained_vowels_are_not_beeps() {
        // After a machine is found, a long steady vowel (fixed pitch, many harmonics) and a
        // two-formant vowel are speech, not a beep: the greeting ends in silence.
        let c = message_end();
        let vowel: Vec<(f64, f64)> = (3..26).map(|k| (120.0 * k as f64, 6000.0 / k as f64)).collect();
        let formants: Vec<(f64, f64)> = (1..30)
            .map(|k| {
                let f = 110.0 * k as f64;
                let a = 5000.0 / (1.0 + ((f - 700.0) / 90.0).powi(2)) + 3000.0 / (1.0 + ((f - 1200.0) / 120.0).powi(2));
                (f, a)
            })
            .filter(|&(f, _)| f > 300.0)
            .collect();
        for parts in [vowel, formants] {
            let s = greeting(Sig::new(8000), 4).tones(&parts, 1500);
            let end = s.ms();
            let s = s.silence(3000);
            let wait = c.message_end_silence_ms();
            expect(s.run(c), AnsweredBy::MachineEndSilence, "end_silence", end + wait - 20..end + wait + 40);
        }
    }

    #[test]
    fn a_gliding_tone_is_not_a_beep() {
        // 460 → 500 Hz in 400 ms: each 20 ms block is a pure tone, and consecutive blocks are
        // within the tolerance, but over 160 ms it is not one sine (a vowel's second harmonic,
        // the fundamental cut by the telephone band, does this).
        for rate in [8000, 16000] {
            let c = message_end();
            let amd = Amd::new(c, rate);
            let n = rate as usize / 50;
            let g = Sig::new(rate).glide(460.0, 500.0, 400);
            assert!(g.s.chunks_exact(n).all(|b| tone_frequency(b, rate, &amd.bank, &amd.bank_hz).is_some()));
            let s = greeting(Sig::new(rate), 4).glide(460.0, 500.0, 400);
            let end = s.ms();
            let s = s.silence(3000);
            let wait = c.message_end_silence_ms();
            expect(s.run(c), AnsweredBy::MachineEndSilence, "end_silence", end + wait - 20..end + wait + 40);
            // While a steady one is.
            let s = greeting(Sig::new(rate), 4).tone(480.0, 400);
            let end = s.ms();
            expect(s.silence(3000).run(c), AnsweredBy::MachineEndBeep, "beep", end..end + 60);
        }
    }

    #[test]
    fn loud_noise_reads_as_talk() {
        // White noise far above the threshold is voice to an energy detector: a machine. This
        // documents the limit (see BENCHMARKS.md) rather than a wish.
        let s = Sig::new(8000).noise(2000.0, 6000);
        let (r, _) = s.run(detect());
        assert_eq!(r.map(|r| r.answered_by), Some(AnsweredBy::MachineStart));
        // And noise is never tonal: no beep, no fax.
        let s = greeting(Sig::new(8000), 5).noise(2000.0, 1000).silence(3000);
        let (r, c) = s.run(message_end());
        assert_eq!((r.map(|r| r.answered_by), c), (Some(AnsweredBy::MachineEndSilence), Some("end_silence")));
    }

    #[test]
    fn frame_length_does_not_matter() {
        let s = greeting(Sig::new(8000).silence(300), 8).silence(300).tone(1000.0, 500).silence(3000);
        let whole = run_frames(&s.s, 8000, message_end(), 160);
        for frame in [1, 7, 80, 240, 1000, s.s.len()] {
            assert_eq!(run_frames(&s.s, 8000, message_end(), frame), whole, "frames of {frame}");
        }
    }

    #[test]
    fn nothing_after_the_result() {
        let mut amd = Amd::new(detect(), 8000);
        let s = Sig::new(8000).silence(3000);
        let mut got = Vec::new();
        for f in s.s.chunks(160) {
            got.extend(amd.push(f));
        }
        assert_eq!(got.len(), 1);
        assert_eq!(amd.result(), Some(got[0]));
        assert_eq!(amd.push(&[1000; 160]), None);
        assert_eq!(amd.result(), Some(got[0]));
        assert_eq!(amd.rate(), 8000);
    }

    /// The fixtures the engine's end-to-end test plays (made by fixtures/amd/generate.py).
    fn fixture(name: &str) -> Vec<i16> {
        let path = format!("{}/../fixtures/amd/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut r = hound::WavReader::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let spec = r.spec();
        assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (1, 8000, 16));
        r.samples::<i16>().map(|s| s.unwrap()).collect()
    }

    #[test]
    fn fixture_human() {
        let s = fixture("human.wav");
        let (r, c) = run_frames(&s, 8000, detect(), 160);
        assert_eq!((r.unwrap().answered_by, c), (AnsweredBy::Human, Some("after_greeting_silence")));
        let (r, _) = run_frames(&s, 8000, message_end(), 160);
        assert_eq!(r.unwrap().answered_by, AnsweredBy::Human);
    }

    #[test]
    fn fixture_machine() {
        let s = fixture("machine.wav");
        let (r, _) = run_frames(&s, 8000, detect(), 160);
        let r = r.unwrap();
        assert_eq!(r.answered_by, AnsweredBy::MachineStart);
        assert!(r.after_ms < 3000, "{r:?}");
        // The speech of the greeting holds no beep: the beep found is the one that ends 3 s
        // before the end of the file.
        let (r, c) = run_frames(&s, 8000, message_end(), 160);
        let r = r.unwrap();
        let beep_end = (s.len() / 8) as u32 - 3000;
        assert_eq!((r.answered_by, c), (AnsweredBy::MachineEndBeep, Some("beep")));
        assert!((beep_end..beep_end + 60).contains(&r.after_ms), "{r:?}, beep ends at {beep_end} ms");
    }
}
