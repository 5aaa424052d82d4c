//! Turn-taking on a voice-agent call (issue 21), from the two speech tracks a speech
//! detector gives: the caller's (what the far end sends) and the agent's (what we send it).
//! Sans-IO: every input carries its time in ms from the start of the call's media.
//!
//! - A **turn** is a caller utterance and the agent's answer: its *response latency* runs
//!   from the end of the caller's speech to the first audio of the agent after it.
//! - A **barge-in** is the caller starting to speak while the agent talks: its *time to
//!   stop* runs from the caller's start to the end of the agent's audio, and whether the
//!   agent sent `clear` (Twilio Media Streams) meanwhile is kept. An agent that does not stop
//!   within [`BARGE_IN_GIVE_UP_MS`] is counted as not stopping.
//! - **Talk-over** is the time both speak at once (either side interrupting).
//!
//! The tracker keeps at most [`MAX_KEPT`] turns and barge-ins (the summary counts them all).

/// Turns and barge-ins kept in detail per call (the summary's counts include the rest).
pub const MAX_KEPT: usize = 500;
/// A barge-in the agent has not stopped for after this long counts as not stopped.
pub const BARGE_IN_GIVE_UP_MS: u64 = 5000;

/// Who speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The far end of the call (the person, or a test caller).
    Caller,
    /// What we send: the voice agent's audio (or a prompt).
    Agent,
}

/// A caller utterance and the agent's answer to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    /// When the caller started and stopped speaking (ms).
    pub caller_start_ms: u64,
    /// See above.
    pub caller_end_ms: u64,
    /// When the agent's answer started, if it did.
    pub agent_start_ms: Option<u64>,
}

impl Turn {
    /// The agent's response latency: from the caller's end to the agent's first audio.
    pub fn latency_ms(&self) -> Option<u64> {
        self.agent_start_ms.map(|a| a.saturating_sub(self.caller_end_ms))
    }
}

/// The caller speaking while the agent talks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BargeIn {
    /// When the caller started (ms).
    pub at_ms: u64,
    /// When the agent's audio ended after it (`None`: not within the give-up time, or the
    /// call ended first).
    pub agent_stopped_ms: Option<u64>,
    /// The agent sent `clear` between the barge-in and the end of its audio.
    pub cleared: bool,
}

impl BargeIn {
    /// From the caller's start to the end of the agent's audio.
    pub fn time_to_stop_ms(&self) -> Option<u64> {
        self.agent_stopped_ms.map(|s| s.saturating_sub(self.at_ms))
    }
}

/// A call's figures.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// Caller turns ended.
    pub turns: u64,
    /// Of them, answered by the agent.
    pub answered: u64,
    /// Response latency over the kept answered turns: p50, p95, max (ms).
    pub latency_p50_ms: Option<u64>,
    /// See above.
    pub latency_p95_ms: Option<u64>,
    /// See above.
    pub latency_max_ms: Option<u64>,
    /// Barge-ins.
    pub barge_ins: u64,
    /// Of them, the agent stopped within the give-up time.
    pub barge_ins_stopped: u64,
    /// Of them, with a `clear` from the agent.
    pub barge_ins_cleared: u64,
    /// Both speaking at once, ms.
    pub talk_over_ms: u64,
}

/// Follows a call's two speech tracks.
#[derive(Debug, Default)]
pub struct TurnTracker {
    caller_since: Option<u64>,
    agent_since: Option<u64>,
    /// The caller's last utterance, waiting for the agent's answer.
    waiting: Option<Turn>,
    /// The barge-in waiting for the agent to stop.
    barging: Option<BargeIn>,
    turns: Vec<Turn>,
    barge_ins: Vec<BargeIn>,
    counts: (u64, u64, u64, u64, u64),
    talk_over_ms: u64,
    /// Since when both speak.
    both_since: Option<u64>,
}

impl TurnTracker {
    /// A call with nobody speaking yet.
    pub fn new() -> TurnTracker {
        TurnTracker::default()
    }

