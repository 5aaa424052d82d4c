//! The UA's unit tests: two UAs wired in memory.

use super::helpers::{has_option_tag, response_destination, stamp_via};
use super::*;
use crate::auth::Credentials;
use crate::method::Method;
use crate::msg::{reason_phrase, Message, Request, Response};
use crate::name::HeaderName;
use crate::parse::parse_datagram;
use crate::text::SipStr;
use crate::transport::{Destination, Transmit, Transport};
use bytes::Bytes;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const UAS: &str = "127.0.0.1:5060";
const UAC: &str = "127.0.0.1:5070";

fn ua(addr: &str, seed: u64) -> UserAgent {
    let a: SocketAddr = addr.parse().unwrap();
    UserAgent::new(UaConfig { udp_addr: Some(a), tcp_addr: Some(a), seed, ..UaConfig::default() })
}

fn dest(addr: &str) -> Destination {
    Destination { transport: Transport::Udp, addr: addr.parse().unwrap() }
}

fn parse(b: &Bytes) -> Message {
    parse_datagram(b.clone()).unwrap()
}

fn drain(ua: &mut UserAgent) -> Vec<Transmit> {
    std::iter::from_fn(|| ua.poll_transmit()).collect()
}

fn events(ua: &mut UserAgent) -> Vec<UaEvent> {
    std::iter::from_fn(|| ua.poll_event()).collect()
}

fn status_of(t: &Transmit) -> Option<u16> {
    match parse(&t.data) {
        Message::Response(r) => Some(r.status),
        Message::Request(_) => None,
    }
}

/// Delivers everything each side sends to the other until both are quiet.
fn exchange(
    a: &mut UserAgent,
    a_addr: &str,
    b: &mut UserAgent,
    b_addr: &str,
    now: Instant,
) -> (Vec<UaEvent>, Vec<UaEvent>) {
    let (mut ea, mut eb) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let ta = drain(a);
        let tb = drain(b);
        if ta.is_empty() && tb.is_empty() {
            break;
        }
        for t in ta {
            b.on_datagram(t.data, dest(a_addr), now);
        }
        for t in tb {
            a.on_datagram(t.data, dest(b_addr), now);
        }
        ea.extend(events(a));
        eb.extend(events(b));
    }
    (ea, eb)
}

fn out(uri: &str, from: &str, to: &str) -> Outgoing {
    Outgoing {
        request_uri: uri.into(),
        from: from.into(),
        to: to.into(),
        dest: dest(UAS),
        body: Some(sdp()),
        extra: vec![],
        alternates: Vec::new(),
        credentials: None,
    }
}

fn sdp() -> Bytes {
    Bytes::from_static(
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
    )
}

#[test]
fn two_uas_place_answer_and_hang_up() {
    let now = Instant::now();
    let (mut caller, mut callee) = (ua(UAC, 1), ua(UAS, 2));
    let call = caller.invite(out("sip:bob@127.0.0.1", "<sip:alice@127.0.0.1>", "<sip:bob@127.0.0.1>"), now).unwrap();
    let (_, eb) = exchange(&mut caller, UAC, &mut callee, UAS, now);
    let Some(UaEvent::IncomingCall { call: inbound, request, .. }) = eb.into_iter().next() else {
        panic!("no incoming call")
    };
    assert_eq!(&request.body[..], &sdp()[..]);
    callee.ring(inbound, 180, None, now).unwrap();
    callee.answer(inbound, sdp(), now).unwrap();
    let (ea, eb) = exchange(&mut caller, UAC, &mut callee, UAS, now);
    assert!(matches!(ea[0], UaEvent::Progress { ref response, .. } if response.status == 180));
    assert!(matches!(ea[1], UaEvent::Answered { call: c, .. } if c == call));
    assert!(matches!(eb[0], UaEvent::Confirmed { call: c, .. } if c == inbound));
    caller.hangup(call, now).unwrap();
    let (ea, eb) = exchange(&mut caller, UAC, &mut callee, UAS, now);
    assert!(matches!(ea.last(), Some(UaEvent::Terminated { reason: EndReason::LocalBye, .. })), "{ea:?}");
    assert!(matches!(eb.last(), Some(UaEvent::Terminated { reason: EndReason::RemoteBye, .. })), "{eb:?}");
    assert_eq!((caller.call_count(), callee.call_count()), (0, 0));
}

#[test]
fn cancel_while_ringing_gets_487() {
    let now = Instant::now();
    let (mut caller, mut callee) = (ua(UAC, 3), ua(UAS, 4));
    let call = caller.invite(out("sip:bob@127.0.0.1", "<sip:a@127.0.0.1>", "<sip:bob@127.0.0.1>"), now).unwrap();
    // Before any provisional response, hanging up must not send CANCEL (§9.1).
    let invite = drain(&mut caller);
    assert_eq!(invite.len(), 1);
    caller.hangup(call, now).unwrap();
    assert!(drain(&mut caller).is_empty(), "CANCEL before a provisional");
    // The INVITE arrives; its 100 Trying releases the CANCEL.
    callee.on_datagram(invite[0].data.clone(), dest(UAC), now);
    let Some(UaEvent::IncomingCall { .. }) = callee.poll_event() else { panic!() };
    let (ea, eb) = exchange(&mut caller, UAC, &mut callee, UAS, now);
    assert!(matches!(eb.last(), Some(UaEvent::Terminated { reason: EndReason::Cancelled, .. })), "{eb:?}");
    assert!(matches!(ea.last(), Some(UaEvent::Terminated { reason: EndReason::Cancelled, .. })), "{ea:?}");
    assert_eq!((caller.call_count(), callee.call_count()), (0, 0));
}

#[test]
fn cancel_after_180() {
    let now = Instant::now();
    let (mut caller, mut callee) = (ua(UAC, 13), ua(UAS, 14));
    let call = caller.invite(out("sip:bob@127.0.0.1", "<sip:a@127.0.0.1>", "<sip:bob@127.0.0.1>"), now).unwrap();
    let (_, eb) = exchange(&mut caller, UAC, &mut callee, UAS, now);
    let Some(UaEvent::IncomingCall { call: inbound, .. }) = eb.into_iter().next() else { panic!() };
    callee.ring(inbound, 180, None, now).unwrap();
    let (ea, _) = exchange(&mut caller, UAC, &mut callee, UAS, now);
    assert!(matches!(ea[0], UaEvent::Progress { .. }));
    caller.hangup(call, now).unwrap();
    let sent = drain(&mut caller);
    assert!(matches!(parse(&sent[0].data), Message::Request(ref r) if r.method == Method::Cancel));
    for t in sent {
        callee.on_datagram(t.data, dest(UAC), now);
    }
    let statuses: Vec<u16> = drain(&mut callee).iter().filter_map(status_of).collect();
    assert!(statuses.contains(&200) && statuses.contains(&487), "{statuses:?}");
}

fn request(text: &str) -> Bytes {
    Bytes::from(text.replace('\n', "\r\n"))
}

fn invite_text(cseq: u32, to_tag: &str) -> String {
    format!(
        "INVITE sip:svc@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-{cseq}-{to_tag}\nMax-Forwards: 70\n\
From: <sip:a@127.0.0.1>;tag=from1\nTo: <sip:svc@127.0.0.1>{to_tag}\nCall-ID: cid-1\nCSeq: {cseq} INVITE\n\
Contact: <sip:a@127.0.0.1:5070>\nContent-Length: 0\n\n"
    )
}

