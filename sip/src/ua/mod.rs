//! The user agent core (RFC 3261 §8, §12–§15): calls on top of the transaction layer.
//!
//! Sans-IO like the rest of the crate. The driver feeds datagrams and stream frames in
//! with [`UserAgent::on_datagram`] / [`UserAgent::on_message`], calls commands
//! ([`UserAgent::invite`], [`UserAgent::answer`], …), and after every input drains
//! [`UserAgent::poll_transmit`] and [`UserAgent::poll_event`], then sleeps until
//! [`UserAgent::poll_timeout`] and calls [`UserAgent::handle_timeout`].
//!
//! What the UA does by itself: 100 Trying (in the transaction layer), OPTIONS (200 with
//! Allow/Accept/Supported), CANCEL (200, then 487 for the INVITE), BYE, ACK for 2xx and
//! its re-sending, retransmission of our 2xx until the ACK (§13.3.1.4), 481 for requests
//! outside any dialog, 500 for an out-of-order CSeq (§12.2.2), 501/405 for methods we do
//! not implement, and the 4xx/5xx a malformed request earns.

use crate::auth::{AuthHeader, Credentials, DigestClient, Target};
use crate::dialog::{Dialog, DialogState};
use crate::header::Via;
use crate::method::Method;
use crate::msg::{reason_phrase, Message, Request, Response};
use crate::name::HeaderName;
use crate::parse::{parse_datagram, Malformed};
use crate::text::SipStr;
use crate::transaction::{
    branch_from, build_cancel, ClientKey, Incoming, ServerKey, TimerConfig, TransactionLayer, TxEvent, TxKey,
};
use crate::transport::{Destination, Transmit, Transport};
use crate::validate::{check_request, check_response, Policy, Rejection};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

mod call;
mod in_dialog;
mod registration;
mod session_timer;
mod timers;
mod uac;
mod uas;

use call::{Call, Purpose, Reinvite, Role, State};
use registration::Registrar;
pub use registration::{refresh_after, Registration, RegistrationEvent, REGISTER_RETRY_MAX, REGISTER_RETRY_MIN};
use session_timer::{session_expires, SessionTimer};
use timers::{Timer, TimerTable, Timers};

/// Methods we implement, for Allow (§20.5).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, REFER, NOTIFY, PRACK";
/// Option tags we support, for Supported.
pub const SUPPORTED: &str = "replaces, timer";
/// What our INVITEs say we support: as a UAC we also answer reliable provisional
/// responses with PRACK (RFC 3262).
pub const SUPPORTED_UAC: &str = "100rel, replaces, timer";
/// Body types we accept, for Accept.
pub const ACCEPT: &str = "application/sdp";

/// UA settings.
#[derive(Clone, Debug)]
pub struct UaConfig {
    /// T1/T2/T4.
    pub timers: TimerConfig,
    /// What our requests and responses carry in User-Agent / Server.
    pub user_agent: String,
    /// What we accept (schemes, extensions, body types).
    pub policy: Policy,
    /// The user part of our Contact.
    pub contact_user: String,
    /// The address we advertise (Via sent-by, Contact) for UDP.
    pub udp_addr: Option<SocketAddr>,
    /// The address we advertise for TCP.
    pub tcp_addr: Option<SocketAddr>,
    /// Seed for tags, branches and Call-IDs (the driver passes randomness).
    pub seed: u64,
    /// Digest credentials for 401/407 challenges (RFC 3261 §22) to our requests: the
    /// INVITE, BYE and REGISTER. Without them a challenge ends the request with its status.
    pub credentials: Option<Credentials>,
    /// The session interval our INVITEs ask for (RFC 4028 Session-Expires), seconds;
    /// `None` asks for none (the peer may still impose one).
    pub session_expires: Option<u32>,
    /// The smallest session interval we accept (Min-SE); RFC 4028 §4 makes it at least
    /// 90 s between conforming peers. Lower only for tests.
    pub min_se: u32,
}

impl Default for UaConfig {
    fn default() -> Self {
        UaConfig {
            timers: TimerConfig::default(),
            user_agent: concat!("dialtone/", env!("CARGO_PKG_VERSION")).into(),
            policy: Policy::default(),
            contact_user: "dialtone".into(),
            udp_addr: None,
            tcp_addr: None,
            seed: 0x5eed,
            credentials: None,
            session_expires: Some(1800),
            min_se: 90,
        }
    }
}

