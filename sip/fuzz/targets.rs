//! The bodies of the dialtone-sip fuzz targets, one plain function per target, shared by
//! the cargo-fuzz binaries (`sip/fuzz/fuzz_targets/*.rs`, nightly) and the stable replay of
//! the committed corpora (`sip/tests/fuzz_corpus.rs`, `fixtures/fuzz/<target>/`). Each
//! panics on a property violation; none may panic on any input otherwise.

use bytes::Bytes;
use dialtone_sip::auth::{AuthError, Challenge, Credentials, DigestClient, Target};
use dialtone_sip::sdp::{
    create_answer, hold_offer, negotiate_from_answer, read_reoffer, reanswer, LocalCapabilities, SessionDescription,
};
use dialtone_sip::validate::{check_request, check_response, inspect_datagram, Policy};
use dialtone_sip::{parse_datagram, AuthParams, HeaderName, Headers, Message, Method, Request, Response, StreamParser};
use std::net::{IpAddr, Ipv4Addr};

/// A target: its name and its body.
pub type FuzzTarget = (&'static str, fn(&[u8]));

/// The targets by name, for the replay test.
pub const TARGETS: &[FuzzTarget] =
    &[("parse_datagram", parse_datagram_target), ("stream", stream), ("sdp", sdp), ("digest", digest)];

fn without_content_length(m: &Message) -> Message {
    let mut m = m.clone();
    match &mut m {
        Message::Request(r) => r.headers.remove(&HeaderName::ContentLength),
        Message::Response(r) => r.headers.remove(&HeaderName::ContentLength),
    }
    m
}

fn typed(h: &Headers) {
    if let Ok(v) = h.top_via() {
        let _ = (v.branch(), v.received(), v.rport(), v.is_reliable(), v.host.to_string());
    }
    for v in h.vias().flatten() {
        let _ = v.params.iter().count();
    }
    if let Ok(f) = h.from() {
        let _ = (f.tag(), f.uri.to_string());
    }
    if let Ok(t) = h.to() {
        let _ = (t.tag(), t.uri.to_string());
    }
    let _ = h.cseq();
    let _ = h.call_id();
    let _ = h.max_forwards();
    let _ = h.content_type();
    let _ = h.expires();
    for c in h.contacts().flatten() {
        let _ = (c.uri.as_sip().map(|u| u.params.iter().count()), c.params.value("expires"));
    }
    let _ = h.routes().count();
    let _ = h.record_routes().count();
}

/// `parse_datagram`: one datagram through the parser: no panic on any input; whatever
/// parses survives a serialize → re-parse round trip unchanged (Content-Length aside, which
/// the serializer always rewrites), and the checks and typed accessors never panic.
pub fn parse_datagram_target(data: &[u8]) {
    let buf = Bytes::copy_from_slice(data);
    let _ = inspect_datagram(buf.clone(), &Policy::default());
    let Ok(msg) = parse_datagram(buf) else { return };
    let wire = msg.to_bytes();
    let again = match parse_datagram(wire.clone()) {
        Ok(m) => m,
        Err(e) => panic!("re-parse failed: {:?}\n{}", e.error, String::from_utf8_lossy(&wire)),
    };
    assert_eq!(without_content_length(&msg), without_content_length(&again));
    assert_eq!(msg.body(), again.body());
    typed(msg.headers());
    match &msg {
        Message::Request(r) => {
            let _ = check_request(r, &Policy::default());
            if let Ok(u) = r.uri() {
                let _ = u.to_string();
            }
        }
        Message::Response(r) => {
            let _ = check_response(r);
        }
    }
}

/// `stream`: a TCP byte stream through `StreamParser`: the first byte sets the chunk size,
/// the rest is fed in chunks of that size, draining every complete message after each chunk.
pub fn stream(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    let chunk = usize::from(first).max(1);
    let mut p = StreamParser::new();
    for part in rest.chunks(chunk) {
        p.push(part);
        loop {
            match p.next_message() {
                Ok(Some(m)) => {
                    let _ = m.to_bytes();
                }
                Ok(None) => break,
                // The connection would be closed.
                Err(_) => return,
            }
        }
    }
}

/// `sdp`: any body (read as the UA does, lossy UTF-8) through `SessionDescription::parse`;
/// whatever parses serializes to a body that parses back to the same description and
/// serializes identically; offer/answer, re-offer and hold on it never panic.
pub fn sdp(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(d) = SessionDescription::parse(&text) else { return };
    let wire = d.to_string();
    let again = SessionDescription::parse(&wire).unwrap_or_else(|e| panic!("re-parse failed: {e}\n{wire}"));
    assert_eq!(d, again, "serialize → parse changed the description\n{wire}");
    assert_eq!(wire, again.to_string());
    let caps = LocalCapabilities::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 4000);
    if let Ok(a) = create_answer(&d, &caps, 1, 1) {
        // Our answer is ours to parse again, and settles the same as offered.
        let answer = SessionDescription::parse(&a.sdp.to_string()).expect("our answer parses");
        let _ = negotiate_from_answer(&d, &answer);
    }
    let _ = negotiate_from_answer(&d, &d);
    let _ = read_reoffer(&d);
    let _ = reanswer(&wire, &text);
    let _ = hold_offer(&text, true);
    let _ = hold_offer(&wire, false);
    for m in &d.media {
        let _ = (m.codecs(), m.ptime(), m.maxptime(), m.rtcp(), m.rtcp_mux(), m.direction());
        let _ = (d.effective_direction(m), d.effective_ptime(m), d.media_connection(m).map(|c| c.ip()));
    }
}

