//! dialtone-sip: a sans-IO SIP stack (RFC 3261).
//!
//! Nothing in this crate opens a socket, reads the clock or spawns. Bytes come in
//! through [`parse::parse_datagram`] or [`parse::StreamParser`]; the state machines
//! ([`transaction`], the UA core) take input with an explicit `now: Instant` and are
//! drained for output (`poll_transmit`, `poll_event`, `poll_timeout`). The driver in the
//! `dialtone` crate owns sockets and timers.
//!
//! Panics: none on input from the network; a panic is a bug in an internal invariant.
#![deny(missing_docs)]

pub mod auth;
pub mod dialog;
pub mod error;
pub mod grammar;
pub mod header;
pub mod method;
pub mod msg;
pub mod name;
pub mod parse;
pub mod perimeter;
pub mod sdp;
pub mod testing;
pub mod text;
pub mod transaction;
pub mod transport;
pub mod ua;
pub mod uri;
pub mod userauth;
pub mod validate;

pub use error::ParseError;
pub use header::{AuthParams, CSeq, MediaType, NameAddr, Via, MAGIC_COOKIE};
pub use method::Method;
pub use msg::{reason_phrase, Header, Headers, Message, Request, Response};
pub use name::HeaderName;
pub use parse::{parse_datagram, Malformed, StreamParser};
pub use text::SipStr;
pub use transport::{Destination, Transmit, Transport};
pub use uri::{Host, Params, SipUri, Uri};
