//! `EngineSim`: whole calls through the [`Engine`] and our [`UserAgent`] against a peer
//! UA, wired in memory, on a clock the test advances. No sockets, no sleeping: a
//! 32-second timer fires in microseconds.

use super::*;
use bytes::Bytes;
use dialtone_api::http::{Action as ApiAction, Originate};
use dialtone_api::store::CallStatus;
use dialtone_sip::auth::Credentials;
use dialtone_sip::ua::UserAgent;
use dialtone_sip::ua::{make_response, CallRef, EndReason, Outgoing, UaConfig, UaEvent};
use dialtone_sip::Destination;
use dialtone_sip::{parse_datagram, HeaderName, Message, Method, Transport};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const OURS: &str = "127.0.0.1:5060";
const PEER: &str = "127.0.0.1:5070";

fn dest(addr: &str) -> Destination {
    Destination { transport: Transport::Udp, addr: addr.parse().unwrap() }
}

/// What the wire does with one message from us to the peer.
enum Verdict {
    Deliver,
    Drop,
    /// The peer's network answers this itself (a proxy's 407).
    Answer(Bytes),
}

type Intercept = Box<dyn FnMut(&Message) -> Verdict>;

struct EngineSim {
    now: Instant,
    start: Instant,
    engine: Engine,
    ua: UserAgent,
    peer: UserAgent,
    peer_events: Vec<UaEvent>,
    actions: Vec<Action>,
    replies: Vec<(u64, Result<(), Refusal>)>,
    /// Applied to each message from us; `None` delivers everything.
    intercept: Option<Intercept>,
    /// Drop everything the peer sends.
    peer_mute: bool,
    /// Ports another program holds.
    busy: HashSet<u16>,
    /// (seconds since start, "> " ours or "< " the peer's, first line) of every message.
    wire: Vec<(f64, String)>,
    next_cmd: u64,
}

fn config() -> Config {
    Config {
        inbound: crate::config::Inbound::Echo,
        media_ip: "127.0.0.1".parse().unwrap(),
        learn_media: false,
        rtp_ports: (20000, 20099),
        answer_after: Duration::ZERO,
        record_all: false,
        store: true,
        trunk: Some(dest(PEER)),
        trunk_host: Some(PEER.into()),
        trunk_user: Some("sim".into()),
        rtp_timeout: Some(Duration::from_secs(60)),
        seed: 7,
        refer: crate::config::ReferPolicy::default(),
        trunk_alternates: Vec::new(),
        srtp: None,
        srtp_any_transport: false,
        max_calls: None,
        trunks: Vec::new(),
        inbound_explicit: false,
    }
}

fn ua_config(addr: &str, seed: u64) -> UaConfig {
    let a = addr.parse().unwrap();
    UaConfig { udp_addr: Some(a), tcp_addr: Some(a), seed, ..UaConfig::default() }
}

const SDP: &[u8] =
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

impl EngineSim {
    fn new(cfg: Config, ours: UaConfig, peer: UaConfig) -> EngineSim {
        let now = Instant::now();
        EngineSim {
            now,
            start: now,
            engine: Engine::new(cfg),
            ua: UserAgent::new(ours),
            peer: UserAgent::new(peer),
            peer_events: Vec::new(),
            actions: Vec::new(),
            replies: Vec::new(),
            intercept: None,
            peer_mute: false,
            busy: HashSet::new(),
            wire: Vec::new(),
            next_cmd: 0,
        }
    }

    fn default() -> EngineSim {
        EngineSim::new(config(), ua_config(OURS, 1), ua_config(PEER, 2))
    }

    fn secs(&self) -> f64 {
        (self.now - self.start).as_secs_f64()
    }

    fn feed(&mut self, ev: Event) {
        self.engine.handle(self.now, ev, &mut self.ua);
        self.drain_engine();
    }

    /// Carries out the engine's actions as a driver would: ports bind unless busy; the
    /// rest is kept for the test to look at.
    fn drain_engine(&mut self) {
        while let Some(a) = self.engine.poll_action() {
            match a {
                Action::OpenPort(p) => {
                    let ev = if self.busy.contains(&p) { Event::PortBusy(p) } else { Event::PortOpened(p) };
                    self.engine.handle(self.now, ev, &mut self.ua);
                }
                Action::Reply(id, r) => self.replies.push((id, r)),
                a => self.actions.push(a),
            }
        }
    }

    fn command(&mut self, cmd: Command) -> Result<(), Refusal> {
        self.next_cmd += 1;
        let id = self.next_cmd;
        self.feed(Event::Command(id, cmd));
        let at = self.replies.iter().position(|(i, _)| *i == id).expect("every command is answered at once");
        self.replies.remove(at).1
    }

    fn act(&mut self, id: &str, action: ApiAction) -> Result<(), Refusal> {
        self.command(Command::Act(id.into(), action))
    }