    /// `side` started speaking at `at_ms`.
    pub fn start(&mut self, side: Side, at_ms: u64) {
        self.give_up(at_ms);
        match side {
            Side::Caller if self.caller_since.is_none() => {
                self.caller_since = Some(at_ms);
                if self.agent_since.is_some() {
                    self.both_since = Some(at_ms);
                    if self.barging.is_none() {
                        self.barging = Some(BargeIn { at_ms, agent_stopped_ms: None, cleared: false });
                    }
                }
                // The caller speaks again before the agent answered: one longer turn.
            }
            Side::Agent if self.agent_since.is_none() => {
                self.agent_since = Some(at_ms);
                if self.caller_since.is_some() {
                    self.both_since = Some(at_ms);
                } else if let Some(mut t) = self.waiting.take() {
                    t.agent_start_ms = Some(at_ms);
                    self.counts.1 += 1;
                    self.keep_turn(t);
                }
            }
            _ => {}
        }
    }

    /// `side` stopped speaking at `at_ms` (where its speech really ended).
    pub fn end(&mut self, side: Side, at_ms: u64) {
        if let Some(since) = self.both_since.take() {
            self.talk_over_ms += at_ms.saturating_sub(since);
        }
        match side {
            Side::Caller => {
                let Some(since) = self.caller_since.take() else { return };
                // Speaking again before the agent answered continues the same turn; said over
                // the agent, the agent's answer is whatever it says next.
                let start = self.waiting.take().map_or(since, |w| w.caller_start_ms);
                self.waiting = Some(Turn { caller_start_ms: start, caller_end_ms: at_ms, agent_start_ms: None });
            }
            Side::Agent => {
                if self.agent_since.take().is_none() {
                    return;
                }
                if let Some(mut b) = self.barging.take() {
                    b.agent_stopped_ms = Some(at_ms);
                    self.keep_barge_in(b);
                }
            }
        }
    }

    /// The agent asked for its queued audio to be dropped (`clear`) at `at_ms`.
    pub fn clear(&mut self, _at_ms: u64) {
        if let Some(b) = self.barging.as_mut() {
            b.cleared = true;
        }
    }

    /// A barge-in the agent has not stopped for in time counts as not stopped.
    fn give_up(&mut self, now_ms: u64) {
        if self.barging.is_some_and(|b| now_ms.saturating_sub(b.at_ms) > BARGE_IN_GIVE_UP_MS) {
            let b = self.barging.take().expect("checked");
            self.keep_barge_in(b);
        }
    }

    fn keep_turn(&mut self, t: Turn) {
        self.counts.0 += 1;
        if self.turns.len() < MAX_KEPT {
            self.turns.push(t);
        }
    }

    fn keep_barge_in(&mut self, b: BargeIn) {
        self.counts.2 += 1;
        if b.agent_stopped_ms.is_some() {
            self.counts.3 += 1;
        }
        if b.cleared {
            self.counts.4 += 1;
        }
        if self.barge_ins.len() < MAX_KEPT {
            self.barge_ins.push(b);
        }
    }

    /// The call ended at `at_ms`: what is open closes (a turn the agent never answered, a
    /// barge-in it never stopped for, talk-over until now).
    pub fn finish(&mut self, at_ms: u64) {
        if self.caller_since.is_some() {
            self.end(Side::Caller, at_ms);
        }
        if let Some(since) = self.both_since.take() {
            self.talk_over_ms += at_ms.saturating_sub(since);
        }
        if let Some(t) = self.waiting.take() {
            self.keep_turn(t);
        }
        if let Some(b) = self.barging.take() {
            self.keep_barge_in(b);
        }
    }

    /// The turns kept, in order.
    pub fn turns(&self) -> &[Turn] {
        &self.turns
    }

    /// The barge-ins kept, in order.
    pub fn barge_ins(&self) -> &[BargeIn] {
        &self.barge_ins
    }

