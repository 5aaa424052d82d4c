//! Opus (RFC 6716, RTP payload format RFC 7587) through libopus, via `audiopus`.
//!
//! 48 kHz by default, 20 ms frames of [`FRAME_SAMPLES`] samples per channel, interleaved
//! when stereo. The RTP clock of Opus is 48 kHz whatever the audio bandwidth, but libopus
//! takes and gives PCM at 8, 12, 16, 24 or 48 kHz itself ([`OpusEncoder::with_rate`],
//! [`OpusDecoder::with_rate`]), which spares a wideband call two resamplers.
//!
//! Loss handling, in the order a receiver should try it when packet `n` is missing:
//!
//! 1. if packet `n + 1` has arrived, [`OpusDecoder::decode_fec`] on it recovers frame `n`
//!    from the in-band FEC (LBRR) data the encoder put in `n + 1` (libopus falls back to
//!    concealment if there is none), then [`OpusDecoder::decode`] on `n + 1` as usual;
//! 2. otherwise [`OpusDecoder::decode_lost`] conceals frame `n` (PLC).
//!
//! The encoder enables in-band FEC and tells libopus the expected loss, which makes it
//! spend bits on the redundant copy; both can be changed at run time (e.g. from RTCP loss
//! reports). Buffers are allocated once per encoder/decoder; encoding and decoding do not
//! allocate.

use audiopus::coder::{Decoder, Encoder};
use audiopus::{Application, Bitrate, Channels, SampleRate};
use thiserror::Error;

/// The Opus sample rate and RTP clock rate (RFC 7587 §4.1).
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples per channel in one 20 ms frame.
pub const FRAME_SAMPLES: usize = 960;
/// Largest Opus packet for one frame (RFC 6716 §3.2.1).
pub const MAX_PACKET: usize = 1275;
/// Longest duration one packet may carry (120 ms), in samples per channel.
const MAX_PACKET_SAMPLES: usize = 5760;

/// Errors of the Opus wrappers.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OpusError {
    /// Only mono and stereo are supported.
    #[error("invalid channel count {0} (must be 1 or 2)")]
    Channels(u8),
    /// Complexity is 0 (fastest) to 10 (best).
    #[error("invalid complexity {0} (must be 0..=10)")]
    Complexity(u8),
    /// Expected loss is a percentage.
    #[error("invalid expected packet loss {0}% (must be 0..=100)")]
    PacketLoss(u8),
    /// The PCM given to the encoder is not one 20 ms frame.
    #[error("frame has {got} samples, expected {expected}")]
    FrameSize {
        /// `FRAME_SAMPLES × channels`.
        expected: usize,
        /// Samples given.
        got: usize,
    },
    /// libopus runs at 8, 12, 16, 24 or 48 kHz only.
    #[error("invalid Opus PCM rate {0} Hz (8000, 12000, 16000, 24000 or 48000)")]
    Rate(u32),
    /// A zero-length payload (RTP packets with no Opus data are not decodable).
    #[error("empty Opus packet")]
    EmptyPacket,
    /// libopus refused: a corrupt packet, a bad argument, an internal error.
    #[error("libopus: {0}")]
    Codec(#[from] audiopus::Error),
}

fn rate_of(rate: u32) -> Result<SampleRate, OpusError> {
    Ok(match rate {
        8000 => SampleRate::Hz8000,
        12_000 => SampleRate::Hz12000,
        16_000 => SampleRate::Hz16000,
        24_000 => SampleRate::Hz24000,
        48_000 => SampleRate::Hz48000,
        other => return Err(OpusError::Rate(other)),
    })
}

fn channels_of(n: u8) -> Result<Channels, OpusError> {
    match n {
        1 => Ok(Channels::Mono),
        2 => Ok(Channels::Stereo),
        other => Err(OpusError::Channels(other)),
    }
}

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusConfig {
    /// 1 (mono, the default) or 2.
    pub channels: u8,
    /// 0..=10; default 5, a balance for many concurrent calls (10 is libopus's default).
    pub complexity: u8,
    /// Target bitrate in bit/s; `None` lets libopus choose. Default 32 kbit/s.
    pub bitrate: Option<u32>,
    /// In-band FEC (LBRR); default on.
    pub inband_fec: bool,
    /// Expected packet loss in percent, 0..=100; default 10. FEC needs it above 0.
    pub expected_loss_percent: u8,
}

impl Default for OpusConfig {
    fn default() -> Self {
        OpusConfig { channels: 1, complexity: 5, bitrate: Some(32_000), inband_fec: true, expected_loss_percent: 10 }
    }
}

