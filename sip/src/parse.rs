//! Parsing messages from a UDP datagram or a TCP byte stream (RFC 3261 §7, §18.3).
//!
//! Parsing does not copy: header values are slices of the received [`Bytes`]. Only a
//! folded header line (RFC 3261 §7.3.1) is rebuilt into a new string.

use crate::error::ParseError;
use crate::grammar::{is_token, trim};
use crate::method::Method;
use crate::msg::{Header, Headers, Message, Request, Response};
use crate::name::HeaderName;
use crate::text::SipStr;
use bytes::{Bytes, BytesMut};

/// A message we could not accept, with what we salvaged to answer it.
#[derive(Debug, Clone)]
pub struct Malformed {
    /// The first fault found.
    pub error: ParseError,
    /// For a request: the start line and headers we could read, enough to build the
    /// error response (RFC 3261 §8.2). `None` for responses and unreadable input.
    pub request: Option<Box<Request>>,
}

impl From<ParseError> for Malformed {
    fn from(error: ParseError) -> Self {
        Malformed { error, request: None }
    }
}

/// The largest header section we accept before giving up on a stream.
pub const MAX_HEAD: usize = 64 * 1024;
/// The largest body we accept.
pub const MAX_BODY: usize = 1024 * 1024;

/// Parses one message from a datagram. Octets after the Content-Length body are
/// ignored (§18.3); a Content-Length beyond the datagram is an error.
pub fn parse_datagram(buf: Bytes) -> Result<Message, Malformed> {
    parse_message(buf, Framing::Datagram)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    Datagram,
    /// The buffer holds exactly the head and the Content-Length body.
    Exact,
}

/// Skips the CRLFs allowed before a start line (§7.5).
fn skip_leading_crlf(b: &[u8]) -> usize {
    b.iter().take_while(|&&c| c == b'\r' || c == b'\n').count()
}

/// Finds the end of the header section: returns (end of last header line, body start).
fn find_head_end(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i < b.len() {
        if b[i] == b'\n' {
            if b.get(i + 1) == Some(&b'\n') {
                return Some((i, i + 2));
            }
            if b.get(i + 1) == Some(&b'\r') && b.get(i + 2) == Some(&b'\n') {
                return Some((i, i + 3));
            }
        }
        i += 1;
    }
    None
}

