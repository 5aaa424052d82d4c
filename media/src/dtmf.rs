//! DTMF as RTP telephone-events (RFC 4733).
//!
//! * [`EventPayload`]: the 4-byte payload (§2.3): event code, E(nd) bit, volume, duration.
//! * [`DtmfReceiver`]: turns telephone-event packets into one [`DtmfEvent`] per key press.
//!   An event is identified by its RTP timestamp (§2.5.1.1: every packet of one event carries
//!   the timestamp of its start), so duplicated or retransmitted end packets, late updates
//!   and reordering never produce a second event.
//! * [`DtmfSender`]: produces, one per packet interval, the packets for queued digits: a
//!   start packet with the marker bit, updates with growing duration, and the final packet
//!   with the E bit sent three times (§2.5.1.4), all with the event's start timestamp.
//!
//! Durations on the wire are in RTP timestamp units of the telephone-event clock, which is
//! the clock of the audio codec it travels with (8000 for PCMU/PCMA, 48000 with Opus).

use std::collections::VecDeque;
use thiserror::Error;

/// Errors of the DTMF payload and sender.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DtmfError {
    /// A telephone-event payload shorter than 4 bytes.
    #[error("telephone-event payload is {0} bytes, at least 4 needed")]
    Truncated(usize),
    /// A character that is not a DTMF key (0-9, *, #, A-D).
    #[error("{0:?} is not a DTMF digit")]
    InvalidDigit(char),
    /// A clock rate of zero, or a packet interval of zero.
    #[error("clock rate and packet time must be positive")]
    InvalidTiming,
    /// A duration that does not fit the 16-bit duration field at this clock rate.
    #[error("a {0} ms event does not fit the duration field")]
    DurationTooLong(u32),
    /// The call did not negotiate telephone-event, so no digit can be sent.
    #[error("the peer did not accept telephone-event (RFC 4733)")]
    NotNegotiated,
}

/// The event code of a DTMF key (RFC 4733 §3.2): 0-9 → 0-9, `*` → 10, `#` → 11, A-D → 12-15.
pub fn digit_to_event(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// The DTMF key of an event code 0..=15; `None` for the other telephone events.
pub fn event_to_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// One telephone-event payload block (RFC 4733 §2.3).
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// |     event     |E|R| volume    |          duration             |
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventPayload {
    /// Event code (0..=15 for DTMF).
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level in −dBm0, 0..=63 (higher is quieter).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl EventPayload {
    /// Length on the wire.
    pub const LEN: usize = 4;

    /// Parses the first block of a payload. Extra bytes (a second block, padding) are
    /// ignored; the reserved bit is ignored as §2.3 requires.
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        let &[event, flags, d0, d1, ..] = payload else {
            return Err(DtmfError::Truncated(payload.len()));
        };
        Ok(EventPayload { event, end: flags & 0x80 != 0, volume: flags & 0x3F, duration: u16::from_be_bytes([d0, d1]) })
    }

    /// The 4 bytes on the wire (R bit zero, volume masked to 6 bits).
    pub fn to_bytes(self) -> [u8; 4] {
        let [d0, d1] = self.duration.to_be_bytes();
        [self.event, (u8::from(self.end) << 7) | (self.volume & 0x3F), d0, d1]
    }
}

/// One key press, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfEvent {
    /// The key: `0`-`9`, `*`, `#`, `A`-`D`.
    pub digit: char,
    /// Duration from the packets (the largest seen), in milliseconds.
    pub duration_ms: u32,
    /// RTP timestamp of the event's start.
    pub rtp_timestamp: u32,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    timestamp: u32,
    event: u8,
    duration: u16,
}

