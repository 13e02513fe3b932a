//! Dial patterns: exact numbers (`1000`, `*97`) and Asterisk-style patterns (`_NXX`, `_9.`),
//! with the specificity order Asterisk uses and a test of whether one pattern covers another.

use std::cmp::Ordering;
use std::fmt;

/// The characters allowed at one position of a pattern: bit `i` is ASCII character `i`.
/// [`CharSet::ANY`] also matches non-ASCII characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CharSet(u128);

impl CharSet {
    const ANY: CharSet = CharSet(u128::MAX);
    const NONE: CharSet = CharSet(0);

    fn one(c: u8) -> CharSet {
        CharSet(1u128 << (c & 0x7f))
    }

    fn range(lo: u8, hi: u8) -> CharSet {
        (lo..=hi).fold(CharSet::NONE, |s, c| CharSet(s.0 | CharSet::one(c).0))
    }

    fn contains(self, c: char) -> bool {
        self == CharSet::ANY || (c.is_ascii() && self.0 & (1u128 << (c as u32)) != 0)
    }

    fn is_subset_of(self, other: CharSet) -> bool {
        other == CharSet::ANY || (self != CharSet::ANY && self.0 & !other.0 == 0)
    }

    /// Asterisk orders a position by how many characters it allows, then by the lowest one.
    fn weight(self) -> u32 {
        if self == CharSet::ANY {
            return u32::MAX;
        }
        (self.0.count_ones() << 8) | self.0.trailing_zeros()
    }
}

/// What may follow the fixed positions of a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// Nothing: the number has exactly as many characters as the pattern.
    End,
    /// `.`: one or more further characters.
    OneOrMore,
    /// `!`: zero or more further characters.
    ZeroOrMore,
}

/// An exact number or an Asterisk-style `_` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialPattern {
    text: String,
    positions: Vec<CharSet>,
    tail: Tail,
}

/// Characters a dialed number may contain in an exact number or as a pattern literal.
fn is_dial_char(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | '+')
}

impl DialPattern {
    /// Parses `1000`, `*97` (exact; letters allowed for named accounts) or `_[1-5]XX`, `_9.`,
    /// `_0!` (patterns: `X` any digit, `Z` 1-9, `N` 2-9, `[..]` a class with ranges, `.` one
    /// or more of anything, `!` zero or more of anything, both only at the end).
    pub fn parse(text: &str) -> Result<DialPattern, String> {
        let Some(body) = text.strip_prefix('_') else {
            return Self::exact(text);
        };
        if body.is_empty() {
            return Err("empty pattern: `_` must be followed by what to match".into());
        }
        let mut positions = Vec::new();
        let mut tail = Tail::End;
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            if tail != Tail::End {
                return Err(format!("`{text}`: `.` and `!` may only end a pattern"));
            }
            let set = match c.to_ascii_uppercase() {
                'X' => CharSet::range(b'0', b'9'),
                'Z' => CharSet::range(b'1', b'9'),
                'N' => CharSet::range(b'2', b'9'),
                '.' => {
                    tail = Tail::OneOrMore;
                    continue;
                }
                '!' => {
                    tail = Tail::ZeroOrMore;
                    continue;
                }
                '[' => Self::class(text, &mut chars)?,
                c if is_dial_char(c) => CharSet::one(c as u8),
                c => {
                    return Err(format!(
                        "`{text}`: unknown character `{c}` in a pattern (use digits, * # +, \
                         X Z N, [..], . or !)"
                    ));
                }
            };
            positions.push(set);
        }
        Ok(DialPattern {
            text: text.to_owned(),
            positions,
            tail,
        })
    }

    fn exact(text: &str) -> Result<DialPattern, String> {
        if text.is_empty() {
            return Err("empty number".into());
        }
        if let Some(c) = text
            .chars()
            .find(|&c| !(is_dial_char(c) || c.is_ascii_alphabetic()))
        {
            return Err(format!(
                "`{text}`: `{c}` cannot be dialed (a pattern starts with `_`, a regex goes in \
                 `regex = ...`)"
            ));
        }
        Ok(DialPattern {
            text: text.to_owned(),
            positions: text.bytes().map(CharSet::one).collect(),
            tail: Tail::End,
        })
    }

    /// Reads a `[...]` class after its `[`.
    fn class(text: &str, chars: &mut std::str::Chars<'_>) -> Result<CharSet, String> {
        let mut set = CharSet::NONE;
        let mut previous: Option<u8> = None;
        loop {
            match chars.next() {
                None => return Err(format!("`{text}`: `[` without its `]`")),
                Some(']') if set == CharSet::NONE => {
                    return Err(format!("`{text}`: empty class `[]`"));
                }
                Some(']') => return Ok(set),
                Some('-') if previous.is_some() => {
                    let lo = previous.take().unwrap_or(b'0');
                    match chars.next() {
                        Some(hi) if is_dial_char(hi) && (hi as u8) >= lo => {
                            set.0 |= CharSet::range(lo, hi as u8).0;
                        }
                        _ => return Err(format!("`{text}`: bad range in `[..]`")),
                    }
                }
                Some(c) if is_dial_char(c) => {
                    set.0 |= CharSet::one(c as u8).0;
                    previous = Some(c as u8);
                }
                Some(c) => return Err(format!("`{text}`: `{c}` is not allowed in `[..]`")),
            }
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True for `_.` and `_!`: every number.
    pub fn matches_everything(&self) -> bool {
        self.positions.is_empty() && self.tail != Tail::End
    }

    /// True for an exact number (no `_`).
    pub fn is_exact(&self) -> bool {
        !self.text.starts_with('_')
    }

    pub fn matches(&self, number: &str) -> bool {
        let mut chars = number.chars();
        for set in &self.positions {
            match chars.next() {
                Some(c) if set.contains(c) => {}
                _ => return false,
            }
        }
        match self.tail {
            Tail::End => chars.next().is_none(),
            Tail::OneOrMore => chars.next().is_some(),
            Tail::ZeroOrMore => true,
        }
    }

    fn min_len(&self) -> usize {
        self.positions.len() + usize::from(self.tail == Tail::OneOrMore)
    }

    fn max_len(&self) -> Option<usize> {
        (self.tail == Tail::End).then_some(self.positions.len())
    }

    /// What the pattern allows at position `i` (NONE past its end).
    fn at(&self, i: usize) -> CharSet {
        match self.positions.get(i) {
            Some(set) => *set,
            None if self.tail == Tail::End => CharSet::NONE,
            None => CharSet::ANY,
        }
    }

    /// True when every number `other` matches is also matched by `self`.
    pub fn covers(&self, other: &DialPattern) -> bool {
        if self.min_len() > other.min_len() {
            return false;
        }
        match (self.max_len(), other.max_len()) {
            (Some(_), None) => return false,
            (Some(a), Some(b)) if a < b => return false,
            _ => {}
        }
        let fixed = self.positions.len().max(other.positions.len());
        let used = other.max_len().map_or(fixed, |m| m.min(fixed));
        (0..used).all(|i| other.at(i).is_subset_of(self.at(i)))
    }

    /// Asterisk's order: position by position, fewer allowed characters first; a pattern that
    /// ends first comes first; `.` before `!`.
    pub fn specificity_cmp(&self, other: &DialPattern) -> Ordering {
        self.order_key().cmp(other.order_key())
    }

    fn order_key(&self) -> impl Iterator<Item = u32> + '_ {
        let end = match self.tail {
            Tail::End => 0,
            Tail::OneOrMore => u32::MAX - 1,
            Tail::ZeroOrMore => u32::MAX,
        };
        self.positions
            .iter()
            .map(|s| s.weight())
            .chain(std::iter::once(end))
    }
}

