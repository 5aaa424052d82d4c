//! What the transaction machines share: timers and their configuration, the keys that
//! name transactions, what the layer reports, and the context a machine acts through.

use crate::method::Method;
use crate::msg::{Message, Request, Response};
use crate::name::HeaderName;
use crate::text::SipStr;
use crate::transport::{Destination, Transmit, Transport};
use bytes::Bytes;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

/// T1, T2 and T4 (RFC 3261 §17.1.1.1, Table 4). Every other timer derives from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate; 500 ms by default.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses; 4 s.
    pub t2: Duration,
    /// Maximum time a message stays in the network; 5 s.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) }
    }
}

impl TimerConfig {
    /// The timer's initial value on `transport` (RFC 3261 Table 4, RFC 6026 §8.11).
    ///
    /// `None` when the timer is not used on that transport (the retransmission timers
    /// A, E and G on a reliable transport); `Some(Duration::ZERO)` when it is zero there
    /// (D, I, J and K on a reliable transport).
    pub fn initial(&self, timer: Timer, transport: Transport) -> Option<Duration> {
        let reliable = transport.is_reliable();
        let t1x64 = self.t1 * 64;
        let unless_reliable = |d: Duration| Some(if reliable { Duration::ZERO } else { d });
        match timer {
            Timer::A | Timer::E | Timer::G if reliable => None,
            Timer::A | Timer::E | Timer::G => Some(self.t1),
            Timer::B | Timer::F | Timer::H | Timer::L | Timer::M => Some(t1x64),
            Timer::D => unless_reliable(t1x64.max(Duration::from_secs(32))),
            Timer::I | Timer::K => unless_reliable(self.t4),
            Timer::J => unless_reliable(t1x64),
        }
    }
}

/// The transaction timers (RFC 3261 Table 4; L and M from RFC 6026).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE request retransmit interval, UDP only: T1, doubling.
    A,
    /// INVITE transaction timeout: 64*T1.
    B,
    /// Wait time for response retransmits: max(32 s, 64*T1) for UDP, 0 for reliable.
    D,
    /// Non-INVITE request retransmit interval, UDP only: T1, doubling up to T2.
    E,
    /// Non-INVITE transaction timeout: 64*T1.
    F,
    /// INVITE response retransmit interval, UDP only: T1, doubling up to T2.
    G,
    /// Wait time for ACK receipt: 64*T1.
    H,
    /// Wait time for ACK retransmits: T4 for UDP, 0 for reliable.
    I,
    /// Wait time for non-INVITE request retransmits: 64*T1 for UDP, 0 for reliable.
    J,
    /// Wait time for response retransmits: T4 for UDP, 0 for reliable.
    K,
    /// Server INVITE in Accepted: wait for INVITE retransmits after a 2xx, 64*T1.
    L,
    /// Client INVITE in Accepted: wait for 2xx retransmits, 64*T1.
    M,
}

impl Timer {
    /// Whether this timer paces retransmissions (A, E, G) rather than ending a state.
    pub(super) fn is_retransmit(self) -> bool {
        matches!(self, Timer::A | Timer::E | Timer::G)
    }
}

/// A client transaction: the branch of the request's top Via and the request method
/// (RFC 3261 §17.1.3; a CANCEL shares its INVITE's branch but not its method).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub(super) branch: SipStr,
    pub(super) method: Method,
}

impl ClientKey {
    /// The branch parameter of our Via.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.method
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.branch)
    }
}

/// A server transaction: branch, sent-by and method of the request's top Via
/// (RFC 3261 §17.2.3). An ACK belongs to its INVITE's transaction. For an RFC 2543
/// request (no magic cookie) the branch is a synthesized id that cannot occur on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServerKey {
    pub(super) branch: SipStr,
    pub(super) sent_by: SipStr,
    pub(super) method: Method,
}