/// An outbound call to place with [`UserAgent::invite`].
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The Request-URI.
    pub request_uri: String,
    /// Our From value (name-addr or addr-spec, without tag).
    pub from: String,
    /// The To value.
    pub to: String,
    /// Where the INVITE goes.
    pub dest: Destination,
    /// The SDP offer, if any.
    pub body: Option<Bytes>,
    /// Extra headers.
    pub extra: Vec<(HeaderName, String)>,
}

/// A handle on one call (one INVITE dialog) of this UA.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct CallRef(pub u64);

impl fmt::Display for CallRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

/// Why a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// We sent BYE.
    LocalBye,
    /// The peer sent BYE.
    RemoteBye,
    /// The INVITE was cancelled (by the peer for calls we received, by us for ours).
    Cancelled,
    /// The INVITE got (or we sent) a final non-2xx response.
    Rejected {
        /// The status.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// No final response (Timer B), or no ACK for our 2xx.
    Timeout,
    /// The session timer ran out without a refresh (RFC 4028 §10); we sent BYE.
    SessionExpired,
    /// The transport failed.
    TransportError,
}

impl EndReason {
    /// The SIP status that best describes the end (200 for a normal hangup).
    pub fn status(&self) -> u16 {
        match self {
            EndReason::LocalBye | EndReason::RemoteBye => 200,
            EndReason::Cancelled => 487,
            EndReason::Rejected { status, .. } => *status,
            EndReason::Timeout | EndReason::SessionExpired => 408,
            EndReason::TransportError => 503,
        }
    }
}

/// What the UA tells its user.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum UaEvent {
    /// A new INVITE arrived; answer with [`UserAgent::ring`], [`UserAgent::answer`] or
    /// [`UserAgent::reject`].
    IncomingCall {
        /// The call.
        call: CallRef,
        /// The INVITE (its body is the offer, if any).
        request: Box<Request>,
        /// Where it came from.
        source: Destination,
    },
    /// A provisional response (> 100) to our INVITE.
    Progress {
        /// The call.
        call: CallRef,
        /// The response (183 may carry an SDP answer).
        response: Box<Response>,
    },
    /// Our INVITE got a 2xx; the ACK has been sent.
    Answered {
        /// The call.
        call: CallRef,
        /// The 2xx (its body is the answer).
        response: Box<Response>,
    },
    /// The ACK for our 2xx arrived.
    Confirmed {
        /// The call.
        call: CallRef,
        /// The ACK (it may carry the answer when the INVITE had no offer).
        ack: Box<Request>,
    },
    /// An in-dialog request the UA answered itself that the user may care about (INFO,
    /// re-INVITE, UPDATE).
    InDialog {
        /// The call.
        call: CallRef,
        /// The request.
        request: Box<Request>,
    },
    /// The peer asks us to call someone (REFER, RFC 3515); answer it with
    /// [`UserAgent::answer_refer`] before anything else is done for the call.
    Refer {
        /// The call.
        call: CallRef,
        /// The REFER (exactly one valid Refer-To).
        request: Box<Request>,
    },
    /// Our INVITE was challenged (401/407) and has been sent again with credentials.
    Challenged {
        /// The call.
        call: CallRef,
        /// 401 or 407.
        status: u16,
        /// The realm(s) answered.
        realms: Vec<String>,
    },
    /// Our re-INVITE ([`UserAgent::reinvite`]) was answered: the 2xx carries the answer
    /// (apply it to the media), or it failed and the session is as it was (§14.1).
    Reinvited {
        /// The call.
        call: CallRef,
        /// The final response.
        response: Box<Response>,
    },
    /// The registration's state changed (see [`UserAgent::register`]).
    Registration(RegistrationEvent),
    /// The call is over; the handle is no longer valid.
    Terminated {
        /// The call.
        call: CallRef,
        /// Why.
        reason: EndReason,
    },
}

/// Errors from UA commands.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UaError {
    /// No such call (it ended, or never existed).
    #[error("no such call")]
    NoSuchCall,
    /// The command does not fit the call's state.
    #[error("call is in the wrong state for this")]
    WrongState,
    /// A URI or header value given to the command is malformed.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// No local address for the transport.
    #[error("no local address for {0}")]
    NoTransport(Transport),
}