    /// Delivers messages both ways and feeds our UA's events to the engine until all is quiet.
    fn settle(&mut self) {
        for _ in 0..100 {
            let mut moved = false;
            while let Some(ev) = self.ua.poll_event() {
                moved = true;
                self.feed(Event::Sip(ev));
            }
            while let Some(t) = self.ua.poll_transmit() {
                moved = true;
                let msg = parse_datagram(t.data.clone()).expect("we send what parses");
                self.wire.push((self.secs(), format!("> {}", first_line(&t.data))));
                let verdict = self.intercept.as_mut().map_or(Verdict::Deliver, |f| f(&msg));
                match verdict {
                    Verdict::Deliver => self.peer.on_datagram(t.data, dest(OURS), self.now),
                    Verdict::Drop => {}
                    Verdict::Answer(b) => {
                        self.wire.push((self.secs(), format!("< {}", first_line(&b))));
                        self.ua.on_datagram(b, dest(PEER), self.now);
                    }
                }
            }
            while let Some(t) = self.peer.poll_transmit() {
                moved = true;
                if !self.peer_mute {
                    self.wire.push((self.secs(), format!("< {}", first_line(&t.data))));
                    self.ua.on_datagram(t.data, dest(PEER), self.now);
                }
            }
            while let Some(e) = self.peer.poll_event() {
                moved = true;
                self.peer_events.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("the exchange never settles");
    }

    /// Advances the clock by `d`, firing every timer (both UAs', the engine's) in order.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..100_000 {
            self.settle();
            let next = [self.ua.poll_timeout(), self.peer.poll_timeout(), self.engine.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    self.ua.handle_timeout(self.now);
                    self.peer.handle_timeout(self.now);
                    self.engine.handle_timeout(self.now, &mut self.ua);
                    self.drain_engine();
                }
                _ => {
                    self.now = end;
                    self.settle();
                    return;
                }
            }
        }
        panic!("timers keep firing");
    }

    fn take_peer_events(&mut self) -> Vec<UaEvent> {
        std::mem::take(&mut self.peer_events)
    }

    fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// The peer's incoming call, from its events.
    fn peer_incoming(&mut self) -> CallRef {
        let ev = self.take_peer_events();
        ev.iter()
            .find_map(|e| match e {
                UaEvent::IncomingCall { call, .. } => Some(*call),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no incoming call at the peer: {ev:?}"))
    }

    /// Places an API call and has the peer answer it; returns the peer's handle.
    fn live_api_call(&mut self, id: &str) -> CallRef {
        self.command(Command::Originate(originate(id))).unwrap();
        self.settle();
        let theirs = self.peer_incoming();
        self.peer.ring(theirs, 180, None, self.now).unwrap();
        self.peer.answer(theirs, Bytes::from_static(SDP), self.now).unwrap();
        self.settle();
        theirs
    }

    fn statuses(&self, id: &str) -> Vec<(CallStatus, Option<String>)> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Persist(Persist::Status { id: i, to, reason, .. }) if i == id => Some((*to, reason.clone())),
                _ => None,
            })
            .collect()
    }

    fn sent(&self, prefix: &str) -> Vec<f64> {
        self.wire.iter().filter(|(_, l)| l.starts_with(prefix)).map(|(t, _)| *t).collect()
    }
}

fn first_line(b: &[u8]) -> String {
    String::from_utf8_lossy(b).lines().next().unwrap_or("").to_string()
}

fn originate(id: &str) -> Originate {
    Originate {
        from_display_name: None,
        id: id.into(),
        phone_number: "+15551234567".into(),
        from_number: None,
        record: false,
        agent_url: None,
        agent_format: None,
        contact_id: Some("c-1".into()),
        permit: None,
        sip_headers: Vec::new(),
        ring_timeout: None,
        max_duration: None,
        early_media: false,
        machine_detection: None,
    }
}

fn to_us(body: &'static [u8]) -> Outgoing {
    Outgoing {
        request_uri: format!("sip:dialtone@{OURS}"),
        from: format!("<sip:alice@{PEER}>"),
        to: format!("<sip:+15550001111@{OURS}>"),
        dest: dest(OURS),
        body: (!body.is_empty()).then(|| Bytes::from_static(body)),
        extra: vec![],
        alternates: Vec::new(),
        credentials: None,
    }
}

fn media_started(actions: &[Action]) -> Option<&MediaStart> {
    actions.iter().find_map(|a| match a {
        Action::StartMedia(m) => Some(&**m),
        _ => None,
    })
}

