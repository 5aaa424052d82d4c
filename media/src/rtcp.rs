//! RTCP (RFC 3550 §6): compound packets built and parsed here, the report schedule, and the
//! peer's reports turned into the call's stats.
//!
//! We send one compound packet about every 5 s: SR while we send media (RR otherwise) with
//! one report block about the peer's stream, then SDES CNAME; at the end the same with a
//! BYE. The peer's SR/RR become a [`RemoteReport`]; its round-trip time comes from the
//! LSR/DLSR fields echoing one of our SRs.
//!
//! Parsing never panics and never reads past a packet's declared length; a length that
//! disagrees with the datagram is an error. Wall-clock (NTP) time is an input: use
//! [`ntp_from_system_time`] in the driver. Round-trip times are measured with `now`
//! instants, so they do not depend on the wall clock.

use bytes::{BufMut, Bytes, BytesMut};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::rtp::{Reception, SenderStats};

/// RTCP packet type: sender report.
pub const PT_SR: u8 = 200;
/// RTCP packet type: receiver report.
pub const PT_RR: u8 = 201;
/// RTCP packet type: source description.
pub const PT_SDES: u8 = 202;
/// RTCP packet type: goodbye.
pub const PT_BYE: u8 = 203;
/// RTCP packet type: application-defined.
pub const PT_APP: u8 = 204;
const SDES_CNAME: u8 = 1;

/// The report interval RFC 3550 §6.2 gives as the minimum, and the one we use.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// Why an RTCP datagram was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcpError {
    /// Fewer octets than a header or a declared length needs.
    #[error("RTCP packet truncated")]
    Truncated,
    /// The version field is not 2.
    #[error("RTCP version {0}")]
    Version(u8),
    /// A packet's contents disagree with its header (report count, SDES items, padding).
    #[error("malformed RTCP {0} packet")]
    Malformed(u8),
    /// The compound packet does not start with an SR or RR (RFC 3550 §6.1, A.2).
    #[error("compound RTCP packet does not start with SR or RR")]
    NotCompound,
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source this block is about.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative number of packets lost (24-bit signed on the wire).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub extended_highest_seq: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
    /// The middle 32 bits of the NTP timestamp of the last SR received from the source (LSR).
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s (DLSR).
    pub delay_since_last_sr: u32,
}

/// The sender info of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderInfo {
    /// NTP timestamp: seconds since 1900 in the high 32 bits, fraction in the low 32.
    pub ntp: u64,
    /// The RTP timestamp corresponding to `ntp`.
    pub rtp_timestamp: u32,
    /// Packets sent.
    pub packet_count: u32,
    /// Payload octets sent.
    pub octet_count: u32,
}

/// One RTCP packet of a compound packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    /// Sender report.
    SenderReport {
        /// The sender's SSRC.
        ssrc: u32,
        /// Its sender info.
        info: SenderInfo,
        /// Report blocks (at most 31).
        reports: Vec<ReportBlock>,
    },
    /// Receiver report.
    ReceiverReport {
        /// The reporter's SSRC.
        ssrc: u32,
        /// Report blocks (at most 31).
        reports: Vec<ReportBlock>,
    },
    /// Source description; only CNAME is kept.
    Sdes {
        /// (SSRC, CNAME if the chunk has one) per chunk.
        chunks: Vec<(u32, Option<String>)>,
    },
    /// Goodbye.
    Bye {
        /// The sources leaving.
        sources: Vec<u32>,
        /// The reason, if given.
        reason: Option<String>,
    },
    /// Any other type (APP, feedback, XR): skipped.
    Other {
        /// Its packet type.
        packet_type: u8,
    },
}

