//! SDP (RFC 8866) and the RFC 3264 offer/answer model, for audio calls.
//!
//! Our own lenient parser rather than webrtc-sdp: SIP peers (SIPp's default bodies,
//! softphones, carriers) send SDP that WebRTC-minded parsers refuse: an empty `s=`,
//! `c=` only at media level, RTP/AVP static payload types with no `a=rtpmap`, unknown
//! attributes and line types. We keep every line we do not interpret, so a parse →
//! serialize round trip loses nothing, and refuse only what loses meaning (no `v=0`
//! first, a malformed `o=`, `c=` or `m=` line).

use std::fmt;
use std::net::IpAddr;

/// Why an SDP body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The body does not start with `v=0`.
    #[error("SDP must start with v=0")]
    NoVersion,
    /// A line is not `<letter>=<value>`.
    #[error("malformed SDP line {0}")]
    BadLine(usize),
    /// The `o=` line is malformed.
    #[error("bad o= line")]
    BadOrigin,
    /// A `c=` line is malformed.
    #[error("bad c= line")]
    BadConnection,
    /// An `m=` line is malformed.
    #[error("bad m= line")]
    BadMedia,
}

/// Why offer/answer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OfferAnswerError {
    /// No audio stream has a codec we support (the UA answers 488).
    #[error("no common codec")]
    NoCommonCodec,
    /// The answer does not match the offer (stream count, unknown payload types).
    #[error("answer does not match the offer")]
    Mismatch,
    /// No address to send media to.
    #[error("no connection address")]
    NoAddress,
}

/// `c=IN IP4 192.0.2.1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Address type, `IP4` or `IP6`.
    pub addrtype: String,
    /// The address (may carry a `/ttl` suffix for multicast, kept verbatim).
    pub address: String,
}

impl Connection {
    fn parse(v: &str) -> Result<Connection, SdpError> {
        let mut it = v.split_whitespace();
        let (Some(net), Some(at), Some(addr), None) = (it.next(), it.next(), it.next(), it.next()) else {
            return Err(SdpError::BadConnection);
        };
        if !net.eq_ignore_ascii_case("IN") {
            return Err(SdpError::BadConnection);
        }
        Ok(Connection { addrtype: at.to_string(), address: addr.to_string() })
    }

    /// The unicast IP, if the address is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.split('/').next()?.parse().ok()
    }

    fn of(ip: IpAddr) -> Connection {
        Connection { addrtype: if ip.is_ipv4() { "IP4" } else { "IP6" }.into(), address: ip.to_string() }
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IN {} {}", self.addrtype, self.address)
    }
}

/// `o=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Username.
    pub username: String,
    /// Session id.
    pub session_id: String,
    /// Session version (incremented on every change, RFC 3264 §8).
    pub version: u64,
    /// Connection part (`IN IP4 addr`).
    pub connection: Connection,
}

