//! An adaptive jitter buffer for fixed-duration audio frames (one RTP packet = one frame,
//! 20 ms by default).
//!
//! The driver pushes each valid packet as it arrives and pops once per frame from the
//! pacing clock:
//!
//! ```text
//! on packet:   jb.push(pkt.seq, pkt.timestamp, pkt.payload, now)   (pkt.new_source → jb.reset())
//! every 20 ms: match jb.pop(now) { Frame(p) => decode(p), Lost => conceal(), Empty => silence() }
//! ```
//!
//! How it works:
//! - Frames live in a fixed ring of slots indexed by `seq % capacity`; nothing is allocated
//!   after construction (a frame is the packet's `Bytes` handle). Sequence numbers are
//!   compared modulo 2^16 and timestamps modulo 2^32, so both wrap freely.
//! - Playout starts once the buffer holds the target delay. Each pop plays the next
//!   sequence number; a missing one is `Lost` (conceal it) and counted. Packets behind the
//!   playout point are `late` (or duplicates of one already played) and dropped.
//! - The target delay is `clamp(3 × jitter + one frame, min, max)`, the jitter estimated
//!   like RFC 3550 A.8 from arrival times against timestamps. It rises at once and decays
//!   over about ten seconds; a late packet raises it by as many frames as it missed by.
//! - When the buffer runs dry mid-stream, pops return `Lost` (concealment) for up to
//!   [`MAX_UNDERRUN_CONCEALMENT`] frames without moving the playout point: if the awaited
//!   packet then arrives it plays (the delay grew by that much), if it never does those
//!   concealed frames stand in for it. After that the buffer refills to the target and pops
//!   return `Empty` meanwhile (the peer stopped: hold, silence suppression).
//! - Sender clock skew drifts the average depth away from the target: above target + 0.9
//!   frames one frame is dropped, below target − 0.9 one concealment frame is inserted.

use bytes::Bytes;
use std::time::{Duration, Instant};

/// Consecutive concealment frames on underrun before the buffer refills instead.
pub const MAX_UNDERRUN_CONCEALMENT: u32 = 5;
/// The target delay is this many times the jitter estimate, plus one frame.
const JITTER_FACTOR: f64 = 3.0;
/// Depth above/below target (in frames, smoothed) that triggers a skew drop/insert.
const SKEW_SLACK: f64 = 0.9;
/// Smoothing of the depth average, per pop.
const DEPTH_ALPHA: f64 = 1.0 / 32.0;
/// Pops between a correction and a drop: the delay shrinks slowly.
const DROP_SPACING: u32 = 8;
/// Pops between a correction and an insertion: the delay grows quickly.
const INSERT_SPACING: u32 = 2;
/// Target decay towards a lower wanted delay, per packet (≈ 10 s at 50 packets/s).
const TARGET_DECAY: f64 = 1.0 / 500.0;
/// Consecutive late packets taken as the sender having jumped backwards: start over.
const LATE_RESTART: u32 = 16;

/// Jitter buffer settings.
#[derive(Debug, Clone)]
pub struct JitterConfig {
    /// RTP clock rate of the stream (8000 for G.711, 48000 for Opus).
    pub clock_rate: u32,
    /// Duration of one frame (one packet).
    pub frame: Duration,
    /// Lowest target delay.
    pub min_delay: Duration,
    /// Highest target delay.
    pub max_delay: Duration,
    /// Slots in the ring, rounded up to a power of two; it must hold more than
    /// `max_delay / frame` frames plus reordering.
    pub capacity: usize,
}

impl Default for JitterConfig {
    fn default() -> JitterConfig {
        JitterConfig {
            clock_rate: 8000,
            frame: Duration::from_millis(20),
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            capacity: 64,
        }
    }
}

/// What to play for the next frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// The frame's payload, to decode.
    Frame(Bytes),
    /// No frame for this slot in the stream: conceal (PLC) for one frame.
    Lost,
    /// Nothing to play: not started, refilling, or the peer stopped sending.
    Empty,
}

/// What became of a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Stored for playout.
    Stored,
    /// A copy of a packet already held or played: dropped.
    Duplicate,
    /// Behind the playout point: dropped.
    Late,
    /// Far outside the window: the buffer started over from this packet.
    Restarted,
}

