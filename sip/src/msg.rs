//! The message model (RFC 3261 §7) and its serializer.

use crate::error::ParseError;
use crate::grammar::{find_byte, has_wsp, split_top, trim};
use crate::header::{parse_uint, CSeq, MediaType, NameAddr, Via};
use crate::method::Method;
use crate::name::HeaderName;
use crate::text::SipStr;
use crate::uri::Uri;
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;
use std::fmt::Write as _;

/// One header line: a name and its (unfolded, trimmed) value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The name.
    pub name: HeaderName,
    /// The value; for list headers it may hold several comma-separated values.
    pub value: SipStr,
}

/// The header fields of a message, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    /// The first value of `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&SipStr> {
        self.0.iter().find(|h| &h.name == name).map(|h| &h.value)
    }

    /// Every header line named `name`.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a SipStr> + 'a {
        self.0.iter().filter(move |h| &h.name == name).map(|h| &h.value)
    }

    /// Every value of a list header, across lines and comma-separated within a line.
    pub fn values<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name).flat_map(|v| split_top(v, b',')).filter(|v| !v.is_empty())
    }

    /// How many lines named `name` there are.
    pub fn count(&self, name: &HeaderName) -> usize {
        self.0.iter().filter(|h| &h.name == name).count()
    }

    /// Appends a header.
    pub fn push(&mut self, name: HeaderName, value: impl Into<SipStr>) {
        self.0.push(Header { name, value: value.into() });
    }

    /// Inserts a header before all others.
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<SipStr>) {
        self.0.insert(0, Header { name, value: value.into() });
    }

    /// Removes every header named `name`.
    pub fn remove(&mut self, name: &HeaderName) {
        self.0.retain(|h| &h.name != name);
    }

    /// Replaces the first `name` header's value (or appends one).
    pub fn set(&mut self, name: HeaderName, value: impl Into<SipStr>) {
        let value = value.into();
        if let Some(h) = self.0.iter_mut().find(|h| h.name == name) {
            h.value = value;
        } else {
            self.0.push(Header { name, value });
        }
    }

    /// The topmost Via value.
    pub fn top_via(&self) -> Result<Via<'_>, ParseError> {
        // The first non-empty value of the first Via line that has one (as `values`).
        let v = self
            .0
            .iter()
            .filter(|h| h.name == HeaderName::Via)
            .find_map(|h| {
                // Usually one value per line: skip the quote-aware split when there is no comma.
                if find_byte(h.value.as_bytes(), b',').is_none() {
                    let v = trim(&h.value);
                    return (!v.is_empty()).then_some(v);
                }
                split_top(&h.value, b',').find(|v| !v.is_empty())
            })
            .ok_or(ParseError::Missing("Via"))?;
        Via::parse(v)
    }

    /// Every Via value, top first.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'_>, ParseError>> {
        self.values(&HeaderName::Via).map(Via::parse)
    }

    fn single(&self, name: &HeaderName, what: &'static str) -> Result<&SipStr, ParseError> {
        let mut it = self.0.iter().filter(|h| &h.name == name).map(|h| &h.value);
        let first = it.next().ok_or(ParseError::Missing(what))?;
        if it.next().is_some() {
            return Err(ParseError::Multiple(what));
        }
        Ok(first)
    }

    /// The From header.
    pub fn from(&self) -> Result<NameAddr<'_>, ParseError> {
        NameAddr::parse(self.single(&HeaderName::From, "From")?, "From")
    }

    /// The To header.
    pub fn to(&self) -> Result<NameAddr<'_>, ParseError> {
        NameAddr::parse(self.single(&HeaderName::To, "To")?, "To")
    }

    /// The Call-ID.
    pub fn call_id(&self) -> Result<&SipStr, ParseError> {
        let v = self.single(&HeaderName::CallId, "Call-ID")?;
        if v.is_empty() || has_wsp(v.as_bytes()) {
            return Err(ParseError::BadHeader("Call-ID"));
        }
        Ok(v)
    }

    /// The CSeq.
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        CSeq::parse(self.single(&HeaderName::CSeq, "CSeq")?)
    }

    /// Max-Forwards, if present (0..=255).
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        match self.get(&HeaderName::MaxForwards) {
            None => Ok(None),
            Some(v) => Ok(Some(parse_uint(v, 255, "Max-Forwards")? as u8)),
        }
    }

    /// Content-Length, if present.
    pub fn content_length(&self) -> Result<Option<usize>, ParseError> {
        match self.get(&HeaderName::ContentLength) {
            None => Ok(None),
            Some(v) => parse_uint(v, u32::MAX as u64, "Content-Length")
                .map(|n| Some(n as usize))
                .map_err(|_| ParseError::BadContentLength),
        }
    }

    /// Content-Type, if present.
    pub fn content_type(&self) -> Result<Option<MediaType<'_>>, ParseError> {
        self.get(&HeaderName::ContentType).map(|v| MediaType::parse(v)).transpose()
    }

    /// Expires, if present (delta-seconds, capped at 2^32-1).
    pub fn expires(&self) -> Result<Option<u32>, ParseError> {
        match self.get(&HeaderName::Expires) {
            None => Ok(None),
            Some(v) => Ok(Some(parse_uint(v, u32::MAX as u64, "Expires")? as u32)),
        }
    }

    /// Contact values.
    pub fn contacts(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> {
        self.values(&HeaderName::Contact).map(|v| NameAddr::parse(v, "Contact"))
    }

    /// Route values, in order.
    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> {
        self.values(&HeaderName::Route).map(|v| NameAddr::parse(v, "Route"))
    }

    /// Record-Route values, in order.
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, ParseError>> {
        self.values(&HeaderName::RecordRoute).map(|v| NameAddr::parse(v, "Record-Route"))
    }

    /// Option tags or tokens of a list header (Allow, Supported, Require…).
    pub fn tokens<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.values(name)
    }

    /// Whether a token list header contains `tag` (case-insensitive).
    pub fn has_token(&self, name: &HeaderName, tag: &str) -> bool {
        self.values(name).any(|t| t.eq_ignore_ascii_case(tag))
    }
}

