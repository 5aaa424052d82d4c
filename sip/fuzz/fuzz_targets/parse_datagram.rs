//! One datagram through the parser: no panic on any input; whatever parses survives a
//! serialize → re-parse round trip unchanged (Content-Length aside, which the
//! serializer always rewrites), and the checks and typed accessors never panic.
#![no_main]

use bytes::Bytes;
use dialtone_sip::validate::{check_request, check_response, inspect_datagram, Policy};
use dialtone_sip::{parse_datagram, HeaderName, Headers, Message};
use libfuzzer_sys::fuzz_target;

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

fuzz_target!(|data: &[u8]| {
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
});
