//! One scripted caller, sans-IO: every 20 ms it is asked for the frame it says
//! ([`Caller::fill`]) and shown the frame the bot sent ([`Caller::tick`]). Time is the
//! frames counted (the first frame is time 0), so the caller's own timing is exact: it knows
//! the sample on which each utterance ends. The bot's speech is found per frame by the
//! media crate's detector ([`Vad`]); a reply is the bot's first speech that starts after the
//! caller's turn ended.

use super::report::{Check, TurnReport};
use super::script::{Action, Turn};
use dialtone_media::player::Player;
use dialtone_media::resample::goertzel_power;
use dialtone_media::vad::{Vad, VadConfig, VadEvent};

/// Frames of one tone in a row that make it "arrived" (60 ms).
const TONE_FRAMES: u32 = 3;
/// A frame holds the tone when that frequency carries this share of its power.
const TONE_SHARE: f32 = 0.5;
/// And its power is at least this (RMS 100).
const TONE_MIN_POWER: f32 = 10_000.0;
/// Between two DTMF digits the caller sends.
const DTMF_EVERY_MS: u64 = 200;
/// A digit's length (the RFC 4733 sender's default).
const DTMF_MS: u64 = 100;

/// DTMF frequencies: the low group, then the high group (ITU-T Q.23).
const DTMF_LOW: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const DTMF_HIGH: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const DTMF_KEYS: [[char; 4]; 4] =
    [['1', '2', '3', 'A'], ['4', '5', '6', 'B'], ['7', '8', '9', 'C'], ['*', '0', '#', 'D']];

/// In-band DTMF in the bot's audio: a frame whose strongest low and high DTMF frequencies
/// hold 70 % of its power (each at least a tenth) is that key; two such frames in a row
/// (40 ms, Q.24's shortest digit) make a press, and a frame without it ends the press.
#[derive(Default)]
struct InBandDtmf {
    key: Option<char>,
    frames: u32,
}

impl InBandDtmf {
    /// A key pressed, once per press.
    fn push(&mut self, frame: &[i16], rate: u32) -> Option<char> {
        let power = frame.iter().map(|&s| f32::from(s) * f32::from(s)).sum::<f32>() / frame.len().max(1) as f32;
        let best =
            |group: &[f32; 4]| {
                group
                    .iter()
                    .enumerate()
                    .map(|(i, hz)| (i, goertzel_power(frame, rate, *hz)))
                    .fold((0, 0.0f32), |a, b| if b.1 > a.1 { b } else { a })
            };
        let ((lo, pl), (hi, ph)) = (best(&DTMF_LOW), best(&DTMF_HIGH));
        let key = (power >= TONE_MIN_POWER && pl + ph >= 0.7 * power && pl >= power / 10.0 && ph >= power / 10.0)
            .then(|| DTMF_KEYS[lo][hi]);
        if key.is_some() && key == self.key {
            self.frames += 1;
        } else {
            self.key = key;
            self.frames = u32::from(key.is_some());
        }
        (self.frames == 2).then_some(key).flatten()
    }
}

/// Where the caller is in its script.
enum Phase {
    /// Silence until then (a turn's `wait_ms`).
    Wait { until: u64 },
    /// A barge-in turn waits for the bot to speak (`seen`: when it started), at most until
    /// `deadline` when it does not.
    AwaitBot { seen: Option<u64>, deadline: u64 },
    /// Saying a turn's audio, begun at `from`.
    Speak { player: Player, from: u64, samples: usize },
    /// Sending digits: the next at `next_at`.
    Dtmf { digits: Vec<char>, next: usize, next_at: u64 },
    /// The turn is said; waiting for the bot's reply (until `deadline` for its start).
    Listen { since: u64, deadline: u64 },
    /// Every turn is done, or the call is over.
    Done,
}