/// Media direction (RFC 3264 §5.1, §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Send and receive (the default).
    #[default]
    SendRecv,
    /// Send only (we are holding the peer).
    SendOnly,
    /// Receive only.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    fn parse(a: &str) -> Option<Direction> {
        Some(match a {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
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

    /// The direction an answer takes to an offer with this direction, given what we
    /// want (§6.1): sendonly ↔ recvonly, inactive stays inactive.
    pub fn answer_to(self, ours: Direction) -> Direction {
        let (we_send, we_recv) = match ours {
            Direction::SendRecv => (true, true),
            Direction::SendOnly => (true, false),
            Direction::RecvOnly => (false, true),
            Direction::Inactive => (false, false),
        };
        let (they_send, they_recv) = match self {
            Direction::SendRecv => (true, true),
            Direction::SendOnly => (true, false),
            Direction::RecvOnly => (false, true),
            Direction::Inactive => (false, false),
        };
        match (we_send && they_recv, we_recv && they_send) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, …
    pub kind: String,
    /// Port (0 = rejected/disabled).
    pub port: u16,
    /// Port count (`/2`), if written.
    pub port_count: Option<u16>,
    /// Protocol, e.g. `RTP/AVP`.
    pub proto: String,
    /// Formats (payload types for RTP).
    pub formats: Vec<String>,
    /// Media-level `c=`.
    pub connection: Option<Connection>,
    /// Other lines (`i=`, `b=`, `k=`) kept verbatim as (type, value), in order.
    pub lines: Vec<(char, String)>,
    /// Attributes as (name, value), in order.
    pub attributes: Vec<(String, Option<String>)>,
}

impl Media {
    /// The first value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
    }

    /// Whether flag attribute `name` is present.
    pub fn has_attr(&self, name: &str) -> bool {
        self.attributes.iter().any(|(n, _)| n == name)
    }

    /// The stream's direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        self.attributes.iter().find_map(|(n, _)| Direction::parse(n))
    }

    /// The codec a payload type stands for: its rtpmap, or the RFC 3551 static table.
    pub fn codec(&self, pt: &str) -> Option<Codec> {
        for (n, v) in &self.attributes {
            if n != "rtpmap" {
                continue;
            }
            let Some(v) = v else { continue };
            let (p, enc) = v.split_once(' ')?;
            if p.trim() != pt {
                continue;
            }
            let mut parts = enc.trim().split('/');
            let name = parts.next()?.to_string();
            let clock = parts.next()?.trim().parse().ok()?;
            let channels = parts.next().and_then(|c| c.trim().parse().ok()).unwrap_or(1);
            return Some(Codec { name, clock, channels, pt: pt.parse().ok()?, fmtp: self.fmtp(pt) });
        }
        let pt_num: u8 = pt.parse().ok()?;
        let (name, clock) = static_pt(pt_num)?;
        Some(Codec { name: name.into(), clock, channels: 1, pt: pt_num, fmtp: self.fmtp(pt) })
    }

    fn fmtp(&self, pt: &str) -> Option<String> {
        self.attributes.iter().filter(|(n, _)| n == "fmtp").find_map(|(_, v)| {
            let (p, params) = v.as_deref()?.split_once(' ')?;
            (p.trim() == pt).then(|| params.trim().to_string())
        })
    }
}

/// RFC 3551 §6 static audio payload types.
fn static_pt(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        13 => ("CN", 8000),
        18 => ("G729", 8000),
        _ => return None,
    })
}

/// A codec as negotiated: encoding name, clock rate, channels, payload type, fmtp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// Encoding name as written (`PCMU`, `opus`, `telephone-event`).
    pub name: String,
    /// RTP clock rate.
    pub clock: u32,
    /// Channels.
    pub channels: u8,
    /// Payload type.
    pub pt: u8,
    /// Format parameters.
    pub fmtp: Option<String>,
}

impl Codec {
    fn same_as(&self, o: &Codec) -> bool {
        self.name.eq_ignore_ascii_case(&o.name) && self.clock == o.clock
    }

    fn is_dtmf(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }

    fn rtpmap(&self) -> String {
        if self.channels > 1 {
            format!("{} {}/{}/{}", self.pt, self.name, self.clock, self.channels)
        } else {
            format!("{} {}/{}", self.pt, self.name, self.clock)
        }
    }
}

/// A whole session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`.
    pub origin: Origin,
    /// `s=` (may be empty or `-`).
    pub name: String,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// Session-level lines other than v/o/s/c/t/a (i, u, e, p, b, z, k), in order.
    pub lines: Vec<(char, String)>,
    /// `t=` lines (and `r=` after them), verbatim.
    pub timing: Vec<(char, String)>,
    /// Session-level attributes.
    pub attributes: Vec<(String, Option<String>)>,
    /// Media sections.
    pub media: Vec<Media>,
}

fn parse_attr(v: &str) -> (String, Option<String>) {
    match v.split_once(':') {
        Some((n, val)) => (n.to_string(), Some(val.to_string())),
        None => (v.to_string(), None),
    }
}

