//! Transaction tests on a virtual clock: every timer of the four machines fires at the
//! RFC's time, and matching follows §17.1.3 / §17.2.3 / §9.2.

use super::*;
use crate::header::CSeq;
use crate::parse::parse_datagram;
use crate::transport::Transport;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

const fn dest(transport: Transport, last: u8) -> Destination {
    Destination { transport, addr: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, last), 5060)) }
}
const PEER_UDP: Destination = dest(Transport::Udp, 2);
const PEER_TCP: Destination = dest(Transport::Tcp, 2);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn parse(text: &str) -> Message {
    let wire = text.trim_start().replace("\r\n", "\n").replace('\n', "\r\n");
    match parse_datagram(Bytes::from(wire)) {
        Ok(m) => m,
        Err(e) => panic!("test message does not parse: {:?}\n{text}", e.error),
    }
}

fn req(text: &str) -> Request {
    match parse(text) {
        Message::Request(r) => r,
        Message::Response(_) => panic!("not a request"),
    }
}

fn resp(text: &str) -> Response {
    match parse(text) {
        Message::Response(r) => r,
        Message::Request(_) => panic!("not a response"),
    }
}

/// A request as a peer would send it, with sent-by `host` and `branch`.
fn request(method: &str, transport: Transport, host: &str, branch: &str, to_tag: &str) -> Request {
    let branch = if branch.is_empty() { String::new() } else { format!(";branch={branch}") };
    let to_tag = if to_tag.is_empty() { String::new() } else { format!(";tag={to_tag}") };
    req(&format!(
        "{method} sip:bob@10.0.0.1 SIP/2.0
Via: SIP/2.0/{transport} {host}{branch}
Max-Forwards: 70
From: <sip:alice@10.0.0.2>;tag=a1
To: <sip:bob@10.0.0.1>{to_tag}
Call-ID: call-1@10.0.0.2
CSeq: 1 {method}
Content-Length: 0

"
    ))
}

fn invite_from_peer(branch: &str) -> Request {
    request("INVITE", Transport::Udp, "10.0.0.2:5060", branch, "")
}

/// Our own outgoing request: top Via with `branch`, one Route.
fn our_request(method: &str, transport: Transport, branch: &str) -> Request {
    req(&format!(
        "{method} sip:bob@10.0.0.2 SIP/2.0
Via: SIP/2.0/{transport} 10.0.0.1:5060;branch={branch};rport
Route: <sip:proxy.test;lr>
Max-Forwards: 70
From: \"Alice\" <sip:alice@10.0.0.1>;tag=ours
To: <sip:bob@10.0.0.2>
Call-ID: out-1@10.0.0.1
CSeq: 7 {method}
Contact: <sip:alice@10.0.0.1:5060>
Content-Length: 0

"
    ))
}

/// A response to our request (top Via `branch`, CSeq method `method`).
fn response_to(status: u16, method: &str, branch: &str, to_tag: &str) -> Response {
    let reason = crate::msg::reason_phrase(status);
    resp(&format!(
        "SIP/2.0 {status} {reason}
Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch};rport=5060
From: \"Alice\" <sip:alice@10.0.0.1>;tag=ours
To: <sip:bob@10.0.0.2>;tag={to_tag}
Call-ID: out-1@10.0.0.1
CSeq: 7 {method}
Content-Length: 0

"
    ))
}

/// Our response to a peer's request.
fn reply(r: &Request, status: u16, to_tag: &str) -> Response {
    let mut out = Response::new(status, crate::msg::reason_phrase(status));
    for name in [HeaderName::Via, HeaderName::From, HeaderName::To, HeaderName::CallId, HeaderName::CSeq] {
        for v in r.headers.get_all(&name) {
            let v = if name == HeaderName::To && status > 100 { format!("{v};tag={to_tag}") } else { v.to_string() };
            out.headers.push(name.clone(), v);
        }
    }
    out
}

fn first_line(b: &Bytes) -> String {
    let s = String::from_utf8_lossy(b);
    s.lines().next().unwrap_or_default().to_string()
}

/// The layer on a virtual clock, recording what it sends and reports and when.
struct Sim {
    layer: TransactionLayer,
    t0: Instant,
    now: Instant,
    sent: Vec<(Duration, Transmit)>,
    events: Vec<(Duration, TxEvent)>,
}

impl Sim {
    fn new() -> Sim {
        Sim::with(TimerConfig::default())
    }