/// What a turn measured.
#[derive(Debug, Clone, Default)]
struct Measured {
    reached: bool,
    caller_start: Option<u64>,
    caller_end: Option<u64>,
    /// The bot's speech when a barge-in turn started speaking: its start.
    barged_into: Option<u64>,
    /// The barge-in turn waited for the bot's speech in vain.
    bot_silent: bool,
    reply_start: Option<u64>,
    reply_end: Option<u64>,
    tone_at: Option<u64>,
    tone_run: u32,
    /// Digits the bot sent in the reply window (in-band, or RFC 4733 over SIP).
    digits: String,
    ended: Option<u64>,
}

/// One scripted call's caller.
pub struct Caller {
    turns: Vec<Turn>,
    rate: u32,
    /// Frames done.
    frames: u64,
    hangup_after: u64,
    vad: Vad,
    /// The bot's speech so far: (start, end) in ms; the last may be open.
    segments: Vec<(u64, Option<u64>)>,
    phase: Phase,
    /// The turn under way.
    cur: usize,
    measured: Vec<Measured>,
    digit: Option<char>,
    /// In-band DTMF in the bot's audio.
    inband: InBandDtmf,
    /// The call ended before the script did.
    cut_short: bool,
}

impl Caller {
    /// A caller for `turns` on a call at `rate` Hz (8000 or 16000) that hangs up at
    /// `hangup_after_ms` at the latest.
    pub fn new(turns: Vec<Turn>, rate: u32, hangup_after_ms: u64) -> Caller {
        let n = turns.len();
        let mut c = Caller {
            turns,
            rate,
            frames: 0,
            hangup_after: hangup_after_ms,
            vad: Vad::new(VadConfig::new(rate)),
            segments: Vec::new(),
            phase: Phase::Done,
            cur: 0,
            measured: vec![Measured::default(); n],
            digit: None,
            inband: InBandDtmf::default(),
            cut_short: false,
        };
        c.begin_turn(0, 0);
        c
    }

    /// Samples in one 20 ms frame.
    pub fn frame_len(&self) -> usize {
        (self.rate / 50) as usize
    }

    /// Its call rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Milliseconds of call so far.
    pub fn elapsed_ms(&self) -> u64 {
        self.frames * 20
    }

    /// The frame the caller says now.
    pub fn fill(&mut self, out: &mut [i16]) {
        match &mut self.phase {
            Phase::Speak { player, .. } => {
                player.fill(out);
            }
            _ => out.fill(0),
        }
    }

    /// A DTMF digit to send now, once.
    pub fn take_digit(&mut self) -> Option<char> {
        self.digit.take()
    }

    /// A digit the bot sent (RFC 4733): it counts for the turn whose reply window is open.
    pub fn heard_digit(&mut self, d: char) {
        let now = self.elapsed_ms();
        if let Some(j) = self.reply_turn(now) {
            self.measured[j].digits.push(d);
        }
    }

    /// The turn whose reply window holds `at`: the current one, or the one before whose
    /// reply the current one barged into.
    fn reply_turn(&self, at: u64) -> Option<usize> {
        [self.cur, self.cur.saturating_sub(1)].into_iter().find(|j| self.in_reply(*j, at))
    }

    /// Whether the script is over (every turn done, or the call's time is up).
    pub fn done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// The frame the bot sent while the caller said the last [`fill`](Self::fill); moves
    /// the script on.
    pub fn tick(&mut self, bot: &[i16]) {
        let start = self.frames * 20;
        self.frames += 1;
        let now = self.frames * 20;
        match self.vad.push(bot) {
            Some(VadEvent::SpeechStart { at_ms }) => self.segments.push((at_ms, None)),
            Some(VadEvent::SpeechEnd { at_ms }) => {
                if let Some(last) = self.segments.last_mut() {
                    last.1 = Some(at_ms);
                }
            }
            None => {}
        }
        // The reply of the turn before may still be playing (the next turn barged in).
        for j in self.cur.saturating_sub(1)..=self.cur {
            if self.in_reply(j, start) {
                self.tone(j, bot, start);
            }
        }
        if let Some(key) = self.inband.push(bot, self.rate) {
            if let Some(j) = self.reply_turn(start) {
                self.measured[j].digits.push(key);
            }
        }
        if now >= self.hangup_after && !self.done() {
            self.finish_turn(now);
            self.phase = Phase::Done;
            return;
        }
        self.step(now);
    }