/// A SIP request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// The Request-URI as written; [`Request::uri`] parses it.
    pub uri: SipStr,
    /// The headers.
    pub headers: Headers,
    /// The body.
    pub body: Bytes,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: impl Into<SipStr>) -> Request {
        Request { method, uri: uri.into(), headers: Headers::default(), body: Bytes::new() }
    }

    /// The parsed Request-URI.
    pub fn uri(&self) -> Result<Uri<'_>, ParseError> {
        Uri::parse(&self.uri)
    }
}

/// A SIP response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code, 100..=699.
    pub status: u16,
    /// The reason phrase (may be empty).
    pub reason: SipStr,
    /// The headers.
    pub headers: Headers,
    /// The body.
    pub body: Bytes,
}

impl Response {
    /// A response with no headers and no body.
    pub fn new(status: u16, reason: impl Into<SipStr>) -> Response {
        Response { status, reason: reason.into(), headers: Headers::default(), body: Bytes::new() }
    }

    /// Whether this is 1xx.
    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }
}

/// A request or a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl Message {
    /// The headers.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    /// Serializes the message. Content-Length is always written with the body's real
    /// length (in place of any Content-Length header, else last), so framing is right.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Message::Request(r) => {
                out.put_slice(r.method.as_str().as_bytes());
                out.put_u8(b' ');
                out.put_slice(r.uri.as_bytes());
                out.put_slice(b" SIP/2.0\r\n");
            }
            Message::Response(r) => {
                out.put_slice(b"SIP/2.0 ");
                let _ = write!(out, "{} ", r.status);
                out.put_slice(r.reason.as_bytes());
                out.put_slice(b"\r\n");
            }
        }
        let body = self.body();
        let mut wrote_len = false;
        for h in &self.headers().0 {
            if h.name == HeaderName::ContentLength {
                if wrote_len {
                    continue;
                }
                wrote_len = true;
                let _ = write!(out, "Content-Length: {}\r\n", body.len());
                continue;
            }
            out.put_slice(h.name.as_str().as_bytes());
            out.put_slice(b": ");
            out.put_slice(h.value.as_bytes());
            out.put_slice(b"\r\n");
        }
        if !wrote_len {
            let _ = write!(out, "Content-Length: {}\r\n", body.len());
        }
        out.put_slice(b"\r\n");
        out.put_slice(body);
    }

    /// Serializes into a new buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(512 + self.body().len());
        self.encode(&mut b);
        b.freeze()
    }
}

impl From<Request> for Message {
    fn from(r: Request) -> Message {
        Message::Request(r)
    }
}

impl From<Response> for Message {
    fn from(r: Response) -> Message {
        Message::Response(r)
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Message::Request(self.clone()).fmt(f)
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Message::Response(self.clone()).fmt(f)
    }
}

/// Standard reason phrases (RFC 3261 §21 and extensions).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Unknown",
    }
}