    fn with(cfg: TimerConfig) -> Sim {
        let t0 = Instant::now();
        Sim { layer: TransactionLayer::new(cfg), t0, now: t0, sent: Vec::new(), events: Vec::new() }
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn drain(&mut self) {
        let at = self.elapsed();
        while let Some(t) = self.layer.poll_transmit() {
            self.sent.push((at, t));
        }
        while let Some(e) = self.layer.poll_event() {
            self.events.push((at, e));
        }
    }

    /// Runs every timer due up to `t` (since start), like the driver's loop.
    fn run_until(&mut self, t: Duration) {
        let end = self.t0 + t;
        while let Some(due) = self.layer.poll_timeout() {
            if due > end {
                break;
            }
            assert!(due >= self.now, "poll_timeout went back in time");
            self.now = due;
            self.layer.handle_timeout(due);
            self.drain();
        }
        self.now = end;
    }

    fn send(&mut self, r: Request, to: Destination) -> ClientKey {
        let k = self.layer.send_request(r, to, self.now);
        self.drain();
        k
    }

    fn recv(&mut self, r: Request, from: Destination) -> Incoming {
        let i = self.layer.on_request(r, from, self.now);
        self.drain();
        i
    }

    fn recv_resp(&mut self, r: Response) -> Option<Response> {
        let out = self.layer.on_response(r, self.now);
        self.drain();
        out
    }

    fn respond(&mut self, key: &ServerKey, r: Response) -> Result<(), TransactionError> {
        let out = self.layer.respond(key, r, self.now);
        self.drain();
        out
    }

    /// Times (since start) of sent messages whose first line starts with `prefix`.
    fn sent_times(&self, prefix: &str) -> Vec<Duration> {
        self.sent.iter().filter(|(_, t)| first_line(&t.data).starts_with(prefix)).map(|(at, _)| *at).collect()
    }

    fn take_sent(&mut self) -> Vec<(Duration, Transmit)> {
        std::mem::take(&mut self.sent)
    }

    fn take_events(&mut self) -> Vec<(Duration, TxEvent)> {
        std::mem::take(&mut self.events)
    }

    fn server_key(incoming: Incoming) -> (ServerKey, Request) {
        match incoming {
            Incoming::New { key, request } => (key, request),
            other => panic!("expected a new transaction, got {other:?}"),
        }
    }
}

fn times(list: &[u64]) -> Vec<Duration> {
    list.iter().map(|&n| ms(n)).collect()
}

fn is_timeout(e: &TxEvent) -> bool {
    matches!(e, TxEvent::ClientTimeout { .. })
}

fn is_terminated(e: &TxEvent) -> bool {
    matches!(e, TxEvent::Terminated(_))
}

// --- the timers ---------------------------------------------------------------------

#[test]
fn timer_a_doubles_over_udp() {
    let mut s = Sim::new();
    s.send(our_request("INVITE", Transport::Udp, "z9hG4bKa1"), PEER_UDP);
    s.run_until(ms(31_999));
    // A = 500 ms, 1 s, 2 s, 4 s, 8 s, 16 s until Timer B.
    assert_eq!(s.sent_times("INVITE"), times(&[0, 500, 1500, 3500, 7500, 15500, 31500]));
    assert!(s.events.is_empty());
}

#[test]
fn timer_a_stops_on_provisional() {
    let mut s = Sim::new();
    let k = s.send(our_request("INVITE", Transport::Udp, "z9hG4bKa2"), PEER_UDP);
    s.run_until(ms(700));
    assert_eq!(s.recv_resp(response_to(180, "INVITE", "z9hG4bKa2", "b")), None);
    // Proceeding: neither A nor B runs any more (the TU cancels if it wants).
    assert_eq!(s.layer.poll_timeout(), None);
    s.run_until(secs(100));
    assert_eq!(s.sent_times("INVITE"), times(&[0, 500]));
    assert_eq!(s.layer.state(&TxKey::Client(k)), Some(TxState::ClientInvite(ClientInviteState::Proceeding)));
}

#[test]
fn timer_a_absent_over_tcp() {
    let mut s = Sim::new();
    s.send(our_request("INVITE", Transport::Tcp, "z9hG4bKa3"), PEER_TCP);
    s.run_until(ms(31_999));
    assert_eq!(s.sent_times("INVITE"), times(&[0]));
    s.run_until(secs(32));
    assert!(s.events.iter().any(|(at, e)| *at == secs(32) && is_timeout(e)), "Timer B still runs over TCP");
}

#[test]
fn timer_b_times_out_invite_after_64_t1() {
    let mut s = Sim::new();
    let k = s.send(our_request("INVITE", Transport::Udp, "z9hG4bKb1"), PEER_UDP);
    s.run_until(ms(31_999));
    assert!(s.events.is_empty());
    s.run_until(secs(32));
    let ev = s.take_events();
    assert!(matches!(&ev[0], (at, TxEvent::ClientTimeout { key }) if *at == secs(32) && *key == k));
    assert!(matches!(&ev[1], (_, TxEvent::Terminated(TxKey::Client(key))) if *key == k));
    assert!(s.layer.is_empty());
    assert_eq!(s.layer.poll_timeout(), None);
}

#[test]
fn timer_d_absorbs_final_retransmissions_then_terminates() {
    let mut s = Sim::new();
    let k = s.send(our_request("INVITE", Transport::Udp, "z9hG4bKd1"), PEER_UDP);
    s.run_until(secs(1));
    assert_eq!(s.recv_resp(response_to(486, "INVITE", "z9hG4bKd1", "busy")), None);
    let ev = s.take_events();
    assert!(matches!(&ev[..], [(_, TxEvent::Response { response, .. })] if response.status == 486));
    assert_eq!(s.sent_times("ACK"), vec![secs(1)]);
    assert_eq!(s.layer.state(&TxKey::Client(k.clone())), Some(TxState::ClientInvite(ClientInviteState::Completed)));
    // A retransmitted 486 is answered with the ACK again and not passed up.
    s.run_until(secs(3));
    assert_eq!(s.recv_resp(response_to(486, "INVITE", "z9hG4bKd1", "busy")), None);
    assert_eq!(s.sent_times("ACK"), vec![secs(1), secs(3)]);
    assert!(s.events.is_empty());
    // Timer D: 32 s after the final response.
    s.run_until(ms(32_999));
    assert!(s.events.is_empty());
    s.run_until(secs(33));
    assert!(
        matches!(&s.take_events()[..], [(at, TxEvent::Terminated(TxKey::Client(key)))] if *at == secs(33) && *key == k)
    );
    // Afterwards the response is a stray.
    assert!(s.recv_resp(response_to(486, "INVITE", "z9hG4bKd1", "busy")).is_some());
}

#[test]
fn timer_d_is_zero_over_tcp() {
    let mut s = Sim::new();
    s.send(our_request("INVITE", Transport::Tcp, "z9hG4bKd2"), PEER_TCP);
    s.run_until(secs(1));
    assert_eq!(s.recv_resp(response_to(603, "INVITE", "z9hG4bKd2", "x")), None);
    assert_eq!(s.sent_times("ACK"), vec![secs(1)]);
    let ev = s.take_events();
    assert!(matches!(&ev[0].1, TxEvent::Response { response, .. } if response.status == 603));
    assert!(is_terminated(&ev[1].1));
    assert!(s.layer.is_empty());
}

#[test]
fn ack_of_non_2xx_follows_17_1_1_3() {
    let mut s = Sim::new();
    let invite = our_request("INVITE", Transport::Udp, "z9hG4bKack");
    s.send(invite.clone(), PEER_UDP);
    s.take_sent();
    s.recv_resp(response_to(404, "INVITE", "z9hG4bKack", "nf"));
    let sent = s.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.dest, PEER_UDP);
    let Message::Request(ack) = parse(&String::from_utf8_lossy(&sent[0].1.data)) else { panic!("not a request") };
    let h = &ack.headers;
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.uri, invite.uri);
    assert_eq!(h.count(&HeaderName::Via), 1);
    assert_eq!(h.get(&HeaderName::Via), invite.headers.get(&HeaderName::Via));
    assert_eq!(
        h.get_all(&HeaderName::Route).collect::<Vec<_>>(),
        invite.headers.get_all(&HeaderName::Route).collect::<Vec<_>>()
    );
    assert_eq!(h.to().unwrap().tag(), Some("nf"));
    assert_eq!(h.get(&HeaderName::From), invite.headers.get(&HeaderName::From));
    assert_eq!(h.call_id().unwrap(), invite.headers.call_id().unwrap());
    assert_eq!(h.cseq().unwrap(), CSeq { seq: 7, method: Method::Ack });
    assert_eq!(h.max_forwards().unwrap(), Some(70));
    assert_eq!(h.content_length().unwrap(), Some(0));
    assert!(h.get(&HeaderName::Contact).is_none());
}