    /// Moves the phase on at `now` (the end of the frame just done).
    fn step(&mut self, now: u64) {
        match &mut self.phase {
            Phase::Wait { until } => {
                if now >= *until {
                    self.act(now);
                }
            }
            Phase::AwaitBot { seen, deadline } => {
                let open = self.segments.last().filter(|s| s.1.is_none()).map(|s| s.0);
                if seen.is_none() {
                    *seen = open;
                }
                let barge = self.turns[self.cur].barge_in_ms.unwrap_or(0);
                match *seen {
                    Some(s) if now >= s + barge => {
                        self.measured[self.cur].barged_into = Some(s);
                        self.act(now);
                    }
                    None if now >= *deadline => {
                        self.measured[self.cur].bot_silent = true;
                        self.act(now);
                    }
                    _ => {}
                }
            }
            Phase::Speak { player, from, samples } => {
                if player.finished() {
                    let end = *from + (*samples as u64 * 1000).div_ceil(u64::from(self.rate));
                    self.listen(end);
                }
            }
            Phase::Dtmf { digits, next, next_at } => {
                if now >= *next_at {
                    self.digit = digits.get(*next).copied();
                    *next += 1;
                    *next_at = now + DTMF_EVERY_MS;
                    if *next >= digits.len() {
                        self.listen(now + DTMF_MS);
                    }
                }
            }
            Phase::Listen { since, deadline } => {
                let (since, deadline) = (*since, *deadline);
                let reply = self.segments.iter().find(|s| s.0 >= since).copied();
                let next_barges = self.turns.get(self.cur + 1).is_some_and(|t| t.barge_in_ms.is_some());
                let m = &mut self.measured[self.cur];
                match reply {
                    Some((start, end)) => {
                        m.reply_start = Some(start);
                        m.reply_end = end;
                        if end.is_some() || next_barges {
                            self.next_turn(now);
                        }
                    }
                    None if now >= deadline => self.next_turn(now),
                    None => {}
                }
            }
            Phase::Done => {}
        }
    }

    /// The current turn's action starts now.
    fn act(&mut self, now: u64) {
        let m = &mut self.measured[self.cur];
        m.caller_start = Some(now);
        match &self.turns[self.cur].action {
            Action::Audio(u) => {
                let prompt = u.at(self.rate);
                let samples = prompt.samples().len();
                self.phase = Phase::Speak { player: Player::new(prompt), from: now, samples };
            }
            Action::Dtmf(d) => {
                self.phase = Phase::Dtmf { digits: d.chars().collect(), next: 0, next_at: now };
                // The first digit goes with the next frame.
                self.step(now);
            }
            Action::Nothing => self.listen(now),
        }
    }

    /// The turn is said (its last sample at `end`): listen for the reply.
    fn listen(&mut self, end: u64) {
        self.measured[self.cur].caller_end = Some(end);
        let deadline = end + self.turns[self.cur].reply_timeout_ms;
        self.phase = Phase::Listen { since: end, deadline };
    }

    fn finish_turn(&mut self, now: u64) {
        if let Some(m) = self.measured.get_mut(self.cur) {
            m.ended.get_or_insert(now);
        }
    }

    fn next_turn(&mut self, now: u64) {
        self.finish_turn(now);
        self.begin_turn(self.cur + 1, now);
    }

    fn begin_turn(&mut self, i: usize, now: u64) {
        self.cur = i;
        let Some(t) = self.turns.get(i) else {
            self.phase = Phase::Done;
            return;
        };
        self.measured[i].reached = true;
        self.phase = match t.barge_in_ms {
            Some(_) => Phase::AwaitBot { seen: None, deadline: now + t.reply_timeout_ms },
            None => Phase::Wait { until: now + t.wait_ms },
        };
        self.step(now);
    }