impl ServerKey {
    /// The branch (for an RFC 2543 transaction, a local id starting with `rfc2543;`).
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The sent-by of the request's top Via, `host[:port]` with the host lower-cased.
    pub fn sent_by(&self) -> &str {
        &self.sent_by
    }

    /// The request method (INVITE for the ACK of a non-2xx).
    pub fn method(&self) -> &Method {
        &self.method
    }
}

impl fmt::Display for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.method, self.sent_by, self.branch)
    }
}

/// Either kind of transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TxKey {
    /// A client transaction.
    Client(ClientKey),
    /// A server transaction.
    Server(ServerKey),
}

/// What the transaction layer reports to the TU.
#[derive(Debug)]
pub enum TxEvent {
    /// A response on a client transaction: every provisional and final one, including
    /// 2xx retransmissions while an INVITE transaction is Accepted (so the UA re-ACKs).
    Response {
        /// The transaction.
        key: ClientKey,
        /// The response.
        response: Response,
    },
    /// Timer B or F fired: no final response. The TU treats it as 408 (§8.1.3.1).
    ClientTimeout {
        /// The transaction.
        key: ClientKey,
    },
    /// The transport failed for a client transaction still waiting for its final response.
    ClientTransportError {
        /// The transaction.
        key: ClientKey,
    },
    /// Timer H fired: no ACK came for our non-2xx final response (§17.2.1).
    ServerTimeout {
        /// The transaction.
        key: ServerKey,
    },
    /// The transport failed for a server transaction whose response is not settled.
    ServerTransportError {
        /// The transaction.
        key: ServerKey,
    },
    /// The transaction ended and was forgotten.
    Terminated(TxKey),
}

/// Why [`TransactionLayer::respond`] refused a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// No live server transaction has this key (it may have terminated).
    #[error("no such server transaction")]
    NoTransaction,
    /// The transaction already sent its final response (only an INVITE transaction in
    /// Accepted takes further 2xx).
    #[error("the transaction already sent a final response")]
    AlreadyFinal,
    /// The status code is outside 100..=699.
    #[error("status code {0} outside 100..=699")]
    BadStatus(u16),
}

/// One armed timer of a transaction.
#[derive(Clone, Copy, Debug)]
pub(super) struct Armed {
    pub(super) timer: Timer,
    pub(super) gen: u64,
    /// The interval it was armed with (what the retransmit timers double).
    pub(super) interval: Duration,
}

/// A transaction's timers: at most one retransmit timer (A/E/G) and one that ends a
/// state (B/D/F/H/I/J/K/L/M) run at a time.
#[derive(Default, Debug)]
pub(super) struct Timers {
    pub(super) retransmit: Option<Armed>,
    pub(super) expiry: Option<Armed>,
}

impl Timers {
    pub(super) fn has(&self, gen: u64) -> bool {
        self.retransmit.is_some_and(|a| a.gen == gen) || self.expiry.is_some_and(|a| a.gen == gen)
    }

    pub(super) fn take(&mut self, gen: u64) -> Option<Armed> {
        if self.retransmit.is_some_and(|a| a.gen == gen) {
            self.retransmit.take()
        } else if self.expiry.is_some_and(|a| a.gen == gen) {
            self.expiry.take()
        } else {
            None
        }
    }
}

/// The layer's outputs and timer heap, borrowed by the machines through [`Cx`].
#[derive(Default)]
pub(super) struct Out {
    /// `(deadline, generation, slot)`; stale entries are skipped lazily.
    pub(super) heap: BinaryHeap<Reverse<(Instant, u64, u32)>>,
    pub(super) next_gen: u64,
    pub(super) transmits: VecDeque<Transmit>,
    pub(super) events: VecDeque<TxEvent>,
}

/// What a machine may do while handling one input.
pub(super) struct Cx<'a> {
    pub(super) now: Instant,
    pub(super) cfg: &'a TimerConfig,
    pub(super) dest: Destination,
    pub(super) slot: u32,
    pub(super) timers: &'a mut Timers,
    pub(super) out: &'a mut Out,
}