#[test]
fn timer_e_doubles_capped_at_t2() {
    let mut s = Sim::new();
    s.send(our_request("OPTIONS", Transport::Udp, "z9hG4bKe1"), PEER_UDP);
    s.run_until(ms(31_999));
    // E = 500 ms, 1 s, 2 s, then T2 = 4 s.
    let want = [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500];
    assert_eq!(s.sent_times("OPTIONS"), times(&want));
}

#[test]
fn timer_e_is_t2_in_proceeding() {
    let mut s = Sim::new();
    let k = s.send(our_request("REGISTER", Transport::Udp, "z9hG4bKe2"), PEER_UDP);
    s.run_until(ms(200));
    s.recv_resp(response_to(100, "REGISTER", "z9hG4bKe2", "r"));
    assert_eq!(s.layer.state(&TxKey::Client(k)), Some(TxState::ClientNonInvite(ClientNonInviteState::Proceeding)));
    s.run_until(ms(13_000));
    // The pending E fires at 500 ms, then every T2.
    assert_eq!(s.sent_times("REGISTER"), times(&[0, 500, 4500, 8500, 12500]));
}

#[test]
fn timer_e_absent_over_tcp() {
    let mut s = Sim::new();
    s.send(our_request("OPTIONS", Transport::Tcp, "z9hG4bKe3"), PEER_TCP);
    s.run_until(ms(31_999));
    assert_eq!(s.sent_times("OPTIONS"), times(&[0]));
}

#[test]
fn timer_f_times_out_non_invite() {
    for provisional in [false, true] {
        let mut s = Sim::new();
        let k = s.send(our_request("BYE", Transport::Udp, "z9hG4bKf1"), PEER_UDP);
        if provisional {
            s.recv_resp(response_to(100, "BYE", "z9hG4bKf1", "t"));
            s.take_events();
        }
        s.run_until(ms(31_999));
        assert!(s.events.is_empty());
        s.run_until(secs(32));
        let ev = s.take_events();
        assert!(matches!(&ev[0], (at, TxEvent::ClientTimeout { key }) if *at == secs(32) && *key == k));
        assert!(is_terminated(&ev[1].1));
        assert!(s.layer.is_empty());
    }
}

#[test]
fn timer_k_absorbs_retransmissions_then_terminates() {
    let mut s = Sim::new();
    let k = s.send(our_request("BYE", Transport::Udp, "z9hG4bKk1"), PEER_UDP);
    s.run_until(secs(1));
    s.recv_resp(response_to(200, "BYE", "z9hG4bKk1", "t"));
    assert_eq!(s.take_events().len(), 1);
    s.run_until(secs(3));
    assert_eq!(s.recv_resp(response_to(200, "BYE", "z9hG4bKk1", "t")), None, "absorbed in Completed");
    assert!(s.events.is_empty());
    assert_eq!(s.sent_times("BYE"), times(&[0, 500]), "no retransmission after the final");
    // Timer K = T4 = 5 s after the final.
    s.run_until(ms(5_999));
    assert!(s.events.is_empty());
    s.run_until(secs(6));
    assert!(
        matches!(&s.take_events()[..], [(at, TxEvent::Terminated(TxKey::Client(key)))] if *at == secs(6) && *key == k)
    );
}

#[test]
fn timer_k_is_zero_over_tcp() {
    let mut s = Sim::new();
    s.send(our_request("BYE", Transport::Tcp, "z9hG4bKk2"), PEER_TCP);
    s.recv_resp(response_to(200, "BYE", "z9hG4bKk2", "t"));
    let ev = s.take_events();
    assert!(matches!(&ev[0].1, TxEvent::Response { .. }));
    assert!(is_terminated(&ev[1].1));
    assert!(s.layer.is_empty());
}

