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
