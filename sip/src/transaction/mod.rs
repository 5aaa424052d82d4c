//! The transaction layer (RFC 3261 §17, with the RFC 6026 Accepted states).
//!
//! [`TransactionLayer`] owns every client and server transaction, matches incoming
//! messages to them (§17.1.3, §17.2.3, and the RFC 2543 fallback), runs their timers and
//! retransmits. Like the rest of the crate it is sans-IO: every input takes `now`, and
//! after each input the driver drains [`TransactionLayer::poll_transmit`] and
//! [`TransactionLayer::poll_event`], then sleeps until [`TransactionLayer::poll_timeout`]
//! and calls [`TransactionLayer::handle_timeout`].
//!
//! The four machines live in their own files, each with the RFC's figure:
//! [`ClientInviteState`] (Figure 5), [`ClientNonInviteState`] (Figure 6),
//! [`ServerInviteState`] (Figure 7), [`ServerNonInviteState`] (Figure 8).
//!
//! Choices the RFC leaves open:
//! - A server INVITE transaction sends `100 Trying` at once on creation (§17.2.1 allows
//!   this or a 200 ms delay); peers such as SIPp see it immediately.
//! - Timers that are zero on a reliable transport (D, I, J, K) end the transaction in
//!   the same call instead of arming a zero-length timer.
//! - A transport error terminates every transaction to that destination; those still
//!   waiting for something (a client without a final response, a server whose final
//!   response or ACK is not settled) report it with an error event first.
//!
//! Cost: matching is one hash lookup; timers sit in one binary heap of
//! `(deadline, generation, slot)` with lazy deletion (a cancelled or re-armed timer
//! leaves a stale entry that is dropped when it reaches the top), so
//! [`TransactionLayer::poll_timeout`] is O(1) and [`TransactionLayer::handle_timeout`] is
//! O(k log n) for k expired entries. Requests and responses are serialized once and
//! retransmitted from the kept [`Bytes`].

mod client_invite;
mod client_non_invite;
mod server_invite;
mod server_non_invite;
mod shared;
#[cfg(test)]
mod tests;

pub use client_invite::ClientInviteState;
pub use client_non_invite::ClientNonInviteState;
pub use server_invite::ServerInviteState;
pub use server_non_invite::ServerNonInviteState;

use client_invite::ClientInvite;
use client_non_invite::ClientNonInvite;
use server_invite::{AckOutcome, ServerInvite};
use server_non_invite::ServerNonInvite;
use shared::{copy, cseq_number, first_via, Cx, Out, Timers};
pub use shared::{ClientKey, ServerKey, Timer, TimerConfig, TransactionError, TxEvent, TxKey};

use crate::header::{Via, MAGIC_COOKIE};
use crate::method::Method;
use crate::msg::{Message, Request, Response};
use crate::name::HeaderName;
use crate::text::SipStr;
use crate::transport::{Destination, Transmit};
use bytes::Bytes;
use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fmt::Write as _;
use std::time::Instant;

/// The state of a transaction, for inspection and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxState {
    /// An INVITE client transaction.
    ClientInvite(ClientInviteState),
    /// A non-INVITE client transaction.
    ClientNonInvite(ClientNonInviteState),
    /// An INVITE server transaction.
    ServerInvite(ServerInviteState),
    /// A non-INVITE server transaction.
    ServerNonInvite(ServerNonInviteState),
}

/// What became of a received request.
#[derive(Debug)]
pub enum Incoming {
    /// A request that starts a new server transaction; the TU answers it with
    /// [`TransactionLayer::respond`]. For an INVITE, 100 Trying is already queued.
    New {
        /// The new transaction.
        key: ServerKey,
        /// The request.
        request: Request,
    },
    /// Absorbed by an existing transaction: a retransmitted request (the last response,
    /// if any, was re-sent) or the ACK of a non-2xx final response.
    Retransmission,
    /// An ACK that is not for a non-2xx final response of ours: the ACK of a 2xx (which
    /// carries a new branch, §17.1.1.3), one arriving in Accepted, or a stray. For the UA.
    Ack {
        /// The ACK.
        request: Request,
    },
    /// A new CANCEL. It has its own server transaction (answer it with 200 or 481).
    Cancel {
        /// The CANCEL's own server transaction.
        key: ServerKey,
        /// The INVITE server transaction it cancels (§9.2), if one matches and has not
        /// sent a final response yet.
        invite: Option<ServerKey>,
        /// The CANCEL.
        request: Request,
    },
}

