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
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

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

/// What became of our registration (RFC 3261 §10).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationEvent {
    /// The registrar accepted the binding for `expires` seconds; it is refreshed before then.
    Registered {
        /// The expiry the registrar granted.
        expires: u32,
    },
    /// A REGISTER failed; it is tried again after `retry_in`.
    Failed {
        /// The status (408 for no response, 503 for a transport failure).
        status: u16,
        /// Why, for the log.
        reason: String,
        /// When the next attempt goes.
        retry_in: Duration,
    },
    /// The binding was removed (`Expires: 0` answered), or the attempt to remove it ended.
    Unregistered {
        /// The final status of the un-REGISTER.
        status: u16,
    },
}

/// A registration to keep with [`UserAgent::register`].
#[derive(Clone, Debug)]
pub struct Registration {
    /// The registrar's Request-URI (`sip:domain`, §10.2).
    pub registrar: String,
    /// The address of record (To and From), e.g. `sip:alice@example.com`.
    pub aor: String,
    /// Where REGISTERs go.
    pub dest: Destination,
    /// The expiry to ask for, in seconds.
    pub expires: u32,
}

/// The first retry after a failed REGISTER; it doubles up to [`REGISTER_RETRY_MAX`].
pub const REGISTER_RETRY_MIN: Duration = Duration::from_secs(5);
/// The longest wait between failed REGISTER attempts.
pub const REGISTER_RETRY_MAX: Duration = Duration::from_secs(300);

/// When to refresh a binding granted for `expires` seconds: halfway for short ones, a
/// minute before the end for long ones.
pub fn refresh_after(expires: u32) -> Duration {
    if expires <= 120 {
        Duration::from_millis(u64::from(expires.max(1)) * 500)
    } else {
        Duration::from_secs(u64::from(expires - 60))
    }
}

struct Registrar {
    reg: Registration,
    call_id: String,
    from_tag: String,
    cseq: u32,
    auth: Option<DigestClient>,
    /// The REGISTER in flight (for its challenge).
    last: Option<Request>,
    /// Next refresh or retry.
    timer: Option<Instant>,
    backoff: Duration,
    /// Removing the binding (`Expires: 0`).
    removing: bool,
    registered: bool,
    /// A 423 raised the expiry already for this attempt.
    raised: bool,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Uac,
    Uas,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// UAC: INVITE sent, nothing back but maybe 100. UAS: INVITE received.
    Calling,
    /// A provisional > 100 seen or sent.
    Early,
    /// UAS: 2xx sent, waiting for the ACK.
    Answered,
    /// Media may flow.
    Confirmed,
    /// BYE sent, waiting for its response.
    Terminating,
}

struct Call {
    role: Role,
    state: State,
    /// UAC: our INVITE (for CANCEL and ACK). UAS: the received INVITE.
    invite: Request,
    invite_seq: u32,
    server_key: Option<ServerKey>,
    /// The peer we exchanged the INVITE with (for UAS: where responses go).
    peer: Destination,
    dialog: Option<Dialog>,
    local_tag: String,
    /// UAC: a provisional arrived, so CANCEL may be sent (§9.1).
    got_provisional: bool,
    /// UAC: hang up wanted before CANCEL was allowed, or while the 2xx is coming.
    hangup_pending: bool,
    /// UAS: our 2xx, for retransmission until the ACK.
    ok: Option<Bytes>,
    ok_interval: Duration,
    ok_give_up: Instant,
    /// The last session description we sent (answers re-INVITE/UPDATE refreshes).
    local_sdp: Option<Bytes>,
    timer_gen: u32,
    /// Digest state for this call's challenged requests.
    auth: Option<DigestClient>,
    /// The BYE we sent (without Via), for its challenge.
    last_bye: Option<Request>,
    /// UAC: the RSeq of the last reliable provisional response we PRACKed (RFC 3262).
    last_rseq: Option<u32>,
    /// The session timer in force (RFC 4028), once the session is established.
    session_timer: Option<SessionTimer>,
    /// The peer listed UPDATE in its Allow: refreshes go as UPDATE, not re-INVITE.
    peer_allows_update: bool,
    /// The CSeq of the REFER we accepted, for the `id` of its NOTIFYs.
    refer_seq: Option<u32>,
    /// Our re-INVITE in flight (or waiting out a 491), with its offer.
    reinvite: Option<Bytes>,
    /// That re-INVITE's transaction is running (not waiting out a 491).
    reinvite_in_flight: bool,
}

/// A call's RFC 4028 session timer.
#[derive(Clone, Copy, Debug)]
struct SessionTimer {
    /// The session interval, seconds.
    interval: u32,
    /// We send the refreshes; otherwise we watch for the peer's.
    we_refresh: bool,
    /// Bumped on every (re)arm: older heap entries are stale.
    gen: u32,
}

impl SessionTimer {
    /// When to act after (re)arming at `now`: refresh halfway (§7.4, §9), or give up
    /// `min(32, interval / 3)` s before the interval ends (§10).
    fn due(&self, now: Instant) -> Instant {
        let i = u64::from(self.interval);
        match self.we_refresh {
            true => now + Duration::from_millis(i * 500),
            false => now + Duration::from_secs(i - (i / 3).min(32)),
        }
    }
}

