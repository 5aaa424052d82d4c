//! The user agent itself: its state, the dispatch of what arrives, time, and output.

use super::call::*;
use super::helpers::*;
use super::timers::*;
use super::types::*;
use crate::method::Method;
use crate::msg::{reason_phrase, Message, Request, Response};
use crate::name::HeaderName;
use crate::parse::{parse_datagram, Malformed};
use crate::perimeter::{Deny, Perimeter, Verdict};
use crate::text::SipStr;
use crate::transaction::{branch_from, ClientKey, Incoming, ServerKey, TransactionLayer, TxEvent, TxKey};
use crate::transport::{Destination, Transmit, Transport};
use crate::userauth::{Authenticator, Check, SipUser};
use crate::validate::{check_request, check_response, Rejection};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

/// The user agent core.
pub struct UserAgent {
    pub(super) cfg: UaConfig,
    pub(super) tx: TransactionLayer,
    pub(super) calls: HashMap<CallRef, Call>,
    pub(super) by_dialog: HashMap<(SipStr, SipStr), CallRef>,
    pub(super) by_server: HashMap<ServerKey, CallRef>,
    pub(super) by_client: HashMap<ClientKey, (CallRef, Purpose)>,
    /// ACKs for 2xx we sent, by INVITE transaction, for re-ACKing retransmitted 2xx.
    pub(super) acks: HashMap<ClientKey, (Destination, Bytes)>,
    /// Every call's deadlines (2xx retransmission, session timer, glare retry).
    pub(super) timers: Timers,
    pub(super) events: VecDeque<UaEvent>,
    pub(super) counter: u64,
    pub(super) next_call: u64,
    pub(super) registrars: Vec<Registrar>,
    pub(super) next_registrar: u64,
    /// Messages dropped as malformed (counted for metrics).
    pub dropped: u64,
    /// Who may send us requests outside our dialogs.
    pub(super) perimeter: Option<Perimeter>,
    /// Our SIP users and their digest challenges.
    pub(super) users: Authenticator,
    /// The SIP user the request being handled authenticated as.
    pub(super) current_user: Option<SipUser>,
    /// Where our SIP users are registered.
    pub(super) bindings: Bindings,
    /// Draining: new calls and OPTIONS probes are answered 503 with this Retry-After (s).
    pub(super) draining: Option<u32>,
}

