//! Playout health of a voice agent's audio (issue 21): per 20 ms tick, how much of the
//! agent's audio the media task had to send and how much was waiting behind it. Sans-IO:
//! every input carries its time in ms from the start of the call's media.
//!
//! The agent's audio comes in **segments**: from its first audio after a pause to its last.
//! Within a segment:
//! - a **gap** is the playout running dry while the agent is mid-segment: its audio stops
//!   and comes back within [`GAP_MAX_MS`], with the caller not starting to speak meanwhile
//!   (a longer pause, or one the caller speaks in, ends the segment instead). Each gap says
//!   whose fault it was: `agent` when nothing was waiting anywhere (the agent had not sent
//!   the audio yet), `dialtone` when audio was waiting in the bridge but did not reach the
//!   playout in time.
//! - **queued** is how far the agent's audio ran ahead of the playout: a bot sending its
//!   reply faster than real time has much of it queued ([`BURST_MS`] or more is a burst).
//! - **start delay** is from the segment's first audio reaching dialtone to its playing: our
//!   own share of the response latency; over [`LATE_START_MS`] is a late start.

/// A pause in the agent's audio longer than this ends its segment rather than being a gap.
pub const GAP_MAX_MS: u64 = 1_000;
/// A segment whose audio ran this far ahead of the playout came in a burst.
pub const BURST_MS: u64 = 500;
/// A segment whose first audio waited this long in dialtone before playing started late.
pub const LATE_START_MS: u64 = 60;
/// Segments kept in detail per call (the summary counts them all).
pub const MAX_KEPT: usize = 500;

/// Whose fault a gap was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Nothing was waiting: the agent's audio came late.
    Agent,
    /// The agent's audio was waiting in dialtone's bridge but missed the playout.
    Dialtone,
}

impl Cause {
    /// `agent` or `dialtone`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Agent => "agent",
            Cause::Dialtone => "dialtone",
        }
    }
}

/// One tick of the playout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tick {
    /// When the tick's frame starts (ms from the start of the media).
    pub at_ms: u64,
    /// The frame's length in ms (20).
    pub frame_ms: u64,
    /// Of it, ms of the agent's audio played (the rest was silence: nothing was queued).
    pub played_ms: u64,
    /// After it, ms of the agent's audio waiting: in the playout ring and in the bridge.
    pub queued_ms: u64,
    /// Of `queued_ms`, what was still in the bridge (not yet in the playout ring).
    pub bridge_ms: u64,
    /// The agent's audio that started playing in this tick after an idle playout waited
    /// this long in dialtone (ms), if that was measured.
    pub start_delay_ms: Option<u64>,
    /// The caller is speaking.
    pub caller_speaking: bool,
}

/// One run of the agent's audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    /// Its first and last audio (ms).
    pub start_ms: u64,
    /// See above.
    pub end_ms: u64,
    /// Audio played in it (ms).
    pub audio_ms: u64,
    /// Gaps in it, their total and the longest (ms).
    pub gaps: u32,
    /// See above.
    pub gap_ms: u64,
    /// See above.
    pub max_gap_ms: u64,
    /// Of the gaps, the ones whose audio was waiting in dialtone.
    pub dialtone_gaps: u32,
    /// The most audio waiting to be played at once (ms).
    pub max_queued_ms: u64,
    /// From its first audio reaching dialtone to its playing (ms), when measured.
    pub start_delay_ms: Option<u64>,
}

/// A call's playout figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Segments of the agent's audio.
    pub segments: u64,
    /// Gaps inside them, their total and the longest (ms).
    pub gaps: u64,
    /// See above.
    pub gap_ms: u64,
    /// See above.
    pub max_gap_ms: u64,
    /// Of the gaps, the ones whose audio was waiting in dialtone (the rest: the agent's).
    pub dialtone_gaps: u64,
    /// Segments that came in a burst (queued [`BURST_MS`] or more), and the most queued.
    pub bursts: u64,
    /// See above.
    pub max_queued_ms: u64,
    /// Segments that started late ([`LATE_START_MS`]), and the longest start delay.
    pub late_starts: u64,
    /// See above.
    pub max_start_delay_ms: u64,
}

