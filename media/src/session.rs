//! One call's media, sans-IO: the RTP and RTCP of one audio stream from the datagram to
//! 20 ms frames of 16-bit PCM and back.
//!
//! ```text
//! on datagram:  s.handle_datagram(bytes, from, now)        (RTP port; RTCP too with rtcp-mux)
//!               s.handle_rtcp(bytes, from, now)            (RTCP port without rtcp-mux)
//! every 20 ms:  s.tick(now, &local_frame, &mut remote_frame)
//! then:         while let Some(t) = s.poll_transmit() { send t.data to t.to }
//!               while let Some(e) = s.poll_event() { … }     (DTMF digits, RTCP reports, BYE)
//! ```
//!
//! Receive: [`RtpReceiver`] validates (RFC 3550 A.1 probation, SSRC changes) and counts,
//! the [`Latch`] moves our destination to where the peer's packets come from (symmetric
//! RTP), telephone-event packets go to the [`DtmfReceiver`], audio to the [`JitterBuffer`].
//! Each tick pops the jitter buffer and decodes: G.711 (8 kHz), G.722 (16 kHz audio on an
//! 8 kHz RTP clock, RFC 3551 §4.5.2), or Opus, which libopus decodes straight to the call's
//! 16 kHz audio rate (and encodes from it). A lost frame is concealed: Opus with the next
//! packet's in-band FEC when it is already buffered, else libopus PLC; G.711 and G.722 by
//! repeating the last frame with a fading gain (after ITU-T G.711 Appendix I's idea, much
//! simplified; the G.722 decoder's ADPCM state is left as it was and re-adapts).
//!
//! Send: each tick encodes the local frame into one packet of our [`RtpSender`] stream
//! (continuous sequence numbers and timestamps, marker at a talkspurt start), or, while a
//! digit is being sent, an RFC 4733 packet from the [`DtmfSender`] instead. RTCP SR/RR go
//! out on the RFC 3550 schedule (about every 5 s) with the receiver's figures; BYE at
//! [`MediaSession::close`].

use crate::dtmf::{DtmfError, DtmfEvent, DtmfReceiver, DtmfSender};
use crate::g711::Law;
use crate::g722::{G722Decoder, G722Encoder};
use crate::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use crate::opus::{OpusConfig, OpusDecoder, OpusEncoder, OpusError};
use crate::rtcp::{is_rtcp, RemoteReport, RtcpEvent, RtcpSession};
use crate::rtp::{Latch, ReceiveStats, ReceiverConfig, RtpReceiver, RtpSender};
use crate::srtp::Context;
use bytes::Bytes;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The tick: every call moves 20 ms of audio each way per tick.
pub const TICK: Duration = Duration::from_millis(20);
/// Without a telephone-event packet for this long, an event in progress is ended.
const DTMF_TIMEOUT: Duration = Duration::from_millis(1000);
/// Frames of fading repetition for G.711 and G.722 concealment before silence.
const REPEAT_PLC_FRAMES: u32 = 5;

/// The audio codecs a session can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// G.722 at 64 kbit/s (16 kHz audio, RTP clock 8000).
    G722,
    /// Opus (RFC 7587), mono to and from the call.
    Opus,
}

impl AudioCodec {
    /// The codec for an SDP encoding name (case-insensitive), if we run it.
    pub fn from_name(name: &str) -> Option<AudioCodec> {
        match name.to_ascii_lowercase().as_str() {
            "pcmu" => Some(AudioCodec::Pcmu),
            "pcma" => Some(AudioCodec::Pcma),
            "g722" => Some(AudioCodec::G722),
            "opus" => Some(AudioCodec::Opus),
            _ => None,
        }
    }

    /// Its RTP clock rate (8000 for G.722 too, RFC 3551 §4.5.2, though it samples at
    /// 16 kHz).
    pub fn clock_rate(self) -> u32 {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma | AudioCodec::G722 => 8000,
            AudioCodec::Opus => 48_000,
        }
    }

    /// The rate of the PCM frames the session exchanges with its consumers: 8 kHz for
    /// G.711, 16 kHz (wideband) for G.722 and Opus.
    pub fn audio_rate(self) -> u32 {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma => 8000,
            AudioCodec::G722 | AudioCodec::Opus => 16_000,
        }
    }

    /// The SDP encoding name.
    pub fn name(self) -> &'static str {
        match self {
            AudioCodec::Pcmu => "PCMU",
            AudioCodec::Pcma => "PCMA",
            AudioCodec::G722 => "G722",
            AudioCodec::Opus => "opus",
        }
    }
}

