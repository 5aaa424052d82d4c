//! dialtone-media: the sans-IO media core (issue 3).
//!
//! Nothing here opens a socket or reads the clock: packets come in with an explicit
//! `now`, and audio leaves as 20 ms frames of 16-bit PCM. The `dialtone` crate owns the
//! RTP sockets, the pacing timer and the consumer threads (recorder, sound card).
#![deny(missing_docs)]

pub mod amd;
pub mod dtmf;
pub mod echo;
pub mod g711;
pub mod g722;
pub mod jitter;
pub mod opus;
pub mod player;
pub mod playout;
pub mod resample;
pub mod rtcp;
pub mod rtp;
pub mod session;
pub mod srtp;
pub mod turns;
pub mod vad;