/// Follows a call's playout of the agent's audio.
#[derive(Debug, Default)]
pub struct PlayoutWatch {
    /// The segment in progress.
    open: Option<Segment>,
    /// Since when the playout has been dry inside it, and whose fault that is.
    dry: Option<(u64, Cause)>,
    /// The caller spoke while the playout was dry: the pause is not a gap.
    interrupted: bool,
    kept: Vec<Segment>,
    summary: Summary,
}

impl PlayoutWatch {
    /// A call with no agent audio yet.
    pub fn new() -> PlayoutWatch {
        PlayoutWatch::default()
    }

    /// One tick; a gap that ended in it: its length (ms) and whose fault it was.
    pub fn tick(&mut self, t: Tick) -> Option<(u64, Cause)> {
        let mut ended = None;
        if t.played_ms > 0 {
            if let Some(seg) = self.open.as_mut() {
                if let Some((since, cause)) = self.dry.take() {
                    let gap = t.at_ms.saturating_sub(since);
                    if self.interrupted || gap > GAP_MAX_MS {
                        self.close();
                    } else if gap > 0 {
                        seg.gaps += 1;
                        seg.gap_ms += gap;
                        seg.max_gap_ms = seg.max_gap_ms.max(gap);
                        seg.dialtone_gaps += u32::from(cause == Cause::Dialtone);
                        ended = Some((gap, cause));
                    }
                }
            }
            self.interrupted = false;
            let seg = self.open.get_or_insert(Segment { start_ms: t.at_ms, ..Segment::default() });
            if seg.audio_ms == 0 {
                seg.start_delay_ms = t.start_delay_ms;
            }
            seg.audio_ms += t.played_ms;
            seg.end_ms = t.at_ms + t.played_ms;
            seg.max_queued_ms = seg.max_queued_ms.max(t.queued_ms + t.played_ms);
            if t.played_ms < t.frame_ms {
                // Ran dry inside this frame.
                self.dry = Some((seg.end_ms, self.cause(t)));
            }
        } else if self.open.is_some() {
            let since = match self.dry {
                Some((since, _)) => since,
                None => {
                    self.dry = Some((t.at_ms, self.cause(t)));
                    t.at_ms
                }
            };
            self.interrupted |= t.caller_speaking;
            if t.at_ms + t.frame_ms - since > GAP_MAX_MS {
                self.close();
            }
        }
        ended
    }

    /// The playout ran dry: audio waiting in the bridge makes it dialtone's fault.
    fn cause(&self, t: Tick) -> Cause {
        if t.bridge_ms > 0 {
            Cause::Dialtone
        } else {
            Cause::Agent
        }
    }

    /// The call's media ended: the open segment closes.
    pub fn finish(&mut self) {
        self.close();
    }

    fn close(&mut self) {
        self.dry = None;
        self.interrupted = false;
        let Some(seg) = self.open.take() else { return };
        let s = &mut self.summary;
        s.segments += 1;
        s.gaps += u64::from(seg.gaps);
        s.gap_ms += seg.gap_ms;
        s.max_gap_ms = s.max_gap_ms.max(seg.max_gap_ms);
        s.dialtone_gaps += u64::from(seg.dialtone_gaps);
        s.bursts += u64::from(seg.max_queued_ms >= BURST_MS);
        s.max_queued_ms = s.max_queued_ms.max(seg.max_queued_ms);
        if let Some(d) = seg.start_delay_ms {
            s.late_starts += u64::from(d >= LATE_START_MS);
            s.max_start_delay_ms = s.max_start_delay_ms.max(d);
        }
        if self.kept.len() < MAX_KEPT {
            self.kept.push(seg);
        }
    }

    /// The closed segments kept (the first [`MAX_KEPT`]).
    pub fn segments(&self) -> &[Segment] {
        &self.kept
    }