/// What the offer/answer settled, and our stream's random start values.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The codec both ways.
    pub codec: AudioCodec,
    /// Its negotiated payload type.
    pub payload_type: u8,
    /// The telephone-event payload type and clock rate, if negotiated.
    pub telephone_event: Option<(u8, u32)>,
    /// Packetization time of the peer's stream in ms (from its `a=ptime`, default 20).
    pub ptime_ms: u32,
    /// Where to send RTP until latching says otherwise.
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP; `None` with rtcp-mux (RTCP goes with the RTP).
    pub remote_rtcp: Option<SocketAddr>,
    /// Whether we send (false on hold: sendonly from the peer, inactive).
    pub send: bool,
    /// Seed of our SSRC, initial sequence number and timestamp, and the RTCP timing.
    pub seed: u64,
    /// Our RTCP CNAME.
    pub cname: String,
    /// Opus encoder complexity 0..=10.
    pub opus_complexity: u8,
    /// SRTP (SDES): everything sent is protected with our key, everything received must
    /// be the peer's (the rest is dropped). `None`: plain RTP.
    pub srtp: Option<SrtpKeys>,
}

/// The SDES keys of a call: the suite, our master key (we send with it), the peer's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The suite both use.
    pub suite: crate::srtp::Suite,
    /// Ours.
    pub ours: crate::srtp::MasterKey,
    /// The peer's.
    pub theirs: crate::srtp::MasterKey,
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The destination.
    pub to: SocketAddr,
    /// The datagram.
    pub data: Bytes,
    /// An RTCP packet: without rtcp-mux it leaves from the RTCP socket.
    pub rtcp: bool,
}

/// What the session noticed, for the call's owner.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// A key press, reported once however many packets carried it.
    Dtmf(DtmfEvent),
    /// Our RTP now goes to this address (symmetric RTP latching).
    Latched(SocketAddr),
    /// The peer's source changed SSRC (or restarted its sequence).
    NewSource(u32),
    /// The peer's RTCP reported on our stream.
    Report(RemoteReport),
    /// The peer sent RTCP BYE.
    RemoteBye(Option<String>),
    /// The first audio packet of the peer's stream (or of a new source) arrived at this
    /// instant. The owner's pacing clock can take its phase from it: ticking half a frame
    /// after the packets arrive leaves them half a frame of slack either way, where an
    /// arbitrary phase may put the tick right at their arrival, so that a little jitter
    /// empties the buffer.
    StreamStarted(Instant),
}

/// The call's media figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MediaStats {
    /// The RTP receiver's figures (packets, bytes, RFC 3550 loss and jitter, drops).
    pub rx: ReceiveStats,
    /// The jitter buffer's figures (late, lost, concealed, skew, depth).
    pub jitter: JitterStats,
    /// RTP packets sent (audio and telephone-event).
    pub tx_packets: u64,
    /// RTP payload bytes sent.
    pub tx_bytes: u64,
    /// Lost Opus frames recovered from the next packet's in-band FEC.
    pub fec_recovered: u64,
    /// Packets the decoder refused.
    pub decode_errors: u64,
    /// Digits received.
    pub dtmf_received: u64,
    /// Digits sent.
    pub dtmf_sent: u64,
    /// RTCP compound packets sent.
    pub rtcp_sent: u64,
    /// RTCP compound packets received.
    pub rtcp_received: u64,
    /// The peer's last report on our stream.
    pub remote: Option<RemoteReport>,
    /// SRTP/SRTCP packets refused (a bad tag, a replay, too short).
    pub srtp_refused: u64,
}

/// Why a session cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The Opus codec failed to initialise.
    #[error("opus: {0}")]
    Opus(#[from] OpusError),
    /// DTMF settings were refused.
    #[error("telephone-event: {0}")]
    Dtmf(#[from] DtmfError),
}

enum Codec {
    G711 { law: Law, plc: Repeat },
    G722(Box<G722Codec>),
    Opus(Box<OpusCodec>),
}

struct G722Codec {
    enc: G722Encoder,
    dec: G722Decoder,
    plc: Repeat,
}

/// Concealment by repetition: the last decoded frame, repeated with a fading gain.
struct Repeat {
    /// Room for the longest packet (120 ms).
    last: Vec<i16>,
    last_len: usize,
    run: u32,
}

impl Repeat {
    fn new(frame: usize) -> Repeat {
        Repeat { last: vec![0; frame * 6], last_len: 0, run: 0 }
    }

    /// The frame just decoded into `last[..n]` is the one to repeat.
    fn decoded(&mut self, n: usize) {
        self.last_len = n;
        self.run = 0;
    }

    /// One lost packet's worth of the last frame, fading, into `fifo`.
    fn conceal(&mut self, frame: usize, fifo: &mut Vec<i16>) {
        let n = if self.last_len == 0 { frame } else { self.last_len };
        self.run += 1;
        let gain = if self.run > REPEAT_PLC_FRAMES { 0.0 } else { 1.0 - self.run as f32 / 6.0 };
        fifo.extend(self.last[..n].iter().map(|s| (f32::from(*s) * gain) as i16));
    }
}

struct OpusCodec {
    enc: OpusEncoder,
    dec: OpusDecoder,
}

/// A small xorshift generator for RTCP timing (the seed comes from the caller).
struct Rng(u64);

impl Rng {
    /// Scrambles the seed (splitmix64's finalizer) first: xorshift's first outputs from
    /// nearby seeds (clock readings a few nanoseconds apart) would share their high bits,
    /// and with them the SSRC.
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 32) as u32
    }
}