#[test]
fn timer_g_retransmits_final_capped_at_t2() {
    let mut s = Sim::new();
    let (k, r) = Sim::server_key(s.recv(invite_from_peer("z9hG4bKg1"), PEER_UDP));
    s.respond(&k, reply(&r, 486, "srv")).unwrap();
    s.run_until(ms(31_999));
    // G = 500 ms, 1 s, 2 s, then T2 = 4 s, until Timer H.
    let want = [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500];
    assert_eq!(s.sent_times("SIP/2.0 486"), times(&want));
    assert!(s.sent.iter().all(|(_, t)| t.dest == PEER_UDP));
}

#[test]
fn timer_g_absent_over_tcp() {
    let mut s = Sim::new();
    let (k, r) = Sim::server_key(s.recv(request("INVITE", Transport::Tcp, "10.0.0.2:5060", "z9hG4bKg2", ""), PEER_TCP));
    s.respond(&k, reply(&r, 486, "srv")).unwrap();
    s.run_until(ms(31_999));
    assert_eq!(s.sent_times("SIP/2.0 486"), times(&[0]));
}

#[test]
fn timer_h_reports_server_timeout() {
    let mut s = Sim::new();
    let (k, r) = Sim::server_key(s.recv(invite_from_peer("z9hG4bKh1"), PEER_UDP));
    s.run_until(secs(2));
    s.respond(&k, reply(&r, 480, "srv")).unwrap();
    s.run_until(ms(33_999));
    assert!(s.events.is_empty());
    s.run_until(secs(34));
    let ev = s.take_events();
    assert!(matches!(&ev[0], (at, TxEvent::ServerTimeout { key }) if *at == secs(34) && *key == k));
    assert!(is_terminated(&ev[1].1));
    assert!(s.layer.is_empty());
}

#[test]
fn timer_i_after_ack_absorbs_then_terminates() {
    let mut s = Sim::new();
    let (k, r) = Sim::server_key(s.recv(invite_from_peer("z9hG4bKi1"), PEER_UDP));
    s.respond(&k, reply(&r, 486, "srv")).unwrap();
    s.run_until(secs(1));
    let ack = request("ACK", Transport::Udp, "10.0.0.2:5060", "z9hG4bKi1", "srv");
    assert!(matches!(s.recv(ack.clone(), PEER_UDP), Incoming::Retransmission), "ACK of a non-2xx is absorbed");
    assert_eq!(s.layer.state(&TxKey::Server(k.clone())), Some(TxState::ServerInvite(ServerInviteState::Confirmed)));
    s.run_until(secs(3));
    assert!(matches!(s.recv(ack, PEER_UDP), Incoming::Retransmission));
    // G stopped at the ACK: the 486 went out at 0 and 500 ms only.
    assert_eq!(s.sent_times("SIP/2.0 486"), times(&[0, 500]));
    // Timer I = T4 = 5 s after the ACK.
    s.run_until(ms(5_999));
    assert!(s.events.is_empty());
    s.run_until(secs(6));
    assert!(
        matches!(&s.take_events()[..], [(at, TxEvent::Terminated(TxKey::Server(key)))] if *at == secs(6) && *key == k)
    );
}

#[test]
fn timer_i_is_zero_over_tcp() {
    let mut s = Sim::new();
    let (k, r) = Sim::server_key(s.recv(request("INVITE", Transport::Tcp, "10.0.0.2:5060", "z9hG4bKi2", ""), PEER_TCP));
    s.respond(&k, reply(&r, 486, "srv")).unwrap();
    let ack = request("ACK", Transport::Tcp, "10.0.0.2:5060", "z9hG4bKi2", "srv");
    assert!(matches!(s.recv(ack, PEER_TCP), Incoming::Retransmission));
    assert!(matches!(&s.take_events()[..], [(_, TxEvent::Terminated(_))]));
    assert!(s.layer.is_empty());
}

#[test]
fn timer_j_answers_retransmissions_then_terminates() {
    let mut s = Sim::new();
    let bye = request("BYE", Transport::Udp, "10.0.0.2:5060", "z9hG4bKj1", "srv");
    let (k, r) = Sim::server_key(s.recv(bye.clone(), PEER_UDP));
    s.respond(&k, reply(&r, 200, "srv")).unwrap();
    s.run_until(secs(10));
    assert!(matches!(s.recv(bye, PEER_UDP), Incoming::Retransmission));
    assert_eq!(s.sent_times("SIP/2.0 200"), vec![secs(0), secs(10)]);
    // Timer J = 64*T1 = 32 s after the final response.
    s.run_until(ms(31_999));
    assert!(s.events.is_empty());
    s.run_until(secs(32));
    assert!(
        matches!(&s.take_events()[..], [(at, TxEvent::Terminated(TxKey::Server(key)))] if *at == secs(32) && *key == k)
    );
}

#[test]
fn timer_j_is_zero_over_tcp() {
    let mut s = Sim::new();
    let bye = request("BYE", Transport::Tcp, "10.0.0.2:5060", "z9hG4bKj2", "srv");
    let (k, r) = Sim::server_key(s.recv(bye, PEER_TCP));
    s.respond(&k, reply(&r, 200, "srv")).unwrap();
    assert!(matches!(&s.take_events()[..], [(_, TxEvent::Terminated(_))]));
    assert!(s.layer.is_empty());
}