    /// The figures so far (closed segments only).
    pub fn summary(&self) -> Summary {
        self.summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ticks from `at` for `n` frames: `played` ms each, `queued` after, caller quiet.
    fn run(w: &mut PlayoutWatch, at: &mut u64, n: u64, played: u64, queued: u64, bridge: u64) {
        for _ in 0..n {
            let _ = w.tick(Tick {
                at_ms: *at,
                frame_ms: 20,
                played_ms: played,
                queued_ms: queued,
                bridge_ms: bridge,
                ..Tick::default()
            });
            *at += 20;
        }
    }

    #[test]
    fn a_steady_reply_is_one_clean_segment() {
        let mut w = PlayoutWatch::new();
        let mut at = 0;
        run(&mut w, &mut at, 10, 0, 0, 0);
        run(&mut w, &mut at, 50, 20, 20, 0);
        run(&mut w, &mut at, 100, 0, 0, 0);
        w.finish();
        let s = w.summary();
        assert_eq!((s.segments, s.gaps, s.bursts, s.late_starts), (1, 0, 0, 0));
        assert_eq!(w.segments()[0].start_ms, 200);
        assert_eq!(w.segments()[0].end_ms, 1200);
        assert_eq!(w.segments()[0].audio_ms, 1000);
    }

    #[test]
    fn a_stall_mid_reply_is_a_gap_of_the_agent() {
        let mut w = PlayoutWatch::new();
        let mut at = 0;
        run(&mut w, &mut at, 20, 20, 20, 0);
        run(&mut w, &mut at, 15, 0, 0, 0); // 300 ms stall
        let back = Tick { at_ms: at, frame_ms: 20, played_ms: 20, queued_ms: 20, ..Tick::default() };
        assert_eq!(w.tick(back), Some((300, Cause::Agent)));
        at += 20;
        run(&mut w, &mut at, 19, 20, 20, 0);
        w.finish();
        let s = w.summary();
        assert_eq!((s.segments, s.gaps, s.gap_ms, s.dialtone_gaps), (1, 1, 300, 0));
    }

    #[test]
    fn a_partial_frame_counts_the_gap_from_where_the_audio_ran_out() {
        let mut w = PlayoutWatch::new();
        let mut at = 0;
        run(&mut w, &mut at, 5, 20, 0, 0);
        run(&mut w, &mut at, 1, 5, 0, 0); // dry at 105 ms
        run(&mut w, &mut at, 2, 0, 0, 0);
        run(&mut w, &mut at, 5, 20, 0, 0); // back at 160 ms
        w.finish();
        assert_eq!((w.summary().gaps, w.summary().gap_ms), (1, 55));
    }

    #[test]
    fn audio_waiting_in_the_bridge_makes_the_gap_dialtones() {
        let mut w = PlayoutWatch::new();
        let mut at = 0;
        run(&mut w, &mut at, 5, 20, 0, 0);
        run(&mut w, &mut at, 3, 0, 400, 400);
        run(&mut w, &mut at, 5, 20, 380, 300);
        w.finish();
        assert_eq!((w.summary().gaps, w.summary().dialtone_gaps), (1, 1));
    }

    #[test]
    fn a_long_pause_or_one_the_caller_speaks_in_starts_a_new_segment() {
        let mut w = PlayoutWatch::new();
        let mut at = 0;
        run(&mut w, &mut at, 10, 20, 0, 0);
        run(&mut w, &mut at, 60, 0, 0, 0); // 1.2 s
        run(&mut w, &mut at, 10, 20, 0, 0);
        run(&mut w, &mut at, 5, 0, 0, 0);
        let _ = w.tick(Tick { at_ms: at, frame_ms: 20, caller_speaking: true, ..Tick::default() });
        at += 20;
        run(&mut w, &mut at, 10, 20, 0, 0);
        w.finish();
        assert_eq!((w.summary().segments, w.summary().gaps), (3, 0));
    }

    #[test]
    fn a_burst_and_a_late_start_are_counted() {
        let mut w = PlayoutWatch::new();
        let mut at = 0;
        w.tick(Tick {
            at_ms: at,
            frame_ms: 20,
            played_ms: 20,
            queued_ms: 2980,
            start_delay_ms: Some(90),
            ..Tick::default()
        });
        at += 20;
        run(&mut w, &mut at, 149, 20, 1000, 880);
        w.finish();
        let s = w.summary();
        assert_eq!((s.segments, s.bursts, s.max_queued_ms, s.late_starts, s.max_start_delay_ms), (1, 1, 3000, 1, 90));
        assert_eq!(s.gaps, 0);
    }
}