/// One call's audio stream. See the module docs.
pub struct MediaSession {
    codec_kind: AudioCodec,
    pt: u8,
    event_pt: Option<u8>,
    clock_rate: u32,
    frame: usize,
    samples_per_tick: u32,
    receiver: RtpReceiver,
    latch: Latch,
    rtcp_dest: Option<SocketAddr>,
    jitter: JitterBuffer,
    codec: Codec,
    fifo: Vec<i16>,
    sender: RtpSender,
    sending: bool,
    sent_since_report: bool,
    payload: Vec<u8>,
    dtmf_rx: Option<DtmfReceiver>,
    dtmf_tx: Option<DtmfSender>,
    last_event_packet: Option<Instant>,
    rtcp: RtcpSession,
    /// (an instant, the NTP time at that instant): our wall clock for SRs.
    ntp_base: (Instant, u64),
    rng: Rng,
    transmits: VecDeque<Transmit>,
    events: VecDeque<MediaEvent>,
    stats: MediaStats,
    closed: bool,
    /// No audio packet of the current source has arrived yet.
    awaiting_stream: bool,
    /// SRTP: (what we send with, what we receive with).
    srtp: Option<Box<(Context, Context)>>,
}

impl std::fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSession").field("codec", &self.codec_kind).field("pt", &self.pt).finish_non_exhaustive()
    }
}

impl MediaSession {
    /// A session per `config`, started at `now`, when the wall clock read `ntp_now` (an NTP
    /// timestamp, [`crate::rtcp::ntp_from_system_time`]).
    pub fn new(config: SessionConfig, now: Instant, ntp_now: u64) -> Result<MediaSession, SessionError> {
        let clock_rate = config.codec.clock_rate();
        let audio_rate = config.codec.audio_rate();
        let frame = (audio_rate / 50) as usize;
        let mut rng = Rng::new(config.seed);
        let (ssrc, seq, ts) = (rng.next(), rng.next() as u16, rng.next());
        let mut pts = vec![config.payload_type];
        let event_pt = config.telephone_event.map(|(pt, _)| pt);
        pts.extend(event_pt);
        let mut rc = ReceiverConfig::new(clock_rate, &pts);
        rc.event_payload_type = event_pt;
        let ptime = config.ptime_ms.clamp(10, 120);
        // Opus keeps one packet of lookahead, so a lost frame can be rebuilt from the next
        // packet's in-band FEC.
        let lookahead = if config.codec == AudioCodec::Opus { 2 } else { 1 };
        let jitter = JitterBuffer::new(JitterConfig {
            clock_rate,
            frame: Duration::from_millis(u64::from(ptime)),
            min_delay: Duration::from_millis(u64::from(ptime * lookahead)),
            ..JitterConfig::default()
        });
        let codec = match config.codec {
            AudioCodec::Pcmu | AudioCodec::Pcma => Codec::G711 {
                law: if config.codec == AudioCodec::Pcmu { Law::Ulaw } else { Law::Alaw },
                plc: Repeat::new(frame),
            },
            AudioCodec::G722 => Codec::G722(Box::new(G722Codec {
                enc: G722Encoder::new(),
                dec: G722Decoder::new(),
                plc: Repeat::new(frame),
            })),
            AudioCodec::Opus => {
                let oc = OpusConfig { complexity: config.opus_complexity.min(10), ..OpusConfig::default() };
                Codec::Opus(Box::new(OpusCodec {
                    enc: OpusEncoder::with_rate(oc, audio_rate)?,
                    dec: OpusDecoder::with_rate(1, audio_rate)?,
                }))
            }
        };
        let (dtmf_rx, dtmf_tx) = match config.telephone_event {
            Some((_, rate)) => (Some(DtmfReceiver::new(rate)?), Some(DtmfSender::new(rate, 20)?)),
            None => (None, None),
        };
        let rtcp = RtcpSession::new(ssrc, &config.cname, clock_rate, now, rng.next());
        Ok(MediaSession {
            codec_kind: config.codec,
            pt: config.payload_type,
            event_pt,
            clock_rate,
            frame,
            samples_per_tick: clock_rate / 50,
            receiver: RtpReceiver::new(rc),
            latch: Latch::new(config.remote_rtp, Latch::DEFAULT_REQUIRED),
            rtcp_dest: config.remote_rtcp,
            jitter,
            codec,
            fifo: Vec::with_capacity(frame * 8),
            sender: RtpSender::new(ssrc, seq, ts),
            sending: config.send,
            sent_since_report: false,
            payload: vec![0; crate::opus::MAX_PACKET.max(frame)],
            dtmf_rx,
            dtmf_tx,
            last_event_packet: None,
            rtcp,
            ntp_base: (now, ntp_now),
            rng,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: MediaStats::default(),
            closed: false,
            awaiting_stream: true,
            srtp: config.srtp.map(|k| Box::new((Context::new(k.suite, &k.ours), Context::new(k.suite, &k.theirs)))),
        })
    }

