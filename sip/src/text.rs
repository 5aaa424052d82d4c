//! `SipStr`: a cheaply clonable, UTF-8 string that shares the received datagram.

use bytes::Bytes;
use std::fmt;
use std::ops::Deref;

/// An immutable UTF-8 string backed by [`Bytes`].
///
/// Header values parsed from the wire are slices of the received buffer, so parsing
/// does not copy them; values we build ourselves own their allocation.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SipStr(Bytes);

impl SipStr {
    /// A string from a `'static` literal, without allocating.
    pub const fn from_static(s: &'static str) -> Self {
        SipStr(Bytes::from_static(s.as_bytes()))
    }

    /// Wraps bytes after checking they are UTF-8.
    pub fn from_utf8(b: Bytes) -> Result<Self, std::str::Utf8Error> {
        std::str::from_utf8(&b)?;
        Ok(SipStr(b))
    }

    /// The string `s`, which must lie inside `src` (it is a sub-slice of a `&str` view
    /// of `src`), sharing `src`'s buffer. A string outside `src` is an internal bug.
    pub(crate) fn slice_str(src: &Bytes, s: &str) -> Self {
        let base = src.as_ptr() as usize;
        let at = (s.as_ptr() as usize).wrapping_sub(base);
        assert!(at <= src.len() && s.len() <= src.len() - at, "slice outside its buffer");
        // `s` is valid UTF-8 and is exactly `src[at..at + len]`.
        SipStr(src.slice(at..at + s.len()))
    }

    /// The string.
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor checks UTF-8 or slices exactly the octets of a `&str`
        // (asserted in `slice_str`).
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl Deref for SipStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SipStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for SipStr {
    fn from(s: String) -> Self {
        SipStr(Bytes::from(s))
    }
}

impl From<&str> for SipStr {
    fn from(s: &str) -> Self {
        SipStr(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl PartialEq<str> for SipStr {
    fn eq(&self, o: &str) -> bool {
        self.as_str() == o
    }
}

impl PartialEq<&str> for SipStr {
    fn eq(&self, o: &&str) -> bool {
        self.as_str() == *o
    }
}

impl fmt::Display for SipStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SipStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}
