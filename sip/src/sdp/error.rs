//! What can go wrong reading SDP or settling an offer/answer.

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
    /// SRTP was required (by us, or by the offer's `RTP/SAVP`) and no `a=crypto` line was
    /// usable (a UAS answers 488).
    #[error("no usable a=crypto for SRTP")]
    NoCrypto,
    /// The chosen stream has no `c=` line at media or session level.
    #[error("no connection address for the audio stream")]
    MissingConnection,
    /// The chosen stream's connection address is not an IP literal (e.g. an FQDN).
    #[error("connection address {0:?} is not an IP address")]
    UnsupportedAddress(String),
}
