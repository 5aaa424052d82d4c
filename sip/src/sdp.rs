//! SDP (RFC 8866, ex RFC 4566): model, lenient parser, CRLF serializer, RFC 3551 codec
//! catalogue and RFC 3264 offer/answer for one audio stream. Sans-IO, `std` only.
//!
//! Why our own parser: webrtc-sdp 0.3.17 was tried on SIP bodies. It accepts SIPp's default uac
//! body, an empty `s=`, LF-only lines, media-level-only `c=` and static PTs without `a=rtpmap`,
//! but it rejects the whole body on a `p=` line, a missing `t=`, an `a=rtpmap` without a clock
//! rate or a sess-id above u64, silently drops unknown attributes (`a=silenceSupp`, `a=X-…`)
//! when re-serializing, and pulls in url/idna/ICU (~20 crates). We need lossless round trips and
//! leniency toward carriers, so we keep a small parser that is strict only where meaning is lost.
//!
//! Leniency rules: LF or CRLF line ends; blank, unknown and misplaced lines are skipped; an
//! attribute whose typed form does not parse is kept as [`Attribute::Other`]; a missing or
//! empty `s=` becomes `-`; a body without `t=` gets `t=0 0`. Errors: no `v=0` first line, no or
//! malformed `o=`, malformed `c=`, malformed `m=` or its port. Parsing never panics.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use thiserror::Error;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why an SDP body could not be parsed. Line numbers are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is empty or only whitespace.
    #[error("empty SDP body")]
    Empty,
    /// The first line is not `v=0`.
    #[error("SDP must start with v=0")]
    BadVersion,
    /// There is no `o=` line.
    #[error("missing o= line")]
    MissingOrigin,
    /// The `o=` line has fewer than six fields or a non-numeric sess-version.
    #[error("line {line}: malformed o= line")]
    BadOrigin {
        /// Line number.
        line: usize,
    },
    /// A `c=` line with fewer than three fields.
    #[error("line {line}: malformed c= line")]
    BadConnection {
        /// Line number.
        line: usize,
    },
    /// An `m=` line with fewer than three fields.
    #[error("line {line}: malformed m= line")]
    BadMedia {
        /// Line number.
        line: usize,
    },
    /// An `m=` line whose port (or port count) is not a number in range.
    #[error("line {line}: bad port in m= line")]
    BadPort {
        /// Line number.
        line: usize,
    },
}

/// Why an offer/answer exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OfferAnswerError {
    /// No audio stream shares a codec with us (a UAS answers 488 Not Acceptable Here).
    #[error("no common codec")]
    NoCommonCodec,
    /// The answer has a different number of m= lines than the offer (RFC 3264 §6).
    #[error("answer has {answered} m= lines, offer had {offered}")]
    MediaCountMismatch {
        /// m= lines in the offer.
        offered: usize,
        /// m= lines in the answer.
        answered: usize,
    },
    /// The chosen stream has no `c=` line at media or session level.
    #[error("no connection address for the audio stream")]
    MissingConnection,
    /// The chosen stream's connection address is not an IP literal (e.g. an FQDN).
    #[error("connection address {0:?} is not an IP address")]
    UnsupportedAddress(String),
}

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/// A parsed SDP session description (RFC 8866 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=` line.
    pub origin: Origin,
    /// `s=` value; `-` when the peer sent none.
    pub session_name: String,
    /// `i=` session information.
    pub information: Option<String>,
    /// `u=` URI.
    pub uri: Option<String>,
    /// `e=` lines.
    pub emails: Vec<String>,
    /// `p=` lines.
    pub phones: Vec<String>,
    /// Session-level `c=` line.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines with their `r=` lines; never empty after parsing.
    pub timings: Vec<Timing>,
    /// `z=` value, raw.
    pub time_zones: Option<String>,
    /// `k=` value, raw (obsolete but preserved).
    pub encryption_key: Option<String>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// `m=` sections, in order.
    pub media: Vec<MediaDescription>,
}

/// The `o=` line: `<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Username; `-` if none. Odd peers put spaces in it; they are kept (collapsed to one).
    pub username: String,
    /// Session id, kept as text because peers send values beyond u64.
    pub session_id: String,
    /// Session version; a changed version means a changed description (RFC 3264 §8).
    pub session_version: u64,
    /// Network type, normally `IN`.
    pub net_type: String,
    /// Address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// Unicast address or host name of the originator.
    pub address: String,
}

/// A `c=` line: `<nettype> <addrtype> <connection-address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Network type, normally `IN`.
    pub net_type: String,
    /// Address type, `IP4` or `IP6`.
    pub addr_type: String,
    /// Address as written, possibly with a multicast `/ttl[/count]` suffix, or a host name.
    pub address: String,
}

/// A `b=<bwtype>:<bandwidth>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bandwidth {
    /// Bandwidth type, e.g. `AS`, `CT`, `TIAS`.
    pub bw_type: String,
    /// Value (kbit/s for AS/CT, bit/s for TIAS).
    pub bandwidth: u64,
}

/// A `t=<start> <stop>` line and its `r=` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// Start time (NTP seconds), 0 for unbounded.
    pub start: u64,
    /// Stop time (NTP seconds), 0 for unbounded.
    pub stop: u64,
    /// `r=` values, raw.
    pub repeats: Vec<String>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// Media type: `audio`, `video`, `application`, …
    pub media: String,
    /// Transport port; 0 means the stream is rejected or disabled.
    pub port: u16,
    /// The `/<number of ports>` suffix, if any.
    pub port_count: Option<u32>,
    /// Transport protocol, e.g. `RTP/AVP`.
    pub proto: String,
    /// Format list; RTP payload type numbers for RTP protocols.
    pub formats: Vec<String>,
    /// `i=` media title.
    pub title: Option<String>,
    /// Media-level `c=` line (the first one; further ones, multicast only, are ignored).
    pub connection: Option<Connection>,
    /// Media-level `b=` lines.
    pub bandwidths: Vec<Bandwidth>,
    /// Media-level `k=` value, raw.
    pub encryption_key: Option<String>,
    /// Media-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
}

/// Stream direction attribute (RFC 8866 §6.7; RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// `a=sendrecv` (the default when absent).
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

/// An `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type, 0..=127.
    pub payload_type: u8,
    /// Encoding name as written (compare case-insensitively).
    pub encoding: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Encoding parameters (channels for audio), if written.
    pub channels: Option<u16>,
}

/// An `a=fmtp:<pt> <params>` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    /// Payload type the parameters apply to.
    pub payload_type: u8,
    /// Format parameters, raw (e.g. `useinbandfec=1`, `0-16`).
    pub params: String,
}

/// An `a=rtcp:<port> [<nettype> <addrtype> <address>]` attribute (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtcp {
    /// RTCP port.
    pub port: u16,
    /// RTCP address, if different from the media connection address.
    pub connection: Option<Connection>,
}

/// An `a=` line. Known attributes are typed; everything else is kept raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// `a=rtpmap`.
    RtpMap(RtpMap),
    /// `a=fmtp`.
    Fmtp(Fmtp),
    /// `a=ptime` in milliseconds.
    Ptime(u32),
    /// `a=maxptime` in milliseconds.
    MaxPtime(u32),
    /// `a=sendrecv` / `a=sendonly` / `a=recvonly` / `a=inactive`.
    Direction(Direction),
    /// `a=rtcp`.
    Rtcp(Rtcp),
    /// `a=rtcp-mux` (RFC 5761).
    RtcpMux,
    /// Any other attribute, or a known one whose value did not parse.
    Other {
        /// Attribute name as written.
        name: String,
        /// Text after the first `:`, if there was one.
        value: Option<String>,
    },
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/// Splits `x=value` into (`x`, `value`); `None` for lines that are not of that shape.
fn split_line(line: &str) -> Option<(char, &str)> {
    let mut chars = line.chars();
    let kind = chars.next()?;
    if !kind.is_ascii_alphabetic() || chars.next()? != '=' {
        return None;
    }
    Some((kind, chars.as_str()))
}

fn parse_origin(value: &str, line: usize) -> Result<Origin, SdpError> {
    let tokens: Vec<&str> = value.split_whitespace().collect();
    let n = tokens.len();
    if n < 6 {
        return Err(SdpError::BadOrigin { line });
    }
    // Parse from the right so that a username containing spaces survives.
    let (user, rest) = tokens.split_at(n - 5);
    let [session_id, version, net_type, addr_type, address] = rest else {
        return Err(SdpError::BadOrigin { line });
    };
    let session_version = version.parse::<u64>().map_err(|_| SdpError::BadOrigin { line })?;
    Ok(Origin {
        username: user.join(" "),
        session_id: (*session_id).to_string(),
        session_version,
        net_type: (*net_type).to_string(),
        addr_type: (*addr_type).to_string(),
        address: (*address).to_string(),
    })
}