    /// The codec.
    pub fn codec(&self) -> AudioCodec {
        self.codec_kind
    }

    /// The rate of the PCM frames [`tick`](Self::tick) takes and gives.
    pub fn audio_rate(&self) -> u32 {
        self.codec_kind.audio_rate()
    }

    /// Samples in one 20 ms frame at [`audio_rate`](Self::audio_rate).
    pub fn frame_samples(&self) -> usize {
        self.frame
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> u32 {
        self.sender.ssrc()
    }

    /// Where our RTP goes now.
    pub fn remote(&self) -> SocketAddr {
        self.latch.remote()
    }

    /// A datagram arrived on the RTP port: RTP, or RTCP when rtcp-mux demultiplexes it
    /// (RFC 5761 §4). Invalid packets are counted and dropped.
    pub fn handle_datagram(&mut self, data: Bytes, from: SocketAddr, now: Instant) {
        if is_rtcp(&data) {
            self.handle_rtcp(&data, from, now);
            return;
        }
        let data = match self.srtp.as_mut() {
            None => data,
            Some(s) => match s.1.unprotect_rtp(&data) {
                Ok(plain) => Bytes::from(plain),
                Err(_) => {
                    self.stats.srtp_refused += 1;
                    return;
                }
            },
        };
        let Ok(pkt) = self.receiver.receive(&data, now) else { return };
        if self.latch.on_valid_packet(from) {
            self.events.push_back(MediaEvent::Latched(from));
        }
        if pkt.new_source {
            self.jitter.reset();
            if let Some(rx) = self.dtmf_rx.as_mut() {
                rx.reset();
            }
            self.events.push_back(MediaEvent::NewSource(pkt.ssrc));
            self.awaiting_stream = true;
        }
        if Some(pkt.payload_type) == self.event_pt {
            if let Some(rx) = self.dtmf_rx.as_mut() {
                let _ = rx.handle_packet(pkt.timestamp, pkt.marker, &pkt.payload);
                self.last_event_packet = Some(now);
            }
            self.drain_dtmf();
        } else if !pkt.payload.is_empty() {
            if self.awaiting_stream {
                self.awaiting_stream = false;
                self.events.push_back(MediaEvent::StreamStarted(now));
            }
            self.jitter.push(pkt.seq, pkt.timestamp, pkt.payload, now);
        }
    }

    /// A datagram arrived on the RTCP port (or was demultiplexed as RTCP).
    pub fn handle_rtcp(&mut self, data: &[u8], from: SocketAddr, now: Instant) {
        let plain;
        let data = match self.srtp.as_mut() {
            None => data,
            Some(s) => match s.1.unprotect_rtcp(data) {
                Ok(p) => {
                    plain = p;
                    &plain[..]
                }
                Err(_) => {
                    self.stats.srtp_refused += 1;
                    return;
                }
            },
        };
        if self.rtcp.handle_packet(data, now).is_err() {
            return;
        }
        if self.rtcp_dest.is_some() {
            // Symmetric RTCP: answer where the peer's reports come from.
            self.rtcp_dest = Some(from);
        }
        while let Some(ev) = self.rtcp.poll_event() {
            match ev {
                RtcpEvent::Report(r) => {
                    self.stats.remote = Some(r);
                    self.events.push_back(MediaEvent::Report(r));
                }
                RtcpEvent::Bye { reason } => self.events.push_back(MediaEvent::RemoteBye(reason)),
                _ => {}
            }
        }
    }

    fn drain_dtmf(&mut self) {
        let Some(rx) = self.dtmf_rx.as_mut() else { return };
        while let Some(ev) = rx.poll_event() {
            self.stats.dtmf_received += 1;
            self.events.push_back(MediaEvent::Dtmf(ev));
        }
    }

    /// One 20 ms step at `now`: `local` (at least [`frame_samples`](Self::frame_samples),
    /// the audio we send) is encoded and queued; `remote` gets the peer's next frame
    /// (silence before the stream starts or after it stops). Returns whether `remote`
    /// carries the stream (played or concealed) rather than silence for its absence.
    pub fn tick(&mut self, now: Instant, local: &[i16], remote: &mut [i16]) -> bool {
        let playing = self.receive_tick(now, remote);
        if let (Some(rx), Some(at)) = (self.dtmf_rx.as_mut(), self.last_event_packet) {
            if now.saturating_duration_since(at) >= DTMF_TIMEOUT {
                rx.flush();
                self.last_event_packet = None;
            }
        }
        self.drain_dtmf();
        self.send_tick(local);
        self.rtcp_tick(now);
        playing
    }

    fn receive_tick(&mut self, now: Instant, remote: &mut [i16]) -> bool {
        let n = self.frame.min(remote.len());
        let mut any = false;
        let mut pops = 0;
        while self.fifo.len() < n && pops < 8 {
            pops += 1;
            match self.jitter.pop(now) {
                Playout::Frame(p) => {
                    any = true;
                    self.decode(&p);
                }
                Playout::Lost => {
                    any = true;
                    self.conceal();
                }
                Playout::Empty => break,
            }
        }
        if self.fifo.len() >= n {
            remote[..n].copy_from_slice(&self.fifo[..n]);
            self.fifo.drain(..n);
            true
        } else {
            let have = self.fifo.len();
            remote[..have].copy_from_slice(&self.fifo);
            remote[have..n].fill(0);
            self.fifo.clear();
            any
        }
    }

    fn decode(&mut self, payload: &[u8]) {
        match &mut self.codec {
            Codec::G711 { law, plc } => {
                let len = payload.len().min(plc.last.len());
                let n = law.decode(&payload[..len], &mut plc.last[..len]);
                self.fifo.extend_from_slice(&plc.last[..n]);
                plc.decoded(n);
            }
            Codec::G722(g) => {
                // Two samples per octet.
                let n = g.dec.decode(payload, &mut g.plc.last);
                self.fifo.extend_from_slice(&g.plc.last[..n]);
                g.plc.decoded(n);
            }
            Codec::Opus(o) => match o.dec.decode(payload) {
                Ok(pcm) => self.fifo.extend_from_slice(pcm),
                Err(_) => {
                    self.stats.decode_errors += 1;
                    self.conceal();
                }
            },
        }
    }

    fn conceal(&mut self) {
        let frame = self.frame;
        match &mut self.codec {
            Codec::G711 { plc, .. } => plc.conceal(frame, &mut self.fifo),
            Codec::G722(g) => g.plc.conceal(frame, &mut self.fifo),
            Codec::Opus(o) => {
                // In-band FEC when the next packet is already here (RFC 7587 §3.1.1 LBRR).
                let pcm = match self.jitter.peek_next() {
                    Some(next) => match o.dec.decode_fec(next) {
                        Ok(p) => {
                            self.stats.fec_recovered += 1;
                            Ok(p)
                        }
                        Err(_) => o.dec.decode_lost(),
                    },
                    None => o.dec.decode_lost(),
                };
                match pcm {
                    Ok(p) => self.fifo.extend_from_slice(p),
                    Err(_) => self.fifo.extend(std::iter::repeat_n(0, frame)),
                }
            }
        }
    }

    fn send_tick(&mut self, local: &[i16]) {
        if !self.sending || self.closed {
            self.sender.skip(self.samples_per_tick);
            return;
        }
        let to = self.latch.remote();
        if to.ip().is_unspecified() || to.port() == 0 {
            // RFC 2543 hold (c=0.0.0.0): time passes, nothing is sent.
            self.sender.skip(self.samples_per_tick);
            return;
        }
        let ts = self.sender.next_timestamp();
        if let (Some(tx), Some(pt)) = (self.dtmf_tx.as_mut(), self.event_pt) {
            if let Some(p) = tx.tick(ts) {
                if p.marker {
                    self.stats.dtmf_sent += 1;
                }
                let data = self.sender.packetize_at(pt, &p.payload_bytes(), p.timestamp, p.marker);
                // The audio clock runs on under the event (RFC 4733 §2.5.1.2); the next
                // audio packet starts a talkspurt.
                self.sender.skip(self.samples_per_tick);
                self.stats.tx_packets += 1;
                self.stats.tx_bytes += 4;
                self.sent_since_report = true;
                self.transmits.push_back(Transmit { to, data, rtcp: false });
                return;
            }
        }
        let frame = &local[..self.frame.min(local.len())];
        let len = match &mut self.codec {
            Codec::G711 { law, .. } => law.encode(frame, &mut self.payload),
            Codec::G722(g) => g.enc.encode(frame, &mut self.payload),
            Codec::Opus(o) => match o.enc.encode(frame) {
                Ok(p) => {
                    let l = p.len().min(self.payload.len());
                    self.payload[..l].copy_from_slice(&p[..l]);
                    l
                }
                Err(_) => 0,
            },
        };
        if len == 0 {
            self.sender.skip(self.samples_per_tick);
            return;
        }
        let data = self.sender.packetize(self.pt, &self.payload[..len], self.samples_per_tick, false);
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += len as u64;
        self.sent_since_report = true;
        self.transmits.push_back(Transmit { to, data, rtcp: false });
    }

    fn ntp_at(&self, now: Instant) -> u64 {
        let d = now.saturating_duration_since(self.ntp_base.0);
        let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
        self.ntp_base.1.wrapping_add((d.as_secs() << 32) | frac)
    }

    fn rtcp_target(&self) -> (SocketAddr, bool) {
        match self.rtcp_dest {
            Some(a) => (a, true),
            None => (self.latch.remote(), true),
        }
    }

    fn rtcp_tick(&mut self, now: Instant) {
        if self.closed || now < self.rtcp.poll_timeout() {
            return;
        }
        let ntp = self.ntp_at(now);
        let sender = self.sent_since_report.then(|| self.sender.stats());
        let reception = self.receiver.reception();
        let random = self.rng.next();
        if let Some(data) = self.rtcp.poll_report(now, ntp, sender, reception, random) {
            self.sent_since_report = false;
            let (to, rtcp) = self.rtcp_target();
            if !to.ip().is_unspecified() && to.port() != 0 {
                self.transmits.push_back(Transmit { to, data, rtcp });
            }
        }
    }

    /// Queues `digits` (0-9, *, #, A-D) to be sent as RFC 4733 events, 100 ms each with
    /// 50 ms gaps; an error if telephone-event was not negotiated or a digit is invalid.
    pub fn send_dtmf(&mut self, digits: &str) -> Result<(), DtmfError> {
        match self.dtmf_tx.as_mut() {
            Some(tx) => tx.send(digits),
            None => Err(DtmfError::NotNegotiated),
        }
    }

    /// Whether every queued digit has been sent.
    pub fn dtmf_idle(&self) -> bool {
        self.dtmf_tx.as_ref().is_none_or(DtmfSender::is_idle)
    }

    /// The peer's SDP changed (re-INVITE): new addresses, and whether we send.
    pub fn update_remote(&mut self, remote_rtp: SocketAddr, remote_rtcp: Option<SocketAddr>, send: bool) {
        self.latch.reset(remote_rtp);
        self.rtcp_dest = remote_rtcp;
        self.sending = send;
    }

    /// The peer moved its RTP to `to` (a re-INVITE with a new address): latch there anew;
    /// without rtcp-mux its RTCP goes to the port above.
    pub fn move_remote(&mut self, to: SocketAddr, send: bool) {
        let rtcp = self.rtcp_dest.map(|_| SocketAddr::new(to.ip(), to.port().wrapping_add(1)));
        self.update_remote(to, rtcp, send);
    }

    /// Whether we send RTP (hold and resume: an answer `recvonly` or `inactive` stops
    /// it). The timestamps run on meanwhile, so the stream resumes where the clock is.
    pub fn set_sending(&mut self, send: bool) {
        self.sending = send;
    }

    /// The call is over: queues the final RTCP report with BYE. Nothing is sent after.
    pub fn close(&mut self, now: Instant, reason: Option<&str>) {
        if self.closed {
            return;
        }
        self.closed = true;
        if let Some(rx) = self.dtmf_rx.as_mut() {
            rx.flush();
        }
        self.drain_dtmf();
        let ntp = self.ntp_at(now);
        let sender = self.sent_since_report.then(|| self.sender.stats());
        let reception = self.receiver.reception();
        let data = self.rtcp.bye(now, ntp, sender, reception, reason);
        let (to, rtcp) = self.rtcp_target();
        if !to.ip().is_unspecified() && to.port() != 0 {
            self.transmits.push_back(Transmit { to, data, rtcp });
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let mut t = self.transmits.pop_front()?;
        if let Some(s) = self.srtp.as_mut() {
            let sealed = if t.rtcp || is_rtcp(&t.data) { s.0.protect_rtcp(&t.data) } else { s.0.protect_rtp(&t.data) };
            match sealed {
                Ok(p) => t.data = Bytes::from(p),
                Err(_) => return self.poll_transmit(),
            }
        }
        Some(t)
    }

    /// The next thing to tell the call's owner.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    /// The figures now.
    pub fn stats(&self) -> MediaStats {
        let mut s = self.stats;
        s.rx = self.receiver.stats();
        s.jitter = self.jitter.stats();
        s.rtcp_sent = self.rtcp.sent;
        s.rtcp_received = self.rtcp.received;
        s
    }

    /// The RTP clock rate of the codec.
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resample::goertzel_power;

    fn config(codec: AudioCodec, pt: u8, remote: SocketAddr, seed: u64) -> SessionConfig {
        SessionConfig {
            codec,
            payload_type: pt,
            telephone_event: Some((101, codec.clock_rate())),
            ptime_ms: 20,
            remote_rtp: remote,
            remote_rtcp: None,
            send: true,
            seed,
            cname: "test".into(),
            opus_complexity: 5,
            srtp: None,
        }
    }

    fn tone(rate: u32, freq: f64, start: usize, n: usize) -> Vec<i16> {
        (start..start + n)
            .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin()) as i16)
            .collect()
    }

