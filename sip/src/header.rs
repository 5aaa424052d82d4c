//! Typed views of header values (RFC 3261 §20). Each borrows from the header text.

use crate::error::ParseError;
use crate::grammar::{is_token, is_token_char, is_wsp, split_top, trim, unquote};
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
        let b = s.as_bytes();
        let mut i = 0;
        let skip_wsp = |i: &mut usize| {
            while *i < b.len() && is_wsp(b[*i]) {
                *i += 1;
            }
        };
        let token = |i: &mut usize| -> Result<&'a str, ParseError> {
            let start = *i;
            while *i < b.len() && is_token_char(b[*i]) {
                *i += 1;
            }
            if *i == start {
                return Err(E);
            }
            Ok(&s[start..*i])
        };
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport, where
        // SLASH = SWS "/" SWS.
        let name = token(&mut i)?;
        for _ in 0..2 {
            skip_wsp(&mut i);
            if b.get(i) != Some(&b'/') {
                return Err(E);
            }
            i += 1;
            skip_wsp(&mut i);
            if b.get(i) == Some(&b'/') {
                return Err(E);
            }
            token(&mut i)?;
            if i == b.len() {
                return Err(E);
            }
        }
        let proto_end = s[..i].rfind('/').map_or(i, |slash| slash);
        let protocol = trim(&s[..proto_end]);
        let transport = trim(&s[proto_end + 1..i]);
        // LWS before sent-by is required.
        if !is_wsp(b[i]) {
            return Err(E);
        }
        if !name.eq_ignore_ascii_case("SIP") {
            return Err(E);
        }
        let rest = trim(&s[i..]);
        let (sent_by, params) = match rest.bytes().position(|c| c == b';') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (host, port) = split_host_port(sent_by).map_err(|_| E)?;
        let via = Via { protocol, transport, host, port, params: Params(params) };
        // generic-param = token [ EQUAL gen-value ]; gen-value = token / host /
        // quoted-string (§25.1), so a branch like `z9hG4bK<a>@{b}` is a 400 (RFC 4475
        // §3.2.1). `received` may also be a bare IPv6 address (RFC 5118 §4.5).
        for (n, v) in via.params.iter() {
            if !is_token(n) || v.is_some_and(|v| !is_gen_value(v)) {
                return Err(E);
            }
            if n.eq_ignore_ascii_case("rport") {
                if let Some(p) = v {
                    p.parse::<u16>().map_err(|_| E)?;
                }
            }
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

/// `gen-value = token / host / quoted-string` (RFC 3261 §25.1); a bare IPv6 address is
/// accepted too, as RFC 5118 §4.5 allows in `received`.
fn is_gen_value(v: &str) -> bool {
    if is_token(v) {
        return true;
    }
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        return crate::grammar::quotes_balanced(v) && is_quoted_string(v);
    }
    if v.starts_with('[') {
        return Host::parse(v).is_ok();
    }
    v.parse::<std::net::Ipv6Addr>().is_ok()
}