    /// Whether `at` is in turn `j`'s reply window: after its end, while it waits for the
    /// reply or the reply is still playing.
    fn in_reply(&self, j: usize, at: u64) -> bool {
        let Some(m) = self.measured.get(j) else { return false };
        let Some(end) = m.caller_end else { return false };
        if at < end {
            return false;
        }
        match (m.ended, m.reply_start) {
            (None, _) => true,
            (Some(_), Some(r)) => self.segments.iter().any(|s| s.0 == r && s.1.is_none()),
            (Some(_), None) => false,
        }
    }

    /// Tone detection in turn `j`'s reply window.
    fn tone(&mut self, j: usize, bot: &[i16], at: u64) {
        let Some(hz) = self.turns[j].expect_tone_hz else { return };
        let m = &mut self.measured[j];
        if m.tone_at.is_some() {
            return;
        }
        let power = bot.iter().map(|&s| f32::from(s) * f32::from(s)).sum::<f32>() / bot.len().max(1) as f32;
        let at_hz = goertzel_power(bot, self.rate, hz as f32);
        if power >= TONE_MIN_POWER && at_hz >= TONE_SHARE * power {
            m.tone_run += 1;
            if m.tone_run >= TONE_FRAMES {
                m.tone_at = Some(at - 20 * u64::from(TONE_FRAMES - 1));
            }
        } else {
            m.tone_run = 0;
        }
    }

    /// The call ended (hung up, or the media stopped): closes what is open.
    pub fn finish(&mut self) {
        let now = self.elapsed_ms();
        if let Some(last) = self.segments.last_mut() {
            if last.1.is_none() && !self.vad.speaking() {
                last.1 = Some(now);
            }
        }
        if !self.done() {
            self.cut_short = true;
            self.finish_turn(now);
            self.phase = Phase::Done;
        }
    }

    /// Every turn's figures and whether its expectations held; `failure`: why the call
    /// itself failed, if it did (then every expectation fails with it).
    pub fn report(&self, failure: Option<&str>) -> Vec<TurnReport> {
        self.turns
            .iter()
            .zip(&self.measured)
            .enumerate()
            .map(|(i, (t, m))| self.turn_report(i, t, m, failure))
            .collect()
    }

    fn turn_report(&self, i: usize, t: &Turn, m: &Measured, failure: Option<&str>) -> TurnReport {
        let latency = match (m.reply_start, m.caller_end) {
            (Some(r), Some(e)) => Some(r as i64 - e as i64),
            _ => None,
        };
        // Barge-in: the bot's speech the caller spoke into, and when it ended.
        let barge_at = m.barged_into.and(m.caller_start);
        // `Some(None)`: it never stopped.
        let stopped = barge_at.map(|b| {
            let seg = self.segments.iter().find(|s| s.0 <= b && s.1.is_none_or(|e| e + 20 >= b));
            match seg {
                Some((_, Some(e))) => Some(e.saturating_sub(b)),
                Some((_, None)) => None,
                None => Some(0),
            }
        });
        let mut checks = Vec::new();
        let not_reached = |what: &str| match failure {
            Some(f) => format!("call failed: {f}"),
            None if !m.reached => "turn not reached (the call ended first)".to_string(),
            None => what.to_string(),
        };
        if let Some(max) = t.expect_answer_within_ms {
            let (passed, measured) = match latency {
                Some(l) if failure.is_none() => (l <= max as i64, format!("{l} ms")),
                _ => (false, not_reached(&format!("no reply within {} ms", t.reply_timeout_ms))),
            };
            checks.push(Check::new("expect_answer_within_ms", format!("<= {max} ms"), measured, passed));
        }
        if let Some(max) = t.expect_stop_within_ms {
            let (passed, measured) = match (stopped, m.bot_silent) {
                (_, true) if failure.is_none() => (false, "the bot never spoke to barge into".to_string()),
                (Some(Some(ms)), _) if failure.is_none() => (ms <= max, format!("{ms} ms")),
                (Some(None), _) if failure.is_none() => (false, "the bot did not stop".to_string()),
                _ => (false, not_reached("the caller never barged in")),
            };
            checks.push(Check::new("expect_stop_within_ms", format!("<= {max} ms"), measured, passed));
        }
        if let Some(hz) = t.expect_tone_hz {
            let (passed, measured) = match m.tone_at {
                Some(at) if failure.is_none() => {
                    (true, format!("at {} ms after the turn", at.saturating_sub(m.caller_end.unwrap_or(0))))
                }
                _ => (false, not_reached("no such tone in the reply")),
            };
            checks.push(Check::new("expect_tone_hz", format!("{hz} Hz"), measured, passed));
        }
        // A reply cut into by the next turn ended later.
        let reply_end = m
            .reply_end
            .or_else(|| m.reply_start.and_then(|r| self.segments.iter().find(|s| s.0 == r).and_then(|s| s.1)));
        if let Some(want) = &t.expect_dtmf {
            let (passed, measured) = match failure {
                None if m.digits.contains(want.as_str()) => (true, format!("digits {:?}", m.digits)),
                None if m.reached && m.caller_end.is_some() => (false, format!("digits {:?}", m.digits)),
                _ => (false, not_reached("")),
            };
            checks.push(Check::new("expect_dtmf", format!("digits {want:?}"), measured, passed));
        }
        TurnReport {
            index: i + 1,
            label: t.label.clone(),
            reached: m.reached,
            caller_start_ms: m.caller_start,
            caller_end_ms: m.caller_end,
            reply_start_ms: m.reply_start,
            reply_end_ms: reply_end,
            latency_ms: latency,
            barge_in_at_ms: barge_at,
            stop_ms: stopped.flatten(),
            tone_at_ms: m.tone_at,
            dtmf: m.digits.clone(),
            checks,
        }
    }