fn parse_message(buf: Bytes, framing: Framing) -> Result<Message, Malformed> {
    let start = skip_leading_crlf(&buf);
    if start == buf.len() {
        return Err(ParseError::Incomplete.into());
    }
    let (head_end, body_start, head_complete) = match find_head_end(&buf, start) {
        Some((h, b)) => (h, b, true),
        None => (buf.len(), buf.len(), false),
    };
    let head = std::str::from_utf8(&buf[start..head_end]).map_err(|_| ParseError::NotUtf8)?;
    let head_bytes = buf.slice(start..head_end);
    let mut first_err: Option<ParseError> = if head_complete { None } else { Some(ParseError::Incomplete) };
    let note = |e: ParseError, first: &mut Option<ParseError>| {
        if first.is_none() {
            *first = Some(e);
        }
    };

    let mut lines = LineIter { s: head, pos: 0 };
    let (line_start, line) = lines.next().ok_or(ParseError::Incomplete)?;
    let _ = line_start;
    let start_line = parse_start_line(line);

    // Headers.
    let mut headers = Vec::with_capacity(16);
    let mut pending: Option<(HeaderName, usize, usize, Option<String>)> = None;
    let flush = |p: Option<(HeaderName, usize, usize, Option<String>)>, headers: &mut Vec<Header>| {
        if let Some((name, vs, ve, folded)) = p {
            let value = match folded {
                Some(s) => SipStr::from(trim(&s)),
                None => SipStr::slice_of(&head_bytes, head, vs..ve),
            };
            headers.push(Header { name, value });
        }
    };
    for (off, line) in lines {
        if line.starts_with([' ', '\t']) {
            match pending.as_mut() {
                Some((_, vs, ve, folded)) => {
                    let f = folded.get_or_insert_with(|| head[*vs..*ve].to_string());
                    f.push(' ');
                    f.push_str(trim(line));
                }
                None => note(ParseError::BadHeaderLine, &mut first_err),
            }
            continue;
        }
        flush(pending.take(), &mut headers);
        let Some(colon) = line.find(':') else {
            note(ParseError::BadHeaderLine, &mut first_err);
            continue;
        };
        let name = line[..colon].trim_end_matches([' ', '\t']);
        if !is_token(name) {
            note(ParseError::BadHeaderLine, &mut first_err);
            continue;
        }
        let raw = &line[colon + 1..];
        let value = trim(raw);
        let vs = if value.is_empty() { off + line.len() } else { value.as_ptr() as usize - head.as_ptr() as usize };
        let name = HeaderName::from_sip_str(SipStr::slice_of(&head_bytes, head, off..off + name.len()));
        pending = Some((name, vs, vs + value.len(), None));
    }
    flush(pending.take(), &mut headers);
    let headers = Headers(headers);

    // Body framing.
    let avail = buf.len() - body_start.min(buf.len());
    let body = match headers.content_length() {
        Err(e) => {
            note(e, &mut first_err);
            Bytes::new()
        }
        Ok(Some(n)) if n > avail => {
            note(ParseError::BadContentLength, &mut first_err);
            Bytes::new()
        }
        Ok(Some(n)) if n > MAX_BODY => {
            note(ParseError::TooLarge, &mut first_err);
            Bytes::new()
        }
        Ok(Some(n)) => buf.slice(body_start..body_start + n),
        Ok(None) if framing == Framing::Datagram => buf.slice(body_start.min(buf.len())..),
        Ok(None) => {
            note(ParseError::BadContentLength, &mut first_err);
            Bytes::new()
        }
    };

    match start_line {
        Ok(StartLine::Request { method, uri }) => {
            let uri = SipStr::slice_of(&head_bytes, head, uri.0..uri.1);
            let req = Request { method, uri, headers, body };
            match first_err {
                None => Ok(Message::Request(req)),
                Some(error) => Err(Malformed { error, request: Some(Box::new(req)) }),
            }
        }
        Ok(StartLine::Response { status, reason }) => match first_err {
            None => Ok(Message::Response(Response {
                status,
                reason: SipStr::slice_of(&head_bytes, head, reason.0..reason.1),
                headers,
                body,
            })),
            Some(error) => Err(error.into()),
        },
        Err((error, salvaged)) => {
            // A bad start line of something that looks like a request can still be
            // answered (505, 400), given the headers.
            let request = salvaged.map(|(method, uri)| {
                Box::new(Request {
                    method,
                    uri: SipStr::slice_of(&head_bytes, head, uri.0..uri.1),
                    headers,
                    body,
                })
            });
            Err(Malformed { error, request })
        }
    }
}

enum StartLine {
    Request { method: Method, uri: (usize, usize) },
    Response { status: u16, reason: (usize, usize) },
}

type Salvage = Option<(Method, (usize, usize))>;

/// Request-Line = Method SP Request-URI SP SIP-Version (single spaces, §25.1);
/// Status-Line = SIP-Version SP Status-Code SP Reason-Phrase.
fn parse_start_line(line: &str) -> Result<StartLine, (ParseError, Salvage)> {
    let base = line.as_ptr() as usize;
    let off = |s: &str| s.as_ptr() as usize - base;
    if line.len() >= 4 && line[..4].eq_ignore_ascii_case("SIP/") {
        let mut it = line.splitn(3, ' ');
        let ver = it.next().unwrap_or("");
        let code = it.next().ok_or((ParseError::BadStartLine, None))?;
        let reason = it.next().unwrap_or("");
        check_version(ver).map_err(|e| (e, None))?;
        if code.len() != 3 || !code.bytes().all(|c| c.is_ascii_digit()) {
            return Err((ParseError::BadStatusCode, None));
        }
        let status: u16 = code.parse().map_err(|_| (ParseError::BadStatusCode, None))?;
        if !(100..=699).contains(&status) {
            return Err((ParseError::BadStatusCode, None));
        }
        let r = off(reason);
        return Ok(StartLine::Response { status, reason: (r, r + reason.len()) });
    }
    let parts: Vec<&str> = line.split(' ').collect();
    let method = parts.first().and_then(|m| Method::parse(m));
    let salvage = match (&method, parts.get(1)) {
        (Some(m), Some(u)) if !u.is_empty() => Some((m.clone(), (off(u), off(u) + u.len()))),
        _ => None,
    };
    let Some(method) = method else {
        return Err((ParseError::BadStartLine, None));
    };
    if parts.len() != 3 || parts[1].is_empty() {
        return Err((ParseError::BadStartLine, salvage));
    }
    check_version(parts[2]).map_err(|e| (e, salvage.clone()))?;
    let uri = parts[1];
    // A Request-URI is never enclosed in <> and has no whitespace (RFC 4475 §3.1.2.11).
    if uri.starts_with('<') || uri.bytes().any(|c| c.is_ascii_control()) {
        return Err((ParseError::BadUri, salvage));
    }
    let u = off(uri);
    Ok(StartLine::Request { method, uri: (u, u + uri.len()) })
}

