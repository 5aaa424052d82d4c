//! Typed views of header values (RFC 3261 §20). Each borrows from the header text.

use crate::error::ParseError;
use crate::grammar::{is_token, is_wsp, split_top, trim, unquote};
use crate::method::Method;
use crate::uri::{split_host_port, Host, Params, Uri};
use std::borrow::Cow;

/// The `z9hG4bK` prefix of an RFC 3261 branch (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One Via value: `SIP/2.0/UDP host:port;branch=…;rport`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Via<'a> {
    /// Protocol name and version, normally `SIP/2.0`.
    pub protocol: &'a str,
    /// Transport (`UDP`, `TCP`, `TLS`, `WS`, … or any token).
    pub transport: &'a str,
    /// sent-by host.
    pub host: Host<'a>,
    /// sent-by port.
    pub port: Option<u16>,
    /// Via parameters.
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    /// Parses one via-parm. LWS may surround the slashes (RFC 4475 §3.1.1.1).
    pub fn parse(s: &'a str) -> Result<Via<'a>, ParseError> {
        const E: ParseError = ParseError::BadHeader("Via");
        let s = trim(s);
        let mut rest = s;
        let mut parts = [""; 3];
        for (i, p) in parts.iter_mut().enumerate() {
            let r = trim(rest);
            let end = if i < 2 {
                r.find('/').ok_or(E)?
            } else {
                r.find(|c: char| c == ' ' || c == '\t').ok_or(E)?
            };
            *p = trim(&r[..end]);
            rest = &r[end + 1..];
            if !is_token(p) {
                return Err(E);
            }
        }
        if !parts[0].eq_ignore_ascii_case("SIP") {
            return Err(E);
        }
        let proto_end = parts[1].as_ptr() as usize + parts[1].len() - s.as_ptr() as usize;
        let rest = trim(rest);
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (host, port) = split_host_port(sent_by).map_err(|_| E)?;
        let via = Via { protocol: &s[..proto_end], transport: parts[2], host, port, params: Params(params) };
        for (n, v) in via.params.iter() {
            if !is_token(n) || v.is_some_and(|v| v.is_empty() || v.contains(char::is_whitespace) && !v.starts_with('"')) {
                return Err(E);
            }
        }
        if let Some(Some(p)) = via.params.get("rport") {
            p.parse::<u16>().map_err(|_| E)?;
        }
        Ok(via)
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.params.value("branch")
    }

    /// The `received` parameter (RFC 3261 §18.2.1).
    pub fn received(&self) -> Option<&'a str> {
        self.params.value("received")
    }

    /// `None` without `rport`, `Some(None)` for a bare `rport`, `Some(Some(p))` when filled.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params.get("rport").map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// Whether the transport is reliable (anything but UDP).
    pub fn is_reliable(&self) -> bool {
        !self.transport.eq_ignore_ascii_case("UDP")
    }
}

/// A name-addr or addr-spec with parameters: From, To, Contact, Route, Refer-To…
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name, unquoted.
    pub display: Option<Cow<'a, str>>,
    /// The URI.
    pub uri: Uri<'a>,
    /// The text of the URI as written (without `<>`).
    pub uri_text: &'a str,
    /// Header parameters (after `>` or, for an addr-spec, after the URI).
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// Parses `["display"] <uri>;params` or `uri;params` (RFC 3261 §20.10, §25.1).
    pub fn parse(s: &'a str, what: &'static str) -> Result<NameAddr<'a>, ParseError> {
        let e = ParseError::BadHeader(what);
        let s = trim(s);
        if !crate::grammar::quotes_balanced(s) {
            return Err(e);
        }
        // Find a '<' outside quotes.
        let b = s.as_bytes();
        let mut in_q = false;
        let mut lt = None;
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\\' if in_q => i += 1,
                b'"' => in_q = !in_q,
                b'<' if !in_q => {
                    lt = Some(i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        if let Some(lt) = lt {
            let gt = s[lt..].find('>').ok_or(e.clone())? + lt;
            let disp = trim(&s[..lt]);
            let display = if disp.is_empty() {
                None
            } else {
                if !disp.starts_with('"') && !disp.split(|c| c == ' ' || c == '\t').filter(|w| !w.is_empty()).all(is_token) {
                    return Err(e);
                }
                Some(unquote(disp))
            };
            let uri_text = &s[lt + 1..gt];
            if uri_text.bytes().any(|c| is_wsp(c)) {
                return Err(e);
            }
            let uri = Uri::parse(uri_text).map_err(|_| e.clone())?;
            let after = trim(&s[gt + 1..]);
            let params = match after.strip_prefix(';') {
                Some(p) => p,
                None if after.is_empty() => "",
                None => return Err(e),
            };
            Ok(NameAddr { display, uri, uri_text, params: Params(params) })
        } else {
            // addr-spec: parameters after the URI belong to the header (§20.10).
            let (uri_text, params) = match s.find(';') {
                Some(i) => (&s[..i], &s[i + 1..]),
                None => (s, ""),
            };
            if uri_text.bytes().any(|c| is_wsp(c) || c == b'"' || c == b',') || uri_text.contains('?') {
                return Err(e);
            }
            let uri = Uri::parse(uri_text).map_err(|_| e)?;
            Ok(NameAddr { display: None, uri, uri_text, params: Params(params) })
        }
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&'a str> {
        self.params.value("tag")
    }
}