#[test]
fn answers_options_unknown_and_out_of_dialog_requests() {
    let now = Instant::now();
    let mut u = ua(UAS, 5);
    let opts = "OPTIONS sip:svc@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKo1\nFrom: <sip:a@x>;tag=1\nTo: <sip:svc@127.0.0.1>\nCall-ID: o1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n";
    u.on_datagram(request(opts), dest(UAC), now);
    let out = drain(&mut u);
    let Message::Response(r) = parse(&out[0].data) else { panic!() };
    assert_eq!(r.status, 200);
    assert!(r.headers.has_token(&HeaderName::Allow, "INVITE"));
    assert!(r.headers.get(&HeaderName::Accept).is_some());
    assert!(r.headers.get(&HeaderName::Supported).is_some());
    let unknown = opts.replace("OPTIONS", "FROBNICATE");
    u.on_datagram(request(&unknown.replace("z9hG4bKo1", "z9hG4bKo2")), dest(UAC), now);
    assert_eq!(status_of(&drain(&mut u)[0]), Some(501));
    let reg = opts.replace("OPTIONS", "REGISTER");
    u.on_datagram(request(&reg.replace("z9hG4bKo1", "z9hG4bKo3")), dest(UAC), now);
    assert_eq!(status_of(&drain(&mut u)[0]), Some(405));
    let bye = opts.replace("OPTIONS", "BYE").replace("To: <sip:svc@127.0.0.1>", "To: <sip:svc@127.0.0.1>;tag=nope");
    u.on_datagram(request(&bye.replace("z9hG4bKo1", "z9hG4bKo4")), dest(UAC), now);
    assert_eq!(status_of(&drain(&mut u)[0]), Some(481));
}

#[test]
fn draining_answers_new_invites_and_options_503_and_keeps_calls_going() {
    let now = Instant::now();
    let mut u = ua(UAS, 7);
    u.on_datagram(request(&invite_text(10, "")), dest(UAC), now);
    let Some(UaEvent::IncomingCall { call, .. }) = u.poll_event() else { panic!() };
    u.answer(call, sdp(), now).unwrap();
    drain(&mut u);
    u.set_draining(Some(30));
    assert!(u.draining());
    let opts = "OPTIONS sip:svc@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKd1\nFrom: <sip:a@x>;tag=1\nTo: <sip:svc@127.0.0.1>\nCall-ID: d1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n";
    u.on_datagram(request(opts), dest(UAC), now);
    let Message::Response(r) = parse(&drain(&mut u)[0].data) else { panic!() };
    assert_eq!(r.status, 503);
    assert_eq!(r.headers.get(&HeaderName::RetryAfter).map(|v| v.to_string()), Some("30".into()));
    let second = invite_text(1, "").replace("cid-1", "cid-2").replace("z9hG4bK-1-", "z9hG4bK-x-");
    u.on_datagram(request(&second), dest(UAC), now);
    let statuses: Vec<_> = drain(&mut u).iter().filter_map(status_of).collect();
    assert_eq!(statuses.last(), Some(&503), "{statuses:?}");
    assert!(u.poll_event().is_none(), "a refused INVITE raises no event");
    // The call that was up before goes on: it can still be hung up.
    u.hangup(call, now).unwrap();
    u.set_draining(None);
    u.on_datagram(request(&opts.replace("z9hG4bKd1", "z9hG4bKd2")), dest(UAC), now);
    assert_eq!(status_of(&drain(&mut u)[0]), Some(200));
}

#[test]
fn out_of_order_cseq_gets_500() {
    let now = Instant::now();
    let mut u = ua(UAS, 6);
    u.on_datagram(request(&invite_text(10, "")), dest(UAC), now);
    let Some(UaEvent::IncomingCall { call, .. }) = u.poll_event() else { panic!() };
    u.answer(call, sdp(), now).unwrap();
    let out = drain(&mut u);
    let ok = out.iter().map(|t| parse(&t.data)).find_map(|m| match m {
        Message::Response(r) if r.status == 200 => Some(r),
        _ => None,
    });
    let tag = ok.unwrap().headers.to().unwrap().tag().unwrap().to_string();
    let reinvite = invite_text(9, &format!(";tag={tag}"));
    u.on_datagram(request(&reinvite), dest(UAC), now);
    let out = drain(&mut u);
    assert_eq!(out.iter().filter_map(status_of).last(), Some(500));
}

#[test]
fn retransmits_2xx_until_ack_then_gives_up_with_bye() {
    let t0 = Instant::now();
    let mut u = ua(UAS, 7);
    u.on_datagram(request(&invite_text(1, "")), dest(UAC), t0);
    let Some(UaEvent::IncomingCall { call, .. }) = u.poll_event() else { panic!() };
    u.answer(call, sdp(), t0).unwrap();
    drain(&mut u);
    let mut sent_200 = 0;
    let mut now = t0;
    let mut bye = false;
    while let Some(t) = u.poll_timeout() {
        if t > t0 + Duration::from_secs(40) {
            break;
        }
        now = t;
        u.handle_timeout(now);
        for tx in drain(&mut u) {
            match parse(&tx.data) {
                Message::Response(r) if r.status == 200 => sent_200 += 1,
                Message::Request(r) if r.method == Method::Bye => bye = true,
                _ => {}
            }
        }
        if bye {
            break;
        }
    }
    // T1 doubling to T2 over 64*T1 = 32 s: 0.5,1,2,4,4,4,4,4,4,4 → about 10 re-sends.
    assert!((8..=11).contains(&sent_200), "{sent_200} retransmissions");
    assert!(bye, "no BYE after the ACK timeout");
    assert!(now >= t0 + Duration::from_secs(31), "gave up early at {:?}", now - t0);
    assert!(events(&mut u).iter().any(|e| matches!(e, UaEvent::Terminated { reason: EndReason::Timeout, .. })));
}

