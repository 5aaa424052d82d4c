//! The RFC 3551 static payload types and codec descriptions.

use super::model::*;
use std::net::IpAddr;

/// One RFC 3551 static payload type assignment (tables 4 and 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticPayloadType {
    /// Payload type number.
    pub payload_type: u8,
    /// Encoding name as RFC 3551 writes it.
    pub name: &'static str,
    /// Clock rate in Hz (8000 for G722, per RFC 3551 §4.5.2).
    pub clock_rate: u32,
    /// Channels (1 for video and unspecified entries).
    pub channels: u16,
}

const fn spt(payload_type: u8, name: &'static str, clock_rate: u32, channels: u16) -> StaticPayloadType {
    StaticPayloadType { payload_type, name, clock_rate, channels }
}

/// The RFC 3551 static payload types, used when an `a=rtpmap` is missing.
pub const STATIC_PAYLOAD_TYPES: &[StaticPayloadType] = &[
    spt(0, "PCMU", 8000, 1),
    spt(3, "GSM", 8000, 1),
    spt(4, "G723", 8000, 1),
    spt(5, "DVI4", 8000, 1),
    spt(6, "DVI4", 16000, 1),
    spt(7, "LPC", 8000, 1),
    spt(8, "PCMA", 8000, 1),
    spt(9, "G722", 8000, 1),
    spt(10, "L16", 44100, 2),
    spt(11, "L16", 44100, 1),
    spt(12, "QCELP", 8000, 1),
    spt(13, "CN", 8000, 1),
    spt(14, "MPA", 90000, 1),
    spt(15, "G728", 8000, 1),
    spt(16, "DVI4", 11025, 1),
    spt(17, "DVI4", 22050, 1),
    spt(18, "G729", 8000, 1),
    spt(25, "CelB", 90000, 1),
    spt(26, "JPEG", 90000, 1),
    spt(28, "nv", 90000, 1),
    spt(31, "H261", 90000, 1),
    spt(32, "MPV", 90000, 1),
    spt(33, "MP2T", 90000, 1),
    spt(34, "H263", 90000, 1),
];

/// The static codec for a payload type, or `None` if it has no static assignment.
pub fn static_codec(pt: u8) -> Option<Codec> {
    STATIC_PAYLOAD_TYPES
        .iter()
        .find(|s| s.payload_type == pt)
        .map(|s| Codec::new(s.name, s.clock_rate, s.channels, s.payload_type))
}

/// The static payload type of a codec (name case-insensitive), if it has one.
pub fn static_payload_type(name: &str, clock_rate: u32, channels: u16) -> Option<u8> {
    STATIC_PAYLOAD_TYPES
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(name) && s.clock_rate == clock_rate && s.channels == channels)
        .map(|s| s.payload_type)
}

/// A codec bound to an RTP payload type: an entry of an m= line, one of our capabilities,
/// or a negotiation result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// RTP payload type.
    pub payload_type: u8,
    /// Encoding name; compared case-insensitively.
    pub name: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Channels (1 if unspecified).
    pub channels: u16,
    /// Format parameters (`a=fmtp`), raw.
    pub fmtp: Option<String>,
}

impl Codec {
    /// A codec without format parameters.
    pub fn new(name: &str, clock_rate: u32, channels: u16, payload_type: u8) -> Self {
        Codec { payload_type, name: name.to_string(), clock_rate, channels, fmtp: None }
    }

    /// The same codec with format parameters.
    pub fn with_fmtp(mut self, fmtp: &str) -> Self {
        self.fmtp = Some(fmtp.to_string());
        self
    }

    /// G.711 µ-law, PT 0.
    pub fn pcmu() -> Self {
        Codec::new("PCMU", 8000, 1, 0)
    }

    /// G.711 A-law, PT 8.
    pub fn pcma() -> Self {
        Codec::new("PCMA", 8000, 1, 8)
    }

    /// G.722, PT 9 (RTP clock 8000 per RFC 3551).
    pub fn g722() -> Self {
        Codec::new("G722", 8000, 1, 9)
    }

    /// Opus (RFC 7587: always `opus/48000/2`), PT 111, with `useinbandfec=1`.
    pub fn opus() -> Self {
        Codec::new("opus", 48000, 2, 111).with_fmtp("useinbandfec=1")
    }

    /// RFC 4733 telephone-event at 8000 Hz, PT 101, events `0-16`.
    pub fn telephone_event() -> Self {
        Codec::new("telephone-event", 8000, 1, 101).with_fmtp("0-16")
    }

    /// Whether this is RFC 4733 `telephone-event`.
    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }

    /// Same encoding: name (case-insensitive), clock rate and channels; PT and fmtp ignored.
    pub fn same_encoding(&self, other: &Codec) -> bool {
        self.name.eq_ignore_ascii_case(&other.name)
            && self.clock_rate == other.clock_rate
            && self.channels == other.channels
    }

    pub(super) fn rtpmap(&self) -> RtpMap {
        RtpMap {
            payload_type: self.payload_type,
            encoding: self.name.clone(),
            clock_rate: self.clock_rate,
            channels: (self.channels != 1).then_some(self.channels),
        }
    }
}

/// What we support and where we receive, used to build offers and answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCapabilities {
    /// Our codecs in preference order, each with its (preferred) payload type and fmtp.
    /// `telephone-event` entries enable RFC 4733 DTMF at their clock rate.
    pub codecs: Vec<Codec>,
    /// The address we receive RTP on (goes into `c=` and `o=`).
    pub address: IpAddr,
    /// The RTP port we receive on.
    pub port: u16,
    /// Our packetization time in ms, used when the offer has no `a=ptime` (default 20).
    pub ptime: u32,
    /// The direction we want (sendrecv normally; sendonly or inactive to hold).
    pub direction: Direction,
    /// Put `a=rtcp-mux` in our offers (default false). Answers always echo an offered
    /// `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// `o=` username (default `dialtone`).
    pub username: String,
    /// `s=` value (default `dialtone`).
    pub session_name: String,
    /// SDES-SRTP (RFC 4568): offered and accepted as it says; `None`: plain RTP only.
    pub srtp: Option<super::sdes::Sdes>,
}

impl MediaDescription {
    /// The codec a payload type of this section stands for: its `a=rtpmap`, else the
    /// RFC 3551 static assignment; `None` for an unmapped dynamic type.
    pub fn codec(&self, pt: u8) -> Option<Codec> {
        let mut codec = match self.rtpmap(pt) {
            Some(r) => Codec {
                payload_type: pt,
                name: r.encoding.clone(),
                clock_rate: r.clock_rate,
                channels: r.channels.unwrap_or(1),
                fmtp: None,
            },
            None => static_codec(pt)?,
        };
        codec.fmtp = self.fmtp(pt).map(str::to_string);
        Some(codec)
    }

    /// The codecs of the format list, in the listed order, skipping formats that are not
    /// payload type numbers or are unmapped dynamic types.
    pub fn codecs(&self) -> Vec<Codec> {
        self.formats.iter().filter_map(|f| parse_payload_type(f)).filter_map(|pt| self.codec(pt)).collect()
    }
}