#[test]
fn inbound_call_is_answered_with_echo_then_ended_by_the_callers_bye() {
    let mut sim = EngineSim::default();
    let theirs = sim.peer.invite(to_us(SDP), sim.now).unwrap();
    sim.settle();
    let ev = sim.take_peer_events();
    assert!(ev.iter().any(|e| matches!(e, UaEvent::Progress { response, .. } if response.status == 180)), "{ev:?}");
    assert!(ev.iter().any(|e| matches!(e, UaEvent::Answered { .. })), "{ev:?}");
    let actions = sim.take_actions();
    let id = actions
        .iter()
        .find_map(|a| match a {
            Action::Persist(Persist::Inbound { id, caller, called, org, referred_by, .. }) => {
                assert_eq!((caller.as_str(), called.as_deref()), ("alice", Some("+15550001111")));
                assert_eq!((org.as_str(), referred_by), (dialtone_api::store::DEFAULT_ORG, &None));
                Some(id.clone())
            }
            _ => None,
        })
        .expect("the inbound call is kept");
    let m = media_started(&actions).expect("media starts at the answer");
    assert_eq!(m.source, SourceSpec::Echo);
    assert_eq!(m.api_id.as_deref(), Some(id.as_str()));
    sim.actions = actions;
    assert_eq!(sim.statuses(&id), [(CallStatus::Ringing, None), (CallStatus::InProgress, None)]);
    sim.actions.clear();

    sim.peer.hangup(theirs, sim.now).unwrap();
    sim.settle();
    assert!(sim.engine.calls().is_empty());
    assert!(sim.actions.iter().any(|a| matches!(a, Action::EndMedia(_, Some(20000)))), "{:?}", sim.actions);
    assert_eq!(sim.statuses(&id), [(CallStatus::Completed, None)]);
    assert_eq!(sim.engine.counters().completed, 1);
    assert_eq!(sim.engine.free_ports(), 50, "the port went back");
}

#[test]
fn inbound_call_without_an_offer_gets_ours_and_media_starts_at_the_ack() {
    let mut sim = EngineSim::default();
    sim.peer.invite(to_us(b""), sim.now).unwrap();
    sim.settle();
    let answered = sim.take_peer_events().into_iter().find_map(|e| match e {
        UaEvent::Answered { response, .. } => Some(response),
        _ => None,
    });
    let body = answered.expect("answered").body.clone();
    assert!(std::str::from_utf8(&body).unwrap().contains("m=audio 20000 RTP/AVP"), "our offer in the 2xx");
    // The peer UA acked without an answer: no usable media, and no crash.
    assert!(media_started(&sim.actions).is_none());
}

#[test]
fn api_call_is_challenged_rung_answered_and_hung_up() {
    let mut ours = ua_config(OURS, 1);
    ours.credentials = Some(Credentials::new("sim", "secret"));
    let mut sim = EngineSim::new(config(), ours, ua_config(PEER, 2));
    // The trunk's proxy challenges the first INVITE (RFC 3261 §22.3) and absorbs its ACK.
    let mut challenged = false;
    sim.intercept = Some(Box::new(move |m| match m {
        Message::Request(r)
            if r.method == Method::Invite && r.headers.get(&HeaderName::ProxyAuthorization).is_none() =>
        {
            challenged = true;
            let mut resp = make_response(r, 407, "Proxy Authentication Required", Some("proxy"));
            resp.headers.push(HeaderName::ProxyAuthenticate, "Digest realm=\"sim\", nonce=\"n0nce\", qop=\"auth\"");
            Verdict::Answer(Message::Response(resp).to_bytes())
        }
        Message::Request(r)
            if r.method == Method::Ack && challenged && r.headers.get(&HeaderName::ProxyAuthorization).is_none() =>
        {
            Verdict::Drop
        }
        _ => Verdict::Deliver,
    }));
    assert_eq!(sim.command(Command::Originate(originate("call_a"))), Ok(()));
    sim.settle();
    let ev = sim.take_peer_events();
    let Some(UaEvent::IncomingCall { call: theirs, request, .. }) = ev.into_iter().next() else { panic!("no INVITE") };
    assert!(request.headers.get(&HeaderName::ProxyAuthorization).is_some(), "sent again with credentials");
    assert_eq!(request.uri().unwrap().to_string(), "sip:+15551234567@127.0.0.1:5070");
    assert!(sim.wire.iter().any(|(_, l)| l.starts_with("< SIP/2.0 407")));

    // Before the answer there is no media to steer, and a hold has no dialog to use.
    assert!(matches!(sim.act("call_a", ApiAction::Dtmf("1".into())), Err(Refusal::NotLive(_))));
    assert!(matches!(sim.act("call_a", ApiAction::Hold(true)), Err(Refusal::NotLive(_))));
    assert!(matches!(sim.act("call_nope", ApiAction::Hangup), Err(Refusal::NotLive(_))));

    sim.peer.ring(theirs, 180, None, sim.now).unwrap();
    sim.settle();
    assert_eq!(sim.statuses("call_a"), [(CallStatus::Ringing, None)]);
    sim.peer.answer(theirs, Bytes::from_static(SDP), sim.now).unwrap();
    sim.settle();
    let m = media_started(&sim.actions).expect("media at the answer");
    assert_eq!(m.source, SourceSpec::Silence, "an API call without an agent hears silence, never the echo");
    assert_eq!(sim.act("call_a", ApiAction::Dtmf("12#".into())), Ok(()));
    assert!(sim.actions.iter().any(|a| matches!(a, Action::Media(_, MediaCommand::Dtmf(d)) if d == "12#")));

    assert_eq!(sim.act("call_a", ApiAction::Hangup), Ok(()));
    sim.settle();
    let ev = sim.take_peer_events();
    assert!(ev.iter().any(|e| matches!(e, UaEvent::Terminated { reason: EndReason::RemoteBye, .. })), "{ev:?}");
    assert_eq!(sim.statuses("call_a").last(), Some(&(CallStatus::Completed, None)));
    assert!(sim.engine.by_api_id("call_a").is_none());
    // Gone now: the engine says so (409), not a guess in the handler.
    assert!(matches!(sim.act("call_a", ApiAction::Hold(true)), Err(Refusal::NotLive(_))));
}

