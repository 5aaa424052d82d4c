//! The non-INVITE server transaction (RFC 3261 §17.2.2).

use super::shared::{Cx, ServerKey, Timer, TransactionError, TxEvent};
use bytes::Bytes;

/// The states of a non-INVITE server transaction (RFC 3261 Figure 8).
///
/// ```text
///                                   |Request received
///                                   |pass to TU
///                                   V
///                             +-----------+
///                             |           |
///                             | Trying    |-------------+
///                             |           |             |
///                             +-----------+             |200-699 from TU
///                                   |                   |send response
///                                   |1xx from TU        |
///                                   |send response      |
///                                   |                   |
///                Request            V      1xx from TU  |
///                send response+-----------+send response|
///                    +--------|           |--------+    |
///                    |        | Proceeding|        |    |
///                    +------->|           |<-------+    |
///             +<--------------|           |             |
///             |Trnsprt Err    +-----------+             |
///             |Inform TU            |                   |
///             |                     |                   |
///             |                     |200-699 from TU    |
///             |                     |send response      |
///             |  Request            V                   |
///             |  send response+-----------+             |
///             |      +--------|           |             |
///             |      |        | Completed |<------------+
///             |      +------->|           |
///             +<--------------|           |
///             |Trnsprt Err    +-----------+
///             |Inform TU            |
///             |                     |Timer J fires
///             |                     |(0 if reliable)
///             |                     |-
///             |                     |
///             |                     V
///             |               +-----------+
///             |               |           |
///             +-------------->| Terminated|
///                             |           |
///                             +-----------+
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerNonInviteState {
    /// Request received, nothing sent; retransmissions are absorbed.
    Trying,
    /// A provisional was sent; retransmissions get it again.
    Proceeding,
    /// The final response was sent; Timer J answers retransmissions with it.
    Completed,
    /// Done.
    Terminated,
}

pub(super) struct ServerNonInvite {
    pub(super) state: ServerNonInviteState,
    last: Option<Bytes>,
}

impl ServerNonInvite {
    pub(super) fn new() -> Self {
        ServerNonInvite { state: ServerNonInviteState::Trying, last: None }
    }

    pub(super) fn on_retransmission(&mut self, cx: &mut Cx<'_>) {
        if let Some(last) = &self.last {
            cx.send(last.clone());
        }
    }

    pub(super) fn respond(&mut self, status: u16, bytes: Bytes, cx: &mut Cx<'_>) -> Result<(), TransactionError> {
        use ServerNonInviteState::*;
        if !matches!(self.state, Trying | Proceeding) {
            return Err(TransactionError::AlreadyFinal);
        }
        cx.send(bytes.clone());
        self.last = Some(bytes);
        if status < 200 {
            self.state = Proceeding;
        } else {
            self.state = Completed;
            if cx.start(Timer::J) {
                self.state = Terminated;
            }
        }
        Ok(())
    }

    pub(super) fn on_timer(&mut self, timer: Timer, _cx: &mut Cx<'_>) {
        if (self.state, timer) == (ServerNonInviteState::Completed, Timer::J) {
            self.state = ServerNonInviteState::Terminated;
        }
    }

    pub(super) fn on_transport_error(&mut self, key: &ServerKey, cx: &mut Cx<'_>) {
        if self.state != ServerNonInviteState::Completed {
            cx.event(TxEvent::ServerTransportError { key: key.clone() });
        }
        cx.cancel_all();
        self.state = ServerNonInviteState::Terminated;
    }
}