// ---------------------------------------------------------------------------------------
// Internals shared by the machines.

/// RFC 2543 matching data of a server transaction (§17.2.3, second half).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct LegacyKey {
    uri: SipStr,
    from_tag: SipStr,
    call_id: SipStr,
    cseq: u32,
    via: SipStr,
    /// INVITE for INVITE and ACK; the request method otherwise.
    method: Method,
}

#[derive(Debug)]
struct Legacy {
    key: LegacyKey,
    /// The To tag of the request that created the transaction.
    request_to_tag: Option<SipStr>,
    /// The To tag of our final response: an ACK matches only with it.
    response_to_tag: Option<SipStr>,
}

#[allow(clippy::enum_variant_names)] // the RFC's names for the four machines
enum Kind {
    ClientInvite { key: ClientKey, m: ClientInvite },
    ClientNonInvite { key: ClientKey, m: ClientNonInvite },
    ServerInvite { key: ServerKey, m: ServerInvite, legacy: Option<Box<Legacy>> },
    ServerNonInvite { key: ServerKey, m: ServerNonInvite, legacy: Option<Box<Legacy>> },
}

impl Kind {
    fn is_terminated(&self) -> bool {
        match self {
            Kind::ClientInvite { m, .. } => m.state == ClientInviteState::Terminated,
            Kind::ClientNonInvite { m, .. } => m.state == ClientNonInviteState::Terminated,
            Kind::ServerInvite { m, .. } => m.state == ServerInviteState::Terminated,
            Kind::ServerNonInvite { m, .. } => m.state == ServerNonInviteState::Terminated,
        }
    }

    fn state(&self) -> TxState {
        match self {
            Kind::ClientInvite { m, .. } => TxState::ClientInvite(m.state),
            Kind::ClientNonInvite { m, .. } => TxState::ClientNonInvite(m.state),
            Kind::ServerInvite { m, .. } => TxState::ServerInvite(m.state),
            Kind::ServerNonInvite { m, .. } => TxState::ServerNonInvite(m.state),
        }
    }

    fn tx_key(&self) -> TxKey {
        match self {
            Kind::ClientInvite { key, .. } | Kind::ClientNonInvite { key, .. } => TxKey::Client(key.clone()),
            Kind::ServerInvite { key, .. } | Kind::ServerNonInvite { key, .. } => TxKey::Server(key.clone()),
        }
    }

    fn legacy(&self) -> Option<&Legacy> {
        match self {
            Kind::ServerInvite { legacy, .. } | Kind::ServerNonInvite { legacy, .. } => legacy.as_deref(),
            _ => None,
        }
    }
}

struct Tx {
    dest: Destination,
    timers: Timers,
    kind: Kind,
}

// ---------------------------------------------------------------------------------------
// The layer.

/// All client and server transactions of one SIP endpoint.
pub struct TransactionLayer {
    cfg: TimerConfig,
    /// Transactions by slot; freed slots are reused.
    slots: Vec<Option<Tx>>,
    free: Vec<u32>,
    clients: HashMap<ClientKey, u32>,
    servers: HashMap<ServerKey, u32>,
    legacy: HashMap<LegacyKey, u32>,
    /// Slots by destination, for [`TransactionLayer::transport_error`].
    by_dest: HashMap<Destination, HashSet<u32>>,
    legacy_ids: u64,
    out: Out,
}

impl fmt::Debug for TransactionLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransactionLayer")
            .field("cfg", &self.cfg)
            .field("clients", &self.clients.len())
            .field("servers", &self.servers.len())
            .finish_non_exhaustive()
    }
}

