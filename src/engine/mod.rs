//! The call engine (DESIGN.md, "The call engine"): one [`Engine`] owns every call of
//! `serve` as one [`Call`] value keyed by one [`CallId`].
//!
//! It is sans-IO, like the SIP and media cores under it: it never reads the clock, opens a
//! socket, touches a file or spawns. Its inputs are [`Event`]s, each with the `now` the
//! driver read; it drives the sans-IO [`UserAgent`] it is handed (whose transmits the
//! driver sends); everything else it wants done comes out of [`Engine::poll_action`] as an
//! [`Action`] (bind a port, start or steer a call's media, persist a change, answer a
//! command). After every input the driver drains `poll_action` until `None`, then sleeps
//! until [`Engine::poll_timeout`] or the next input.
//!
//! Binding a port is the one round trip: [`Action::OpenPort`] asks the driver to bind a
//! port's RTP and RTCP sockets, and the driver answers at once with
//! [`Event::PortOpened`] (or `PortBusy`, another program has it: the engine tries the next).
//!
//! `sim` runs whole calls against an in-memory peer with a clock it advances.

mod call;
mod control;
mod core;
mod dial;
mod inbound;
mod io;
mod org;
mod policy;
mod refer;
mod route;
mod sip;
mod trunk;

#[cfg(test)]
mod sim;

pub use call::{AgentPlan, Call, CallId, Dial, Negotiation, Origin, Phase, RecordAs, SourceSpec};
pub use core::Engine;
pub use io::{
    Action, Ask, Command, Config, Counters, DialOutcome, Event, MediaCommand, MediaEvent, MediaStart, Persist, Refusal,
};
pub use org::{OrgPolicy, PERMIT_TTL};
pub use trunk::Trunk;
