//! SDP (RFC 8866, ex RFC 4566): model, lenient parser, CRLF serializer, RFC 3551 codec
//! catalogue and RFC 3264 offer/answer for one audio stream. Sans-IO, `std` only.
//!
//! Why our own parser: webrtc-sdp 0.3.17 was tried on SIP bodies. It accepts SIPp's default uac
//! body, an empty `s=`, LF-only lines, media-level-only `c=` and static PTs without `a=rtpmap`,
//! but it rejects the whole body on a `p=` line, a missing `t=`, an `a=rtpmap` without a clock
//! rate or a sess-id above u64, silently drops unknown attributes (`a=silenceSupp`, `a=X-…`)
//! when re-serializing, and pulls in url/idna/ICU (~20 crates). We need lossless round trips and
//! leniency toward carriers, so we keep a small parser that is strict only where meaning is lost.
//!
//! Leniency rules: LF or CRLF line ends; blank, unknown and misplaced lines are skipped; an
//! attribute whose typed form does not parse is kept as [`Attribute::Other`]; a missing or
//! empty `s=` becomes `-`; a body without `t=` gets `t=0 0`. Errors: no `v=0` first line, no or
//! malformed `o=`, malformed `c=`, malformed `m=` or its port. Parsing never panics.

mod codec;
mod error;
mod model;
mod offer_answer;
mod parse;
pub mod sdes;
mod write;

pub use codec::*;
pub use error::*;
pub use model::*;
pub use offer_answer::*;

#[cfg(test)]
mod tests;