/// The user agent core.
pub struct UserAgent {
    cfg: UaConfig,
    tx: TransactionLayer,
    calls: HashMap<CallRef, Call>,
    by_dialog: HashMap<(SipStr, SipStr), CallRef>,
    by_server: HashMap<ServerKey, CallRef>,
    by_client: HashMap<ClientKey, (CallRef, Purpose)>,
    /// ACKs for 2xx we sent, by INVITE transaction, for re-ACKing retransmitted 2xx.
    acks: HashMap<ClientKey, (Destination, Bytes)>,
    /// Every call's deadlines (2xx retransmission, session timer, glare retry).
    timers: Timers,
    events: VecDeque<UaEvent>,
    counter: u64,
    next_call: u64,
    registrar: Option<Registrar>,
    /// Messages dropped as malformed (counted for metrics).
    pub dropped: u64,
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Builds a response to `req` per §8.2.6: Via, From, To (with `to_tag` added when the
/// request's To has none), Call-ID and CSeq copied.
pub fn make_response(req: &Request, status: u16, reason: &str, to_tag: Option<&str>) -> Response {
    let mut r = Response::new(status, SipStr::from(reason));
    let h = &mut r.headers;
    for v in req.headers.get_all(&HeaderName::Via) {
        h.push(HeaderName::Via, v.clone());
    }
    if let Some(f) = req.headers.get(&HeaderName::From) {
        h.push(HeaderName::From, f.clone());
    }
    if let Some(t) = req.headers.get(&HeaderName::To) {
        let has_tag = req.headers.to().map(|t| t.tag().is_some()).unwrap_or(true);
        match to_tag {
            Some(tag) if !has_tag && status > 100 => h.push(HeaderName::To, SipStr::from(format!("{t};tag={tag}"))),
            _ => h.push(HeaderName::To, t.clone()),
        }
    }
    if let Some(c) = req.headers.get(&HeaderName::CallId) {
        h.push(HeaderName::CallId, c.clone());
    }
    if let Some(c) = req.headers.get(&HeaderName::CSeq) {
        h.push(HeaderName::CSeq, c.clone());
    }
    r
}

/// Stamps `received` and fills `rport` on the top Via (§18.2.1, RFC 3581 §4).
fn stamp_via(req: &mut Request, src: &Destination) {
    let Some(idx) = req.headers.0.iter().position(|h| h.name == HeaderName::Via) else { return };
    let value = req.headers.0[idx].value.clone();
    let first_end = crate::grammar::split_top(&value, b',').next().map(|f| f.len()).unwrap_or(value.len());
    let first = crate::grammar::trim(&value[..first_end.min(value.len())]);
    let Ok(via) = Via::parse(first) else { return };
    let ip = src.addr.ip();
    let needs_received = via.host.ip() != Some(ip);
    let wants_rport = matches!(via.rport(), Some(None));
    if !needs_received && !wants_rport {
        return;
    }
    let mut stamped = String::with_capacity(value.len() + 40);
    // Rebuild the first via-parm: drop an empty rport, then append ours.
    let mut parts = first.splitn(2, ';');
    stamped.push_str(parts.next().unwrap_or(""));
    if let Some(params) = parts.next() {
        for p in params.split(';') {
            let name = p.split('=').next().unwrap_or("").trim();
            if name.eq_ignore_ascii_case("received") || (wants_rport && name.eq_ignore_ascii_case("rport")) {
                continue;
            }
            stamped.push(';');
            stamped.push_str(p);
        }
    }
    if needs_received || wants_rport {
        stamped.push_str(&format!(";received={ip}"));
    }
    if wants_rport {
        stamped.push_str(&format!(";rport={}", src.addr.port()));
    }
    let rest = value.get(first_end..).unwrap_or("");
    stamped.push_str(rest);
    req.headers.0[idx].value = SipStr::from(stamped);
}

/// Where responses to a request go (§18.2.2 with RFC 3581): over a stream, back on the
/// connection; over UDP, to the source address, at the rport or sent-by port.
fn response_destination(req: &Request, src: &Destination) -> Destination {
    if src.transport.is_reliable() {
        return *src;
    }
    let port = match req.headers.top_via() {
        Ok(v) if v.rport().is_some() => src.addr.port(),
        Ok(v) => v.port.unwrap_or(5060),
        Err(_) => src.addr.port(),
    };
    Destination { transport: src.transport, addr: SocketAddr::new(src.addr.ip(), port) }
}

impl UserAgent {
    /// A UA with the given settings.
    pub fn new(cfg: UaConfig) -> UserAgent {
        UserAgent {
            tx: TransactionLayer::new(cfg.timers),
            cfg,
            calls: HashMap::new(),
            by_dialog: HashMap::new(),
            by_server: HashMap::new(),
            by_client: HashMap::new(),
            acks: HashMap::new(),
            timers: Timers::default(),
            events: VecDeque::new(),
            counter: 0,
            next_call: 1,
            registrar: None,
            dropped: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &UaConfig {
        &self.cfg
    }

    /// Live calls.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    pub(super) fn random(&mut self) -> u64 {
        self.counter += 1;
        splitmix(self.cfg.seed ^ self.counter.wrapping_mul(0x2545_f491_4f6c_dd1d))
    }

    pub(super) fn new_tag(&mut self) -> String {
        format!("{:x}", self.random() & 0xffff_ffff_ffff)
    }

    pub(super) fn new_branch(&mut self) -> String {
        self.counter += 1;
        branch_from(self.cfg.seed, self.counter)
    }

    pub(super) fn local_addr(&self, t: Transport) -> Result<SocketAddr, UaError> {
        match t {
            Transport::Udp => self.cfg.udp_addr,
            Transport::Tcp => self.cfg.tcp_addr,
        }
        .ok_or(UaError::NoTransport(t))
    }

    pub(super) fn contact(&self, t: Transport) -> String {
        let addr = self.local_addr(t).unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 5060)));
        let host = match addr {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        };
        match t {
            Transport::Udp => format!("<sip:{}@{}:{}>", self.cfg.contact_user, host, addr.port()),
            _ => format!(
                "<sip:{}@{}:{};transport={}>",
                self.cfg.contact_user,
                host,
                addr.port(),
                t.as_str().to_lowercase()
            ),
        }
    }

