//! Parsing messages from a UDP datagram or a TCP byte stream (RFC 3261 §7, §18.3).
//!
//! Parsing does not copy: header values are slices of the received [`Bytes`]. Only a
//! folded header line (RFC 3261 §7.3.1) is rebuilt into a new string.

use crate::error::ParseError;
use crate::grammar::{find_byte, find_byte_or, is_token_char, is_wsp, trim};
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
    while let Some(nl) = find_byte(&b[i..], b'\n') {
        let at = i + nl;
        match b.get(at + 1) {
            Some(b'\n') => return Some((at, at + 2)),
            Some(b'\r') if b.get(at + 2) == Some(&b'\n') => return Some((at, at + 3)),
            _ => i = at + 1,
        }
    }
    None
}

/// How many line ends [`scan_head`] remembers; longer heads search the rest again.
const LINE_ENDS: usize = 32;

/// The header section found in one pass, as [`find_head_end`], which also notes where the
/// first lines end (so they are not searched twice) and whether every octet is ASCII (so
/// the UTF-8 check can be skipped).
struct HeadScan {
    /// End of the last header line (its LF), or the buffer's end when the head is cut short.
    end: usize,
    /// Where the body starts.
    body: usize,
    /// Whether the empty line ending the header section was seen.
    complete: bool,
    /// Whether every octet of `start..end` is ASCII.
    ascii: bool,
    /// Positions of the first LFs.
    lf: [usize; LINE_ENDS],
    /// How many of `lf` are filled.
    n: usize,
}

fn scan_head(b: &[u8], from: usize) -> HeadScan {
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut s = HeadScan { end: b.len(), body: b.len(), complete: false, ascii: true, lf: [0; LINE_ENDS], n: 0 };
    let mut high = 0u64;
    let mut i = from;
    while let Some(nl) = find_byte_or(&b[i..], b'\n', &mut high) {
        let at = i + nl;
        match b.get(at + 1) {
            Some(b'\n') => (s.end, s.body, s.complete) = (at, at + 2, true),
            Some(b'\r') if b.get(at + 2) == Some(&b'\n') => (s.end, s.body, s.complete) = (at, at + 3, true),
            _ => {
                if s.n < LINE_ENDS {
                    s.lf[s.n] = at;
                    s.n += 1;
                }
                i = at + 1;
                continue;
            }
        }
        break;
    }
    s.ascii = high & HI == 0;
    s
}

/// One header line being read; folded continuation lines are appended to `folded`.
struct Pending<'a> {
    name: HeaderName,
    value: &'a str,
    folded: Option<String>,
}

impl Pending<'_> {
    fn finish(self, buf: &Bytes) -> Header {
        let value = match self.folded {
            Some(s) => SipStr::from(trim(&s)),
            None => SipStr::slice_str(buf, self.value),
        };
        Header { name: self.name, value }
    }
}

/// `token *WSP ":"` at the start of `line`: the name's length and the value after ':'.
fn split_header_line(line: &[u8]) -> Option<(usize, usize)> {
    let name_len = line.iter().position(|&c| !is_token_char(c)).unwrap_or(line.len());
    if name_len == 0 {
        return None;
    }
    let mut i = name_len;
    while i < line.len() && is_wsp(line[i]) {
        i += 1;
    }
    if line.get(i) != Some(&b':') {
        return None;
    }
    // Skip the usual SP after ':' here, so `trim` on the value takes its fast path.
    i += 1;
    while i < line.len() && is_wsp(line[i]) {
        i += 1;
    }
    Some((name_len, i))
}

