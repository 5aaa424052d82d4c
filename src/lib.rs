//! dialtone: the engine that wires the SIP stack, the media engine and the control API
//! to sockets, clocks and tasks. This crate is the only place that does I/O.
#![deny(missing_docs)]