impl RtcpPacket {
    /// Append this packet to `out`. Lists beyond the wire limits (31 blocks or sources,
    /// 255-octet strings) are cut to fit.
    pub fn write(&self, out: &mut BytesMut) {
        let start = out.len();
        match self {
            RtcpPacket::SenderReport { ssrc, info, reports } => {
                let n = reports.len().min(31);
                header(out, n as u8, PT_SR);
                out.put_u32(*ssrc);
                out.put_u64(info.ntp);
                out.put_u32(info.rtp_timestamp);
                out.put_u32(info.packet_count);
                out.put_u32(info.octet_count);
                reports[..n].iter().for_each(|b| write_block(out, b));
            }
            RtcpPacket::ReceiverReport { ssrc, reports } => {
                let n = reports.len().min(31);
                header(out, n as u8, PT_RR);
                out.put_u32(*ssrc);
                reports[..n].iter().for_each(|b| write_block(out, b));
            }
            RtcpPacket::Sdes { chunks } => {
                let n = chunks.len().min(31);
                header(out, n as u8, PT_SDES);
                for (ssrc, cname) in &chunks[..n] {
                    let chunk = out.len();
                    out.put_u32(*ssrc);
                    if let Some(c) = cname {
                        let c = &c.as_bytes()[..c.len().min(255)];
                        out.put_u8(SDES_CNAME);
                        out.put_u8(c.len() as u8);
                        out.put_slice(c);
                    }
                    // The item list ends with a null octet, then pads to 32 bits.
                    out.put_u8(0);
                    out.put_bytes(0, (4 - (out.len() - chunk) % 4) % 4);
                }
            }
            RtcpPacket::Bye { sources, reason } => {
                let n = sources.len().min(31);
                header(out, n as u8, PT_BYE);
                sources[..n].iter().for_each(|s| out.put_u32(*s));
                if let Some(r) = reason {
                    let r = &r.as_bytes()[..r.len().min(255)];
                    out.put_u8(r.len() as u8);
                    out.put_slice(r);
                    out.put_bytes(0, (4 - (out.len() - start) % 4) % 4);
                }
            }
            RtcpPacket::Other { packet_type } => header(out, 0, *packet_type),
        }
        let words = (out.len() - start) / 4 - 1;
        out[start + 2..start + 4].copy_from_slice(&(words as u16).to_be_bytes());
    }
}

fn header(out: &mut BytesMut, count: u8, pt: u8) {
    out.put_u8(0x80 | (count & 0x1f));
    out.put_u8(pt);
    out.put_u16(0); // length, filled in by `write`
}

fn write_block(out: &mut BytesMut, b: &ReportBlock) {
    out.put_u32(b.ssrc);
    let lost = b.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
    out.put_u32(u32::from(b.fraction_lost) << 24 | lost);
    out.put_u32(b.extended_highest_seq);
    out.put_u32(b.jitter);
    out.put_u32(b.last_sr);
    out.put_u32(b.delay_since_last_sr);
}

/// A compound RTCP packet made of `packets`, in order.
pub fn build_compound(packets: &[RtcpPacket]) -> Bytes {
    let mut out = BytesMut::with_capacity(128);
    packets.iter().for_each(|p| p.write(&mut out));
    out.freeze()
}

/// Parse a compound RTCP packet (RFC 3550 §6.1, validity checks of A.2): version 2 in
/// every packet, the first an SR or RR, padding only on the last, and lengths that add up
/// to the datagram exactly.
pub fn parse_compound(buf: &[u8]) -> Result<Vec<RtcpPacket>, RtcpError> {
    let mut packets = Vec::new();
    let mut rest = buf;
    if rest.is_empty() {
        return Err(RtcpError::Truncated);
    }
    while !rest.is_empty() {
        if rest.len() < 4 {
            return Err(RtcpError::Truncated);
        }
        let version = rest[0] >> 6;
        if version != 2 {
            return Err(RtcpError::Version(version));
        }
        let padding = rest[0] & 0x20 != 0;
        let count = usize::from(rest[0] & 0x1f);
        let pt = rest[1];
        let len = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if len > rest.len() {
            return Err(RtcpError::Truncated);
        }
        let mut body = &rest[4..len];
        rest = &rest[len..];
        if padding {
            // Only the last packet may be padded; the last octet counts the padding.
            let pad = usize::from(*body.last().ok_or(RtcpError::Malformed(pt))?);
            if !rest.is_empty() || pad == 0 || pad > body.len() {
                return Err(RtcpError::Malformed(pt));
            }
            body = &body[..body.len() - pad];
        }
        if packets.is_empty() && pt != PT_SR && pt != PT_RR {
            return Err(RtcpError::NotCompound);
        }
        packets.push(parse_one(pt, count, body)?);
    }
    Ok(packets)
}

