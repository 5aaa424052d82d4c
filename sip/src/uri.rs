//! URIs (RFC 3261 §19.1, §25.1): SIP/SIPS URIs parsed into their parts, any other
//! absolute URI (tel:, mailto:, …) kept opaque. Views borrow from the header text.

use crate::error::ParseError;
use crate::grammar::{split_top, trim};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A host: a domain name, an IPv4 address or an IPv6 reference (`[...]`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Host<'a> {
    /// A host name, as written.
    Domain(&'a str),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address (written in brackets).
    V6(Ipv6Addr),
}

impl<'a> Host<'a> {
    /// Parses a host: an IPv6 reference must be bracketed.
    pub fn parse(s: &'a str) -> Result<Host<'a>, ParseError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(ParseError::BadUri)?;
            return inner.parse().map(Host::V6).map_err(|_| ParseError::BadUri);
        }
        if s.is_empty() {
            return Err(ParseError::BadUri);
        }
        if s.bytes().all(|c| c.is_ascii_digit() || c == b'.') && s.bytes().any(|c| c == b'.') {
            if let Ok(v4) = s.parse() {
                return Ok(Host::V4(v4));
            }
        }
        // hostname = *( domainlabel "." ) toplabel [ "." ]; be lenient on the label rules
        // but refuse characters that cannot appear in a host at all.
        if s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_') {
            Ok(Host::Domain(s))
        } else {
            Err(ParseError::BadUri)
        }
    }

    /// The address, if the host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match *self {
            Host::V4(a) => Some(IpAddr::V4(a)),
            Host::V6(a) => Some(IpAddr::V6(a)),
            Host::Domain(_) => None,
        }
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// `;name[=value]` parameters, kept as the raw text after the first `;` and looked up
/// on demand (names are case-insensitive).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Params<'a>(pub &'a str);