#[test]
fn timer_l_accepted_absorbs_invite_retransmissions() {
    let mut s = Sim::new();
    let (k, r) = Sim::server_key(s.recv(invite_from_peer("z9hG4bKl1"), PEER_UDP));
    s.respond(&k, reply(&r, 200, "srv")).unwrap();
    assert_eq!(s.layer.state(&TxKey::Server(k.clone())), Some(TxState::ServerInvite(ServerInviteState::Accepted)));
    s.take_sent();
    s.run_until(secs(1));
    assert!(matches!(s.recv(invite_from_peer("z9hG4bKl1"), PEER_UDP), Incoming::Retransmission));
    assert!(s.sent.is_empty(), "the transaction does not retransmit the 2xx (the UA core does)");
    // The UA core's own 2xx retransmission goes through.
    s.respond(&k, reply(&r, 200, "srv")).unwrap();
    assert_eq!(s.take_sent().len(), 1);
    assert_eq!(s.respond(&k, reply(&r, 486, "srv")), Err(TransactionError::AlreadyFinal));
    // Timer L = 64*T1 after the 2xx.
    s.run_until(ms(31_999));
    assert!(s.events.is_empty());
    s.run_until(secs(32));
    assert!(
        matches!(&s.take_events()[..], [(at, TxEvent::Terminated(TxKey::Server(key)))] if *at == secs(32) && *key == k)
    );
}

#[test]
fn timer_m_client_redelivers_2xx_while_accepted() {
    let mut s = Sim::new();
    let k = s.send(our_request("INVITE", Transport::Udp, "z9hG4bKm1"), PEER_UDP);
    s.run_until(secs(1));
    assert_eq!(s.recv_resp(response_to(200, "INVITE", "z9hG4bKm1", "ok")), None);
    assert_eq!(s.layer.state(&TxKey::Client(k.clone())), Some(TxState::ClientInvite(ClientInviteState::Accepted)));
    assert!(s.sent_times("ACK").is_empty(), "the UA, not the transaction, ACKs a 2xx");
    s.run_until(secs(2));
    assert_eq!(s.recv_resp(response_to(200, "INVITE", "z9hG4bKm1", "ok")), None);
    let ev = s.take_events();
    assert_eq!(ev.len(), 2);
    assert!(ev
        .iter()
        .all(|(_, e)| matches!(e, TxEvent::Response { key, response } if *key == k && response.status == 200)));
    // Timer M = 64*T1 after the first 2xx.
    s.run_until(ms(32_999));
    assert!(s.events.is_empty());
    s.run_until(secs(33));
    assert!(
        matches!(&s.take_events()[..], [(at, TxEvent::Terminated(TxKey::Client(key)))] if *at == secs(33) && *key == k)
    );
    // Now a 2xx retransmission is a stray, returned for the UA to re-ACK.
    assert!(s.recv_resp(response_to(200, "INVITE", "z9hG4bKm1", "ok")).is_some());
}

#[test]
fn custom_t1_t2_t4_are_honoured() {
    let cfg = TimerConfig { t1: ms(100), t2: ms(400), t4: secs(1) };
    // A and B.
    let mut s = Sim::with(cfg);
    s.send(our_request("INVITE", Transport::Udp, "z9hG4bKc1"), PEER_UDP);
    s.run_until(secs(10));
    assert_eq!(s.sent_times("INVITE"), times(&[0, 100, 300, 700, 1500, 3100, 6300]));
    assert!(s.events.iter().any(|(at, e)| *at == ms(6400) && is_timeout(e)));
    // E capped at the custom T2, then K = T4.
    let mut s = Sim::with(cfg);
    s.send(our_request("OPTIONS", Transport::Udp, "z9hG4bKc2"), PEER_UDP);
    s.run_until(ms(2000));
    assert_eq!(s.sent_times("OPTIONS"), times(&[0, 100, 300, 700, 1100, 1500, 1900]));
    s.recv_resp(response_to(200, "OPTIONS", "z9hG4bKc2", "o"));
    s.run_until(ms(2999));
    assert!(!s.events.iter().any(|(_, e)| is_terminated(e)));
    s.run_until(ms(3000));
    assert!(s.events.iter().any(|(at, e)| *at == ms(3000) && is_terminated(e)));
    // D stays at 32 s while 64*T1 is shorter.
    assert_eq!(cfg.initial(Timer::D, Transport::Udp), Some(secs(32)));
    let slow = TimerConfig { t1: secs(1), ..cfg };
    assert_eq!(slow.initial(Timer::D, Transport::Udp), Some(secs(64)));
    // G capped at T2, H = 64*T1, on the server side.
    let mut s = Sim::with(cfg);
    let (k, r) = Sim::server_key(s.recv(invite_from_peer("z9hG4bKc3"), PEER_UDP));
    s.respond(&k, reply(&r, 500, "srv")).unwrap();
    s.run_until(ms(2000));
    assert_eq!(s.sent_times("SIP/2.0 500"), times(&[0, 100, 300, 700, 1100, 1500, 1900]));
    s.run_until(secs(7));
    assert!(s.events.iter().any(|(at, e)| *at == ms(6400) && matches!(e, TxEvent::ServerTimeout { .. })));
}

#[test]
fn timer_table_matches_rfc_table_4() {
    let c = TimerConfig::default();
    let (u, t) = (Transport::Udp, Transport::Tcp);
    assert_eq!(c.initial(Timer::A, u), Some(ms(500)));
    assert_eq!(c.initial(Timer::A, t), None);
    assert_eq!(c.initial(Timer::B, t), Some(secs(32)));
    assert_eq!(c.initial(Timer::D, t), Some(Duration::ZERO));
    assert_eq!(c.initial(Timer::F, u), Some(secs(32)));
    assert_eq!(c.initial(Timer::H, t), Some(secs(32)));
    assert_eq!(c.initial(Timer::I, u), Some(secs(5)));
    assert_eq!(c.initial(Timer::J, u), Some(secs(32)));
    assert_eq!(c.initial(Timer::J, t), Some(Duration::ZERO));
    assert_eq!(c.initial(Timer::K, u), Some(secs(5)));
    assert_eq!(c.initial(Timer::L, u), Some(secs(32)));
    assert_eq!(c.initial(Timer::M, t), Some(secs(32)));
}