impl SessionDescription {
    /// Parses an SDP body (CRLF or LF line ends).
    pub fn parse(text: &str) -> Result<SessionDescription, SdpError> {
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r')).filter(|l| !l.is_empty()).enumerate();
        match lines.next() {
            Some((_, "v=0")) => {}
            _ => return Err(SdpError::NoVersion),
        }
        let mut origin = None;
        let mut sd = SessionDescription {
            origin: Origin {
                username: String::new(),
                session_id: String::new(),
                version: 0,
                connection: Connection { addrtype: String::new(), address: String::new() },
            },
            name: String::new(),
            connection: None,
            lines: Vec::new(),
            timing: Vec::new(),
            attributes: Vec::new(),
            media: Vec::new(),
        };
        for (i, line) in lines {
            let b = line.as_bytes();
            if b.len() < 2 || b[1] != b'=' || !b[0].is_ascii_lowercase() {
                return Err(SdpError::BadLine(i + 1));
            }
            let (t, v) = (b[0] as char, &line[2..]);
            if let Some(m) = sd.media.last_mut() {
                match t {
                    'm' => {}
                    'c' => {
                        m.connection = Some(Connection::parse(v)?);
                        continue;
                    }
                    'a' => {
                        m.attributes.push(parse_attr(v));
                        continue;
                    }
                    _ => {
                        m.lines.push((t, v.to_string()));
                        continue;
                    }
                }
            }
            match t {
                'o' => {
                    let f: Vec<&str> = v.split_whitespace().collect();
                    if f.len() != 6 || !f[3].eq_ignore_ascii_case("IN") {
                        return Err(SdpError::BadOrigin);
                    }
                    origin = Some(Origin {
                        username: f[0].into(),
                        session_id: f[1].into(),
                        version: f[2].parse().map_err(|_| SdpError::BadOrigin)?,
                        connection: Connection { addrtype: f[4].into(), address: f[5].into() },
                    });
                }
                's' => sd.name = v.to_string(),
                'c' => sd.connection = Some(Connection::parse(v)?),
                't' | 'r' => sd.timing.push((t, v.to_string())),
                'a' => sd.attributes.push(parse_attr(v)),
                'm' => {
                    let f: Vec<&str> = v.split_whitespace().collect();
                    if f.len() < 3 {
                        return Err(SdpError::BadMedia);
                    }
                    let (port, count) = match f[1].split_once('/') {
                        Some((p, c)) => (p, Some(c.parse().map_err(|_| SdpError::BadMedia)?)),
                        None => (f[1], None),
                    };
                    sd.media.push(Media {
                        kind: f[0].into(),
                        port: port.parse().map_err(|_| SdpError::BadMedia)?,
                        port_count: count,
                        proto: f[2].into(),
                        formats: f[3..].iter().map(|s| s.to_string()).collect(),
                        connection: None,
                        lines: Vec::new(),
                        attributes: Vec::new(),
                    });
                }
                _ => sd.lines.push((t, v.to_string())),
            }
        }
        sd.origin = origin.ok_or(SdpError::BadOrigin)?;
        Ok(sd)
    }

    /// The address media for stream `m` goes to: media-level c=, else session-level.
    pub fn media_ip(&self, m: &Media) -> Option<IpAddr> {
        m.connection.as_ref().or(self.connection.as_ref()).and_then(Connection::ip)
    }
}

