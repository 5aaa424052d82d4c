//! Parse and validation errors, each knowing the response it earns (RFC 3261 §8.2, §21).

use thiserror::Error;

/// What went wrong with a received message.
///
/// For a request, [`ParseError::status`] gives the response to send; a response that
/// fails to parse is dropped (RFC 3261 §18.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Nothing but whitespace, or a message cut before its header section ended.
    #[error("incomplete message")]
    Incomplete,
    /// The start line is neither a Request-Line nor a Status-Line.
    #[error("bad start line")]
    BadStartLine,
    /// A well-formed SIP version other than 2.0.
    #[error("unsupported SIP version")]
    BadVersion,
    /// Status code outside 100..=699.
    #[error("bad status code")]
    BadStatusCode,
    /// A header line without a colon, or with an invalid name.
    #[error("bad header line")]
    BadHeaderLine,
    /// The header section is not UTF-8.
    #[error("header section is not UTF-8")]
    NotUtf8,
    /// Content-Length missing on a stream, malformed, or larger than what arrived.
    #[error("bad Content-Length")]
    BadContentLength,
    /// A URI that does not follow the grammar.
    #[error("bad URI")]
    BadUri,
    /// A mandatory header is missing.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// A header that must appear once appears more than once.
    #[error("multiple {0} headers")]
    Multiple(&'static str),
    /// A header value that does not follow its grammar.
    #[error("bad {0} header")]
    BadHeader(&'static str),
    /// CSeq method differs from the request method.
    #[error("CSeq method does not match the request method")]
    CSeqMismatch,
    /// The message is larger than we accept.
    #[error("message too large")]
    TooLarge,
}

impl ParseError {
    /// The status code and reason phrase a request with this fault earns.
    pub fn status(&self) -> (u16, &'static str) {
        match self {
            ParseError::BadVersion => (505, "Version Not Supported"),
            ParseError::TooLarge => (513, "Message Too Large"),
            ParseError::Incomplete => (400, "Incomplete Message"),
            ParseError::BadStartLine => (400, "Bad Request-Line"),
            ParseError::BadStatusCode => (400, "Bad Status Code"),
            ParseError::BadHeaderLine => (400, "Bad Header Line"),
            ParseError::NotUtf8 => (400, "Bad Encoding"),
            ParseError::BadContentLength => (400, "Bad Content-Length"),
            ParseError::BadUri => (400, "Bad Request-URI"),
            ParseError::Missing(h) => (400, missing_reason(h)),
            ParseError::Multiple(h) => (400, multiple_reason(h)),
            ParseError::BadHeader(h) => (400, bad_reason(h)),
            ParseError::CSeqMismatch => (400, "CSeq Method Mismatch"),
        }
    }
}

macro_rules! reasons {
    ($f:ident, $prefix:literal) => {
        fn $f(h: &str) -> &'static str {
            match h {
                "Via" => concat!($prefix, " Via"),
                "From" => concat!($prefix, " From"),
                "To" => concat!($prefix, " To"),
                "Call-ID" => concat!($prefix, " Call-ID"),
                "CSeq" => concat!($prefix, " CSeq"),
                "Max-Forwards" => concat!($prefix, " Max-Forwards"),
                "Contact" => concat!($prefix, " Contact"),
                "Content-Type" => concat!($prefix, " Content-Type"),
                "Expires" => concat!($prefix, " Expires"),
                "Require" => concat!($prefix, " Require"),
                "Accept" => concat!($prefix, " Accept"),
                "Route" => concat!($prefix, " Route"),
                "Record-Route" => concat!($prefix, " Record-Route"),
                "Date" => concat!($prefix, " Date"),
                _ => concat!($prefix, " Header"),
            }
        }
    };
}
reasons!(missing_reason, "Missing");
reasons!(multiple_reason, "Multiple");
reasons!(bad_reason, "Bad");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_the_fault() {
        assert_eq!(ParseError::Missing("Call-ID").status(), (400, "Missing Call-ID"));
        assert_eq!(ParseError::BadContentLength.status(), (400, "Bad Content-Length"));
        assert_eq!(ParseError::BadVersion.status().0, 505);
        assert_eq!(ParseError::BadHeader("CSeq").status().1, "Bad CSeq");
    }
}