fn parse_connection_fields(value: &str) -> Option<Connection> {
    let mut it = value.split_whitespace();
    let net_type = it.next()?;
    let addr_type = it.next()?;
    let address = it.next()?;
    Some(Connection { net_type: net_type.to_string(), addr_type: addr_type.to_string(), address: address.to_string() })
}

fn parse_bandwidth(value: &str) -> Option<Bandwidth> {
    let (kind, bw) = value.split_once(':')?;
    let kind = kind.trim();
    if kind.is_empty() {
        return None;
    }
    Some(Bandwidth { bw_type: kind.to_string(), bandwidth: bw.trim().parse().ok()? })
}

fn parse_timing(value: &str) -> Option<Timing> {
    let mut it = value.split_whitespace();
    let start = it.next()?.parse().ok()?;
    let stop = it.next()?.parse().ok()?;
    Some(Timing { start, stop, repeats: Vec::new() })
}

fn parse_media_line(value: &str, line: usize) -> Result<MediaDescription, SdpError> {
    let mut it = value.split_whitespace();
    let (Some(media), Some(port), Some(proto)) = (it.next(), it.next(), it.next()) else {
        return Err(SdpError::BadMedia { line });
    };
    let (port, port_count) = match port.split_once('/') {
        Some((p, c)) => (p, Some(c)),
        None => (port, None),
    };
    let port = port.parse::<u16>().map_err(|_| SdpError::BadPort { line })?;
    let port_count = match port_count {
        Some(c) => Some(c.parse::<u32>().map_err(|_| SdpError::BadPort { line })?),
        None => None,
    };
    Ok(MediaDescription {
        media: media.to_string(),
        port,
        port_count,
        proto: proto.to_string(),
        formats: it.map(str::to_string).collect(),
        title: None,
        connection: None,
        bandwidths: Vec::new(),
        encryption_key: None,
        attributes: Vec::new(),
    })
}

fn parse_payload_type(s: &str) -> Option<u8> {
    s.trim().parse::<u8>().ok().filter(|pt| *pt <= 127)
}

/// Parses a millisecond value; tolerates `20.0`-style decimals some devices send.
fn parse_millis(s: &str) -> Option<u32> {
    let s = s.trim();
    if let Ok(v) = s.parse::<u32>() {
        return Some(v);
    }
    let f = s.parse::<f64>().ok()?;
    if f.is_finite() && f > 0.0 && f <= f64::from(u32::MAX) {
        Some(f.round() as u32)
    } else {
        None
    }
}

impl RtpMap {
    /// Parses the value of an `a=rtpmap:` attribute (`96 opus/48000/2`).
    pub fn parse(value: &str) -> Option<Self> {
        let (pt, enc) = value.trim().split_once(char::is_whitespace)?;
        let payload_type = parse_payload_type(pt)?;
        let mut parts = enc.trim().split('/');
        let encoding = parts.next()?.trim();
        if encoding.is_empty() {
            return None;
        }
        let clock_rate = parts.next()?.trim().parse::<u32>().ok()?;
        let channels = match parts.next() {
            Some(c) => Some(c.trim().parse::<u16>().ok()?),
            None => None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(RtpMap { payload_type, encoding: encoding.to_string(), clock_rate, channels })
    }
}

impl Fmtp {
    /// Parses the value of an `a=fmtp:` attribute (`101 0-16`).
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let (pt, params) = match value.split_once(char::is_whitespace) {
            Some((pt, params)) => (pt, params.trim()),
            None => (value, ""),
        };
        Some(Fmtp { payload_type: parse_payload_type(pt)?, params: params.to_string() })
    }
}

impl Rtcp {
    /// Parses the value of an `a=rtcp:` attribute (`53021 IN IP4 192.0.2.1`).
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let (port, rest) = match value.split_once(char::is_whitespace) {
            Some((p, r)) => (p, Some(r)),
            None => (value, None),
        };
        let port = port.parse::<u16>().ok()?;
        let connection = match rest {
            Some(r) => Some(parse_connection_fields(r)?),
            None => None,
        };
        Some(Rtcp { port, connection })
    }
}

impl Direction {
    /// Parses `sendrecv`, `sendonly`, `recvonly` or `inactive` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        [Direction::SendRecv, Direction::SendOnly, Direction::RecvOnly, Direction::Inactive]
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(s))
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Builds a direction from "this side sends" and "this side receives".
    pub fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether the side that wrote this direction sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether the side that wrote this direction receives media.
    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same stream seen from the other side: sendonly ↔ recvonly.
    pub fn reversed(self) -> Self {
        Direction::from_flags(self.receives(), self.sends())
    }

    /// The answer to an offer with direction `self` from a side whose own wish is `local`
    /// (RFC 3264 §6.1): we send only if they receive and we want to send, and vice versa.
    pub fn answer_with(self, local: Direction) -> Self {
        Direction::from_flags(local.sends() && self.receives(), local.receives() && self.sends())
    }
}

impl Attribute {
    /// Parses the text after `a=`. Never fails: unknown or unparsable attributes are kept
    /// as [`Attribute::Other`].
    pub fn parse(text: &str) -> Self {
        let (name, value) = match text.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (text, None),
        };
        let lname = name.trim().to_ascii_lowercase();
        let typed = match (lname.as_str(), value) {
            ("rtpmap", Some(v)) => RtpMap::parse(v).map(Attribute::RtpMap),
            ("fmtp", Some(v)) => Fmtp::parse(v).map(Attribute::Fmtp),
            ("ptime", Some(v)) => parse_millis(v).map(Attribute::Ptime),
            ("maxptime", Some(v)) => parse_millis(v).map(Attribute::MaxPtime),
            ("rtcp", Some(v)) => Rtcp::parse(v).map(Attribute::Rtcp),
            ("rtcp-mux", None) => Some(Attribute::RtcpMux),
            (n, None) => Direction::parse(n).map(Attribute::Direction),
            _ => None,
        };
        typed.unwrap_or_else(|| Attribute::Other { name: name.to_string(), value: value.map(str::to_string) })
    }

    /// An attribute without a value, e.g. `a=ice-lite`.
    pub fn flag(name: impl Into<String>) -> Self {
        Attribute::Other { name: name.into(), value: None }
    }

    /// An attribute with a value, e.g. `a=label:1`.
    pub fn value(name: impl Into<String>, value: impl Into<String>) -> Self {
        Attribute::Other { name: name.into(), value: Some(value.into()) }
    }

    /// The attribute name (lowercase for typed attributes).
    pub fn name(&self) -> &str {
        match self {
            Attribute::RtpMap(_) => "rtpmap",
            Attribute::Fmtp(_) => "fmtp",
            Attribute::Ptime(_) => "ptime",
            Attribute::MaxPtime(_) => "maxptime",
            Attribute::Direction(d) => d.as_str(),
            Attribute::Rtcp(_) => "rtcp",
            Attribute::RtcpMux => "rtcp-mux",
            Attribute::Other { name, .. } => name,
        }
    }
}

