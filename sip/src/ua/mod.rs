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

mod agent;
mod bindings;
mod call;
mod helpers;
mod in_dialog;
mod probe;
mod registration;
mod session_timer;
mod timers;
mod types;
mod uac;
mod uas;

pub use agent::UserAgent;
pub use bindings::{DEFAULT_EXPIRES, MAX_EXPIRES, MIN_EXPIRES};
pub use helpers::make_response;
pub use types::*;

#[cfg(test)]
mod tests;