fn write_attrs(f: &mut fmt::Formatter<'_>, attrs: &[(String, Option<String>)]) -> fmt::Result {
    for (n, v) in attrs {
        match v {
            Some(v) => write!(f, "a={n}:{v}\r\n")?,
            None => write!(f, "a={n}\r\n")?,
        }
    }
    Ok(())
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(f, "v=0\r\no={} {} {} {}\r\ns={}\r\n", o.username, o.session_id, o.version, o.connection, self.name)?;
        // RFC 8866 §5 order: i u e p c b t r z k a.
        let order = |t: char| "iuepcbtrzka".find(t).unwrap_or(11);
        for (t, v) in self.lines.iter().filter(|(t, _)| order(*t) < order('c')) {
            write!(f, "{t}={v}\r\n")?;
        }
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        for (t, v) in self.lines.iter().filter(|(t, _)| *t == 'b') {
            write!(f, "{t}={v}\r\n")?;
        }
        if self.timing.is_empty() {
            write!(f, "t=0 0\r\n")?;
        }
        for (t, v) in &self.timing {
            write!(f, "{t}={v}\r\n")?;
        }
        for (t, v) in self.lines.iter().filter(|(t, _)| order(*t) > order('c') && *t != 'b') {
            write!(f, "{t}={v}\r\n")?;
        }
        write_attrs(f, &self.attributes)?;
        for m in &self.media {
            write!(f, "m={} {}", m.kind, m.port)?;
            if let Some(c) = m.port_count {
                write!(f, "/{c}")?;
            }
            write!(f, " {}", m.proto)?;
            for fmt_ in &m.formats {
                write!(f, " {fmt_}")?;
            }
            write!(f, "\r\n")?;
            for (t, v) in m.lines.iter().filter(|(t, _)| *t == 'i') {
                write!(f, "{t}={v}\r\n")?;
            }
            if let Some(c) = &m.connection {
                write!(f, "c={c}\r\n")?;
            }
            for (t, v) in m.lines.iter().filter(|(t, _)| *t != 'i') {
                write!(f, "{t}={v}\r\n")?;
            }
            write_attrs(f, &m.attributes)?;
        }
        Ok(())
    }
}

/// What we can do, for offers and answers.
#[derive(Debug, Clone)]
pub struct LocalCapabilities {
    /// Codecs in our preference order (their `pt` is what we offer).
    pub codecs: Vec<Codec>,
    /// Our media address.
    pub ip: IpAddr,
    /// Our RTP port.
    pub port: u16,
    /// Packetization time in ms.
    pub ptime: u32,
    /// The direction we want (sendrecv normally, sendonly to hold).
    pub direction: Direction,
}

impl LocalCapabilities {
    /// PCMU, PCMA, Opus and telephone-event at `ip:port`.
    pub fn default_audio(ip: IpAddr, port: u16) -> LocalCapabilities {
        let c = |name: &str, clock, channels, pt, fmtp: Option<&str>| Codec {
            name: name.into(),
            clock,
            channels,
            pt,
            fmtp: fmtp.map(String::from),
        };
        LocalCapabilities {
            codecs: vec![
                c("PCMU", 8000, 1, 0, None),
                c("PCMA", 8000, 1, 8, None),
                c("opus", 48000, 2, 111, Some("minptime=10;useinbandfec=1")),
                c("telephone-event", 8000, 1, 101, Some("0-16")),
            ],
            ip,
            port,
            ptime: 20,
            direction: Direction::SendRecv,
        }
    }
}

/// The outcome of offer/answer for the (one) audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Where to send RTP (`None` port 0 / hold address 0.0.0.0 means don't send).
    pub remote_ip: IpAddr,
    /// Remote RTP port.
    pub remote_port: u16,
    /// The codec to send with.
    pub codec: Codec,
    /// telephone-event, if both sides have it.
    pub dtmf: Option<Codec>,
    /// Packetization time.
    pub ptime: u32,
    /// Our direction.
    pub direction: Direction,
    /// rtcp-mux agreed.
    pub rtcp_mux: bool,
}

/// An answer and what it settled.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The answer SDP.
    pub sdp: SessionDescription,
    /// The negotiated stream.
    pub negotiated: Negotiated,
}

fn skeleton(caps: &LocalCapabilities, session_id: u64, version: u64) -> SessionDescription {
    SessionDescription {
        origin: Origin {
            username: "dialtone".into(),
            session_id: session_id.to_string(),
            version,
            connection: Connection::of(caps.ip),
        },
        name: "dialtone".into(),
        connection: Some(Connection::of(caps.ip)),
        lines: Vec::new(),
        timing: vec![('t', "0 0".into())],
        attributes: Vec::new(),
        media: Vec::new(),
    }
}