impl SessionDescription {
    /// Parses an SDP body. See the module docs for what is lenient and what is an error.
    pub fn parse(input: &str) -> Result<Self, SdpError> {
        let mut lines = input
            .split('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches(['\r', ' ', '\t'])))
            .filter(|(_, l)| !l.trim().is_empty());

        let (_, first) = lines.next().ok_or(SdpError::Empty)?;
        let first = first.trim_start_matches('\u{feff}').trim();
        if split_line(first) != Some(('v', "0")) && first.replace(' ', "") != "v=0" {
            return Err(SdpError::BadVersion);
        }

        let mut origin = None;
        let mut session_name: Option<String> = None;
        let mut information = None;
        let mut uri = None;
        let mut emails = Vec::new();
        let mut phones = Vec::new();
        let mut connection = None;
        let mut bandwidths = Vec::new();
        let mut timings: Vec<Timing> = Vec::new();
        let mut time_zones = None;
        let mut encryption_key = None;
        let mut attributes = Vec::new();
        let mut media: Vec<MediaDescription> = Vec::new();

        for (n, line) in lines {
            let Some((kind, value)) = split_line(line) else {
                continue;
            };
            if kind == 'm' {
                media.push(parse_media_line(value, n)?);
                continue;
            }
            if let Some(m) = media.last_mut() {
                match kind {
                    'i' => m.title = Some(value.to_string()),
                    'c' => {
                        let c = parse_connection_fields(value).ok_or(SdpError::BadConnection { line: n })?;
                        if m.connection.is_none() {
                            m.connection = Some(c);
                        }
                    }
                    'b' => m.bandwidths.extend(parse_bandwidth(value)),
                    'k' => m.encryption_key = Some(value.to_string()),
                    'a' => m.attributes.push(Attribute::parse(value)),
                    _ => {}
                }
                continue;
            }
            match kind {
                'o' if origin.is_none() => origin = Some(parse_origin(value, n)?),
                's' if session_name.is_none() => session_name = Some(value.trim().to_string()),
                'i' => information = Some(value.to_string()),
                'u' => uri = Some(value.to_string()),
                'e' => emails.push(value.to_string()),
                'p' => phones.push(value.to_string()),
                'c' => {
                    let c = parse_connection_fields(value).ok_or(SdpError::BadConnection { line: n })?;
                    if connection.is_none() {
                        connection = Some(c);
                    }
                }
                'b' => bandwidths.extend(parse_bandwidth(value)),
                't' => timings.extend(parse_timing(value)),
                'r' => {
                    if let Some(t) = timings.last_mut() {
                        t.repeats.push(value.to_string());
                    }
                }
                'z' => time_zones = Some(value.to_string()),
                'k' => encryption_key = Some(value.to_string()),
                'a' => attributes.push(Attribute::parse(value)),
                _ => {}
            }
        }

        if timings.is_empty() {
            timings.push(Timing { start: 0, stop: 0, repeats: Vec::new() });
        }
        let session_name = match session_name {
            Some(s) if !s.is_empty() => s,
            _ => "-".to_string(),
        };
        Ok(SessionDescription {
            origin: origin.ok_or(SdpError::MissingOrigin)?,
            session_name,
            information,
            uri,
            emails,
            phones,
            connection,
            bandwidths,
            timings,
            time_zones,
            encryption_key,
            attributes,
            media,
        })
    }

    /// A minimal description: the given origin, `s=-`, `t=0 0`, nothing else.
    pub fn new(origin: Origin) -> Self {
        SessionDescription {
            origin,
            session_name: "-".to_string(),
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            timings: vec![Timing { start: 0, stop: 0, repeats: Vec::new() }],
            time_zones: None,
            encryption_key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }

    /// The session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// The direction in force for `m`: its own attribute, else the session's, else sendrecv.
    pub fn effective_direction(&self, m: &MediaDescription) -> Direction {
        m.direction().or(self.direction()).unwrap_or_default()
    }

    /// The connection in force for `m`: its own `c=`, else the session-level one.
    pub fn media_connection<'a>(&'a self, m: &'a MediaDescription) -> Option<&'a Connection> {
        m.connection.as_ref().or(self.connection.as_ref())
    }

    /// The ptime in force for `m`: its own `a=ptime`, else a session-level one.
    pub fn effective_ptime(&self, m: &MediaDescription) -> Option<u32> {
        m.ptime().or_else(|| ptime_of(&self.attributes))
    }
}

impl FromStr for SessionDescription {
    type Err = SdpError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionDescription::parse(s)
    }
}

fn direction_of(attrs: &[Attribute]) -> Option<Direction> {
    attrs.iter().find_map(|a| match a {
        Attribute::Direction(d) => Some(*d),
        _ => None,
    })
}

fn ptime_of(attrs: &[Attribute]) -> Option<u32> {
    attrs.iter().find_map(|a| match a {
        Attribute::Ptime(p) if *p > 0 => Some(*p),
        _ => None,
    })
}

impl Origin {
    /// An origin for our own descriptions.
    pub fn new(username: &str, session_id: u64, session_version: u64, address: IpAddr) -> Self {
        let c = Connection::from_ip(address);
        Origin {
            username: if username.trim().is_empty() {
                "-".to_string()
            } else {
                username.split_whitespace().collect::<Vec<_>>().join(" ")
            },
            session_id: session_id.to_string(),
            session_version,
            net_type: c.net_type,
            addr_type: c.addr_type,
            address: c.address,
        }
    }
}

impl Connection {
    /// `IN IP4 <addr>` or `IN IP6 <addr>`.
    pub fn from_ip(ip: IpAddr) -> Self {
        Connection {
            net_type: "IN".to_string(),
            addr_type: if ip.is_ipv4() { "IP4" } else { "IP6" }.to_string(),
            address: ip.to_string(),
        }
    }

    /// The address as an IP, ignoring a multicast `/ttl` suffix; `None` for host names.
    pub fn ip(&self) -> Option<IpAddr> {
        let host = self.address.split('/').next().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.parse().ok()
    }

    /// RFC 2543-style hold: the address is `0.0.0.0` (or `::`).
    pub fn is_hold(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

impl MediaDescription {
    /// A new section with no attributes.
    pub fn new(media: &str, port: u16, proto: &str, formats: Vec<String>) -> Self {
        MediaDescription {
            media: media.to_string(),
            port,
            port_count: None,
            proto: proto.to_string(),
            formats,
            title: None,
            connection: None,
            bandwidths: Vec::new(),
            encryption_key: None,
            attributes: Vec::new(),
        }
    }

    /// Whether this is an `audio` stream (case-insensitive).
    pub fn is_audio(&self) -> bool {
        self.media.eq_ignore_ascii_case("audio")
    }

    /// The media-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// The `a=ptime` value, if any (ignoring 0).
    pub fn ptime(&self) -> Option<u32> {
        ptime_of(&self.attributes)
    }

    /// The `a=maxptime` value, if any (ignoring 0).
    pub fn maxptime(&self) -> Option<u32> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::MaxPtime(p) if *p > 0 => Some(*p),
            _ => None,
        })
    }

    /// Whether `a=rtcp-mux` is present.
    pub fn rtcp_mux(&self) -> bool {
        self.attributes.contains(&Attribute::RtcpMux)
    }

    /// The `a=rtcp` attribute, if any.
    pub fn rtcp(&self) -> Option<&Rtcp> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Rtcp(r) => Some(r),
            _ => None,
        })
    }

    /// The `a=rtpmap` for a payload type, if any.
    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::RtpMap(r) if r.payload_type == pt => Some(r),
            _ => None,
        })
    }

    /// The `a=fmtp` parameters for a payload type, if any.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.attributes.iter().find_map(|a| match a {
            Attribute::Fmtp(f) if f.payload_type == pt => Some(f.params.as_str()),
            _ => None,
        })
    }

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

// ---------------------------------------------------------------------------------------------
// Serialization
// ---------------------------------------------------------------------------------------------

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = if self.username.is_empty() { "-" } else { &self.username };
        write!(
            f,
            "{} {} {} {} {} {}",
            user, self.session_id, self.session_version, self.net_type, self.addr_type, self.address
        )
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.net_type, self.addr_type, self.address)
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.bw_type, self.bandwidth)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for RtpMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.payload_type, self.encoding, self.clock_rate)?;
        if let Some(c) = self.channels {
            write!(f, "/{c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Fmtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.params.is_empty() {
            write!(f, "{}", self.payload_type)
        } else {
            write!(f, "{} {}", self.payload_type, self.params)
        }
    }
}

impl fmt::Display for Rtcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.port)?;
        if let Some(c) = &self.connection {
            write!(f, " {c}")?;
        }
        Ok(())
    }
}

/// Formats the text after `a=`.
impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Attribute::RtpMap(r) => write!(f, "rtpmap:{r}"),
            Attribute::Fmtp(x) => write!(f, "fmtp:{x}"),
            Attribute::Ptime(p) => write!(f, "ptime:{p}"),
            Attribute::MaxPtime(p) => write!(f, "maxptime:{p}"),
            Attribute::Direction(d) => f.write_str(d.as_str()),
            Attribute::Rtcp(r) => write!(f, "rtcp:{r}"),
            Attribute::RtcpMux => f.write_str("rtcp-mux"),
            Attribute::Other { name, value } => match value {
                Some(v) => write!(f, "{name}:{v}"),
                None => f.write_str(name),
            },
        }
    }
}

/// Formats the section: `m=` line then `i= c= b= k= a=`, each ending in CRLF.
impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(c) = self.port_count {
            write!(f, "/{c}")?;
        }
        write!(f, " {}", self.proto)?;
        for fmt_ in &self.formats {
            write!(f, " {fmt_}")?;
        }
        f.write_str("\r\n")?;
        if let Some(i) = &self.title {
            write!(f, "i={i}\r\n")?;
        }
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        for b in &self.bandwidths {
            write!(f, "b={b}\r\n")?;
        }
        if let Some(k) = &self.encryption_key {
            write!(f, "k={k}\r\n")?;
        }
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        Ok(())
    }
}