impl TransactionLayer {
    /// An empty layer with these timer values.
    pub fn new(cfg: TimerConfig) -> TransactionLayer {
        TransactionLayer {
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            clients: HashMap::new(),
            servers: HashMap::new(),
            legacy: HashMap::new(),
            by_dest: HashMap::new(),
            legacy_ids: 0,
            out: Out::default(),
        }
    }

    /// The timer values.
    pub fn config(&self) -> &TimerConfig {
        &self.cfg
    }

    /// How many transactions are live.
    pub fn len(&self) -> usize {
        self.clients.len() + self.servers.len()
    }

    /// Whether no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The state of a live transaction.
    pub fn state(&self, key: &TxKey) -> Option<TxState> {
        let slot = match key {
            TxKey::Client(k) => self.clients.get(k),
            TxKey::Server(k) => self.servers.get(k),
        }?;
        self.tx(*slot).map(|tx| tx.kind.state())
    }

    /// A request arrived; `src` is where responses to it go (the driver has applied
    /// §18.2.2 and RFC 3581 to choose it).
    pub fn on_request(&mut self, req: Request, src: Destination, now: Instant) -> Incoming {
        let mut top = TopVia::of(&req);
        let incoming = match top.magic_branch.take() {
            Some(branch) => self.on_request_rfc3261(branch, top.sent_by, req, src, now),
            None => self.on_request_rfc2543(top, req, src, now),
        };
        self.prune();
        incoming
    }

    /// §17.2.3 with a magic-cookie branch: match on (branch, sent-by, method).
    fn on_request_rfc3261(
        &mut self,
        branch: SipStr,
        sent_by: SipStr,
        req: Request,
        src: Destination,
        now: Instant,
    ) -> Incoming {
        let method = if req.method == Method::Ack { Method::Invite } else { req.method.clone() };
        let key = ServerKey { branch, sent_by, method };
        match self.servers.get(&key).copied() {
            Some(slot) if req.method == Method::Ack => self.ack_on(slot, req, now),
            Some(slot) => {
                self.retransmitted(slot, now);
                Incoming::Retransmission
            }
            None if req.method == Method::Ack => Incoming::Ack { request: req },
            None => {
                let invite = (req.method == Method::Cancel)
                    .then(|| ServerKey { method: Method::Invite, ..key.clone() })
                    .filter(|k| self.servers.get(k).is_some_and(|&s| self.awaiting_final(s)));
                self.new_server(key, None, req, invite, src, now)
            }
        }
    }

    /// §17.2.3 without the magic cookie: the RFC 2543 rules.
    fn on_request_rfc2543(&mut self, top: TopVia, req: Request, src: Destination, now: Instant) -> Incoming {
        let lkey = LegacyKey::of(&req, top.legacy_via);
        let to_tag = to_tag(&req.headers);
        let found = self.legacy.get(&lkey).copied();
        if req.method == Method::Ack {
            // The ACK matches only if its To tag is the one of our response.
            let matched = found.filter(|&s| {
                self.tx(s)
                    .and_then(|tx| tx.kind.legacy())
                    .is_some_and(|l| l.response_to_tag.is_some() && l.response_to_tag == to_tag)
            });
            return match matched {
                Some(slot) => self.ack_on(slot, req, now),
                None => Incoming::Ack { request: req },
            };
        }
        let same_to = |layer: &Self, s: u32| {
            layer.tx(s).and_then(|tx| tx.kind.legacy()).is_some_and(|l| l.request_to_tag == to_tag)
        };
        if let Some(slot) = found.filter(|&s| same_to(self, s)) {
            self.retransmitted(slot, now);
            return Incoming::Retransmission;
        }
        let invite = if req.method == Method::Cancel {
            let ikey = LegacyKey { method: Method::Invite, ..lkey.clone() };
            self.legacy.get(&ikey).copied().filter(|&s| same_to(self, s) && self.awaiting_final(s)).and_then(|s| {
                match self.tx(s).map(|tx| tx.kind.tx_key()) {
                    Some(TxKey::Server(k)) => Some(k),
                    _ => None,
                }
            })
        } else {
            None
        };
        self.legacy_ids += 1;
        let key = ServerKey {
            branch: SipStr::from(format!("rfc2543;{}", self.legacy_ids)),
            sent_by: top.sent_by,
            method: req.method.clone(),
        };
        let legacy = Box::new(Legacy { key: lkey, request_to_tag: to_tag, response_to_tag: None });
        self.new_server(key, Some(legacy), req, invite, src, now)
    }