    pub(super) fn via(&mut self, t: Transport) -> String {
        let addr = self.local_addr(t).unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 5060)));
        let branch = self.new_branch();
        format!("SIP/2.0/{} {};branch={};rport", t.as_str(), addr, branch)
    }

    // ---- input -------------------------------------------------------------------

    /// A datagram (or one framed stream message, as bytes) arrived from `src`.
    pub fn on_datagram(&mut self, data: Bytes, src: Destination, now: Instant) {
        match parse_datagram(data) {
            Ok(m) => self.on_message(m, src, now),
            Err(bad) => self.on_malformed(bad, src),
        }
    }

    /// A message that failed to parse: a request gets its 4xx/5xx statelessly (when it
    /// has a Via to answer), anything else is dropped.
    pub fn on_malformed(&mut self, bad: Malformed, src: Destination) {
        match bad.request {
            Some(req) if req.method != Method::Ack => {
                let (status, reason) = bad.error.status();
                self.reject_stateless(&req, &src, Rejection { status, reason, headers: Vec::new() });
            }
            _ => self.dropped += 1,
        }
    }

    /// A parsed message arrived from `src`.
    pub fn on_message(&mut self, msg: Message, src: Destination, now: Instant) {
        match msg {
            Message::Request(mut req) => {
                if let Err(rej) = check_request(&req, &self.cfg.policy) {
                    if req.method == Method::Ack {
                        self.dropped += 1;
                    } else {
                        self.reject_stateless(&req, &src, rej);
                    }
                    return;
                }
                stamp_via(&mut req, &src);
                let dest = response_destination(&req, &src);
                match self.tx.on_request(req, dest, now) {
                    Incoming::New { key, request } => self.on_new_request(key, request, src, now),
                    Incoming::Retransmission => {}
                    Incoming::Ack { request } => self.on_ack(request, now),
                    Incoming::Cancel { key, invite, request } => self.on_cancel(key, invite, request, now),
                }
            }
            Message::Response(resp) => {
                if check_response(&resp).is_err() {
                    self.dropped += 1;
                    return;
                }
                if let Some(stray) = self.tx.on_response(resp, now) {
                    self.on_stray_response(stray);
                }
            }
        }
        self.pump(now);
    }

    pub(super) fn reject_stateless(&mut self, req: &Request, src: &Destination, rej: Rejection) {
        if req.headers.top_via().is_err() {
            self.dropped += 1;
            return;
        }
        let tag = self.new_tag();
        let mut resp = make_response(req, rej.status, rej.reason, Some(&tag));
        for (n, v) in rej.headers {
            resp.headers.push(n, v);
        }
        let dest = response_destination(req, src);
        self.tx.send_stateless(dest, Message::Response(resp).to_bytes());
    }

    pub(super) fn respond(&mut self, key: &ServerKey, resp: Response, now: Instant) {
        // A response on a finished transaction only happens in races we tolerate.
        let _ = self.tx.respond(key, resp, now);
    }

    pub(super) fn simple_response(&mut self, key: &ServerKey, req: &Request, status: u16, now: Instant) {
        let tag = self.new_tag();
        let mut resp = make_response(req, status, reason_phrase(status), Some(&tag));
        if matches!(status, 405 | 501) || req.method == Method::Options {
            resp.headers.push(HeaderName::Allow, SipStr::from_static(ALLOW));
        }
        self.respond(key, resp, now);
    }

    pub(super) fn pump(&mut self, now: Instant) {
        while let Some(ev) = self.tx.poll_event() {
            match ev {
                TxEvent::Response { key, response } => self.on_client_response(key, response, now),
                TxEvent::ClientTimeout { ref key } | TxEvent::ClientTransportError { ref key } => {
                    let timeout = matches!(ev, TxEvent::ClientTimeout { .. });
                    if let Some((call, purpose)) = self.by_client.remove(key) {
                        if purpose == Purpose::Register {
                            let status = if timeout { 408 } else { 503 };
                            self.register_failed(
                                status,
                                if timeout { "no response" } else { "transport error" }.into(),
                                None,
                                now,
                            );
                            continue;
                        }
                        if purpose == Purpose::Reinvite {
                            // No answer to our re-INVITE: the dialog is gone (§14.1).
                            let _ = self.send_bye(call, now);
                            self.end_call(call, EndReason::Timeout);
                            continue;
                        }
                        if purpose == Purpose::Refresh {
                            let _ = self.send_bye(call, now);
                            self.end_call(call, EndReason::SessionExpired);
                            continue;
                        }
                        let reason = match purpose {
                            Purpose::Bye => EndReason::LocalBye,
                            _ if self.calls.get(&call).is_some_and(|c| c.hangup_pending) => EndReason::Cancelled,
                            _ if timeout => EndReason::Timeout,
                            _ => EndReason::TransportError,
                        };
                        if purpose != Purpose::Other {
                            self.end_call(call, reason);
                        }
                    }
                }
                TxEvent::ServerTimeout { .. } | TxEvent::ServerTransportError { .. } => {}
                TxEvent::Terminated(TxKey::Client(key)) => {
                    self.by_client.remove(&key);
                    self.acks.remove(&key);
                }
                TxEvent::Terminated(TxKey::Server(key)) => {
                    self.by_server.remove(&key);
                }
            }
        }
    }

    pub(super) fn on_client_response(&mut self, key: ClientKey, resp: Response, now: Instant) {
        let Some(&(call, purpose)) = self.by_client.get(&key) else {
            // A 2xx retransmission for a call already gone: re-ACK.
            if resp.status >= 200 && resp.status < 300 {
                if let Some((dest, ack)) = self.acks.get(&key).cloned() {
                    self.tx.send_stateless(dest, ack);
                }
            }
            return;
        };
        match purpose {
            Purpose::Invite => self.on_invite_response(call, key, resp, now),
            Purpose::Bye if matches!(resp.status, 401 | 407) && self.retry_bye_with_auth(call, &resp, now) => {}
            Purpose::Bye if resp.status >= 200 => self.end_call(call, EndReason::LocalBye),
            Purpose::Register if resp.status >= 200 => self.on_register_response(resp, now),
            Purpose::Refresh if resp.status >= 200 => self.on_refresh_response(call, key, resp, now),
            Purpose::Reinvite if resp.status >= 200 => self.on_reinvite_response(call, key, resp, now),
            _ => {}
        }
    }

    pub(super) fn end_call(&mut self, call: CallRef, reason: EndReason) {
        if let Some(c) = self.calls.remove(&call) {
            if let Some(d) = c.dialog {
                self.by_dialog.remove(&(d.id.call_id.clone(), d.id.local_tag.clone()));
            }
            self.events.push_back(UaEvent::Terminated { call, reason });
        }
    }

    // ---- commands ----------------------------------------------------------------

    /// Advances timers to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        if self.registrar.as_ref().and_then(|r| r.timer).is_some_and(|t| t <= now) {
            if let Some(r) = self.registrar.as_mut() {
                r.timer = None;
            }
            self.send_register(Vec::new(), now);
        }
        while let Some((at, call, timer)) = self.timers.pop_due(now) {
            let Some(c) = self.calls.get_mut(&call) else { continue };
            if c.timers.get(timer) != Some(at) {
                continue; // re-armed or stopped since
            }
            c.timers.stop(timer);
            match timer {
                Timer::Glare => {
                    if c.state == State::Confirmed && matches!(c.reinvite, Reinvite::AwaitingRetry(_)) {
                        self.send_reinvite(call, now);
                    }
                }
                Timer::Session => self.on_session_timer(call, now),
                Timer::Ok2xx => self.on_ok_timer(call, now),
            }
        }
        self.pump(now);
    }

    /// Sends a request of `call` (its Via added here) and remembers what it is for, so
    /// its responses find their way back.
    fn send_in_dialog(&mut self, call: CallRef, mut req: Request, dest: Destination, p: Purpose, now: Instant) {
        let via = self.via(dest.transport);
        req.headers.push_front(HeaderName::Via, SipStr::from(via));
        let key = self.tx.send_request(req, dest, now);
        self.by_client.insert(key, (call, p));
    }

    /// Sends the ACK for a 2xx to our INVITE `key` (its Via added here), kept to answer
    /// the 2xx's retransmissions (§13.2.2.4).
    fn send_ack(&mut self, key: ClientKey, mut ack: Request, dest: Destination) {
        let via = self.via(dest.transport);
        ack.headers.push_front(HeaderName::Via, SipStr::from(via));
        let bytes = Message::Request(ack).to_bytes();
        self.tx.send_stateless(dest, bytes.clone());
        self.acks.insert(key, (dest, bytes));
    }

    /// Our 2xx is not ACKed yet: send it again (T1 doubling to T2), or give up after 64·T1
    /// and end the call with a BYE (§13.3.1.4).
    fn on_ok_timer(&mut self, call: CallRef, now: Instant) {
        let t2 = self.cfg.timers.t2;
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.state != State::Answered {
            return;
        }
        if now >= c.ok_give_up {
            c.state = State::Confirmed;
            let _ = self.send_bye(call, now);
            return self.end_call(call, EndReason::Timeout);
        }
        if let Some(ok) = c.ok.clone() {
            self.tx.send_stateless(c.peer, ok);
        }
        c.ok_interval = (c.ok_interval * 2).min(t2);
        let next = (now + c.ok_interval).min(c.ok_give_up);
        self.timers.arm(&mut c.timers, call, Timer::Ok2xx, next);
    }

    /// The next datagram or stream message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.tx.poll_transmit()
    }

    /// The next event for the user.
    pub fn poll_event(&mut self) -> Option<UaEvent> {
        self.events.pop_front()
    }

    /// When [`UserAgent::handle_timeout`] should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let calls = self.timers.next();
        let reg = self.registrar.as_ref().and_then(|r| r.timer);
        let ours = match (calls, reg) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (ours, self.tx.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A transport failure towards `dest` (a TCP connect or write failed).
    pub fn transport_error(&mut self, dest: &Destination, now: Instant) {
        self.tx.transport_error(dest, now);
        self.pump(now);
    }
}

/// Whether a Require/Supported-style header lists `tag`.
fn has_option_tag(h: &crate::msg::Headers, name: &HeaderName, tag: &str) -> bool {
    h.values(name).any(|v| v.trim().eq_ignore_ascii_case(tag))
}

fn copy_record_route(req: &Request, resp: &mut Response) {
    for rr in req.headers.get_all(&HeaderName::RecordRoute) {
        resp.headers.push(HeaderName::RecordRoute, rr.clone());
    }
}

/// Where an in-dialog request goes: the next hop if it is an IP literal, else back to
/// the peer we already talk to.
fn next_hop(d: &Dialog, peer: &Destination) -> Destination {
    match d.next_hop() {
        Some((ip, port, transport)) => Destination {
            transport: transport.unwrap_or(peer.transport),
            addr: SocketAddr::new(ip, port.unwrap_or(5060)),
        },
        None => *peer,
    }
}

#[cfg(test)]
mod tests;
