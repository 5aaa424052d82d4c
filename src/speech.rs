//! Speech on both directions of a voice-agent call (issue 21): a detector per direction
//! (the caller's audio, and what we send: the agent's) feeds the turn tracker, whose figures
//! are kept with the call as JSON. Runs in the call's media task, on the frames it already
//! has; a few microseconds per 20 ms tick.

use crate::agent::{PlayStat, SpeechNote};
use dialtone_media::playout::{self, PlayoutWatch};
use dialtone_media::turns::{Side, Summary, TurnTracker};
use dialtone_media::vad::{Vad, VadConfig, VadEvent};
use serde_json::{json, Value};

/// A call's two speech tracks and their turns.
pub struct Speech {
    caller: Vad,
    agent: Vad,
    tracker: TurnTracker,
    /// The agent's `clear`s seen so far.
    clears: u64,
    /// The agent's playout: gaps, bursts, late starts.
    playout: PlayoutWatch,
    /// This tick's playout figures, from the agent's bridge.
    stat: Option<PlayStat>,
    rate: u32,
    /// This tick's speech starts and ends.
    notes: Vec<SpeechNote>,
}

impl Speech {
    /// For a call whose frames are at `rate` Hz.
    pub fn new(rate: u32) -> Speech {
        Speech {
            caller: Vad::new(VadConfig::new(rate)),
            agent: Vad::new(VadConfig::new(rate)),
            tracker: TurnTracker::new(),
            clears: 0,
            playout: PlayoutWatch::new(),
            stat: None,
            rate,
            notes: Vec::with_capacity(2),
        }
    }

    /// The agent's playout in this tick's frame (before [`Speech::tick`]); `None` when what
    /// we send is not an agent's audio.
    pub fn played(&mut self, stat: Option<PlayStat>) {
        self.stat = stat;
    }

    /// One tick: what the caller said and what we sent; `clears`: the agent's `clear`s so far.
    pub fn tick(&mut self, heard: &[i16], sent: &[i16], clears: u64) {
        if clears > self.clears {
            self.clears = clears;
            self.tracker.clear(self.agent.elapsed_ms());
        }
        if let Some(st) = self.stat.take() {
            let ms = |samples: usize| samples as u64 * 1000 / u64::from(self.rate);
            let gap = self.playout.tick(playout::Tick {
                at_ms: self.agent.elapsed_ms(),
                frame_ms: ms(sent.len()),
                played_ms: ms(st.played),
                queued_ms: ms(st.queued),
                bridge_ms: ms(st.pending),
                start_delay_ms: st.start_delay_us.map(|us| us / 1000),
                caller_speaking: self.caller.speaking(),
            });
            if let Some((ms, cause)) = gap {
                crate::agent::record_playout_gap(ms, cause.as_str());
            }
        }
        let (turns, barges) = (self.tracker.turns().len(), self.tracker.barge_ins().len());
        self.notes.clear();
        for (side, event) in [(Side::Caller, self.caller.push(heard)), (Side::Agent, self.agent.push(sent))] {
            let caller = side == Side::Caller;
            match event {
                Some(VadEvent::SpeechStart { at_ms }) => {
                    self.tracker.start(side, at_ms);
                    self.notes.push(SpeechNote { caller, started: true, at_ms });
                }
                Some(VadEvent::SpeechEnd { at_ms }) => {
                    self.tracker.end(side, at_ms);
                    self.notes.push(SpeechNote { caller, started: false, at_ms });
                }
                None => {}
            }
        }
        // What closed this tick goes to `/metrics`.
        for t in &self.tracker.turns()[turns..] {
            if let Some(ms) = t.latency_ms() {
                crate::agent::record_turn_latency(ms);
            }
        }
        for b in &self.tracker.barge_ins()[barges..] {
            if let Some(ms) = b.time_to_stop_ms() {
                crate::agent::record_barge_in_stop(ms);
            }
        }
    }

    /// The speech starts and ends of the last tick.
    pub fn notes(&self) -> &[SpeechNote] {
        &self.notes
    }

    /// The call's media ended: what is open closes.
    pub fn finish(&mut self) {
        self.tracker.finish(self.caller.elapsed_ms().max(self.agent.elapsed_ms()));
        self.playout.finish();
    }

    /// `{summary, turns, barge_ins, playout}`, as the API shows them.
    pub fn report(&self) -> Value {
        let Summary {
            turns,
            answered,
            latency_p50_ms,
            latency_p95_ms,
            latency_max_ms,
            barge_ins,
            barge_ins_stopped,
            barge_ins_cleared,
            talk_over_ms,
        } = self.tracker.summary();
        let list: Vec<Value> = self
            .tracker
            .turns()
            .iter()
            .map(|t| {
                json!({"caller_start_ms": t.caller_start_ms, "caller_end_ms": t.caller_end_ms,
                       "agent_start_ms": t.agent_start_ms, "latency_ms": t.latency_ms()})
            })
            .collect();
        let barges: Vec<Value> = self
            .tracker
            .barge_ins()
            .iter()
            .map(|b| json!({"at_ms": b.at_ms, "time_to_stop_ms": b.time_to_stop_ms(), "cleared": b.cleared}))
            .collect();
        json!({
            "summary": {
                "turns": turns, "answered": answered,
                "response_latency_ms": {"p50": latency_p50_ms, "p95": latency_p95_ms, "max": latency_max_ms},
                "barge_ins": barge_ins, "barge_ins_stopped": barge_ins_stopped, "barge_ins_cleared": barge_ins_cleared,
                "talk_over_ms": talk_over_ms,
            },
            "turns": list,
            "barge_ins": barges,
            "playout": self.playout_report(),
        })
    }

    /// The agent's playout: `{summary, segments}` (closed segments only).
    fn playout_report(&self) -> Value {
        let playout::Summary {
            segments,
            gaps,
            gap_ms,
            max_gap_ms,
            dialtone_gaps,
            bursts,
            max_queued_ms,
            late_starts,
            max_start_delay_ms,
        } = self.playout.summary();
        let list: Vec<Value> = self
            .playout
            .segments()
            .iter()
            .map(|s| {
                json!({"start_ms": s.start_ms, "end_ms": s.end_ms, "audio_ms": s.audio_ms, "gaps": s.gaps,
                       "gap_ms": s.gap_ms, "max_gap_ms": s.max_gap_ms, "dialtone_gaps": s.dialtone_gaps,
                       "max_queued_ms": s.max_queued_ms, "start_delay_ms": s.start_delay_ms})
            })
            .collect();
        json!({
            "summary": {
                "segments": segments, "gaps": gaps, "gap_ms": gap_ms, "max_gap_ms": max_gap_ms,
                "agent_gaps": gaps - dialtone_gaps, "dialtone_gaps": dialtone_gaps,
                "bursts": bursts, "max_queued_ms": max_queued_ms,
                "late_starts": late_starts, "max_start_delay_ms": max_start_delay_ms,
            },
            "segments": list,
        })
    }
}