fn codec_attrs(codecs: &[Codec], ptime: u32, dir: Direction) -> Vec<(String, Option<String>)> {
    let mut a = Vec::new();
    for c in codecs {
        a.push(("rtpmap".into(), Some(c.rtpmap())));
        if let Some(f) = &c.fmtp {
            a.push(("fmtp".into(), Some(format!("{} {f}", c.pt))));
        }
    }
    a.push(("ptime".into(), Some(ptime.to_string())));
    a.push((dir.as_str().into(), None));
    a
}

/// An offer with one audio stream carrying all our codecs.
pub fn create_offer(caps: &LocalCapabilities, session_id: u64, version: u64) -> SessionDescription {
    let mut sd = skeleton(caps, session_id, version);
    sd.media.push(Media {
        kind: "audio".into(),
        port: caps.port,
        port_count: None,
        proto: "RTP/AVP".into(),
        formats: caps.codecs.iter().map(|c| c.pt.to_string()).collect(),
        connection: None,
        lines: Vec::new(),
        attributes: codec_attrs(&caps.codecs, caps.ptime, caps.direction),
    });
    sd
}

fn is_rtp_audio(m: &Media) -> bool {
    m.kind.eq_ignore_ascii_case("audio") && m.proto.to_ascii_uppercase().starts_with("RTP/")
}

/// Answers `offer` (RFC 3264 §6): one m= line per offered stream, in order; the first
/// audio stream with a codec in common is accepted with the offerer's payload types in
/// the offerer's order, every other stream is rejected with port 0.
pub fn create_answer(
    offer: &SessionDescription,
    caps: &LocalCapabilities,
    session_id: u64,
    version: u64,
) -> Result<Answer, OfferAnswerError> {
    let mut sd = skeleton(caps, session_id, version);
    let mut negotiated = None;
    for m in &offer.media {
        let accepted = if negotiated.is_none() && m.port != 0 && is_rtp_audio(m) {
            let common: Vec<Codec> = m
                .formats
                .iter()
                .filter_map(|pt| m.codec(pt))
                .filter(|c| caps.codecs.iter().any(|ours| ours.same_as(c)))
                .collect();
            let voice: Vec<&Codec> =
                common.iter().filter(|c| !c.is_dtmf() && !c.name.eq_ignore_ascii_case("CN")).collect();
            match voice.first() {
                Some(first) => {
                    let remote_ip = offer.media_ip(m).ok_or(OfferAnswerError::NoAddress)?;
                    let offered_dir =
                        m.direction().or_else(|| offer.attributes.iter().find_map(|(n, _)| Direction::parse(n)));
                    let mut offered_dir = offered_dir.unwrap_or_default();
                    if remote_ip.is_unspecified() {
                        // RFC 2543 hold (RFC 3264 §8.4): c=0.0.0.0 means "send me nothing",
                        // i.e. the offerer at most sends.
                        offered_dir = match offered_dir {
                            Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
                            _ => Direction::Inactive,
                        };
                    }
                    let dir = offered_dir.answer_to(caps.direction);
                    // telephone-event at the voice codec's clock rate if offered, else any.
                    let dtmf = common
                        .iter()
                        .find(|c| c.is_dtmf() && c.clock == first.clock)
                        .or_else(|| common.iter().find(|c| c.is_dtmf()))
                        .cloned();
                    let ptime = m.attr("ptime").and_then(|p| p.trim().parse().ok()).unwrap_or(caps.ptime);
                    let rtcp_mux = m.has_attr("rtcp-mux");
                    // Answer with the common codecs (voice in the offerer's order, then DTMF).
                    let mut answer_codecs: Vec<Codec> = voice.iter().map(|c| (*c).clone()).collect();
                    if let Some(d) = &dtmf {
                        answer_codecs.push(d.clone());
                    }
                    for c in answer_codecs.iter_mut() {
                        if c.fmtp.is_none() {
                            c.fmtp = caps.codecs.iter().find(|o| o.same_as(c)).and_then(|o| o.fmtp.clone());
                        }
                    }
                    let mut attrs = codec_attrs(&answer_codecs, ptime, dir);
                    if rtcp_mux {
                        attrs.push(("rtcp-mux".into(), None));
                    }
                    sd.media.push(Media {
                        kind: m.kind.clone(),
                        port: caps.port,
                        port_count: None,
                        proto: m.proto.clone(),
                        formats: answer_codecs.iter().map(|c| c.pt.to_string()).collect(),
                        connection: None,
                        lines: Vec::new(),
                        attributes: attrs,
                    });
                    negotiated = Some(Negotiated {
                        remote_ip,
                        remote_port: m.port,
                        codec: (*first).clone(),
                        dtmf,
                        ptime,
                        direction: dir,
                        rtcp_mux,
                    });
                    true
                }
                None => false,
            }
        } else {
            false
        };
        if !accepted {
            sd.media.push(Media {
                kind: m.kind.clone(),
                port: 0,
                port_count: None,
                proto: m.proto.clone(),
                formats: m.formats.clone(),
                connection: None,
                lines: Vec::new(),
                attributes: Vec::new(),
            });
        }
    }
    let negotiated = negotiated.ok_or(OfferAnswerError::NoCommonCodec)?;
    Ok(Answer { sdp: sd, negotiated })
}

