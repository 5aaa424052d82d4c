//! URIs (RFC 3261 §19.1, §25.1): SIP/SIPS URIs parsed into their parts, any other
//! absolute URI (tel:, mailto:, …) kept opaque. Views borrow from the header text.

use crate::error::ParseError;
#[cfg(doc)]
use crate::grammar::split_top;
use crate::grammar::trim;
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
        // One pass: is it digits and dots (maybe IPv4), and is every octet a host octet?
        let mut all = HOST_ALL;
        for &c in s.as_bytes() {
            all &= HOST_CLASS[c as usize];
        }
        let (numeric, hostchars) = (all & HOST_NUMERIC != 0, all & HOST_CHAR != 0);
        if numeric && s.as_bytes().contains(&b'.') {
            if let Some(v4) = parse_v4(s.as_bytes()).or_else(|| s.parse().ok()) {
                return Ok(Host::V4(v4));
            }
        }
        // hostname = *( domainlabel "." ) toplabel [ "." ]; be lenient on the label rules
        // but refuse characters that cannot appear in a host at all.
        if hostchars {
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

/// [`HOST_CLASS`] bit: a digit or `.`.
const HOST_NUMERIC: u8 = 1;
/// [`HOST_CLASS`] bit: alphanumeric, `-`, `.` or `_`.
const HOST_CHAR: u8 = 2;
const HOST_ALL: u8 = HOST_NUMERIC | HOST_CHAR;

/// Character classes for [`Host::parse`], so the loop does one lookup per octet.
static HOST_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_digit() || b == b'.' {
            t[c] |= HOST_NUMERIC;
        }
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_' {
            t[c] |= HOST_CHAR;
        }
        c += 1;
    }
    t
};

/// The common dotted quad (`1*3DIGIT` groups, no leading zeros, each <= 255). `None`
/// means "not in this simple form": the caller then asks std's parser, so what is
/// accepted stays exactly what `Ipv4Addr::from_str` accepts.
fn parse_v4(b: &[u8]) -> Option<Ipv4Addr> {
    let mut out = [0u8; 4];
    let mut i = 0;
    for (n, o) in out.iter_mut().enumerate() {
        if n > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let start = i;
        let mut v: u32 = 0;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 3 {
            v = v * 10 + u32::from(b[i] - b'0');
            i += 1;
        }
        if i == start || (i - start > 1 && b[start] == b'0') {
            return None;
        }
        *o = u8::try_from(v).ok()?;
    }
    (i == b.len()).then_some(Ipv4Addr::from(out))
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
        ParamIter { s: self.0, pos: 0 }
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

/// The iterator behind [`Params::iter`]: one pass per parameter finds both the `;` that
/// ends it (outside quoted strings and `<>`, like [`split_top`]) and its first `=`
/// (the first anywhere, as `split_top` then `find('=')` did).
struct ParamIter<'a> {
    s: &'a str,
    pos: usize,
}

/// Octets that matter to [`ParamIter`]; everything else is skipped in one test.
static PARAM_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    let special = b"\\\"=<>;";
    while i < special.len() {
        t[special[i] as usize] = true;
        i += 1;
    }
    t
};

impl<'a> Iterator for ParamIter<'a> {
    type Item = (&'a str, Option<&'a str>);
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.s.as_bytes();
        while self.pos <= b.len() {
            let start = self.pos;
            let mut i = start;
            let mut eq = None;
            let (mut in_q, mut in_angle) = (false, false);
            while i < b.len() {
                if !PARAM_SPECIAL[b[i] as usize] {
                    i += 1;
                    continue;
                }
                match b[i] {
                    b'\\' if in_q => i += 1,
                    b'"' => in_q = !in_q,
                    b'=' if eq.is_none() => eq = Some(i),
                    _ if in_q => {}
                    b'<' => in_angle = true,
                    b'>' => in_angle = false,
                    b';' if !in_angle => break,
                    _ => {}
                }
                i += 1;
            }
            let end = i.min(b.len());
            self.pos = end + 1;
            let piece = trim(&self.s[start..end]);
            if piece.is_empty() {
                continue;
            }
            return Some(match eq {
                Some(e) if e < end => (trim(&self.s[start..e]), Some(trim(&self.s[e + 1..end]))),
                _ => (piece, None),
            });
        }
        None
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
/// On success, returns where the last `@` is (found in the same pass).
fn scan_escapes(s: &str) -> Result<Option<usize>, ParseError> {
    let b = s.as_bytes();
    let mut at = None;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
                {
                    return Err(ParseError::BadUri);
                }
                i += 3;
                continue;
            }
            b'@' => at = Some(i),
            c if c <= b' ' || c == 0x7f || c == b'"' || c == b'<' || c == b'>' => return Err(ParseError::BadUri),
            _ => {}
        }
        i += 1;
    }
    Ok(at)
}

