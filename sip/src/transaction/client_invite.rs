//! The INVITE client transaction (RFC 3261 §17.1.1, as updated by RFC 6026 §7.2).

use super::shared::{build_ack, encode_request, ClientKey, Cx, Timer, TxEvent};
use crate::msg::{Message, Request, Response};
use bytes::Bytes;
use std::time::Duration;

/// The states of an INVITE client transaction (RFC 3261 Figure 5 with RFC 6026's
/// Accepted state).
///
/// ```text
///                                |INVITE from TU
///              Timer A fires     |INVITE sent         Timer B fires
///              Reset A,          V                    or Transport Err.
///              INVITE sent +-----------+              inform TU
///                +---------|           |---------------------------+
///                |         |  Calling  |                           |
///                +-------->|           |--------------+            |
///   300-699                +-----------+ 2xx          |            |
///   ACK sent                  |  |       2xx to TU    |            |
///   resp. to TU               |  |1xx                 |            |
///   +-------------------------+  |1xx to TU           |            |
///   |                            |                    |            |
///   |                1xx         V                    |            |
///   |                1xx to TU +-----------+          |            |
///   |                +---------|           |          |            |
///   |                |         |Proceeding |          |            |
///   |                +-------->|           |          |            |
///   |                          +-----------+ 2xx      |            |
///   |         300-699             |     |    2xx to TU|            |
///   |         ACK sent,           |     +-------+     |            |
///   |         resp. to TU         |             |     |            |
///   |                             |             V     V            |
///   |  +--------------------------+          +-----------+  2xx    |
///   |  |                                     |           |  2xx to |
///   |  |   300-699                           | Accepted  |  TU     |
///   |  |   ACK sent  +-----------+           |           |<-+      |
///   |  |  +----------|           |           +-----------+  |      |
///   |  |  |          | Completed |             |  |         |      |
///   |  |  +--------->|           |             |  +---------+      |
///   +--+------------>+-----------+             |                   |
///                          |                   | Timer M fires     |
///                          | Timer D fires     |                   |
///                          | (0 if reliable)   |                   |
///                          V                   V                   |
///                    +---------------------------+                 |
///                    |        Terminated         |<----------------+
///                    +---------------------------+
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientInviteState {
    /// INVITE sent, no response yet; Timer A retransmits (UDP), Timer B gives up.
    Calling,
    /// A provisional response arrived; no more retransmissions, no timeout.
    Proceeding,
    /// A 300-699 arrived and was ACKed; Timer D absorbs its retransmissions.
    Completed,
    /// A 2xx arrived (RFC 6026); Timer M passes 2xx retransmissions up for re-ACKing.
    Accepted,
    /// Done.
    Terminated,
}

pub(super) struct ClientInvite {
    pub(super) state: ClientInviteState,
    /// The serialized INVITE, for Timer A.
    request: Bytes,
    /// The INVITE itself, to build the ACK of a non-2xx; dropped once final.
    invite: Option<Request>,
    /// The serialized ACK of our non-2xx final response, re-sent in Completed.
    ack: Option<Bytes>,
}

impl ClientInvite {
    pub(super) fn new(invite: Request) -> Self {
        let (invite, request) = encode_request(invite);
        ClientInvite { state: ClientInviteState::Calling, request, invite: Some(invite), ack: None }
    }

    pub(super) fn start(&mut self, cx: &mut Cx<'_>) {
        cx.send(self.request.clone());
        cx.start(Timer::A);
        cx.start(Timer::B);
    }

    pub(super) fn on_response(&mut self, resp: Response, key: &ClientKey, cx: &mut Cx<'_>) {
        use ClientInviteState::*;
        match (self.state, resp.status) {
            (Calling | Proceeding, 100..=199) => {
                // §17.1.1.2: no retransmissions in Proceeding, and Timer B only runs in Calling.
                cx.cancel_all();
                self.state = Proceeding;
                deliver(key, resp, cx);
            }
            (Calling | Proceeding, 200..=299) => {
                cx.cancel_all();
                self.invite = None;
                self.state = Accepted;
                cx.start(Timer::M);
                deliver(key, resp, cx);
            }
            (Calling | Proceeding, _) => {
                cx.cancel_all();
                if let Some(invite) = self.invite.take() {
                    let ack = Message::Request(build_ack(&invite, &resp)).to_bytes();
                    cx.send(ack.clone());
                    self.ack = Some(ack);
                }
                deliver(key, resp, cx);
                self.state = Completed;
                if cx.start(Timer::D) {
                    self.state = Terminated;
                }
            }
            // RFC 6026 §7.2: each 2xx retransmission goes up so the UA re-sends its ACK.
            (Accepted, 200..=299) => deliver(key, resp, cx),
            // §17.1.1.2: a retransmitted final response gets the ACK again, not the TU.
            (Completed, 300..=699) => {
                if let Some(ack) = &self.ack {
                    cx.send(ack.clone());
                }
            }
            _ => {}
        }
    }

    pub(super) fn on_timer(&mut self, timer: Timer, interval: Duration, key: &ClientKey, cx: &mut Cx<'_>) {
        use ClientInviteState::*;
        match (self.state, timer) {
            (Calling, Timer::A) => {
                cx.send(self.request.clone());
                cx.arm(Timer::A, interval * 2);
            }
            (Calling, Timer::B) => {
                cx.cancel_all();
                cx.event(TxEvent::ClientTimeout { key: key.clone() });
                self.state = Terminated;
            }
            (Completed, Timer::D) | (Accepted, Timer::M) => self.state = Terminated,
            _ => {}
        }
    }

    pub(super) fn on_transport_error(&mut self, key: &ClientKey, cx: &mut Cx<'_>) {
        if matches!(self.state, ClientInviteState::Calling | ClientInviteState::Proceeding) {
            cx.event(TxEvent::ClientTransportError { key: key.clone() });
        }
        cx.cancel_all();
        self.state = ClientInviteState::Terminated;
    }
}

fn deliver(key: &ClientKey, response: Response, cx: &mut Cx<'_>) {
    cx.event(TxEvent::Response { key: key.clone(), response });
}