impl fmt::Display for DialPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> DialPattern {
        DialPattern::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn asterisk_letters_and_classes() {
        assert!(p("_NXX").matches("200"));
        assert!(!p("_NXX").matches("100"));
        assert!(!p("_NXX").matches("2000"));
        assert!(p("_Z").matches("1") && !p("_Z").matches("0"));
        assert!(p("_[1-5]XX").matches("512") && !p("_[1-5]XX").matches("612"));
        assert!(p("_[135-7]").matches("6") && !p("_[135-7]").matches("4"));
        assert!(p("_9.").matches("912") && !p("_9.").matches("9"));
        assert!(p("_9!").matches("9") && p("_9!").matches("9123"));
        assert!(p("*97").matches("*97") && !p("*97").matches("*970"));
        assert!(p("alice").matches("alice"));
    }

    #[test]
    fn bad_patterns_say_why() {
        for (bad, why) in [
            ("_", "empty pattern"),
            ("_9.1", "may only end"),
            ("_[12", "without its"),
            ("_[]", "empty class"),
            ("_[5-1]", "bad range"),
            ("_Q", "unknown character `Q`"),
            ("10 00", "cannot be dialed"),
            ("", "empty number"),
        ] {
            let e = DialPattern::parse(bad).err().unwrap_or_default();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn specificity_orders_as_asterisk() {
        let mut v = [
            p("_X."),
            p("_9!"),
            p("_9."),
            p("_NXX"),
            p("_1XX"),
            p("100"),
            p("_[1-5]XX"),
        ];
        v.sort_by(DialPattern::specificity_cmp);
        let order: Vec<&str> = v.iter().map(DialPattern::as_str).collect();
        assert_eq!(
            order,
            ["100", "_1XX", "_9.", "_9!", "_[1-5]XX", "_NXX", "_X."]
        );
    }

    #[test]
    fn coverage() {
        assert!(p("_X.").covers(&p("_NXX")));
        assert!(p("_X.").covers(&p("1000")));
        assert!(!p("_X.").covers(&p("*97")));
        assert!(p("_NXX").covers(&p("_[2-5]XX")));
        assert!(!p("_NXX").covers(&p("_1XX")));
        assert!(!p("_NXX").covers(&p("_N.")));
        assert!(p("_9!").covers(&p("_9.")));
        assert!(!p("_9.").covers(&p("_9!")));
        assert!(p("_9.").covers(&p("_91XX")));
        assert!(p("1000").covers(&p("1000")));
        assert!(!p("_XXX").covers(&p("_XX")));
    }
}
