//! The INVITE server transaction (RFC 3261 §17.2.1, as updated by RFC 6026 §7.1).

use super::shared::{Cx, ServerKey, Timer, TransactionError, TxEvent};
use bytes::Bytes;
use std::time::Duration;

/// The states of an INVITE server transaction (RFC 3261 Figure 7 with RFC 6026's
/// Accepted state).
///
/// ```text
///                                   |INVITE
///                                   |pass INV to TU
///                INVITE             V send 100 Trying (at once)
///                send response +------------+
///                    +---------|            |--------+ 101-199 from TU
///                    |         | Proceeding |        | send response
///                    +-------->|            |<-------+
///                              +------------+
///              Transport Err.   |    |    |   2xx from TU
///              Inform TU        |    |    +-----------------+ send response
///          +--------------------+    |                      |
///          |      300-699 from TU    |                      V
///          |      send response      |   INVITE      +------------+
///          |                         |   -           |            |--+ 2xx from TU
///          | INVITE                  V     +-------->|  Accepted  |  | send response
///          | send response  +------------+           |            |<-+
///          |       +--------|            |           |            |--+ ACK
///          |       |        | Completed  |           +------------+  | to TU
///          |       +------->|            |--+ Timer G fires  |    ^--+
///          |                +------------+  | send response  |
///          |                 |  |     ^-----+                |
///          | Timer H fires,  |  | ACK                        |
///          | Transport Err., |  | -                          |
///          | Inform TU       |  V                            |
///          |                 | +------------+                |
///          |                 | |            |--+ ACK         |
///          |                 | | Confirmed  |  | -           | Timer L fires,
///          |                 | |            |<-+             | Transport Err.
///          |                 | +------------+                | (Inform TU)
///          |                 |   | Timer I fires (0 if reliable)
///          V                 V   V                           V
///        +-------------------------------------------------------+
///        |                      Terminated                       |
///        +-------------------------------------------------------+
/// ```
///
/// In Accepted the UA core, not the transaction, retransmits the 2xx until the ACK
/// (§13.3.1.4): the ACK of a 2xx carries a new branch and reaches the UA directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerInviteState {
    /// INVITE received, 100 Trying sent; a retransmitted INVITE gets the last provisional.
    Proceeding,
    /// A 300-699 was sent; Timer G retransmits it (UDP) until the ACK, Timer H gives up.
    Completed,
    /// The ACK arrived; Timer I absorbs ACK retransmissions.
    Confirmed,
    /// A 2xx was sent (RFC 6026); Timer L absorbs INVITE retransmissions.
    Accepted,
    /// Done.
    Terminated,
}

/// What to do with an ACK that matched an INVITE server transaction.
pub(super) enum AckOutcome {
    /// It acknowledged our non-2xx final response (or repeated that ACK).
    Absorbed,
    /// Not ours to absorb: give it to the UA.
    PassUp,
}

pub(super) struct ServerInvite {
    pub(super) state: ServerInviteState,
    /// The last response sent (the 100 Trying at first), for retransmissions.
    last: Bytes,
}

impl ServerInvite {
    pub(super) fn new(trying: Bytes) -> Self {
        ServerInvite { state: ServerInviteState::Proceeding, last: trying }
    }

    /// §17.2.1: 100 Trying at once.
    pub(super) fn start(&mut self, cx: &mut Cx<'_>) {
        cx.send(self.last.clone());
    }

    pub(super) fn on_retransmission(&mut self, cx: &mut Cx<'_>) {
        if matches!(self.state, ServerInviteState::Proceeding | ServerInviteState::Completed) {
            cx.send(self.last.clone());
        }
        // Accepted (RFC 6026 §7.1) and Confirmed absorb it.
    }

    pub(super) fn on_ack(&mut self, cx: &mut Cx<'_>) -> AckOutcome {
        match self.state {
            ServerInviteState::Completed => {
                cx.cancel_all();
                self.state = ServerInviteState::Confirmed;
                if cx.start(Timer::I) {
                    self.state = ServerInviteState::Terminated;
                }
                AckOutcome::Absorbed
            }
            ServerInviteState::Confirmed => AckOutcome::Absorbed,
            _ => AckOutcome::PassUp,
        }
    }

    pub(super) fn respond(&mut self, status: u16, bytes: Bytes, cx: &mut Cx<'_>) -> Result<(), TransactionError> {
        use ServerInviteState::*;
        match (self.state, status) {
            (Proceeding, 100..=199) => {
                cx.send(bytes.clone());
                self.last = bytes;
            }
            (Proceeding, 200..=299) => {
                cx.send(bytes.clone());
                self.last = bytes;
                self.state = Accepted;
                cx.start(Timer::L);
            }
            (Proceeding, _) => {
                cx.send(bytes.clone());
                self.last = bytes;
                self.state = Completed;
                cx.start(Timer::G);
                cx.start(Timer::H);
            }
            // RFC 6026 §7.1: further 2xx from the TU are sent.
            (Accepted, 200..=299) => cx.send(bytes),
            _ => return Err(TransactionError::AlreadyFinal),
        }
        Ok(())
    }

    pub(super) fn on_timer(&mut self, timer: Timer, interval: Duration, key: &ServerKey, cx: &mut Cx<'_>) {
        use ServerInviteState::*;
        match (self.state, timer) {
            (Completed, Timer::G) => {
                cx.send(self.last.clone());
                cx.arm(Timer::G, (interval * 2).min(cx.cfg.t2));
            }
            (Completed, Timer::H) => {
                cx.cancel_all();
                cx.event(TxEvent::ServerTimeout { key: key.clone() });
                self.state = Terminated;
            }
            (Confirmed, Timer::I) | (Accepted, Timer::L) => self.state = Terminated,
            _ => {}
        }
    }

    pub(super) fn on_transport_error(&mut self, key: &ServerKey, cx: &mut Cx<'_>) {
        if self.state != ServerInviteState::Confirmed {
            cx.event(TxEvent::ServerTransportError { key: key.clone() });
        }
        cx.cancel_all();
        self.state = ServerInviteState::Terminated;
    }
}
