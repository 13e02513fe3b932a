//! `;name[=value]` parameter lists (RFC 3261 §25.1 `generic-param`), in order, with
//! case-insensitive names. Values are kept as written (a quoted value keeps its quotes) so a
//! list writes back the way it came; [`Params::get`] gives quoted values without the quotes.

use super::error::SyntaxError;
use super::lex::{Lexer, is_token, is_token_byte};
use std::fmt;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, Option<String>)>);

/// Characters of an unquoted `gen-value`: a token, or a host (IPv6 references need `:[]`).
fn is_value_byte(b: u8) -> bool {
    is_token_byte(b) || matches!(b, b':' | b'[' | b']')
}

fn strip_quotes(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
}

impl Params {
    pub fn new() -> Params {
        Params(Vec::new())
    }

    /// Parses `;a=b;c` (leading `;` required for each parameter, white space allowed around
    /// `;` and `=`). The whole input must be consumed.
    pub fn parse(s: &str) -> Result<Params, SyntaxError> {
        let mut lx = Lexer::new(s);
        let params = Params::parse_from(&mut lx)?;
        lx.skip_ws();
        if lx.at_end() {
            Ok(params)
        } else {
            Err(SyntaxError::Bad("unexpected text after parameters"))
        }
    }

    /// Parses parameters while the next non-blank character is `;`.
    pub(crate) fn parse_from(lx: &mut Lexer<'_>) -> Result<Params, SyntaxError> {
        let mut params = Vec::new();
        while lx.eat_sep(b';') {
            let name = lx
                .token()
                .map_err(|_| SyntaxError::Bad("empty parameter name"))?;
            let value = if lx.eat_sep(b'=') {
                let v = if lx.peek() == Some(b'"') {
                    lx.quoted()?
                } else {
                    lx.take_while(is_value_byte)
                };
                if v.is_empty() {
                    return Err(SyntaxError::Bad("empty parameter value"));
                }
                Some(v.to_owned())
            } else {
                None
            };
            params.push((name.to_owned(), value));
        }
        Ok(Params(params))
    }

    /// `None`: absent. `Some(None)`: present without a value. Quoted values come unquoted
    /// (escapes inside are left as written).
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref().map(strip_quotes))
    }

    /// The value exactly as written, quotes included.
    pub fn get_raw(&self, name: &str) -> Option<Option<&str>> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets a parameter, replacing the first with this name (others removed) or appending.
    /// A value that is not a token or host is written as a quoted string.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(|v| {
            if !v.is_empty() && v.bytes().all(is_value_byte) {
                v.to_owned()
            } else {
                super::lex::quote(v)
            }
        });
        match self
            .0
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(at) => {
                if let Some(slot) = self.0.get_mut(at) {
                    slot.1 = value;
                }
                let mut index = 0;
                self.0.retain(|(n, _)| {
                    let keep = index <= at || !n.eq_ignore_ascii_case(name);
                    index += 1;
                    keep
                });
            }
            None => self.0.push((name.to_owned(), value)),
        }
    }

    /// Appends without looking for an existing parameter (for parsers building a list).
    pub(crate) fn push_raw(&mut self, name: String, value: Option<String>) {
        self.0.push((name, value));
    }

    /// Removes every parameter with this name; returns whether there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.0.len() != before
    }

    /// Names and raw values in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_deref()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `name` is a valid parameter name.
    pub fn is_valid_name(name: &str) -> bool {
        is_token(name)
    }
}

/// Writes `;name=value` for each parameter (no leading white space).
impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.0 {
            match value {
                Some(v) => write!(f, ";{name}={v}")?,
                None => write!(f, ";{name}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_white_space_and_quotes() {
        let p = Params::parse(" ;   tag    = 1918181833n ; lr ; q=\"a;b\"").unwrap();
        assert_eq!(p.get("TAG"), Some(Some("1918181833n")));
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.get("q"), Some(Some("a;b")));
        assert_eq!(p.get_raw("q"), Some(Some("\"a;b\"")));
        assert_eq!(p.get("missing"), None);
        assert_eq!(p.to_string(), ";tag=1918181833n;lr;q=\"a;b\"");
    }

    #[test]
    fn rejects_empty_names_and_values() {
        assert!(Params::parse(";;").is_err());
        assert!(Params::parse(";a=").is_err());
        assert!(Params::parse(";a b").is_err());
    }

    #[test]
    fn set_replaces_and_quotes() {
        let mut p = Params::parse(";a=1;b;A=2").unwrap();
        p.set("a", Some("x y"));
        assert_eq!(p.to_string(), ";a=\"x y\";b");
        p.set("c", None);
        assert!(p.remove("B"));
        assert_eq!(p.to_string(), ";a=\"x y\";c");
    }
}
