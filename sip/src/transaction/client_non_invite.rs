//! The non-INVITE client transaction (RFC 3261 §17.1.2).

use super::shared::{encode_request, ClientKey, Cx, Timer, TxEvent};
use crate::msg::{Request, Response};
use bytes::Bytes;
use std::time::Duration;

/// The states of a non-INVITE client transaction (RFC 3261 Figure 6).
///
/// ```text
///                                    |Request from TU
///                                    |send request
///                Timer E             V
///                send request  +-----------+
///                    +---------|           |-------------------+
///                    |         |  Trying   |  Timer F          |
///                    +-------->|           |  or Transport Err.|
///                              +-----------+  inform TU        |
///                 200-699         |  |                         |
///                 resp. to TU     |  |1xx                      |
///                 +---------------+  |resp. to TU              |
///                 |                  |                         |
///                 |   Timer E        V       Timer F           |
///                 |   send req +-----------+ or Transport Err. |
///                 |  +---------|           | inform TU         |
///                 |  |         |Proceeding |------------------>|
///                 |  +-------->|           |-----+             |
///                 |            +-----------+     |1xx          |
///                 |              |      ^        |resp to TU   |
///                 | 200-699      |      +--------+             |
///                 | resp. to TU  |                             |
///                 |              |                             |
///                 |              V                             |
///                 |            +-----------+                   |
///                 |            |           |                   |
///                 |            | Completed |                   |
///                 |            |           |                   |
///                 |            +-----------+                   |
///                 |              ^   |                         |
///                 |              |   | Timer K                 |
///                 +--------------+   | (0 if reliable)         |
///                                    V                         |
///              NOTE:           +-----------+                   |
///                              |           |                   |
///          transitions         | Terminated|<------------------+
///          labeled with        |           |
///          the event           +-----------+
///          over the action
///          to take
/// ```
///
/// Timer E starts at T1 and doubles up to T2 in Trying; in Proceeding it fires every T2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientNonInviteState {
    /// Request sent; Timer E retransmits (UDP), Timer F gives up.
    Trying,
    /// A provisional arrived; retransmissions continue every T2 until Timer F.
    Proceeding,
    /// A final response arrived; Timer K absorbs its retransmissions.
    Completed,
    /// Done.
    Terminated,
}

pub(super) struct ClientNonInvite {
    pub(super) state: ClientNonInviteState,
    request: Bytes,
}

impl ClientNonInvite {
    pub(super) fn new(req: Request) -> Self {
        let (_, request) = encode_request(req);
        ClientNonInvite { state: ClientNonInviteState::Trying, request }
    }

    pub(super) fn start(&mut self, cx: &mut Cx<'_>) {
        cx.send(self.request.clone());
        cx.start(Timer::E);
        cx.start(Timer::F);
    }

    pub(super) fn on_response(&mut self, resp: Response, key: &ClientKey, cx: &mut Cx<'_>) {
        use ClientNonInviteState::*;
        match (self.state, resp.status) {
            (Trying | Proceeding, 100..=199) => {
                self.state = Proceeding;
                cx.event(TxEvent::Response { key: key.clone(), response: resp });
            }
            (Trying | Proceeding, _) => {
                cx.cancel_all();
                cx.event(TxEvent::Response { key: key.clone(), response: resp });
                self.state = Completed;
                if cx.start(Timer::K) {
                    self.state = Terminated;
                }
            }
            // Completed: retransmitted responses are absorbed.
            _ => {}
        }
    }

    pub(super) fn on_timer(&mut self, timer: Timer, interval: Duration, key: &ClientKey, cx: &mut Cx<'_>) {
        use ClientNonInviteState::*;
        match (self.state, timer) {
            (Trying, Timer::E) => {
                cx.send(self.request.clone());
                cx.arm(Timer::E, (interval * 2).min(cx.cfg.t2));
            }
            (Proceeding, Timer::E) => {
                cx.send(self.request.clone());
                cx.arm(Timer::E, cx.cfg.t2);
            }
            (Trying | Proceeding, Timer::F) => {
                cx.cancel_all();
                cx.event(TxEvent::ClientTimeout { key: key.clone() });
                self.state = Terminated;
            }
            (Completed, Timer::K) => self.state = Terminated,
            _ => {}
        }
    }

    pub(super) fn on_transport_error(&mut self, key: &ClientKey, cx: &mut Cx<'_>) {
        if matches!(self.state, ClientNonInviteState::Trying | ClientNonInviteState::Proceeding) {
            cx.event(TxEvent::ClientTransportError { key: key.clone() });
        }
        cx.cancel_all();
        self.state = ClientNonInviteState::Terminated;
    }
}