// --- matching ----------------------------------------------------------------------

#[test]
fn trying_sent_at_once_for_invite() {
    let mut s = Sim::new();
    let (_, r) = Sim::server_key(s.recv(invite_from_peer("z9hG4bKt1"), PEER_UDP));
    let sent = s.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, Duration::ZERO);
    assert_eq!(sent[0].1.dest, PEER_UDP);
    let Message::Response(trying) = parse(&String::from_utf8_lossy(&sent[0].1.data)) else { panic!("not a response") };
    assert_eq!(trying.status, 100);
    assert_eq!(trying.headers.get(&HeaderName::Via), r.headers.get(&HeaderName::Via));
    assert_eq!(trying.headers.to().unwrap().tag(), None);
    assert_eq!(trying.headers.cseq().unwrap(), r.headers.cseq().unwrap());
    // A non-INVITE gets nothing until the TU answers.
    s.recv(request("OPTIONS", Transport::Udp, "10.0.0.2:5060", "z9hG4bKt2", ""), PEER_UDP);
    assert!(s.sent.is_empty());
}

#[test]
fn magic_cookie_retransmission_gets_last_response() {
    let mut s = Sim::new();
    let (k, r) = Sim::server_key(s.recv(invite_from_peer("z9hG4bKr1"), PEER_UDP));
    assert_eq!(k.branch(), "z9hG4bKr1");
    assert_eq!(k.sent_by(), "10.0.0.2:5060");
    assert_eq!(k.method(), &Method::Invite);
    // Before the TU answers, a retransmission gets the 100 again.
    assert!(matches!(s.recv(invite_from_peer("z9hG4bKr1"), PEER_UDP), Incoming::Retransmission));
    s.respond(&k, reply(&r, 180, "srv")).unwrap();
    assert!(matches!(s.recv(invite_from_peer("z9hG4bKr1"), PEER_UDP), Incoming::Retransmission));
    let lines: Vec<String> = s.take_sent().iter().map(|(_, t)| first_line(&t.data)).collect();
    assert_eq!(lines, ["SIP/2.0 100 Trying", "SIP/2.0 100 Trying", "SIP/2.0 180 Ringing", "SIP/2.0 180 Ringing"]);
}

#[test]
fn non_invite_retransmission_gets_last_response() {
    let mut s = Sim::new();
    let opt = request("OPTIONS", Transport::Udp, "10.0.0.2:5060", "z9hG4bKr2", "");
    let (k, r) = Sim::server_key(s.recv(opt.clone(), PEER_UDP));
    assert!(matches!(s.recv(opt.clone(), PEER_UDP), Incoming::Retransmission));
    assert!(s.sent.is_empty(), "Trying: absorbed without a response");
    s.respond(&k, reply(&r, 100, "")).unwrap();
    assert!(matches!(s.recv(opt.clone(), PEER_UDP), Incoming::Retransmission));
    s.respond(&k, reply(&r, 200, "srv")).unwrap();
    assert!(matches!(s.recv(opt, PEER_UDP), Incoming::Retransmission));
    let lines: Vec<String> = s.take_sent().iter().map(|(_, t)| first_line(&t.data)).collect();
    assert_eq!(lines, ["SIP/2.0 100 Trying", "SIP/2.0 100 Trying", "SIP/2.0 200 OK", "SIP/2.0 200 OK"]);
}

#[test]
fn same_branch_other_sent_by_is_a_new_transaction() {
    let mut s = Sim::new();
    let (k1, _) = Sim::server_key(s.recv(invite_from_peer("z9hG4bKs1"), PEER_UDP));
    let other = request("INVITE", Transport::Udp, "10.0.0.3:5060", "z9hG4bKs1", "");
    let (k2, _) = Sim::server_key(s.recv(other, dest(Transport::Udp, 3)));
    assert_ne!(k1, k2);
    // Same host, other port: also a different sent-by.
    let other_port = request("INVITE", Transport::Udp, "10.0.0.2:5070", "z9hG4bKs1", "");
    assert!(matches!(s.recv(other_port, PEER_UDP), Incoming::New { .. }));
    // Same branch and sent-by but another method: another transaction.
    let opt = request("OPTIONS", Transport::Udp, "10.0.0.2:5060", "z9hG4bKs1", "");
    assert!(matches!(s.recv(opt, PEER_UDP), Incoming::New { .. }));
    assert_eq!(s.layer.len(), 4);
}

#[test]
fn cancel_matches_its_invite() {
    let mut s = Sim::new();
    let (ik, _) = Sim::server_key(s.recv(invite_from_peer("z9hG4bKx1"), PEER_UDP));
    let cancel = request("CANCEL", Transport::Udp, "10.0.0.2:5060", "z9hG4bKx1", "");
    let Incoming::Cancel { key, invite, request } = s.recv(cancel.clone(), PEER_UDP) else { panic!("not a CANCEL") };
    assert_eq!(invite, Some(ik.clone()));
    assert_eq!(key.method(), &Method::Cancel);
    assert_ne!(key, ik);
    assert_eq!(request.method, Method::Cancel);
    // The CANCEL is its own transaction: its retransmission is absorbed by it.
    assert!(matches!(s.recv(cancel, PEER_UDP), Incoming::Retransmission));
    s.respond(&key, reply(&request, 200, "srv")).unwrap();
    assert_eq!(s.layer.state(&TxKey::Server(ik)), Some(TxState::ServerInvite(ServerInviteState::Proceeding)));
}

