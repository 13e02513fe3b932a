//! Small lexical helpers shared by the typed header views (RFC 3261 §25.1).

use super::error::SyntaxError;

/// A byte-class table: alphanumerics plus `extra` (the parser runs on every packet, and a
/// table lookup is cheaper than a chain of comparisons).
pub(crate) const fn byte_class(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut c = 0;
    while c < 256 {
        table[c] = (c as u8).is_ascii_alphanumeric();
        c += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

static TOKEN: [bool; 256] = byte_class(b"-.!%*_+`'~");

/// RFC 3261 §25.1 `token` characters.
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_byte)
}

pub(crate) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(crate) fn trim_ws(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// Splits a header value at the commas that separate values (RFC 3261 §7.3.1), ignoring
/// commas inside quoted strings and inside `<...>`. Each part is trimmed of white space.
pub(crate) fn split_commas(s: &str) -> Result<Vec<&str>, SyntaxError> {
    let bytes = s.as_bytes();
    // Most values hold one element: no comma, nothing to track. (An unterminated quote in
    // such a value is left to the element's own parser.)
    if !bytes.contains(&b',') {
        return Ok(vec![trim_ws(s)]);
    }
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or(0);
        if in_quotes {
            match b {
                b'\\' => i += 1,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_quotes = true,
                b'<' => in_angle = true,
                b'>' => in_angle = false,
                b',' if !in_angle => {
                    parts.push(trim_ws(s.get(start..i).unwrap_or("")));
                    start = i + 1;
                }
                _ => {}
            }
        }
        i += 1;
    }
    if in_quotes {
        return Err(SyntaxError::Bad("unterminated quoted string"));
    }
    if in_angle {
        return Err(SyntaxError::Bad("unterminated <"));
    }
    parts.push(trim_ws(s.get(start..).unwrap_or("")));
    Ok(parts)
}

/// A cursor over a header value.
pub(crate) struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(s: &'a str) -> Lexer<'a> {
        Lexer { s, pos: 0 }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    pub(crate) fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    /// Skips SP and HTAB; returns whether any were skipped.
    pub(crate) fn skip_ws(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
        self.pos > start
    }

    /// Consumes `c` (after optional white space on both sides, as SEMI, EQUAL, SLASH...).
    pub(crate) fn eat_sep(&mut self, c: u8) -> bool {
        let save = self.pos;
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            self.skip_ws();
            true
        } else {
            self.pos = save;
            false
        }
    }

    pub(crate) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Takes bytes while `f` holds (ASCII predicates only, so the slice stays on char bounds).
    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii() && f(b)) {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or("")
    }

    pub(crate) fn token(&mut self) -> Result<&'a str, SyntaxError> {
        let t = self.take_while(is_token_byte);
        if t.is_empty() {
            Err(SyntaxError::Bad("expected a token"))
        } else {
            Ok(t)
        }
    }

    /// A `quoted-string` including its quotes, as written.
    pub(crate) fn quoted(&mut self) -> Result<&'a str, SyntaxError> {
        let start = self.pos;
        if !self.eat(b'"') {
            return Err(SyntaxError::Bad("expected a quoted string"));
        }
        loop {
            match self.peek() {
                None => return Err(SyntaxError::Bad("unterminated quoted string")),
                Some(b'\\') => self.pos += 2,
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(_) => self.pos += 1,
            }
        }
        // A trailing backslash can step past the end; re-check so the slice is in bounds.
        self.s
            .get(start..self.pos)
            .ok_or(SyntaxError::Bad("unterminated quoted string"))
    }

    /// Takes everything up to (not including) the byte `c`.
    pub(crate) fn until(&mut self, c: u8) -> Option<&'a str> {
        let rest = self.rest();
        let at = rest.bytes().position(|b| b == c)?;
        self.pos += at;
        rest.get(..at)
    }
}

/// Removes the quotes and `quoted-pair` escapes of a `quoted-string` (given with its quotes).
pub(crate) fn unquote(q: &str) -> String {
    let inner = q
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(q);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes `s` as a `quoted-string`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_inside_quotes_and_angles_do_not_split() {
        let parts = split_commas(r#""a, b" <sip:x@y;p=1,2>, <sip:z@w> , c"#).unwrap();
        assert_eq!(parts, vec![r#""a, b" <sip:x@y;p=1,2>"#, "<sip:z@w>", "c"]);
        let parts = split_commas(r#""q\", r" <sip:a@b>,d"#).unwrap();
        assert_eq!(parts, vec![r#""q\", r" <sip:a@b>"#, "d"]);
        assert!(split_commas("\"open, x").is_err());
    }

    #[test]
    fn quoted_strings_round_trip() {
        let mut lx = Lexer::new(r#""J Rosenberg \\\"" rest"#);
        let q = lx.quoted().unwrap();
        assert_eq!(q, r#""J Rosenberg \\\"""#);
        assert_eq!(unquote(q), r#"J Rosenberg \""#);
        assert_eq!(quote(&unquote(q)), q);
        assert!(Lexer::new("\"abc\\").quoted().is_err());
    }
}