    /// Runs `a` → `b` for `ticks` of 20 ms, `a` sending a tone, dropping the packets
    /// `lose` picks; returns what `b` heard and `b`'s events.
    fn run(codec: AudioCodec, pt: u8, ticks: usize, lose: impl Fn(usize) -> bool) -> (Vec<i16>, MediaSession) {
        let (aa, ba): (SocketAddr, SocketAddr) = ("127.0.0.1:4000".parse().unwrap(), "127.0.0.1:5000".parse().unwrap());
        let t0 = Instant::now();
        let mut a = MediaSession::new(config(codec, pt, ba, 1), t0, 0).unwrap();
        let mut b = MediaSession::new(config(codec, pt, aa, 2), t0, 0).unwrap();
        let f = a.frame_samples();
        let rate = a.audio_rate();
        let mut heard = Vec::new();
        let mut out = vec![0i16; f];
        let silence = vec![0i16; f];
        let mut sent = 0;
        for t in 0..ticks {
            let now = t0 + TICK * t as u32;
            let local = tone(rate, 1000.0, t * f, f);
            a.tick(now, &local, &mut out);
            while let Some(tx) = a.poll_transmit() {
                if !tx.rtcp || tx.data.len() > 1 && !is_rtcp(&tx.data) {
                    sent += 1;
                    if lose(sent) {
                        continue;
                    }
                }
                b.handle_datagram(tx.data, aa, now);
            }
            b.tick(now, &silence, &mut out);
            while b.poll_transmit().is_some() {}
            heard.extend_from_slice(&out);
        }
        (heard, b)
    }