/// Receives telephone-event packets and reports one [`DtmfEvent`] per key press.
///
/// Feed every telephone-event packet with [`handle_packet`](Self::handle_packet), then drain
/// [`poll_event`](Self::poll_event). An event is reported when its first end packet arrives;
/// if all its end packets are lost, when the next event starts or on [`flush`](Self::flush)
/// (the driver calls it when the stream stops, or after ~a second without packets).
/// Packets of an event already reported, or older than the latest event, are ignored.
/// Telephone events other than the 16 DTMF keys are tracked the same way but not reported.
#[derive(Debug)]
pub struct DtmfReceiver {
    clock_rate: u32,
    /// Timestamp of the newest event seen, and whether it is finished.
    latest: Option<(u32, bool)>,
    pending: Option<Pending>,
    events: VecDeque<DtmfEvent>,
}

impl DtmfReceiver {
    /// A receiver for a telephone-event stream with RTP clock `clock_rate` (8000, 48000…).
    pub fn new(clock_rate: u32) -> Result<Self, DtmfError> {
        if clock_rate == 0 {
            return Err(DtmfError::InvalidTiming);
        }
        Ok(DtmfReceiver { clock_rate, latest: None, pending: None, events: VecDeque::with_capacity(4) })
    }

    /// Handles one packet: its RTP timestamp, marker bit and payload. A malformed payload is
    /// an error and changes nothing.
    pub fn handle_packet(&mut self, timestamp: u32, marker: bool, payload: &[u8]) -> Result<(), DtmfError> {
        // The marker only says "first packet of an event"; the timestamp identifies the
        // event, which survives a lost or reordered start packet.
        let _ = marker;
        let p = EventPayload::parse(payload)?;
        match self.latest {
            Some((ts, finished)) if ts == timestamp => {
                if finished {
                    return Ok(()); // a retransmitted end or a late update
                }
            }
            // Serial-number comparison: older than the newest event means stale.
            Some((ts, _)) if (timestamp.wrapping_sub(ts) as i32) < 0 => return Ok(()),
            _ => {
                // A new event: the previous one, if unfinished, lost all its end packets.
                self.finish_pending();
                self.latest = Some((timestamp, false));
                self.pending = Some(Pending { timestamp, event: p.event, duration: 0 });
            }
        }
        if let Some(pending) = self.pending.as_mut() {
            pending.duration = pending.duration.max(p.duration);
        }
        if p.end {
            self.finish_pending();
        }
        Ok(())
    }

    /// Ends the event in progress, if any, with the duration seen so far.
    pub fn flush(&mut self) {
        self.finish_pending();
    }

    /// The next key press, in order.
    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        self.events.pop_front()
    }

    /// Forgets all state (e.g. after an SSRC change).
    pub fn reset(&mut self) {
        self.latest = None;
        self.pending = None;
        self.events.clear();
    }

    fn finish_pending(&mut self) {
        let Some(p) = self.pending.take() else { return };
        if let Some((ts, finished)) = self.latest.as_mut() {
            if *ts == p.timestamp {
                *finished = true;
            }
        }
        if let Some(digit) = event_to_digit(p.event) {
            let duration_ms = (u64::from(p.duration) * 1000 / u64::from(self.clock_rate)) as u32;
            self.events.push_back(DtmfEvent { digit, duration_ms, rtp_timestamp: p.timestamp });
        }
    }
}

/// A telephone-event packet to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// RTP timestamp: the start of the event, the same for all its packets.
    pub timestamp: u32,
    /// RTP marker bit: set on the first packet of an event only.
    pub marker: bool,
    /// The payload.
    pub payload: EventPayload,
}

impl DtmfPacket {
    /// The RTP payload bytes.
    pub fn payload_bytes(&self) -> [u8; 4] {
        self.payload.to_bytes()
    }
}

#[derive(Debug, Clone, Copy)]
enum SendState {
    /// Nothing in progress; the next digit may start at the next tick.
    Idle,
    /// Event `event` started at `timestamp`; `ticks` packets sent so far.
    Sending { event: u8, timestamp: u32, ticks: u32 },
    /// End packet already sent `sent` times.
    Ending { event: u8, timestamp: u32, sent: u8 },
    /// Inter-digit pause: this many more ticks of audio.
    Gap { ticks: u32 },
}

