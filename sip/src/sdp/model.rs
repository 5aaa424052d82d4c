//! The SDP model (RFC 8866 §5): a session, its media and their attributes.

use std::net::IpAddr;

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

impl Direction {
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

pub(super) fn direction_of(attrs: &[Attribute]) -> Option<Direction> {
    attrs.iter().find_map(|a| match a {
        Attribute::Direction(d) => Some(*d),
        _ => None,
    })
}

pub(super) fn ptime_of(attrs: &[Attribute]) -> Option<u32> {
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
}

/// A payload type number (0–127) in an `m=` line's format list.
pub(super) fn parse_payload_type(s: &str) -> Option<u8> {
    s.trim().parse::<u8>().ok().filter(|pt| *pt <= 127)
}