/// Formats the body with CRLF line ends in RFC 8866 order: v o s i u e p c b t r z k a m….
impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v=0\r\no={}\r\n", self.origin)?;
        let s = if self.session_name.trim().is_empty() { "-" } else { &self.session_name };
        write!(f, "s={s}\r\n")?;
        if let Some(i) = &self.information {
            write!(f, "i={i}\r\n")?;
        }
        if let Some(u) = &self.uri {
            write!(f, "u={u}\r\n")?;
        }
        for e in &self.emails {
            write!(f, "e={e}\r\n")?;
        }
        for p in &self.phones {
            write!(f, "p={p}\r\n")?;
        }
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        for b in &self.bandwidths {
            write!(f, "b={b}\r\n")?;
        }
        if self.timings.is_empty() {
            f.write_str("t=0 0\r\n")?;
        }
        for t in &self.timings {
            write!(f, "t={} {}\r\n", t.start, t.stop)?;
            for r in &t.repeats {
                write!(f, "r={r}\r\n")?;
            }
        }
        if let Some(z) = &self.time_zones {
            write!(f, "z={z}\r\n")?;
        }
        if let Some(k) = &self.encryption_key {
            write!(f, "k={k}\r\n")?;
        }
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Codec catalogue
// ---------------------------------------------------------------------------------------------

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

    fn rtpmap(&self) -> RtpMap {
        RtpMap {
            payload_type: self.payload_type,
            encoding: self.name.clone(),
            clock_rate: self.clock_rate,
            channels: (self.channels != 1).then_some(self.channels),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Offer/answer (RFC 3264)
// ---------------------------------------------------------------------------------------------

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
}

impl LocalCapabilities {
    /// Defaults: PCMU 0, PCMA 8, opus 111, telephone-event 101; ptime 20; sendrecv.
    pub fn new(address: IpAddr, port: u16) -> Self {
        LocalCapabilities {
            codecs: vec![Codec::pcmu(), Codec::pcma(), Codec::opus(), Codec::telephone_event()],
            address,
            port,
            ptime: 20,
            direction: Direction::SendRecv,
            rtcp_mux: false,
            username: "dialtone".to_string(),
            session_name: "dialtone".to_string(),
        }
    }

    fn supports(&self, c: &Codec) -> Option<&Codec> {
        self.codecs.iter().find(|ours| ours.same_encoding(c))
    }
}

/// The result of an offer/answer exchange for the one audio stream in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Index of the m= line in use.
    pub media_index: usize,
    /// Where to send RTP (an unspecified IP means RFC 2543 hold: send nothing).
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP: the RTP address with rtcp-mux, else `a=rtcp`, else port + 1.
    pub remote_rtcp: SocketAddr,
    /// The codec to send: PT and fmtp as the peer wrote them.
    pub codec: Codec,
    /// All codecs both sides accepted in the stream's order (first = [`Negotiated::codec`]);
    /// the peer may switch between them, so decode all.
    pub codecs: Vec<Codec>,
    /// The negotiated `telephone-event` format, if any.
    pub telephone_event: Option<Codec>,
    /// Packetization time in ms to send with.
    pub ptime: u32,
    /// What we do: whether we send and/or receive.
    pub local_direction: Direction,
    /// What the peer does (an RFC 2543 `c=0.0.0.0` counts as not receiving).
    pub remote_direction: Direction,
    /// RTP and RTCP share one port (RFC 5761).
    pub rtcp_mux: bool,
}

impl Negotiated {
    /// The telephone-event payload type, if negotiated.
    pub fn telephone_event_pt(&self) -> Option<u8> {
        self.telephone_event.as_ref().map(|c| c.payload_type)
    }
}

/// The answer we produce to an offer, and what it settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The answer body to send.
    pub sdp: SessionDescription,
    /// The negotiated stream.
    pub negotiated: Negotiated,
}

/// RTP profiles we can answer: plain AVP and AVPF (no SRTP, no DTLS).
fn is_supported_proto(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/AVP") || proto.eq_ignore_ascii_case("RTP/AVPF")
}

fn push_codec_attrs(attrs: &mut Vec<Attribute>, c: &Codec) {
    attrs.push(Attribute::RtpMap(c.rtpmap()));
    if let Some(p) = &c.fmtp {
        attrs.push(Attribute::Fmtp(Fmtp { payload_type: c.payload_type, params: p.clone() }));
    }
}

/// Builds an offer with one audio m= line listing all of `caps.codecs` (duplicate payload
/// types skipped), their rtpmap/fmtp, ptime, optional rtcp-mux and `caps.direction`.
pub fn create_offer(caps: &LocalCapabilities, session_id: u64, version: u64) -> SessionDescription {
    let mut sdp = SessionDescription::new(Origin::new(&caps.username, session_id, version, caps.address));
    sdp.session_name = caps.session_name.clone();
    sdp.connection = Some(Connection::from_ip(caps.address));

    let mut seen = Vec::new();
    let mut m = MediaDescription::new("audio", caps.port, "RTP/AVP", Vec::new());
    for c in &caps.codecs {
        if seen.contains(&c.payload_type) {
            continue;
        }
        seen.push(c.payload_type);
        m.formats.push(c.payload_type.to_string());
        push_codec_attrs(&mut m.attributes, c);
    }
    m.attributes.push(Attribute::Ptime(caps.ptime));
    if caps.rtcp_mux {
        m.attributes.push(Attribute::RtcpMux);
    }
    m.attributes.push(Attribute::Direction(caps.direction));
    sdp.media.push(m);
    sdp
}

fn rejected(m: &MediaDescription) -> MediaDescription {
    MediaDescription::new(&m.media, 0, &m.proto, m.formats.clone())
}

/// Resolves the remote address and RFC 2543 hold flag of a stream.
fn remote_endpoint(sdp: &SessionDescription, m: &MediaDescription) -> Result<(IpAddr, bool), OfferAnswerError> {
    let conn = sdp.media_connection(m).ok_or(OfferAnswerError::MissingConnection)?;
    let ip = conn.ip().ok_or_else(|| OfferAnswerError::UnsupportedAddress(conn.address.clone()))?;
    Ok((ip, ip.is_unspecified()))
}

fn remote_rtcp(m: &MediaDescription, rtp: SocketAddr, mux: bool) -> SocketAddr {
    if mux {
        return rtp;
    }
    match m.rtcp() {
        Some(r) => {
            let ip = r.connection.as_ref().and_then(Connection::ip).unwrap_or(rtp.ip());
            SocketAddr::new(ip, r.port)
        }
        None => SocketAddr::new(rtp.ip(), rtp.port().checked_add(1).unwrap_or(rtp.port())),
    }
}

/// Picks the telephone-event format: among `candidates` (in order) those `accept` admits,
/// preferring the one whose clock matches the primary codec.
fn pick_telephone_event(candidates: &[Codec], primary: &Codec, accept: impl Fn(&Codec) -> bool) -> Option<Codec> {
    let ok: Vec<&Codec> = candidates.iter().filter(|c| c.is_telephone_event() && accept(c)).collect();
    ok.iter().find(|c| c.clock_rate == primary.clock_rate).or(ok.first()).map(|c| (*c).clone())
}

/// Answers one offered audio stream; `Ok(None)` if there is no common codec.
fn answer_stream(
    offer: &SessionDescription,
    m: &MediaDescription,
    index: usize,
    caps: &LocalCapabilities,
) -> Result<Option<(MediaDescription, Negotiated)>, OfferAnswerError> {
    let offered = m.codecs();
    // Common codecs, offerer's order and PTs; the second element is our own entry.
    let common: Vec<(&Codec, &Codec)> = offered
        .iter()
        .filter(|c| !c.is_telephone_event())
        .filter_map(|c| caps.supports(c).map(|ours| (c, ours)))
        .collect();
    let Some((primary, _)) = common.first() else {
        return Ok(None);
    };
    let (ip, legacy_hold) = remote_endpoint(offer, m)?;
    let te = pick_telephone_event(&offered, primary, |c| caps.supports(c).is_some());

    let offered_dir = offer.effective_direction(m);
    let remote_direction = if legacy_hold { Direction::from_flags(offered_dir.sends(), false) } else { offered_dir };
    let local_direction = remote_direction.answer_with(caps.direction);

    let mut ptime = offer.effective_ptime(m).unwrap_or(caps.ptime);
    if let Some(max) = m.maxptime() {
        ptime = ptime.min(max);
    }
    let rtcp_mux = m.rtcp_mux();
    let remote_rtp = SocketAddr::new(ip, m.port);

    // Answer m= line: offered PTs and names, our fmtp (it describes what we receive).
    let mut answer = MediaDescription::new(&m.media, caps.port, &m.proto, Vec::new());
    let te_pair = te.as_ref().and_then(|t| caps.supports(t).map(|ours| (t, ours)));
    for (theirs, ours) in common.iter().copied().chain(te_pair) {
        answer.formats.push(theirs.payload_type.to_string());
        let mut c = theirs.clone();
        c.fmtp.clone_from(&ours.fmtp);
        push_codec_attrs(&mut answer.attributes, &c);
    }
    answer.attributes.push(Attribute::Ptime(ptime));
    if rtcp_mux {
        answer.attributes.push(Attribute::RtcpMux);
    }
    answer.attributes.push(Attribute::Direction(local_direction));

    let negotiated = Negotiated {
        media_index: index,
        remote_rtp,
        remote_rtcp: remote_rtcp(m, remote_rtp, rtcp_mux),
        codec: (*primary).clone(),
        codecs: common.iter().map(|(c, _)| (*c).clone()).collect(),
        telephone_event: te,
        ptime,
        local_direction,
        remote_direction,
        rtcp_mux,
    };
    Ok(Some((answer, negotiated)))
}

