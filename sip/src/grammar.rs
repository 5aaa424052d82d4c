//! Character classes and small lexical helpers from the RFC 3261 §25 grammar.

/// `token` characters: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~"
#[inline]
pub fn is_token_char(c: u8) -> bool {
    TOKEN[c as usize]
}

/// Lookup table for [`is_token_char`]: the parser asks for every octet of every name.
static TOKEN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~');
        c += 1;
    }
    t
};

/// Whether `s` is a non-empty `token`.
#[inline]
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Linear white space inside one (already unfolded) header value.
#[inline]
pub fn is_wsp(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// Trims SP/HTAB (and CR/LF left by folding) from both ends.
#[inline]
pub fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    // Fast path: SP, HTAB, CR and LF are all below 0x21, and most values are trimmed.
    match (b.first(), b.last()) {
        (Some(&f), Some(&l)) if f > b' ' && l > b' ' => return s,
        (None, _) => return s,
        _ => {}
    }
    let mut start = 0;
    let mut end = b.len();
    while start < end && matches!(b[start], b' ' | b'\t' | b'\r' | b'\n') {
        start += 1;
    }
    while end > start && matches!(b[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
        end -= 1;
    }
    // Only ASCII octets were skipped, so both ends are char boundaries.
    &s[start..end]
}

/// The index of the first `needle` in `hay`, eight octets at a time (the classic
/// "has zero byte" bit trick; exact for the lowest match, which is the one returned).
#[inline]
pub fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    find_byte_or(hay, needle, &mut 0)
}

/// [`find_byte`], also OR-ing every octet it passes (and a few after the match) into `seen`,
/// so a caller learns in the same pass whether any octet had its high bit set.
#[inline]
pub fn find_byte_or(hay: &[u8], needle: u8, seen: &mut u64) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let rep = LO * u64::from(needle);
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let v = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        *seen |= v;
        let w = v ^ rep;
        let hit = w.wrapping_sub(LO) & !w & HI;
        if hit != 0 {
            return Some(base + (hit.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    for (p, &c) in chunks.remainder().iter().enumerate() {
        *seen |= u64::from(c);
        if c == needle {
            return Some(base + p);
        }
    }
    None
}

/// Whether `b` holds a SP or HTAB, eight octets at a time.
pub fn has_wsp(b: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let (sp, tab) = (LO * u64::from(b' '), LO * u64::from(b'\t'));
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let (a, t) = (w ^ sp, w ^ tab);
        if (a.wrapping_sub(LO) & !a | t.wrapping_sub(LO) & !t) & HI != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|&c| is_wsp(c))
}

/// Octets that change the state of [`SplitTop`] (besides its separator).
static SPLIT_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t
};

/// Splits `s` at top-level occurrences of `sep`, ignoring separators inside quoted
/// strings (with backslash escapes) and inside `<...>` URIs. Each part is trimmed.
pub fn split_top(s: &str, sep: u8) -> SplitTop<'_> {
    SplitTop { s, pos: 0, sep, done: false }
}

/// Iterator returned by [`split_top`].
pub struct SplitTop<'a> {
    s: &'a str,
    pos: usize,
    sep: u8,
    done: bool,
}

impl<'a> Iterator for SplitTop<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let b = self.s.as_bytes();
        let start = self.pos;
        let mut i = start;
        let mut in_q = false;
        let mut in_angle = false;
        while i < b.len() {
            let c = b[i];
            // Fast path: most octets are none of `"` `\\` `<` `>` or the separator.
            if !SPLIT_SPECIAL[c as usize] && c != self.sep {
                i += 1;
                continue;
            }
            if in_q {
                if c == b'\\' {
                    i += 1;
                } else if c == b'"' {
                    in_q = false;
                }
            } else if c == b'"' {
                in_q = true;
            } else if c == b'<' {
                in_angle = true;
            } else if c == b'>' {
                in_angle = false;
            } else if c == self.sep && !in_angle {
                self.pos = i + 1;
                return Some(trim(&self.s[start..i]));
            }
            i += 1;
        }
        self.done = true;
        Some(trim(&self.s[start.min(self.s.len())..]))
    }
}

/// Whether quotes in `s` balance (each `"` opened is closed, honouring `\` escapes).
pub fn quotes_balanced(s: &str) -> bool {
    let b = s.as_bytes();
    let mut in_q = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_q => i += 1,
            b'"' => in_q = !in_q,
            _ => {}
        }
        i += 1;
    }
    !in_q
}

/// Removes the surrounding quotes and `\` escapes of a quoted-string, if quoted.
pub fn unquote(s: &str) -> std::borrow::Cow<'_, str> {
    let s = trim(s);
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        let inner = &s[1..s.len() - 1];
        if !inner.bytes().any(|c| c == b'\\') {
            return std::borrow::Cow::Borrowed(inner);
        }
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        std::borrow::Cow::Owned(out)
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes_and_angles() {
        let v: Vec<_> = split_top(r#""a,b" <sip:x@y;p=1,2>, <sip:z>"#, b',').collect();
        assert_eq!(v, vec![r#""a,b" <sip:x@y;p=1,2>"#, "<sip:z>"]);
        let v: Vec<_> = split_top("a , b,c", b',').collect();
        assert_eq!(v, vec!["a", "b", "c"]);
    }

    #[test]
    fn find_byte_matches_position() {
        let hay: Vec<u8> = (0..100u8).map(|i| if i % 7 == 3 { b'\n' } else { 0x80 | i }).collect();
        for start in 0..hay.len() {
            for n in [b'\n', 0x81, 0xff, 0] {
                assert_eq!(find_byte(&hay[start..], n), hay[start..].iter().position(|&c| c == n));
            }
        }
        // A 0x01 octet right after a match must not hide it (borrow propagation).
        assert_eq!(find_byte(b"aaaaaaa\n\x01aaaaaa", b'\n'), Some(7));
        assert_eq!(find_byte(b"\x0b\x0a", b'\n'), Some(1));
        assert!(is_token_char(b'~') && !is_token_char(b':') && !is_token_char(0xc3));
        assert_eq!(trim(" \t a b\r\n"), "a b");
        assert_eq!(trim("  "), "");
    }

    #[test]
    fn unquote_handles_escapes() {
        assert_eq!(unquote(r#""a\"b""#), "a\"b");
        assert_eq!(unquote("plain"), "plain");
        assert!(!quotes_balanced(r#""abc"#));
        assert!(quotes_balanced(r#""a\"bc""#));
    }
}