#[test]
fn cancel_after_final_or_unknown_has_no_invite() {
    let mut s = Sim::new();
    let (ik, r) = Sim::server_key(s.recv(invite_from_peer("z9hG4bKx2"), PEER_UDP));
    s.respond(&ik, reply(&r, 486, "srv")).unwrap();
    let cancel = request("CANCEL", Transport::Udp, "10.0.0.2:5060", "z9hG4bKx2", "");
    assert!(matches!(s.recv(cancel, PEER_UDP), Incoming::Cancel { invite: None, .. }));
    let stray = request("CANCEL", Transport::Udp, "10.0.0.2:5060", "z9hG4bKnone", "");
    assert!(matches!(s.recv(stray, PEER_UDP), Incoming::Cancel { invite: None, .. }));
}

#[test]
fn ack_for_non_2xx_is_absorbed() {
    let mut s = Sim::new();
    let (k, r) = Sim::server_key(s.recv(invite_from_peer("z9hG4bKn1"), PEER_UDP));
    s.respond(&k, reply(&r, 404, "srv")).unwrap();
    let ack = request("ACK", Transport::Udp, "10.0.0.2:5060", "z9hG4bKn1", "srv");
    assert!(matches!(s.recv(ack, PEER_UDP), Incoming::Retransmission));
    assert_eq!(s.layer.state(&TxKey::Server(k)), Some(TxState::ServerInvite(ServerInviteState::Confirmed)));
}

#[test]
fn ack_for_2xx_is_returned() {
    let mut s = Sim::new();
    let (k, r) = Sim::server_key(s.recv(invite_from_peer("z9hG4bKo1"), PEER_UDP));
    s.respond(&k, reply(&r, 200, "srv")).unwrap();
    // A 2xx ACK carries a new branch: no transaction matches.
    let ack = request("ACK", Transport::Udp, "10.0.0.2:5060", "z9hG4bKo1-ack", "srv");
    assert!(matches!(s.recv(ack, PEER_UDP), Incoming::Ack { request } if request.method == Method::Ack));
    // One reusing the INVITE's branch reaches the Accepted transaction, which passes it up.
    let ack = request("ACK", Transport::Udp, "10.0.0.2:5060", "z9hG4bKo1", "srv");
    assert!(matches!(s.recv(ack, PEER_UDP), Incoming::Ack { .. }));
    assert_eq!(s.layer.state(&TxKey::Server(k)), Some(TxState::ServerInvite(ServerInviteState::Accepted)));
}

#[test]
fn rfc2543_fallback_matches_retransmission_and_ack() {
    let mut s = Sim::new();
    // No branch at all, then an old-style branch without the magic cookie.
    for branch in ["", "1a2b3c"] {
        let invite = request("INVITE", Transport::Udp, "10.0.0.2:5060", branch, "");
        let (k, r) = Sim::server_key(s.recv(invite.clone(), PEER_UDP));
        assert!(k.branch().starts_with("rfc2543;"));
        assert!(matches!(s.recv(invite.clone(), PEER_UDP), Incoming::Retransmission));
        s.respond(&k, reply(&r, 486, "srv")).unwrap();
        assert!(matches!(s.recv(invite, PEER_UDP), Incoming::Retransmission));
        // An ACK with another To tag does not match our response.
        let wrong = request("ACK", Transport::Udp, "10.0.0.2:5060", branch, "other");
        assert!(matches!(s.recv(wrong, PEER_UDP), Incoming::Ack { .. }));
        let ack = request("ACK", Transport::Udp, "10.0.0.2:5060", branch, "srv");
        assert!(matches!(s.recv(ack, PEER_UDP), Incoming::Retransmission));
        assert_eq!(s.layer.state(&TxKey::Server(k)), Some(TxState::ServerInvite(ServerInviteState::Confirmed)));
        let lines: Vec<String> = s.take_sent().iter().map(|(_, t)| first_line(&t.data)).collect();
        assert_eq!(
            lines,
            ["SIP/2.0 100 Trying", "SIP/2.0 100 Trying", "SIP/2.0 486 Busy Here", "SIP/2.0 486 Busy Here"]
        );
    }
    // Another Call-ID is another transaction.
    let mut other = request("INVITE", Transport::Udp, "10.0.0.2:5060", "", "");
    other.headers.set(HeaderName::CallId, "call-2@10.0.0.2");
    assert!(matches!(s.recv(other, PEER_UDP), Incoming::New { .. }));
}

#[test]
fn rfc2543_cancel_matches_its_invite() {
    let mut s = Sim::new();
    let (ik, _) = Sim::server_key(s.recv(request("INVITE", Transport::Udp, "10.0.0.2:5060", "", ""), PEER_UDP));
    let cancel = request("CANCEL", Transport::Udp, "10.0.0.2:5060", "", "");
    assert!(matches!(s.recv(cancel.clone(), PEER_UDP), Incoming::Cancel { invite: Some(k), .. } if k == ik));
    assert!(matches!(s.recv(cancel, PEER_UDP), Incoming::Retransmission));
}

#[test]
fn client_responses_match_branch_and_method() {
    let mut s = Sim::new();
    let invite = our_request("INVITE", Transport::Udp, "z9hG4bKq1");
    let ik = s.send(invite.clone(), PEER_UDP);
    let ck = s.send(build_cancel(&invite), PEER_UDP);
    assert_eq!(ik.branch(), ck.branch());
    assert_ne!(ik, ck);
    s.recv_resp(response_to(200, "CANCEL", "z9hG4bKq1", "t"));
    s.recv_resp(response_to(487, "INVITE", "z9hG4bKq1", "t"));
    let ev = s.take_events();
    assert!(matches!(&ev[0].1, TxEvent::Response { key, response } if *key == ck && response.status == 200));
    assert!(matches!(&ev[1].1, TxEvent::Response { key, response } if *key == ik && response.status == 487));
}