#[test]
fn api_call_to_a_busy_number_ends_busy() {
    let mut sim = EngineSim::default();
    sim.command(Command::Originate(originate("call_b"))).unwrap();
    sim.settle();
    let theirs = sim.peer_incoming();
    sim.peer.reject(theirs, 486, sim.now).unwrap();
    sim.settle();
    assert_eq!(sim.statuses("call_b"), [(CallStatus::Busy, Some("Busy Here".into()))]);
    assert_eq!(sim.engine.free_ports(), 50);
}

#[test]
fn no_trunk_or_no_port_fails_the_call_with_a_reason() {
    let mut cfg = config();
    cfg.trunk = None;
    let mut sim = EngineSim::new(cfg, ua_config(OURS, 1), ua_config(PEER, 2));
    assert!(matches!(sim.command(Command::Originate(originate("call_c"))), Err(Refusal::Unavailable(_))));
    assert_eq!(sim.statuses("call_c"), [(CallStatus::Failed, Some("no trunk".into()))]);

    // Every port is held by another program: four tries, then 503.
    let mut sim = EngineSim::default();
    sim.busy = (20000..20100).collect();
    sim.peer.invite(to_us(SDP), sim.now).unwrap();
    sim.settle();
    let ev = sim.take_peer_events();
    assert!(
        ev.iter().any(|e| matches!(e, UaEvent::Terminated { reason: EndReason::Rejected { status: 503, .. }, .. })),
        "{ev:?}"
    );
    assert_eq!(sim.engine.counters().refused, 1);
    assert_eq!(sim.engine.free_ports(), 50, "busy ports go back to the pool");

    // One busy port is skipped.
    let mut sim = EngineSim::default();
    sim.busy = [20000].into();
    sim.peer.invite(to_us(SDP), sim.now).unwrap();
    sim.settle();
    assert_eq!(media_started(&sim.actions).map(|m| m.port), Some(20002));
}

#[test]
fn reinvite_glare_gets_491_and_both_retry_after_the_rfc_3261_14_1_delays() {
    let mut sim = EngineSim::default();
    let theirs = sim.live_api_call("call_g");
    sim.take_actions();
    sim.wire.clear();
    // Both re-INVITE at once: each answers the other's with 491 (§14.2).
    assert_eq!(sim.act("call_g", ApiAction::Hold(true)), Ok(()));
    sim.peer.hold(theirs, true, sim.now).unwrap();
    let t0 = sim.secs();
    sim.settle();
    assert_eq!(sim.sent("> SIP/2.0 491").len(), 1, "{:?}", sim.wire);
    assert_eq!(sim.sent("< SIP/2.0 491").len(), 1, "{:?}", sim.wire);
    sim.advance(Duration::from_secs(10));
    // §14.1: we own the Call-ID (we placed the call): our retry waits 2.1-4 s; the
    // peer's 0-2 s.
    let ours: Vec<f64> = sim.sent("> INVITE").into_iter().map(|t| t - t0).collect();
    let peers: Vec<f64> = sim.sent("< INVITE").into_iter().map(|t| t - t0).collect();
    assert_eq!((ours.len(), peers.len()), (2, 2), "{:?}", sim.wire);
    assert!((2.1..=4.0).contains(&ours[1]), "our retry at {} s", ours[1]);
    assert!((0.0..=2.0).contains(&peers[1]), "the peer's retry at {} s", peers[1]);
    // Both went through; nothing failed, nothing is pending.
    assert!(!sim.actions.iter().any(|a| matches!(a, Action::Persist(Persist::ActionFailed { .. }))));
    let id = sim.engine.by_api_id("call_g").unwrap();
    assert_eq!(sim.engine.calls()[&id].pending, None);
}

#[test]
fn a_refused_hold_is_a_call_event() {
    let mut sim = EngineSim::default();
    sim.live_api_call("call_h");
    sim.take_actions();
    // The peer's side refuses the re-INVITE (488).
    sim.intercept = Some(Box::new(|m| match m {
        Message::Request(r) if r.method == Method::Invite => {
            Verdict::Answer(Message::Response(make_response(r, 488, "Not Acceptable Here", Some("x"))).to_bytes())
        }
        Message::Request(r) if r.method == Method::Ack => Verdict::Drop,
        _ => Verdict::Deliver,
    }));
    assert_eq!(sim.act("call_h", ApiAction::Hold(true)), Ok(()), "202: the re-INVITE went out");
    sim.settle();
    let failed: Vec<_> = sim
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Persist(Persist::ActionFailed { id, action, detail }) => Some((id, action, detail)),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", sim.actions);
    assert_eq!((failed[0].0.as_str(), failed[0].1.as_str()), ("call_h", "hold"));
    assert!(failed[0].2.starts_with("488"), "{}", failed[0].2);
    assert!(sim.actions.iter().any(|a| matches!(a, Action::Media(_, MediaCommand::ExpectRx(true)))));
}