/// `Session-Expires: delta[;refresher=uac|uas]` (RFC 4028 §4).
fn session_expires(h: &crate::msg::Headers) -> Option<(u32, Option<String>)> {
    let v = h.get(&HeaderName::SessionExpires)?;
    let mut parts = v.split(';');
    let delta = parts.next()?.trim().parse().ok()?;
    let refresher = parts.find_map(|p| {
        let (n, v) = p.split_once('=')?;
        n.trim().eq_ignore_ascii_case("refresher").then(|| v.trim().to_ascii_lowercase())
    });
    Some((delta, refresher))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    Invite,
    Bye,
    Register,
    /// A session refresh (UPDATE or re-INVITE, RFC 4028).
    Refresh,
    /// A re-INVITE with a new offer (hold, resume).
    Reinvite,
    Other,
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
    timers: BinaryHeap<Reverse<(Instant, CallRef, u32)>>,
    events: VecDeque<UaEvent>,
    counter: u64,
    next_call: u64,
    registrar: Option<Registrar>,
    /// Session timers: (due, call, generation).
    se_timers: BinaryHeap<Reverse<(Instant, CallRef, u32)>>,
    /// re-INVITEs to send again after a 491 (§14.1).
    glare_timers: BinaryHeap<Reverse<(Instant, CallRef)>>,
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
            timers: BinaryHeap::new(),
            events: VecDeque::new(),
            counter: 0,
            next_call: 1,
            registrar: None,
            se_timers: BinaryHeap::new(),
            glare_timers: BinaryHeap::new(),
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

    fn random(&mut self) -> u64 {
        self.counter += 1;
        splitmix(self.cfg.seed ^ self.counter.wrapping_mul(0x2545_f491_4f6c_dd1d))
    }

    fn new_tag(&mut self) -> String {
        format!("{:x}", self.random() & 0xffff_ffff_ffff)
    }

    fn new_branch(&mut self) -> String {
        self.counter += 1;
        branch_from(self.cfg.seed, self.counter)
    }

    fn local_addr(&self, t: Transport) -> Result<SocketAddr, UaError> {
        match t {
            Transport::Udp => self.cfg.udp_addr,
            Transport::Tcp => self.cfg.tcp_addr,
        }
        .ok_or(UaError::NoTransport(t))
    }

    fn contact(&self, t: Transport) -> String {
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

    fn via(&mut self, t: Transport) -> String {
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

    fn reject_stateless(&mut self, req: &Request, src: &Destination, rej: Rejection) {
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

    fn respond(&mut self, key: &ServerKey, resp: Response, now: Instant) {
        // A response on a finished transaction only happens in races we tolerate.
        let _ = self.tx.respond(key, resp, now);
    }

    fn simple_response(&mut self, key: &ServerKey, req: &Request, status: u16, now: Instant) {
        let tag = self.new_tag();
        let mut resp = make_response(req, status, reason_phrase(status), Some(&tag));
        if matches!(status, 405 | 501) || req.method == Method::Options {
            resp.headers.push(HeaderName::Allow, SipStr::from_static(ALLOW));
        }
        self.respond(key, resp, now);
    }

    fn on_new_request(&mut self, key: ServerKey, req: Request, src: Destination, now: Instant) {
        let to_tag = req.headers.to().ok().and_then(|t| t.tag().map(SipStr::from));
        if let Some(tag) = to_tag {
            return self.on_in_dialog(key, req, tag, now);
        }
        match req.method {
            Method::Invite => self.on_invite(key, req, src, now),
            Method::Options => {
                let tag = self.new_tag();
                let mut resp = make_response(&req, 200, "OK", Some(&tag));
                resp.headers.push(HeaderName::Allow, SipStr::from_static(ALLOW));
                resp.headers.push(HeaderName::Accept, SipStr::from_static(ACCEPT));
                resp.headers.push(HeaderName::AcceptEncoding, SipStr::from_static("identity"));
                resp.headers.push(HeaderName::AcceptLanguage, SipStr::from_static("en"));
                resp.headers.push(HeaderName::Supported, SipStr::from_static(SUPPORTED));
                resp.headers.push(HeaderName::Server, SipStr::from(self.cfg.user_agent.as_str()));
                self.respond(&key, resp, now);
            }
            Method::Bye | Method::Info | Method::Update | Method::Prack | Method::Notify => {
                self.simple_response(&key, &req, 481, now)
            }
            // A REFER outside any dialog (RFC 3515 allows it) is not something we act on.
            Method::Refer => self.simple_response(&key, &req, 403, now),
            Method::Other(_) => self.simple_response(&key, &req, 501, now),
            _ => self.simple_response(&key, &req, 405, now),
        }
    }

    fn on_invite(&mut self, key: ServerKey, req: Request, src: Destination, now: Instant) {
        if session_expires(&req.headers).is_some_and(|(delta, _)| delta < self.cfg.min_se) {
            // RFC 4028 §8.1: too short a session interval.
            let tag = self.new_tag();
            let mut resp = make_response(&req, 422, "Session Interval Too Small", Some(&tag));
            resp.headers.push(HeaderName::MinSe, SipStr::from(self.cfg.min_se.to_string()));
            return self.respond(&key, resp, now);
        }
        let peer_allows_update = has_option_tag(&req.headers, &HeaderName::Allow, "UPDATE");
        let call = CallRef(self.next_call);
        self.next_call += 1;
        let local_tag = self.new_tag();
        let Some(dialog) = Dialog::new_uas(&req, &local_tag) else {
            return self.simple_response(&key, &req, 400, now);
        };
        let invite_seq = req.headers.cseq().map(|c| c.seq).unwrap_or(0);
        self.by_dialog.insert((dialog.id.call_id.clone(), SipStr::from(local_tag.as_str())), call);
        self.by_server.insert(key.clone(), call);
        let peer = response_destination(&req, &src);
        self.calls.insert(
            call,
            Call {
                role: Role::Uas,
                state: State::Calling,
                invite: req.clone(),
                invite_seq,
                server_key: Some(key),
                peer,
                dialog: Some(dialog),
                local_tag,
                got_provisional: false,
                hangup_pending: false,
                ok: None,
                ok_interval: self.cfg.timers.t1,
                ok_give_up: now,
                local_sdp: None,
                timer_gen: 0,
                auth: None,
                last_bye: None,
                last_rseq: None,
                session_timer: None,
                peer_allows_update,
                refer_seq: None,
                reinvite: None,
                reinvite_in_flight: false,
            },
        );
        self.events.push_back(UaEvent::IncomingCall { call, request: Box::new(req), source: src });
    }

    fn on_in_dialog(&mut self, key: ServerKey, req: Request, tag: SipStr, now: Instant) {
        let Ok(call_id) = req.headers.call_id().cloned() else { return };
        let Some(&call) = self.by_dialog.get(&(call_id, tag)) else {
            return self.simple_response(&key, &req, 481, now);
        };
        let seq = req.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let Some(c) = self.calls.get_mut(&call) else {
            return self.simple_response(&key, &req, 481, now);
        };
        let in_order = c.dialog.as_mut().is_some_and(|d| d.accept_remote_seq(seq, &req.method));
        if !in_order {
            let mut resp = make_response(&req, 500, "Out of Order CSeq", None);
            resp.headers.push(HeaderName::RetryAfter, SipStr::from_static("1"));
            return self.respond(&key, resp, now);
        }
        match req.method {
            Method::Bye => {
                let resp = make_response(&req, 200, "OK", None);
                self.respond(&key, resp, now);
                self.end_call(call, EndReason::RemoteBye);
            }
            Method::Invite | Method::Update
                if !req.body.is_empty() && self.calls.get(&call).is_some_and(|c| c.reinvite_in_flight) =>
            {
                // Glare (§14.2): our own offer is out; the peer retries after a while.
                let mut resp = make_response(&req, 491, "Request Pending", None);
                resp.headers.push(HeaderName::RetryAfter, SipStr::from_static("2"));
                self.respond(&key, resp, now);
            }
            Method::Invite | Method::Update => {
                // Target refresh (§12.2.2); the session is refreshed with what we sent.
                let Some(c) = self.calls.get_mut(&call) else { return };
                if let Some(d) = c.dialog.as_mut() {
                    d.refresh_target(&req.headers);
                }
                // A new offer: answer with our last SDP, directions mirrored (hold/resume).
                if !req.body.is_empty() {
                    let last = c.local_sdp.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
                    let offer = String::from_utf8_lossy(&req.body);
                    if let Some(Ok(answer)) = last.map(|l| crate::sdp::reanswer(&l, &offer)) {
                        c.local_sdp = Some(Bytes::from(answer.to_string()));
                    }
                }
                // A session refresh (RFC 4028 §9): the interval may change; whoever the
                // request names refreshes (absent: its sender, if it supports timers).
                let mut se_header = None;
                if let Some((interval, refresher)) = session_expires(&req.headers) {
                    let sender_supports = has_option_tag(&req.headers, &HeaderName::Supported, "timer");
                    let refresher = refresher
                        .filter(|r| r == "uac" || r == "uas")
                        .unwrap_or_else(|| if sender_supports { "uac" } else { "uas" }.to_string());
                    let gen = c.session_timer.map_or(0, |t| t.gen);
                    c.session_timer = Some(SessionTimer { interval, we_refresh: refresher == "uas", gen });
                    se_header = Some((format!("{interval};refresher={refresher}"), sender_supports));
                }
                let sdp = c.local_sdp.clone();
                let transport = c.peer.transport;
                let mut resp = make_response(&req, 200, "OK", None);
                resp.headers.push(HeaderName::Contact, SipStr::from(self.contact(transport)));
                if let Some((se, require)) = se_header {
                    resp.headers.push(HeaderName::SessionExpires, SipStr::from(se));
                    if require {
                        resp.headers.push(HeaderName::Require, SipStr::from_static("timer"));
                    }
                }
                self.arm_session_timer(call, now);
                if let Some(sdp) = sdp.filter(|_| !req.body.is_empty() || req.method == Method::Invite) {
                    resp.headers.push(HeaderName::ContentType, SipStr::from_static("application/sdp"));
                    resp.body = sdp;
                }
                self.respond(&key, resp, now);
                self.events.push_back(UaEvent::InDialog { call, request: Box::new(req) });
            }
            Method::Info | Method::Options | Method::Notify => {
                let resp = make_response(&req, 200, "OK", None);
                self.respond(&key, resp, now);
                self.events.push_back(UaEvent::InDialog { call, request: Box::new(req) });
            }
            Method::Refer => {
                // RFC 3515 §2.4.2: exactly one Refer-To; accepted at once, progress follows
                // in NOTIFYs ([`UserAgent::notify_refer`]) as the user places the new call.
                let targets = req.headers.count(&HeaderName::ReferTo);
                let ok = targets == 1
                    && req
                        .headers
                        .get(&HeaderName::ReferTo)
                        .is_some_and(|v| crate::header::NameAddr::parse(v, "Refer-To").is_ok());
                if !ok {
                    let mut resp = make_response(&req, 400, "Bad Refer-To", None);
                    resp.headers
                        .push(HeaderName::Warning, SipStr::from_static("399 dialtone \"exactly one valid Refer-To\""));
                    return self.respond(&key, resp, now);
                }
                let resp = make_response(&req, 202, "Accepted", None);
                self.respond(&key, resp, now);
                if let Some(c) = self.calls.get_mut(&call) {
                    c.refer_seq = Some(seq);
                }
                self.events.push_back(UaEvent::InDialog { call, request: Box::new(req) });
            }
            Method::Other(_) => self.simple_response(&key, &req, 501, now),
            _ => self.simple_response(&key, &req, 405, now),
        }
    }

    fn on_ack(&mut self, ack: Request, now: Instant) {
        let (Ok(call_id), Ok(to)) = (ack.headers.call_id(), ack.headers.to()) else { return };
        let Some(tag) = to.tag() else { return };
        let key = (call_id.clone(), SipStr::from(tag));
        let Some(&call) = self.by_dialog.get(&key) else { return };
        let Some(c) = self.calls.get_mut(&call) else { return };
        let seq = ack.headers.cseq().map(|c| c.seq).unwrap_or(0);
        if c.role == Role::Uas && c.state == State::Answered && seq == c.invite_seq {
            c.state = State::Confirmed;
            c.ok = None;
            c.timer_gen += 1;
            if let Some(d) = c.dialog.as_mut() {
                d.state = DialogState::Confirmed;
            }
            if c.hangup_pending {
                let _ = self.send_bye(call, now);
                return;
            }
            self.arm_session_timer(call, now);
            self.events.push_back(UaEvent::Confirmed { call, ack: Box::new(ack) });
        }
    }

    fn on_cancel(&mut self, key: ServerKey, invite: Option<ServerKey>, req: Request, now: Instant) {
        let call = invite.as_ref().and_then(|k| self.by_server.get(k).copied());
        let pending =
            call.and_then(|c| self.calls.get(&c)).is_some_and(|c| matches!(c.state, State::Calling | State::Early));
        match (call, pending) {
            (Some(call), true) => {
                let ok = make_response(&req, 200, "OK", None);
                self.respond(&key, ok, now);
                let _ = self.reject(call, 487, now);
                // reject() reported Rejected; report the cancel instead.
                if let Some(UaEvent::Terminated { reason, .. }) = self.events.back_mut() {
                    *reason = EndReason::Cancelled;
                }
            }
            _ => self.simple_response(&key, &req, 481, now),
        }
    }

    fn on_stray_response(&mut self, resp: Response) {
        // A 2xx retransmitted after the INVITE transaction ended: re-ACK if we know it.
        let Ok(branch) = resp.headers.top_via().map(|v| v.branch().unwrap_or("").to_string()) else { return };
        if let Some((dest, ack)) = self.acks.iter().find(|(k, _)| k.branch() == branch).map(|(_, v)| v.clone()) {
            self.tx.send_stateless(dest, ack);
        }
    }

    fn pump(&mut self, now: Instant) {
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

    fn on_client_response(&mut self, key: ClientKey, resp: Response, now: Instant) {
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

    fn on_invite_response(&mut self, call: CallRef, key: ClientKey, resp: Response, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            if (200..300).contains(&resp.status) {
                if let Some((dest, ack)) = self.acks.get(&key).cloned() {
                    self.tx.send_stateless(dest, ack);
                }
            }
            return;
        };
        let status = resp.status;
        if status < 200 {
            c.got_provisional = true;
            let has_tag = resp.headers.to().is_ok_and(|t| t.tag().is_some());
            if has_tag && c.dialog.is_none() {
                c.dialog = Dialog::new_uac(&c.invite, &resp);
            }
            if c.hangup_pending {
                self.send_cancel(call, now);
                return;
            }
            if status > 100 {
                c.state = State::Early;
                if has_option_tag(&resp.headers, &HeaderName::Require, "100rel") {
                    self.send_prack(call, &resp, now);
                }
                self.events.push_back(UaEvent::Progress { call, response: Box::new(resp) });
            }
            return;
        }
        if matches!(status, 401 | 407) && !c.hangup_pending && self.cfg.credentials.is_some() {
            return self.retry_invite_with_auth(call, resp, now);
        }
        if status == 422 && !c.hangup_pending {
            // RFC 4028 §7.4: ask again with at least the peer's Min-SE (once: a second 422
            // for a larger interval than we sent ends the call).
            let min_se = resp.headers.get(&HeaderName::MinSe).and_then(|v| v.trim().parse::<u32>().ok());
            let sent = session_expires(&c.invite.headers).map(|(d, _)| d).unwrap_or(0);
            if let Some(min_se) = min_se.filter(|m| *m > sent) {
                let mut req = c.invite.clone();
                req.headers.set(HeaderName::SessionExpires, SipStr::from(min_se.to_string()));
                req.headers.set(HeaderName::MinSe, SipStr::from(min_se.to_string()));
                return self.resend_invite(call, req, now);
            }
        }
        if status >= 300 {
            let reason = if status == 487 && c.hangup_pending {
                EndReason::Cancelled
            } else {
                EndReason::Rejected { status, reason: resp.reason.to_string() }
            };
            return self.end_call(call, reason);
        }
        // 2xx: confirm the dialog and ACK (§13.2.2.4). A retransmission is re-ACKed.
        if let Some((dest, ack)) = self.acks.get(&key).cloned() {
            self.tx.send_stateless(dest, ack);
            return;
        }
        let first = c.dialog.as_ref().is_none_or(|d| d.state == DialogState::Early);
        let mut dialog = match Dialog::new_uac(&c.invite, &resp) {
            Some(d) => d,
            None => return,
        };
        if let Some(old) = c.dialog.as_ref() {
            dialog.local_seq = dialog.local_seq.max(old.local_seq);
        }
        let mut ack = dialog.request_with_seq(Method::Ack, c.invite_seq);
        // The ACK for a 2xx carries the INVITE's credentials (RFC 3261 §22.1).
        for name in [HeaderName::Authorization, HeaderName::ProxyAuthorization] {
            for v in c.invite.headers.get_all(&name) {
                ack.headers.push(name.clone(), v.clone());
            }
        }
        let transport = c.peer.transport;
        let dest = next_hop(&dialog, &c.peer);
        dialog.state = DialogState::Confirmed;
        c.dialog = Some(dialog.clone());
        c.state = State::Confirmed;
        c.peer_allows_update = has_option_tag(&resp.headers, &HeaderName::Allow, "UPDATE");
        if first {
            // RFC 4028 §7.2: the 2xx says who refreshes; without Session-Expires, no timer.
            c.session_timer = session_expires(&resp.headers).map(|(interval, refresher)| SessionTimer {
                interval,
                we_refresh: refresher.as_deref() == Some("uac"),
                gen: 0,
            });
        }
        let pending = c.hangup_pending;
        let via = self.via(transport);
        ack.headers.push_front(HeaderName::Via, SipStr::from(via));
        let bytes = Message::Request(ack).to_bytes();
        self.tx.send_stateless(dest, bytes.clone());
        self.acks.insert(key, (dest, bytes));
        self.by_dialog.insert((dialog.id.call_id.clone(), dialog.id.local_tag.clone()), call);
        if pending {
            let _ = self.send_bye(call, now);
            return;
        }
        if first {
            self.arm_session_timer(call, now);
            self.events.push_back(UaEvent::Answered { call, response: Box::new(resp) });
        }
    }

    fn end_call(&mut self, call: CallRef, reason: EndReason) {
        if let Some(c) = self.calls.remove(&call) {
            if let Some(d) = c.dialog {
                self.by_dialog.remove(&(d.id.call_id.clone(), d.id.local_tag.clone()));
            }
            self.events.push_back(UaEvent::Terminated { call, reason });
        }
    }

    // ---- commands ----------------------------------------------------------------

    /// Places a call: an INVITE to `out.request_uri` sent to `out.dest`.
    pub fn invite(&mut self, out: Outgoing, now: Instant) -> Result<CallRef, UaError> {
        let Outgoing { request_uri, from, to, dest, body, extra } = out;
        let (request_uri, from, to) = (request_uri.as_str(), from.as_str(), to.as_str());
        crate::uri::Uri::parse(request_uri).map_err(|_| UaError::Invalid("request URI"))?;
        crate::header::NameAddr::parse(from, "From").map_err(|_| UaError::Invalid("From"))?;
        crate::header::NameAddr::parse(to, "To").map_err(|_| UaError::Invalid("To"))?;
        self.local_addr(dest.transport)?;
        let call = CallRef(self.next_call);
        self.next_call += 1;
        let tag = self.new_tag();
        let host = self.local_addr(dest.transport)?.ip();
        let call_id = format!("{:016x}@{}", self.random(), host);
        let mut req = Request::new(Method::Invite, SipStr::from(request_uri));
        let via = self.via(dest.transport);
        let h = &mut req.headers;
        h.push(HeaderName::Via, via);
        h.push(HeaderName::MaxForwards, "70");
        h.push(HeaderName::From, SipStr::from(format!("{from};tag={tag}")));
        h.push(HeaderName::To, to);
        h.push(HeaderName::CallId, SipStr::from(call_id));
        h.push(HeaderName::CSeq, "1 INVITE");
        h.push(HeaderName::Contact, SipStr::from(self.contact(dest.transport)));
        h.push(HeaderName::Allow, SipStr::from_static(ALLOW));
        h.push(HeaderName::Supported, SipStr::from_static(SUPPORTED_UAC));
        h.push(HeaderName::UserAgent, SipStr::from(self.cfg.user_agent.as_str()));
        if let Some(se) = self.cfg.session_expires {
            h.push(HeaderName::SessionExpires, SipStr::from(se.max(self.cfg.min_se).to_string()));
        }
        for (n, v) in extra {
            h.push(n, v);
        }
        if let Some(b) = &body {
            h.push(HeaderName::ContentType, SipStr::from_static("application/sdp"));
            req.body = b.clone();
        }
        let key = self.tx.send_request(req.clone(), dest, now);
        self.by_client.insert(key, (call, Purpose::Invite));
        self.calls.insert(
            call,
            Call {
                role: Role::Uac,
                state: State::Calling,
                invite: req,
                invite_seq: 1,
                server_key: None,
                peer: dest,
                dialog: None,
                local_tag: tag,
                got_provisional: false,
                hangup_pending: false,
                ok: None,
                ok_interval: self.cfg.timers.t1,
                ok_give_up: now,
                local_sdp: body,
                timer_gen: 0,
                auth: None,
                last_bye: None,
                last_rseq: None,
                session_timer: None,
                peer_allows_update: false,
                refer_seq: None,
                reinvite: None,
                reinvite_in_flight: false,
            },
        );
        Ok(call)
    }

    fn uas_call(&mut self, call: CallRef) -> Result<&mut Call, UaError> {
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        if c.role != Role::Uas || !matches!(c.state, State::Calling | State::Early) {
            return Err(UaError::WrongState);
        }
        Ok(c)
    }

    /// Sends a provisional response (180 Ringing, or 183 with an early SDP answer).
    pub fn ring(&mut self, call: CallRef, status: u16, sdp: Option<Bytes>, now: Instant) -> Result<(), UaError> {
        if !(101..200).contains(&status) {
            return Err(UaError::Invalid("provisional status"));
        }
        let contact = {
            let c = self.uas_call(call)?;
            c.peer.transport
        };
        let contact = self.contact(contact);
        let c = self.uas_call(call)?;
        if has_option_tag(&c.invite.headers, &HeaderName::Require, "100rel") {
            // The caller requires provisional responses to be reliable (RFC 3262); we send
            // none beyond 100 Trying (allowed: a UAS need not send any) and answer directly.
            return Ok(());
        }
        let mut resp = make_response(&c.invite, status, reason_phrase(status), Some(&c.local_tag));
        copy_record_route(&c.invite, &mut resp);
        resp.headers.push(HeaderName::Contact, SipStr::from(contact));
        if let Some(sdp) = sdp {
            resp.headers.push(HeaderName::ContentType, SipStr::from_static("application/sdp"));
            resp.body = sdp;
        }
        c.state = State::Early;
        let key = c.server_key.clone().ok_or(UaError::WrongState)?;
        self.respond(&key, resp, now);
        Ok(())
    }

    /// Answers with 200 OK and an SDP answer; retransmitted until the ACK (§13.3.1.4).
    pub fn answer(&mut self, call: CallRef, sdp: Bytes, now: Instant) -> Result<(), UaError> {
        let transport = self.uas_call(call)?.peer.transport;
        let contact = self.contact(transport);
        let (allow, supported, ua) = (ALLOW, SUPPORTED, self.cfg.user_agent.clone());
        let t1 = self.cfg.timers.t1;
        let c = self.uas_call(call)?;
        let mut resp = make_response(&c.invite, 200, "OK", Some(&c.local_tag));
        copy_record_route(&c.invite, &mut resp);
        let h = &mut resp.headers;
        h.push(HeaderName::Contact, SipStr::from(contact));
        h.push(HeaderName::Allow, SipStr::from_static(allow));
        h.push(HeaderName::Supported, SipStr::from_static(supported));
        h.push(HeaderName::Server, SipStr::from(ua));
        if let Some((interval, refresher)) = session_expires(&c.invite.headers) {
            // RFC 4028 §9: the caller's interval; it refreshes when it can.
            let caller_supports = has_option_tag(&c.invite.headers, &HeaderName::Supported, "timer");
            let refresher = refresher
                .filter(|r| r == "uac" || r == "uas")
                .unwrap_or_else(|| if caller_supports { "uac" } else { "uas" }.to_string());
            h.push(HeaderName::SessionExpires, SipStr::from(format!("{interval};refresher={refresher}")));
            if caller_supports {
                h.push(HeaderName::Require, SipStr::from_static("timer"));
            }
            c.session_timer = Some(SessionTimer { interval, we_refresh: refresher == "uas", gen: 0 });
        }
        h.push(HeaderName::ContentType, SipStr::from_static("application/sdp"));
        resp.body = sdp.clone();
        c.local_sdp = Some(sdp);
        c.state = State::Answered;
        let bytes = Message::Response(resp.clone()).to_bytes();
        c.ok = Some(bytes);
        c.ok_interval = t1;
        c.ok_give_up = now + t1 * 64;
        c.timer_gen += 1;
        let gen = c.timer_gen;
        let reliable = c.peer.transport.is_reliable();
        let key = c.server_key.clone().ok_or(UaError::WrongState)?;
        self.respond(&key, resp, now);
        let first = if reliable { now + t1 * 64 } else { now + t1 };
        self.timers.push(Reverse((first, call, gen)));
        Ok(())
    }

    /// Refuses an incoming call with a final status (4xx–6xx).
    pub fn reject(&mut self, call: CallRef, status: u16, now: Instant) -> Result<(), UaError> {
        if !(300..700).contains(&status) {
            return Err(UaError::Invalid("final status"));
        }
        let c = self.uas_call(call)?;
        let resp = make_response(&c.invite, status, reason_phrase(status), Some(&c.local_tag));
        let key = c.server_key.clone().ok_or(UaError::WrongState)?;
        self.respond(&key, resp, now);
        self.end_call(call, EndReason::Rejected { status, reason: reason_phrase(status).into() });
        Ok(())
    }

    /// Ends a call however it stands: BYE when confirmed, CANCEL while our INVITE is
    /// pending, 480 for an incoming call not yet answered.
    pub fn hangup(&mut self, call: CallRef, now: Instant) -> Result<(), UaError> {
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        match (c.role, c.state) {
            (_, State::Terminating) => Ok(()),
            (_, State::Confirmed) => self.send_bye(call, now),
            (Role::Uas, State::Answered) => {
                // Wait for the ACK, then BYE (§15); if it never comes, the ACK timer ends it.
                c.hangup_pending = true;
                Ok(())
            }
            (Role::Uas, _) => self.reject(call, 480, now),
            (Role::Uac, _) => {
                c.hangup_pending = true;
                if c.got_provisional {
                    self.send_cancel(call, now);
                }
                Ok(())
            }
        }
    }

    fn send_cancel(&mut self, call: CallRef, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.state == State::Terminating {
            return;
        }
        c.state = State::Terminating;
        let cancel = build_cancel(&c.invite);
        let dest = c.peer;
        let key = self.tx.send_request(cancel, dest, now);
        self.by_client.insert(key, (call, Purpose::Other));
    }

    fn send_bye(&mut self, call: CallRef, now: Instant) -> Result<(), UaError> {
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        let d = c.dialog.as_mut().ok_or(UaError::WrongState)?;
        let mut bye = d.make_request(Method::Bye);
        let dest = next_hop(d, &c.peer);
        c.state = State::Terminating;
        c.timer_gen += 1;
        // A peer that challenged the INVITE gets the credentials again (§22.1 lets it
        // challenge the BYE too; then they are answered afresh).
        if let Some(a) = c.auth.as_mut() {
            let uri = bye.uri.to_string();
            if let Ok(hs) = a.authorize(Target { method: "BYE", uri: &uri, body: &[] }) {
                for h in &hs {
                    h.apply_to(&mut bye.headers);
                }
            }
        }
        bye.headers.push(HeaderName::UserAgent, SipStr::from(self.cfg.user_agent.as_str()));
        c.last_bye = Some(bye.clone());
        let via = self.via(dest.transport);
        bye.headers.push_front(HeaderName::Via, SipStr::from(via));
        let key = self.tx.send_request(bye, dest, now);
        self.by_client.insert(key, (call, Purpose::Bye));
        Ok(())
    }

    /// A reliable provisional response (Require: 100rel, RSeq): PRACK it once, in its
    /// early dialog, with RAck (RFC 3262 §7.2). Retransmissions (the same RSeq, or an
    /// older one) are not PRACKed again.
    fn send_prack(&mut self, call: CallRef, resp: &Response, now: Instant) {
        let Some(rseq) = resp.headers.get(&HeaderName::RSeq).and_then(|v| v.trim().parse::<u32>().ok()) else {
            return;
        };
        let Some(c) = self.calls.get_mut(&call) else { return };
        if c.last_rseq.is_some_and(|l| rseq <= l) {
            return;
        }
        // The early dialog this response belongs to (forked responses with another tag
        // would need one each; we follow the first).
        let same_dialog = c.dialog.as_ref().is_some_and(|d| {
            resp.headers.to().ok().and_then(|t| t.tag().map(|t| t == d.id.remote_tag.as_str())).unwrap_or(false)
        });
        if !same_dialog {
            return;
        }
        c.last_rseq = Some(rseq);
        let invite_seq = c.invite_seq;
        let Some(d) = c.dialog.as_mut() else { return };
        d.refresh_target(&resp.headers);
        let mut prack = d.make_request(Method::Prack);
        let dest = next_hop(d, &c.peer);
        prack.headers.push(HeaderName::RAck, SipStr::from(format!("{rseq} {invite_seq} INVITE")));
        let via = self.via(dest.transport);
        prack.headers.push_front(HeaderName::Via, SipStr::from(via));
        let key = self.tx.send_request(prack, dest, now);
        self.by_client.insert(key, (call, Purpose::Other));
    }

    // ---- transfer (RFC 3515) ----------------------------------------------------------

    /// Reports the progress of the call a REFER we accepted asked for: a NOTIFY whose
    /// message/sipfrag body is `SIP/2.0 <status> <reason>`; a final status (≥ 200) ends
    /// the implicit subscription (`Subscription-State: terminated`).
    pub fn notify_refer(&mut self, call: CallRef, status: u16, reason: &str, now: Instant) -> Result<(), UaError> {
        let transport = self.calls.get(&call).ok_or(UaError::NoSuchCall)?.peer.transport;
        let contact = self.contact(transport);
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        let refer_seq = c.refer_seq.ok_or(UaError::WrongState)?;
        if matches!(c.state, State::Terminating) {
            return Err(UaError::WrongState);
        }
        let d = c.dialog.as_mut().ok_or(UaError::WrongState)?;
        let mut req = d.make_request(Method::Notify);
        let dest = next_hop(d, &c.peer);
        let h = &mut req.headers;
        h.push(HeaderName::Contact, SipStr::from(contact));
        h.push(HeaderName::Event, SipStr::from(format!("refer;id={refer_seq}")));
        let state =
            if status >= 200 { "terminated;reason=noresource".to_string() } else { "active;expires=60".to_string() };
        h.push(HeaderName::SubscriptionState, SipStr::from(state));
        h.push(HeaderName::ContentType, SipStr::from_static("message/sipfrag;version=2.0"));
        req.body = Bytes::from(format!("SIP/2.0 {status} {reason}\r\n"));
        if status >= 200 {
            c.refer_seq = None;
        }
        let via = self.via(dest.transport);
        req.headers.push_front(HeaderName::Via, SipStr::from(via));
        let key = self.tx.send_request(req, dest, now);
        self.by_client.insert(key, (call, Purpose::Other));
        Ok(())
    }

    /// Asks the peer to call `target` (a blind transfer, RFC 3515): a REFER in the
    /// dialog. Its NOTIFYs arrive as [`UaEvent::InDialog`]; hang up when one reports 2xx.
    pub fn refer(&mut self, call: CallRef, target: &str, now: Instant) -> Result<(), UaError> {
        crate::uri::Uri::parse(target).map_err(|_| UaError::Invalid("Refer-To URI"))?;
        let transport = self.calls.get(&call).ok_or(UaError::NoSuchCall)?.peer.transport;
        let contact = self.contact(transport);
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        if c.state != State::Confirmed {
            return Err(UaError::WrongState);
        }
        let d = c.dialog.as_mut().ok_or(UaError::WrongState)?;
        let referred_by =
            crate::header::NameAddr::parse(&d.local, "From").map(|n| format!("<{}>", n.uri_text)).unwrap_or_default();
        let mut req = d.make_request(Method::Refer);
        let dest = next_hop(d, &c.peer);
        let h = &mut req.headers;
        h.push(HeaderName::Contact, SipStr::from(contact));
        h.push(HeaderName::ReferTo, SipStr::from(format!("<{target}>")));
        if !referred_by.is_empty() {
            h.push(HeaderName::ReferredBy, SipStr::from(referred_by));
        }
        let via = self.via(dest.transport);
        req.headers.push_front(HeaderName::Via, SipStr::from(via));
        let key = self.tx.send_request(req, dest, now);
        self.by_client.insert(key, (call, Purpose::Other));
        Ok(())
    }

    // ---- digest authentication (RFC 3261 §22) ---------------------------------------

    fn digest(&mut self) -> Option<DigestClient> {
        let creds = self.cfg.credentials.clone()?;
        Some(DigestClient::new(creds, self.random()))
    }

    /// Our INVITE was challenged: send it again with credentials (same Call-ID and tags,
    /// CSeq one up, a new branch; the transaction layer ACKed the 401/407). A challenge
    /// we cannot answer, or a second one for credentials already refused, ends the call
    /// with the challenge's status.
    fn retry_invite_with_auth(&mut self, call: CallRef, resp: Response, now: Instant) {
        let fresh = self.digest();
        let Some(c) = self.calls.get_mut(&call) else { return };
        let digest = match c.auth.as_mut() {
            Some(d) => d,
            None => c.auth.insert(match fresh {
                Some(d) => d,
                None => return,
            }),
        };
        let headers = match digest.respond(&c.invite, &resp) {
            Ok(h) => h,
            Err(e) => {
                let reason = format!("{} ({e})", resp.reason);
                return self.end_call(call, EndReason::Rejected { status: resp.status, reason });
            }
        };
        let mut req = c.invite.clone();
        for h in &headers {
            h.apply_to(&mut req.headers);
        }
        let realms = headers.iter().map(|h| h.realm.clone()).collect();
        self.events.push_back(UaEvent::Challenged { call, status: resp.status, realms });
        self.resend_invite(call, req, now);
    }

    /// Sends the call's INVITE again as `req` (changed headers) in a new transaction: same
    /// Call-ID and From tag, CSeq one up, a new branch (§8.1.3.5, §22.2).
    fn resend_invite(&mut self, call: CallRef, mut req: Request, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        c.invite_seq += 1;
        let seq = c.invite_seq;
        req.headers.set(HeaderName::CSeq, SipStr::from(format!("{seq} INVITE")));
        // An early dialog from the refused attempt does not carry over.
        c.dialog = None;
        c.got_provisional = false;
        c.last_rseq = None;
        c.state = State::Calling;
        let dest = c.peer;
        let via = self.via(dest.transport);
        req.headers.remove(&HeaderName::Via);
        req.headers.push_front(HeaderName::Via, SipStr::from(via));
        let key = self.tx.send_request(req.clone(), dest, now);
        self.by_client.insert(key, (call, Purpose::Invite));
        if let Some(c) = self.calls.get_mut(&call) {
            c.invite = req;
        }
    }

    // ---- re-INVITE (§14) ---------------------------------------------------------------

    /// Sends a new offer in the call (a re-INVITE, §14.1): hold (`a=sendonly`), resume,
    /// a new address. The answer comes as [`UaEvent::Reinvited`]. Refused while another
    /// of ours is pending; a 491 (glare, §14.2) is retried after the §14.1 delay.
    pub fn reinvite(&mut self, call: CallRef, sdp: Bytes, now: Instant) -> Result<(), UaError> {
        let c = self.calls.get_mut(&call).ok_or(UaError::NoSuchCall)?;
        if c.state != State::Confirmed || c.reinvite.is_some() {
            return Err(UaError::WrongState);
        }
        c.reinvite = Some(sdp);
        self.send_reinvite(call, now);
        Ok(())
    }

    /// Puts the peer on hold (our last SDP offered `sendonly`, RFC 3264 §8.4) or takes it
    /// off (`sendrecv`), by re-INVITE; the `o=` version goes up.
    pub fn hold(&mut self, call: CallRef, on: bool, now: Instant) -> Result<(), UaError> {
        let c = self.calls.get(&call).ok_or(UaError::NoSuchCall)?;
        let last = c.local_sdp.as_ref().ok_or(UaError::WrongState)?;
        let text = std::str::from_utf8(last).map_err(|_| UaError::Invalid("our SDP"))?;
        let mut sdp = crate::sdp::SessionDescription::parse(text).map_err(|_| UaError::Invalid("our SDP"))?;
        let dir = if on { crate::sdp::Direction::SendOnly } else { crate::sdp::Direction::SendRecv };
        sdp.attributes.retain(|a| !matches!(a, crate::sdp::Attribute::Direction(_)));
        for m in &mut sdp.media {
            m.attributes.retain(|a| !matches!(a, crate::sdp::Attribute::Direction(_)));
            m.attributes.push(crate::sdp::Attribute::Direction(dir));
        }
        sdp.origin.session_version += 1;
        self.reinvite(call, Bytes::from(sdp.to_string()), now)
    }

    fn send_reinvite(&mut self, call: CallRef, now: Instant) {
        let Some(transport) = self.calls.get(&call).map(|c| c.peer.transport) else { return };
        let contact = self.contact(transport);
        let Some(c) = self.calls.get_mut(&call) else { return };
        let (Some(sdp), Some(d)) = (c.reinvite.clone(), c.dialog.as_mut()) else { return };
        c.reinvite_in_flight = true;
        let mut req = d.make_request(Method::Invite);
        let dest = next_hop(d, &c.peer);
        let h = &mut req.headers;
        h.push(HeaderName::Contact, SipStr::from(contact));
        h.push(HeaderName::Allow, SipStr::from_static(ALLOW));
        h.push(HeaderName::Supported, SipStr::from_static(SUPPORTED_UAC));
        if let Some(t) = c.session_timer {
            let who = if t.we_refresh { "uac" } else { "uas" };
            h.push(HeaderName::SessionExpires, SipStr::from(format!("{};refresher={who}", t.interval)));
        }
        h.push(HeaderName::ContentType, SipStr::from_static("application/sdp"));
        req.body = sdp;
        let via = self.via(dest.transport);
        req.headers.push_front(HeaderName::Via, SipStr::from(via));
        let key = self.tx.send_request(req, dest, now);
        self.by_client.insert(key, (call, Purpose::Reinvite));
    }

    fn on_reinvite_response(&mut self, call: CallRef, key: ClientKey, resp: Response, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let status = resp.status;
        c.reinvite_in_flight = false;
        if (200..300).contains(&status) {
            if let (Some(d), Ok(cs)) = (c.dialog.as_mut(), resp.headers.cseq()) {
                d.refresh_target(&resp.headers);
                let mut ack = d.request_with_seq(Method::Ack, cs.seq);
                let dest = next_hop(d, &c.peer);
                c.local_sdp = c.reinvite.take();
                let via = self.via(dest.transport);
                ack.headers.push_front(HeaderName::Via, SipStr::from(via));
                let bytes = Message::Request(ack).to_bytes();
                self.tx.send_stateless(dest, bytes.clone());
                self.acks.insert(key, (dest, bytes));
            }
            // A re-INVITE refreshes the session too (RFC 4028 §7).
            self.arm_session_timer(call, now);
            self.events.push_back(UaEvent::Reinvited { call, response: Box::new(resp) });
            return;
        }
        if status == 491 {
            // §14.1: the Call-ID's owner waits 2.1–4 s, the other side 0–2 s.
            let r = self.random();
            let Some(c) = self.calls.get(&call) else { return };
            let ms = match c.role {
                Role::Uac => 2100 + r % 1901,
                Role::Uas => r % 2001,
            };
            self.glare_timers.push(Reverse((now + Duration::from_millis(ms), call)));
            return;
        }
        c.reinvite = None;
        if matches!(status, 408 | 481) {
            let _ = self.send_bye(call, now);
            return self.end_call(call, EndReason::Rejected { status, reason: resp.reason.to_string() });
        }
        self.events.push_back(UaEvent::Reinvited { call, response: Box::new(resp) });
    }

    // ---- session timers (RFC 4028) ---------------------------------------------------

    /// (Re)arms the call's session timer from `now`.
    fn arm_session_timer(&mut self, call: CallRef, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(t) = c.session_timer.as_mut() else { return };
        t.gen = t.gen.wrapping_add(1);
        let (due, gen) = (t.due(now), t.gen);
        self.se_timers.push(Reverse((due, call, gen)));
    }

    fn on_session_timer(&mut self, call: CallRef, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(t) = c.session_timer else { return };
        if c.state != State::Confirmed {
            return;
        }
        if !t.we_refresh {
            // No refresh came: the session is over (§10).
            let _ = self.send_bye(call, now);
            return self.end_call(call, EndReason::SessionExpired);
        }
        // Refresh: UPDATE when the peer allows it (no offer needed), else a re-INVITE
        // with our current session description.
        let method = if c.peer_allows_update { Method::Update } else { Method::Invite };
        let transport = c.peer.transport;
        let contact = self.contact(transport);
        let Some(c) = self.calls.get_mut(&call) else { return };
        let Some(d) = c.dialog.as_mut() else { return };
        let mut req = d.make_request(method.clone());
        let dest = next_hop(d, &c.peer);
        let h = &mut req.headers;
        h.push(HeaderName::Contact, SipStr::from(contact));
        h.push(HeaderName::SessionExpires, SipStr::from(format!("{};refresher=uac", t.interval)));
        h.push(HeaderName::Supported, SipStr::from_static(SUPPORTED_UAC));
        if method == Method::Invite {
            if let Some(sdp) = c.local_sdp.clone() {
                h.push(HeaderName::ContentType, SipStr::from_static("application/sdp"));
                req.body = sdp;
            }
        }
        let via = self.via(dest.transport);
        req.headers.push_front(HeaderName::Via, SipStr::from(via));
        let key = self.tx.send_request(req, dest, now);
        self.by_client.insert(key, (call, Purpose::Refresh));
    }

    /// The answer to our refresh: 2xx re-arms (and a re-INVITE's is ACKed); 481 or 408
    /// mean the session is gone (§10), anything else is tried again at the next half.
    fn on_refresh_response(&mut self, call: CallRef, key: ClientKey, resp: Response, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else { return };
        let status = resp.status;
        if (200..300).contains(&status) {
            if let Some((interval, refresher)) = session_expires(&resp.headers) {
                if let Some(t) = c.session_timer.as_mut() {
                    t.interval = interval;
                    t.we_refresh = refresher.as_deref() != Some("uas");
                }
            }
            let is_invite = resp.headers.cseq().is_ok_and(|cs| cs.method == Method::Invite);
            if is_invite {
                if let (Some(d), Ok(cs)) = (c.dialog.as_ref(), resp.headers.cseq()) {
                    let mut ack = d.request_with_seq(Method::Ack, cs.seq);
                    let dest = next_hop(d, &c.peer);
                    let via = self.via(dest.transport);
                    ack.headers.push_front(HeaderName::Via, SipStr::from(via));
                    let bytes = Message::Request(ack).to_bytes();
                    self.tx.send_stateless(dest, bytes.clone());
                    self.acks.insert(key, (dest, bytes));
                }
            }
            return self.arm_session_timer(call, now);
        }
        if matches!(status, 408 | 481) {
            let _ = self.send_bye(call, now);
            return self.end_call(call, EndReason::SessionExpired);
        }
        self.arm_session_timer(call, now);
    }

    /// Our BYE was challenged: send a new one with credentials. False when it cannot be
    /// answered (the call then ends as if the BYE had been answered).
    fn retry_bye_with_auth(&mut self, call: CallRef, resp: &Response, now: Instant) -> bool {
        let fresh = self.digest();
        let Some(c) = self.calls.get_mut(&call) else { return false };
        let Some(prev) = c.last_bye.take() else { return false };
        let digest = match c.auth.as_mut() {
            Some(a) => a,
            None => match fresh {
                Some(f) => c.auth.insert(f),
                None => return false,
            },
        };
        let Ok(headers) = digest.respond(&prev, resp) else { return false };
        let Some(d) = c.dialog.as_mut() else { return false };
        let mut bye = d.make_request(Method::Bye);
        let dest = next_hop(d, &c.peer);
        for h in &headers {
            h.apply_to(&mut bye.headers);
        }
        bye.headers.push(HeaderName::UserAgent, SipStr::from(self.cfg.user_agent.as_str()));
        c.last_bye = Some(bye.clone());
        let via = self.via(dest.transport);
        bye.headers.push_front(HeaderName::Via, SipStr::from(via));
        let key = self.tx.send_request(bye, dest, now);
        self.by_client.insert(key, (call, Purpose::Bye));
        true
    }

    // ---- registration (RFC 3261 §10) -------------------------------------------------

    /// Registers `reg` now and keeps it registered: refreshed before the granted expiry
    /// runs out, retried with backoff after failures (honouring Retry-After), 423 answered
    /// with the registrar's Min-Expires, challenges answered with the credentials. Events
    /// come as [`UaEvent::Registration`]. Replaces an earlier registration.
    pub fn register(&mut self, reg: Registration, now: Instant) -> Result<(), UaError> {
        crate::uri::Uri::parse(&reg.registrar).map_err(|_| UaError::Invalid("registrar URI"))?;
        crate::uri::Uri::parse(&reg.aor).map_err(|_| UaError::Invalid("address of record"))?;
        let host = self.local_addr(reg.dest.transport)?.ip();
        let call_id = format!("{:016x}@{}", self.random(), host);
        let from_tag = self.new_tag();
        let auth = self.digest();
        self.registrar = Some(Registrar {
            reg,
            call_id,
            from_tag,
            cseq: 0,
            auth,
            last: None,
            timer: None,
            backoff: REGISTER_RETRY_MIN,
            removing: false,
            registered: false,
            raised: false,
        });
        self.send_register(Vec::new(), now);
        Ok(())
    }

    /// Removes the binding (`Expires: 0`) and stops refreshing. Returns whether an
    /// un-REGISTER went out ([`RegistrationEvent::Unregistered`] follows).
    pub fn unregister(&mut self, now: Instant) -> bool {
        let Some(r) = self.registrar.as_mut() else { return false };
        if r.removing {
            return true;
        }
        r.removing = true;
        r.timer = None;
        if !r.registered && r.last.is_none() {
            self.registrar = None;
            return false;
        }
        self.send_register(Vec::new(), now);
        true
    }

    /// Whether a binding is in place.
    pub fn is_registered(&self) -> bool {
        self.registrar.as_ref().is_some_and(|r| r.registered)
    }

    fn send_register(&mut self, challenged: Vec<AuthHeader>, now: Instant) {
        let Some(transport) = self.registrar.as_ref().map(|r| r.reg.dest.transport) else { return };
        let via = self.via(transport);
        let contact = self.contact(transport);
        let ua = self.cfg.user_agent.clone();
        let Some(r) = self.registrar.as_mut() else { return };
        r.cseq += 1;
        let expires = if r.removing { 0 } else { r.reg.expires };
        let mut req = Request::new(Method::Register, SipStr::from(r.reg.registrar.as_str()));
        let h = &mut req.headers;
        h.push(HeaderName::Via, via);
        h.push(HeaderName::MaxForwards, "70");
        h.push(HeaderName::From, SipStr::from(format!("<{}>;tag={}", r.reg.aor, r.from_tag)));
        h.push(HeaderName::To, SipStr::from(format!("<{}>", r.reg.aor)));
        h.push(HeaderName::CallId, SipStr::from(r.call_id.as_str()));
        h.push(HeaderName::CSeq, SipStr::from(format!("{} REGISTER", r.cseq)));
        h.push(HeaderName::Contact, SipStr::from(contact));
        h.push(HeaderName::Expires, SipStr::from(expires.to_string()));
        h.push(HeaderName::Allow, SipStr::from_static(ALLOW));
        h.push(HeaderName::UserAgent, SipStr::from(ua));
        let auth = if challenged.is_empty() {
            // A refresh carries the credentials the last challenge asked for.
            let target = Target { method: "REGISTER", uri: &r.reg.registrar, body: &[] };
            r.auth.as_mut().and_then(|a| a.authorize(target).ok()).unwrap_or_default()
        } else {
            challenged
        };
        for a in &auth {
            a.apply_to(&mut req.headers);
        }
        r.last = Some(req.clone());
        let dest = r.reg.dest;
        let key = self.tx.send_request(req, dest, now);
        self.by_client.insert(key, (CallRef(0), Purpose::Register));
    }

    fn on_register_response(&mut self, resp: Response, now: Instant) {
        let Some(transport) = self.registrar.as_ref().map(|r| r.reg.dest.transport) else { return };
        let contact = self.contact(transport);
        let Some(r) = self.registrar.as_mut() else { return };
        let status = resp.status;
        if (200..300).contains(&status) {
            r.backoff = REGISTER_RETRY_MIN;
            r.raised = false;
            if r.removing {
                self.registrar = None;
                self.events.push_back(UaEvent::Registration(RegistrationEvent::Unregistered { status }));
                return;
            }
            let expires = granted_expires(&resp, &contact).unwrap_or(r.reg.expires);
            if expires == 0 {
                // The registrar kept no binding of ours: try again later.
                return self.register_failed(status, "registrar granted no binding".into(), None, now);
            }
            let Some(r) = self.registrar.as_mut() else { return };
            r.registered = true;
            r.timer = Some(now + refresh_after(expires));
            self.events.push_back(UaEvent::Registration(RegistrationEvent::Registered { expires }));
            return;
        }
        if matches!(status, 401 | 407) {
            let answered = match (r.auth.as_mut(), r.last.as_ref()) {
                (Some(a), Some(last)) => a.respond(last, &resp).map_err(|e| e.to_string()),
                _ => Err("no credentials (set DIALTONE_TRUNK_USER and DIALTONE_TRUNK_PASSWORD)".into()),
            };
            return match answered {
                Ok(headers) => self.send_register(headers, now),
                Err(why) => {
                    if let Some(a) = r.auth.as_mut() {
                        a.clear();
                    }
                    self.register_failed(status, why, None, now)
                }
            };
        }
        if status == 423 && !r.removing && !r.raised {
            let min = resp.headers.get(&HeaderName::MinExpires).and_then(|v| v.trim().parse::<u32>().ok());
            if let Some(min) = min.filter(|m| *m > r.reg.expires) {
                r.reg.expires = min;
                r.raised = true;
                return self.send_register(Vec::new(), now);
            }
        }
        let retry_after = resp
            .headers
            .get(&HeaderName::RetryAfter)
            .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next().and_then(|d| d.parse::<u64>().ok()))
            .map(Duration::from_secs);
        self.register_failed(status, resp.reason.to_string(), retry_after, now);
    }

    fn register_failed(&mut self, status: u16, reason: String, retry_after: Option<Duration>, now: Instant) {
        let Some(r) = self.registrar.as_mut() else { return };
        if r.removing {
            self.registrar = None;
            self.events.push_back(UaEvent::Registration(RegistrationEvent::Unregistered { status }));
            return;
        }
        r.registered = false;
        r.raised = false;
        let retry_in = retry_after.unwrap_or(r.backoff).clamp(Duration::from_secs(1), REGISTER_RETRY_MAX);
        r.backoff = (r.backoff * 2).min(REGISTER_RETRY_MAX);
        r.timer = Some(now + retry_in);
        self.events.push_back(UaEvent::Registration(RegistrationEvent::Failed { status, reason, retry_in }));
    }

    // ---- time and output -------------------------------------------------------------

    /// Advances timers to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        while let Some(Reverse((at, call))) = self.glare_timers.peek().copied() {
            if at > now {
                break;
            }
            self.glare_timers.pop();
            if self.calls.get(&call).is_some_and(|c| c.state == State::Confirmed && c.reinvite.is_some()) {
                self.send_reinvite(call, now);
            }
        }
        while let Some(Reverse((at, call, gen))) = self.se_timers.peek().copied() {
            if at > now {
                break;
            }
            self.se_timers.pop();
            let current = self.calls.get(&call).and_then(|c| c.session_timer).is_some_and(|t| t.gen == gen);
            if current {
                self.on_session_timer(call, now);
            }
        }
        if self.registrar.as_ref().and_then(|r| r.timer).is_some_and(|t| t <= now) {
            if let Some(r) = self.registrar.as_mut() {
                r.timer = None;
            }
            self.send_register(Vec::new(), now);
        }
        while let Some(Reverse((at, call, gen))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let t2 = self.cfg.timers.t2;
            let Some(c) = self.calls.get_mut(&call) else { continue };
            if c.timer_gen != gen || c.state != State::Answered {
                continue;
            }
            if now >= c.ok_give_up {
                // No ACK for our 2xx: end the call with a BYE (§13.3.1.4).
                c.state = State::Confirmed;
                let _ = self.send_bye(call, now);
                self.end_call(call, EndReason::Timeout);
                continue;
            }
            if let Some(ok) = c.ok.clone() {
                self.tx.send_stateless(c.peer, ok);
            }
            c.ok_interval = (c.ok_interval * 2).min(t2);
            let next = (now + c.ok_interval).min(c.ok_give_up);
            self.timers.push(Reverse((next, call, gen)));
        }
        self.pump(now);
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
        let calls = self.timers.peek().map(|Reverse((t, _, _))| *t);
        let se = self.se_timers.peek().map(|Reverse((t, _, _))| *t);
        let glare = self.glare_timers.peek().map(|Reverse((t, _))| *t);
        let se = match (se, glare) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let calls = match (calls, se) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
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

/// The expiry a 2xx to REGISTER granted our binding (§10.2.4): the `expires` parameter
/// of the Contact that is ours, else the Expires header.
fn granted_expires(resp: &Response, our_contact: &str) -> Option<u32> {
    let ours = crate::header::NameAddr::parse(our_contact, "Contact").ok().map(|c| c.uri_text.to_string());
    for c in resp.headers.contacts().flatten() {
        if ours.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(c.uri_text)) {
            if let Some(e) = c.params.value("expires").and_then(|e| e.parse().ok()) {
                return Some(e);
            }
        }
    }
    resp.headers.get(&HeaderName::Expires).and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let call =
            caller.invite(out("sip:bob@127.0.0.1", "<sip:alice@127.0.0.1>", "<sip:bob@127.0.0.1>"), now).unwrap();
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
        let call =
            caller.invite(out("sip:bob@127.0.0.1", "<sip:alice@127.0.0.1>", "<sip:bob@127.0.0.1>"), now).unwrap();
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
            &[
                (HeaderName::Require, "100rel"),
                (HeaderName::RSeq, "7"),
                (HeaderName::Contact, "<sip:bob@127.0.0.1:5060>"),
            ],
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
                &[
                    (HeaderName::SessionExpires, "3600;refresher=uac"),
                    (HeaderName::Contact, "<sip:bob@127.0.0.1:5060>"),
                ],
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
        callee.on_datagram(refer(3, "Refer-To: <sip:carol@127.0.0.1:5090>\r\n"), dest(UAC), t0);
        assert_eq!(drain(&mut callee).iter().filter_map(status_of).collect::<Vec<_>>(), vec![202]);
        let ev = events(&mut callee);
        assert!(matches!(&ev[..], [UaEvent::InDialog { request, .. }] if request.method == Method::Refer), "{ev:?}");
        callee.notify_refer(call, 100, "Trying", t0).unwrap();
        let n1 = request_of(&drain(&mut callee)[0]);
        assert_eq!(n1.method, Method::Notify);
        assert_eq!(n1.headers.get(&HeaderName::Event).map(|v| v.as_str()), Some("refer;id=3"));
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
        let call =
            caller.invite(out("sip:bob@127.0.0.1", "<sip:alice@127.0.0.1>", "<sip:bob@127.0.0.1>"), now).unwrap();
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
}