    /// Whether the script ran to its end (or to `hangup_after_ms`) rather than the call
    /// ending under it.
    pub fn done_by_script(&self) -> bool {
        !self.cut_short
    }
}

#[cfg(test)]
mod tests {
    use super::super::script::Script;
    use super::*;
    use std::path::Path;

    /// A sine frame of `hz` at 8 kHz, or silence.
    fn frame(hz: Option<f64>, n: u64) -> Vec<i16> {
        (0..160)
            .map(|i| match hz {
                Some(f) => {
                    let t = (n * 160 + i) as f64 / 8000.0;
                    (8000.0 * (2.0 * std::f64::consts::PI * f * t).sin()) as i16
                }
                None => 0,
            })
            .collect()
    }

    /// Runs `script` against a bot that answers each caller turn `delay` ms after the
    /// caller's audio ended with `reply_ms` of a 1 kHz tone, ignoring barge-in.
    fn run(script: &str, delay: u64, reply_ms: u64, wav: &Path) -> Vec<TurnReport> {
        let text = script.replace("WAV", &wav.display().to_string());
        let s = Script::parse(&text, Path::new(".")).unwrap();
        let mut c = Caller::new(s.turns, 8000, s.hangup_after_ms);
        let mut out = vec![0i16; 160];
        let (mut was_loud, mut reply_at) = (false, None::<u64>);
        for n in 0..2000u64 {
            if c.done() {
                break;
            }
            c.fill(&mut out);
            let loud = out.iter().any(|s| s.abs() > 1000);
            let t = n * 20;
            let speaking = reply_at.is_some_and(|r| t >= r && t < r + reply_ms);
            if was_loud && !loud && !speaking {
                reply_at = Some(t + delay);
            }
            was_loud = loud;
            c.tick(&frame(speaking.then_some(1000.0), n));
        }
        c.finish();
        c.report(None)
    }

    fn tone_wav(dir: &Path) -> std::path::PathBuf {
        let p = dir.join("say.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&p, spec).unwrap();
        for i in 0..4000 {
            w.write_sample((8000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 8000.0).sin()) as i16).unwrap();
        }
        w.finalize().unwrap();
        p
    }