/// Produces telephone-event packets for queued digits, one call per packet interval.
///
/// Call [`tick`](Self::tick) every `ptime` with the RTP timestamp an audio packet sent at
/// that moment would carry. `Some(packet)` means send this telephone-event packet (with the
/// stream's next sequence number) instead of audio; `None` means send audio as usual.
///
/// For a 100 ms digit at 8000 Hz and 20 ms packets: durations 160 (marker), 320, 480, 640,
/// then 800 with the E bit three times — 7 packets over 140 ms, all with the start timestamp.
/// The inter-digit gap counts from the first end packet; the next digit starts no earlier
/// than after the last retransmission.
#[derive(Debug)]
pub struct DtmfSender {
    clock_rate: u32,
    ptime_units: u32,
    duration_ms: u32,
    duration_units: u32,
    gap_ms: u32,
    volume: u8,
    queue: VecDeque<u8>,
    state: SendState,
}

/// Times the final packet of an event is sent (RFC 4733 §2.5.1.4).
const END_PACKETS: u8 = 3;

impl DtmfSender {
    /// Default tone duration.
    pub const DEFAULT_DURATION_MS: u32 = 100;
    /// Default pause between digits.
    pub const DEFAULT_GAP_MS: u32 = 50;
    /// Default volume, −10 dBm0.
    pub const DEFAULT_VOLUME: u8 = 10;

    /// A sender for an RTP clock of `clock_rate` Hz and packets every `ptime_ms`.
    pub fn new(clock_rate: u32, ptime_ms: u32) -> Result<Self, DtmfError> {
        let ptime_units = u64::from(clock_rate) * u64::from(ptime_ms) / 1000;
        if ptime_units == 0 || ptime_units > u64::from(u16::MAX) {
            return Err(DtmfError::InvalidTiming);
        }
        let mut s = DtmfSender {
            clock_rate,
            ptime_units: ptime_units as u32,
            duration_ms: 0,
            duration_units: 0,
            gap_ms: Self::DEFAULT_GAP_MS,
            volume: Self::DEFAULT_VOLUME,
            queue: VecDeque::with_capacity(32),
            state: SendState::Idle,
        };
        s.set_duration_ms(Self::DEFAULT_DURATION_MS)?;
        Ok(s)
    }

    /// Sets the tone duration of digits that have not started yet.
    pub fn set_duration_ms(&mut self, ms: u32) -> Result<(), DtmfError> {
        let units = u64::from(ms) * u64::from(self.clock_rate) / 1000;
        if units == 0 || units > u64::from(u16::MAX) {
            return Err(DtmfError::DurationTooLong(ms));
        }
        self.duration_ms = ms;
        self.duration_units = units as u32;
        Ok(())
    }

    /// Sets the pause between digits.
    pub fn set_gap_ms(&mut self, ms: u32) {
        self.gap_ms = ms;
    }

    /// Sets the volume in −dBm0 (clamped to 0..=63).
    pub fn set_volume(&mut self, volume: u8) {
        self.volume = volume.min(63);
    }

    /// The tone duration in ms.
    pub fn duration_ms(&self) -> u32 {
        self.duration_ms
    }

    /// Queues `digits` (0-9, *, #, A-D; case-insensitive). Nothing is queued if any
    /// character is invalid.
    pub fn send(&mut self, digits: &str) -> Result<(), DtmfError> {
        if let Some(bad) = digits.chars().find(|&c| digit_to_event(c).is_none()) {
            return Err(DtmfError::InvalidDigit(bad));
        }
        self.queue.extend(digits.chars().filter_map(digit_to_event));
        Ok(())
    }

