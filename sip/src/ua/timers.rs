//! The UA's one timer table (quinn-proto's `TimerTable` is the model): each call holds at
//! most one deadline per [`Timer`]; one heap orders every call's deadlines. Re-arming or
//! stopping a timer only changes the call's table: a heap entry whose instant the table no
//! longer holds is stale and skipped, so no generation counters are needed.

use super::types::CallRef;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// A call's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Timer {
    /// Send our 2xx again until the ACK comes, or give up (RFC 3261 §13.3.1.4).
    Ok2xx = 0,
    /// Refresh the session, or end it when nobody did (RFC 4028 §10).
    Session = 1,
    /// Send our re-INVITE again after a 491 (RFC 3261 §14.1).
    Glare = 2,
    /// Send our reliable provisional response again until its PRACK, or give up (RFC 3262 §3).
    Reliable1xx = 3,
}

/// One call's deadlines, one per [`Timer`].
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct TimerTable([Option<Instant>; 4]);

impl TimerTable {
    /// When `t` is due, if armed.
    pub(super) fn get(&self, t: Timer) -> Option<Instant> {
        self.0[t as usize]
    }

    /// Disarms `t`.
    pub(super) fn stop(&mut self, t: Timer) {
        self.0[t as usize] = None;
    }

    fn set(&mut self, t: Timer, at: Instant) {
        self.0[t as usize] = Some(at);
    }
}

/// Every call's deadlines in order.
#[derive(Debug, Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, CallRef, Timer)>>,
}

impl Timers {
    /// Arms `t` of `call` (whose table is `table`) at `at`, replacing an earlier deadline.
    pub(super) fn arm(&mut self, table: &mut TimerTable, call: CallRef, t: Timer, at: Instant) {
        table.set(t, at);
        self.heap.push(Reverse((at, call, t)));
    }

    /// The earliest deadline (it may be stale: then the wake-up finds nothing due).
    pub(super) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The next entry due at `now`, taken off the heap; the caller checks it against the
    /// call's table.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(Instant, CallRef, Timer)> {
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rearming_or_stopping_leaves_stale_entries_that_the_table_rejects() {
        let t0 = Instant::now();
        let (mut timers, mut table) = (Timers::default(), TimerTable::default());
        let call = CallRef(1);
        timers.arm(&mut table, call, Timer::Session, t0 + Duration::from_secs(1));
        timers.arm(&mut table, call, Timer::Session, t0 + Duration::from_secs(5));
        timers.arm(&mut table, call, Timer::Glare, t0 + Duration::from_secs(2));
        table.stop(Timer::Glare);
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(1)));
        let due: Vec<_> = std::iter::from_fn(|| timers.pop_due(t0 + Duration::from_secs(10)))
            .filter(|(at, _, t)| table.get(*t) == Some(*at))
            .map(|(_, _, t)| t)
            .collect();
        assert_eq!(due, [Timer::Session], "only the live deadline fires");
        assert_eq!(timers.next(), None);
    }
}
