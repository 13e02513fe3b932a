//! Typed access to the spanned TOML tree; every mismatch is reported at its position and the
//! reader goes on, so one pass finds every problem.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use pbx_diag::Reporter;

pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

pub(crate) fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// `"500ms"`, `"20s"`, `"5m"`, `"1h"`: the house style for durations.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration (write \"500ms\", \"20s\", \"5m\" or \"1h\")");
    let digits = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = text.split_at(digits);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let millis = match unit {
        "ms" => n,
        "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        _ => return Err(bad()),
    };
    Ok(Duration::from_millis(millis))
}

/// Reads values, reporting each problem to the [`Reporter`].
pub(crate) struct Reader<'r, 'a> {
    pub(crate) report: &'r mut Reporter<'a>,
}

impl Reader<'_, '_> {
    pub(crate) fn error(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.report.error(span, message);
    }

    pub(crate) fn line(&self, span: &Range<usize>) -> usize {
        self.report.line_col(span.start).0
    }

    fn wrong_type(&mut self, v: &Value<'_>, what: &str, want: &str) {
        let found = type_name(v.get_ref());
        self.error(v.span(), format!("{what}: expected {want}, found {found}"));
    }

    /// Reports every key of `table` not in `allowed`.
    pub(crate) fn check_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], what: &str) {
        for (key, _) in table.iter() {
            let key_text: &str = key.get_ref();
            if !allowed.contains(&key_text) {
                let expected: Vec<String> = allowed.iter().map(|k| format!("`{k}`")).collect();
                self.error(
                    key.span(),
                    format!(
                        "unknown field `{key_text}` in {what}, expected one of {}",
                        expected.join(", ")
                    ),
                );
            }
        }
    }

    pub(crate) fn table<'t, 'i>(
        &mut self,
        v: &'t Value<'i>,
        what: &str,
    ) -> Option<&'t DeTable<'i>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            _ => {
                self.wrong_type(v, what, "a table");
                None
            }
        }
    }

    pub(crate) fn array<'t, 'i>(
        &mut self,
        v: &'t Value<'i>,
        what: &str,
    ) -> Option<&'t DeArray<'i>> {
        match v.get_ref() {
            DeValue::Array(a) => Some(a),
            _ => {
                self.wrong_type(v, what, "an array");
                None
            }
        }
    }

    pub(crate) fn string<'t>(&mut self, v: &'t Value<'_>, what: &str) -> Option<&'t str> {
        match v.get_ref() {
            DeValue::String(s) => Some(s.as_ref()),
            _ => {
                self.wrong_type(v, what, "a string");
                None
            }
        }
    }

    pub(crate) fn boolean(&mut self, v: &Value<'_>, what: &str) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(v, what, "true or false");
                None
            }
        }
    }

    /// An integer within `range`.
    pub(crate) fn integer(
        &mut self,
        v: &Value<'_>,
        what: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let DeValue::Integer(i) = v.get_ref() else {
            self.wrong_type(v, what, "an integer");
            return None;
        };
        match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                let (lo, hi) = (range.start(), range.end());
                self.error(v.span(), format!("{what}: must be between {lo} and {hi}"));
                None
            }
        }
    }

    pub(crate) fn duration(&mut self, v: &Value<'_>, what: &str) -> Option<Duration> {
        let text = self.string(v, what)?;
        match parse_duration(text) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                self.error(v.span(), format!("{what}: must be longer than 0s"));
                None
            }
            Err(m) => {
                self.error(v.span(), format!("{what}: {m}"));
                None
            }
        }
    }

    /// One string or an array of strings, each with its span.
    pub(crate) fn strings<'t>(
        &mut self,
        v: &'t Value<'_>,
        what: &str,
    ) -> Vec<(&'t str, Range<usize>)> {
        match v.get_ref() {
            DeValue::String(s) => vec![(s.as_ref(), v.span())],
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| Some((self.string(item, what)?, item.span())))
                .collect(),
            _ => {
                self.wrong_type(v, what, "a string or an array of strings");
                Vec::new()
            }
        }
    }

    /// Each string of `v` parsed with `parse`; failures reported at the item.
    pub(crate) fn parsed_list<T>(
        &mut self,
        v: &Value<'_>,
        what: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Vec<(T, Range<usize>)> {
        let mut out = Vec::new();
        for (text, span) in self.strings(v, what) {
            match parse(text) {
                Ok(t) => out.push((t, span)),
                Err(m) => self.error(span, format!("{what}: {m}")),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "20", "s", "2x", "-1s", "1.5s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
