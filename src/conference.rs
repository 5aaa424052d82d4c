//! Conferences (issue 16): any number of live calls in one room, each sent the sum of the
//! others (N−1), never itself. A call's media task trades its source for a [`Seat`]: each
//! tick the seat hands what the call heard to every other member's inbox (resampled to the
//! room's 16 kHz) and mixes what waits in its own inbox back to the call's rate. Every
//! member ticks on its own clock, so each (listener, speaker) pair has its own queue,
//! bounded like a bridge's: a speaker whose clock runs ahead loses its oldest audio, and a
//! late one is silence for a frame, never a stall.
//!
//! A muted member hears the room but is not heard. A seat that is dropped (the call left,
//! was bridged elsewhere, or ended) leaves the room, and its queues with it.

use crate::taps::Tap;
use dialtone_media::resample::Resampler;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

/// The room's mixing rate (Hz): wideband, so Opus and G.722 members keep their band.
pub const ROOM_RATE: u32 = 16_000;
/// At most this much audio waits from one speaker to one listener (ms).
const BACKLOG_MS: usize = 200;
const BACKLOG: usize = ROOM_RATE as usize * BACKLOG_MS / 1000;

/// One member: its id (the call's), whether it is heard, and what waits for it from each
/// other member.
struct Member {
    id: u64,
    /// Which seat holds it (a re-seated member's old seat must not take it away).
    seat: u64,
    muted: bool,
    inbox: Vec<(u64, VecDeque<i16>)>,
}

#[derive(Default)]
struct Members {
    list: Vec<Member>,
    seats: u64,
}

/// A conference's room; cloning shares it.
#[derive(Clone, Default)]
pub struct Room(Arc<Mutex<Members>>);

impl Room {
    /// A room with nobody in it.
    pub fn new() -> Room {
        Room::default()
    }

    fn lock(&self) -> MutexGuard<'_, Members> {
        // A member's tick never panics holding the lock; if one did, the room's queues
        // are still consistent (each step leaves them whole).
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seats member `id` (a call at `rate` Hz): the seat is its media task's source. A
    /// member already seated is seated again (its old seat no longer mixes).
    pub fn seat(&self, id: u64, rate: u32, muted: bool) -> Seat {
        let mut m = self.lock();
        m.remove(id);
        m.seats += 1;
        let seat = m.seats;
        m.list.push(Member { id, seat, muted, inbox: Vec::new() });
        drop(m);
        let resampler = |from: u32, to: u32| (from != to).then(|| Resampler::new(from, to).ok()).flatten();
        Seat {
            room: self.clone(),
            id,
            seat,
            rate,
            frame_in_room: ROOM_RATE as usize / 50,
            up: resampler(rate, ROOM_RATE),
            down: resampler(ROOM_RATE, rate),
            up_buf: Vec::new(),
            mix: Vec::new(),
            mixed: Vec::new(),
            down_buf: Vec::new(),
            out: VecDeque::new(),
            dropped: 0,
        }
    }

    /// Mutes (or unmutes) member `id`; `false` if it is not in the room.
    pub fn set_muted(&self, id: u64, muted: bool) -> bool {
        let mut m = self.lock();
        match m.list.iter_mut().find(|x| x.id == id) {
            Some(x) => {
                x.muted = muted;
                true
            }
            None => false,
        }
    }

    /// The members (id, muted), in the order they came.
    pub fn members(&self) -> Vec<(u64, bool)> {
        self.lock().list.iter().map(|x| (x.id, x.muted)).collect()
    }

    /// Seats still held (other than the room's own handle): the room is in use.
    pub fn in_use(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }
}

impl Members {
    /// Takes member `id` and everything it said that waits for the others.
    fn remove(&mut self, id: u64) {
        self.list.retain(|x| x.id != id);
        for x in &mut self.list {
            x.inbox.retain(|(from, _)| *from != id);
        }
    }
}

/// A member's place in a room: the source of its call's media task.
pub struct Seat {
    room: Room,
    id: u64,
    seat: u64,
    /// The call's audio rate.
    rate: u32,
    /// A 20 ms frame at the room's rate.
    frame_in_room: usize,
    /// The call's rate to the room's, and back, when they differ.
    up: Option<Resampler>,
    down: Option<Resampler>,
    up_buf: Vec<i16>,
    mix: Vec<i32>,
    mixed: Vec<i16>,
    down_buf: Vec<i16>,
    /// The mix at the call's rate, waiting to be sent.
    out: VecDeque<i16>,
    dropped: u64,
}

