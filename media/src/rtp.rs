//! RTP sessions (RFC 3550): our outgoing stream, validation and statistics of the peer's
//! stream, and symmetric RTP latching.
//!
//! - [`RtpSender`] numbers and stamps our packets. Sequence numbers and timestamps stay
//!   continuous whatever feeds it (a file, the agent bridge, echo): the source can change,
//!   the stream does not. Silence and hold advance the timestamp through [`RtpSender::skip`];
//!   the first packet of each talkspurt carries the marker bit.
//! - [`RtpReceiver`] parses with `rtp-rs`, checks version and payload type, runs the RFC 3550
//!   A.1 sequence validation (probation, `MAX_DROPOUT`, `MAX_MISORDER`), keeps the A.3 loss
//!   figures and the A.8 interarrival jitter, and follows an SSRC change.
//! - [`Latch`] picks where our RTP goes: the SDP address until valid packets arrive from
//!   somewhere else, then their source (symmetric RTP, RFC 4961), without flapping.
//!
//! Nothing here reads the clock: arrival times come in as `now`. The receive path does not
//! allocate; a packet's payload is a slice of the datagram's `Bytes`.

use bytes::{Bytes, BytesMut};
use rtp_rs::{RtpPacketBuilder, RtpReader, RtpReaderError};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// RFC 3550 A.1: packets in sequence needed before a new source is valid.
pub const MIN_SEQUENTIAL: u16 = 2;
/// RFC 3550 A.1: the largest forward jump still taken as the same sequence.
pub const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: the largest backward step still taken as a reordered packet.
pub const MAX_MISORDER: u16 = 100;
const RTP_SEQ_MOD: u32 = 1 << 16;

/// Our outgoing RTP stream: SSRC, sequence numbers, timestamps, marker bit and the
/// counts an RTCP sender report needs.
#[derive(Debug, Clone)]
pub struct RtpSender {
    ssrc: u32,
    seq: u16,
    timestamp: u32,
    talkspurt_start: bool,
    packets: u32,
    octets: u32,
}

/// What an RTCP sender report says about our stream (RFC 3550 §6.4.1), less the NTP time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderStats {
    /// The RTP timestamp of the next packet: the media time that corresponds to "now"
    /// when packets are paced in real time.
    pub rtp_timestamp: u32,
    /// Packets sent since the start (wraps at 2^32, as on the wire).
    pub packet_count: u32,
    /// Payload octets sent since the start (wraps at 2^32, as on the wire).
    pub octet_count: u32,
}

impl RtpSender {
    /// A stream with our SSRC and the random initial sequence number and timestamp the
    /// caller drew (RFC 3550 §5.1: both SHOULD be random; no RNG lives here).
    pub fn new(ssrc: u32, initial_seq: u16, initial_timestamp: u32) -> RtpSender {
        RtpSender { ssrc, seq: initial_seq, timestamp: initial_timestamp, talkspurt_start: true, packets: 0, octets: 0 }
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// The sequence number the next packet will carry.
    pub fn next_seq(&self) -> u16 {
        self.seq
    }

    /// The timestamp the next packet will carry.
    pub fn next_timestamp(&self) -> u32 {
        self.timestamp
    }

    /// One RTP packet (header and payload) carrying `samples` of media, stamped with the
    /// current timestamp; the timestamp then advances by `samples`. The marker bit is set
    /// on the first packet of the stream, the first after [`skip`](Self::skip), and
    /// whenever `marker_hint` says a talkspurt starts (the caller's VAD, a new source).
    pub fn packetize(&mut self, payload_type: u8, payload: &[u8], samples: u32, marker_hint: bool) -> Bytes {
        let ts = self.timestamp;
        let marker = marker_hint || self.talkspurt_start;
        let packet = self.build(payload_type, payload, ts, marker);
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.talkspurt_start = false;
        packet
    }

    /// One packet with an explicit timestamp that does not move the stream's clock: the
    /// RFC 4733 telephone-event packets of one event all carry the event's start time.
    /// Advance the clock for the event's duration with [`skip`](Self::skip) afterwards.
    pub fn packetize_at(&mut self, payload_type: u8, payload: &[u8], timestamp: u32, marker: bool) -> Bytes {
        self.build(payload_type, payload, timestamp, marker)
    }

    /// Let `samples` of media time pass without sending (silence suppression, hold, a gap
    /// between sources): the timestamp advances, the sequence number does not (RFC 3550
    /// §5.1), and the next packet starts a talkspurt.
    pub fn skip(&mut self, samples: u32) {
        self.timestamp = self.timestamp.wrapping_add(samples);
        self.talkspurt_start = true;
    }

    /// Figures for our next RTCP sender report.
    pub fn stats(&self) -> SenderStats {
        SenderStats { rtp_timestamp: self.timestamp, packet_count: self.packets, octet_count: self.octets }
    }

    fn build(&mut self, payload_type: u8, payload: &[u8], timestamp: u32, marker: bool) -> Bytes {
        let builder = RtpPacketBuilder::new()
            .payload_type(payload_type & 0x7f)
            .marked(marker)
            .sequence(self.seq.into())
            .ssrc(self.ssrc)
            .timestamp(timestamp)
            .payload(payload);
        let mut buf = BytesMut::zeroed(builder.target_length());
        // The payload type is masked to 7 bits and there is no extension or padding, so
        // the builder's checks cannot fail; the buffer has its target length.
        let n = builder.build_into_unchecked(&mut buf);
        buf.truncate(n);
        self.seq = self.seq.wrapping_add(1);
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload.len() as u32);
        buf.freeze()
    }
}