    fn assert_tone(heard: &[i16], rate: u32) {
        // Skip the jitter buffer's start and the codec's warm-up.
        let tail = &heard[heard.len() / 2..];
        let on = goertzel_power(tail, rate, 1000.0);
        let off = goertzel_power(tail, rate, 1700.0);
        assert!(on > 1.0e6 && on > 100.0 * off, "tone {on} off {off}");
    }

    #[test]
    fn pcmu_carries_a_tone_end_to_end() {
        let (heard, b) = run(AudioCodec::Pcmu, 0, 100, |_| false);
        assert_tone(&heard, 8000);
        let s = b.stats();
        // The first packet is the source's RFC 3550 A.1 probation.
        assert_eq!(s.rx.packets, 99);
        assert_eq!(s.rx.lost, 0);
    }

    #[test]
    fn opus_carries_a_tone_and_fec_rebuilds_losses() {
        let (heard, b) = run(AudioCodec::Opus, 111, 150, |n| n % 10 == 5);
        assert_tone(&heard, 16_000);
        let s = b.stats();
        assert!(s.rx.lost >= 10, "lost {}", s.rx.lost);
        assert!(s.fec_recovered >= 5, "fec {}", s.fec_recovered);
        assert_eq!(s.decode_errors, 0);
    }

    #[test]
    fn g722_carries_a_wideband_tone_on_an_8k_clock() {
        let (heard, b) = run(AudioCodec::G722, 9, 100, |n| n == 60);
        assert_eq!(b.audio_rate(), 16_000);
        assert_eq!(b.frame_samples(), 320);
        assert_eq!(b.clock_rate(), 8000);
        assert_tone(&heard, 16_000);
        let s = b.stats();
        assert_eq!(s.jitter.concealed, 1);
        assert_eq!(s.decode_errors, 0);
        // The concealed frame repeats the tone: no 20 ms gap.
        let mid = &heard[60 * 320..90 * 320];
        assert!(mid.chunks(320).all(|c| c.iter().any(|s| s.unsigned_abs() > 1000)));

        // 160 octets per 20 ms packet, timestamps 160 apart (RFC 3551 §4.5.2).
        let remote: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let t0 = Instant::now();
        let mut a = MediaSession::new(config(AudioCodec::G722, 9, remote, 7), t0, 0).unwrap();
        let local = tone(16_000, 1000.0, 0, 320);
        let mut out = vec![0i16; 320];
        let mut stamps = Vec::new();
        for t in 0..3u32 {
            a.tick(t0 + TICK * t, &local, &mut out);
            while let Some(tx) = a.poll_transmit() {
                let p = rtp_rs::RtpReader::new(&tx.data).unwrap();
                assert_eq!((p.payload_type(), p.payload().len()), (9, 160));
                stamps.push(p.timestamp());
            }
        }
        assert_eq!(stamps.len(), 3);
        assert!(stamps.windows(2).all(|w| w[1].wrapping_sub(w[0]) == 160), "{stamps:?}");
    }