    /// Whether nothing is queued or in progress.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && matches!(self.state, SendState::Idle)
    }

    /// Drops queued digits; an event in progress still ends properly.
    pub fn cancel_queued(&mut self) {
        self.queue.clear();
    }

    /// One packet interval: the telephone-event packet to send now, or `None` for audio.
    /// `rtp_timestamp` is the timestamp an audio packet sent now would carry.
    pub fn tick(&mut self, rtp_timestamp: u32) -> Option<DtmfPacket> {
        match self.state {
            SendState::Gap { ticks } => {
                self.state = if ticks > 1 { SendState::Gap { ticks: ticks - 1 } } else { SendState::Idle };
                None
            }
            SendState::Idle => {
                let event = self.queue.pop_front()?;
                self.state = SendState::Sending { event, timestamp: rtp_timestamp, ticks: 0 };
                self.next_event_packet()
            }
            SendState::Sending { .. } => self.next_event_packet(),
            SendState::Ending { event, timestamp, sent } => {
                let packet = self.packet(event, timestamp, false, true, self.duration_units);
                if sent + 1 >= END_PACKETS {
                    let gap_ticks = self.gap_ms.div_ceil(self.ptime_ms());
                    // The retransmissions already used END_PACKETS - 1 ticks of the gap.
                    let rest = gap_ticks.saturating_sub(u32::from(END_PACKETS - 1));
                    self.state = if rest > 0 { SendState::Gap { ticks: rest } } else { SendState::Idle };
                } else {
                    self.state = SendState::Ending { event, timestamp, sent: sent + 1 };
                }
                Some(packet)
            }
        }
    }

    fn ptime_ms(&self) -> u32 {
        (self.ptime_units * 1000 / self.clock_rate).max(1)
    }

    fn next_event_packet(&mut self) -> Option<DtmfPacket> {
        let SendState::Sending { event, timestamp, ticks } = self.state else { return None };
        let elapsed = (ticks + 1) * self.ptime_units;
        if elapsed >= self.duration_units {
            self.state = SendState::Ending { event, timestamp, sent: 1 };
            Some(self.packet(event, timestamp, ticks == 0, true, self.duration_units))
        } else {
            self.state = SendState::Sending { event, timestamp, ticks: ticks + 1 };
            Some(self.packet(event, timestamp, ticks == 0, false, elapsed))
        }
    }

    fn packet(&self, event: u8, timestamp: u32, marker: bool, end: bool, duration: u32) -> DtmfPacket {
        // duration ≤ duration_units ≤ u16::MAX, checked in set_duration_ms.
        let duration = duration.min(u32::from(u16::MAX)) as u16;
        DtmfPacket { timestamp, marker, payload: EventPayload { event, end, volume: self.volume, duration } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the sender for `ticks` packet intervals from timestamp `start`.
    fn run_sender(s: &mut DtmfSender, start: u32, ticks: u32) -> Vec<(u32, Option<DtmfPacket>)> {
        (0..ticks)
            .map(|i| {
                let ts = start.wrapping_add(i * s.ptime_units);
                (ts, s.tick(ts))
            })
            .collect()
    }

    fn receive_all(r: &mut DtmfReceiver, packets: &[DtmfPacket]) -> Vec<DtmfEvent> {
        for p in packets {
            r.handle_packet(p.timestamp, p.marker, &p.payload_bytes()).unwrap();
        }
        std::iter::from_fn(|| r.poll_event()).collect()
    }

    #[test]
    fn payload_round_trip_and_layout() {
        let p = EventPayload { event: 11, end: true, volume: 10, duration: 800 };
        assert_eq!(p.to_bytes(), [11, 0x8A, 0x03, 0x20]);
        assert_eq!(EventPayload::parse(&p.to_bytes()).unwrap(), p);
        // The R bit is ignored on receipt; extra bytes too.
        let q = EventPayload::parse(&[5, 0x40 | 7, 0, 160, 9, 9, 9, 9]).unwrap();
        assert_eq!(q, EventPayload { event: 5, end: false, volume: 7, duration: 160 });
        assert_eq!(EventPayload::parse(&[1, 2, 3]), Err(DtmfError::Truncated(3)));
    }

    #[test]
    fn digit_mapping() {
        let keys = "0123456789*#ABCD";
        for (code, c) in keys.chars().enumerate() {
            assert_eq!(digit_to_event(c), Some(code as u8));
            assert_eq!(event_to_digit(code as u8), Some(c));
        }
        assert_eq!(digit_to_event('b'), Some(13));
        assert_eq!(digit_to_event('E'), None);
        assert_eq!(event_to_digit(16), None);
    }

    #[test]
    fn sender_packet_sequence_for_one_digit() {
        let mut s = DtmfSender::new(8000, 20).unwrap();
        s.send("5").unwrap();
        let out = run_sender(&mut s, 1000, 12);
        let pkts: Vec<DtmfPacket> = out.iter().filter_map(|(_, p)| *p).collect();
        assert_eq!(pkts.len(), 7);
        // All share the start timestamp; marker only on the first.
        assert!(pkts.iter().all(|p| p.timestamp == 1000 && p.payload.event == 5 && p.payload.volume == 10));
        assert!(pkts[0].marker && pkts[1..].iter().all(|p| !p.marker));
        let durations: Vec<u16> = pkts.iter().map(|p| p.payload.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = pkts.iter().map(|p| p.payload.end).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
        // The event packets come in consecutive ticks, then audio again.
        assert!(out[..7].iter().all(|(_, p)| p.is_some()));
        assert!(out[7..].iter().all(|(_, p)| p.is_none()));
        assert!(s.is_idle());
    }

    #[test]
    fn sender_odd_duration_and_48k_clock() {
        let mut s = DtmfSender::new(48000, 20).unwrap();
        s.set_duration_ms(90).unwrap();
        s.send("#").unwrap();
        let pkts: Vec<DtmfPacket> = run_sender(&mut s, 0, 10).into_iter().filter_map(|(_, p)| p).collect();
        let durations: Vec<u16> = pkts.iter().map(|p| p.payload.duration).collect();
        assert_eq!(durations, [960, 1920, 2880, 3840, 4320, 4320, 4320]);
        assert_eq!(s.set_duration_ms(2000), Err(DtmfError::DurationTooLong(2000)));
        assert_eq!(DtmfSender::new(0, 20).unwrap_err(), DtmfError::InvalidTiming);
    }

    #[test]
    fn sender_gap_between_digits() {
        let mut s = DtmfSender::new(8000, 20).unwrap();
        s.set_gap_ms(100);
        s.send("12").unwrap();
        let out = run_sender(&mut s, 0, 30);
        let starts: Vec<usize> =
            out.iter().enumerate().filter(|(_, (_, p))| p.is_some_and(|p| p.marker)).map(|(i, _)| i).collect();
        // Digit 1: ticks 0-4 (end at 4), retransmits 5-6, audio 7-9, digit 2 at tick 10:
        // 100 ms of gap after the end packet.
        assert_eq!(starts, [0, 10]);
        assert_eq!(out[10].1.map(|p| p.timestamp), Some(out[10].0));
        assert!(out[7..10].iter().all(|(_, p)| p.is_none()));
    }

    #[test]
    fn sender_rejects_invalid_digits() {
        let mut s = DtmfSender::new(8000, 20).unwrap();
        assert_eq!(s.send("12x"), Err(DtmfError::InvalidDigit('x')));
        assert!(s.is_idle());
        assert_eq!(s.tick(0), None);
    }

    #[test]
    fn round_trip_123_hash() {
        let mut s = DtmfSender::new(8000, 20).unwrap();
        s.send("123#").unwrap();
        let pkts: Vec<DtmfPacket> = run_sender(&mut s, 4_294_960_000, 60).into_iter().filter_map(|(_, p)| p).collect();
        assert_eq!(pkts.len(), 4 * 7);
        assert!(s.is_idle());
        let mut r = DtmfReceiver::new(8000).unwrap();
        let events = receive_all(&mut r, &pkts);
        let digits: String = events.iter().map(|e| e.digit).collect();
        assert_eq!(digits, "123#");
        assert!(events.iter().all(|e| e.duration_ms == 100));
        // Timestamps wrapped around 2^32 during the run and ordering still held.
        assert!(events.windows(2).all(|w| w[0].rtp_timestamp != w[1].rtp_timestamp));
    }

    #[test]
    fn triplicated_end_and_reordered_update_yield_one_event() {
        let mut r = DtmfReceiver::new(8000).unwrap();
        let ts = 16000;
        let pk = |end, duration| EventPayload { event: 9, end, volume: 10, duration }.to_bytes();
        r.handle_packet(ts, true, &pk(false, 160)).unwrap();
        r.handle_packet(ts, false, &pk(false, 480)).unwrap(); // 320 is late, below
        r.handle_packet(ts, false, &pk(false, 320)).unwrap();
        r.handle_packet(ts, false, &pk(false, 640)).unwrap();
        r.handle_packet(ts, false, &pk(true, 800)).unwrap();
        r.handle_packet(ts, false, &pk(true, 800)).unwrap();
        r.handle_packet(ts, false, &pk(false, 640)).unwrap(); // very late update
        r.handle_packet(ts, false, &pk(true, 800)).unwrap();
        r.handle_packet(ts, false, &pk(true, 800)).unwrap(); // network duplicate
        assert_eq!(r.poll_event(), Some(DtmfEvent { digit: '9', duration_ms: 100, rtp_timestamp: ts }));
        assert_eq!(r.poll_event(), None);
        r.flush();
        assert_eq!(r.poll_event(), None);
    }

    #[test]
    fn lost_start_and_lost_ends() {
        let mut r = DtmfReceiver::new(8000).unwrap();
        let pk = |event, end, duration| EventPayload { event, end, volume: 10, duration }.to_bytes();
        // '4': start lost, all end packets lost.
        r.handle_packet(100, false, &pk(4, false, 320)).unwrap();
        r.handle_packet(100, false, &pk(4, false, 480)).unwrap();
        assert_eq!(r.poll_event(), None);
        // '*' starts: '4' is reported with what was seen.
        r.handle_packet(2000, true, &pk(10, false, 160)).unwrap();
        assert_eq!(r.poll_event().map(|e| (e.digit, e.duration_ms)), Some(('4', 60)));
        // A stale packet of '4' changes nothing.
        r.handle_packet(100, false, &pk(4, true, 800)).unwrap();
        assert_eq!(r.poll_event(), None);
        // The stream stops before '*' ends.
        r.flush();
        assert_eq!(r.poll_event().map(|e| (e.digit, e.duration_ms)), Some(('*', 20)));
        // A non-DTMF event (16, flash) is not reported, and its repeats stay silent.
        r.handle_packet(5000, true, &pk(16, true, 800)).unwrap();
        r.handle_packet(5000, false, &pk(16, true, 800)).unwrap();
        assert_eq!(r.poll_event(), None);
        // Garbage is an error, not a panic, and changes nothing.
        assert_eq!(r.handle_packet(6000, true, &[1, 2]), Err(DtmfError::Truncated(2)));
        assert_eq!(r.poll_event(), None);
    }

    #[test]
    fn lossy_round_trip_keeps_one_event_per_key() {
        // Deliver each packet twice, drop the first and second end packets, swap neighbours.
        let mut s = DtmfSender::new(8000, 20).unwrap();
        s.send("0A*").unwrap();
        let pkts: Vec<DtmfPacket> = run_sender(&mut s, 0, 40).into_iter().filter_map(|(_, p)| p).collect();
        let mut wire: Vec<DtmfPacket> = Vec::new();
        for chunk in pkts.chunks(7) {
            let mut c: Vec<DtmfPacket> = chunk[..5].iter().chain(&chunk[6..]).copied().collect();
            c.swap(1, 2);
            c.remove(4); // first end packet lost: only the third copy arrives
            for p in c {
                wire.push(p);
                wire.push(p);
            }
        }
        let mut r = DtmfReceiver::new(8000).unwrap();
        let events = receive_all(&mut r, &wire);
        let got: Vec<(char, u32)> = events.iter().map(|e| (e.digit, e.duration_ms)).collect();
        assert_eq!(got, [('0', 100), ('A', 100), ('*', 100)]);
    }
}