impl<'a> Params<'a> {
    /// Iterates `(name, value)` pairs; a flag parameter has no value.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        let s = self.0;
        split_top(s, b';').filter(|p| !p.is_empty()).map(|p| match p.find('=') {
            Some(i) => (trim(&p[..i]), Some(trim(&p[i + 1..]))),
            None => (p, None),
        })
    }

    /// `Some(value)` when the parameter is present (`Some(None)` for a flag).
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// The parameter's value, if present with one.
    pub fn value(&self, name: &str) -> Option<&'a str> {
        self.get(name).flatten()
    }

    /// Whether the parameter is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// A SIP or SIPS URI.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SipUri<'a> {
    /// `true` for `sips:`.
    pub secure: bool,
    /// The user part, still %-escaped.
    pub user: Option<&'a str>,
    /// The password, if any.
    pub password: Option<&'a str>,
    /// The host.
    pub host: Host<'a>,
    /// The port, if written.
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`).
    pub params: Params<'a>,
    /// URI headers (`?a=b&c=d`), raw.
    pub headers: Option<&'a str>,
}

/// Any URI we may meet in a Request-URI or a name-addr.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Uri<'a> {
    /// `sip:` or `sips:`
    Sip(SipUri<'a>),
    /// Any other scheme (`tel:`, `mailto:`, `urn:`…), the part after the colon opaque.
    Other {
        /// The scheme, as written.
        scheme: &'a str,
        /// Everything after `scheme:`.
        rest: &'a str,
    },
}

fn valid_scheme(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

/// Checks `%HH` escapes and refuses characters never allowed unescaped in a URI.
fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
                {
                    return false;
                }
                i += 3;
                continue;
            }
            c if c <= b' ' || c == 0x7f || c == b'"' || c == b'<' || c == b'>' => return false,
            _ => {}
        }
        i += 1;
    }
    true
}

impl<'a> Uri<'a> {
    /// Parses an absolute URI. SIP/SIPS URIs are parsed into parts.
    pub fn parse(s: &'a str) -> Result<Uri<'a>, ParseError> {
        let colon = s.find(':').ok_or(ParseError::BadUri)?;
        let scheme = &s[..colon];
        let rest = &s[colon + 1..];
        if !valid_scheme(scheme) || !valid_escapes(rest) {
            return Err(ParseError::BadUri);
        }
        let secure = if scheme.eq_ignore_ascii_case("sip") {
            false
        } else if scheme.eq_ignore_ascii_case("sips") {
            true
        } else {
            if rest.is_empty() {
                return Err(ParseError::BadUri);
            }
            return Ok(Uri::Other { scheme, rest });
        };
        // userinfo is everything before the last '@' that precedes any '?' (the user
        // part may hold ';' and escaped characters, RFC 4475 §3.1.1.10).
        let (hp_start, user, password) = {
            let end = rest.find('?').unwrap_or(rest.len());
            match rest[..end].rfind('@') {
                Some(at) => {
                    let ui = &rest[..at];
                    if ui.is_empty() {
                        return Err(ParseError::BadUri);
                    }
                    let (u, p) = match ui.find(':') {
                        Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                        None => (ui, None),
                    };
                    (at + 1, Some(u), p)
                }
                None => (0, None, None),
            }
        };
        let hp = &rest[hp_start..];
        let (hp, headers) = match hp.find('?') {
            Some(q) => (&hp[..q], Some(&hp[q + 1..])),
            None => (hp, None),
        };
        let (hostport, params) = match hp.find(';') {
            Some(i) => (&hp[..i], &hp[i + 1..]),
            None => (hp, ""),
        };
        let (host, port) = split_host_port(hostport)?;
        Ok(Uri::Sip(SipUri { secure, user, password, host, port, params: Params(params), headers }))
    }

    /// The scheme, lower-cased for SIP/SIPS.
    pub fn scheme(&self) -> &'a str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Other { scheme, .. } => scheme,
        }
    }

    /// The SIP URI, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other { .. } => None,
        }
    }
}

/// Splits `host[:port]`, with IPv6 references in brackets.
pub fn split_host_port(s: &str) -> Result<(Host<'_>, Option<u16>), ParseError> {
    let s = trim(s);
    let (h, p) = if s.starts_with('[') {
        let close = s.find(']').ok_or(ParseError::BadUri)?;
        let after = &s[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(ParseError::BadUri),
        };
        (&s[..=close], port)
    } else {
        match s.rfind(':') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        }
    };
    let port = match p {
        Some(p) => Some(trim(p).parse::<u16>().map_err(|_| ParseError::BadUri)?),
        None => None,
    };
    Ok((Host::parse(trim(h))?, port))
}

impl fmt::Display for SipUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = self.user {
            f.write_str(u)?;
            if let Some(p) = self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if !self.params.0.is_empty() {
            write!(f, ";{}", self.params.0)?;
        }
        if let Some(h) = self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Other { scheme, rest } => write!(f, "{scheme}:{rest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_parts() {
        let u = Uri::parse("sip:alice:pw@[2001:db8::10]:5070;transport=tcp;lr?subject=x").unwrap();
        let s = u.as_sip().unwrap();
        assert_eq!(s.user, Some("alice"));
        assert_eq!(s.password, Some("pw"));
        assert_eq!(s.host, Host::V6("2001:db8::10".parse().unwrap()));
        assert_eq!(s.port, Some(5070));
        assert_eq!(s.params.value("transport"), Some("tcp"));
        assert!(s.params.has("LR"));
        assert_eq!(s.headers, Some("subject=x"));
        assert_eq!(u.to_string(), "sip:alice:pw@[2001:db8::10]:5070;transport=tcp;lr?subject=x");
    }

    #[test]
    fn user_with_semicolons_and_escapes() {
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.as_sip().unwrap().user, Some("user;par=u%40example.net"));
        assert_eq!(u.as_sip().unwrap().host, Host::Domain("example.com"));
    }

    #[test]
    fn other_schemes_and_errors() {
        assert_eq!(Uri::parse("tel:+15551234").unwrap().scheme(), "tel");
        assert!(Uri::parse("sip:exa mple.com").is_err());
        assert!(Uri::parse("sip:a@b%zz").is_err());
        assert!(Uri::parse("sip:[::1").is_err());
        assert!(Uri::parse("sip:host:99999").is_err());
        assert!(Uri::parse("nocolon").is_err());
    }
}