/// Why a received datagram was not passed on as a valid RTP packet. Each is counted in
/// [`ReceiveStats`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpDrop {
    /// Not a parseable RTP version 2 packet.
    #[error("malformed RTP packet: {0}")]
    Malformed(&'static str),
    /// A payload type that was not negotiated.
    #[error("payload type {0} not negotiated")]
    PayloadType(u8),
    /// A new source (first packets, or an SSRC change) still on probation (RFC 3550 A.1).
    #[error("source {ssrc:#010x} on probation")]
    Probation {
        /// The SSRC on probation.
        ssrc: u32,
    },
    /// A sequence jump beyond `MAX_DROPOUT`; the next packet in sequence after it resyncs.
    #[error("sequence number {0} out of range")]
    BadSequence(u16),
}

/// How a [`RtpReceiver`] checks packets.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// The RTP clock rate of the negotiated audio codec (8000 for G.711, 48000 for Opus).
    pub clock_rate: u32,
    /// Payload types accepted (the negotiated set, including telephone-event).
    pub payload_types: Vec<u8>,
    /// The telephone-event payload type: accepted, but left out of the jitter figure since
    /// all packets of an event carry one timestamp (RFC 4733 §2.5.1.2).
    pub event_payload_type: Option<u8>,
    /// Packets in sequence before a new source is valid (RFC 3550 A.1 `MIN_SEQUENTIAL`);
    /// 1 accepts the first packet.
    pub probation: u16,
}

impl ReceiverConfig {
    /// A config for one codec at `clock_rate` with the given payload types and the RFC 3550
    /// probation of [`MIN_SEQUENTIAL`] packets.
    pub fn new(clock_rate: u32, payload_types: &[u8]) -> ReceiverConfig {
        ReceiverConfig {
            clock_rate,
            payload_types: payload_types.to_vec(),
            event_payload_type: None,
            probation: MIN_SEQUENTIAL,
        }
    }
}

/// A valid RTP packet from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// The payload type.
    pub payload_type: u8,
    /// The marker bit.
    pub marker: bool,
    /// The 16-bit sequence number.
    pub seq: u16,
    /// The RTP timestamp.
    pub timestamp: u32,
    /// The SSRC.
    pub ssrc: u32,
    /// The payload, padding removed: a slice of the datagram, not a copy.
    pub payload: Bytes,
    /// True on the first valid packet of a source: the first one, after an SSRC change or
    /// after a resync on a sequence jump. The caller resets its jitter buffer then.
    pub new_source: bool,
}