fn parse_one(pt: u8, count: usize, body: &[u8]) -> Result<RtcpPacket, RtcpError> {
    let bad = RtcpError::Malformed(pt);
    let mut r = Reader(body);
    Ok(match pt {
        PT_SR => {
            let ssrc = r.u32().ok_or(bad.clone())?;
            let info = SenderInfo {
                ntp: r.u64().ok_or(bad.clone())?,
                rtp_timestamp: r.u32().ok_or(bad.clone())?,
                packet_count: r.u32().ok_or(bad.clone())?,
                octet_count: r.u32().ok_or(bad.clone())?,
            };
            let reports = blocks(&mut r, count).ok_or(bad)?;
            RtcpPacket::SenderReport { ssrc, info, reports }
        }
        PT_RR => {
            let ssrc = r.u32().ok_or(bad.clone())?;
            let reports = blocks(&mut r, count).ok_or(bad)?;
            RtcpPacket::ReceiverReport { ssrc, reports }
        }
        PT_SDES => {
            let mut chunks = Vec::with_capacity(count);
            for _ in 0..count {
                let start = r.0.len();
                let ssrc = r.u32().ok_or(bad.clone())?;
                let mut cname = None;
                loop {
                    let kind = r.u8().ok_or(bad.clone())?;
                    if kind == 0 {
                        break;
                    }
                    let n = usize::from(r.u8().ok_or(bad.clone())?);
                    let text = r.take(n).ok_or(bad.clone())?;
                    if kind == SDES_CNAME {
                        cname = Some(String::from_utf8_lossy(text).into_owned());
                    }
                }
                // Skip the null padding to the chunk's 32-bit boundary.
                let used = start - r.0.len();
                r.take((4 - used % 4) % 4).ok_or(bad.clone())?;
                chunks.push((ssrc, cname));
            }
            RtcpPacket::Sdes { chunks }
        }
        PT_BYE => {
            let mut sources = Vec::with_capacity(count);
            for _ in 0..count {
                sources.push(r.u32().ok_or(bad.clone())?);
            }
            let reason = match r.u8() {
                Some(n) => Some(String::from_utf8_lossy(r.take(usize::from(n)).ok_or(bad)?).into_owned()),
                None => None,
            };
            RtcpPacket::Bye { sources, reason }
        }
        _ => RtcpPacket::Other { packet_type: pt },
    })
}

fn blocks(r: &mut Reader<'_>, count: usize) -> Option<Vec<ReportBlock>> {
    let mut v = Vec::with_capacity(count);
    for _ in 0..count {
        let ssrc = r.u32()?;
        let word = r.u32()?;
        // Sign-extend the 24-bit cumulative loss.
        let cumulative_lost = ((word << 8) as i32) >> 8;
        v.push(ReportBlock {
            ssrc,
            fraction_lost: (word >> 24) as u8,
            cumulative_lost,
            extended_highest_seq: r.u32()?,
            jitter: r.u32()?,
            last_sr: r.u32()?,
            delay_since_last_sr: r.u32()?,
        });
    }
    Some(v)
}

/// A bounds-checked cursor: every read is `None` past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from(self.u32()?) << 32 | u64::from(self.u32()?))
    }
}

/// RFC 5761 §4 demultiplexing for rtcp-mux: an RTCP packet has its second octet (the
/// packet type, where RTP has marker and payload type) in 192–223.
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 2 && (192..=223).contains(&packet[1])
}