    /// Whether the server transaction in `slot` has not sent a final response.
    fn awaiting_final(&self, slot: u32) -> bool {
        self.tx(slot).is_some_and(|tx| match &tx.kind {
            Kind::ServerInvite { m, .. } => m.state == ServerInviteState::Proceeding,
            Kind::ServerNonInvite { m, .. } => {
                matches!(m.state, ServerNonInviteState::Trying | ServerNonInviteState::Proceeding)
            }
            _ => false,
        })
    }

    fn ack_on(&mut self, slot: u32, req: Request, now: Instant) -> Incoming {
        let outcome = self.with_tx(slot, now, |kind, cx| match kind {
            Kind::ServerInvite { m, .. } => m.on_ack(cx),
            _ => AckOutcome::PassUp,
        });
        match outcome {
            AckOutcome::Absorbed => Incoming::Retransmission,
            AckOutcome::PassUp => Incoming::Ack { request: req },
        }
    }

    fn retransmitted(&mut self, slot: u32, now: Instant) {
        self.with_tx(slot, now, |kind, cx| match kind {
            Kind::ServerInvite { m, .. } => m.on_retransmission(cx),
            Kind::ServerNonInvite { m, .. } => m.on_retransmission(cx),
            _ => {}
        });
    }

    fn new_server(
        &mut self,
        key: ServerKey,
        legacy: Option<Box<Legacy>>,
        req: Request,
        invite: Option<ServerKey>,
        src: Destination,
        now: Instant,
    ) -> Incoming {
        if let Some(old) = self.servers.get(&key).copied() {
            self.remove(old);
        }
        let legacy_key = legacy.as_ref().map(|l| l.key.clone());
        let kind = if req.method == Method::Invite {
            Kind::ServerInvite { key: key.clone(), m: ServerInvite::new(trying(&req)), legacy }
        } else {
            Kind::ServerNonInvite { key: key.clone(), m: ServerNonInvite::new(), legacy }
        };
        let slot = self.insert(src, kind);
        self.servers.insert(key.clone(), slot);
        if let Some(l) = legacy_key {
            self.legacy.insert(l, slot);
        }
        self.with_tx(slot, now, |kind, cx| {
            if let Kind::ServerInvite { m, .. } = kind {
                m.start(cx);
            }
        });
        if req.method == Method::Cancel {
            Incoming::Cancel { key, invite, request: req }
        } else {
            Incoming::New { key, request: req }
        }
    }

    /// A response arrived. It is matched per §17.1.3 (top Via branch and CSeq method)
    /// and reported through [`TxEvent::Response`]; `Some(resp)` comes back when no
    /// transaction matches (a stray, e.g. a 2xx retransmitted after Timer M).
    pub fn on_response(&mut self, resp: Response, now: Instant) -> Option<Response> {
        let Some(key) = client_key_of(&resp) else {
            return Some(resp);
        };
        let Some(slot) = self.clients.get(&key).copied() else {
            return Some(resp);
        };
        self.with_tx(slot, now, move |kind, cx| match kind {
            Kind::ClientInvite { key, m } => m.on_response(resp, key, cx),
            Kind::ClientNonInvite { key, m } => m.on_response(resp, key, cx),
            _ => {}
        });
        self.prune();
        None
    }

