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
mod model;
mod offer_answer;
mod parse;
mod write;

pub use codec::*;
pub use model::*;
pub use offer_answer::*;
use parse::*;

use thiserror::Error;

/// Why an SDP body could not be parsed. Line numbers are 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is empty or only whitespace.
    #[error("empty SDP body")]
    Empty,
    /// The first line is not `v=0`.
    #[error("SDP must start with v=0")]
    BadVersion,
    /// There is no `o=` line.
    #[error("missing o= line")]
    MissingOrigin,
    /// The `o=` line has fewer than six fields or a non-numeric sess-version.
    #[error("line {line}: malformed o= line")]
    BadOrigin {
        /// Line number.
        line: usize,
    },
    /// A `c=` line with fewer than three fields.
    #[error("line {line}: malformed c= line")]
    BadConnection {
        /// Line number.
        line: usize,
    },
    /// An `m=` line with fewer than three fields.
    #[error("line {line}: malformed m= line")]
    BadMedia {
        /// Line number.
        line: usize,
    },
    /// An `m=` line whose port (or port count) is not a number in range.
    #[error("line {line}: bad port in m= line")]
    BadPort {
        /// Line number.
        line: usize,
    },
}

/// Why an offer/answer exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OfferAnswerError {
    /// No audio stream shares a codec with us (a UAS answers 488 Not Acceptable Here).
    #[error("no common codec")]
    NoCommonCodec,
    /// The answer has a different number of m= lines than the offer (RFC 3264 §6).
    #[error("answer has {answered} m= lines, offer had {offered}")]
    MediaCountMismatch {
        /// m= lines in the offer.
        offered: usize,
        /// m= lines in the answer.
        answered: usize,
    },
    /// The chosen stream has no `c=` line at media or session level.
    #[error("no connection address for the audio stream")]
    MissingConnection,
    /// The chosen stream's connection address is not an IP literal (e.g. an FQDN).
    #[error("connection address {0:?} is not an IP address")]
    UnsupportedAddress(String),
}

#[cfg(test)]
mod tests;