    /// The call's figures so far.
    pub fn summary(&self) -> Summary {
        let mut lat: Vec<u64> = self.turns.iter().filter_map(Turn::latency_ms).collect();
        lat.sort_unstable();
        let pct = |p: usize| (!lat.is_empty()).then(|| lat[((lat.len() - 1) * p).div_ceil(100)]);
        Summary {
            turns: self.counts.0,
            answered: self.counts.1,
            latency_p50_ms: pct(50),
            latency_p95_ms: pct(95),
            latency_max_ms: lat.last().copied(),
            barge_ins: self.counts.2,
            barge_ins_stopped: self.counts.3,
            barge_ins_cleared: self.counts.4,
            talk_over_ms: self.talk_over_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_answer_is_timed_from_the_end_of_the_callers_turn() {
        let mut t = TurnTracker::new();
        for (i, delay) in [600u64, 900, 750].iter().enumerate() {
            let base = i as u64 * 10_000;
            t.start(Side::Caller, base + 100);
            t.end(Side::Caller, base + 1_500);
            t.start(Side::Agent, base + 1_500 + delay);
            t.end(Side::Agent, base + 4_000);
        }
        t.finish(40_000);
        let lat: Vec<_> = t.turns().iter().map(|x| x.latency_ms()).collect();
        assert_eq!(lat, [Some(600), Some(900), Some(750)]);
        let s = t.summary();
        assert_eq!((s.turns, s.answered, s.barge_ins, s.talk_over_ms), (3, 3, 0, 0));
        assert_eq!((s.latency_p50_ms, s.latency_max_ms), (Some(750), Some(900)));
    }

    #[test]
    fn a_pause_inside_the_callers_turn_makes_one_turn_and_an_unanswered_one_is_counted() {
        let mut t = TurnTracker::new();
        t.start(Side::Caller, 0);
        t.end(Side::Caller, 1_000);
        t.start(Side::Caller, 1_400); // more of the same turn before the agent answered
        t.end(Side::Caller, 2_000);
        t.start(Side::Agent, 2_500);
        t.end(Side::Agent, 3_000);
        t.start(Side::Caller, 5_000);
        t.end(Side::Caller, 6_000);
        t.finish(9_000); // never answered
        assert_eq!(t.turns()[0], Turn { caller_start_ms: 0, caller_end_ms: 2_000, agent_start_ms: Some(2_500) });
        assert_eq!(t.turns()[1].latency_ms(), None);
        let s = t.summary();
        assert_eq!((s.turns, s.answered), (2, 1));
    }

    #[test]
    fn barge_ins_tell_an_agent_that_stops_from_one_that_talks_on() {
        // The polite agent: cleared and stopped 300 ms into the barge-in.
        let mut polite = TurnTracker::new();
        polite.start(Side::Agent, 0);
        polite.start(Side::Caller, 2_000);
        polite.clear(2_200);
        polite.end(Side::Agent, 2_300);
        polite.end(Side::Caller, 3_000);
        polite.finish(5_000);
        let b = polite.barge_ins()[0];
        assert_eq!((b.time_to_stop_ms(), b.cleared), (Some(300), true));
        assert_eq!(polite.summary().talk_over_ms, 300);
        // The rude one talks through the caller for 8 s.
        let mut rude = TurnTracker::new();
        rude.start(Side::Agent, 0);
        rude.start(Side::Caller, 2_000);
        rude.end(Side::Caller, 3_000);
        rude.start(Side::Caller, 9_000); // the give-up time passed: not stopped
        rude.end(Side::Caller, 9_500);
        rude.end(Side::Agent, 10_000);
        rude.finish(12_000);
        let s = rude.summary();
        assert_eq!((s.barge_ins, s.barge_ins_stopped, s.barge_ins_cleared), (2, 1, 0));
        assert_eq!(rude.barge_ins()[0].agent_stopped_ms, None);
        assert_eq!(s.talk_over_ms, 1_000 + 500);
    }
}