impl Seat {
    /// The call this seat is for.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut m = self.room.lock();
        // Only if we are still the seat of record: a re-seat replaced our member already.
        if m.list.iter().any(|x| x.id == self.id && x.seat == self.seat) {
            m.remove(self.id);
        }
    }
}

/// `samples` resampled by `r` (or as they are) into `buf`.
fn convert<'a>(r: Option<&mut Resampler>, samples: &'a [i16], buf: &'a mut Vec<i16>) -> &'a [i16] {
    match r {
        Some(r) => {
            buf.resize(r.max_output_len(samples.len()), 0);
            let n = r.process(samples, buf).unwrap_or(0);
            &buf[..n]
        }
        None => samples,
    }
}

impl Tap for Seat {
    fn fill(&mut self, _heard: &[i16], out: &mut [i16]) {
        // A frame's worth from every other speaker that has one, summed.
        let n = out.len() * ROOM_RATE as usize / self.rate as usize;
        self.mix.clear();
        self.mix.resize(n, 0);
        {
            let mut m = self.room.lock();
            let Some(me) = m.list.iter_mut().find(|x| x.id == self.id && x.seat == self.seat) else {
                return;
            };
            for (_, q) in &mut me.inbox {
                if q.len() >= n {
                    for (acc, s) in self.mix.iter_mut().zip(q.drain(..n)) {
                        *acc += i32::from(s);
                    }
                }
            }
        }
        self.mixed.clear();
        self.mixed.extend(self.mix.iter().map(|s| (*s).clamp(i16::MIN.into(), i16::MAX.into()) as i16));
        let at_call_rate = convert(self.down.as_mut(), &self.mixed, &mut self.down_buf);
        self.out.extend(at_call_rate);
        let len = out.len();
        if self.out.len() >= len {
            for (o, s) in out.iter_mut().zip(self.out.drain(..len)) {
                *o = s;
            }
        }
        // The resampler's delay leaves a few samples over; more than a frame is stale.
        if self.out.len() > 2 * out.len() {
            let excess = self.out.len() - out.len();
            self.out.drain(..excess);
        }
    }

    fn tick(&mut self, heard: &[i16], _said: &[i16]) {
        if heard.is_empty() {
            return;
        }
        let samples = convert(self.up.as_mut(), heard, &mut self.up_buf);
        let mut m = self.room.lock();
        if !m.list.iter().any(|x| x.id == self.id && x.seat == self.seat && !x.muted) {
            return;
        }
        for other in m.list.iter_mut().filter(|x| x.id != self.id) {
            let q = match other.inbox.iter().position(|(from, _)| *from == self.id) {
                Some(i) => &mut other.inbox[i].1,
                None => {
                    other.inbox.push((self.id, VecDeque::with_capacity(BACKLOG + self.frame_in_room)));
                    &mut other.inbox.last_mut().expect("just pushed").1
                }
            };
            q.extend(samples);
            if q.len() > BACKLOG + self.frame_in_room {
                let excess = q.len() - BACKLOG;
                q.drain(..excess);
                self.dropped += excess as u64;
            }
        }
    }

    fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// A voice agent seated in a room: every 20 ms it is sent the room's mix (what the others
/// say) and the room is sent what it says, until `stop` fires or is dropped. `agent` is the
/// media end of its WebSocket bridge (dropping it sends the agent `stop`).
pub async fn run_agent(mut seat: Seat, mut agent: impl Tap, rate: u32, mut stop: tokio::sync::oneshot::Receiver<()>) {
    let n = rate as usize / 50;
    let (mut room_says, mut agent_says) = (vec![0i16; n], vec![0i16; n]);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                room_says.fill(0);
                seat.fill(&agent_says, &mut room_says);
                agent_says.fill(0);
                agent.fill(&room_says, &mut agent_says);
                agent.tick(&room_says, &agent_says);
                seat.tick(&agent_says, &room_says);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dialtone_media::resample::goertzel_power;

    fn tone(hz: f32, rate: u32, start: usize, len: usize) -> Vec<i16> {
        (start..start + len)
            .map(|i| (8000.0 * (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin()) as i16)
            .collect()
    }

    /// Runs `seats` (with their rates and tones) for `frames` ticks; what each was sent.
    fn run(seats: &mut [(Seat, u32, f32)], frames: usize) -> Vec<Vec<i16>> {
        let mut sent = vec![Vec::new(); seats.len()];
        for f in 0..frames {
            for (i, (seat, rate, hz)) in seats.iter_mut().enumerate() {
                let n = *rate as usize / 50;
                let heard = tone(*hz, *rate, f * n, n);
                let mut out = vec![0i16; n];
                seat.fill(&heard, &mut out);
                seat.tick(&heard, &out);
                sent[i].extend(out);
            }
        }
        sent
    }

    fn has(x: &[i16], rate: u32, hz: f32) -> bool {
        let tail = &x[x.len() / 2..];
        goertzel_power(tail, rate, hz) > 1e3 * goertzel_power(tail, rate, 3100.0).max(1.0)
    }

    #[test]
    fn each_member_is_sent_the_others_and_not_itself() {
        let room = Room::new();
        let mut seats = vec![
            (room.seat(1, 8000, false), 8000, 400.0),
            (room.seat(2, 16_000, false), 16_000, 600.0),
            (room.seat(3, 8000, false), 8000, 1000.0),
        ];
        let sent = run(&mut seats, 50);
        for (i, (_, rate, own)) in seats.iter().enumerate() {
            let tail = &sent[i][sent[i].len() / 2..];
            let others: Vec<f32> = seats.iter().map(|s| s.2).filter(|hz| hz != own).collect();
            for hz in &others {
                assert!(has(&sent[i], *rate, *hz), "member {i} does not hear {hz} Hz");
            }
            let weakest = others.iter().map(|hz| goertzel_power(tail, *rate, *hz)).fold(f32::MAX, f32::min);
            assert!(goertzel_power(tail, *rate, *own) < 1e-3 * weakest, "member {i} hears itself");
        }
    }

    #[test]
    fn a_muted_member_hears_but_is_not_heard_and_a_dropped_seat_leaves() {
        let room = Room::new();
        let mut seats = vec![(room.seat(1, 8000, true), 8000, 400.0), (room.seat(2, 8000, false), 8000, 1000.0)];
        let sent = run(&mut seats, 30);
        assert!(has(&sent[0], 8000, 1000.0), "the muted one hears");
        assert!(sent[1].iter().all(|s| *s == 0), "nobody hears the muted one");
        assert!(room.set_muted(1, false));
        let sent = run(&mut seats, 30);
        assert!(has(&sent[1], 8000, 400.0), "unmuted, it is heard");
        seats.truncate(1);
        assert_eq!(room.members(), vec![(1, false)]);
        assert!(room.in_use());
        drop(seats);
        assert!(room.members().is_empty() && !room.in_use());
    }

    #[test]
    fn a_reseated_member_is_not_taken_away_by_its_old_seat() {
        let room = Room::new();
        let old = room.seat(7, 8000, false);
        let new = room.seat(7, 8000, true);
        drop(old);
        assert_eq!(room.members(), vec![(7, true)]);
        drop(new);
        assert!(room.members().is_empty());
    }

    #[test]
    fn a_fast_speaker_loses_its_oldest_audio_not_the_room() {
        let room = Room::new();
        // At the room's rate: nothing is resampled, so what arrives is exactly what was said.
        let mut fast = room.seat(1, ROOM_RATE, false);
        let mut slow = room.seat(2, ROOM_RATE, false);
        for i in 0..100 {
            fast.tick(&[i; 320], &[0; 320]);
        }
        assert!(fast.dropped() > 0);
        let mut out = [0i16; 320];
        slow.fill(&[0; 320], &mut out);
        // The newest 200 ms wait (10 frames of 20 ms, and the one over): the oldest are gone.
        assert!(out.iter().all(|s| *s >= 89), "{:?}", &out[..4]);
        slow.fill(&[0; 320], &mut out);
        assert!(out.iter().all(|s| *s == out[0]) && out[0] >= 90);
    }
}