/// The jitter buffer's figures, for the call's stats.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JitterStats {
    /// Jitter estimate (RFC 3550 A.8 style), in milliseconds.
    pub jitter_ms: f64,
    /// Current target delay, in milliseconds.
    pub target_ms: f64,
    /// Frames buffered at the last pop (including gaps not yet due).
    pub depth: usize,
    /// Packets stored.
    pub received: u64,
    /// Sequence numbers never received by their playout time.
    pub lost: u64,
    /// Packets dropped for arriving after their playout time.
    pub late: u64,
    /// Duplicate packets dropped.
    pub duplicates: u64,
    /// `Lost` frames returned (loss, underrun and skew concealment).
    pub concealed: u64,
    /// Frames dropped because the sender runs fast (or the target shrank).
    pub dropped_for_skew: u64,
    /// Concealment frames that delayed playout (slow sender, delay spikes, target growth).
    pub inserted: u64,
    /// Times the buffer ran dry while playing.
    pub underruns: u64,
    /// Restarts: [`JitterBuffer::reset`] and jumps outside the window.
    pub resets: u64,
}

#[derive(Debug, Clone, Default)]
struct Slot {
    seq: u16,
    timestamp: u32,
    payload: Option<Bytes>,
    /// Played (or dropped for skew): a later copy is a duplicate, not late.
    played: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No packet since creation or reset.
    Idle,
    /// Filling up to the target; `since` is the first packet's arrival.
    Buffering { since: Option<Instant> },
    /// Playing one frame per pop.
    Playing,
}