#[test]
fn session_timer_refreshes_then_expires_when_the_peer_is_gone() {
    let mut ours = ua_config(OURS, 1);
    ours.session_expires = Some(90);
    let mut sim = EngineSim::new(config(), ours, ua_config(PEER, 2));
    sim.live_api_call("call_s");
    sim.wire.clear();
    let t0 = sim.secs();
    // RFC 4028 §10: the refresher refreshes at half the interval.
    sim.advance(Duration::from_secs(50));
    let refreshes = sim.sent("> INVITE").len() + sim.sent("> UPDATE").len();
    assert_eq!(refreshes, 1, "{:?}", sim.wire);
    assert!(sim.engine.by_api_id("call_s").is_some(), "still up after a refresh");
    // The peer vanishes: the next refresh goes unanswered and the session ends by expiry
    // (at most one interval after the last refresh), with a BYE.
    sim.peer_mute = true;
    sim.intercept = Some(Box::new(|_| Verdict::Drop));
    sim.advance(Duration::from_secs(200));
    assert!(sim.engine.by_api_id("call_s").is_none(), "{:?}", sim.wire);
    let byes = sim.sent("> BYE");
    assert!(!byes.is_empty(), "{:?}", sim.wire);
    assert!(byes[0] - t0 <= 45.0 + 90.0 + 1.0, "BYE at {} s", byes[0] - t0);
    let (to, why) = sim.statuses("call_s").last().cloned().unwrap();
    assert_eq!(to, CallStatus::Failed, "{why:?}");
}

#[test]
fn rtp_timeout_hangs_up_and_says_why() {
    let mut sim = EngineSim::default();
    sim.live_api_call("call_r");
    let call = sim.engine.by_api_id("call_r").unwrap();
    sim.feed(Event::Media {
        call,
        api_id: Some("call_r".into()),
        event: MediaEvent::RtpTimeout(Duration::from_secs(60)),
    });
    sim.settle();
    assert!(sim.sent("> BYE").len() == 1);
    assert_eq!(
        sim.statuses("call_r").last(),
        Some(&(CallStatus::Completed, Some("rtp timeout (60 s without media)".into())))
    );
}

#[test]
fn cancel_racing_the_200_ends_both_sides_cleanly() {
    let mut sim = EngineSim::default();
    sim.command(Command::Originate(originate("call_x"))).unwrap();
    sim.settle();
    let theirs = sim.peer_incoming();
    sim.peer.ring(theirs, 180, None, sim.now).unwrap();
    sim.settle();
    // The peer's 200 and our CANCEL cross on the wire.
    sim.peer.answer(theirs, Bytes::from_static(SDP), sim.now).unwrap();
    assert_eq!(sim.act("call_x", ApiAction::Hangup), Ok(()));
    sim.advance(Duration::from_secs(40));
    // RFC 3261 §9.1: the CANCEL came too late; the 2xx is ACKed and the call ended by BYE.
    assert_eq!(sim.sent("> CANCEL").len(), 1, "{:?}", sim.wire);
    assert_eq!(sim.sent("> BYE").len(), 1, "{:?}", sim.wire);
    assert!(sim.engine.calls().is_empty());
    assert_eq!(sim.ua.call_count(), 0);
    assert_eq!(sim.peer.call_count(), 0);
    assert_eq!(sim.engine.free_ports(), 50);
    let last = sim.statuses("call_x").last().cloned().unwrap();
    assert_eq!(last.0, CallStatus::Canceled, "{last:?}");
}

#[test]
fn shutdown_hangs_up_every_call_and_finishes() {
    let mut sim = EngineSim::default();
    sim.live_api_call("call_1");
    sim.peer.invite(to_us(SDP), sim.now).unwrap();
    sim.settle();
    assert_eq!(sim.engine.calls().len(), 2);
    sim.feed(Event::Shutdown);
    assert!(!sim.engine.finished(sim.now));
    sim.settle();
    assert_eq!(sim.sent("> BYE").len(), 2);
    assert!(sim.engine.finished(sim.now), "every call gone");
}

#[test]
fn drain_takes_no_new_call_lets_live_ones_finish_then_stops() {
    let mut sim = EngineSim::default();
    let theirs = sim.live_api_call("call_1");
    sim.feed(Event::Drain(Duration::from_secs(30)));
    assert!(sim.engine.draining());
    assert!(sim.actions.iter().any(|a| matches!(a, Action::Draining)));
    assert!(!sim.engine.finished(sim.now), "a call is still up");
    // A new call from the API is refused; a new INVITE is answered 503 with Retry-After.
    let admit = Command::Admit { org: "org_default".into(), number: "+15551230001".into(), call_id: "call_2".into() };
    assert!(matches!(sim.command(admit), Err(Refusal::Unavailable(_))));
    sim.peer.invite(to_us(SDP), sim.now).unwrap();
    sim.settle();
    assert_eq!(sim.sent("> SIP/2.0 503").len(), 1, "{:?}", sim.wire);
    assert_eq!(sim.engine.calls().len(), 1);
    // The live call goes on until its peer hangs up; then the engine stops.
    sim.advance(Duration::from_secs(10));
    assert_eq!(sim.sent("> BYE").len(), 0, "{:?}", sim.wire);
    sim.peer.hangup(theirs, sim.now).unwrap();
    sim.settle();
    assert!(sim.engine.calls().is_empty());
    assert!(sim.engine.finished(sim.now));
    assert_eq!(sim.statuses("call_1").last().map(|s| s.0), Some(CallStatus::Completed));
}