/// Receive statistics for the call's stats (RFC 3550 A.3, A.8, plus drop counts).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReceiveStats {
    /// The current source's SSRC.
    pub ssrc: Option<u32>,
    /// Valid packets received (all sources).
    pub packets: u64,
    /// Payload octets of valid packets (all sources).
    pub bytes: u64,
    /// Packets expected from the current source (A.3: extended highest seq − base + 1).
    pub expected: u32,
    /// Packets lost from the current source (A.3 cumulative lost; negative with duplicates).
    pub lost: i64,
    /// The fraction lost in the last RTCP interval, in 1/256 (A.3).
    pub fraction_lost: u8,
    /// The A.8 interarrival jitter, in timestamp units.
    pub jitter: u32,
    /// The A.8 interarrival jitter in milliseconds.
    pub jitter_ms: f64,
    /// Datagrams that were not valid RTP.
    pub malformed: u64,
    /// Packets with a payload type outside the negotiated set.
    pub wrong_payload_type: u64,
    /// Packets dropped while a source was on probation.
    pub probation: u64,
    /// Packets dropped for a sequence jump.
    pub bad_sequence: u64,
    /// Sequence resyncs after a confirmed jump.
    pub resyncs: u32,
    /// SSRC changes after the first source.
    pub ssrc_changes: u32,
}

/// RFC 3550 A.1 per-source sequence state, A.3 counters and A.8 jitter.
#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Relative transit time of the last packet (A.8), `None` right after a (re)start.
    transit: Option<u32>,
    /// Jitter ×16 (A.8 integer form).
    jitter16: u32,
}

impl Source {
    fn new(ssrc: u32, seq: u16) -> Source {
        let mut s = Source {
            ssrc,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter16: 0,
        };
        s.init_seq(seq);
        s
    }

    /// A.1 `init_seq`.
    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1; // so seq == bad_seq is false
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        self.transit = None;
    }

    /// A.1 `update_seq` after probation: `Ok(resynced)` or the drop.
    fn update_seq(&mut self, seq: u16) -> Result<bool, RtpDrop> {
        let udelta = seq.wrapping_sub(self.max_seq);
        let mut resynced = false;
        if udelta < MAX_DROPOUT {
            // In order, with permissible gap.
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            // The sequence number made a very large jump.
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets: assume the other side restarted without telling us.
                self.init_seq(seq);
                resynced = true;
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return Err(RtpDrop::BadSequence(seq));
            }
        }
        // else: duplicate or reordered packet, counted as received (A.1).
        self.received = self.received.wrapping_add(1);
        Ok(resynced)
    }

    fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    fn expected(&self) -> u32 {
        self.extended_max().wrapping_sub(self.base_seq).wrapping_add(1)
    }

    fn lost(&self) -> i64 {
        i64::from(self.expected()) - i64::from(self.received)
    }

    /// A.8, integer form.
    fn update_jitter(&mut self, arrival: u32, timestamp: u32) {
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(prev) = self.transit {
            let d = (transit.wrapping_sub(prev) as i32).unsigned_abs();
            self.jitter16 = self.jitter16.wrapping_add(d).wrapping_sub((self.jitter16 + 8) >> 4);
        }
        self.transit = Some(transit);
    }
}

/// A source that sent one or more packets in sequence but has not finished probation.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    ssrc: u32,
    seq: u16,
    count: u16,
}

/// The reception figures for one RTCP report block (RFC 3550 §6.4.1), without LSR/DLSR,
/// which come from the RTCP side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reception {
    /// The source reported on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost, clamped to the 24-bit signed range.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
}

/// Validation and statistics of the peer's RTP stream.
#[derive(Debug, Clone)]
pub struct RtpReceiver {
    clock_rate: u32,
    payload_types: u128,
    event_pt: Option<u8>,
    probation: u16,
    source: Option<Source>,
    candidate: Option<Candidate>,
    epoch: Option<Instant>,
    stats: ReceiveStats,
}

impl RtpReceiver {
    /// A receiver with the given config.
    pub fn new(config: ReceiverConfig) -> RtpReceiver {
        let mut payload_types = 0u128;
        for pt in &config.payload_types {
            payload_types |= 1u128 << (pt & 0x7f);
        }
        RtpReceiver {
            clock_rate: config.clock_rate.max(1),
            payload_types,
            event_pt: config.event_payload_type,
            probation: config.probation.max(1),
            source: None,
            candidate: None,
            epoch: None,
            stats: ReceiveStats::default(),
        }
    }