impl<'a> Uri<'a> {
    /// Parses an absolute URI. SIP/SIPS URIs are parsed into parts.
    pub fn parse(s: &'a str) -> Result<Uri<'a>, ParseError> {
        let colon = s.bytes().position(|c| c == b':').ok_or(ParseError::BadUri)?;
        let scheme = &s[..colon];
        let rest = &s[colon + 1..];
        if !valid_scheme(scheme) {
            return Err(ParseError::BadUri);
        }
        let last_at = scan_escapes(rest)?;
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
        // userinfo is everything before the last '@': the user part may hold ';', '?'
        // and escapes (RFC 3261 §25.1 user-unreserved; RFC 4475 §3.1.1.2, §3.1.1.9),
        // while an unescaped '@' can appear neither in params nor in headers.
        let (hp_start, user, password) = {
            match last_at {
                Some(at) => {
                    let ui = &rest[..at];
                    if ui.is_empty() {
                        return Err(ParseError::BadUri);
                    }
                    let (u, p) = match ui.bytes().position(|c| c == b':') {
                        Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                        None => (ui, None),
                    };
                    (at + 1, Some(u), p)
                }
                None => (0, None, None),
            }
        };
        // hostport [";" params] ["?" headers]: one scan for the first ';' or '?'.
        let hp = &rest[hp_start..];
        let (hostport, params, headers) = match hp.bytes().position(|c| c == b';' || c == b'?') {
            None => (hp, "", None),
            Some(q) if hp.as_bytes()[q] == b'?' => (&hp[..q], "", Some(&hp[q + 1..])),
            Some(i) => {
                let after = &hp[i + 1..];
                match after.bytes().position(|c| c == b'?') {
                    Some(q) => (&hp[..i], &after[..q], Some(&after[q + 1..])),
                    None => (&hp[..i], after, None),
                }
            }
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

/// `port = 1*DIGIT` (§25.1) that fits 16 bits. Unlike `str::parse`, no sign is allowed.
fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 {
        // Leading zeros beyond five digits are legal but never seen; refuse them.
        return None;
    }
    let mut v: u32 = 0;
    for c in p.bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    u16::try_from(v).ok()
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
        // Host and port are short: a plain loop beats `rfind`'s memrchr set-up.
        match s.bytes().rposition(|c| c == b':') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        }
    };
    let port = match p {
        Some(p) => Some(parse_port(trim(p)).ok_or(ParseError::BadUri)?),
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
        // port = 1*DIGIT: `str::parse` would have taken the sign.
        assert!(Uri::parse("sip:host:+5060").is_err());
        assert!(Uri::parse("sip:host:").is_err());
        assert_eq!(Uri::parse("sip:host:65535").unwrap().as_sip().unwrap().port, Some(65535));
        assert!(Uri::parse("nocolon").is_err());
    }

    /// RFC 4475 §3.1.1.2 intmeth: '?' (and ',', '/', ';') are user-unreserved, so a '?'
    /// before the '@' does not start the URI headers.
    #[test]
    fn question_mark_in_user() {
        let u = Uri::parse("sip:2_strange.user~(really!)&isn't+it$/wild?,/;;*@dialtone.test").unwrap();
        let s = u.as_sip().unwrap();
        assert_eq!(s.user, Some("2_strange.user~(really!)&isn't+it$/wild?,/;;*"));
        assert_eq!(s.host, Host::Domain("dialtone.test"));
        assert_eq!(s.headers, None);
        let u = Uri::parse("sip:a@b.test?Route=%3Csip:c.test%3E").unwrap();
        assert_eq!(u.as_sip().unwrap().headers, Some("Route=%3Csip:c.test%3E"));
    }

    #[test]
    fn params_iteration_matches_the_grammar() {
        let p = Params(r#" branch = z9hG4bK1 ;; rport; x="a;b=c" ;lr;y=<sip:a;b=c>;=v "#);
        let v: Vec<_> = p.iter().collect();
        assert_eq!(
            v,
            vec![
                ("branch", Some("z9hG4bK1")),
                ("rport", None),
                ("x", Some("\"a;b=c\"")),
                ("lr", None),
                ("y", Some("<sip:a;b=c>")),
                ("", Some("v")),
            ]
        );
        assert_eq!(p.value("BRANCH"), Some("z9hG4bK1"));
        assert_eq!(Params("").iter().count(), 0);
        assert_eq!(Params("a=\"x").iter().collect::<Vec<_>>(), vec![("a", Some("\"x"))]);
    }
}