/// The 64-bit NTP timestamp (seconds since 1900 in the high word) of a wall-clock time.
pub fn ntp_from_system_time(t: SystemTime) -> u64 {
    const UNIX_TO_NTP: u64 = 2_208_988_800;
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs().wrapping_add(UNIX_TO_NTP);
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    secs << 32 | frac
}

/// The "compact" middle 32 bits of an NTP timestamp, as in LSR.
fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// When to send the next report: `interval` scaled by a factor uniform in [0.5, 1.5)
/// (RFC 3550 §6.3.1) drawn from the caller's random number; the first report comes after
/// half of that (§6.2). Timer reconsideration is left out: a call has two members.
#[derive(Debug, Clone)]
pub struct RtcpScheduler {
    interval: Duration,
    next: Instant,
}

impl RtcpScheduler {
    /// A schedule starting at `now`.
    pub fn new(now: Instant, interval: Duration, random: u32) -> RtcpScheduler {
        RtcpScheduler { interval, next: now + randomized(interval, random) / 2 }
    }

    /// When the next report is due.
    pub fn next_report(&self) -> Instant {
        self.next
    }

    /// Whether a report is due at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        now >= self.next
    }

    /// A report went out at `now`: schedule the next one.
    pub fn sent(&mut self, now: Instant, random: u32) {
        self.next = now + randomized(self.interval, random);
    }
}

fn randomized(interval: Duration, random: u32) -> Duration {
    // 0.5 + random / 2^32, in [0.5, 1.5).
    let factor = 0.5 + f64::from(random) / 4_294_967_296.0;
    interval.mul_f64(factor)
}

/// What the peer's last report said about our stream, for the call's stats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemoteReport {
    /// When the report arrived.
    pub received_at: Instant,
    /// The peer's SSRC.
    pub reporter: u32,
    /// Fraction of our packets the peer lost in its last interval, 0.0–1.0.
    pub fraction_lost: f64,
    /// Our packets the peer lost in total.
    pub cumulative_lost: i32,
    /// Extended highest sequence number the peer received from us.
    pub extended_highest_seq: u32,
    /// The interarrival jitter the peer measured, in timestamp units.
    pub jitter: u32,
    /// The same in milliseconds, at our clock rate.
    pub jitter_ms: f64,
    /// The round-trip time, when the block echoed one of our recent SRs (RFC 3550 §6.4.1).
    pub round_trip: Option<Duration>,
}

/// Something the peer's RTCP told us.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RtcpEvent {
    /// A report block about our stream; also kept as [`RtcpSession::remote_report`].
    Report(RemoteReport),
    /// The peer sent an SR.
    SenderReport {
        /// The peer's SSRC.
        ssrc: u32,
        /// Its sender info.
        info: SenderInfo,
    },
    /// The peer's CNAME.
    Cname {
        /// The peer's SSRC.
        ssrc: u32,
        /// Its CNAME.
        cname: String,
    },
    /// The peer sent BYE.
    Bye {
        /// The reason, if given.
        reason: Option<String>,
    },
}

/// One call's RTCP: builds our compound reports on schedule and reads the peer's.
#[derive(Debug, Clone)]
pub struct RtcpSession {
    ssrc: u32,
    cname: String,
    clock_rate: u32,
    scheduler: RtcpScheduler,
    /// Our recent SRs: (LSR value, when sent), for the RTT.
    sent_srs: [Option<(u32, Instant)>; 4],
    sent_idx: usize,
    /// The peer's last SR: (its middle NTP bits, when it arrived), for our LSR/DLSR.
    peer_sr: Option<(u32, Instant)>,
    remote: Option<RemoteReport>,
    events: std::collections::VecDeque<RtcpEvent>,
    /// Compound packets sent.
    pub sent: u64,
    /// Compound packets received and parsed.
    pub received: u64,
    /// Datagrams refused by the parser.
    pub malformed: u64,
}