impl UserAgent {
    /// A UA with the given settings.
    pub fn new(cfg: UaConfig) -> UserAgent {
        let cfg_perimeter = cfg.perimeter.clone().map(Perimeter::new);
        let (cfg_realm, cfg_seed) = (cfg.realm.clone(), cfg.seed);
        let mut users = Authenticator::new(&cfg_realm, cfg_seed ^ 0x7573_6572);
        users.offer(&cfg.digest);
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
            registrars: Vec::new(),
            next_registrar: 0,
            dropped: 0,
            perimeter: cfg_perimeter,
            users,
            current_user: None,
            bindings: Bindings::default(),
            draining: None,
        }
    }

    /// Drains (`Some(retry_after)`, seconds) or stops draining (`None`): while draining,
    /// a new INVITE and an OPTIONS outside any dialog are answered 503 Service Unavailable
    /// with `Retry-After` (RFC 3261 §21.5.4, §20.33), so a dispatcher in front marks us
    /// down and sends new calls elsewhere; requests within dialogs go on as before.
    pub fn set_draining(&mut self, retry_after: Option<u32>) {
        self.draining = retry_after;
    }

    /// Whether [`UserAgent::set_draining`] is on.
    pub fn draining(&self) -> bool {
        self.draining.is_some()
    }

    /// This UA with an inbound perimeter (replacing [`UaConfig::perimeter`]).
    pub fn with_perimeter(mut self, cfg: crate::perimeter::PerimeterConfig) -> UserAgent {
        self.cfg.perimeter = Some(cfg.clone());
        self.perimeter = Some(Perimeter::new(cfg));
        self
    }

    /// Lets `ip` through the perimeter from now on (a trunk server found later).
    pub fn allow_source(&mut self, ip: std::net::IpAddr) {
        if let Some(p) = self.perimeter.as_mut() {
            p.allow(crate::perimeter::Cidr::host(ip));
        }
    }

    /// Requests from these ranges are let in too (the trunks' `allowed_cidrs`), replacing
    /// the last ones given.
    pub fn set_trunk_ranges(&mut self, ranges: Vec<crate::perimeter::Cidr>) {
        if let Some(p) = self.perimeter.as_mut() {
            p.set_trunk_ranges(ranges);
        }
    }

    /// Whether to learn our public address from a registrar's `received`/`rport`
    /// ([`UaConfig::learn_address`]).
    pub fn learn_address(&mut self, on: bool) {
        self.cfg.learn_address = on;
    }

    /// The inbound perimeter, if one is set: its counters for metrics.
    pub fn perimeter(&self) -> Option<&Perimeter> {
        self.perimeter.as_ref()
    }

    /// The settings.
    pub fn config(&self) -> &UaConfig {
        &self.cfg
    }

    /// The Call-ID of `call`'s INVITE (its dialog's), while the UA holds the call.
    pub fn sip_call_id(&self, call: CallRef) -> Option<String> {
        self.calls.get(&call)?.invite.headers.call_id().ok().map(|c| c.to_string())
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
            Transport::Tls => self.cfg.tls_addr,
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
                if !self.admitted(&req, &src, now) {
                    return;
                }
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

    /// Whether the perimeter lets `req` from `src` in: anything inside a dialog of ours,
    /// else what its source is allowed. A refused request is answered (403) or dropped here.
    ///
    /// With SIP users ([`UserAgent::set_sip_users`]), a REGISTER from anywhere, and any
    /// other request from outside the allowed addresses, must carry their digest
    /// credentials: without them it is challenged (401), with good ones it is let in as
    /// that user (`UaEvent::IncomingCall`'s `user`), with bad ones it counts against its source
    /// like a refusal (and is challenged again, until the source is blocked).
    fn admitted(&mut self, req: &Request, src: &Destination, now: Instant) -> bool {
        self.current_user = None;
        let ours =
            req.headers.to().ok().and_then(|t| t.tag().map(SipStr::from)).is_some_and(|tag| {
                req.headers.call_id().is_ok_and(|id| self.by_dialog.contains_key(&(id.clone(), tag)))
            });
        if ours {
            return true;
        }
        let ip = src.addr.ip();
        if self.perimeter.as_mut().is_some_and(|p| p.is_blocked(ip, now)) {
            return false;
        }
        let allowed = self.perimeter.as_ref().is_none_or(|p| p.allows(ip));
        if !self.users.is_empty() && req.method != Method::Ack && req.method != Method::Cancel {
            if req.method == Method::Register || !allowed {
                return self.authenticated(req, src, now);
            }
        } else if !self.users.is_empty() {
            // An ACK or CANCEL carries no credentials: it matches a transaction (an
            // authenticated INVITE's) or gets nothing done (481).
            return true;
        }
        if allowed {
            return true;
        }
        let Some(p) = self.perimeter.as_mut() else { return true };
        let verdict = p.refuse(ip, now);
        self.refused(req, src, verdict, now);
        false
    }

    /// Checks the SIP user's credentials on `req` (see [`UserAgent::admitted`]).
    fn authenticated(&mut self, req: &Request, src: &Destination, now: Instant) -> bool {
        match self.users.check(req, now) {
            Check::Ok(user) => {
                self.current_user = Some(user);
                true
            }
            Check::Missing => {
                self.challenge(req, src, false, now);
                false
            }
            Check::Stale => {
                self.challenge(req, src, true, now);
                false
            }
            Check::Bad(_) => {
                let verdict = match self.perimeter.as_mut() {
                    Some(p) => p.refuse(src.addr.ip(), now),
                    None => Verdict::Refuse(Deny::Forbidden),
                };
                match verdict {
                    Verdict::Refuse(_) => self.challenge(req, src, false, now),
                    v => self.refused(req, src, v, now),
                }
                false
            }
        }
    }

    /// A stateless 401 with our challenges (RFC 3261 §22.2: a UAS challenges with 401).
    fn challenge(&mut self, req: &Request, src: &Destination, stale: bool, now: Instant) {
        let headers = self.users.challenges(now, stale).into_iter().map(|c| (HeaderName::WwwAuthenticate, c)).collect();
        self.reject_stateless(req, src, Rejection { status: 401, reason: "Unauthorized", headers });
    }

    /// Answers a refused request as the perimeter's verdict says.
    fn refused(&mut self, req: &Request, src: &Destination, verdict: Verdict, now: Instant) {
        let Some(p) = self.perimeter.as_ref() else { return };
        let deny = match verdict {
            Verdict::Allow | Verdict::Blocked => return,
            Verdict::Refuse(deny) => deny,
            Verdict::Block(deny) => {
                let until = now + p.config().block_for;
                self.events.push_back(UaEvent::SourceBlocked { addr: src.addr.ip(), until });
                deny
            }
        };
        if deny == Deny::Forbidden && req.method != Method::Ack {
            let rej = Rejection { status: 403, reason: "Forbidden", headers: Vec::new() };
            self.reject_stateless(req, src, rej);
        }
    }

    /// Our SIP users (softphones that may REGISTER and call from anywhere, with digest
    /// credentials); none by default.
    pub fn set_sip_users(&mut self, users: Vec<SipUser>) {
        self.users.set_users(users);
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
                        if purpose == Purpose::Options {
                            self.options_answered(call, None);
                            continue;
                        }
                        if purpose == Purpose::Register {
                            let status = if timeout { 408 } else { 503 };
                            self.register_failed(
                                call.0,
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
                        if purpose == Purpose::Invite {
                            let why = if timeout { "timeout" } else { "transport error" };
                            if self.fail_over(call, why.into(), now) {
                                continue;
                            }
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
            Purpose::Register if resp.status >= 200 => self.on_register_response(call.0, resp, now),
            Purpose::Refresh if resp.status >= 200 => self.on_refresh_response(call, key, resp, now),
            Purpose::Reinvite if resp.status >= 200 => self.on_reinvite_response(call, key, resp, now),
            Purpose::Options if resp.status >= 200 => {
                self.by_client.remove(&key);
                self.options_answered(call, Some(resp.status));
            }
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
        let due: Vec<u64> = self.registrars.iter().filter(|r| r.timer.is_some_and(|t| t <= now)).map(|r| r.n).collect();
        for n in due {
            if let Some(r) = self.registrars.iter_mut().find(|r| r.n == n) {
                r.timer = None;
            }
            self.send_register(n, Vec::new(), now);
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
                Timer::Reliable1xx => self.on_reliable_timer(call, now),
            }
        }
        self.pump(now);
    }

    /// Sends a request of `call` (its Via added here) and remembers what it is for, so
    /// its responses find their way back.
    pub(super) fn send_in_dialog(
        &mut self,
        call: CallRef,
        mut req: Request,
        dest: Destination,
        p: Purpose,
        now: Instant,
    ) {
        let via = self.via(dest.transport);
        req.headers.push_front(HeaderName::Via, SipStr::from(via));
        let key = self.tx.send_request(req, dest, now);
        self.by_client.insert(key, (call, p));
    }

    /// Sends the ACK for a 2xx to our INVITE `key` (its Via added here), kept to answer
    /// the 2xx's retransmissions (§13.2.2.4).
    pub(super) fn send_ack(&mut self, key: ClientKey, mut ack: Request, dest: Destination) {
        let via = self.via(dest.transport);
        ack.headers.push_front(HeaderName::Via, SipStr::from(via));
        let bytes = Message::Request(ack).to_bytes();
        self.tx.send_stateless(dest, bytes.clone());
        self.acks.insert(key, (dest, bytes));
    }

    /// Our 2xx is not ACKed yet: send it again (T1 doubling to T2), or give up after 64·T1
    /// and end the call with a BYE (§13.3.1.4).
    pub(super) fn on_ok_timer(&mut self, call: CallRef, now: Instant) {
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
        let reg = self.registrars.iter().filter_map(|r| r.timer).min();
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