/// `SIP/2.0`, case-insensitively; another well-formed version is [`ParseError::BadVersion`].
fn check_version(v: &str) -> Result<(), ParseError> {
    if v.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    let well_formed = v.len() > 4
        && v[..4].eq_ignore_ascii_case("SIP/")
        && v[4..].split_once('.').is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit())
        });
    Err(if well_formed { ParseError::BadVersion } else { ParseError::BadStartLine })
}

/// Iterates lines (LF or CRLF terminated), yielding each line's offset and text.
struct LineIter<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Iterator for LineIter<'a> {
    type Item = (usize, &'a str);
    fn next(&mut self) -> Option<(usize, &'a str)> {
        if self.pos >= self.s.len() {
            return None;
        }
        let start = self.pos;
        let rest = &self.s[start..];
        let (line, adv) = match rest.find('\n') {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += adv;
        Some((start, line.strip_suffix('\r').unwrap_or(line)))
    }
}

/// Frames messages out of a TCP byte stream by Content-Length (§18.3), handling partial
/// and back-to-back messages. Bytes are copied once into the stream buffer; messages are
/// then split off it without copying.
#[derive(Debug, Default)]
pub struct StreamParser {
    buf: BytesMut,
    /// Double-CRLF keep-alives seen (RFC 5626 §3.5.1); the driver answers each with CRLF.
    pub pings: usize,
}

impl StreamParser {
    /// A parser with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered and not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `Ok(None)` when more bytes are needed. An error
    /// means the stream can no longer be framed and the connection should be closed
    /// (after answering the salvaged request, if any).
    pub fn next_message(&mut self) -> Result<Option<Message>, Malformed> {
        loop {
            let lead = skip_leading_crlf(&self.buf);
            if lead == 0 {
                break;
            }
            if self.buf[..lead].windows(4).any(|w| w == b"\r\n\r\n") {
                self.pings += 1;
            }
            let _ = self.buf.split_to(lead);
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        let Some((head_end, body_start)) = find_head_end(&self.buf, 0) else {
            if self.buf.len() > MAX_HEAD {
                return Err(ParseError::TooLarge.into());
            }
            return Ok(None);
        };
        let cl = match content_length_in(&self.buf[..head_end]) {
            Some(Ok(n)) if n <= MAX_BODY => n,
            Some(Ok(_)) => return Err(ParseError::TooLarge.into()),
            // Missing or broken: frame what we have to answer it, then give up.
            _ => {
                let whole = self.buf.split_to(body_start).freeze();
                return Err(match parse_message(whole, Framing::Exact) {
                    Err(m) => m,
                    Ok(_) => ParseError::BadContentLength.into(),
                });
            }
        };
        if self.buf.len() < body_start + cl {
            return Ok(None);
        }
        let msg = self.buf.split_to(body_start + cl).freeze();
        parse_message(msg, Framing::Exact).map(Some)
    }
}

/// Finds Content-Length (or `l`) in a raw header section without a full parse.
fn content_length_in(head: &[u8]) -> Option<Result<usize, ParseError>> {
    let head = std::str::from_utf8(head).ok()?;
    for line in head.split('\n').skip(1) {
        let Some(colon) = line.find(':') else { continue };
        let name = line[..colon].trim_end_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            let v = trim(&line[colon + 1..]);
            return Some(
                crate::header::parse_uint(v, u32::MAX as u64, "Content-Length")
                    .map(|n| n as usize)
                    .map_err(|_| ParseError::BadContentLength),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

    #[test]
    fn parses_a_request_without_copying() {
        let buf = Bytes::from_static(INVITE.as_bytes());
        let Message::Request(r) = parse_datagram(buf.clone()).unwrap() else { panic!() };
        assert_eq!(r.method, Method::Invite);
        assert_eq!(&*r.uri, "sip:bob@biloxi.example.com");
        assert_eq!(r.headers.top_via().unwrap().branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(r.headers.cseq().unwrap().seq, 314159);
        assert_eq!(r.headers.from().unwrap().tag(), Some("1928301774"));
        assert_eq!(&r.body[..], b"v=0\n");
        // The Call-ID shares the datagram's memory.
        let cid = r.headers.call_id().unwrap();
        let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
        assert!(range.contains(&(cid.as_ptr() as usize)));
    }

    #[test]
    fn round_trip() {
        let m = parse_datagram(Bytes::from_static(INVITE.as_bytes())).unwrap();
        let again = parse_datagram(m.to_bytes()).unwrap();
        assert_eq!(m, again);
        assert_eq!(m.to_bytes(), again.to_bytes());
    }

    #[test]
    fn folding_compact_forms_and_trailing_octets() {
        let s = "OPTIONS sip:x@y SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nSubject: one\r\n  two\r\n\tthree\r\nf: <sip:a@b>;tag=1\r\nt: sip:x@y\r\ni: cid\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\nJUNK";
        let Message::Request(r) = parse_datagram(Bytes::from(s)).unwrap() else { panic!() };
        assert_eq!(r.headers.get(&HeaderName::Subject).unwrap(), "one two three");
        assert!(r.body.is_empty());
        assert_eq!(r.headers.call_id().unwrap(), "cid");
    }

    #[test]
    fn content_length_errors() {
        let s = INVITE.replace("Content-Length: 4", "Content-Length: 400");
        let e = parse_datagram(Bytes::from(s)).unwrap_err();
        assert_eq!(e.error, ParseError::BadContentLength);
        assert!(e.request.is_some());
        let s = INVITE.replace("Content-Length: 4", "Content-Length: -4");
        assert_eq!(parse_datagram(Bytes::from(s)).unwrap_err().error, ParseError::BadContentLength);
    }

    #[test]
    fn versions_and_status_lines() {
        let s = INVITE.replace("biloxi.example.com SIP/2.0", "biloxi.example.com SIP/7.0");
        let e = parse_datagram(Bytes::from(s)).unwrap_err();
        assert_eq!(e.error, ParseError::BadVersion);
        assert!(e.request.is_some());
        let r = "SIP/2.0 200 \r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n";
        let Message::Response(r) = parse_datagram(Bytes::from(r)).unwrap() else { panic!() };
        assert_eq!(r.status, 200);
        assert_eq!(&*r.reason, "");
        assert!(parse_datagram(Bytes::from("SIP/2.0 1000 Big\r\n\r\n")).is_err());
    }

    #[test]
    fn stream_framing_partial_and_back_to_back() {
        let two = format!("\r\n\r\n{INVITE}{INVITE}");
        let mut p = StreamParser::new();
        let bytes = two.as_bytes();
        let mut got = 0;
        for chunk in bytes.chunks(37) {
            p.push(chunk);
            while let Some(m) = p.next_message().unwrap() {
                assert_eq!(&m.body()[..], b"v=0\n");
                got += 1;
            }
        }
        assert_eq!(got, 2);
        assert_eq!(p.pings, 1);
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn stream_without_content_length_is_an_error() {
        let mut p = StreamParser::new();
        p.push(b"OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n");
        let e = p.next_message().unwrap_err();
        assert_eq!(e.error, ParseError::BadContentLength);
        assert!(e.request.is_some());
    }
}