    #[test]
    fn neighbouring_seeds_give_unrelated_ssrcs() {
        let t0 = Instant::now();
        let remote: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let ssrcs: std::collections::HashSet<u32> = (0..1000u64)
            .map(|seed| MediaSession::new(config(AudioCodec::Pcmu, 0, remote, seed), t0, 0).unwrap().ssrc())
            .collect();
        assert_eq!(ssrcs.len(), 1000);
    }

    #[test]
    fn stream_start_is_reported_once_per_source_with_its_arrival() {
        let (aa, ba): (SocketAddr, SocketAddr) = ("127.0.0.1:4000".parse().unwrap(), "127.0.0.1:5000".parse().unwrap());
        let t0 = Instant::now();
        let mut b = MediaSession::new(config(AudioCodec::Pcmu, 0, aa, 2), t0, 0).unwrap();
        let mut out = vec![0i16; 160];
        let local = vec![0i16; 160];
        let mut starts = Vec::new();
        // Two sources one after the other (a new SSRC, as after a transfer), 20 packets
        // each, arriving 7 ms into each 20 ms.
        for seed in [10, 11] {
            let mut a = MediaSession::new(config(AudioCodec::Pcmu, 0, ba, seed), t0, 0).unwrap();
            for t in 0..20u32 {
                let now = t0 + TICK * (t + 20 * (seed as u32 - 10)) + Duration::from_millis(7);
                a.tick(now, &local, &mut out);
                while let Some(tx) = a.poll_transmit() {
                    b.handle_datagram(tx.data, aa, now);
                }
                while let Some(ev) = b.poll_event() {
                    if let MediaEvent::StreamStarted(at) = ev {
                        starts.push(at);
                    }
                }
            }
        }
        assert_eq!(starts.len(), 2, "{starts:?}");
        // Each at the arrival of one of the source's first packets (A.1 probation may
        // hold back the very first).
        assert!(starts[0] <= t0 + TICK + Duration::from_millis(7), "{starts:?}");
        let second = t0 + TICK * 20 + Duration::from_millis(7);
        assert!(starts[1] >= second && starts[1] <= second + TICK, "{starts:?}");
    }

