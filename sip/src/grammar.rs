//! Character classes and small lexical helpers from the RFC 3261 §25 grammar.

/// `token` characters: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~"
pub fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}

/// Whether `s` is a non-empty `token`.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Linear white space inside one (already unfolded) header value.
pub fn is_wsp(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// Trims SP/HTAB (and CR/LF left by folding) from both ends.
pub fn trim(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t' || c == '\r' || c == '\n')
}

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
        if !inner.contains('\\') {
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
    fn unquote_handles_escapes() {
        assert_eq!(unquote(r#""a\"b""#), "a\"b");
        assert_eq!(unquote("plain"), "plain");
        assert!(!quotes_balanced(r#""abc"#));
        assert!(quotes_balanced(r#""a\"bc""#));
    }
}