/// CSeq: a sequence number and a method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number (< 2^31 per §8.1.1.5, but anything in 32 bits is accepted).
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(s: &str) -> Result<CSeq, ParseError> {
        const E: ParseError = ParseError::BadHeader("CSeq");
        let s = trim(s);
        let sp = s.find(|c: char| c == ' ' || c == '\t').ok_or(E)?;
        let num = &s[..sp];
        if num.is_empty() || num.len() > 10 || !num.bytes().all(|c| c.is_ascii_digit()) {
            return Err(E);
        }
        let seq = num.parse::<u32>().map_err(|_| E)?;
        let method = Method::parse(trim(&s[sp..])).ok_or(E)?;
        Ok(CSeq { seq, method })
    }
}

/// A media type with parameters (Content-Type, Accept entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaType<'a> {
    /// Type, e.g. `application`.
    pub kind: &'a str,
    /// Subtype, e.g. `sdp`.
    pub subtype: &'a str,
    /// Parameters.
    pub params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// Parses `type/subtype *(;param)`.
    pub fn parse(s: &'a str) -> Result<MediaType<'a>, ParseError> {
        const E: ParseError = ParseError::BadHeader("Content-Type");
        let s = trim(s);
        let (mt, params) = match s.find(';') {
            Some(i) => (&s[..i], &s[i + 1..]),
            None => (s, ""),
        };
        let slash = mt.find('/').ok_or(E)?;
        let (kind, subtype) = (trim(&mt[..slash]), trim(&mt[slash + 1..]));
        if !is_token(kind) || !is_token(subtype) {
            return Err(E);
        }
        Ok(MediaType { kind, subtype, params: Params(params) })
    }

    /// Whether this is `kind/subtype` (case-insensitive).
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// Whether this Accept range (`*/*`, `application/*`, exact) matches `kind/subtype`.
    pub fn accepts(&self, kind: &str, subtype: &str) -> bool {
        (self.kind == "*" || self.kind.eq_ignore_ascii_case(kind))
            && (self.subtype == "*" || self.subtype.eq_ignore_ascii_case(subtype))
    }
}

/// A digest challenge or credentials: `Digest realm="x", nonce="y", …` (§25.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthParams<'a> {
    /// The scheme, e.g. `Digest`.
    pub scheme: &'a str,
    /// The parameters in order, values unquoted.
    pub params: Vec<(&'a str, Cow<'a, str>)>,
}

impl<'a> AuthParams<'a> {
    /// Parses WWW-Authenticate / Proxy-Authenticate / Authorization / Proxy-Authorization.
    pub fn parse(s: &'a str) -> Result<AuthParams<'a>, ParseError> {
        const E: ParseError = ParseError::BadHeader("Authorization");
        let s = trim(s);
        let sp = s.find(|c: char| c == ' ' || c == '\t').unwrap_or(s.len());
        let scheme = &s[..sp];
        if !is_token(scheme) {
            return Err(E);
        }
        let mut params = Vec::new();
        for p in split_top(&s[sp..], b',') {
            if p.is_empty() {
                continue;
            }
            let eq = p.find('=').ok_or(E)?;
            let name = trim(&p[..eq]);
            if !is_token(name) {
                return Err(E);
            }
            params.push((name, unquote(&p[eq + 1..])));
        }
        Ok(AuthParams { scheme, params })
    }

    /// A parameter's value (names are case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_ref())
    }
}

/// Parses a non-negative integer header (Max-Forwards, Expires, Content-Length…),
/// refusing values that do not fit `max`.
pub fn parse_uint(s: &str, max: u64, what: &'static str) -> Result<u64, ParseError> {
    let s = trim(s);
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(ParseError::BadHeader(what));
    }
    match s.parse::<u64>() {
        Ok(v) if v <= max => Ok(v),
        _ => Err(ParseError::BadHeader(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_lws_and_ipv6() {
        let v = Via::parse("SIP / 2.0 / UDP [2001:db8::9]:5061 ;branch=z9hG4bKx;rport").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, Host::V6("2001:db8::9".parse().unwrap()));
        assert_eq!(v.port, Some(5061));
        assert_eq!(v.branch(), Some("z9hG4bKx"));
        assert_eq!(v.rport(), Some(None));
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("SIP/2.0/UDP host;rport=abc").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse(r#""Alice \"A\"" <sip:alice@a.test>;tag=88"#, "From").unwrap();
        assert_eq!(n.display.as_deref(), Some("Alice \"A\""));
        assert_eq!(n.tag(), Some("88"));
        let n = NameAddr::parse("sip:bob@b.test;tag=1", "To").unwrap();
        assert_eq!(n.uri_text, "sip:bob@b.test");
        assert_eq!(n.tag(), Some("1"));
        let n = NameAddr::parse("Bob Smith <sip:bob@b.test>", "To").unwrap();
        assert_eq!(n.display.as_deref(), Some("Bob Smith"));
        assert!(NameAddr::parse(r#""unterminated <sip:a@b>"#, "From").is_err());
        assert!(NameAddr::parse("<sip:a@b", "From").is_err());
    }

    #[test]
    fn cseq_and_auth() {
        assert_eq!(CSeq::parse("4711 INVITE").unwrap().seq, 4711);
        assert!(CSeq::parse("99999999999 INVITE").is_err());
        assert!(CSeq::parse("-1 INVITE").is_err());
        let a = AuthParams::parse(r#"Digest realm="a, b", nonce="n", qop="auth,auth-int", algorithm=MD5"#).unwrap();
        assert_eq!(a.scheme, "Digest");
        assert_eq!(a.get("realm"), Some("a, b"));
        assert_eq!(a.get("QOP"), Some("auth,auth-int"));
        assert_eq!(a.get("algorithm"), Some("MD5"));
    }
}