#[test]
fn malformed_requests_get_their_error_and_responses_are_dropped() {
    let now = Instant::now();
    let mut u = ua(UAS, 8);
    let bad = invite_text(1, "").replace("Call-ID: cid-1\n", "");
    u.on_datagram(request(&bad), dest(UAC), now);
    let out = drain(&mut u);
    let Message::Response(r) = parse(&out[0].data) else { panic!() };
    assert_eq!((r.status, &*r.reason), (400, "Missing Call-ID"));
    u.on_datagram(Bytes::from_static(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"), dest(UAC), now);
    assert!(drain(&mut u).is_empty());
    assert_eq!(u.dropped, 1);
}

#[test]
fn via_gets_received_and_rport() {
    let mut req =
        match parse(&request(&invite_text(1, "").replace("127.0.0.1:5070;branch", "10.9.9.9:5070;rport;branch"))) {
            Message::Request(r) => r,
            _ => unreachable!(),
        };
    let src = Destination { transport: Transport::Udp, addr: "192.0.2.7:40000".parse().unwrap() };
    stamp_via(&mut req, &src);
    let via = req.headers.top_via().unwrap();
    assert_eq!(via.received(), Some("192.0.2.7"));
    assert_eq!(via.rport(), Some(Some(40000)));
    assert_eq!(response_destination(&req, &src).addr, src.addr);
}

fn request_of(t: &Transmit) -> Request {
    match parse(&t.data) {
        Message::Request(r) => r,
        Message::Response(r) => panic!("expected a request, got {}", r.status),
    }
}

/// A response to `req` as a server would send it, with `extra` headers.
fn reply(req: &Request, status: u16, extra: &[(HeaderName, &str)]) -> Bytes {
    let mut r = make_response(req, status, reason_phrase(status), Some("srv"));
    for (n, v) in extra {
        r.headers.push(n.clone(), SipStr::from(*v));
    }
    Message::Response(r).to_bytes()
}

fn ua_with_creds(addr: &str, seed: u64) -> UserAgent {
    let a: SocketAddr = addr.parse().unwrap();
    UserAgent::new(UaConfig {
        udp_addr: Some(a),
        tcp_addr: Some(a),
        seed,
        credentials: Some(Credentials::new("alice", "s3cret")),
        ..UaConfig::default()
    })
}

#[test]
fn challenged_invite_is_resent_with_credentials_once() {
    let now = Instant::now();
    let mut caller = ua_with_creds(UAC, 21);
    let call = caller.invite(out("sip:bob@127.0.0.1", "<sip:alice@127.0.0.1>", "<sip:bob@127.0.0.1>"), now).unwrap();
    let first = request_of(&drain(&mut caller)[0]);
    let chal = r#"Digest realm="t", nonce="n1", qop="auth", algorithm=MD5"#;
    caller.on_datagram(reply(&first, 401, &[(HeaderName::WwwAuthenticate, chal)]), dest(UAS), now);
    let sent = drain(&mut caller);
    // The ACK for the 401 (same branch), then the new INVITE.
    let second = sent.iter().map(request_of).find(|r| r.method == Method::Invite).expect("a new INVITE");
    assert_eq!(second.headers.cseq().unwrap().seq, 2);
    assert_eq!(second.headers.call_id().unwrap(), first.headers.call_id().unwrap());
    assert_ne!(second.headers.top_via().unwrap().branch(), first.headers.top_via().unwrap().branch());
    let auth = second.headers.get(&HeaderName::Authorization).expect("Authorization");
    assert!(auth.contains("username=\"alice\"") && auth.contains("nc=00000001"), "{auth}");
    // Then a 407 from a proxy: answered too, keeping the 401's credentials.
    let pchal = r#"Digest realm="p", nonce="n2", algorithm=SHA-256, qop="auth""#;
    caller.on_datagram(reply(&second, 407, &[(HeaderName::ProxyAuthenticate, pchal)]), dest(UAS), now);
    let third = drain(&mut caller).iter().map(request_of).find(|r| r.method == Method::Invite).unwrap();
    assert_eq!(third.headers.cseq().unwrap().seq, 3);
    assert!(third.headers.get(&HeaderName::ProxyAuthorization).unwrap().contains("algorithm=SHA-256"));
    // The same realm challenging the credentials again: refused, no loop.
    caller.on_datagram(reply(&third, 401, &[(HeaderName::WwwAuthenticate, chal)]), dest(UAS), now);
    assert!(drain(&mut caller).iter().all(|t| request_of(t).method == Method::Ack));
    let ev = events(&mut caller);
    assert!(
        matches!(ev.last(), Some(UaEvent::Terminated { call: c, reason: EndReason::Rejected { status: 401, .. } }) if *c == call),
        "{ev:?}"
    );
}

#[test]
fn challenge_without_credentials_ends_the_call_with_its_status() {
    let now = Instant::now();
    let mut caller = ua(UAC, 22);
    caller.invite(out("sip:bob@127.0.0.1", "<sip:alice@127.0.0.1>", "<sip:bob@127.0.0.1>"), now).unwrap();
    let first = request_of(&drain(&mut caller)[0]);
    let chal = r#"Digest realm="t", nonce="n1""#;
    caller.on_datagram(reply(&first, 407, &[(HeaderName::ProxyAuthenticate, chal)]), dest(UAS), now);
    let ev = events(&mut caller);
    assert!(matches!(ev.last(), Some(UaEvent::Terminated { reason: EndReason::Rejected { status: 407, .. }, .. })));
}

fn registration() -> Registration {
    Registration {
        registrar: "sip:127.0.0.1".into(),
        aor: "sip:alice@127.0.0.1".into(),
        dest: dest(UAS),
        expires: 3600,
    }
}

#[test]
fn registers_with_auth_refreshes_and_unregisters() {
    let t0 = Instant::now();
    let mut ua = ua_with_creds(UAC, 23);
    ua.register(registration(), t0).unwrap();
    let r1 = request_of(&drain(&mut ua)[0]);
    assert_eq!(r1.method, Method::Register);
    assert_eq!(r1.headers.get(&HeaderName::Expires).map(|v| v.as_str()), Some("3600"));
    let chal = r#"Digest realm="reg", nonce="abc", qop="auth""#;
    ua.on_datagram(reply(&r1, 401, &[(HeaderName::WwwAuthenticate, chal)]), dest(UAS), t0);
    let r2 = request_of(&drain(&mut ua)[0]);
    assert_eq!(r2.headers.cseq().unwrap().seq, 2);
    assert_eq!(r2.headers.call_id().unwrap(), r1.headers.call_id().unwrap());
    assert!(r2.headers.get(&HeaderName::Authorization).unwrap().contains("nc=00000001"));
    // The registrar grants 4 s on our Contact.
    let contact = format!("<sip:dialtone@{UAC}>;expires=4");
    ua.on_datagram(reply(&r2, 200, &[(HeaderName::Contact, &contact)]), dest(UAS), t0);
    assert!(
        matches!(&events(&mut ua)[..], [UaEvent::Registration(e)] if *e == RegistrationEvent::Registered { expires: 4 })
    );
    assert!(ua.is_registered());
    // Refreshed halfway, with the credentials (nonce count 2) and no new challenge.
    assert_eq!(ua.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    let t1 = t0 + Duration::from_secs(2);
    ua.handle_timeout(t1);
    let r3 = request_of(&drain(&mut ua)[0]);
    assert_eq!(r3.headers.cseq().unwrap().seq, 3);
    assert!(r3.headers.get(&HeaderName::Authorization).unwrap().contains("nc=00000002"));
    ua.on_datagram(reply(&r3, 200, &[(HeaderName::Expires, "4")]), dest(UAS), t1);
    assert!(
        matches!(&events(&mut ua)[..], [UaEvent::Registration(e)] if *e == RegistrationEvent::Registered { expires: 4 })
    );
    // Shutdown: Expires 0, then Unregistered.
    assert!(ua.unregister(t1));
    let r4 = request_of(&drain(&mut ua)[0]);
    assert_eq!(r4.headers.get(&HeaderName::Expires).map(|v| v.as_str()), Some("0"));
    ua.on_datagram(reply(&r4, 200, &[]), dest(UAS), t1);
    assert!(
        matches!(&events(&mut ua)[..], [UaEvent::Registration(e)] if *e == RegistrationEvent::Unregistered { status: 200 })
    );
    assert!(!ua.is_registered());
}

#[test]
fn registration_honours_423_and_backs_off_after_failures() {
    let t0 = Instant::now();
    let mut ua = ua_with_creds(UAC, 24);
    let mut reg = registration();
    reg.expires = 60;
    ua.register(reg, t0).unwrap();
    let r1 = request_of(&drain(&mut ua)[0]);
    ua.on_datagram(reply(&r1, 423, &[(HeaderName::MinExpires, "300")]), dest(UAS), t0);
    let r2 = request_of(&drain(&mut ua)[0]);
    assert_eq!(r2.headers.get(&HeaderName::Expires).map(|v| v.as_str()), Some("300"));
    // A 503: retried after 5 s, then 10 s; Retry-After wins when given.
    ua.on_datagram(reply(&r2, 503, &[]), dest(UAS), t0);
    let ev = events(&mut ua);
    assert!(
        matches!(&ev[..], [UaEvent::Registration(RegistrationEvent::Failed { status: 503, retry_in, .. })] if *retry_in == Duration::from_secs(5)),
        "{ev:?}"
    );
    let t1 = t0 + Duration::from_secs(5);
    ua.handle_timeout(t1);
    let r3 = request_of(&drain(&mut ua)[0]);
    ua.on_datagram(reply(&r3, 500, &[]), dest(UAS), t1);
    let ev = events(&mut ua);
    assert!(
        matches!(&ev[..], [UaEvent::Registration(RegistrationEvent::Failed { retry_in, .. })] if *retry_in == Duration::from_secs(10)),
        "{ev:?}"
    );
    ua.handle_timeout(t1 + Duration::from_secs(10));
    let r4 = request_of(&drain(&mut ua)[0]);
    ua.on_datagram(reply(&r4, 503, &[(HeaderName::RetryAfter, "42")]), dest(UAS), t1);
    let ev = events(&mut ua);
    assert!(
        matches!(&ev[..], [UaEvent::Registration(RegistrationEvent::Failed { retry_in, .. })] if *retry_in == Duration::from_secs(42)),
        "{ev:?}"
    );
    // Wrong credentials: the second challenge for the same realm is a failure, not a loop.
    let chal = r#"Digest realm="reg", nonce="abc""#;
    ua.handle_timeout(t1 + Duration::from_secs(60));
    let r5 = request_of(&drain(&mut ua)[0]);
    ua.on_datagram(reply(&r5, 401, &[(HeaderName::WwwAuthenticate, chal)]), dest(UAS), t1);
    let r6 = request_of(&drain(&mut ua)[0]);
    assert!(r6.headers.get(&HeaderName::Authorization).is_some());
    ua.on_datagram(reply(&r6, 401, &[(HeaderName::WwwAuthenticate, chal)]), dest(UAS), t1);
    assert!(drain(&mut ua).is_empty());
    let ev = events(&mut ua);
    assert!(matches!(&ev[..], [UaEvent::Registration(RegistrationEvent::Failed { status: 401, .. })]), "{ev:?}");
}

#[test]
fn reliable_provisional_is_pracked_once() {
    let now = Instant::now();
    let mut caller = ua(UAC, 25);
    caller.invite(out("sip:bob@127.0.0.1", "<sip:alice@127.0.0.1>", "<sip:bob@127.0.0.1>"), now).unwrap();
    let invite = request_of(&drain(&mut caller)[0]);
    assert!(has_option_tag(&invite.headers, &HeaderName::Supported, "100rel"));
    let ringing = reply(
        &invite,
        180,
        &[(HeaderName::Require, "100rel"), (HeaderName::RSeq, "7"), (HeaderName::Contact, "<sip:bob@127.0.0.1:5060>")],
    );
    caller.on_datagram(ringing.clone(), dest(UAS), now);
    let sent = drain(&mut caller);
    assert_eq!(sent.len(), 1);
    let prack = request_of(&sent[0]);
    assert_eq!(prack.method, Method::Prack);
    assert_eq!(prack.headers.get(&HeaderName::RAck).map(|v| v.as_str()), Some("7 1 INVITE"));
    assert_eq!(prack.headers.cseq().unwrap().seq, 2);
    assert!(prack.headers.to().unwrap().tag().is_some());
    // A retransmitted 180 is not PRACKed again.
    caller.on_datagram(ringing, dest(UAS), now);
    assert!(drain(&mut caller).is_empty());
    // The 2xx: ACK with the INVITE's CSeq; a later BYE goes above the PRACK's.
    caller.on_datagram(reply(&invite, 200, &[(HeaderName::Contact, "<sip:bob@127.0.0.1:5060>")]), dest(UAS), now);
    let ack = request_of(&drain(&mut caller)[0]);
    assert_eq!((ack.method.clone(), ack.headers.cseq().unwrap().seq), (Method::Ack, 1));
}

#[test]
fn caller_requiring_100rel_gets_no_unreliable_provisional() {
    let now = Instant::now();
    let mut callee = ua(UAS, 26);
    let invite = "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-100rel\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: rel@x\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:5070>\r\nRequire: 100rel\r\nContent-Length: 0\r\n\r\n";
    callee.on_datagram(Bytes::from(invite), dest(UAC), now);
    let Some(UaEvent::IncomingCall { call, .. }) = callee.poll_event() else { panic!("no call") };
    drain(&mut callee);
    callee.ring(call, 180, None, now).unwrap();
    assert!(drain(&mut callee).is_empty(), "a 180 went out");
    callee.answer(call, sdp(), now).unwrap();
    assert_eq!(drain(&mut callee).iter().filter_map(status_of).collect::<Vec<_>>(), vec![200]);
}

/// An INVITE from 127.0.0.1:5070 with `extra` header lines and an SDP offer.
fn raw_invite(branch: &str, extra: &str) -> Bytes {
    let body = String::from_utf8(sdp().to_vec()).unwrap();
    Bytes::from(format!(
        "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: {branch}@x\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:5070>\r\n{extra}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

/// Answers a raw INVITE and ACKs the 200; returns the call and the 200.
fn answer_raw(callee: &mut UserAgent, invite: Bytes, now: Instant) -> (CallRef, Response) {
    callee.on_datagram(invite, dest(UAC), now);
    let Some(UaEvent::IncomingCall { call, request, .. }) = callee.poll_event() else { panic!("no call") };
    drain(callee);
    callee.answer(call, sdp(), now).unwrap();
    let ok = drain(callee)
        .iter()
        .find_map(|t| match parse(&t.data) {
            Message::Response(r) if r.status == 200 => Some(r),
            _ => None,
        })
        .expect("200");
    let to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let ack = format!(
        "ACK sip:bob@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-ack{}\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        call.0,
        request.headers.call_id().unwrap()
    );
    callee.on_datagram(Bytes::from(ack), dest(UAC), now);
    assert!(matches!(callee.poll_event(), Some(UaEvent::Confirmed { .. })));
    (call, ok)
}

#[test]
fn session_timer_we_refresh_with_update() {
    let t0 = Instant::now();
    let mut callee = ua(UAS, 27);
    let extra = "Session-Expires: 90;refresher=uas\r\nSupported: timer\r\nAllow: INVITE, ACK, BYE, UPDATE\r\n";
    let (_, ok) = answer_raw(&mut callee, raw_invite("z9hG4bK-se1", extra), t0);
    assert_eq!(ok.headers.get(&HeaderName::SessionExpires).map(|v| v.as_str()), Some("90;refresher=uas"));
    assert_eq!(ok.headers.get(&HeaderName::Require).map(|v| v.as_str()), Some("timer"));
    // Halfway, an UPDATE with us as the refresher of that transaction.
    callee.handle_timeout(t0 + Duration::from_secs(44));
    assert!(!drain(&mut callee).iter().any(|t| status_of(t).is_none()), "a request before half the interval");
    callee.handle_timeout(t0 + Duration::from_secs(45));
    let update = request_of(&drain(&mut callee)[0]);
    assert_eq!(update.method, Method::Update);
    assert_eq!(update.headers.get(&HeaderName::SessionExpires).map(|v| v.as_str()), Some("90;refresher=uac"));
    assert_eq!(update.headers.cseq().unwrap().seq, 2);
    let t1 = t0 + Duration::from_secs(46);
    callee.on_datagram(reply(&update, 200, &[(HeaderName::SessionExpires, "90;refresher=uac")]), dest(UAC), t1);
    callee.handle_timeout(t1 + Duration::from_secs(44));
    assert!(!drain(&mut callee).iter().any(|t| status_of(t).is_none()), "refreshed too early");
    callee.handle_timeout(t1 + Duration::from_secs(45));
    assert_eq!(request_of(&drain(&mut callee)[0]).method, Method::Update);
    assert_eq!(callee.call_count(), 1);
}

#[test]
fn session_timer_without_refresh_ends_the_call() {
    let t0 = Instant::now();
    let mut callee = ua(UAS, 28);
    let extra = "Session-Expires: 90;refresher=uac\r\nSupported: timer\r\n";
    let (call, ok) = answer_raw(&mut callee, raw_invite("z9hG4bK-se2", extra), t0);
    assert_eq!(ok.headers.get(&HeaderName::SessionExpires).map(|v| v.as_str()), Some("90;refresher=uac"));
    // The peer refreshes with a re-INVITE at 40 s: the deadline moves to 40 + 60 s.
    let to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let reinvite = String::from_utf8(
        raw_invite("z9hG4bK-se2b", "Session-Expires: 90;refresher=uac\r\nSupported: timer\r\n").to_vec(),
    )
    .unwrap()
    .replace("To: <sip:bob@127.0.0.1>", &format!("To: {to}"))
    .replace("CSeq: 1 INVITE", "CSeq: 2 INVITE")
    .replace("Call-ID: z9hG4bK-se2b@x", "Call-ID: z9hG4bK-se2@x");
    let t1 = t0 + Duration::from_secs(40);
    callee.on_datagram(Bytes::from(reinvite), dest(UAC), t1);
    let statuses: Vec<u16> = drain(&mut callee).iter().filter_map(status_of).filter(|s| *s >= 200).collect();
    assert_eq!(statuses, vec![200]);
    events(&mut callee);
    callee.handle_timeout(t0 + Duration::from_secs(61));
    assert_eq!(callee.call_count(), 1, "the refresh moved the deadline");
    callee.handle_timeout(t1 + Duration::from_secs(60));
    let bye = request_of(&drain(&mut callee)[0]);
    assert_eq!(bye.method, Method::Bye);
    let ev = events(&mut callee);
    assert!(
        matches!(ev.last(), Some(UaEvent::Terminated { call: c, reason: EndReason::SessionExpired }) if *c == call),
        "{ev:?}"
    );
}

#[test]
fn too_short_session_interval_gets_422_and_our_invite_retries_with_min_se() {
    let now = Instant::now();
    let mut callee = ua(UAS, 29);
    callee.on_datagram(raw_invite("z9hG4bK-se3", "Session-Expires: 30\r\n"), dest(UAC), now);
    let sent = drain(&mut callee);
    let Message::Response(r) = parse(&sent.last().unwrap().data) else { panic!() };
    assert_eq!(r.status, 422);
    assert_eq!(r.headers.get(&HeaderName::MinSe).map(|v| v.as_str()), Some("90"));
    assert_eq!(callee.call_count(), 0);

    let mut caller = ua(UAC, 30);
    caller.invite(out("sip:bob@127.0.0.1", "<sip:alice@127.0.0.1>", "<sip:bob@127.0.0.1>"), now).unwrap();
    let first = request_of(&drain(&mut caller)[0]);
    assert_eq!(first.headers.get(&HeaderName::SessionExpires).map(|v| v.as_str()), Some("1800"));
    caller.on_datagram(reply(&first, 422, &[(HeaderName::MinSe, "3600")]), dest(UAS), now);
    let second = drain(&mut caller).iter().map(request_of).find(|r| r.method == Method::Invite).unwrap();
    assert_eq!(second.headers.get(&HeaderName::SessionExpires).map(|v| v.as_str()), Some("3600"));
    assert_eq!(second.headers.cseq().unwrap().seq, 2);
    // The 2xx names us the refresher: a re-INVITE (no UPDATE in its Allow) at half.
    caller.on_datagram(
        reply(
            &second,
            200,
            &[(HeaderName::SessionExpires, "3600;refresher=uac"), (HeaderName::Contact, "<sip:bob@127.0.0.1:5060>")],
        ),
        dest(UAS),
        now,
    );
    drain(&mut caller);
    caller.handle_timeout(now + Duration::from_secs(1800));
    let refresh = request_of(&drain(&mut caller)[0]);
    assert_eq!(refresh.method, Method::Invite);
    assert!(!refresh.body.is_empty(), "a re-INVITE refresh carries our SDP");
    // Its 2xx is ACKed with the re-INVITE's CSeq.
    caller.on_datagram(reply(&refresh, 200, &[]), dest(UAS), now + Duration::from_secs(1800));
    let ack = request_of(&drain(&mut caller)[0]);
    assert_eq!(
        (ack.method.clone(), ack.headers.cseq().unwrap().seq),
        (Method::Ack, refresh.headers.cseq().unwrap().seq)
    );
}

#[test]
fn refer_is_accepted_and_progress_notified() {
    let t0 = Instant::now();
    let mut callee = ua(UAS, 31);
    let (call, ok) = answer_raw(&mut callee, raw_invite("z9hG4bK-ref", ""), t0);
    let to = ok.headers.get(&HeaderName::To).unwrap().to_string();
    let refer = |cseq: u32, refer_to: &str| {
        Bytes::from(format!(
            "REFER sip:bob@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-r{cseq}\r\nMax-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: {to}\r\nCall-ID: z9hG4bK-ref@x\r\nCSeq: {cseq} REFER\r\nContact: <sip:a@127.0.0.1:5070>\r\n{refer_to}Content-Length: 0\r\n\r\n"
        ))
    };
    callee.on_datagram(refer(2, ""), dest(UAC), t0);
    assert_eq!(drain(&mut callee).iter().filter_map(status_of).collect::<Vec<_>>(), vec![400]);
    // The user decides: refused, the REFER gets 403 and no subscription exists.
    callee.on_datagram(refer(3, "Refer-To: <sip:carol@127.0.0.1:5090>\r\n"), dest(UAC), t0);
    assert!(drain(&mut callee).iter().filter_map(status_of).next().is_none(), "no answer before the user's");
    let ev = events(&mut callee);
    assert!(matches!(&ev[..], [UaEvent::Refer { request, .. }] if request.method == Method::Refer), "{ev:?}");
    callee.answer_refer(call, false, t0).unwrap();
    assert_eq!(drain(&mut callee).iter().filter_map(status_of).collect::<Vec<_>>(), vec![403]);
    assert_eq!(callee.notify_refer(call, 100, "Trying", t0), Err(UaError::WrongState));
    assert_eq!(callee.answer_refer(call, true, t0), Err(UaError::WrongState), "answered once");
    // Accepted: 202, then progress in NOTIFYs.
    callee.on_datagram(refer(4, "Refer-To: <sip:carol@127.0.0.1:5090>\r\n"), dest(UAC), t0);
    events(&mut callee);
    callee.answer_refer(call, true, t0).unwrap();
    assert_eq!(drain(&mut callee).iter().filter_map(status_of).collect::<Vec<_>>(), vec![202]);
    callee.notify_refer(call, 100, "Trying", t0).unwrap();
    let n1 = request_of(&drain(&mut callee)[0]);
    assert_eq!(n1.method, Method::Notify);
    assert_eq!(n1.headers.get(&HeaderName::Event).map(|v| v.as_str()), Some("refer;id=4"));
    assert!(n1.headers.get(&HeaderName::SubscriptionState).unwrap().starts_with("active"));
    assert_eq!(&n1.body[..], b"SIP/2.0 100 Trying\r\n");
    callee.notify_refer(call, 200, "OK", t0).unwrap();
    let n2 = request_of(&drain(&mut callee)[0]);
    assert!(n2.headers.get(&HeaderName::SubscriptionState).unwrap().starts_with("terminated"));
    assert!(n2.headers.cseq().unwrap().seq > n1.headers.cseq().unwrap().seq);
    // The subscription is over: no more NOTIFYs.
    assert_eq!(callee.notify_refer(call, 200, "OK", t0), Err(UaError::WrongState));
    // And we can transfer the other way.
    callee.refer(call, "sip:dave@127.0.0.1:5091", t0).unwrap();
    let r = request_of(&drain(&mut callee)[0]);
    assert_eq!(r.method, Method::Refer);
    assert_eq!(r.headers.get(&HeaderName::ReferTo).map(|v| v.as_str()), Some("<sip:dave@127.0.0.1:5091>"));
    assert!(r.headers.get(&HeaderName::ReferredBy).is_some());
}

#[test]
fn ack_for_2xx_carries_the_invites_credentials() {
    let now = Instant::now();
    let mut caller = ua_with_creds(UAC, 32);
    caller.invite(out("sip:bob@127.0.0.1", "<sip:alice@127.0.0.1>", "<sip:bob@127.0.0.1>"), now).unwrap();
    let first = request_of(&drain(&mut caller)[0]);
    let chal = r#"Digest realm="p", nonce="n9", qop="auth""#;
    caller.on_datagram(reply(&first, 407, &[(HeaderName::ProxyAuthenticate, chal)]), dest(UAS), now);
    let second = drain(&mut caller).iter().map(request_of).find(|r| r.method == Method::Invite).unwrap();
    let creds = second.headers.get(&HeaderName::ProxyAuthorization).unwrap().clone();
    caller.on_datagram(reply(&second, 200, &[(HeaderName::Contact, "<sip:bob@127.0.0.1:5060>")]), dest(UAS), now);
    let ack = request_of(&drain(&mut caller)[0]);
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.headers.cseq().unwrap().seq, 2);
    assert_eq!(ack.headers.get(&HeaderName::ProxyAuthorization), Some(&creds));
    let ev = events(&mut caller);
    assert!(
        matches!(&ev[0], UaEvent::Challenged { status: 407, realms, .. } if realms == &vec!["p".to_string()]),
        "{ev:?}"
    );
}

fn sdp_dir(dir: &str, version: u32) -> Bytes {
    Bytes::from(format!(
        "v=0\r\no=- 1 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na={dir}\r\n"
    ))
}

/// Places and answers a call between two UAs; returns (caller's, callee's) handles.
fn established(caller: &mut UserAgent, callee: &mut UserAgent, now: Instant) -> (CallRef, CallRef) {
    let call = caller.invite(out("sip:bob@127.0.0.1", "<sip:alice@127.0.0.1>", "<sip:bob@127.0.0.1>"), now).unwrap();
    let (_, eb) = exchange(caller, UAC, callee, UAS, now);
    let Some(UaEvent::IncomingCall { call: inbound, .. }) = eb.into_iter().next() else { panic!("no call") };
    callee.answer(inbound, sdp_dir("sendrecv", 1), now).unwrap();
    exchange(caller, UAC, callee, UAS, now);
    (call, inbound)
}

#[test]
fn reinvite_puts_the_peer_on_hold_and_gets_the_mirrored_answer() {
    let now = Instant::now();
    let (mut caller, mut callee) = (ua(UAC, 33), ua(UAS, 34));
    let (_, inbound) = established(&mut caller, &mut callee, now);
    callee.reinvite(inbound, sdp_dir("sendonly", 2), now).unwrap();
    assert_eq!(callee.reinvite(inbound, sdp_dir("sendonly", 2), now), Err(UaError::WrongState));
    let (ea, eb) = exchange(&mut caller, UAC, &mut callee, UAS, now);
    assert!(matches!(&ea[..], [UaEvent::InDialog { request, .. }] if request.method == Method::Invite), "{ea:?}");
    let Some(UaEvent::Reinvited { response, .. }) = eb.into_iter().next() else { panic!("no answer") };
    assert_eq!(response.status, 200);
    let answer = String::from_utf8_lossy(&response.body).into_owned();
    assert!(answer.contains("a=recvonly"), "{answer}");
    // Resume: sendrecv both ways again, and the next re-INVITE is allowed.
    callee.reinvite(inbound, sdp_dir("sendrecv", 3), now).unwrap();
    let (_, eb) = exchange(&mut caller, UAC, &mut callee, UAS, now);
    let Some(UaEvent::Reinvited { response, .. }) = eb.into_iter().next() else { panic!("no answer") };
    assert!(String::from_utf8_lossy(&response.body).contains("a=sendrecv"));
    assert_eq!((caller.call_count(), callee.call_count()), (1, 1));
}

#[test]
fn reinvite_glare_gets_491_and_both_retry_in_turn() {
    let t0 = Instant::now();
    let (mut caller, mut callee) = (ua(UAC, 35), ua(UAS, 36));
    let (call, inbound) = established(&mut caller, &mut callee, t0);
    caller.reinvite(call, sdp_dir("sendonly", 2), t0).unwrap();
    callee.reinvite(inbound, sdp_dir("sendonly", 2), t0).unwrap();
    // Both INVITEs cross; each side answers the other's with 491.
    let (ea, eb) = exchange(&mut caller, UAC, &mut callee, UAS, t0);
    assert!(ea.is_empty() && eb.is_empty(), "{ea:?} {eb:?}");
    // The callee (not the Call-ID's owner) retries within 2 s, the caller after 2.1 s.
    let t1 = t0 + Duration::from_millis(2050);
    callee.handle_timeout(t1);
    caller.handle_timeout(t1);
    let (ea, eb) = exchange(&mut caller, UAC, &mut callee, UAS, t1);
    assert!(matches!(&ea[..], [UaEvent::InDialog { .. }]), "{ea:?}");
    assert!(matches!(&eb[..], [UaEvent::Reinvited { response, .. }] if response.status == 200), "{eb:?}");
    let t2 = t0 + Duration::from_millis(4050);
    callee.handle_timeout(t2);
    caller.handle_timeout(t2);
    let (ea, eb) = exchange(&mut caller, UAC, &mut callee, UAS, t2);
    assert!(matches!(&ea[..], [UaEvent::Reinvited { response, .. }] if response.status == 200), "{ea:?}");
    assert!(matches!(&eb[..], [UaEvent::InDialog { .. }]), "{eb:?}");
}

#[test]
fn an_unanswered_invite_is_retransmitted_then_times_out_with_timer_b() {
    // RFC 3261 §17.1.1.2 over UDP: Timer A from T1 doubling, Timer B at 64·T1 = 32 s.
    let mut p = crate::testing::Pair::new(
        UaConfig { udp_addr: Some(UAC.parse().unwrap()), seed: 41, ..UaConfig::default() },
        UaConfig { udp_addr: Some(UAS.parse().unwrap()), seed: 42, ..UaConfig::default() },
    );
    p.mute_b = true;
    let call = p.a.invite(out("sip:bob@127.0.0.1", "<sip:alice@127.0.0.1>", "<sip:bob@127.0.0.1>"), p.now).unwrap();
    p.advance(Duration::from_secs(40));
    let sent: Vec<f64> = p.wire.iter().filter(|(_, a, l)| *a && l.starts_with("INVITE")).map(|(t, _, _)| *t).collect();
    assert_eq!(sent, [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5], "{:?}", p.wire);
    let ended = p.take_a();
    assert!(
        matches!(&ended[..], [UaEvent::Terminated { call: c, reason: EndReason::Timeout }] if *c == call),
        "{ended:?}"
    );
}

#[test]
fn the_perimeter_answers_strangers_403_then_not_at_all_but_lets_our_dialogs_in() {
    use crate::perimeter::{Cidr, Deny, PerimeterConfig};
    let now = Instant::now();
    let a: SocketAddr = UAS.parse().unwrap();
    let perimeter = PerimeterConfig {
        allow: vec![Cidr::parse("127.0.0.2").unwrap()],
        deny: Deny::Forbidden,
        block_after: 3,
        block_for: Duration::from_secs(60),
    };
    let cfg =
        UaConfig { udp_addr: Some(a), tcp_addr: Some(a), seed: 41, perimeter: Some(perimeter), ..UaConfig::default() };
    let mut ours = UserAgent::new(cfg);
    let mut stranger = ua(UAC, 42);
    // The stranger's INVITE: a stateless 403, no call, nothing for our user.
    let call = stranger.invite(out("sip:bob@127.0.0.1", "<sip:x@127.0.0.1>", "<sip:bob@127.0.0.1>"), now).unwrap();
    let (es, eo) = exchange(&mut stranger, UAC, &mut ours, UAS, now);
    assert!(eo.is_empty(), "{eo:?}");
    assert!(
        matches!(es.last(), Some(UaEvent::Terminated { call: c, reason: EndReason::Rejected { status: 403, .. } }) if *c == call),
        "{es:?}"
    );
    assert_eq!(ours.call_count(), 0);
    // A call we place to it is ours: its answer and its BYE come in.
    let mut o = out("sip:x@127.0.0.1:5070", "<sip:bob@127.0.0.1>", "<sip:x@127.0.0.1:5070>");
    o.dest = dest(UAC);
    let placed = ours.invite(o, now).unwrap();
    let (es, _) = exchange(&mut stranger, UAC, &mut ours, UAS, now);
    let Some(UaEvent::IncomingCall { call: theirs, .. }) = es.into_iter().next() else { panic!("no call") };
    stranger.answer(theirs, sdp(), now).unwrap();
    exchange(&mut stranger, UAC, &mut ours, UAS, now);
    stranger.hangup(theirs, now).unwrap();
    let (_, eo) = exchange(&mut stranger, UAC, &mut ours, UAS, now);
    assert!(
        matches!(eo.last(), Some(UaEvent::Terminated { call: c, reason: EndReason::RemoteBye }) if *c == placed),
        "{eo:?}"
    );
    // Refused again (the first INVITE counted once): blocked on the third, then no answer.
    let options = |n: u32| {
        request(&format!(
            "OPTIONS sip:bob@127.0.0.1 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKprobe{n}\n\
             From: <sip:100@127.0.0.1>;tag=p{n}\nTo: <sip:100@127.0.0.1>\nCall-ID: probe{n}\n\
             CSeq: 1 OPTIONS\nMax-Forwards: 70\nContent-Length: 0\n\n"
        ))
    };
    ours.on_datagram(options(1), dest(UAC), now);
    assert_eq!(drain(&mut ours).iter().filter_map(status_of).collect::<Vec<_>>(), [403]);
    assert!(events(&mut ours).iter().any(|e| matches!(e, UaEvent::SourceBlocked { .. })));
    ours.on_datagram(options(2), dest(UAC), now);
    assert!(drain(&mut ours).is_empty(), "blocked: no answer");
    assert_eq!(ours.perimeter().unwrap().stats().blocked, 1);
    // An allowed address is answered.
    ours.on_datagram(options(3), dest("127.0.0.2:5999"), now);
    assert_eq!(drain(&mut ours).iter().filter_map(status_of).collect::<Vec<_>>(), [200]);
}

#[test]
fn a_sip_user_registers_and_calls_from_outside_the_perimeter_with_its_credentials() {
    use crate::auth::Algorithm;
    use crate::perimeter::{Cidr, Deny, PerimeterConfig};
    use crate::userauth::{ha1, SipUser};
    let now = Instant::now();
    let a: SocketAddr = UAS.parse().unwrap();
    let perimeter = PerimeterConfig {
        allow: vec![Cidr::parse("127.0.0.2").unwrap()],
        deny: Deny::Forbidden,
        block_after: 3,
        block_for: Duration::from_secs(60),
    };
    let cfg =
        UaConfig { udp_addr: Some(a), tcp_addr: Some(a), seed: 51, perimeter: Some(perimeter), ..UaConfig::default() };
    let mut ours = UserAgent::new(cfg);
    let alice = SipUser {
        username: "alice".into(),
        ha1_md5: ha1(Algorithm::Md5, "alice", "dialtone", "a long secret"),
        ha1_sha256: ha1(Algorithm::Sha256, "alice", "dialtone", "a long secret"),
        owner: "org_a".into(),
    };
    ours.set_sip_users(vec![alice.clone()]);
    let phone = |password: &str, seed: u64| {
        let b: SocketAddr = UAC.parse().unwrap();
        UserAgent::new(UaConfig {
            udp_addr: Some(b),
            tcp_addr: Some(b),
            seed,
            credentials: Some(Credentials::new("alice", password)),
            ..UaConfig::default()
        })
    };
    let registration = Registration {
        registrar: "sip:127.0.0.1".into(),
        aor: "sip:alice@127.0.0.1".into(),
        dest: dest(UAS),
        expires: 600,
    };
    // Registers (challenged once, SHA-256 chosen), and the binding is there.
    let mut good = phone("a long secret", 52);
    good.register(registration.clone(), now).unwrap();
    let (eg, eo) = exchange(&mut good, UAC, &mut ours, UAS, now);
    assert!(
        eg.iter().any(|e| matches!(e, UaEvent::Registration(RegistrationEvent::Registered { expires: 600 }))),
        "{eg:?}"
    );
    assert!(
        eo.iter().any(|e| matches!(e, UaEvent::UserRegistered { user, bindings: 1, .. } if user == "alice")),
        "{eo:?}"
    );
    assert_eq!(ours.bindings("alice", now).len(), 1);
    // Its call comes in as alice's.
    good.invite(out("sip:+15551230000@127.0.0.1", "<sip:alice@127.0.0.1>", "<sip:+15551230000@127.0.0.1>"), now)
        .unwrap();
    let (_, eo) = exchange(&mut good, UAC, &mut ours, UAS, now);
    let user = eo.iter().find_map(|e| match e {
        UaEvent::IncomingCall { user, .. } => Some(user.clone()),
        _ => None,
    });
    assert_eq!(user, Some(Some(alice)), "{eo:?}");
    // A wrong password is challenged again and counted against its address.
    let mut bad = phone("guess", 53);
    bad.register(registration, now).unwrap();
    let (eb, eo) = exchange(&mut bad, UAC, &mut ours, UAS, now);
    assert!(eb.iter().any(|e| matches!(e, UaEvent::Registration(RegistrationEvent::Failed { .. }))), "{eb:?}");
    assert!(!eo.iter().any(|e| matches!(e, UaEvent::UserRegistered { .. })), "{eo:?}");
    assert_eq!(ours.perimeter().unwrap().stats().refused, 1);
}

#[test]
fn an_invite_fails_over_to_the_next_target_on_503_and_on_timeout() {
    let now = Instant::now();
    let (mut caller, mut callee) = (ua(UAC, 61), ua(UAS, 62));
    let mut o = out("sip:bob@trunk.test", "<sip:a@127.0.0.1>", "<sip:bob@trunk.test>");
    o.dest = dest("127.0.0.1:5999");
    o.alternates = vec![dest("127.0.0.1:5998"), dest(UAS)];
    let call = caller.invite(o, now).unwrap();
    // The first target answers 503: the INVITE goes to the second (new branch, CSeq 2).
    let first = drain(&mut caller);
    assert_eq!(first[0].dest, dest("127.0.0.1:5999"));
    let Message::Request(inv) = parse(&first[0].data) else { panic!() };
    let busy = crate::ua::make_response(&inv, 503, "Service Unavailable", Some("x"));
    caller.on_message(Message::Response(busy), dest("127.0.0.1:5999"), now);
    let ev = events(&mut caller);
    assert!(matches!(&ev[..], [UaEvent::Failover { why, .. }] if why.starts_with("503")), "{ev:?}");
    let second = drain(&mut caller);
    assert_eq!(second.iter().filter(|t| t.dest == dest("127.0.0.1:5998")).count(), 1, "{second:?}");
    // The second never answers: after Timer B (64·T1) the third is tried, and answers.
    let mut t = now;
    let mut moved = false;
    for _ in 0..200 {
        t += Duration::from_millis(500);
        caller.handle_timeout(t);
        if events(&mut caller).iter().any(|e| matches!(e, UaEvent::Failover { why, .. } if why == "timeout")) {
            moved = true;
            break;
        }
    }
    assert!(moved && t - now >= Duration::from_secs(32), "failed over after {:?}", t - now);
    let sent = drain(&mut caller);
    let to_callee: Vec<_> = sent.into_iter().filter(|t| t.dest == dest(UAS)).collect();
    assert!(!to_callee.is_empty());
    for tr in to_callee {
        callee.on_datagram(tr.data, dest(UAC), t);
    }
    let Some(UaEvent::IncomingCall { call: inbound, request, .. }) = callee.poll_event() else { panic!("no call") };
    assert_eq!(request.headers.cseq().unwrap().seq, 3, "a new transaction each time");
    callee.answer(inbound, sdp(), t).unwrap();
    let (ea, _) = exchange(&mut caller, UAC, &mut callee, UAS, t);
    assert!(ea.iter().any(|e| matches!(e, UaEvent::Answered { call: c, .. } if *c == call)), "{ea:?}");
}

#[test]
fn the_replacing_uri_names_the_dialog_as_the_peer_sees_it() {
    let now = Instant::now();
    let (mut caller, mut callee) = (ua(UAC, 35), ua(UAS, 36));
    let (out_call, in_call) = established(&mut caller, &mut callee, now);
    // The caller's dialog, seen from the callee: its to-tag is the callee's own tag.
    let uri = caller.replacing_uri(out_call).unwrap();
    let (target, replaces) = uri.split_once("?Replaces=").unwrap();
    assert!(target.starts_with("sip:") && !target.contains('?'), "{uri}");
    let decoded = replaces.replace("%40", "@").replace("%3B", ";").replace("%3D", "=");
    let (call_id, tags) = decoded.split_once(';').unwrap();
    let callee_tag = callee.replacing_uri(in_call).unwrap();
    // Both sides name the same Call-ID; each one's from-tag is the other's to-tag.
    let other =
        callee_tag.split_once("?Replaces=").unwrap().1.replace("%40", "@").replace("%3B", ";").replace("%3D", "=");
    assert!(other.starts_with(call_id), "{other} vs {decoded}");
    let tag = |s: &str, k: &str| s.split(';').find_map(|p| p.strip_prefix(k)).unwrap().to_string();
    assert_eq!(tag(tags, "to-tag="), tag(&other, "from-tag="));
    assert_eq!(tag(tags, "from-tag="), tag(&other, "to-tag="));
    assert!(!replaces.contains(';') && !replaces.contains('@'), "escaped: {replaces}");
}

/// The callee's 183 with SDP to a caller that supports 100rel, and what the callee sent.
fn early_183(caller: &mut UserAgent, callee: &mut UserAgent, now: Instant) -> (CallRef, Response) {
    caller.invite(out("sip:bob@127.0.0.1", "<sip:alice@127.0.0.1>", "<sip:bob@127.0.0.1>"), now).unwrap();
    for t in drain(caller) {
        callee.on_datagram(t.data, dest(UAC), now);
    }
    let Some(UaEvent::IncomingCall { call, .. }) = callee.poll_event() else { panic!("no call") };
    drain(callee);
    callee.ring(call, 183, Some(sdp()), now).unwrap();
    let sent = drain(callee);
    assert_eq!(sent.len(), 1);
    let Message::Response(r) = parse(&sent[0].data) else { panic!("not a response") };
    (call, r)
}

#[test]
fn early_media_goes_reliably_and_the_2xx_waits_for_its_prack() {
    let now = Instant::now();
    let (mut caller, mut callee) = (ua(UAC, 40), ua(UAS, 41));
    let (call, r183) = early_183(&mut caller, &mut callee, now);
    assert_eq!(r183.status, 183);
    assert!(has_option_tag(&r183.headers, &HeaderName::Require, "100rel"), "RFC 3262: reliable");
    let rseq: u32 = r183.headers.get(&HeaderName::RSeq).unwrap().trim().parse().unwrap();
    assert!((1..1 << 31).contains(&rseq));
    // A second reliable one before the first is PRACKed: refused (one at a time).
    assert_eq!(callee.ring(call, 183, Some(sdp()), now), Err(UaError::WrongState));
    // The answer is held: no 2xx before the PRACK of a provisional with SDP.
    callee.answer(call, sdp(), now).unwrap();
    assert!(drain(&mut callee).is_empty(), "a 2xx went out before the PRACK");
    // The caller PRACKs (RAck: RSeq, the INVITE's CSeq); the callee answers it and the
    // held 200 goes; the caller ACKs and both are confirmed.
    caller.on_datagram(Message::Response(r183).to_bytes(), dest(UAS), now);
    let prack = request_of(&drain(&mut caller)[0]);
    assert_eq!(prack.method, Method::Prack);
    assert_eq!(prack.headers.get(&HeaderName::RAck).map(|v| v.to_string()), Some(format!("{rseq} 1 INVITE")));
    callee.on_datagram(Message::Request(prack).to_bytes(), dest(UAC), now);
    let statuses: Vec<u16> = drain(&mut callee)
        .iter()
        .filter_map(|t| match parse(&t.data) {
            Message::Response(r) => Some(r.status),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, vec![200, 200], "the PRACK's 200, then the INVITE's");
}

#[test]
fn an_unpracked_reliable_provisional_is_resent_then_the_call_refused_with_504() {
    let now = Instant::now();
    let (mut caller, mut callee) = (ua(UAC, 42), ua(UAS, 43));
    let (_, r183) = early_183(&mut caller, &mut callee, now);
    let t1 = UaConfig::default().timers.t1;
    // T1, then doubling: the same 183 (same RSeq) again.
    callee.handle_timeout(now + t1);
    let again = drain(&mut callee);
    assert_eq!(again.len(), 1);
    let Message::Response(r) = parse(&again[0].data) else { panic!() };
    assert_eq!((r.status, r.headers.get(&HeaderName::RSeq)), (183, r183.headers.get(&HeaderName::RSeq)));
    callee.handle_timeout(now + t1 * 2);
    assert!(drain(&mut callee).is_empty(), "the next one is 2·T1 after the last");
    callee.handle_timeout(now + t1 * 3);
    assert_eq!(drain(&mut callee).len(), 1);
    // 64·T1 without a PRACK: 504, and the call is over.
    callee.handle_timeout(now + t1 * 64);
    let last: Vec<u16> = drain(&mut callee).iter().filter_map(status_of).collect();
    assert!(last.contains(&504), "{last:?}");
    assert!(events(&mut callee).iter().any(|e| matches!(e, UaEvent::Terminated { .. })));
}

#[test]
fn a_prack_for_nothing_outstanding_gets_481() {
    let now = Instant::now();
    let (mut caller, mut callee) = (ua(UAC, 44), ua(UAS, 45));
    let (_, r183) = early_183(&mut caller, &mut callee, now);
    caller.on_datagram(Message::Response(r183).to_bytes(), dest(UAS), now);
    let mut prack = request_of(&drain(&mut caller)[0]);
    let rack = prack.headers.get(&HeaderName::RAck).unwrap().to_string();
    let wrong = rack.replacen(rack.split(' ').next().unwrap(), "1", 1);
    prack.headers.set(HeaderName::RAck, SipStr::from(wrong));
    callee.on_datagram(Message::Request(prack).to_bytes(), dest(UAC), now);
    assert_eq!(drain(&mut callee).iter().filter_map(status_of).collect::<Vec<_>>(), vec![481]);
}