impl RtcpSession {
    /// A session for our `ssrc` and `cname`, audio at `clock_rate`, the first report due
    /// about 2.5 s after `now` (`random`: any random u32).
    pub fn new(ssrc: u32, cname: &str, clock_rate: u32, now: Instant, random: u32) -> RtcpSession {
        RtcpSession {
            ssrc,
            cname: cname.to_owned(),
            clock_rate: clock_rate.max(1),
            scheduler: RtcpScheduler::new(now, REPORT_INTERVAL, random),
            sent_srs: [None; 4],
            sent_idx: 0,
            peer_sr: None,
            remote: None,
            events: Default::default(),
            sent: 0,
            received: 0,
            malformed: 0,
        }
    }

    /// When the next report is due: the driver's timer.
    #[must_use]
    pub fn poll_timeout(&self) -> Instant {
        self.scheduler.next_report()
    }

    /// The scheduled report at `now`, if one is due: see [`report`](Self::report).
    pub fn poll_report(
        &mut self,
        now: Instant,
        ntp: u64,
        sender: Option<SenderStats>,
        reception: Option<Reception>,
        random: u32,
    ) -> Option<Bytes> {
        if !self.scheduler.is_due(now) {
            return None;
        }
        self.scheduler.sent(now, random);
        Some(self.report(now, ntp, sender, reception))
    }

    /// A compound report now: SR if `sender` (we sent media since the last report), RR
    /// otherwise, with a block from `reception` ([`crate::rtp::RtpReceiver::reception`]),
    /// then SDES CNAME. `ntp` is the wall-clock time from [`ntp_from_system_time`].
    pub fn report(
        &mut self,
        now: Instant,
        ntp: u64,
        sender: Option<SenderStats>,
        reception: Option<Reception>,
    ) -> Bytes {
        let mut out = BytesMut::with_capacity(128);
        self.write_report(&mut out, now, ntp, sender, reception);
        out.freeze()
    }

    /// The last compound packet: the report, SDES and BYE with an optional reason.
    pub fn bye(
        &mut self,
        now: Instant,
        ntp: u64,
        sender: Option<SenderStats>,
        reception: Option<Reception>,
        reason: Option<&str>,
    ) -> Bytes {
        let mut out = BytesMut::with_capacity(160);
        self.write_report(&mut out, now, ntp, sender, reception);
        RtcpPacket::Bye { sources: vec![self.ssrc], reason: reason.map(str::to_owned) }.write(&mut out);
        out.freeze()
    }

    fn write_report(
        &mut self,
        out: &mut BytesMut,
        now: Instant,
        ntp: u64,
        sender: Option<SenderStats>,
        reception: Option<Reception>,
    ) {
        let reports: Vec<ReportBlock> = reception.map(|r| self.block(r, now)).into_iter().collect();
        match sender {
            Some(s) => {
                let info = SenderInfo {
                    ntp,
                    rtp_timestamp: s.rtp_timestamp,
                    packet_count: s.packet_count,
                    octet_count: s.octet_count,
                };
                self.sent_srs[self.sent_idx] = Some((ntp_middle(ntp), now));
                self.sent_idx = (self.sent_idx + 1) % self.sent_srs.len();
                RtcpPacket::SenderReport { ssrc: self.ssrc, info, reports }.write(out);
            }
            None => RtcpPacket::ReceiverReport { ssrc: self.ssrc, reports }.write(out),
        }
        RtcpPacket::Sdes { chunks: vec![(self.ssrc, Some(self.cname.clone()))] }.write(out);
        self.sent += 1;
    }

    fn block(&self, r: Reception, now: Instant) -> ReportBlock {
        let (last_sr, delay_since_last_sr) = match self.peer_sr {
            Some((lsr, at)) => {
                let d = now.saturating_duration_since(at);
                (lsr, (d.as_secs_f64() * 65536.0).min(f64::from(u32::MAX)) as u32)
            }
            None => (0, 0),
        };
        ReportBlock {
            ssrc: r.ssrc,
            fraction_lost: r.fraction_lost,
            cumulative_lost: r.cumulative_lost,
            extended_highest_seq: r.extended_highest_seq,
            jitter: r.jitter,
            last_sr,
            delay_since_last_sr,
        }
    }