/// The adaptive jitter buffer. See the module docs.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    slots: Box<[Slot]>,
    mask: u16,
    clock_rate: u32,
    frame_ms: f64,
    min_ms: f64,
    max_ms: f64,
    state: State,
    /// Has anything been played since the last restart (no backward extension after).
    played_any: bool,
    next_seq: u16,
    max_seq: u16,
    /// Concealment frames returned on underrun not yet matched to a lost packet.
    pending_conceal: u32,
    underrun_run: u32,
    epoch: Option<Instant>,
    last_transit: Option<u32>,
    jitter: f64,
    target_ms: f64,
    avg_depth: f64,
    since_adjust: u32,
    consecutive_late: u32,
    last_played: Option<(u16, u32)>,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer with `config`; the ring is allocated here, once.
    pub fn new(config: JitterConfig) -> JitterBuffer {
        let frame_ms = config.frame.as_secs_f64() * 1000.0;
        let min_ms = (config.min_delay.as_secs_f64() * 1000.0).max(frame_ms);
        let max_ms = (config.max_delay.as_secs_f64() * 1000.0).max(min_ms);
        let need = (max_ms / frame_ms).ceil() as usize * 2 + 8;
        let cap = config.capacity.max(need).next_power_of_two().min(1 << 15);
        JitterBuffer {
            slots: vec![Slot::default(); cap].into_boxed_slice(),
            mask: (cap - 1) as u16,
            clock_rate: config.clock_rate.max(1),
            frame_ms,
            min_ms,
            max_ms,
            state: State::Idle,
            played_any: false,
            next_seq: 0,
            max_seq: 0,
            pending_conceal: 0,
            underrun_run: 0,
            epoch: None,
            last_transit: None,
            jitter: 0.0,
            target_ms: min_ms,
            avg_depth: 0.0,
            since_adjust: 0,
            consecutive_late: 0,
            last_played: None,
            stats: JitterStats { target_ms: min_ms, ..JitterStats::default() },
        }
    }

    /// Forget the stream (new SSRC, sequence resync); the target delay and jitter estimate
    /// stay, as the network path has not changed.
    pub fn reset(&mut self) {
        self.stats.resets += 1;
        self.clear();
    }

    fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = Slot::default());
        self.state = State::Idle;
        self.played_any = false;
        self.pending_conceal = 0;
        self.underrun_run = 0;
        self.last_transit = None;
        self.avg_depth = 0.0;
        self.since_adjust = 0;
        self.consecutive_late = 0;
    }

    /// The frame with sequence number `seq` and RTP `timestamp` arrived at `now`.
    pub fn push(&mut self, seq: u16, timestamp: u32, payload: Bytes, now: Instant) -> Pushed {
        let mut outcome = Pushed::Stored;
        match self.state {
            State::Idle => {
                self.start_stream(seq, now);
            }
            _ => {
                let d = seq.wrapping_sub(self.next_seq) as i16;
                let cap = self.slots.len() as i32;
                if d < 0 {
                    let slot = &self.slots[usize::from(seq & self.mask)];
                    if slot.seq == seq && (slot.played || slot.payload.is_some()) {
                        self.stats.duplicates += 1;
                        return Pushed::Duplicate;
                    }
                    let behind_max = i32::from(self.max_seq.wrapping_sub(seq) as i16);
                    if !self.played_any && matches!(self.state, State::Buffering { .. }) && behind_max < cap - 1 {
                        // Reordered first packets: start playout earlier.
                        self.next_seq = seq;
                    } else {
                        self.update_jitter(timestamp, now);
                        self.stats.late += 1;
                        self.consecutive_late += 1;
                        if self.consecutive_late < LATE_RESTART {
                            // Our delay was short by about as many frames as played past it.
                            let behind = f64::from(d.unsigned_abs());
                            self.target_ms = (self.target_ms + behind * self.frame_ms).min(self.max_ms);
                            self.stats.target_ms = self.target_ms;
                            return Pushed::Late;
                        }
                        self.restart(seq, now);
                        outcome = Pushed::Restarted;
                    }
                } else if i32::from(d) >= cap {
                    self.restart(seq, now);
                    outcome = Pushed::Restarted;
                } else {
                    let slot = &self.slots[usize::from(seq & self.mask)];
                    if slot.seq == seq && slot.payload.is_some() {
                        self.stats.duplicates += 1;
                        return Pushed::Duplicate;
                    }
                }
            }
        }
        self.consecutive_late = 0;
        if (seq.wrapping_sub(self.max_seq) as i16) > 0 {
            self.max_seq = seq;
        }
        if let State::Buffering { since: since @ None } = &mut self.state {
            *since = Some(now);
        }
        self.slots[usize::from(seq & self.mask)] = Slot { seq, timestamp, payload: Some(payload), played: false };
        self.stats.received += 1;
        self.update_jitter(timestamp, now);
        outcome
    }

    fn start_stream(&mut self, seq: u16, now: Instant) {
        self.state = State::Buffering { since: Some(now) };
        self.next_seq = seq;
        self.max_seq = seq;
    }

    fn restart(&mut self, seq: u16, now: Instant) {
        self.stats.resets += 1;
        self.clear();
        self.start_stream(seq, now);
    }

    /// RFC 3550 A.8 on the arrival time in timestamp units; then the target follows.
    fn update_jitter(&mut self, timestamp: u32, now: Instant) {
        let epoch = *self.epoch.get_or_insert(now);
        let arrival = crate::rtp::to_clock(now.saturating_duration_since(epoch), self.clock_rate);
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(prev) = self.last_transit {
            let d = f64::from((transit.wrapping_sub(prev) as i32).unsigned_abs());
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.last_transit = Some(transit);
        let jitter_ms = self.jitter * 1000.0 / f64::from(self.clock_rate);
        let wanted = (JITTER_FACTOR * jitter_ms + self.frame_ms).clamp(self.min_ms, self.max_ms);
        if wanted > self.target_ms {
            self.target_ms = wanted;
        } else {
            self.target_ms += (wanted - self.target_ms) * TARGET_DECAY;
        }
        self.stats.jitter_ms = jitter_ms;
        self.stats.target_ms = self.target_ms;
    }

    fn target_frames(&self) -> usize {
        ((self.target_ms / self.frame_ms).round() as usize).max(1)
    }

    /// Frames from the playout point to the newest packet, gaps included.
    fn depth(&self) -> usize {
        let span = self.max_seq.wrapping_sub(self.next_seq).wrapping_add(1) as i16;
        span.max(0) as usize
    }

    /// The next frame, once per frame time from the pacing clock.
    pub fn pop(&mut self, now: Instant) -> Playout {
        let depth = self.depth();
        self.stats.depth = depth;
        match self.state {
            State::Idle => return Playout::Empty,
            State::Buffering { since } => {
                let waited = since.is_some_and(|s| {
                    now.saturating_duration_since(s).as_secs_f64() * 1000.0 >= self.target_ms + self.frame_ms
                });
                if depth == 0 || (depth < self.target_frames() && !waited) {
                    return Playout::Empty;
                }
                self.state = State::Playing;
                self.avg_depth = depth as f64;
                self.since_adjust = 0;
                // After a refill the time of any gap at the head was already filled.
                self.pending_conceal = u32::MAX;
            }
            State::Playing => {
                if depth == 0 {
                    if self.underrun_run == 0 {
                        self.stats.underruns += 1;
                    }
                    if self.underrun_run < MAX_UNDERRUN_CONCEALMENT {
                        self.underrun_run += 1;
                        self.pending_conceal += 1;
                        self.stats.concealed += 1;
                        return Playout::Lost;
                    }
                    self.state = State::Buffering { since: None };
                    return Playout::Empty;
                }
                self.underrun_run = 0;
                self.skew_control(depth);
                if let Some(p) = self.skew_decision(depth) {
                    return p;
                }
            }
        }
        self.play()
    }

    fn skew_control(&mut self, depth: usize) {
        self.avg_depth += (depth as f64 - self.avg_depth) * DEPTH_ALPHA;
        self.since_adjust = self.since_adjust.saturating_add(1);
    }

    /// A skew correction, if one is due: drop the oldest frame (then play on) or insert one.
    fn skew_decision(&mut self, depth: usize) -> Option<Playout> {
        if self.pending_conceal > 0 {
            return None;
        }
        let target = self.target_frames() as f64;
        if self.avg_depth > target + SKEW_SLACK && depth >= 2 && self.since_adjust >= DROP_SPACING {
            let slot = &mut self.slots[usize::from(self.next_seq & self.mask)];
            if slot.payload.take().is_some() && slot.seq == self.next_seq {
                self.stats.dropped_for_skew += 1;
            } else {
                *slot = Slot { seq: self.next_seq, ..Slot::default() };
                self.stats.lost += 1;
            }
            slot.played = true;
            self.next_seq = self.next_seq.wrapping_add(1);
            self.avg_depth -= 1.0;
            self.since_adjust = 0;
            None
        } else if self.avg_depth < target - SKEW_SLACK && self.since_adjust >= INSERT_SPACING {
            self.stats.inserted += 1;
            self.stats.concealed += 1;
            self.avg_depth += 1.0;
            self.since_adjust = 0;
            Some(Playout::Lost)
        } else {
            None
        }
    }

    /// Play the frame at the playout point; missing ones already covered by underrun
    /// concealment are skipped, otherwise a missing one is `Lost`. Needs depth > 0.
    fn play(&mut self) -> Playout {
        loop {
            let seq = self.next_seq;
            self.next_seq = seq.wrapping_add(1);
            let slot = &mut self.slots[usize::from(seq & self.mask)];
            if slot.seq == seq {
                if let Some(p) = slot.payload.take() {
                    slot.played = true;
                    self.played_any = true;
                    if self.pending_conceal != u32::MAX {
                        self.stats.inserted += u64::from(self.pending_conceal);
                    }
                    self.pending_conceal = 0;
                    self.last_played = Some((seq, slot.timestamp));
                    return Playout::Frame(p);
                }
            }
            *slot = Slot { seq, ..Slot::default() };
            self.stats.lost += 1;
            if self.pending_conceal == 0 {
                self.stats.concealed += 1;
                return Playout::Lost;
            }
            if self.pending_conceal != u32::MAX {
                self.pending_conceal -= 1;
            }
        }
    }

    /// The payload of the frame that plays next, if it has arrived: after a `Lost`, the
    /// packet following the lost one, whose in-band FEC can rebuild it (Opus).
    pub fn peek_next(&self) -> Option<&Bytes> {
        let slot = &self.slots[usize::from(self.next_seq & self.mask)];
        if slot.seq == self.next_seq {
            slot.payload.as_ref()
        } else {
            None
        }
    }

    /// Sequence number and timestamp of the last frame played.
    pub fn last_played(&self) -> Option<(u16, u32)> {
        self.last_played
    }

    /// The figures now.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Duration = Duration::from_millis(20);

    /// A simple seeded LCG, so the tests are reproducible.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u32 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as u32
        }
        /// Uniform in [0, 1).
        fn unit(&mut self) -> f64 {
            f64::from(self.next()) / f64::from(1u32 << 31)
        }
    }

    fn payload(seq: u16) -> Bytes {
        Bytes::copy_from_slice(&seq.to_be_bytes())
    }

    fn seq_of(p: &Playout) -> Option<u16> {
        match p {
            Playout::Frame(b) => Some(u16::from_be_bytes([b[0], b[1]])),
            _ => None,
        }
    }

    /// One simulated stream: what each pop returned and the stats after it.
    struct Run {
        out: Vec<Playout>,
        stats: Vec<JitterStats>,
    }

    impl Run {
        fn frames(&self) -> Vec<u16> {
            self.out.iter().filter_map(seq_of).collect()
        }
        fn lost_outputs(&self, pops: std::ops::Range<usize>) -> usize {
            self.out[pops].iter().filter(|p| **p == Playout::Lost).count()
        }
    }

    /// Packet `i` (seq `first_seq + i`, timestamp `first_ts + 160 i`) is sent at
    /// `i × interval` and arrives `delay(i)` later (`None`: lost); a pop every 20 ms, 15 ms
    /// into each period.
    fn simulate(
        jb: &mut JitterBuffer,
        packets: usize,
        (first_seq, first_ts): (u16, u32),
        interval: Duration,
        mut delay: impl FnMut(usize) -> Option<Duration>,
        pops: usize,
    ) -> Run {
        let t0 = Instant::now();
        let mut arrivals: Vec<(Instant, usize)> =
            (0..packets).filter_map(|i| delay(i).map(|d| (t0 + interval * i as u32 + d, i))).collect();
        arrivals.sort();
        let mut run = Run { out: Vec::with_capacity(pops), stats: Vec::with_capacity(pops) };
        let mut next = 0;
        for k in 0..pops {
            let at = t0 + F * k as u32 + Duration::from_millis(15);
            while next < arrivals.len() && arrivals[next].0 <= at {
                let (when, i) = arrivals[next];
                let seq = first_seq.wrapping_add(i as u16);
                jb.push(seq, first_ts.wrapping_add(160 * i as u32), payload(seq), when);
                next += 1;
            }
            run.out.push(jb.pop(at));
            run.stats.push(jb.stats());
        }
        run
    }

    fn constant(ms: u64) -> impl FnMut(usize) -> Option<Duration> {
        move |_| Some(Duration::from_millis(ms))
    }

    #[test]
    fn in_order_plays_in_order_at_target_depth() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let run = simulate(&mut jb, 500, (1000, 0), F, constant(30), 520);
        assert_eq!(run.frames(), (1000..1500).collect::<Vec<u16>>());
        // The first packet arrives at 30 ms and plays at the next pop; then one a pop.
        assert_eq!(run.out[0], Playout::Empty);
        assert!(run.out[1..501].iter().all(|p| matches!(p, Playout::Frame(_))));
        let s = run.stats[500];
        assert_eq!((s.lost, s.late, s.concealed, s.dropped_for_skew, s.inserted, s.underruns), (0, 0, 0, 0, 0, 0));
        assert_eq!((s.target_ms, s.jitter_ms), (20.0, 0.0));
        // Depth before each pop mid-stream was the target, one frame.
        assert!(run.stats[2..500].iter().all(|s| s.depth == 1));
        assert_eq!(jb.last_played(), Some((1499, 499 * 160)));
        // The stream ends: a few frames concealed, then empty.
        assert_eq!(run.lost_outputs(501..520), MAX_UNDERRUN_CONCEALMENT as usize);
        assert_eq!(run.out[519], Playout::Empty);
    }

    #[test]
    fn random_loss_gives_exactly_that_many_lost() {
        let mut rng = Lcg(42);
        let n = 3000;
        let lost: Vec<bool> = (0..n).map(|i| i > 0 && i < n - 1 && rng.unit() < 0.05).collect();
        let n_lost = lost.iter().filter(|&&l| l).count();
        assert!((120..=180).contains(&n_lost), "{n_lost}");
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let run = simulate(&mut jb, n, (40000, 0), F, |i| (!lost[i]).then_some(Duration::from_millis(30)), n + 1);
        assert_eq!(run.lost_outputs(0..n + 1), n_lost);
        let s = run.stats[n];
        assert_eq!((s.lost, s.concealed, s.inserted, s.late), (n_lost as u64, n_lost as u64, 0, 0));
        let expected: Vec<u16> = (0..n).filter(|&i| !lost[i]).map(|i| 40000u16.wrapping_add(i as u16)).collect();
        assert_eq!(run.frames(), expected);
    }

    #[test]
    fn reordered_by_one_plays_in_order() {
        // Every other packet 21 ms late: neighbours swap.
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let run = simulate(&mut jb, 700, (0, 0), F, |i| Some(Duration::from_millis(10 + 21 * (i as u64 % 2))), 760);
        assert_eq!(run.frames(), (0..700).collect::<Vec<u16>>());
        let s = run.stats[720];
        assert_eq!((s.lost, s.late), (0, 0), "{s:?}");
    }

    #[test]
    fn reordered_by_two_plays_in_order_once_learnt() {
        // Every 7th packet arrives after the next two. At the 20 ms start-up target the first
        // one is too late; the target then grows and every later one plays in order.
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let run = simulate(
            &mut jb,
            700,
            (0, 0),
            F,
            |i| Some(Duration::from_millis(10 + if i % 7 == 3 { 41 } else { 0 })),
            760,
        );
        let s = run.stats[720];
        assert_eq!((s.lost, s.late), (1, 1), "{s:?}");
        assert_eq!(run.frames(), (0..700).filter(|&i| i != 3).collect::<Vec<u16>>());
        assert!(s.target_ms >= 60.0, "{s:?}");
    }

    #[test]
    fn duplicates_dropped() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let t0 = Instant::now();
        assert_eq!(jb.push(5, 0, payload(5), t0), Pushed::Stored);
        assert_eq!(jb.push(5, 0, payload(5), t0), Pushed::Duplicate);
        assert_eq!(jb.push(6, 160, payload(6), t0 + F), Pushed::Stored);
        assert_eq!(seq_of(&jb.pop(t0 + F)), Some(5));
        // A copy of a played frame is a duplicate; one of a held frame too.
        assert_eq!(jb.push(5, 0, payload(5), t0 + F), Pushed::Duplicate);
        assert_eq!(jb.push(6, 160, payload(6), t0 + F), Pushed::Duplicate);
        assert_eq!(seq_of(&jb.pop(t0 + F * 2)), Some(6));
        assert_eq!(jb.stats().duplicates, 3);
        // A packet that never arrived before its turn is late, not a duplicate.
        jb.push(8, 480, payload(8), t0 + F * 3);
        assert_eq!(jb.pop(t0 + F * 3), Playout::Lost);
        assert_eq!(seq_of(&jb.pop(t0 + F * 4)), Some(8));
        assert_eq!(jb.push(7, 320, payload(7), t0 + F * 4), Pushed::Late);
        let s = jb.stats();
        assert_eq!((s.late, s.lost, s.received), (1, 1, 3));
    }

    /// Uniform random delay of `0..spread_ms` (so ± spread/2 around the mean): after a 5 s
    /// warm-up, no packet is late or lost and the buffer never runs dry.
    fn random_jitter(seed: u64, spread_ms: f64) -> (JitterStats, JitterStats) {
        let mut rng = Lcg(seed);
        let n = 3000;
        let delays: Vec<Duration> = (0..n).map(|_| Duration::from_secs_f64(spread_ms / 1000.0 * rng.unit())).collect();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let run = simulate(&mut jb, n, (65000, u32::MAX - 1000), F, |i| Some(delays[i]), n);
        let (warm, end) = (run.stats[250], run.stats[n - 10]);
        assert_eq!((end.late, end.underruns, end.lost), (warm.late, warm.underruns, warm.lost), "{warm:?} {end:?}");
        let played = run.frames();
        assert!(played.windows(2).all(|w| (w[1].wrapping_sub(w[0]) as i16) > 0), "in order");
        assert!(played.len() >= n - 20, "{}", played.len());
        // E|X − Y| for X, Y uniform on [0, spread] is spread / 3: the A.8 estimate.
        assert!((end.jitter_ms - spread_ms / 3.0).abs() < spread_ms / 10.0, "{end:?}");
        (warm, end)
    }

    #[test]
    fn jitter_plus_minus_30ms() {
        let (warm, end) = random_jitter(99, 60.0);
        // The target covers the 60 ms spread.
        assert!(end.target_ms >= 60.0 && end.target_ms <= 120.0, "{end:?}");
        assert!(warm.target_ms >= 60.0, "grew during warm-up: {warm:?}");
        // The depth held around the target (a frame of slack either way, plus skew corrections).
        let target = (end.target_ms / 20.0).round();
        assert!((end.depth as f64 - target).abs() <= 3.0, "{end:?}");
    }

    #[test]
    fn jitter_plus_minus_15ms() {
        let (_, end) = random_jitter(7, 30.0);
        assert!(end.target_ms >= 30.0 && end.target_ms <= 80.0, "{end:?}");
    }

    /// Sender clock off by `interval` vs 20 ms, 60 s, 30 ms network delay: the depth stays
    /// bounded and the order holds.
    fn skew(interval_us: u64) -> JitterStats {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let n = (60_000_000 / interval_us) as usize;
        let run = simulate(&mut jb, n, (65000, 0), Duration::from_micros(interval_us), constant(30), 3000);
        let played = run.frames();
        assert!(played.windows(2).all(|w| (w[1].wrapping_sub(w[0]) as i16) > 0));
        let max_depth = run.stats[100..2990].iter().map(|s| s.depth).max().unwrap();
        assert!(max_depth <= 3, "{max_depth}");
        run.stats[2990]
    }

    #[test]
    fn sender_one_percent_fast() {
        let s = skew(19_800); // 50.5 packets/s: 30 frames too many in 60 s
        assert!((25..=35).contains(&s.dropped_for_skew), "{s:?}");
        assert_eq!((s.lost, s.late, s.inserted), (0, 0, 0), "{s:?}");
    }

    #[test]
    fn sender_one_percent_slow() {
        let s = skew(20_200); // 49.5 packets/s: 30 frames short in 60 s
        assert!((25..=35).contains(&s.inserted), "{s:?}");
        assert_eq!(s.concealed, s.inserted);
        assert_eq!((s.lost, s.late, s.dropped_for_skew), (0, 0, 0), "{s:?}");
    }

    #[test]
    fn sequence_and_timestamp_wrap() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let run = simulate(&mut jb, 200, (65436, u32::MAX - 160 * 50), F, constant(5), 200);
        let expected: Vec<u16> = (0..200u16).map(|i| 65436u16.wrapping_add(i)).collect();
        assert_eq!(run.frames(), expected);
        assert_eq!(jb.stats().jitter_ms, 0.0);
    }

    #[test]
    fn reset_and_jump_restart() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let t0 = Instant::now();
        jb.push(10, 0, payload(10), t0);
        assert_eq!(seq_of(&jb.pop(t0)), Some(10));
        // A jump far ahead starts over.
        assert_eq!(jb.push(30000, 160, payload(30000), t0 + F), Pushed::Restarted);
        assert_eq!(seq_of(&jb.pop(t0 + F)), Some(30000));
        jb.reset();
        assert_eq!(jb.pop(t0 + F * 2), Playout::Empty);
        jb.push(7, 320, payload(7), t0 + F * 2);
        assert_eq!(seq_of(&jb.pop(t0 + F * 2)), Some(7));
        assert_eq!(jb.stats().resets, 2);
    }

    #[test]
    fn underrun_conceals_then_refills() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let t0 = Instant::now();
        for i in 0..3u16 {
            jb.push(i, u32::from(i) * 160, payload(i), t0 + F * u32::from(i));
            jb.pop(t0 + F * u32::from(i));
        }
        // The peer stops (hold, silence suppression): a few concealed frames, then empty.
        let outs: Vec<_> = (3..12u32).map(|k| jb.pop(t0 + F * k)).collect();
        assert_eq!(outs.iter().filter(|p| **p == Playout::Lost).count(), MAX_UNDERRUN_CONCEALMENT as usize);
        assert_eq!(outs.last(), Some(&Playout::Empty));
        // It resumes with the next sequence number, timestamp moved on by the pause.
        jb.push(3, 160 * 12, payload(3), t0 + F * 12);
        assert_eq!(seq_of(&jb.pop(t0 + F * 12)), Some(3));
        let s = jb.stats();
        assert_eq!((s.underruns, s.lost, s.jitter_ms), (1, 0, 0.0));
    }
}