/// `digest`: the input's lines (lossy UTF-8) as `WWW-Authenticate` / `Proxy-Authenticate`
/// challenges and as the `Authorization` credentials a request carried. Every challenge
/// that parses yields credentials that parse back with its realm, nonce and opaque; the
/// client state machine (`respond`, `authorize`) never panics, and what it produces parses.
pub fn digest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text.split('\n').collect();
    let creds = Credentials::new("alice", "secret");
    let target = Target { method: "INVITE", uri: "sip:bob@example.com", body: b"v=0\r\n" };
    for v in &values {
        if let Ok(p) = AuthParams::parse(v) {
            let _ = (p.get("realm"), p.get("nonce"), p.get("nc"));
        }
        let Ok(c) = Challenge::parse(v) else { continue };
        let _ = c.chosen_qop();
        match c.authorization(&creds, target, "0a4f113b", 1) {
            Ok(h) => {
                let p = AuthParams::parse(&h).unwrap_or_else(|e| panic!("our credentials do not parse: {e}\n{h}"));
                assert_eq!(p.get("username"), Some("alice"), "{h}");
                assert_eq!(p.get("realm"), Some(c.realm.as_str()), "{h}");
                assert_eq!(p.get("nonce"), Some(c.nonce.as_str()), "{h}");
                assert_eq!(p.get("opaque"), c.opaque.as_deref(), "{h}");
                assert_eq!(p.get("algorithm"), Some(c.algorithm.as_str()), "{h}");
            }
            // A value with a control character cannot be sent in a quoted string.
            Err(AuthError::InvalidValue(_)) => {}
            Err(e) => panic!("unexpected error {e:?} for {v:?}"),
        }
    }
    let _ = Challenge::select(values.iter().copied());
    for (status, name) in [(401, HeaderName::WwwAuthenticate), (407, HeaderName::ProxyAuthenticate)] {
        let mut resp = Response::new(status, "Challenged");
        let mut req = Request::new(Method::Invite, "sip:bob@example.com");
        for v in &values {
            resp.headers.push(name.clone(), v.to_string());
            // What we "sent" before: the same lines as credentials.
            req.headers.push(HeaderName::Authorization, v.to_string());
            req.headers.push(HeaderName::ProxyAuthorization, v.to_string());
        }
        let mut client = DigestClient::new(creds.clone(), 0x5eed);
        let _ = client.respond(&Request::new(Method::Invite, "sip:bob@example.com"), &resp);
        if let Ok(hs) = client.respond(&req, &resp) {
            for h in &hs {
                assert!(AuthParams::parse(&h.value).is_ok(), "{}", h.value);
                h.apply_to(&mut req.headers);
            }
            let _ = client.respond(&req, &resp);
            if let Ok(hs) = client.authorize(Target::from(&req)) {
                for h in &hs {
                    assert!(AuthParams::parse(&h.value).is_ok(), "{}", h.value);
                }
            }
        }
    }
}