/// Whether `v` is exactly one quoted-string (the closing quote is the last character).
fn is_quoted_string(v: &str) -> bool {
    let b = v.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'"' => return i == b.len() - 1,
            _ => {}
        }
        i += 1;
    }
    false
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
        // Find a '<' outside quotes; quotes before it are then balanced, and without one
        // the whole value must balance.
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
        if in_q {
            return Err(e);
        }
        if let Some(lt) = lt {
            let gt = b[lt..].iter().position(|&c| c == b'>').ok_or(e.clone())? + lt;
            // Quotes from '<' on must balance. A '"' (or SP/HTAB) between '<' and '>' is
            // refused by `Uri::parse` below, so only the text after '>' needs the check.
            if !crate::grammar::quotes_balanced(&s[gt + 1..]) {
                return Err(e);
            }
            let disp = trim(&s[..lt]);
            let display = if disp.is_empty() {
                None
            } else {
                if !disp.starts_with('"') && !disp.split([' ', '\t']).filter(|w| !w.is_empty()).all(is_token) {
                    return Err(e);
                }
                Some(unquote(disp))
            };
            let uri_text = &s[lt + 1..gt];
            let uri = Uri::parse(uri_text).map_err(|_| e.clone())?;
            let after = trim(&s[gt + 1..]);
            let params = match after.strip_prefix(';') {
                Some(p) => p,
                None if after.is_empty() => "",
                None => return Err(e),
            };
            Ok(NameAddr { display, uri, uri_text, params: Params(params) })
        } else {
            // addr-spec: parameters after the URI belong to the header (§20.10), and
            // the URI cannot hold an unescaped ';' here, so the first one starts them.
            // SEMI = SWS ";" SWS (§25.1): LWS before it (a SP left by unfolding, or
            // HTAB) is not part of the URI. LWS inside the URI is still refused below.
            let (uri_text, params) = match s.find(';') {
                Some(i) => (trim(&s[..i]), &s[i + 1..]),
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
        let sp = s.bytes().position(is_wsp).ok_or(E)?;
        let num = &s.as_bytes()[..sp];
        if num.is_empty() || num.len() > 10 {
            return Err(E);
        }
        let mut seq: u64 = 0;
        for &c in num {
            if !c.is_ascii_digit() {
                return Err(E);
            }
            seq = seq * 10 + u64::from(c - b'0');
        }
        let seq = u32::try_from(seq).map_err(|_| E)?;
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
        let sp = s.find([' ', '\t']).unwrap_or(s.len());
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
        // RFC 4475 §3.2.1: a branch that is neither token nor host nor quoted-string.
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK<a>@{b}").is_err());
        assert!(Via::parse("SIP/2.0/UDP h;branch=z9hG4bK1;x=\"a b\"").is_ok());
        assert!(Via::parse("SIP/2.0/UDP h;branch=z9hG4bK1;x=\"a\"b\"").is_err());
        // RFC 5118 §4.5: received as a bracketed or bare IPv6 address.
        assert!(Via::parse("SIP/2.0/UDP h;branch=z9hG4bK1;received=[2001:db8::9]").is_ok());
        assert!(Via::parse("SIP/2.0/UDP h;branch=z9hG4bK1;received=2001:db8::9").is_ok());
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

    /// RFC 3261 §25.1: SEMI = SWS ";" SWS, EQUAL = SWS "=" SWS, LAQUOT = SWS "<",
    /// RAQUOT = ">" SWS. Folding is already one SP by the time a value gets here.
    #[test]
    fn name_addr_sws_around_semi_equal_and_angles() {
        fn sip_uri<'a>(n: &NameAddr<'a>) -> (Option<&'a str>, Host<'a>, &'a str) {
            let u = n.uri.as_sip().expect("a SIP URI");
            (u.user, u.host, u.params.0)
        }
        let bob = (Some("bob"), Host::Domain("example.com"), "");
        // addr-spec (no angle brackets): LWS before ';' is not part of the URI.
        for (v, tag) in [
            ("sip:bob@example.com ;tag=abc", "abc"),
            ("sip:bob@example.com ; tag = abc", "abc"),
            ("sip:bob@example.com\t;\ttag\t=\tabc", "abc"),
            ("sip:bob@example.com  ;  tag  =  abc  ", "abc"),
            // What the parser makes of "sip:bob@example.com" CRLF " ;tag=xyz".
            ("sip:bob@example.com ;tag=xyz", "xyz"),
            ("sip:bob@example.com ;tag =\r\n abc", "abc"),
        ] {
            let n = NameAddr::parse(v, "To").unwrap_or_else(|e| panic!("{v:?}: {e:?}"));
            assert_eq!(n.uri_text, "sip:bob@example.com", "{v:?}");
            assert_eq!(sip_uri(&n), bob, "{v:?}: the tag is a header param, not a URI param");
            assert_eq!(n.tag(), Some(tag), "{v:?}");
            assert_eq!(n.display, None);
        }
        // Several header params, each with SWS; a quoted value keeps its inner ';'.
        let n = NameAddr::parse(r#"sip:bob@example.com ; foo = bar ; x = "a ; b" ; tag = t7 ; lr"#, "To").unwrap();
        assert_eq!(n.uri_text, "sip:bob@example.com");
        assert_eq!(n.params.value("foo"), Some("bar"));
        assert_eq!(n.params.value("x"), Some(r#""a ; b""#));
        assert_eq!(n.tag(), Some("t7"));
        assert_eq!(n.params.get("lr"), Some(None));
        // name-addr: SWS before '<', after '>', around ';' and '='.
        for (v, display) in [
            (r#""Alice" <sip:bob@example.com> ; tag = 1928301774"#, Some("Alice")),
            (r#""Alice"<sip:bob@example.com>;tag=1928301774"#, Some("Alice")),
            ("\"Alice\" \t <sip:bob@example.com>\t;\ttag\t=\t1928301774", Some("Alice")),
            ("Alice  Smith\t<sip:bob@example.com> ;tag= 1928301774", Some("Alice  Smith")),
            ("  <sip:bob@example.com>   ;   tag   =   1928301774  ", None),
        ] {
            let n = NameAddr::parse(v, "From").unwrap_or_else(|e| panic!("{v:?}: {e:?}"));
            assert_eq!(n.display.as_deref(), display, "{v:?}");
            assert_eq!(n.uri_text, "sip:bob@example.com", "{v:?}");
            assert_eq!(sip_uri(&n), bob, "{v:?}");
            assert_eq!(n.tag(), Some("1928301774"), "{v:?}");
        }
        // A URI param inside <> stays with the URI; the header param after '>' does not.
        let n = NameAddr::parse("<sip:bob@example.com;transport=tcp> ; tag = q", "To").unwrap();
        assert_eq!(n.uri.as_sip().unwrap().params.value("transport"), Some("tcp"));
        assert_eq!(n.uri.as_sip().unwrap().params.value("tag"), None);
        assert_eq!(n.tag(), Some("q"));
        // Still refused: LWS inside the URI, or inside the angle brackets (LAQUOT is
        // SWS "<" and RAQUOT ">" SWS: no LWS after '<' or before '>').
        for v in [
            "sip:bob @example.com;tag=abc",
            "sip:bob@example .com ;tag=abc",
            "sip:bob@example.com x ;tag=abc",
            " ;tag=abc",
            "sip:bob@example.com?subject=x ;tag=abc",
            "< sip:bob@example.com>;tag=abc",
            "<sip:bob@example.com >;tag=abc",
            "<sip:bob@example.com> x ;tag=abc",
        ] {
            assert!(NameAddr::parse(v, "To").is_err(), "{v:?} must not parse");
        }
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