/// Reads the answer to our offer (UAC side, 183/200).
pub fn negotiate_from_answer(
    offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<Negotiated, OfferAnswerError> {
    if offer.media.len() != answer.media.len() {
        return Err(OfferAnswerError::Mismatch);
    }
    for (o, a) in offer.media.iter().zip(&answer.media) {
        if a.port == 0 || !is_rtp_audio(a) {
            continue;
        }
        let pick = |dtmf: bool| {
            a.formats.iter().filter_map(|pt| a.codec(pt)).find(|c| {
                c.is_dtmf() == dtmf
                    && !c.name.eq_ignore_ascii_case("CN")
                    && o.formats.iter().filter_map(|pt| o.codec(pt)).any(|oc| oc.same_as(c))
            })
        };
        let codec = pick(false).ok_or(OfferAnswerError::NoCommonCodec)?;
        let remote_ip = answer.media_ip(a).ok_or(OfferAnswerError::NoAddress)?;
        let ours = o.direction().unwrap_or_default();
        let theirs = a.direction().unwrap_or_default();
        let direction = theirs.answer_to(ours);
        return Ok(Negotiated {
            remote_ip,
            remote_port: a.port,
            codec,
            dtmf: pick(true),
            ptime: a.attr("ptime").and_then(|p| p.trim().parse().ok()).unwrap_or(20),
            direction,
            rtcp_mux: a.has_attr("rtcp-mux"),
        });
    }
    Err(OfferAnswerError::NoCommonCodec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIPP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

    fn caps() -> LocalCapabilities {
        LocalCapabilities::default_audio("192.0.2.10".parse().unwrap(), 20000)
    }

    fn answer(offer: &str) -> Result<Answer, OfferAnswerError> {
        create_answer(&SessionDescription::parse(offer).unwrap(), &caps(), 1, 1)
    }

    #[test]
    fn sipp_default_offer() {
        let a = answer(SIPP).unwrap();
        assert_eq!(a.negotiated.codec.name, "PCMU");
        assert_eq!(a.negotiated.codec.pt, 0);
        assert_eq!(a.negotiated.remote_port, 6000);
        let text = a.sdp.to_string();
        assert!(text.contains("m=audio 20000 RTP/AVP 0\r\n"), "{text}");
        assert!(text.contains("c=IN IP4 192.0.2.10"));
        assert!(text.contains("a=sendrecv"));
        SessionDescription::parse(&text).unwrap();
    }

    #[test]
    fn dynamic_pts_and_offerer_order() {
        let offer = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=\nc=IN IP4 10.0.0.1\nt=0 0\n\
m=audio 4000 RTP/AVP 96 8 0 100\na=rtpmap:96 OPUS/48000/2\na=rtpmap:100 telephone-event/8000\na=fmtp:100 0-15\n";
        let a = answer(offer).unwrap();
        assert_eq!(a.negotiated.codec.pt, 96);
        assert_eq!(a.negotiated.dtmf.as_ref().unwrap().pt, 100);
        assert_eq!(a.sdp.media[0].formats, vec!["96", "8", "0", "100"]);
        let a = answer(&offer.replace("96 8 0 100", "8 0 100")).unwrap();
        assert_eq!(a.negotiated.codec.name, "PCMA");
    }

    #[test]
    fn directions() {
        for (offer, ans) in
            [("sendonly", "recvonly"), ("recvonly", "sendonly"), ("inactive", "inactive"), ("sendrecv", "sendrecv")]
        {
            let a = answer(&format!("{SIPP}a={offer}\r\n")).unwrap();
            assert!(a.sdp.to_string().contains(&format!("a={ans}\r\n")), "{offer}");
        }
        let held = answer(&SIPP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0")).unwrap();
        assert_eq!(held.negotiated.direction, Direction::RecvOnly);
    }

    #[test]
    fn video_rejected_audio_accepted_and_no_codec() {
        let offer = format!("{SIPP}m=video 6002 RTP/AVP 31\r\n");
        let a = answer(&offer).unwrap();
        assert_eq!(a.sdp.media.len(), 2);
        assert_eq!(a.sdp.media[1].port, 0);
        let none = SIPP.replace("RTP/AVP 0", "RTP/AVP 18").replace("a=rtpmap:0 PCMU/8000", "a=rtpmap:18 G729/8000");
        assert_eq!(answer(&none).unwrap_err(), OfferAnswerError::NoCommonCodec);
        let zero = SIPP.replace("m=audio 6000", "m=audio 0");
        assert_eq!(answer(&zero).unwrap_err(), OfferAnswerError::NoCommonCodec);
    }

    #[test]
    fn ipv6_static_pt_and_media_level_c() {
        let offer =
            "v=0\r\no=x 2 3 IN IP6 2001:db8::1\r\ns=x\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\nc=IN IP6 2001:db8::2\r\n";
        let a = answer(offer).unwrap();
        assert_eq!(a.negotiated.codec.name, "PCMA");
        assert_eq!(a.negotiated.remote_ip, "2001:db8::2".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn round_trip_and_errors() {
        let text = "v=0\r\no=- 5 7 IN IP4 1.2.3.4\r\ns=talk\r\nc=IN IP4 1.2.3.4\r\nb=AS:64\r\nt=0 0\r\na=tool:x\r\n\
m=audio 5004 RTP/AVP 0 101\r\nb=TIAS:64000\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na=maxptime:40\r\n";
        let sd = SessionDescription::parse(text).unwrap();
        assert_eq!(sd.to_string(), text);
        assert_eq!(SessionDescription::parse(&sd.to_string()).unwrap(), sd);
        assert_eq!(SessionDescription::parse("o=x").unwrap_err(), SdpError::NoVersion);
        assert!(SessionDescription::parse("v=0\r\no=a b\r\n").is_err());
        assert!(SessionDescription::parse("v=0\r\no=- 1 1 IN IP4 h\r\nm=audio x RTP/AVP 0\r\n").is_err());
        assert!(SessionDescription::parse("v=0\r\no=- 1 1 IN IP4 h\r\nbogus\r\n").is_err());
    }

    #[test]
    fn uac_reads_answer() {
        let caps = caps();
        let offer = create_offer(&caps, 1, 1);
        let ans = SessionDescription::parse(SIPP).unwrap();
        let n = negotiate_from_answer(&offer, &ans).unwrap();
        assert_eq!((n.codec.name.as_str(), n.remote_port), ("PCMU", 6000));
        let mut two = ans.clone();
        two.media.push(two.media[0].clone());
        assert_eq!(negotiate_from_answer(&offer, &two).unwrap_err(), OfferAnswerError::Mismatch);
    }
}