    /// A datagram the demux ([`is_rtcp`]) called RTCP arrived at `now`. Its reports update
    /// [`remote_report`](Self::remote_report); what it said is queued for
    /// [`poll_event`](Self::poll_event).
    pub fn handle_packet(&mut self, buf: &[u8], now: Instant) -> Result<(), RtcpError> {
        let packets = match parse_compound(buf) {
            Ok(p) => p,
            Err(e) => {
                self.malformed += 1;
                return Err(e);
            }
        };
        self.received += 1;
        for p in packets {
            match p {
                RtcpPacket::SenderReport { ssrc, info, reports } => {
                    self.peer_sr = Some((ntp_middle(info.ntp), now));
                    self.events.push_back(RtcpEvent::SenderReport { ssrc, info });
                    self.take_blocks(ssrc, &reports, now);
                }
                RtcpPacket::ReceiverReport { ssrc, reports } => self.take_blocks(ssrc, &reports, now),
                RtcpPacket::Sdes { chunks } => {
                    for (ssrc, cname) in chunks {
                        if let Some(cname) = cname {
                            self.events.push_back(RtcpEvent::Cname { ssrc, cname });
                        }
                    }
                }
                RtcpPacket::Bye { reason, .. } => self.events.push_back(RtcpEvent::Bye { reason }),
                RtcpPacket::Other { .. } => {}
            }
        }
        Ok(())
    }

    fn take_blocks(&mut self, reporter: u32, reports: &[ReportBlock], now: Instant) {
        for b in reports.iter().filter(|b| b.ssrc == self.ssrc) {
            // RTT = arrival − LSR − DLSR (§6.4.1), with our send instant standing in for LSR.
            let round_trip =
                self.sent_srs.iter().flatten().find(|(lsr, _)| b.last_sr != 0 && *lsr == b.last_sr).map(|(_, sent)| {
                    let dlsr = Duration::from_secs_f64(f64::from(b.delay_since_last_sr) / 65536.0);
                    now.saturating_duration_since(*sent).saturating_sub(dlsr)
                });
            let report = RemoteReport {
                received_at: now,
                reporter,
                fraction_lost: f64::from(b.fraction_lost) / 256.0,
                cumulative_lost: b.cumulative_lost,
                extended_highest_seq: b.extended_highest_seq,
                jitter: b.jitter,
                jitter_ms: f64::from(b.jitter) * 1000.0 / f64::from(self.clock_rate),
                round_trip,
            };
            self.remote = Some(report);
            self.events.push_back(RtcpEvent::Report(report));
        }
    }

    /// The peer's last report about our stream.
    pub fn remote_report(&self) -> Option<RemoteReport> {
        self.remote
    }

    /// The next thing the peer's RTCP told us.
    pub fn poll_event(&mut self) -> Option<RtcpEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> ReportBlock {
        ReportBlock {
            ssrc: 0xdead_beef,
            fraction_lost: 13,
            cumulative_lost: -3,
            extended_highest_seq: 0x0001_0010,
            jitter: 160,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65536,
        }
    }

    fn compound() -> Vec<RtcpPacket> {
        vec![
            RtcpPacket::SenderReport {
                ssrc: 1,
                info: SenderInfo {
                    ntp: 0xe000_0000_8000_0000,
                    rtp_timestamp: 12345,
                    packet_count: 50,
                    octet_count: 8000,
                },
                reports: vec![block()],
            },
            RtcpPacket::Sdes { chunks: vec![(1, Some("dialtone@192.0.2.1".into()))] },
            RtcpPacket::Bye { sources: vec![1], reason: Some("hangup".into()) },
        ]
    }