/// Answers an offer (RFC 3264 §6): one m= line per offered one, in order. The first audio
/// stream on RTP/AVP(F) with a non-zero port and a common codec is accepted, keeping the
/// offerer's codec order and payload types; every other stream gets port 0 with its formats.
/// `Err(NoCommonCodec)` if no audio stream can be accepted.
pub fn create_answer(
    offer: &SessionDescription,
    caps: &LocalCapabilities,
    session_id: u64,
    version: u64,
) -> Result<Answer, OfferAnswerError> {
    let mut sdp = SessionDescription::new(Origin::new(&caps.username, session_id, version, caps.address));
    sdp.session_name = caps.session_name.clone();
    sdp.connection = Some(Connection::from_ip(caps.address));

    let mut negotiated = None;
    for (index, m) in offer.media.iter().enumerate() {
        if negotiated.is_none() && m.port != 0 && m.is_audio() && is_supported_proto(&m.proto) {
            if let Some((answer_m, n)) = answer_stream(offer, m, index, caps)? {
                sdp.media.push(answer_m);
                negotiated = Some(n);
                continue;
            }
        }
        sdp.media.push(rejected(m));
    }
    let negotiated = negotiated.ok_or(OfferAnswerError::NoCommonCodec)?;
    Ok(Answer { sdp, negotiated })
}