    /// Check one datagram that arrived at `now`. `Ok` is a valid packet of the current
    /// source, to go on to the jitter buffer (and to the [`Latch`]); `Err` says why not.
    pub fn receive(&mut self, datagram: &Bytes, now: Instant) -> Result<RtpPacket, RtpDrop> {
        let r = match RtpReader::new(datagram) {
            Ok(r) => r,
            Err(e) => {
                self.stats.malformed += 1;
                return Err(RtpDrop::Malformed(match e {
                    RtpReaderError::BufferTooShort(_) => "shorter than the header",
                    RtpReaderError::UnsupportedVersion(_) => "version is not 2",
                    RtpReaderError::HeadersTruncated { .. } => "CSRC list or extension truncated",
                    RtpReaderError::PaddingLengthInvalid(_) => "invalid padding length",
                }));
            }
        };
        let pt = r.payload_type();
        if self.payload_types & (1u128 << pt) == 0 {
            self.stats.wrong_payload_type += 1;
            return Err(RtpDrop::PayloadType(pt));
        }
        let ssrc = r.ssrc();
        let seq = u16::from(r.sequence_number());
        let timestamp = r.timestamp();
        let mut new_source = false;

        match &mut self.source {
            Some(src) if src.ssrc == ssrc => {
                // A packet of the current source breaks any other source's run.
                self.candidate = None;
                match src.update_seq(seq) {
                    Ok(resynced) => {
                        if resynced {
                            self.stats.resyncs += 1;
                            new_source = true;
                        }
                    }
                    Err(e) => {
                        self.stats.bad_sequence += 1;
                        return Err(e);
                    }
                }
            }
            _ => {
                // A.1 probation, run for the first source and for an SSRC change alike; the
                // current source stays until the new one has sent `probation` in a row.
                let count = match self.candidate {
                    Some(c) if c.ssrc == ssrc && seq == c.seq.wrapping_add(1) => c.count + 1,
                    _ => 1,
                };
                if count < self.probation {
                    self.candidate = Some(Candidate { ssrc, seq, count });
                    self.stats.probation += 1;
                    return Err(RtpDrop::Probation { ssrc });
                }
                self.candidate = None;
                if self.source.is_some() {
                    self.stats.ssrc_changes += 1;
                }
                let mut src = Source::new(ssrc, seq);
                src.received = 1;
                self.source = Some(src);
                new_source = true;
            }
        }

        let epoch = *self.epoch.get_or_insert(now);
        let arrival = to_clock(now.saturating_duration_since(epoch), self.clock_rate);
        // The source exists: it was matched or just created above.
        if let Some(src) = &mut self.source {
            if Some(pt) != self.event_pt {
                src.update_jitter(arrival, timestamp);
            }
        }
        let payload = datagram.slice_ref(r.payload());
        self.stats.packets += 1;
        self.stats.bytes += payload.len() as u64;
        Ok(RtpPacket { payload_type: pt, marker: r.mark(), seq, timestamp, ssrc, payload, new_source })
    }

    /// The figures for the report block of our next RTCP packet, or `None` before a
    /// source is valid. Starts a new interval for the fraction lost (A.3).
    pub fn reception(&mut self) -> Option<Reception> {
        let src = self.source.as_mut()?;
        let expected = src.expected();
        let expected_interval = expected.wrapping_sub(src.expected_prior);
        src.expected_prior = expected;
        let received_interval = src.received.wrapping_sub(src.received_prior);
        src.received_prior = src.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        self.stats.fraction_lost = fraction;
        Some(Reception {
            ssrc: src.ssrc,
            fraction_lost: fraction,
            cumulative_lost: src.lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            extended_highest_seq: src.extended_max(),
            jitter: src.jitter16 >> 4,
        })
    }

    /// The receive statistics now.
    pub fn stats(&self) -> ReceiveStats {
        let mut s = self.stats;
        if let Some(src) = &self.source {
            s.ssrc = Some(src.ssrc);
            s.expected = src.expected();
            s.lost = src.lost();
            s.jitter = src.jitter16 >> 4;
            s.jitter_ms = f64::from(s.jitter) * 1000.0 / f64::from(self.clock_rate);
        }
        s
    }
}