    #[test]
    fn round_trip_sr_rr_sdes_bye() {
        let p = compound();
        let wire = build_compound(&p);
        assert_eq!(wire.len() % 4, 0);
        assert_eq!(parse_compound(&wire).unwrap(), p);

        let rr = vec![
            RtcpPacket::ReceiverReport {
                ssrc: 9,
                reports: vec![block(), ReportBlock { cumulative_lost: 0x7f_ffff, ..block() }],
            },
            RtcpPacket::Sdes { chunks: vec![(9, Some("abc".into())), (10, None)] },
            RtcpPacket::Bye { sources: vec![9, 10], reason: None },
        ];
        assert_eq!(parse_compound(&build_compound(&rr)).unwrap(), rr);
        // An empty RR and an unknown type in the middle.
        let odd = vec![RtcpPacket::ReceiverReport { ssrc: 9, reports: vec![] }, RtcpPacket::Other { packet_type: 205 }];
        assert_eq!(parse_compound(&build_compound(&odd)).unwrap(), odd);
    }

    #[test]
    fn every_truncation_is_an_error_or_a_whole_prefix() {
        let p = compound();
        let wire = build_compound(&p);
        // Packet boundaries: the prefixes there are themselves valid compound packets.
        let mut boundaries = vec![];
        let mut acc = BytesMut::new();
        for q in &p {
            q.write(&mut acc);
            boundaries.push(acc.len());
        }
        for n in 0..wire.len() {
            match parse_compound(&wire[..n]) {
                Ok(parsed) => {
                    let k = boundaries.iter().position(|&b| b == n).expect("only packet boundaries parse");
                    assert_eq!(parsed, p[..=k]);
                }
                Err(_) => assert!(!boundaries.contains(&n) || n == 0),
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        let wire = build_compound(&compound()).to_vec();
        let mut x: u32 = 0x2545_f491;
        let mut next = || {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            x
        };
        for _ in 0..20_000 {
            let mut w = wire.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = next() as usize % w.len();
                w[i] = (next() >> 24) as u8;
            }
            let cut = next() as usize % (w.len() + 1);
            let _ = parse_compound(&w[..cut]);
            let _ = parse_compound(&w);
        }
        // Lying length fields, padding beyond the packet, SDES items past the end.
        assert_eq!(parse_compound(&[0x80, 201, 0xff, 0xff, 0, 0, 0, 1]), Err(RtcpError::Truncated));
        assert_eq!(parse_compound(&[0xa0, 201, 0, 1, 0, 0, 0, 1]), Err(RtcpError::Malformed(201)));
        assert_eq!(parse_compound(&[0xa0, 201, 0, 1, 0, 0, 0, 9]), Err(RtcpError::Malformed(201)));
        assert_eq!(parse_compound(&[0x81, 201, 0, 1, 0, 0, 0, 1]), Err(RtcpError::Malformed(201)));
        let sdes = [0x80, 201, 0, 1, 0, 0, 0, 1, 0x81, 202, 0, 2, 0, 0, 0, 1, 1, 200, 0, 0];
        assert_eq!(parse_compound(&sdes), Err(RtcpError::Malformed(202)));
        assert_eq!(parse_compound(&[0x80, 202, 0, 0]), Err(RtcpError::NotCompound));
        assert_eq!(parse_compound(&[0x40, 201, 0, 0]), Err(RtcpError::Version(1)));
    }

    #[test]
    fn rtcp_mux_demux() {
        assert!(is_rtcp(&build_compound(&compound())));
        assert!(!is_rtcp(&[0x80, 0x00, 0, 1]));
        assert!(!is_rtcp(&[0x80, 0x80 | 8, 0, 1])); // PCMA with marker: 136
        assert!(!is_rtcp(&[0x80, 0x80 | 96, 0, 1])); // PT 96 with marker: 224
        assert!(is_rtcp(&[0x80, 223]));
        assert!(!is_rtcp(&[0x80]));
    }

    #[test]
    fn ntp_conversion() {
        let t = UNIX_EPOCH + Duration::from_millis(1_500);
        let ntp = ntp_from_system_time(t);
        assert_eq!(ntp >> 32, 2_208_988_801);
        assert_eq!(ntp as u32, 1 << 31);
    }

    #[test]
    fn scheduler_randomises_around_five_seconds() {
        let t0 = Instant::now();
        let mut s = RtcpScheduler::new(t0, REPORT_INTERVAL, 0);
        assert_eq!(s.next_report(), t0 + Duration::from_millis(1250));
        assert!(!s.is_due(t0));
        s.sent(t0, u32::MAX);
        let d = s.next_report() - t0;
        assert!(d > Duration::from_millis(7499) && d < Duration::from_millis(7501), "{d:?}");
        s.sent(t0, 1 << 31);
        assert_eq!(s.next_report() - t0, REPORT_INTERVAL);
    }

    #[test]
    fn rtt_from_lsr_dlsr_and_reports_into_stats() {
        let t0 = Instant::now();
        let ntp0 = ntp_from_system_time(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let mut us = RtcpSession::new(1, "us@example", 8000, t0, 7);
        let mut peer = RtcpSession::new(2, "peer@example", 8000, t0, 9);
        let sr = us.report(t0, ntp0, Some(SenderStats { rtp_timestamp: 0, packet_count: 10, octet_count: 1600 }), None);
        // 40 ms one way; the peer holds the SR 250 ms before reporting.
        peer.handle_packet(&sr, t0 + Duration::from_millis(40)).unwrap();
        assert!(matches!(peer.poll_event(), Some(RtcpEvent::SenderReport { ssrc: 1, .. })));
        let reception =
            Reception { ssrc: 1, fraction_lost: 64, cumulative_lost: 5, extended_highest_seq: 1009, jitter: 80 };
        let rr = peer.report(t0 + Duration::from_millis(290), 0, None, Some(reception));
        us.handle_packet(&rr, t0 + Duration::from_millis(330)).unwrap();
        let rep = us.remote_report().unwrap();
        let rtt = rep.round_trip.unwrap();
        assert!(rtt.abs_diff(Duration::from_millis(80)) < Duration::from_micros(100), "{rtt:?}");
        assert_eq!((rep.fraction_lost, rep.cumulative_lost, rep.jitter, rep.reporter), (0.25, 5, 80, 2));
        assert!((rep.jitter_ms - 10.0).abs() < 1e-9);
        assert!(matches!(us.poll_event(), Some(RtcpEvent::Report(_))));
        assert!(matches!(us.poll_event(), Some(RtcpEvent::Cname { ssrc: 2, .. })));

        // A report echoing no SR of ours has no RTT.
        let rr = peer.report(t0, 0, None, Some(reception));
        let mut other = RtcpSession::new(1, "x", 8000, t0, 0);
        other.handle_packet(&rr, t0).unwrap();
        assert_eq!(other.remote_report().unwrap().round_trip, None);

        // BYE at the end.
        let bye = peer.bye(t0, 0, None, None, Some("done"));
        us.handle_packet(&bye, t0).unwrap();
        let events: Vec<_> = std::iter::from_fn(|| us.poll_event()).collect();
        assert!(events.contains(&RtcpEvent::Bye { reason: Some("done".into()) }));
    }

    #[test]
    fn poll_report_on_schedule() {
        let t0 = Instant::now();
        let mut s = RtcpSession::new(1, "c", 8000, t0, 1 << 31);
        assert!(s.poll_report(t0, 0, None, None, 0).is_none());
        let due = s.poll_timeout();
        assert_eq!(due - t0, Duration::from_millis(2500));
        let p = s.poll_report(due, 0, None, None, 1 << 31).unwrap();
        assert!(matches!(parse_compound(&p).unwrap()[0], RtcpPacket::ReceiverReport { .. }));
        assert_eq!(s.poll_timeout() - due, REPORT_INTERVAL);
    }
}
