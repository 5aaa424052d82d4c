//! What a UAS checks before it acts on a request (RFC 3261 §8.2), and what a UAC
//! checks before it believes a response (§8.1.3, §18.1.2).
//!
//! [`check_request`] returns the response a bad request earns; [`inspect_datagram`]
//! is the whole receive-side verdict for one datagram, used by the RFC 4475 fixtures.

use crate::error::ParseError;
use crate::header::MediaType;
use crate::method::Method;
use crate::msg::{Message, Request, Response};
use crate::name::HeaderName;
use crate::parse::parse_datagram;
use crate::uri::Uri;
use bytes::Bytes;

/// What this UAS supports; the inputs to the 416/420/415/406 decisions.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Request-URI schemes we serve.
    pub schemes: Vec<String>,
    /// Option tags we support (for Require, §8.2.2.3).
    pub extensions: Vec<String>,
    /// Body types we can handle in INVITE/ACK/UPDATE/PRACK (§8.2.3).
    pub session_body_types: Vec<(String, String)>,
}

impl Default for Policy {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        Policy {
            schemes: s(&["sip", "sips", "tel"]),
            extensions: s(&["100rel", "replaces", "timer", "norefersub", "path", "outbound"]),
            session_body_types: [("application", "sdp"), ("multipart", "mixed"), ("multipart", "alternative")]
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        }
    }
}

/// A request refused, with the response to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Status code.
    pub status: u16,
    /// Reason phrase, naming the fault for a 400.
    pub reason: &'static str,
    /// Extra headers the response must carry (Unsupported for 420, Accept for 415).
    pub headers: Vec<(HeaderName, String)>,
}

impl From<ParseError> for Rejection {
    fn from(e: ParseError) -> Self {
        let (status, reason) = e.status();
        Rejection { status, reason, headers: Vec::new() }
    }
}

fn session_method(m: &Method) -> bool {
    matches!(m, Method::Invite | Method::Ack | Method::Update | Method::Prack)
}

/// The header checks shared by requests and responses: the mandatory headers are there,
/// once, and parse.
fn check_common(m: &crate::msg::Headers) -> Result<(), ParseError> {
    m.top_via()?;
    for v in m.vias() {
        v?;
    }
    m.from()?;
    m.to()?;
    m.call_id()?;
    m.cseq()?;
    m.max_forwards()?;
    for (name, what) in [
        (HeaderName::MaxForwards, "Max-Forwards"),
        (HeaderName::ContentLength, "Content-Length"),
        (HeaderName::ContentType, "Content-Type"),
        (HeaderName::Expires, "Expires"),
    ] {
        if m.count(&name) > 1 {
            return Err(ParseError::Multiple(what));
        }
    }
    m.content_type()?;
    m.expires()?;
    if let Some(d) = m.get(&HeaderName::Date) {
        // rfc1123-date ends in "GMT" (§20.17).
        if !d.trim_end().ends_with("GMT") {
            return Err(ParseError::BadHeader("Date"));
        }
    }
    for c in m.contacts() {
        if let Err(e) = c {
            if m.get(&HeaderName::Contact).is_some_and(|v| v.trim() == "*") {
                continue;
            }
            return Err(e);
        }
    }
    for r in m.routes().chain(m.record_routes()) {
        r?;
    }
    Ok(())
}

/// Checks a parsed request in the order of RFC 3261 §8.2: syntax (400), scheme (416),
/// extensions (420), body type (415), then Accept (406).
pub fn check_request(req: &Request, policy: &Policy) -> Result<(), Rejection> {
    check_common(&req.headers)?;
    let cseq = req.headers.cseq()?;
    if cseq.method != req.method {
        return Err(ParseError::CSeqMismatch.into());
    }
    let uri = req.uri()?;
    if !policy.schemes.iter().any(|s| s.eq_ignore_ascii_case(uri.scheme())) {
        return Err(Rejection { status: 416, reason: "Unsupported URI Scheme", headers: Vec::new() });
    }
    if let Uri::Sip(u) = &uri {
        // maddr, ttl, etc. are not checked; an empty user is not allowed.
        if u.user == Some("") {
            return Err(ParseError::BadUri.into());
        }
        // Headers are not allowed in a Request-URI (RFC 3261 §19.1.1 table; RFC 4475
        // §3.1.2.11 escruri: we reject rather than ignore them).
        if u.headers.is_some() {
            return Err(ParseError::BadUri.into());
        }
    }
    if !matches!(req.method, Method::Ack | Method::Cancel) {
        let unsupported: Vec<&str> = req
            .headers
            .values(&HeaderName::Require)
            .filter(|t| !policy.extensions.iter().any(|e| e.eq_ignore_ascii_case(t)))
            .collect();
        if !unsupported.is_empty() {
            return Err(Rejection {
                status: 420,
                reason: "Bad Extension",
                headers: vec![(HeaderName::Unsupported, unsupported.join(", "))],
            });
        }
    }
    if session_method(&req.method) && !req.body.is_empty() {
        let ok = match req.headers.content_type()? {
            Some(ct) => policy.session_body_types.iter().any(|(k, s)| ct.is(k, s)),
            None => false,
        };
        let encoded = req.headers.values(&HeaderName::ContentEncoding).any(|e| !e.eq_ignore_ascii_case("identity"));
        if !ok || encoded {
            return Err(Rejection {
                status: 415,
                reason: "Unsupported Media Type",
                headers: vec![
                    (HeaderName::Accept, "application/sdp".into()),
                    (HeaderName::AcceptEncoding, "identity".into()),
                ],
            });
        }
    }
    if req.method == Method::Invite && req.headers.get(&HeaderName::Accept).is_some() {
        let mut any = false;
        let mut sdp = false;
        for a in req.headers.values(&HeaderName::Accept) {
            any = true;
            let mt = MediaType::parse(a).map_err(|_| ParseError::BadHeader("Accept"))?;
            sdp |= mt.accepts("application", "sdp");
        }
        if any && !sdp {
            return Err(Rejection {
                status: 406,
                reason: "Not Acceptable",
                headers: vec![(HeaderName::Accept, "application/sdp".into())],
            });
        }
    }
    Ok(())
}