    /// Starts a client transaction for `req` (INVITE or non-INVITE by its method) and
    /// sends it to `dest`.
    ///
    /// The caller has put a Via with a unique magic-cookie branch on top (see
    /// [`branch_from`]); the transaction is keyed on it. An ACK is not a transaction
    /// (send the ACK of a 2xx with [`TransactionLayer::send_stateless`]); one passed here
    /// is sent once, statelessly. Reusing the branch of a live transaction of the same
    /// method ends that transaction.
    pub fn send_request(&mut self, req: Request, dest: Destination, now: Instant) -> ClientKey {
        let branch = req.headers.top_via().ok().and_then(|v| v.branch().map(SipStr::from)).unwrap_or_default();
        let key = ClientKey { branch, method: req.method.clone() };
        if req.method == Method::Ack {
            self.send_stateless(dest, Message::Request(req).to_bytes());
            return key;
        }
        if let Some(old) = self.clients.get(&key).copied() {
            self.remove(old);
        }
        let kind = if req.method == Method::Invite {
            Kind::ClientInvite { key: key.clone(), m: ClientInvite::new(req) }
        } else {
            Kind::ClientNonInvite { key: key.clone(), m: ClientNonInvite::new(req) }
        };
        let slot = self.insert(dest, kind);
        self.clients.insert(key.clone(), slot);
        self.with_tx(slot, now, |kind, cx| match kind {
            Kind::ClientInvite { m, .. } => m.start(cx),
            Kind::ClientNonInvite { m, .. } => m.start(cx),
            _ => {}
        });
        self.prune();
        key
    }

    /// Sends a response on a server transaction and moves its state. The response is
    /// serialized once and kept for retransmissions; it goes to the destination the
    /// request came from.
    pub fn respond(&mut self, key: &ServerKey, resp: Response, now: Instant) -> Result<(), TransactionError> {
        let status = resp.status;
        if !(100..=699).contains(&status) {
            return Err(TransactionError::BadStatus(status));
        }
        let slot = *self.servers.get(key).ok_or(TransactionError::NoTransaction)?;
        let is_legacy = self.tx(slot).is_some_and(|tx| tx.kind.legacy().is_some());
        let final_to_tag = if is_legacy && status >= 200 { to_tag(&resp.headers) } else { None };
        let bytes = Message::Response(resp).to_bytes();
        let result = self.with_tx(slot, now, move |kind, cx| match kind {
            Kind::ServerInvite { m, legacy, .. } => {
                let r = m.respond(status, bytes, cx);
                if let (Ok(()), Some(l)) = (&r, legacy) {
                    if status >= 200 {
                        l.response_to_tag = final_to_tag;
                    }
                }
                r
            }
            Kind::ServerNonInvite { m, .. } => m.respond(status, bytes, cx),
            _ => Err(TransactionError::NoTransaction),
        });
        self.prune();
        result
    }

    /// Queues bytes outside any transaction: the ACK of a 2xx, the UA's retransmissions
    /// of its 2xx, stateless responses.
    pub fn send_stateless(&mut self, dest: Destination, msg: Bytes) {
        self.out.transmits.push_back(Transmit { dest, data: msg });
    }