#[test]
fn drain_hangs_up_what_is_left_at_its_timeout() {
    let mut sim = EngineSim::default();
    sim.live_api_call("call_1");
    sim.feed(Event::Drain(Duration::from_secs(5)));
    sim.advance(Duration::from_secs(4));
    assert_eq!(sim.sent("> BYE").len(), 0);
    sim.advance(Duration::from_secs(2));
    assert_eq!(sim.sent("> BYE").len(), 1, "{:?}", sim.wire);
    sim.settle();
    assert!(sim.engine.finished(sim.now));
    let last = sim.statuses("call_1").last().cloned().unwrap();
    assert_eq!(last, (CallStatus::Completed, Some("drain timeout".into())));
}

/// The simulated-time twins of tests/timers.rs's SIPp session-timer tests (RFC 4028).
#[test]
fn inbound_session_is_refreshed_then_ended_once_nobody_refreshes() {
    let mut peer = ua_config(PEER, 2);
    peer.session_expires = Some(90);
    let mut sim = EngineSim::new(config(), ua_config(OURS, 1), peer);
    sim.peer.invite(to_us(SDP), sim.now).unwrap();
    sim.settle();
    assert_eq!(sim.engine.calls().len(), 1);
    sim.wire.clear();
    // Three intervals: the session is refreshed (by whichever side §9 made the
    // refresher), about every 45 s, and stays up.
    sim.advance(Duration::from_secs(270));
    let refreshes = ["> INVITE", "> UPDATE", "< INVITE", "< UPDATE"].iter().map(|p| sim.sent(p).len()).sum::<usize>();
    assert!((5..=7).contains(&refreshes), "{refreshes} refreshes: {:?}", sim.wire);
    assert_eq!(sim.engine.calls().len(), 1, "still up");
    // Nobody refreshes any more: we end it with a BYE before the interval is out (§10:
    // at the expiry less a third of it, or 32 s).
    sim.peer_mute = true;
    sim.intercept = Some(Box::new(|_| Verdict::Drop));
    let t0 = sim.secs();
    sim.advance(Duration::from_secs(200));
    let bye = sim.sent("> BYE").first().copied().expect("a BYE");
    assert!(bye - t0 <= 90.0, "BYE {} s after the peer went silent", bye - t0);
    assert!(sim.engine.calls().is_empty());
    assert_eq!(sim.engine.free_ports(), 50);
}

fn dial(transfer: Option<&str>) -> Command {
    Command::Dial(Box::new(crate::engine::Dial {
        uri: format!("sip:bob@{PEER}"),
        dest: dest(PEER),
        alternates: Vec::new(),
        from: format!("<sip:alice@{OURS}>"),
        route: None,
        source: SourceSpec::Silence,
        record: None,
        talk: Duration::from_secs(3),
        ring_timeout: Duration::from_secs(20),
        transfer: transfer.map(str::to_string),
    }))
}

fn dial_outcome(sim: &EngineSim) -> Option<DialOutcome> {
    sim.actions.iter().find_map(|a| match a {
        Action::DialEnded(_, r) => Some(r.clone()),
        _ => None,
    })
}

#[test]
fn a_dialled_call_talks_for_its_time_then_hangs_up() {
    let mut sim = EngineSim::default();
    assert_eq!(sim.command(dial(None)), Ok(()));
    assert!(sim.actions.iter().any(|a| matches!(a, Action::Dialed(Ok(_)))));
    sim.settle();
    let theirs = sim.peer_incoming();
    sim.peer.answer(theirs, Bytes::from_static(SDP), sim.now).unwrap();
    sim.settle();
    let t0 = sim.secs();
    sim.advance(Duration::from_secs(10));
    let bye = sim.sent("> BYE");
    assert_eq!(bye.len(), 1, "{:?}", sim.wire);
    assert!((bye[0] - t0 - 3.0).abs() < 0.01, "BYE {} s after the answer", bye[0] - t0);
    assert_eq!(dial_outcome(&sim), Some(Ok(())));
}