/// An Opus encoder for 20 ms frames at 48 kHz (VoIP application).
pub struct OpusEncoder {
    inner: Encoder,
    channels: u8,
    frame: usize,
    config: OpusConfig,
    packet: Box<[u8; MAX_PACKET]>,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder").field("config", &self.config).finish_non_exhaustive()
    }
}

impl OpusEncoder {
    /// An encoder with `config`.
    pub fn new(config: OpusConfig) -> Result<Self, OpusError> {
        Self::with_rate(config, SAMPLE_RATE)
    }

    /// An encoder taking PCM at `rate` (8, 12, 16, 24 or 48 kHz): frames of `rate / 50`
    /// samples per channel.
    pub fn with_rate(config: OpusConfig, rate: u32) -> Result<Self, OpusError> {
        let channels = channels_of(config.channels)?;
        let inner = Encoder::new(rate_of(rate)?, channels, Application::Voip)?;
        let frame = rate as usize / 50;
        let mut enc =
            OpusEncoder { inner, channels: config.channels, frame, config, packet: Box::new([0; MAX_PACKET]) };
        enc.set_complexity(config.complexity)?;
        enc.set_bitrate(config.bitrate)?;
        enc.inner.set_inband_fec(config.inband_fec)?;
        enc.set_expected_loss(config.expected_loss_percent)?;
        Ok(enc)
    }

    /// A mono encoder with the default settings (complexity 5, 32 kbit/s, FEC, 10 % loss).
    pub fn mono() -> Result<Self, OpusError> {
        Self::new(OpusConfig::default())
    }

    /// The current settings.
    pub fn config(&self) -> OpusConfig {
        self.config
    }

    /// Changes the complexity (0..=10).
    pub fn set_complexity(&mut self, complexity: u8) -> Result<(), OpusError> {
        if complexity > 10 {
            return Err(OpusError::Complexity(complexity));
        }
        self.inner.set_complexity(complexity)?;
        self.config.complexity = complexity;
        Ok(())
    }

    /// Changes the target bitrate (`None`: libopus decides).
    pub fn set_bitrate(&mut self, bitrate: Option<u32>) -> Result<(), OpusError> {
        let b = match bitrate {
            Some(bps) => Bitrate::BitsPerSecond(i32::try_from(bps).unwrap_or(i32::MAX)),
            None => Bitrate::Auto,
        };
        self.inner.set_bitrate(b)?;
        self.config.bitrate = bitrate;
        Ok(())
    }

    /// Changes the expected packet loss (percent), e.g. from RTCP receiver reports.
    pub fn set_expected_loss(&mut self, percent: u8) -> Result<(), OpusError> {
        if percent > 100 {
            return Err(OpusError::PacketLoss(percent));
        }
        self.inner.set_packet_loss_perc(percent)?;
        self.config.expected_loss_percent = percent;
        Ok(())
    }

    /// Turns in-band FEC on or off.
    pub fn set_inband_fec(&mut self, enable: bool) -> Result<(), OpusError> {
        self.inner.set_inband_fec(enable)?;
        self.config.inband_fec = enable;
        Ok(())
    }

    /// Encodes one 20 ms frame (`rate / 50 × channels` samples, interleaved) and returns
    /// the packet, valid until the next call.
    pub fn encode(&mut self, pcm: &[i16]) -> Result<&[u8], OpusError> {
        let expected = self.frame * self.channels as usize;
        if pcm.len() != expected {
            return Err(OpusError::FrameSize { expected, got: pcm.len() });
        }
        let n = self.inner.encode(pcm, &mut self.packet[..])?;
        Ok(&self.packet[..n])
    }
}

/// An Opus decoder at 48 kHz with packet-loss concealment and FEC recovery.
pub struct OpusDecoder {
    inner: Decoder,
    channels: u8,
    /// Samples per channel of the last decoded or concealed frame: the size to conceal.
    last_frame: usize,
    pcm: Box<[i16]>,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder")
            .field("channels", &self.channels)
            .field("last_frame", &self.last_frame)
            .finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// A decoder producing `channels` (1 or 2) interleaved channels.
    pub fn new(channels: u8) -> Result<Self, OpusError> {
        Self::with_rate(channels, SAMPLE_RATE)
    }

    /// A decoder producing PCM at `rate` (8, 12, 16, 24 or 48 kHz).
    pub fn with_rate(channels: u8, rate: u32) -> Result<Self, OpusError> {
        let inner = Decoder::new(rate_of(rate)?, channels_of(channels)?)?;
        Ok(OpusDecoder {
            inner,
            channels,
            last_frame: rate as usize / 50,
            pcm: vec![0; MAX_PACKET_SAMPLES * channels as usize].into_boxed_slice(),
        })
    }