    /// Sending to `dest` failed (§17.1.4, §17.2.4): every transaction to it ends, those
    /// still waiting for a final response or an ACK with an error event first.
    pub fn transport_error(&mut self, dest: &Destination, now: Instant) {
        let Some(slots) = self.by_dest.get(dest) else {
            return;
        };
        let mut slots: Vec<u32> = slots.iter().copied().collect();
        slots.sort_unstable(); // deterministic event order
        for slot in slots {
            self.with_tx(slot, now, |kind, cx| match kind {
                Kind::ClientInvite { key, m } => m.on_transport_error(key, cx),
                Kind::ClientNonInvite { key, m } => m.on_transport_error(key, cx),
                Kind::ServerInvite { key, m, .. } => m.on_transport_error(key, cx),
                Kind::ServerNonInvite { key, m, .. } => m.on_transport_error(key, cx),
            });
        }
        self.prune();
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((at, gen, slot))) = self.out.heap.peek() {
            if at > now {
                break;
            }
            self.out.heap.pop();
            let Some(armed) = self.tx_mut(slot).and_then(|tx| tx.timers.take(gen)) else {
                continue;
            };
            self.with_tx(slot, now, |kind, cx| match kind {
                Kind::ClientInvite { key, m } => m.on_timer(armed.timer, armed.interval, key, cx),
                Kind::ClientNonInvite { key, m } => m.on_timer(armed.timer, armed.interval, key, cx),
                Kind::ServerInvite { key, m, .. } => m.on_timer(armed.timer, armed.interval, key, cx),
                Kind::ServerNonInvite { m, .. } => m.on_timer(armed.timer, cx),
            });
        }
        self.prune();
    }

    /// The next datagram or stream frame to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.transmits.pop_front()
    }

    /// The next event for the TU.
    pub fn poll_event(&mut self) -> Option<TxEvent> {
        self.out.events.pop_front()
    }

    /// When [`TransactionLayer::handle_timeout`] must next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.out.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    // -- internals ------------------------------------------------------------------

    fn tx(&self, slot: u32) -> Option<&Tx> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    fn tx_mut(&mut self, slot: u32) -> Option<&mut Tx> {
        self.slots.get_mut(slot as usize).and_then(Option::as_mut)
    }

    fn insert(&mut self, dest: Destination, kind: Kind) -> u32 {
        let tx = Some(Tx { dest, timers: Timers::default(), kind });
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = tx;
                s
            }
            None => {
                let s = u32::try_from(self.slots.len()).expect("fewer than 2^32 transactions");
                self.slots.push(tx);
                s
            }
        };
        self.by_dest.entry(dest).or_default().insert(slot);
        slot
    }

    /// Runs `f` on a live transaction's machine, then forgets the transaction if it
    /// reached Terminated. `slot` must be live (an internal invariant).
    fn with_tx<R>(&mut self, slot: u32, now: Instant, f: impl FnOnce(&mut Kind, &mut Cx<'_>) -> R) -> R {
        let tx = self.slots.get_mut(slot as usize).and_then(Option::as_mut).expect("live transaction slot");
        let mut cx = Cx { now, cfg: &self.cfg, dest: tx.dest, slot, timers: &mut tx.timers, out: &mut self.out };
        let r = f(&mut tx.kind, &mut cx);
        if tx.kind.is_terminated() {
            self.remove(slot);
        }
        r
    }

    /// Forgets the transaction in `slot` and reports [`TxEvent::Terminated`].
    fn remove(&mut self, slot: u32) {
        let Some(tx) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        let key = tx.kind.tx_key();
        match &key {
            TxKey::Client(k) => {
                if self.clients.get(k) == Some(&slot) {
                    self.clients.remove(k);
                }
            }
            TxKey::Server(k) => {
                if self.servers.get(k) == Some(&slot) {
                    self.servers.remove(k);
                }
            }
        }
        if let Some(l) = tx.kind.legacy() {
            if self.legacy.get(&l.key) == Some(&slot) {
                self.legacy.remove(&l.key);
            }
        }
        if let Some(set) = self.by_dest.get_mut(&tx.dest) {
            set.remove(&slot);
            if set.is_empty() {
                self.by_dest.remove(&tx.dest);
            }
        }
        self.free.push(slot);
        self.out.events.push_back(TxEvent::Terminated(key));
    }

    /// Drops stale heap entries from the top so that `poll_timeout` is exact.
    fn prune(&mut self) {
        while let Some(&Reverse((_, gen, slot))) = self.out.heap.peek() {
            if self.tx(slot).is_some_and(|tx| tx.timers.has(gen)) {
                break;
            }
            self.out.heap.pop();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Message helpers.

/// What matching needs from a request's top Via, owned.
struct TopVia {
    /// The branch, when it carries the RFC 3261 magic cookie.
    magic_branch: Option<SipStr>,
    /// `host[:port]`, host lower-cased.
    sent_by: SipStr,
    /// Without the cookie: transport, sent-by and branch, for RFC 2543 matching.
    legacy_via: SipStr,
}

impl TopVia {
    fn of(req: &Request) -> TopVia {
        let Ok(v) = req.headers.top_via() else {
            // A request without a usable Via (the UA normally rejects it first): match it
            // the RFC 2543 way on what remains.
            return TopVia { magic_branch: None, sent_by: SipStr::default(), legacy_via: SipStr::default() };
        };
        let sent_by = sent_by(&v);
        match v.branch() {
            Some(b) if b.starts_with(MAGIC_COOKIE) => TopVia {
                magic_branch: Some(SipStr::from(b)),
                sent_by: SipStr::from(sent_by),
                legacy_via: SipStr::default(),
            },
            branch => {
                let mut via = v.transport.to_ascii_uppercase();
                let _ = write!(via, "/{sent_by};{}", branch.unwrap_or_default());
                TopVia { magic_branch: None, sent_by: SipStr::from(sent_by), legacy_via: SipStr::from(via) }
            }
        }
    }
}

/// `host[:port]` of a Via, host lower-cased (one allocation).
fn sent_by(v: &Via<'_>) -> String {
    let mut s = String::with_capacity(48);
    let _ = write!(s, "{}", v.host);
    s.make_ascii_lowercase();
    if let Some(p) = v.port {
        let _ = write!(s, ":{p}");
    }
    s
}

impl LegacyKey {
    fn of(req: &Request, via: SipStr) -> LegacyKey {
        let h = &req.headers;
        LegacyKey {
            uri: SipStr::from(req.uri.trim()),
            from_tag: h.from().ok().and_then(|f| f.tag().map(SipStr::from)).unwrap_or_default(),
            call_id: h.call_id().map(|c| SipStr::from(c.as_str())).unwrap_or_default(),
            cseq: h.cseq().map(|c| c.seq).unwrap_or(0),
            via,
            method: if req.method == Method::Ack { Method::Invite } else { req.method.clone() },
        }
    }
}

fn to_tag(h: &crate::msg::Headers) -> Option<SipStr> {
    h.to().ok().and_then(|t| t.tag().map(SipStr::from))
}

/// §17.1.3: the top Via branch and the CSeq method.
fn client_key_of(resp: &Response) -> Option<ClientKey> {
    let branch = resp.headers.top_via().ok()?.branch()?;
    let method = resp.headers.cseq().ok()?.method;
    Some(ClientKey { branch: SipStr::from(branch), method })
}

/// The CANCEL of an INVITE (RFC 3261 §9.1): same Request-URI, Call-ID, To, From and
/// CSeq number (method CANCEL), a single Via equal to the INVITE's top Via, the
/// INVITE's Route headers, Max-Forwards 70 and no body.
pub fn build_cancel(invite: &Request) -> Request {
    let h = &invite.headers;
    let mut c = Request::new(Method::Cancel, invite.uri.clone());
    if let Some(via) = first_via(h) {
        c.headers.push(HeaderName::Via, via);
    }
    copy(h, &mut c.headers, HeaderName::Route);
    c.headers.push(HeaderName::MaxForwards, SipStr::from_static("70"));
    copy(h, &mut c.headers, HeaderName::To);
    copy(h, &mut c.headers, HeaderName::From);
    copy(h, &mut c.headers, HeaderName::CallId);
    c.headers.push(HeaderName::CSeq, format!("{} CANCEL", cseq_number(h)));
    c.headers.push(HeaderName::ContentLength, SipStr::from_static("0"));
    c
}

/// The 100 Trying of an INVITE (§8.2.6): Via, From, To, Call-ID, CSeq and Timestamp
/// copied, no To tag added, serialized.
fn trying(req: &Request) -> Bytes {
    let mut r = Response::new(100, SipStr::from_static("Trying"));
    for name in [HeaderName::Via, HeaderName::From, HeaderName::To, HeaderName::CallId, HeaderName::CSeq] {
        copy(&req.headers, &mut r.headers, name);
    }
    copy(&req.headers, &mut r.headers, HeaderName::Timestamp);
    r.headers.push(HeaderName::ContentLength, SipStr::from_static("0"));
    Message::Response(r).to_bytes()
}

/// A branch for a new client transaction: the magic cookie followed by hex derived from
/// the driver's random `seed` and a per-request `counter`. Distinct counters give
/// distinct branches for one seed; different seeds (per process) keep them unguessable.
pub fn branch_from(seed: u64, counter: u64) -> String {
    format!("{MAGIC_COOKIE}{:016x}{:x}", mix(seed ^ mix(counter)), counter)
}

/// SplitMix64's finalizer: a bijection on u64 that scatters bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