#[test]
fn a_dialled_call_nobody_answers_is_cancelled_at_the_ring_timeout() {
    let mut sim = EngineSim::default();
    sim.command(dial(None)).unwrap();
    sim.settle();
    let theirs = sim.peer_incoming();
    sim.peer.ring(theirs, 180, None, sim.now).unwrap();
    sim.advance(Duration::from_secs(30));
    let cancel = sim.sent("> CANCEL");
    assert_eq!(cancel.len(), 1, "{:?}", sim.wire);
    assert!((cancel[0] - 20.0).abs() < 0.01, "CANCEL at {} s", cancel[0]);
    assert!(sim.actions.iter().any(|a| matches!(a, Action::DialNote(_, n) if n.contains("ring timeout"))));
    assert_eq!(dial_outcome(&sim), Some(Err((487, "Request Terminated".into()))));
}

#[test]
fn a_dialled_call_transfers_the_far_end_and_ends_when_it_reports_success() {
    let mut sim = EngineSim::default();
    sim.command(dial(Some("sip:carol@192.0.2.9"))).unwrap();
    sim.settle();
    let theirs = sim.peer_incoming();
    sim.peer.answer(theirs, Bytes::from_static(SDP), sim.now).unwrap();
    sim.settle();
    sim.advance(Duration::from_secs(3));
    assert_eq!(sim.sent("> REFER").len(), 1, "{:?}", sim.wire);
    assert!(sim.take_peer_events().iter().any(|e| matches!(e, UaEvent::Refer { .. })));
    sim.peer.answer_refer(theirs, true, sim.now).unwrap();
    sim.settle();
    // The far end reports the new call's progress, then its answer.
    sim.peer.notify_refer(theirs, 100, "Trying", sim.now).unwrap();
    sim.settle();
    assert!(sim.engine.calls().len() == 1, "still up after 100");
    sim.peer.notify_refer(theirs, 200, "OK", sim.now).unwrap();
    sim.settle();
    assert_eq!(sim.sent("> BYE").len(), 1, "{:?}", sim.wire);
    assert_eq!(dial_outcome(&sim), Some(Ok(())));

    // A failed transfer is the outcome, though the call itself ended cleanly.
    let mut sim = EngineSim::default();
    sim.command(dial(Some("sip:carol@192.0.2.9"))).unwrap();
    sim.settle();
    let theirs = sim.peer_incoming();
    sim.peer.answer(theirs, Bytes::from_static(SDP), sim.now).unwrap();
    sim.advance(Duration::from_secs(3));
    sim.take_peer_events();
    sim.peer.answer_refer(theirs, true, sim.now).unwrap();
    sim.peer.notify_refer(theirs, 486, "Busy Here", sim.now).unwrap();
    sim.settle();
    assert_eq!(dial_outcome(&sim), Some(Err((486, "transfer failed: SIP/2.0 486 Busy Here".into()))));
}

#[test]
fn a_refer_is_refused_by_default_and_followed_when_the_policy_allows() {
    // Default: 403, and the call goes on.
    let mut sim = EngineSim::default();
    let theirs = sim.peer.invite(to_us(SDP), sim.now).unwrap();
    sim.settle();
    sim.take_peer_events();
    sim.peer.refer(theirs, "sip:+19005550100@any-host", sim.now).unwrap();
    sim.settle();
    assert_eq!(sim.sent("> SIP/2.0 403").len(), 1, "{:?}", sim.wire);
    assert_eq!(sim.sent("> INVITE").len(), 0, "nothing called");
    assert_eq!(sim.engine.calls().len(), 1);

    // `trunk`: the number is called through the trunk (here the peer), and the referrer
    // hears how it goes.
    let mut cfg = config();
    cfg.refer = crate::config::ReferPolicy::parse(Some("trunk"), None).unwrap();
    let mut sim = EngineSim::new(cfg, ua_config(OURS, 1), ua_config(PEER, 2));
    let theirs = sim.peer.invite(to_us(SDP), sim.now).unwrap();
    sim.settle();
    sim.take_peer_events();
    sim.peer.refer(theirs, "sip:+19005550100@any-host", sim.now).unwrap();
    sim.settle();
    assert_eq!(sim.sent("> SIP/2.0 202").len(), 1, "{:?}", sim.wire);
    let ev = sim.take_peer_events();
    let invite = ev.iter().find_map(|e| match e {
        UaEvent::IncomingCall { request, .. } => Some(request.uri().unwrap().to_string()),
        _ => None,
    });
    assert_eq!(invite.as_deref(), Some("sip:+19005550100@127.0.0.1:5070"), "{ev:?}");
    // The call that came in is the default organization's but holds none of its places;
    // the REFER's call holds one, and is kept, linked to the referrer.
    assert_eq!(sim.engine.org_live(dialtone_api::store::DEFAULT_ORG), 1);
    let kept: Vec<_> = sim
        .take_actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::Persist(Persist::Inbound { referred_by: Some(by), org, called, .. }) => Some((by, org, called)),
            _ => None,
        })
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].1, dialtone_api::store::DEFAULT_ORG);
    assert_eq!(kept[0].2.as_deref(), Some("sip:+19005550100@127.0.0.1:5070"));
}