fn parse_message(buf: Bytes, framing: Framing) -> Result<Message, Malformed> {
    let b = &buf[..];
    let start = skip_leading_crlf(b);
    if start == b.len() {
        return Err(ParseError::Incomplete.into());
    }
    let mut first_err: Option<ParseError> = None;
    let note = |e: ParseError, first: &mut Option<ParseError>| {
        if first.is_none() {
            *first = Some(e);
        }
    };

    // The header section ends at the first empty line ("\n\n" or "\n\r\n"); without
    // one the message is cut short and everything is header section. It is checked to
    // be UTF-8 once, then read line by line (LF or CRLF terminated).
    let scan = scan_head(b, start);
    let (head_end, body_start, head_complete) = (scan.end, scan.body, scan.complete);
    let head = if scan.ascii {
        // SAFETY: every octet of the head was seen by `scan_head` and is ASCII.
        unsafe { std::str::from_utf8_unchecked(&b[start..head_end]) }
    } else {
        std::str::from_utf8(&b[start..head_end]).map_err(|_| ParseError::NotUtf8)?
    };
    let mut pos = 0;
    let mut k = 0;
    let mut next_line = || -> Option<&str> {
        if pos >= head.len() {
            return None;
        }
        let rest = &head[pos..];
        // The LF ending this line, from the scan's notes while they last.
        let lf = if k < scan.n && scan.lf[k] < head_end {
            k += 1;
            Some(scan.lf[k - 1] - start - pos)
        } else if k < scan.n || scan.n < LINE_ENDS {
            None
        } else {
            find_byte(rest.as_bytes(), b'\n')
        };
        let (line, adv) = match lf {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        pos += adv;
        Some(line.strip_suffix('\r').unwrap_or(line))
    };
    let line = next_line().ok_or(ParseError::Incomplete)?;
    let start_line = parse_start_line(line);

    // Headers.
    let mut headers = Vec::with_capacity(16);
    let mut pending: Option<Pending<'_>> = None;
    while let Some(line) = next_line() {
        let lb = line.as_bytes();
        if lb.first().is_some_and(|&c| is_wsp(c)) {
            // Folding (§7.3.1): the continuation joins the value with one SP.
            match pending.as_mut() {
                Some(p) => {
                    let f = p.folded.get_or_insert_with(|| p.value.to_string());
                    f.push(' ');
                    f.push_str(trim(line));
                }
                None => note(ParseError::BadHeaderLine, &mut first_err),
            }
            continue;
        }
        if let Some(p) = pending.take() {
            headers.push(p.finish(&buf));
        }
        let Some((name_len, value_at)) = split_header_line(lb) else {
            note(ParseError::BadHeaderLine, &mut first_err);
            continue;
        };
        let name_str = &line[..name_len];
        let name = match HeaderName::known(name_str) {
            Some(n) => n,
            None => HeaderName::Other(SipStr::slice_str(&buf, name_str)),
        };
        pending = Some(Pending { name, value: trim(&line[value_at..]), folded: None });
    }
    if let Some(p) = pending.take() {
        headers.push(p.finish(&buf));
    }
    let headers = Headers(headers);
    if !head_complete {
        first_err = Some(ParseError::Incomplete);
    }

    // Body framing.
    let avail = buf.len() - body_start.min(buf.len());
    let body = match headers.content_length() {
        _ if !head_complete => Bytes::new(),
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
            let uri = SipStr::slice_str(&buf, uri);
            let req = Request { method, uri, headers, body };
            match first_err {
                None => Ok(Message::Request(req)),
                Some(error) => Err(Malformed { error, request: Some(Box::new(req)) }),
            }
        }
        Ok(StartLine::Response { status, reason }) => match first_err {
            None => Ok(Message::Response(Response { status, reason: SipStr::slice_str(&buf, reason), headers, body })),
            Some(error) => Err(error.into()),
        },
        Err((error, salvaged)) => {
            // A bad start line of something that looks like a request can still be
            // answered (505, 400), given the headers.
            let request = salvaged
                .map(|(method, uri)| Box::new(Request { method, uri: SipStr::slice_str(&buf, uri), headers, body }));
            Err(Malformed { error, request })
        }
    }
}

enum StartLine<'a> {
    Request { method: Method, uri: &'a str },
    Response { status: u16, reason: &'a str },
}

type Salvage<'a> = Option<(Method, &'a str)>;

/// Request-Line = Method SP Request-URI SP SIP-Version (single spaces, §25.1);
/// Status-Line = SIP-Version SP Status-Code SP Reason-Phrase.
fn parse_start_line(line: &str) -> Result<StartLine<'_>, (ParseError, Salvage<'_>)> {
    if starts_with_sip_slash(line) {
        let mut it = line.splitn(3, ' ');
        let ver = it.next().unwrap_or("");
        let code = it.next().ok_or((ParseError::BadStartLine, None))?;
        // A missing reason phrase (no SP after the code) is tolerated as an empty one;
        // its range must still point into `line`.
        let reason = it.next().unwrap_or(&line[line.len()..]);
        check_version(ver).map_err(|e| (e, None))?;
        if code.len() != 3 || !code.bytes().all(|c| c.is_ascii_digit()) {
            return Err((ParseError::BadStatusCode, None));
        }
        let status: u16 = code.parse().map_err(|_| (ParseError::BadStatusCode, None))?;
        if !(100..=699).contains(&status) {
            return Err((ParseError::BadStatusCode, None));
        }
        return Ok(StartLine::Response { status, reason });
    }
    // Strict form: exactly two single spaces (§25.1). Anything else is a 400, and we
    // salvage the method and URI from whitespace-separated words so it can be answered
    // (RFC 4475 §3.1.2.9 lwsstart: extra or leading SP may be rejected as malformed).
    let strict = line.split_once(' ').and_then(|(m, r)| r.split_once(' ').map(|(u, v)| (m, u, v)));
    let Some((m, uri, version)) =
        strict.filter(|(m, u, v)| !m.is_empty() && !u.is_empty() && !v.is_empty() && !v.contains(' '))
    else {
        let mut words = line.split([' ', '\t']).filter(|w| !w.is_empty());
        let salvage = match (words.next().and_then(Method::parse), words.next()) {
            (Some(m), Some(u)) => Some((m, u)),
            _ => None,
        };
        return Err((ParseError::BadStartLine, salvage));
    };
    let Some(method) = Method::parse(m) else {
        return Err((ParseError::BadStartLine, None));
    };
    let salvage = || Some((method.clone(), uri));
    check_version(version).map_err(|e| (e, salvage()))?;
    // A Request-URI is never enclosed in <> and has no whitespace (RFC 4475 §3.1.2.7).
    if uri.starts_with('<') || uri.bytes().any(|c| c.is_ascii_control()) {
        return Err((ParseError::BadUri, salvage()));
    }
    Ok(StartLine::Request { method, uri })
}