    /// A mono decoder.
    pub fn mono() -> Result<Self, OpusError> {
        Self::new(1)
    }

    /// Channels of the output.
    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// Decodes one packet; returns its PCM (interleaved; normally 960 samples per channel),
    /// valid until the next call. A corrupt packet is an error, and the decoder stays usable.
    pub fn decode(&mut self, packet: &[u8]) -> Result<&[i16], OpusError> {
        if packet.is_empty() {
            return Err(OpusError::EmptyPacket);
        }
        let n = self.inner.decode(Some(packet), &mut self.pcm[..], false)?;
        self.last_frame = n;
        Ok(&self.pcm[..n * self.channels as usize])
    }

    /// Conceals one lost frame (PLC), as long as the last frame decoded.
    pub fn decode_lost(&mut self) -> Result<&[i16], OpusError> {
        let len = self.last_frame * self.channels as usize;
        let n = self.inner.decode(None::<&[u8]>, &mut self.pcm[..len], false)?;
        Ok(&self.pcm[..n * self.channels as usize])
    }

    /// Recovers the lost frame *before* `next_packet` from the FEC data in `next_packet`
    /// (concealment if it carries none). Call [`decode`](Self::decode) on `next_packet`
    /// afterwards for its own frame.
    pub fn decode_fec(&mut self, next_packet: &[u8]) -> Result<&[i16], OpusError> {
        if next_packet.is_empty() {
            return Err(OpusError::EmptyPacket);
        }
        let len = self.last_frame * self.channels as usize;
        let n = self.inner.decode(Some(next_packet), &mut self.pcm[..len], true)?;
        Ok(&self.pcm[..n * self.channels as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resample::goertzel_power;

    fn sine_frames(freq: f64, amp: f64, frames: usize) -> Vec<Vec<i16>> {
        (0..frames)
            .map(|f| {
                (0..FRAME_SAMPLES)
                    .map(|i| {
                        let t = (f * FRAME_SAMPLES + i) as f64 / SAMPLE_RATE as f64;
                        (amp * (2.0 * std::f64::consts::PI * freq * t).sin()).round() as i16
                    })
                    .collect()
            })
            .collect()
    }

    fn tone_dominates(pcm: &[i16]) -> bool {
        let p = goertzel_power(pcm, SAMPLE_RATE, 1000.0);
        [300.0, 700.0, 1400.0, 2000.0, 3000.0].iter().all(|&f| goertzel_power(pcm, SAMPLE_RATE, f) * 100.0 < p)
    }

    #[test]
    fn encode_decode_keeps_a_1khz_tone() {
        let mut enc = OpusEncoder::mono().unwrap();
        let mut dec = OpusDecoder::mono().unwrap();
        let frames = sine_frames(1000.0, 8000.0, 25);
        let mut out = Vec::new();
        for f in &frames {
            let pkt = enc.encode(f).unwrap().to_vec();
            assert!(!pkt.is_empty() && pkt.len() <= MAX_PACKET);
            let pcm = dec.decode(&pkt).unwrap();
            assert_eq!(pcm.len(), FRAME_SAMPLES);
            out.extend_from_slice(pcm);
        }
        let tail = &out[out.len() - 10 * FRAME_SAMPLES..];
        assert!(tone_dominates(tail));
        // Level kept within 3 dB (amplitude 8000 → mean square 3.2e7).
        let p = goertzel_power(tail, SAMPLE_RATE, 1000.0) as f64;
        assert!((10.0 * (p / 3.2e7).log10()).abs() < 3.0, "{p}");
    }

    #[test]
    fn plc_returns_a_full_frame() {
        let mut enc = OpusEncoder::mono().unwrap();
        let mut dec = OpusDecoder::mono().unwrap();
        for f in &sine_frames(1000.0, 8000.0, 10) {
            let pkt = enc.encode(f).unwrap().to_vec();
            dec.decode(&pkt).unwrap();
        }
        let concealed = dec.decode_lost().unwrap();
        assert_eq!(concealed.len(), FRAME_SAMPLES);
        // Concealment continues the tone rather than going silent.
        assert!(goertzel_power(concealed, SAMPLE_RATE, 1000.0) > 1e5);
        // Loss before anything was decoded still yields a (silent) full frame.
        let mut fresh = OpusDecoder::mono().unwrap();
        assert_eq!(fresh.decode_lost().unwrap().len(), FRAME_SAMPLES);
    }

    #[test]
    fn fec_recovers_the_lost_frame() {
        let mut enc = OpusEncoder::mono().unwrap();
        let mut dec = OpusDecoder::mono().unwrap();
        let frames = sine_frames(1000.0, 8000.0, 30);
        let packets: Vec<Vec<u8>> = frames.iter().map(|f| enc.encode(f).unwrap().to_vec()).collect();
        let lost = 20;
        for p in &packets[..lost] {
            dec.decode(p).unwrap();
        }
        let recovered = dec.decode_fec(&packets[lost + 1]).unwrap().to_vec();
        assert_eq!(recovered.len(), FRAME_SAMPLES);
        assert!(tone_dominates(&recovered));
        let next = dec.decode(&packets[lost + 1]).unwrap();
        assert_eq!(next.len(), FRAME_SAMPLES);
        assert!(tone_dominates(next));
    }

    #[test]
    fn fec_carries_the_lost_audio_not_a_continuation() {
        // 1 kHz up to the lost frame, 600 Hz from it on: concealment would continue 1 kHz,
        // the FEC copy in the next packet holds 600 Hz.
        let mut enc = OpusEncoder::mono().unwrap();
        let lost = 20;
        let mut frames = sine_frames(1000.0, 8000.0, lost);
        frames.extend(sine_frames(600.0, 8000.0, 10));
        let packets: Vec<Vec<u8>> = frames.iter().map(|f| enc.encode(f).unwrap().to_vec()).collect();

        let mut with_fec = OpusDecoder::mono().unwrap();
        let mut with_plc = OpusDecoder::mono().unwrap();
        for p in &packets[..lost] {
            with_fec.decode(p).unwrap();
            with_plc.decode(p).unwrap();
        }
        let fec = with_fec.decode_fec(&packets[lost + 1]).unwrap();
        let (fec_600, fec_1k) = (goertzel_power(fec, SAMPLE_RATE, 600.0), goertzel_power(fec, SAMPLE_RATE, 1000.0));
        let plc = with_plc.decode_lost().unwrap();
        let (plc_600, plc_1k) = (goertzel_power(plc, SAMPLE_RATE, 600.0), goertzel_power(plc, SAMPLE_RATE, 1000.0));
        assert!(fec_600 > fec_1k, "FEC: 600 Hz {fec_600}, 1 kHz {fec_1k}");
        assert!(plc_1k > plc_600, "PLC: 600 Hz {plc_600}, 1 kHz {plc_1k}");
    }

    #[test]
    fn stereo_and_settings() {
        let cfg = OpusConfig { channels: 2, complexity: 10, bitrate: None, ..OpusConfig::default() };
        let mut enc = OpusEncoder::new(cfg).unwrap();
        let mut dec = OpusDecoder::new(2).unwrap();
        let pkt = enc.encode(&[0; 2 * FRAME_SAMPLES]).unwrap().to_vec();
        assert_eq!(dec.decode(&pkt).unwrap().len(), 2 * FRAME_SAMPLES);
        assert_eq!(dec.decode_lost().unwrap().len(), 2 * FRAME_SAMPLES);
        enc.set_complexity(0).unwrap();
        enc.set_bitrate(Some(16_000)).unwrap();
        enc.set_expected_loss(0).unwrap();
        enc.set_inband_fec(false).unwrap();
        assert_eq!(enc.config().complexity, 0);
        assert_eq!(enc.config().bitrate, Some(16_000));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(OpusDecoder::new(3), Err(OpusError::Channels(3))));
        let cfg = OpusConfig { complexity: 11, ..OpusConfig::default() };
        assert!(matches!(OpusEncoder::new(cfg), Err(OpusError::Complexity(11))));
        let mut enc = OpusEncoder::mono().unwrap();
        assert!(matches!(enc.encode(&[0; 100]), Err(OpusError::FrameSize { expected: 960, got: 100 })));
        assert!(matches!(enc.set_expected_loss(101), Err(OpusError::PacketLoss(101))));
        let mut dec = OpusDecoder::mono().unwrap();
        assert!(matches!(dec.decode(&[]), Err(OpusError::EmptyPacket)));
        assert!(matches!(dec.decode_fec(&[]), Err(OpusError::EmptyPacket)));
        // A code-3 TOC with a frame count of 0 is invalid (RFC 6716 §3.2.5).
        assert!(matches!(dec.decode(&[0x03, 0x00]), Err(OpusError::Codec(_))));
        // Garbage must not panic, whatever libopus makes of it.
        for len in 1..64usize {
            let junk: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(37).wrapping_add(len as u8)).collect();
            let _ = dec.decode(&junk);
            let _ = dec.decode_fec(&junk);
        }
        // Still usable afterwards.
        let pkt = enc.encode(&[0; FRAME_SAMPLES]).unwrap().to_vec();
        assert_eq!(dec.decode(&pkt).unwrap().len(), FRAME_SAMPLES);
    }
}
