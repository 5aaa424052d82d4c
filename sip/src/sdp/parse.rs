//! The lenient SDP parser (the rules in the module docs).

use super::{error::*, model::*};
use std::str::FromStr;

/// Splits `x=value` into (`x`, `value`); `None` for lines that are not of that shape.
pub(super) fn split_line(line: &str) -> Option<(char, &str)> {
    let mut chars = line.chars();
    let kind = chars.next()?;
    if !kind.is_ascii_alphabetic() || chars.next()? != '=' {
        return None;
    }
    Some((kind, chars.as_str()))
}

pub(super) fn parse_origin(value: &str, line: usize) -> Result<Origin, SdpError> {
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

pub(super) fn parse_connection_fields(value: &str) -> Option<Connection> {
    let mut it = value.split_whitespace();
    let net_type = it.next()?;
    let addr_type = it.next()?;
    let address = it.next()?;
    Some(Connection { net_type: net_type.to_string(), addr_type: addr_type.to_string(), address: address.to_string() })
}

pub(super) fn parse_bandwidth(value: &str) -> Option<Bandwidth> {
    let (kind, bw) = value.split_once(':')?;
    let kind = kind.trim();
    if kind.is_empty() {
        return None;
    }
    Some(Bandwidth { bw_type: kind.to_string(), bandwidth: bw.trim().parse().ok()? })
}

pub(super) fn parse_timing(value: &str) -> Option<Timing> {
    let mut it = value.split_whitespace();
    let start = it.next()?.parse().ok()?;
    let stop = it.next()?.parse().ok()?;
    Some(Timing { start, stop, repeats: Vec::new() })
}

pub(super) fn parse_media_line(value: &str, line: usize) -> Result<MediaDescription, SdpError> {
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

/// Parses a millisecond value; tolerates `20.0`-style decimals some devices send.
pub(super) fn parse_millis(s: &str) -> Option<u32> {
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
}

impl FromStr for SessionDescription {
    type Err = SdpError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionDescription::parse(s)
    }
}