impl Cx<'_> {
    pub(super) fn send(&mut self, data: Bytes) {
        self.out.transmits.push_back(Transmit { dest: self.dest, data });
    }

    pub(super) fn event(&mut self, ev: TxEvent) {
        self.out.events.push_back(ev);
    }

    /// Arms `timer` to fire `after` from now, replacing the one in its slot.
    pub(super) fn arm(&mut self, timer: Timer, after: Duration) {
        self.out.next_gen += 1;
        let gen = self.out.next_gen;
        let armed = Some(Armed { timer, gen, interval: after });
        if timer.is_retransmit() {
            self.timers.retransmit = armed;
        } else {
            self.timers.expiry = armed;
        }
        self.out.heap.push(Reverse((self.now + after, gen, self.slot)));
    }

    /// Arms `timer` at its initial value for this transport. Returns `true` when that
    /// value is zero, i.e. the timer "fires" at once and the caller moves on itself.
    pub(super) fn start(&mut self, timer: Timer) -> bool {
        match self.cfg.initial(timer, self.dest.transport) {
            None => false,
            Some(d) if d.is_zero() => true,
            Some(d) => {
                self.arm(timer, d);
                false
            }
        }
    }

    /// Cancels both timers (their heap entries go stale).
    pub(super) fn cancel_all(&mut self) {
        *self.timers = Timers::default();
    }
}

/// The first (topmost) Via value of a message, as written.
pub(super) fn first_via(h: &crate::msg::Headers) -> Option<&str> {
    h.values(&HeaderName::Via).next()
}

/// The CSeq number as written (digits before the method), even if CSeq is odd.
pub(super) fn cseq_number(h: &crate::msg::Headers) -> String {
    match h.cseq() {
        Ok(c) => c.seq.to_string(),
        Err(_) => h
            .get(&HeaderName::CSeq)
            .map(|v| v.trim().chars().take_while(char::is_ascii_digit).collect())
            .unwrap_or_else(|| "0".into()),
    }
}

pub(super) fn copy(from: &crate::msg::Headers, to: &mut crate::msg::Headers, name: HeaderName) {
    for v in from.get_all(&name) {
        to.push(name.clone(), v.clone());
    }
}

/// The ACK of a non-2xx final response (RFC 3261 §17.1.1.3): the INVITE's Request-URI,
/// Call-ID, From and CSeq number (method ACK), the response's To (with its tag), a
/// single Via equal to the INVITE's top Via, the INVITE's Route headers, Max-Forwards
/// 70 and no body.
pub(super) fn build_ack(invite: &Request, resp: &Response) -> Request {
    let h = &invite.headers;
    let mut a = Request::new(Method::Ack, invite.uri.clone());
    if let Some(via) = first_via(h) {
        a.headers.push(HeaderName::Via, via);
    }
    copy(h, &mut a.headers, HeaderName::Route);
    a.headers.push(HeaderName::MaxForwards, SipStr::from_static("70"));
    match resp.headers.get(&HeaderName::To) {
        Some(to) => a.headers.push(HeaderName::To, to.clone()),
        None => copy(h, &mut a.headers, HeaderName::To),
    }
    copy(h, &mut a.headers, HeaderName::From);
    copy(h, &mut a.headers, HeaderName::CallId);
    a.headers.push(HeaderName::CSeq, format!("{} ACK", cseq_number(h)));
    a.headers.push(HeaderName::ContentLength, SipStr::from_static("0"));
    a
}

/// Serializes a request and gives it back (no clone).
pub(super) fn encode_request(req: Request) -> (Request, Bytes) {
    let msg = Message::Request(req);
    let bytes = msg.to_bytes();
    match msg {
        Message::Request(r) => (r, bytes),
        Message::Response(_) => unreachable!("wrapped a request"),
    }
}