/// `d` in units of a `rate` Hz clock, modulo 2^32 (RTP timestamps wrap).
pub(crate) fn to_clock(d: Duration, rate: u32) -> u32 {
    let rate = u64::from(rate);
    d.as_secs().wrapping_mul(rate).wrapping_add(u64::from(d.subsec_nanos()) * rate / 1_000_000_000) as u32
}

/// Symmetric RTP latching (RFC 4961, "comedia"): where our RTP and RTCP go.
///
/// Starts at the address from the peer's SDP. After `required` consecutive valid packets
/// from one other address, switches there; a valid packet from the current address resets
/// the count, so one stray packet, or two interleaved sources, never move it.
#[derive(Debug, Clone)]
pub struct Latch {
    remote: SocketAddr,
    candidate: Option<(SocketAddr, u8)>,
    required: u8,
    switches: u32,
}

impl Latch {
    /// The consecutive packets from a new address needed to switch, by default.
    pub const DEFAULT_REQUIRED: u8 = 2;

    /// A latch on the SDP address `sdp_remote`, switching after `required` (at least 1)
    /// consecutive valid packets from another address.
    pub fn new(sdp_remote: SocketAddr, required: u8) -> Latch {
        Latch { remote: sdp_remote, candidate: None, required: required.max(1), switches: 0 }
    }

    /// Where to send now.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Times the latch moved.
    pub fn switches(&self) -> u32 {
        self.switches
    }

    /// A valid packet (one [`RtpReceiver::receive`] accepted) came from `from`. True when
    /// the latch switched to `from` on this packet.
    pub fn on_valid_packet(&mut self, from: SocketAddr) -> bool {
        if from == self.remote {
            self.candidate = None;
            return false;
        }
        let count = match self.candidate {
            Some((addr, n)) if addr == from => n.saturating_add(1),
            _ => 1,
        };
        if count >= self.required {
            self.remote = from;
            self.candidate = None;
            self.switches += 1;
            true
        } else {
            self.candidate = Some((from, count));
            false
        }
    }