/// Applies the peer's answer to our offer (UAC side, 183/200/ACK): the first audio stream
/// both sides kept, its first answered codec that we offered (with the answer's PT), the
/// telephone-event format, addresses and directions.
pub fn negotiate_from_answer(
    our_offer: &SessionDescription,
    their_answer: &SessionDescription,
) -> Result<Negotiated, OfferAnswerError> {
    if our_offer.media.len() != their_answer.media.len() {
        return Err(OfferAnswerError::MediaCountMismatch {
            offered: our_offer.media.len(),
            answered: their_answer.media.len(),
        });
    }
    for (index, (om, am)) in our_offer.media.iter().zip(&their_answer.media).enumerate() {
        if om.port == 0 || am.port == 0 || !om.is_audio() || !am.is_audio() {
            continue;
        }
        let offered = om.codecs();
        let answered = am.codecs();
        let was_offered = |c: &Codec| offered.iter().any(|o| o.same_encoding(c));
        let common: Vec<Codec> =
            answered.iter().filter(|c| !c.is_telephone_event() && was_offered(c)).cloned().collect();
        let Some(primary) = common.first().cloned() else {
            continue;
        };
        let te = pick_telephone_event(&answered, &primary, was_offered);
        let (ip, legacy_hold) = remote_endpoint(their_answer, am)?;
        let answered_dir = their_answer.effective_direction(am);
        let remote_direction =
            if legacy_hold { Direction::from_flags(answered_dir.sends(), false) } else { answered_dir };
        let ours = our_offer.effective_direction(om);
        let local_direction = Direction::from_flags(
            ours.sends() && remote_direction.receives(),
            ours.receives() && remote_direction.sends(),
        );
        let mut ptime = their_answer.effective_ptime(am).or_else(|| our_offer.effective_ptime(om)).unwrap_or(20);
        if let Some(max) = am.maxptime() {
            ptime = ptime.min(max);
        }
        let rtcp_mux = om.rtcp_mux() && am.rtcp_mux();
        let remote_rtp = SocketAddr::new(ip, am.port);
        return Ok(Negotiated {
            media_index: index,
            remote_rtp,
            remote_rtcp: remote_rtcp(am, remote_rtp, rtcp_mux),
            codec: primary,
            codecs: common,
            telephone_event: te,
            ptime,
            local_direction,
            remote_direction,
            rtcp_mux,
        });
    }
    Err(OfferAnswerError::NoCommonCodec)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// Our answer to a new offer inside an established session (a re-INVITE or UPDATE, RFC
/// 3264 §8): what we sent last (`last`), each media section's direction set per §6.1 from
/// the offer's (hold: a `sendonly` offer is answered `recvonly`, `inactive` with
/// `inactive`; resume: `sendrecv` with `sendrecv`), and the origin's version one up when
/// that changed anything (§8: the version increases with each change, and only then).
pub fn reanswer(last: &str, offer: &str) -> Result<SessionDescription, SdpError> {
    let mut ours = SessionDescription::parse(last)?;
    let theirs = SessionDescription::parse(offer)?;
    let before = ours.to_string();
    ours.attributes.retain(|a| !matches!(a, Attribute::Direction(_)));
    for (i, m) in ours.media.iter_mut().enumerate() {
        let Some(offered) = theirs.media.get(i) else { continue };
        let dir = theirs.effective_direction(offered).answer_with(Direction::SendRecv);
        m.attributes.retain(|a| !matches!(a, Attribute::Direction(_)));
        m.attributes.push(Attribute::Direction(dir));
    }
    if ours.to_string() != before {
        ours.origin.session_version += 1;
    }
    Ok(ours)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SIPP_DEFAULT: &str = include_str!("../../fixtures/sdp/sipp_uac_default.sdp");
    const BARESIP: &str = include_str!("../../fixtures/sdp/baresip_offer.sdp");
    const CARRIER: &str = include_str!("../../fixtures/sdp/carrier_offer.sdp");
    const WEBRTC: &str = include_str!("../../fixtures/sdp/webrtc_like_offer.sdp");
    const HOLD_SENDONLY: &str = include_str!("../../fixtures/sdp/hold_sendonly.sdp");
    const HOLD_LEGACY: &str = include_str!("../../fixtures/sdp/hold_c_zero.sdp");

    const FIXTURES: &[(&str, &str)] = &[
        ("sipp_uac_default", SIPP_DEFAULT),
        ("baresip_offer", BARESIP),
        ("carrier_offer", CARRIER),
        ("webrtc_like_offer", WEBRTC),
        ("hold_sendonly", HOLD_SENDONLY),
        ("hold_c_zero", HOLD_LEGACY),
    ];

    fn caps() -> LocalCapabilities {
        LocalCapabilities::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200)), 40000)
    }

    fn sdp(s: &str) -> SessionDescription {
        SessionDescription::parse(s).expect("test SDP parses")
    }

    fn answer(offer: &str) -> Answer {
        create_answer(&sdp(offer), &caps(), 7, 1).expect("answerable")
    }

    /// A small offer: `fmts` on the m= line plus the given attribute lines.
    fn offer_with(m_line: &str, extra: &str) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
             {m_line}\r\n{extra}"
        )
    }

    // ---- parser -------------------------------------------------------------------------

    #[test]
    fn parses_sipp_default() {
        let d = sdp(SIPP_DEFAULT);
        assert_eq!(d.origin.username, "user1");
        assert_eq!(d.origin.session_id, "53655765");
        assert_eq!(d.origin.session_version, 2353687637);
        assert_eq!(d.origin.addr_type, "IP4");
        assert_eq!(d.session_name, "-");
        assert_eq!(d.connection.as_ref().and_then(Connection::ip), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(d.media.len(), 1);
        let m = &d.media[0];
        assert_eq!((m.media.as_str(), m.port, m.proto.as_str()), ("audio", 6000, "RTP/AVP"));
        assert_eq!(m.formats, vec!["0"]);
        assert_eq!(m.codecs(), vec![Codec::pcmu()]);
    }

    #[test]
    fn lf_and_crlf_give_same_result() {
        let lf = SIPP_DEFAULT.replace("\r\n", "\n");
        let crlf = lf.replace('\n', "\r\n");
        assert_eq!(sdp(&lf), sdp(&crlf));
    }

    #[test]
    fn empty_or_missing_session_name_becomes_dash() {
        let empty = SIPP_DEFAULT.replace("s=-", "s=");
        assert_eq!(sdp(&empty).session_name, "-");
        let missing = SIPP_DEFAULT.replace("s=-\r\n", "");
        assert_eq!(sdp(&missing).session_name, "-");
        assert!(sdp(&empty).to_string().contains("\r\ns=-\r\n"));
    }

    #[test]
    fn missing_timing_defaults_to_zero() {
        let d = sdp(&SIPP_DEFAULT.replace("t=0 0\r\n", ""));
        assert_eq!(d.timings.len(), 1);
        assert_eq!((d.timings[0].start, d.timings[0].stop), (0, 0));
    }

    #[test]
    fn odd_origin_username_and_huge_session_id() {
        let d = sdp("v=0\no=Sonus UAC 184467440737095516150 3 IN IP4 203.0.113.9\ns=x\nt=0 0\n\
             m=audio 1000 RTP/AVP 0\nc=IN IP4 203.0.113.9\n");
        assert_eq!(d.origin.username, "Sonus UAC");
        assert_eq!(d.origin.session_id, "184467440737095516150");
        assert_eq!(d.origin.session_version, 3);
        // Connection only at media level.
        assert!(d.connection.is_none());
        assert!(d.media[0].connection.is_some());
        assert_eq!(sdp(&d.to_string()), d);
    }

    #[test]
    fn unknown_lines_and_attributes_preserved_or_skipped() {
        let body = offer_with(
            "m=audio 4000 RTP/AVP 0 18",
            "a=silenceSupp:off - - - -\r\na=X-nat:0\r\na=ice-lite\r\ny=unknown\r\ngarbage\r\n",
        );
        let d = sdp(&body);
        let attrs = &d.media[0].attributes;
        assert_eq!(attrs[0], Attribute::value("silenceSupp", "off - - - -"));
        assert_eq!(attrs[1], Attribute::value("X-nat", "0"));
        assert_eq!(attrs[2], Attribute::flag("ice-lite"));
        let out = d.to_string();
        assert!(out.contains("a=silenceSupp:off - - - -\r\n"));
        assert!(!out.contains("garbage"));
    }

    #[test]
    fn typed_attributes() {
        let d = sdp(&offer_with(
            "m=audio 4000 RTP/AVP 96 101",
            "a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1; stereo=0\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=ptime:20.0\r\na=maxptime:40\r\n\
             a=rtcp:4001 IN IP4 198.51.100.8\r\na=rtcp-mux\r\na=recvonly\r\na=ptime:abc\r\n",
        ));
        let m = &d.media[0];
        assert_eq!(
            m.rtpmap(96),
            Some(&RtpMap { payload_type: 96, encoding: "opus".into(), clock_rate: 48000, channels: Some(2) })
        );
        assert_eq!(m.fmtp(96), Some("useinbandfec=1; stereo=0"));
        assert_eq!(m.ptime(), Some(20));
        assert_eq!(m.maxptime(), Some(40));
        assert_eq!(m.rtcp().map(|r| r.port), Some(4001));
        assert!(m.rtcp_mux());
        assert_eq!(m.direction(), Some(Direction::RecvOnly));
        assert_eq!(m.attributes.last(), Some(&Attribute::value("ptime", "abc")), "unparsable typed attribute kept raw");
    }

    #[test]
    fn static_pt_without_rtpmap() {
        let d = sdp(&offer_with("m=audio 4000 RTP/AVP 18 3 9 13 0 8 99", ""));
        let names: Vec<_> = d.media[0].codecs().into_iter().map(|c| c.name).collect();
        // 99 is dynamic without rtpmap: unknown, skipped.
        assert_eq!(names, ["G729", "GSM", "G722", "CN", "PCMU", "PCMA"]);
        assert_eq!(static_codec(9).map(|c| c.clock_rate), Some(8000));
        assert_eq!(static_payload_type("pcma", 8000, 1), Some(8));
        assert_eq!(static_payload_type("opus", 48000, 2), None);
    }

    #[test]
    fn rtpmap_names_case_insensitive() {
        let body = offer_with("m=audio 4000 RTP/AVP 97 0", "a=rtpmap:97 OPUS/48000/2\r\na=rtpmap:0 pcmu/8000\r\n");
        let a = answer(&body);
        assert_eq!(a.negotiated.codec.payload_type, 97);
        assert_eq!(a.negotiated.codec.name, "OPUS");
        assert_eq!(a.negotiated.codecs.len(), 2);
        // Our opus fmtp is in the answer under the offerer's PT.
        assert!(a.sdp.to_string().contains("a=fmtp:97 useinbandfec=1\r\n"));
    }

    #[test]
    fn ipv6_connection() {
        let body = "v=0\r\no=- 5 5 IN IP6 2001:db8::5\r\ns=-\r\nc=IN IP6 2001:db8::5\r\nt=0 0\r\n\
                    m=audio 5004 RTP/AVP 8\r\n";
        let a = answer(body);
        let ip: IpAddr = "2001:db8::5".parse().unwrap();
        assert_eq!(a.negotiated.remote_rtp, SocketAddr::new(ip, 5004));
        assert_eq!(a.negotiated.remote_rtcp, SocketAddr::new(ip, 5005));
        // Our own side in IPv6 too.
        let mut c = caps();
        c.address = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let a = create_answer(&sdp(body), &c, 1, 1).unwrap();
        assert!(a.sdp.to_string().contains("c=IN IP6 ::1\r\n"));
        assert!(a.sdp.to_string().contains("o=dialtone 1 1 IN IP6 ::1\r\n"));
    }

    #[test]
    fn malformed_bodies_error() {
        let cases: &[(&str, SdpError)] = &[
            ("", SdpError::Empty),
            ("\r\n \r\n", SdpError::Empty),
            ("v=1\r\n", SdpError::BadVersion),
            ("o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n", SdpError::BadVersion),
            ("hello world", SdpError::BadVersion),
            ("v=0\r\ns=-\r\n", SdpError::MissingOrigin),
            ("v=0\r\no=- 1 IN IP4 x\r\n", SdpError::BadOrigin { line: 2 }),
            ("v=0\r\no=- 1 x IN IP4 h\r\n", SdpError::BadOrigin { line: 2 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4\r\n", SdpError::BadConnection { line: 3 }),
            ("v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 5\r\n", SdpError::BadMedia { line: 3 }),
            ("v=0\no=- 1 1 IN IP4 h\nm=audio abc RTP/AVP 0\n", SdpError::BadPort { line: 3 }),
            ("v=0\no=- 1 1 IN IP4 h\nm=audio 70000 RTP/AVP 0\n", SdpError::BadPort { line: 3 }),
            ("v=0\no=- 1 1 IN IP4 h\nm=audio 5/x RTP/AVP 0\n", SdpError::BadPort { line: 3 }),
            ("v=0\no=- 1 1 IN IP4 h\nm=audio 5 RTP/AVP 0\nc=IN\n", SdpError::BadConnection { line: 4 }),
        ];
        for (body, want) in cases {
            assert_eq!(SessionDescription::parse(body).as_ref(), Err(want), "{body:?}");
        }
    }

    #[test]
    fn weird_input_never_panics() {
        let weird = [
            "v=0\r\no=é ü 1 1 IN IP4 ∂\r\n€=x\r\na=\r\na=:\r\na=rtpmap:\r\na=rtpmap:0\r\n",
            "v=0\no=- 1 1 IN IP4 h\nm=audio 0 x\na=rtpmap:999 X/Y/Z/W\na=fmtp:\na=rtcp:\nb=\nb=AS:\nt=\nr=1\n",
            "\u{feff}v=0\no=- 1 1 IN IP4 h\nm=audio 1 RTP/AVP 255 -1 a 96\na=rtpmap:96 x/0\n",
            "v=0\no=- 1 1 IN IP4 h\nc=IN IP4 not-an-ip\nm=audio 1 RTP/AVP 0\n",
            "v=0\r\r\no=- 1 1 IN IP4 h\r\r\n=\n==\na\nm\n",
        ];
        for w in weird {
            if let Ok(d) = SessionDescription::parse(w) {
                let _ = create_answer(&d, &caps(), 1, 1);
                let _ = negotiate_from_answer(&d, &d);
                let again = SessionDescription::parse(&d.to_string()).expect("reparses");
                assert_eq!(again, d);
            }
        }
        // Every prefix and every single-line deletion of every fixture.
        for (_, text) in FIXTURES {
            for (i, _) in text.char_indices() {
                if let Ok(d) = SessionDescription::parse(&text[..i]) {
                    let _ = create_answer(&d, &caps(), 1, 1);
                }
            }
            let lines: Vec<&str> = text.lines().collect();
            for skip in 0..lines.len() {
                let body: Vec<&str> = lines.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, l)| *l).collect();
                if let Ok(d) = SessionDescription::parse(&body.join("\n")) {
                    let _ = create_answer(&d, &caps(), 1, 1);
                    let _ = negotiate_from_answer(&d, &d);
                }
            }
        }
    }

    #[test]
    fn hostname_connection_is_unsupported_address() {
        let body = "v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 media.example.net\nt=0 0\nm=audio 1 RTP/AVP 0\n";
        assert_eq!(
            create_answer(&sdp(body), &caps(), 1, 1).err(),
            Some(OfferAnswerError::UnsupportedAddress("media.example.net".into()))
        );
        let no_c = "v=0\no=- 1 1 IN IP4 h\ns=-\nt=0 0\nm=audio 1 RTP/AVP 0\n";
        assert_eq!(create_answer(&sdp(no_c), &caps(), 1, 1).err(), Some(OfferAnswerError::MissingConnection));
    }

    // ---- round trip ---------------------------------------------------------------------

    #[test]
    fn fixtures_round_trip() {
        for (name, text) in FIXTURES {
            let a = SessionDescription::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            let out = a.to_string();
            let b = SessionDescription::parse(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(a, b, "{name}");
            assert_eq!(out, b.to_string(), "{name}");
            assert!(out.ends_with("\r\n") && !out.replace("\r\n", "").contains('\n'), "{name}");
            // Nothing dropped: same number of a= and m= lines as the input.
            for prefix in ["a=", "m=", "b=", "c="] {
                let count = |s: &str| s.lines().filter(|l| l.starts_with(prefix)).count();
                assert_eq!(count(text), count(&out), "{name}: {prefix} lines");
            }
        }
    }

    #[test]
    fn serializer_order() {
        let body = "v=0\nm=audio 1 RTP/AVP 0\n"; // m before o: o is ignored at media level
        assert_eq!(SessionDescription::parse(body), Err(SdpError::MissingOrigin));
        let d = sdp("v=0\na=tool:x\nt=1 2\nr=604800 3600 0\nk=prompt\nb=AS:1\nc=IN IP4 192.0.2.1\n\
             p=+1 555 0100\ne=a@example.com\nu=http://example.com/s\ni=info\ns=S\n\
             o=- 1 1 IN IP4 192.0.2.1\nz=2882844526 -1h\n");
        assert_eq!(
            d.to_string(),
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=S\r\ni=info\r\nu=http://example.com/s\r\n\
             e=a@example.com\r\np=+1 555 0100\r\nc=IN IP4 192.0.2.1\r\nb=AS:1\r\nt=1 2\r\n\
             r=604800 3600 0\r\nz=2882844526 -1h\r\nk=prompt\r\na=tool:x\r\n"
        );
    }

    // ---- offer --------------------------------------------------------------------------

    #[test]
    fn default_offer() {
        let offer = create_offer(&caps(), 42, 1);
        let text = offer.to_string();
        assert_eq!(
            text,
            "v=0\r\no=dialtone 42 1 IN IP4 192.0.2.200\r\ns=dialtone\r\nc=IN IP4 192.0.2.200\r\n\
             t=0 0\r\nm=audio 40000 RTP/AVP 0 8 111 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:8 PCMA/8000\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n\
             a=sendrecv\r\n"
        );
        assert_eq!(sdp(&text), offer);
    }

    #[test]
    fn hold_offer_and_rtcp_mux_option() {
        let mut c = caps();
        c.direction = Direction::SendOnly;
        c.rtcp_mux = true;
        c.codecs.push(Codec::new("PCMU", 8000, 1, 0)); // duplicate PT skipped
        let offer = create_offer(&c, 42, 2);
        assert_eq!(offer.media[0].direction(), Some(Direction::SendOnly));
        assert!(offer.media[0].rtcp_mux());
        assert_eq!(offer.media[0].formats, ["0", "8", "111", "101"]);
    }

    // ---- answer -------------------------------------------------------------------------

    #[test]
    fn sipp_default_answer_pcmu() {
        let a = answer(SIPP_DEFAULT);
        let n = &a.negotiated;
        assert_eq!(n.codec, Codec::pcmu());
        assert_eq!(n.remote_rtp, "127.0.0.1:6000".parse().unwrap());
        assert_eq!(n.remote_rtcp, "127.0.0.1:6001".parse().unwrap());
        assert_eq!(n.telephone_event, None);
        assert_eq!(n.ptime, 20);
        assert_eq!((n.local_direction, n.remote_direction), (Direction::SendRecv, Direction::SendRecv));
        assert!(!n.rtcp_mux);
        assert_eq!(
            a.sdp.to_string(),
            "v=0\r\no=dialtone 7 1 IN IP4 192.0.2.200\r\ns=dialtone\r\nc=IN IP4 192.0.2.200\r\n\
             t=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\n\
             a=sendrecv\r\n"
        );
    }

    #[test]
    fn dynamic_pts_of_offer_kept() {
        let body = offer_with(
            "m=audio 4000 RTP/AVP 96 100",
            "a=rtpmap:96 opus/48000/2\r\na=fmtp:96 maxplaybackrate=16000\r\n\
             a=rtpmap:100 telephone-event/8000\r\na=fmtp:100 0-15\r\n",
        );
        let a = answer(&body);
        let n = &a.negotiated;
        assert_eq!(n.codec.payload_type, 96);
        assert_eq!(n.codec.name, "opus");
        assert_eq!((n.codec.clock_rate, n.codec.channels), (48000, 2));
        assert_eq!(n.codec.fmtp.as_deref(), Some("maxplaybackrate=16000"), "peer's fmtp");
        assert_eq!(n.telephone_event_pt(), Some(100));
        let m = &a.sdp.media[0];
        assert_eq!(m.formats, ["96", "100"]);
        assert_eq!(m.rtpmap(96).map(|r| r.clock_rate), Some(48000));
        assert_eq!(m.fmtp(100), Some("0-16"));
        assert!(m.rtpmap(111).is_none() && m.rtpmap(101).is_none());
    }

    #[test]
    fn offerer_order_honoured() {
        let a = answer(&offer_with("m=audio 4000 RTP/AVP 8 0", ""));
        assert_eq!(a.negotiated.codec, Codec::pcma());
        assert_eq!(a.sdp.media[0].formats, ["8", "0"]);
        let a = answer(&offer_with("m=audio 4000 RTP/AVP 0 8", ""));
        assert_eq!(a.negotiated.codec, Codec::pcmu());
    }

    #[test]
    fn directions_per_rfc3264() {
        for (offered, expect_local, expect_remote) in [
            ("a=sendonly\r\n", Direction::RecvOnly, Direction::SendOnly),
            ("a=recvonly\r\n", Direction::SendOnly, Direction::RecvOnly),
            ("a=inactive\r\n", Direction::Inactive, Direction::Inactive),
            ("a=sendrecv\r\n", Direction::SendRecv, Direction::SendRecv),
            ("", Direction::SendRecv, Direction::SendRecv),
        ] {
            let a = answer(&offer_with("m=audio 4000 RTP/AVP 0", offered));
            assert_eq!(a.negotiated.local_direction, expect_local, "{offered:?}");
            assert_eq!(a.negotiated.remote_direction, expect_remote, "{offered:?}");
            assert_eq!(a.sdp.media[0].direction(), Some(expect_local));
        }
        // Session-level direction applies when the m= line has none.
        let body = SIPP_DEFAULT.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
        assert_eq!(answer(&body).negotiated.local_direction, Direction::RecvOnly);
        // Our configured direction is intersected in.
        let mut c = caps();
        c.direction = Direction::SendOnly;
        let a = create_answer(&sdp(SIPP_DEFAULT), &c, 1, 1).unwrap();
        assert_eq!(a.negotiated.local_direction, Direction::SendOnly);
        let a = create_answer(&sdp(HOLD_SENDONLY), &c, 1, 1).unwrap();
        assert_eq!(a.negotiated.local_direction, Direction::Inactive);
    }

    #[test]
    fn hold_fixtures() {
        let a = answer(HOLD_SENDONLY);
        assert_eq!(a.negotiated.local_direction, Direction::RecvOnly);
        let a = answer(HOLD_LEGACY);
        assert!(a.negotiated.remote_rtp.ip().is_unspecified());
        assert_eq!(a.negotiated.remote_direction, Direction::SendOnly);
        assert_eq!(a.negotiated.local_direction, Direction::RecvOnly);
        assert!(sdp(HOLD_LEGACY).connection.as_ref().is_some_and(Connection::is_hold));
    }

    #[test]
    fn video_rejected_audio_accepted() {
        let body = offer_with(
            "m=video 5000 RTP/AVP 96",
            "a=rtpmap:96 H264/90000\r\nm=audio 4000 RTP/AVP 0 101\r\n\
             a=rtpmap:101 telephone-event/8000\r\nm=audio 4002 RTP/AVP 8\r\n",
        );
        let a = answer(&body);
        assert_eq!(a.sdp.media.len(), 3);
        let v = &a.sdp.media[0];
        assert_eq!((v.media.as_str(), v.port, v.formats.clone()), ("video", 0, vec!["96".to_string()]));
        assert_eq!(a.sdp.media[1].port, 40000);
        assert_eq!(a.sdp.media[1].formats, ["0", "101"]);
        // Only the first acceptable audio stream is taken.
        assert_eq!((a.sdp.media[2].port, a.sdp.media[2].formats.clone()), (0, vec!["8".to_string()]));
        assert_eq!(a.negotiated.media_index, 1);
        assert_eq!(a.negotiated.telephone_event_pt(), Some(101));
    }

    #[test]
    fn port_zero_and_unknown_proto_rejected() {
        let body =
            offer_with("m=audio 0 RTP/AVP 0", "m=audio 4000 RTP/SAVP 0\r\nm=audio 4002 RTP/AVPF 8 0\r\na=rtcp-mux\r\n");
        let a = answer(&body);
        let ports: Vec<u16> = a.sdp.media.iter().map(|m| m.port).collect();
        assert_eq!(ports, [0, 0, 40000]);
        assert_eq!(a.sdp.media[1].proto, "RTP/SAVP");
        assert_eq!(a.sdp.media[2].proto, "RTP/AVPF");
        assert!(a.negotiated.rtcp_mux && a.sdp.media[2].rtcp_mux());
        assert_eq!(a.negotiated.remote_rtcp, a.negotiated.remote_rtp);
        assert_eq!(a.negotiated.codec, Codec::pcma());
    }

    #[test]
    fn no_common_codec_is_error() {
        let body = offer_with("m=audio 4000 RTP/AVP 18 4 101", "a=rtpmap:101 telephone-event/8000\r\n");
        assert_eq!(create_answer(&sdp(&body), &caps(), 1, 1).err(), Some(OfferAnswerError::NoCommonCodec));
        let video_only = offer_with("m=video 5000 RTP/AVP 31", "");
        assert_eq!(create_answer(&sdp(&video_only), &caps(), 1, 1).err(), Some(OfferAnswerError::NoCommonCodec));
        // WebRTC DTLS-SRTP is not something we answer.
        assert_eq!(create_answer(&sdp(WEBRTC), &caps(), 1, 1).err(), Some(OfferAnswerError::NoCommonCodec));
    }

    #[test]
    fn telephone_event_clock_matching() {
        // te/48000 is not in our caps; te/8000 is.
        let body = offer_with(
            "m=audio 4000 RTP/AVP 111 110 126",
            "a=rtpmap:111 opus/48000/2\r\na=rtpmap:110 telephone-event/48000\r\n\
             a=rtpmap:126 telephone-event/8000\r\n",
        );
        assert_eq!(answer(&body).negotiated.telephone_event_pt(), Some(126));
        // With both supported, the one matching the primary codec's clock wins.
        let mut c = caps();
        c.codecs.push(Codec::new("telephone-event", 48000, 1, 102));
        let a = create_answer(&sdp(&body), &c, 1, 1).unwrap();
        assert_eq!(a.negotiated.telephone_event_pt(), Some(110));
        assert_eq!(a.sdp.media[0].formats, ["111", "110"]);
        // Offered but not supported by us: no te.
        let mut c = caps();
        c.codecs.retain(|x| !x.is_telephone_event());
        let a = create_answer(&sdp(&body), &c, 1, 1).unwrap();
        assert_eq!(a.negotiated.telephone_event, None);
    }

    #[test]
    fn ptime_echo_and_maxptime() {
        let a = answer(CARRIER);
        assert_eq!(a.negotiated.ptime, 20);
        assert_eq!(a.negotiated.codec, Codec::pcmu());
        assert_eq!(a.negotiated.telephone_event_pt(), Some(101));
        assert_eq!(a.negotiated.remote_rtp, "203.0.113.46:21458".parse().unwrap());
        let a = answer(&offer_with("m=audio 4000 RTP/AVP 0", "a=ptime:30\r\n"));
        assert_eq!(a.negotiated.ptime, 30);
        assert_eq!(a.sdp.media[0].ptime(), Some(30));
        let mut c = caps();
        c.ptime = 60;
        let a = create_answer(&sdp(&offer_with("m=audio 4000 RTP/AVP 0", "a=maxptime:40\r\n")), &c, 1, 1).unwrap();
        assert_eq!(a.negotiated.ptime, 40);
    }

    #[test]
    fn baresip_offer_answer() {
        let a = answer(BARESIP);
        let n = &a.negotiated;
        assert_eq!((n.codec.name.as_str(), n.codec.payload_type), ("opus", 96));
        let pts: Vec<u8> = n.codecs.iter().map(|c| c.payload_type).collect();
        assert_eq!(pts, [96, 0, 8], "G722 not in caps, offerer order kept");
        assert_eq!(n.telephone_event_pt(), Some(101));
        assert_eq!(n.remote_rtcp, "192.0.2.10:10267".parse().unwrap());
        assert_eq!(a.sdp.media[0].formats, ["96", "0", "8", "101"]);
        let reparsed = sdp(&a.sdp.to_string());
        assert_eq!(reparsed, a.sdp);
    }

    // ---- UAC side -----------------------------------------------------------------------

    #[test]
    fn negotiate_from_answer_uac() {
        let offer = create_offer(&caps(), 1, 1);
        // Peer answers PCMA first, then PCMU, with DTMF, and sendonly.
        let ans = "v=0\r\no=peer 9 9 IN IP4 198.51.100.20\r\ns=-\r\nt=0 0\r\n\
                   m=audio 30000 RTP/AVP 8 0 101\r\nc=IN IP4 198.51.100.20\r\n\
                   a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendonly\r\n";
        let n = negotiate_from_answer(&offer, &sdp(ans)).unwrap();
        assert_eq!(n.codec, Codec::pcma());
        assert_eq!(n.codecs.len(), 2);
        assert_eq!(n.telephone_event_pt(), Some(101));
        assert_eq!(n.remote_rtp, "198.51.100.20:30000".parse().unwrap());
        assert_eq!(n.remote_direction, Direction::SendOnly);
        assert_eq!(n.local_direction, Direction::RecvOnly);
        assert_eq!(n.ptime, 20, "from our offer");
        assert!(!n.rtcp_mux);

        // A full round: our offer answered by our own answerer.
        let a = create_answer(&offer, &caps(), 2, 1).unwrap();
        let n = negotiate_from_answer(&offer, &a.sdp).unwrap();
        assert_eq!(n.codec, Codec::pcmu());
        assert_eq!(n.remote_rtp, "192.0.2.200:40000".parse().unwrap());
        assert_eq!(n.telephone_event_pt(), Some(101));
    }

    #[test]
    fn negotiate_from_answer_errors() {
        let offer = create_offer(&caps(), 1, 1);
        let two = offer_with("m=audio 3000 RTP/AVP 0", "m=video 0 RTP/AVP 31\r\n");
        assert_eq!(
            negotiate_from_answer(&offer, &sdp(&two)),
            Err(OfferAnswerError::MediaCountMismatch { offered: 1, answered: 2 })
        );
        let rejected = offer_with("m=audio 0 RTP/AVP 0", "");
        assert_eq!(negotiate_from_answer(&offer, &sdp(&rejected)), Err(OfferAnswerError::NoCommonCodec));
        let foreign = offer_with("m=audio 3000 RTP/AVP 18", "");
        assert_eq!(negotiate_from_answer(&offer, &sdp(&foreign)), Err(OfferAnswerError::NoCommonCodec));
    }

    #[test]
    fn direction_helpers() {
        assert_eq!(Direction::SendOnly.reversed(), Direction::RecvOnly);
        assert_eq!(Direction::Inactive.reversed(), Direction::Inactive);
        assert_eq!(Direction::SendRecv.answer_with(Direction::Inactive), Direction::Inactive);
        assert_eq!(Direction::parse("SENDONLY"), Some(Direction::SendOnly));
        assert_eq!(Direction::parse("both"), None);
    }

    #[test]
    fn reanswer_mirrors_hold_and_resume_and_bumps_the_version_on_change() {
        let ours = "v=0\r\no=dialtone 7 3 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";
        let offer = |dir: &str| {
            format!("v=0\r\no=peer 1 2 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na={dir}\r\n")
        };
        let hold = reanswer(ours, &offer("sendonly")).unwrap();
        assert_eq!(hold.media[0].direction(), Some(Direction::RecvOnly));
        assert_eq!(hold.origin.session_version, 4);
        let inactive = reanswer(&hold.to_string(), &offer("inactive")).unwrap();
        assert_eq!(inactive.media[0].direction(), Some(Direction::Inactive));
        assert_eq!(inactive.origin.session_version, 5);
        let resume = reanswer(&inactive.to_string(), &offer("sendrecv")).unwrap();
        assert_eq!(resume.media[0].direction(), Some(Direction::SendRecv));
        assert_eq!(resume.origin.session_version, 6);
        // The same offer again (a session refresh) changes nothing: same version.
        let again = reanswer(&resume.to_string(), &offer("sendrecv")).unwrap();
        assert_eq!(again.to_string(), resume.to_string());
        // recvonly from the peer: we only send.
        let r = reanswer(ours, &offer("recvonly")).unwrap();
        assert_eq!(r.media[0].direction(), Some(Direction::SendOnly));
    }
}