#[test]
fn stray_response_is_returned() {
    let mut s = Sim::new();
    s.send(our_request("INVITE", Transport::Udp, "z9hG4bKy1"), PEER_UDP);
    let stray = s.recv_resp(response_to(200, "INVITE", "z9hG4bKother", "t"));
    assert_eq!(stray.map(|r| r.status), Some(200));
    // Same branch, other method: also unmatched.
    assert!(s.recv_resp(response_to(200, "BYE", "z9hG4bKy1", "t")).is_some());
    let mut no_via = response_to(200, "INVITE", "z9hG4bKy1", "t");
    no_via.headers.remove(&HeaderName::Via);
    assert!(s.recv_resp(no_via).is_some());
    assert!(s.events.is_empty());
}

#[test]
fn transport_error_fails_transactions_to_that_destination() {
    let mut s = Sim::new();
    let ik = s.send(our_request("INVITE", Transport::Tcp, "z9hG4bKz1"), PEER_TCP);
    let bk = s.send(our_request("BYE", Transport::Tcp, "z9hG4bKz2"), PEER_TCP);
    let (sk, _) =
        Sim::server_key(s.recv(request("INVITE", Transport::Tcp, "10.0.0.2:5060", "z9hG4bKz3", ""), PEER_TCP));
    let elsewhere = s.send(our_request("OPTIONS", Transport::Udp, "z9hG4bKz4"), PEER_UDP);
    s.layer.transport_error(&PEER_TCP, s.now);
    s.drain();
    let ev = s.take_events();
    assert!(ev.iter().any(|(_, e)| matches!(e, TxEvent::ClientTransportError { key } if *key == ik)));
    assert!(ev.iter().any(|(_, e)| matches!(e, TxEvent::ClientTransportError { key } if *key == bk)));
    assert!(ev.iter().any(|(_, e)| matches!(e, TxEvent::ServerTransportError { key } if *key == sk)));
    assert_eq!(ev.iter().filter(|(_, e)| is_terminated(e)).count(), 3);
    assert_eq!(s.layer.len(), 1);
    assert!(s.layer.state(&TxKey::Client(elsewhere)).is_some());
}

#[test]
fn respond_refuses_what_it_cannot_send() {
    let mut s = Sim::new();
    let (k, r) =
        Sim::server_key(s.recv(request("OPTIONS", Transport::Udp, "10.0.0.2:5060", "z9hG4bKw1", ""), PEER_UDP));
    assert_eq!(s.respond(&k, reply(&r, 99, "x")), Err(TransactionError::BadStatus(99)));
    s.respond(&k, reply(&r, 200, "srv")).unwrap();
    assert_eq!(s.respond(&k, reply(&r, 200, "srv")), Err(TransactionError::AlreadyFinal));
    s.run_until(secs(40));
    assert_eq!(s.respond(&k, reply(&r, 200, "srv")), Err(TransactionError::NoTransaction));
}

#[test]
fn poll_timeout_skips_cancelled_timers() {
    let mut s = Sim::new();
    s.send(our_request("OPTIONS", Transport::Udp, "z9hG4bKp1"), PEER_UDP);
    assert_eq!(s.layer.poll_timeout(), Some(s.t0 + ms(500)));
    s.recv_resp(response_to(200, "OPTIONS", "z9hG4bKp1", "t"));
    // E and F are cancelled; K is next.
    assert_eq!(s.layer.poll_timeout(), Some(s.t0 + secs(5)));
}

#[test]
fn many_transactions_keep_their_own_timers() {
    const N: u64 = 1000;
    let mut s = Sim::new();
    for i in 0..N {
        s.now = s.t0 + ms(i);
        let (k, r) = Sim::server_key(
            s.recv(request("OPTIONS", Transport::Udp, "10.0.0.2:5060", &branch_from(7, i), ""), PEER_UDP),
        );
        s.respond(&k, reply(&r, 200, "srv")).unwrap();
    }
    assert_eq!(s.layer.len(), N as usize);
    s.run_until(ms(32_499));
    assert_eq!(s.layer.len(), 500);
    s.run_until(ms(32_999));
    assert!(s.layer.is_empty());
    assert_eq!(s.layer.poll_timeout(), None);
}

#[test]
fn build_cancel_follows_9_1() {
    let invite = our_request("INVITE", Transport::Udp, "z9hG4bKc9");
    let c = build_cancel(&invite);
    let h = &c.headers;
    assert_eq!(c.method, Method::Cancel);
    assert_eq!(c.uri, invite.uri);
    assert_eq!(h.count(&HeaderName::Via), 1);
    assert_eq!(h.get(&HeaderName::Via), invite.headers.get(&HeaderName::Via));
    assert_eq!(h.get_all(&HeaderName::Route).count(), 1);
    assert_eq!(h.get(&HeaderName::To), invite.headers.get(&HeaderName::To));
    assert_eq!(h.get(&HeaderName::From), invite.headers.get(&HeaderName::From));
    assert_eq!(h.call_id().unwrap(), invite.headers.call_id().unwrap());
    assert_eq!(h.cseq().unwrap(), CSeq { seq: 7, method: Method::Cancel });
    assert_eq!(h.max_forwards().unwrap(), Some(70));
    assert!(c.body.is_empty());
    // It serializes and parses back.
    assert!(matches!(parse(&Message::Request(c).to_string()), Message::Request(_)));
}

#[test]
fn branch_from_is_unique_and_carries_the_cookie() {
    let mut seen = HashSet::new();
    for seed in [0u64, 1, u64::MAX] {
        for counter in 0..1000 {
            let b = branch_from(seed, counter);
            assert!(b.starts_with(MAGIC_COOKIE));
            assert!(crate::grammar::is_token(&b));
            assert!(seen.insert(b));
        }
    }
}