    /// The peer's SDP changed (re-INVITE): start again from its new address.
    pub fn reset(&mut self, sdp_remote: SocketAddr) {
        self.remote = sdp_remote;
        self.candidate = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PCMU: u8 = 0;

    fn pkt(ssrc: u32, seq: u16, ts: u32) -> Bytes {
        let b = RtpPacketBuilder::new()
            .payload_type(PCMU)
            .sequence(seq.into())
            .ssrc(ssrc)
            .timestamp(ts)
            .payload(&[0xffu8; 160])
            .build()
            .unwrap();
        Bytes::from(b)
    }

    fn receiver() -> RtpReceiver {
        RtpReceiver::new(ReceiverConfig::new(8000, &[PCMU, 101]))
    }

    #[test]
    fn sender_continuous_with_marker_on_talkspurts() {
        let mut tx = RtpSender::new(0x1234, 65534, u32::MAX - 159);
        let p = tx.packetize(PCMU, &[1; 160], 160, false);
        let r = RtpReader::new(&p).unwrap();
        assert!(r.mark(), "first packet starts a talkspurt");
        assert_eq!((u16::from(r.sequence_number()), r.timestamp(), r.ssrc()), (65534, u32::MAX - 159, 0x1234));
        assert_eq!(r.payload(), &[1; 160]);
        let p = tx.packetize(PCMU, &[2; 160], 160, false);
        let r = RtpReader::new(&p).unwrap();
        assert!(!r.mark());
        assert_eq!((u16::from(r.sequence_number()), r.timestamp()), (65535, 0));
        // Hold for one second: timestamp moves on, sequence does not.
        tx.skip(8000);
        let p = tx.packetize(PCMU, &[3; 160], 160, false);
        let r = RtpReader::new(&p).unwrap();
        assert!(r.mark());
        assert_eq!((u16::from(r.sequence_number()), r.timestamp()), (0, 160 + 8000));
        // A source switch hinted by the caller: same stream, marker set.
        let p = tx.packetize(PCMU, &[4; 160], 160, true);
        let r = RtpReader::new(&p).unwrap();
        assert!(r.mark());
        assert_eq!((u16::from(r.sequence_number()), r.timestamp()), (1, 320 + 8000));
        assert_eq!(tx.stats(), SenderStats { rtp_timestamp: 480 + 8000, packet_count: 4, octet_count: 640 });
        // An event packet keeps its own timestamp and leaves the stream clock alone.
        let p = tx.packetize_at(101, &[0, 0, 0, 160], 480 + 8000, true);
        let r = RtpReader::new(&p).unwrap();
        assert_eq!((r.payload_type(), u16::from(r.sequence_number()), r.timestamp()), (101, 2, 8480));
        assert_eq!(tx.next_timestamp(), 8480);
    }

    #[test]
    fn probation_then_valid() {
        let mut rx = receiver();
        let t = Instant::now();
        assert_eq!(rx.receive(&pkt(7, 100, 0), t), Err(RtpDrop::Probation { ssrc: 7 }));
        let p = rx.receive(&pkt(7, 101, 160), t).unwrap();
        assert!(p.new_source);
        assert_eq!(p.payload.len(), 160);
        let p = rx.receive(&pkt(7, 102, 320), t).unwrap();
        assert!(!p.new_source);
        // Not in sequence during probation: both dropped, probation restarts.
        let mut rx = receiver();
        assert!(rx.receive(&pkt(8, 10, 0), t).is_err());
        assert!(rx.receive(&pkt(8, 20, 0), t).is_err());
        assert!(rx.receive(&pkt(8, 21, 0), t).is_ok());
        assert_eq!(rx.stats().probation, 2);
    }

    #[test]
    fn sequence_wraps() {
        let mut rx = receiver();
        let t = Instant::now();
        let mut seq = 65530u16;
        for i in 0..20u32 {
            let r = rx.receive(&pkt(1, seq, i * 160), t);
            assert!(i == 0 || r.is_ok(), "{seq}");
            seq = seq.wrapping_add(1);
        }
        let rep = rx.reception().unwrap();
        assert_eq!(rep.extended_highest_seq, (1 << 16) + 13);
        assert_eq!(rep.cumulative_lost, 0);
        assert_eq!(rx.stats().expected, 19);
    }

    #[test]
    fn big_jump_resyncs_after_two_in_sequence() {
        let mut rx = receiver();
        let t = Instant::now();
        for s in 0..10u16 {
            let _ = rx.receive(&pkt(1, s, 0), t);
        }
        assert_eq!(rx.receive(&pkt(1, 20000, 0), t), Err(RtpDrop::BadSequence(20000)));
        let p = rx.receive(&pkt(1, 20001, 0), t).unwrap();
        assert!(p.new_source);
        assert_eq!(rx.stats().resyncs, 1);
        assert!(rx.receive(&pkt(1, 20002, 0), t).is_ok());
        // Old stragglers within MAX_MISORDER are taken as reordered; a lone jump is dropped.
        assert!(rx.receive(&pkt(1, 19990, 0), t).is_ok());
        assert_eq!(rx.receive(&pkt(1, 40000, 0), t), Err(RtpDrop::BadSequence(40000)));
        assert!(rx.receive(&pkt(1, 20003, 0), t).is_ok());
    }

    #[test]
    fn ssrc_change_after_probation_no_flap() {
        let mut rx = receiver();
        let t = Instant::now();
        for s in 0..5u16 {
            let _ = rx.receive(&pkt(1, s, 0), t);
        }
        // A stray packet of another SSRC is dropped and does not disturb source 1.
        assert!(rx.receive(&pkt(2, 900, 0), t).is_err());
        assert!(rx.receive(&pkt(1, 5, 0), t).is_ok());
        assert!(rx.receive(&pkt(2, 901, 0), t).is_err(), "run broken by source 1");
        let p = rx.receive(&pkt(2, 902, 0), t).unwrap();
        assert!(p.new_source);
        let s = rx.stats();
        assert_eq!((s.ssrc, s.ssrc_changes, s.expected), (Some(2), 1, 1));
    }

    #[test]
    fn rejects_bad_version_and_payload_type() {
        let mut rx = receiver();
        let t = Instant::now();
        let mut v1 = pkt(1, 1, 0).to_vec();
        v1[0] = 0x40;
        assert!(matches!(rx.receive(&Bytes::from(v1), t), Err(RtpDrop::Malformed(_))));
        assert!(matches!(rx.receive(&Bytes::from_static(&[0x80, 0]), t), Err(RtpDrop::Malformed(_))));
        let mut pt8 = pkt(1, 1, 0).to_vec();
        pt8[1] = 8;
        assert_eq!(rx.receive(&Bytes::from(pt8), t), Err(RtpDrop::PayloadType(8)));
        let s = rx.stats();
        assert_eq!((s.malformed, s.wrong_payload_type), (2, 1));
    }

    #[test]
    fn five_percent_loss() {
        let mut rx = receiver();
        let t = Instant::now();
        // Packet 0 goes to probation; from packet 1 on, every 20th of 1000 is lost.
        let mut lost = 0;
        for s in 0..=1000u16 {
            if s > 1 && s < 1000 && s % 20 == 0 {
                lost += 1;
                continue;
            }
            let _ = rx.receive(&pkt(3, s, u32::from(s) * 160), t);
        }
        assert_eq!(lost, 49);
        let rep = rx.reception().unwrap();
        assert_eq!(rep.cumulative_lost, 49);
        assert_eq!(rep.fraction_lost, (49 * 256 / 1000) as u8);
        // Next interval: 100 more, 5 lost.
        for s in 1001..=1100u16 {
            // 1020, 1040, 1060, 1080 and 1100 lost; 1101 closes the interval.
            if s % 20 == 0 {
                continue;
            }
            let _ = rx.receive(&pkt(3, s, u32::from(s) * 160), t);
        }
        let _ = rx.receive(&pkt(3, 1101, 1101 * 160), t);
        let rep = rx.reception().unwrap();
        assert_eq!(rep.cumulative_lost, 54);
        assert_eq!(rep.fraction_lost, (5 * 256 / 101) as u8);
        assert_eq!(rx.stats().fraction_lost, 12);
    }

    #[test]
    fn jitter_constant_delay_is_zero() {
        let mut rx = receiver();
        let t0 = Instant::now();
        for i in 0..500u32 {
            let at = t0 + Duration::from_millis(u64::from(i) * 20 + 37);
            let _ = rx.receive(&pkt(1, i as u16, 1_000_000 + i * 160), at);
        }
        assert_eq!(rx.stats().jitter, 0);
    }

    #[test]
    fn jitter_alternating_delay() {
        // Delays alternate 40 ms and 20 ms: |D| = 20 ms = 160 units for every pair, and A.8
        // converges to that.
        let mut rx = receiver();
        let t0 = Instant::now();
        for i in 0..1000u32 {
            let delay = if i % 2 == 0 { 40 } else { 20 };
            let at = t0 + Duration::from_millis(u64::from(i) * 20 + delay);
            // The timestamp wraps along the way.
            let _ = rx.receive(&pkt(1, i as u16, (u32::MAX - 80_000).wrapping_add(i * 160)), at);
        }
        let s = rx.stats();
        assert!((155..=160).contains(&s.jitter), "{}", s.jitter);
        assert!((s.jitter_ms - 20.0).abs() < 1.0);
    }

    #[test]
    fn latch_switches_after_two_ignores_stray() {
        let sdp: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let nat: SocketAddr = "198.51.100.7:31000".parse().unwrap();
        let stray: SocketAddr = "203.0.113.9:5555".parse().unwrap();
        let mut l = Latch::new(sdp, Latch::DEFAULT_REQUIRED);
        assert!(!l.on_valid_packet(nat));
        assert_eq!(l.remote(), sdp);
        assert!(l.on_valid_packet(nat));
        assert_eq!(l.remote(), nat);
        // One stray, then the real source again: no move.
        assert!(!l.on_valid_packet(stray));
        assert!(!l.on_valid_packet(nat));
        assert!(!l.on_valid_packet(stray));
        assert_eq!(l.remote(), nat);
        // Interleaved sources never move it.
        for _ in 0..10 {
            l.on_valid_packet(nat);
            l.on_valid_packet(stray);
        }
        assert_eq!((l.remote(), l.switches()), (nat, 1));
        l.reset(sdp);
        assert_eq!(l.remote(), sdp);
    }
}