/// Checks a response before a client transaction sees it; a failure means drop.
pub fn check_response(resp: &Response) -> Result<(), ParseError> {
    check_common(&resp.headers)?;
    if resp.status == 0 {
        return Err(ParseError::BadStatusCode);
    }
    Ok(())
}

/// What a UAS does with one received datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A request or response that is acted on.
    Accept,
    /// A request refused with this status and reason.
    Reject(u16, &'static str),
    /// Silently discarded (a malformed response, or a request we cannot answer).
    Drop,
}

/// Parses and checks one datagram as our UAS would.
pub fn inspect_datagram(buf: Bytes, policy: &Policy) -> Verdict {
    match parse_datagram(buf) {
        Ok(Message::Request(r)) => match check_request(&r, policy) {
            Ok(()) => Verdict::Accept,
            Err(rej) => Verdict::Reject(rej.status, rej.reason),
        },
        Ok(Message::Response(r)) => match check_response(&r) {
            Ok(()) => Verdict::Accept,
            Err(_) => Verdict::Drop,
        },
        Err(m) if m.request.is_some() => {
            let (s, r) = m.error.status();
            Verdict::Reject(s, r)
        }
        Err(_) => Verdict::Drop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(ruri: &str) -> Bytes {
        Bytes::from(format!(
            "OPTIONS {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\nFrom: <sip:b@example.org>;tag=1\r\nTo: <sip:a@dialtone.test>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        ))
    }

    /// RFC 4475 §3.1.2.11 escruri: headers in the Request-URI are a 400 naming the URI.
    #[test]
    fn request_uri_headers_are_rejected() {
        let p = Policy::default();
        assert_eq!(inspect_datagram(options("sip:a@dialtone.test"), &p), Verdict::Accept);
        assert_eq!(
            inspect_datagram(options("sip:a@dialtone.test?Route=%3Csip:x.test%3E"), &p),
            Verdict::Reject(400, "Bad Request-URI")
        );
        // A '?' inside the user part is not a header separator (RFC 4475 §3.1.1.2).
        assert_eq!(inspect_datagram(options("sip:wild?,/;;*@dialtone.test"), &p), Verdict::Accept);
    }

    fn options_to(to: &str) -> Bytes {
        Bytes::from(format!(
            "OPTIONS sip:a@dialtone.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK1\r\nFrom: <sip:b@example.org>;tag=1\r\nTo: {to}\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        ))
    }

    /// RFC 3261 §7.3.1, §25.1: SWS around ';' and '=' (and a fold before ';tag') in an
    /// addr-spec or name-addr To is valid; it used to be answered 400 "Bad To".
    #[test]
    fn to_with_sws_is_not_a_400() {
        let p = Policy::default();
        for to in [
            "sip:a@dialtone.test ;tag=abc",
            "sip:a@dialtone.test ; tag = abc",
            "sip:a@dialtone.test\t;\ttag\t=\tabc",
            "sip:a@dialtone.test\r\n ;tag=abc",
            "sip:a@dialtone.test ;\r\n\ttag =\r\n abc",
            "\"A\" <sip:a@dialtone.test> ; tag = abc",
            "\"A\"\t <sip:a@dialtone.test>\r\n ;tag=abc",
        ] {
            let raw = options_to(to);
            assert_eq!(inspect_datagram(raw.clone(), &p), Verdict::Accept, "To: {to:?}");
            let m = parse_datagram(raw).unwrap();
            let t = m.headers().to().unwrap();
            assert_eq!(t.tag(), Some("abc"), "To: {to:?}");
            assert_eq!(t.uri_text, "sip:a@dialtone.test", "To: {to:?}");
        }
        // Whitespace inside the URI is still a 400.
        for to in ["sip:a @dialtone.test ;tag=abc", "< sip:a@dialtone.test>;tag=abc"] {
            assert_eq!(inspect_datagram(options_to(to), &p), Verdict::Reject(400, "Bad To"), "To: {to:?}");
        }
    }

    /// The `fixtures/sip/parse/sws-*.sip` files (see fixtures/sip/README.md): each is
    /// accepted and its To and From tags come out without the surrounding SWS.
    #[test]
    fn sws_fixtures_parse_with_their_tags() {
        fn check(name: &str, raw: &'static [u8], to_uri: &str, to_tag: &str, from_tag: &str) {
            let raw = Bytes::from_static(raw);
            assert_eq!(inspect_datagram(raw.clone(), &Policy::default()), Verdict::Accept, "{name}");
            let m = parse_datagram(raw).unwrap_or_else(|e| panic!("{name}: {:?}", e.error));
            let (to, from) = (m.headers().to().unwrap(), m.headers().from().unwrap());
            assert_eq!(to.uri_text, to_uri, "{name}");
            assert_eq!(to.tag(), Some(to_tag), "{name}");
            assert_eq!(from.tag(), Some(from_tag), "{name}");
            // The tag is a header parameter, never a URI parameter.
            assert_eq!(to.uri.as_sip().unwrap().params.value("tag"), None, "{name}");
            assert_eq!(from.uri.as_sip().unwrap().params.value("tag"), None, "{name}");
            for c in m.headers().contacts() {
                c.unwrap_or_else(|e| panic!("{name}: Contact {e:?}"));
            }
            let again = parse_datagram(m.to_bytes()).unwrap();
            assert_eq!(again, m, "{name}: parse, serialize, parse");
        }
        // fixture!(name, To URI, To tag, From tag)
        macro_rules! fixture {
            ($name:literal, $to_uri:literal, $to_tag:literal, $from_tag:literal) => {
                check(
                    $name,
                    include_bytes!(concat!("../../fixtures/sip/parse/", $name, ".sip")),
                    $to_uri,
                    $to_tag,
                    $from_tag,
                )
            };
        }
        fixture!("sws-addrspec-semi", "sip:alice@dialtone.test", "sws1to", "f74d3048c1");
        fixture!("sws-addrspec-equal", "sip:alice@dialtone.test", "sws2to", "853083c2f6");
        fixture!("sws-addrspec-htab", "sip:alice@dialtone.test", "sws3to", "7f79edeeef");
        fixture!("sws-addrspec-fold", "sip:alice@dialtone.test", "sws4to", "sws4fr");
        fixture!("sws-nameaddr", "sip:alice@dialtone.test", "sws5to", "1928301774");
        fixture!("sws-display", "sip:alice@dialtone.test", "sws6to", "sws6fr");
        fixture!("sws-multiparam", "sip:alice@dialtone.test", "sws7to", "sws7fr");
        fixture!("sws-both", "sip:alice@dialtone.test", "sws8to", "sws8fr");
        fixture!("sws-response", "sip:bob@example.org", "sws9to", "sws9fr");
        let m =
            parse_datagram(Bytes::from_static(include_bytes!("../../fixtures/sip/parse/sws-multiparam.sip"))).unwrap();
        let (to, from) = (m.headers().to().unwrap(), m.headers().from().unwrap());
        assert_eq!(to.params.value("x-b"), Some("1"));
        assert_eq!(to.params.get("x-flag"), Some(None));
        assert_eq!(from.params.value("x-a"), Some("\"q ; v\""));
        let c = m.headers().contacts().next().unwrap().unwrap();
        assert_eq!(c.uri_text, "sip:bob@192.0.2.10:5060");
        assert_eq!(c.params.value("expires"), Some("60"));
        assert_eq!(c.params.value("q"), Some("0.5"));
    }

    /// Every `parse/` fixture is still accepted and every `400/` one still refused with
    /// a 400 naming the fault (the root crate's `torture` test runs all directories).
    #[test]
    fn parse_and_400_fixtures_keep_their_verdicts() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/sip");
        let p = Policy::default();
        for dir in ["parse", "400"] {
            let mut n = 0;
            for e in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = e.unwrap().path();
                if path.extension().is_none_or(|x| x != "sip") {
                    continue;
                }
                n += 1;
                let got = inspect_datagram(Bytes::from(std::fs::read(&path).unwrap()), &p);
                match (dir, got) {
                    ("parse", Verdict::Accept) => {}
                    ("400", Verdict::Reject(400, r)) if !r.eq_ignore_ascii_case("Bad Request") => {}
                    (_, got) => panic!("{}: {got:?}", path.display()),
                }
            }
            assert!(n > 10, "{dir}: only {n} fixtures found");
        }
    }

    /// RFC 4475 §3.1.2.9: leading or repeated SP on the Request-Line is answered with 400.
    #[test]
    fn start_line_whitespace_is_a_400() {
        let p = Policy::default();
        let raw = options("sip:a@dialtone.test");
        let mut lead = b" ".to_vec();
        lead.extend_from_slice(&raw);
        assert_eq!(inspect_datagram(Bytes::from(lead), &p), Verdict::Reject(400, "Bad Request-Line"));
    }
}