#[test]
fn an_organization_is_held_to_its_limits_and_destinations() {
    let mut sim = EngineSim::default();
    let policy = OrgPolicy {
        max_concurrent_calls: Some(2),
        max_calls_per_second: Some(10.0),
        allowed_destinations: vec!["+1555".into()],
    };
    sim.engine.set_policy("org_a", policy);
    let now = sim.now;
    let refused = sim.engine.admit("org_a", Some("+19005550100"), now);
    assert!(matches!(refused, Err(Refusal::Forbidden("destination_not_allowed", _))), "{refused:?}");
    // Two calls at once; a third waits (429), and a permit given back frees its place.
    let p1 = sim.engine.admit("org_a", Some("+15551234567"), now).unwrap();
    let p2 = sim.engine.admit("org_a", Some("+15551234567"), now).unwrap();
    let third = sim.engine.admit("org_a", Some("+15551234567"), now);
    assert!(matches!(third, Err(Refusal::TooMany("max_concurrent_calls", _, 1))), "{third:?}");
    sim.engine.release(p2);
    assert_eq!(sim.engine.org_live("org_a"), 1);
    // The permit becomes the call; its end frees the place.
    let mut o = originate("call_p");
    o.permit = Some(p1);
    sim.command(Command::Originate(o)).unwrap();
    sim.settle();
    let theirs = sim.peer_incoming();
    sim.peer.answer(theirs, Bytes::from_static(SDP), sim.now).unwrap();
    sim.settle();
    assert_eq!(sim.engine.org_live("org_a"), 1, "the call holds the permit's place");
    // The API's transfer is the organization asking: its destinations hold.
    let r = sim.act("call_p", ApiAction::Transfer("+19005550100".into()));
    assert!(matches!(r, Err(Refusal::Forbidden("destination_not_allowed", _))), "{r:?}");
    let r = sim.act("call_p", ApiAction::Transfer("sip:+19005550100@elsewhere".into()));
    assert!(matches!(r, Err(Refusal::Forbidden("destination_not_allowed", _))), "{r:?}");
    sim.settle();
    assert!(sim.sent("> REFER").is_empty(), "{:?}", sim.wire);
    sim.act("call_p", ApiAction::Hangup).unwrap();
    sim.settle();
    assert_eq!(sim.engine.org_live("org_a"), 0);
    // Permits nobody uses lapse.
    sim.engine.admit("org_a", Some("+15551234567"), sim.now).unwrap();
    sim.advance(PERMIT_TTL + Duration::from_secs(1));
    sim.engine.admit("org_a", Some("+15551234567"), sim.now).unwrap();
    assert_eq!(sim.engine.org_live("org_a"), 1, "the lapsed permit was given back");
}

#[test]
fn calls_a_second_are_limited_with_a_retry_after() {
    let mut sim = EngineSim::default();
    sim.engine.set_policy("org_b", OrgPolicy { max_calls_per_second: Some(1.0), ..OrgPolicy::default() });
    let now = sim.now;
    let p = sim.engine.admit("org_b", None, now).unwrap();
    sim.engine.release(p);
    let r = sim.engine.admit("org_b", None, now);
    assert!(matches!(r, Err(Refusal::TooMany("max_calls_per_second", _, 1))), "{r:?}");
    assert!(sim.engine.admit("org_b", None, now + Duration::from_secs(1)).is_ok());
}

#[test]
fn an_api_call_carries_its_headers_and_keeps_to_its_ring_timeout_and_max_duration() {
    let mut sim = EngineSim::default();
    // Not answered within 2 s: cancelled, stored as no-answer.
    let mut o = originate("call_ring");
    o.sip_headers = vec![("X-Customer-Id".into(), "c-42".into())];
    o.ring_timeout = Some(2);
    sim.command(Command::Originate(o)).unwrap();
    sim.settle();
    let Some(UaEvent::IncomingCall { call: theirs, request, .. }) =
        sim.take_peer_events().into_iter().find(|e| matches!(e, UaEvent::IncomingCall { .. }))
    else {
        panic!("no INVITE")
    };
    assert_eq!(
        request.headers.get(&HeaderName::parse("X-Customer-Id")).map(|v| v.to_string()).as_deref(),
        Some("c-42")
    );
    sim.peer.ring(theirs, 180, None, sim.now).unwrap();
    sim.settle();
    sim.advance(Duration::from_secs(3));
    sim.settle();
    assert_eq!(
        sim.statuses("call_ring").last().map(|s| s.0),
        Some(CallStatus::NoAnswer),
        "{:?}",
        sim.statuses("call_ring")
    );
    // Answered, talking 1 s at most: hung up, completed with its reason.
    let mut o = originate("call_talk");
    o.ring_timeout = Some(2);
    o.max_duration = Some(1);
    sim.command(Command::Originate(o)).unwrap();
    sim.settle();
    let theirs = sim.peer_incoming();
    sim.peer.answer(theirs, Bytes::from_static(SDP), sim.now).unwrap();
    sim.settle();
    sim.advance(Duration::from_millis(2500));
    sim.settle();
    let st = sim.statuses("call_talk");
    assert_eq!(st.last().map(|s| s.0), Some(CallStatus::Completed), "{st:?}");
    assert!(!sim.sent("> BYE").is_empty());
}