    #[test]
    fn latency_is_the_bots_delay_and_expectations_are_checked() {
        let dir = std::env::temp_dir().join(format!("dialtone-caller-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let wav = tone_wav(&dir);
        let script = "[[turn]]\nwav = \"WAV\"\nexpect_answer_within_ms = 700\nexpect_tone_hz = 1000\n\
                      [[turn]]\nwav = \"WAV\"\nwait_ms = 200\nexpect_answer_within_ms = 100\n";
        let r = run(script, 500, 600, &wav);
        assert_eq!(r.len(), 2);
        for t in &r {
            let l = t.latency_ms.unwrap();
            assert!((480..=560).contains(&l), "{t:?}");
        }
        assert!(r[0].checks.iter().all(|c| c.passed), "{:?}", r[0]);
        assert!(r[0].tone_at_ms.is_some());
        assert!(!r[1].checks[0].passed, "100 ms cannot hold: {:?}", r[1]);
        // The caller's audio is 500 ms (and the one sample the prompt's resampler flushes):
        // its end is exact, rounded up to the ms.
        assert_eq!(r[0].caller_end_ms.unwrap() - r[0].caller_start_ms.unwrap(), 501);
    }

    #[test]
    fn digits_go_out_200_ms_apart_and_the_call_time_is_capped() {
        let s = Script::parse("hangup_after_ms = 2000\n[[turn]]\nwait_ms = 100\ndtmf = \"12#\"\nexpect_answer_within_ms = 500\n[[turn]]\nwait_ms = 100\n", Path::new("."))
            .unwrap();
        let mut c = Caller::new(s.turns, 8000, s.hangup_after_ms);
        let mut out = vec![0i16; 160];
        let mut sent = Vec::new();
        while !c.done() {
            c.fill(&mut out);
            if let Some(d) = c.take_digit() {
                sent.push((d, c.elapsed_ms()));
            }
            c.tick(&[0; 160]);
        }
        assert_eq!(sent, vec![('1', 100), ('2', 300), ('#', 500)]);
        c.finish();
        assert_eq!(c.elapsed_ms(), 2000, "hung up at hangup_after_ms");
        let r = c.report(None);
        // The last digit starts at 500 ms and lasts 100.
        assert_eq!((r[0].caller_start_ms, r[0].caller_end_ms), (Some(100), Some(600)));
        assert_eq!(r[0].checks[0].measured, "no reply within 5000 ms");
        assert!(!r[1].reached && r[1].checks.is_empty());
        assert!(c.done_by_script());
    }

    #[test]
    fn in_band_dtmf_is_one_key_per_press() {
        let mut d = InBandDtmf::default();
        let key = |lo: f64, hi: f64, n: u64| -> Vec<i16> {
            (0..160)
                .map(|i| {
                    let t = (n * 160 + i) as f64 / 8000.0;
                    let w = |f: f64| (2.0 * std::f64::consts::PI * f * t).sin();
                    (6000.0 * (w(lo) + w(hi))) as i16
                })
                .collect()
        };
        let mut got = String::new();
        for (lo, hi) in [(770.0, 1336.0), (941.0, 1477.0), (697.0, 1209.0)] {
            for n in 0..5 {
                got.extend(d.push(&key(lo, hi, n), 8000));
            }
            got.extend(d.push(&[0; 160], 8000));
        }
        // A steady 1 kHz tone and speech-like noise are not digits.
        for n in 0..10 {
            got.extend(d.push(&frame(Some(1000.0), n), 8000));
        }
        assert_eq!(got, "5#1");
    }

    #[test]
    fn a_bot_that_ignores_barge_in_fails_the_stop_expectation() {
        let dir = std::env::temp_dir().join(format!("dialtone-caller-b-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let wav = tone_wav(&dir);
        let script =
            "[[turn]]\nwav = \"WAV\"\n[[turn]]\nwav = \"WAV\"\nbarge_in_ms = 300\nexpect_stop_within_ms = 400\n";
        let r = run(script, 400, 2000, &wav);
        let b = &r[1];
        assert!(b.barge_in_at_ms.is_some(), "{b:?}");
        let stop = b.stop_ms.unwrap();
        assert!((1600..=1760).contains(&stop), "the 2 s reply ran on 1.7 s past the barge-in: {b:?}");
        assert!(!b.checks[0].passed);
        let r = run(script, 400, 2000, &wav);
        assert_eq!(r[1].barge_in_at_ms.unwrap() - r[0].reply_start_ms.unwrap(), 300, "{r:?}");
    }
}