/// Whether `s` starts with `SIP/` (compared as octets: `s[..4]` may not be a char
/// boundary, which a fuzzer found).
fn starts_with_sip_slash(s: &str) -> bool {
    s.as_bytes().get(..4).is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
}

/// `SIP/2.0`, case-insensitively; another well-formed version is [`ParseError::BadVersion`].
fn check_version(v: &str) -> Result<(), ParseError> {
    if v.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    let well_formed = v.len() > 4
        && starts_with_sip_slash(v)
        && v[4..].split_once('.').is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        });
    Err(if well_formed { ParseError::BadVersion } else { ParseError::BadStartLine })
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

    /// Fuzz crash: a Status-Line with no SP after the code made the reason range point
    /// outside the line (panic in `SipStr::slice_of`).
    #[test]
    fn status_line_without_reason_separator() {
        let r = "SIP/2.0 100\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\n\n";
        let Message::Response(r) = parse_datagram(Bytes::from(r)).unwrap() else { panic!() };
        assert_eq!(r.status, 100);
        assert_eq!(&*r.reason, "");
        let crash =
            b"SIP/2.0 100\nFrom: <sip:carol@dialtone.test>;tag=nr1x\r\nTo: <sipz:dave@example.P.0.2.50:5060\r\n\r\n";
        let _ = parse_datagram(Bytes::from_static(crash));
    }

    /// RFC 4475 §3.1.2.9 lwsstart: leading or repeated SP on the Request-Line is a 400
    /// that can still be answered (method and URI salvaged).
    #[test]
    fn request_line_whitespace_is_salvaged() {
        for line in
            [" OPTIONS sip:a@b SIP/2.0", "INVITE  sip:a@b   SIP/2.0", "INVITE sip:a@b SIP/2.0 ", "INVITE sip:a@b"]
        {
            let s = format!("{line}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n");
            let e = parse_datagram(Bytes::from(s)).unwrap_err();
            assert_eq!(e.error, ParseError::BadStartLine, "{line}");
            let r = e.request.expect(line);
            assert_eq!(&*r.uri, "sip:a@b");
        }
    }

    /// More lines than `scan_head` remembers, and a non-ASCII head (checked as UTF-8).
    #[test]
    fn long_and_non_ascii_heads() {
        let mut s = String::from("OPTIONS sip:x@y SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n");
        for i in 0..(LINE_ENDS + 7) {
            s.push_str(&format!("X-H{i}: v{i}\r\n"));
        }
        s.push_str("Subject: caf\u{e9}\r\nContent-Length: 0\r\n\r\n");
        for framing in [Framing::Datagram, Framing::Exact] {
            let Message::Request(r) = parse_message(Bytes::from(s.clone()), framing).unwrap() else { panic!() };
            assert_eq!(r.headers.0.len(), LINE_ENDS + 10);
            assert_eq!(r.headers.get(&HeaderName::parse("X-H38")).unwrap(), "v38");
            assert_eq!(r.headers.get(&HeaderName::Subject).unwrap(), "caf\u{e9}");
        }
        let mut bad = s.into_bytes();
        let at = bad.len() - 25;
        bad[at] = 0xff;
        assert_eq!(parse_datagram(Bytes::from(bad)).unwrap_err().error, ParseError::NotUtf8);
    }

    /// Fuzz crash: a start line with a multi-octet character across octet 4 made
    /// `line[..4]` panic (not a char boundary).
    #[test]
    fn multibyte_start_line() {
        let e = parse_datagram(Bytes::from_static(b"TI\xe2\x98\x83")).unwrap_err();
        assert_eq!(e.error, ParseError::BadStartLine);
        let e = parse_datagram(Bytes::from("INVITE sip:a@b SIP\u{2603}\r\n\r\n")).unwrap_err();
        assert_eq!(e.error, ParseError::BadStartLine);
        assert!(e.request.is_some());
    }
}