    #[test]
    fn g711_conceals_a_loss_without_a_gap() {
        let (heard, b) = run(AudioCodec::Pcma, 8, 100, |n| n == 60);
        assert_eq!(b.stats().jitter.concealed, 1);
        // The concealed frame repeats the tone: no 20 ms of silence in the middle.
        let mid = &heard[60 * 160..90 * 160];
        assert!(mid.chunks(160).all(|c| c.iter().any(|s| s.unsigned_abs() > 1000)));
    }

    #[test]
    fn dtmf_digits_cross_once_each_and_rtcp_reports_flow() {
        let (aa, ba): (SocketAddr, SocketAddr) = ("127.0.0.1:4000".parse().unwrap(), "127.0.0.1:5000".parse().unwrap());
        let t0 = Instant::now();
        let mut a = MediaSession::new(config(AudioCodec::Pcmu, 0, ba, 3), t0, 1 << 40).unwrap();
        let mut b = MediaSession::new(config(AudioCodec::Pcmu, 0, aa, 4), t0, 1 << 40).unwrap();
        a.send_dtmf("12#").unwrap();
        let f = vec![0i16; 160];
        let mut out = vec![0i16; 160];
        let mut digits = String::new();
        let mut reports = 0;
        for t in 0..400u32 {
            let now = t0 + TICK * t;
            a.tick(now, &f, &mut out);
            while let Some(tx) = a.poll_transmit() {
                b.handle_datagram(tx.data, aa, now);
            }
            b.tick(now, &f, &mut out);
            while let Some(tx) = b.poll_transmit() {
                a.handle_datagram(tx.data, ba, now);
            }
            while let Some(e) = b.poll_event() {
                if let MediaEvent::Dtmf(d) = e {
                    digits.push(d.digit);
                    assert_eq!(d.duration_ms, 100);
                }
            }
            while let Some(e) = a.poll_event() {
                if let MediaEvent::Report(_) = e {
                    reports += 1;
                }
            }
        }
        assert_eq!(digits, "12#");
        assert!(a.dtmf_idle());
        assert_eq!(a.stats().dtmf_sent, 3);
        // 8 s: the first report after 1.25–3.75 s, then every 2.5–7.5 s.
        assert!(reports >= 1, "a heard {reports} reports from b");
        assert!(b.stats().rtcp_received >= 1 && a.stats().rtcp_sent >= 1);
        a.close(t0 + TICK * 400, Some("bye"));
        let last = a.poll_transmit().expect("RTCP BYE");
        b.handle_rtcp(&last.data, aa, t0 + TICK * 400);
        assert!(std::iter::from_fn(|| b.poll_event()).any(|e| e == MediaEvent::RemoteBye(Some("bye".into()))));
    }
}
