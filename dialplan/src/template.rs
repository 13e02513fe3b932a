//! Text with variables: `"${number}"`, `"sip-${caller}"`, `"${1}"`, `"${number:1}"`.

use std::fmt;

/// Variables every call has; `set` and `http_lookup` add more.
pub const BUILTIN_VARIABLES: [&str; 6] = [
    "number",
    "caller",
    "caller_name",
    "context",
    "dial_status",
    "digits",
];

/// A variable reference inside a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VarRef {
    /// `${name}`: a builtin or a variable set by `set` / `http_lookup`.
    Named(String),
    /// `${1}`: a capture of the rule's regex.
    Capture(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    /// `${var}`, `${var:offset}` or `${var:offset:length}` (Asterisk's substring).
    Var {
        var: VarRef,
        offset: isize,
        length: Option<usize>,
    },
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
}

/// Where variable values come from while a template is expanded.
pub trait Vars {
    fn named(&self, name: &str) -> Option<&str>;
    fn capture(&self, index: usize) -> Option<&str>;
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Template {
    /// Parses `text`; `$` not followed by `{` is a plain `$`.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                segments.push(Segment::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("`{text}`: `${{` without its `}}`"))?;
            segments.push(Self::var(text, &after[..end])?);
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_owned()));
        }
        Ok(Template {
            source: text.to_owned(),
            segments,
        })
    }

    fn var(text: &str, inner: &str) -> Result<Segment, String> {
        let mut parts = inner.split(':');
        let name = parts.next().unwrap_or_default();
        let var = if let Ok(n) = name.parse::<usize>() {
            if n == 0 {
                return Err(format!("`{text}`: captures count from `${{1}}`"));
            }
            VarRef::Capture(n)
        } else if is_name(name) {
            VarRef::Named(name.to_owned())
        } else {
            return Err(format!(
                "`{text}`: `${{{inner}}}` is not a variable (letters, digits and _, or a capture \
                 number)"
            ));
        };
        let bad = || format!("`{text}`: `${{{inner}}}`: expected `${{name:offset:length}}`");
        let offset = match parts.next() {
            Some(o) => o.parse::<isize>().map_err(|_| bad())?,
            None => 0,
        };
        let length = match parts.next() {
            Some(l) => Some(l.parse::<usize>().map_err(|_| bad())?),
            None => None,
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Segment::Var {
            var,
            offset,
            length,
        })
    }

    /// The text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variables the template reads.
    pub fn vars(&self) -> impl Iterator<Item = &VarRef> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Var { var, .. } => Some(var),
            Segment::Text(_) => None,
        })
    }

    /// The text with every variable replaced; unset variables are empty.
    pub fn expand(&self, vars: &dyn Vars) -> String {
        self.expand_with(vars, str::to_owned)
    }

    /// Like [`Template::expand`], passing each variable's value through `encode` (for URLs).
    pub fn expand_with(&self, vars: &dyn Vars, encode: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Var {
                    var,
                    offset,
                    length,
                } => {
                    let value = match var {
                        VarRef::Named(n) => vars.named(n),
                        VarRef::Capture(i) => vars.capture(*i),
                    }
                    .unwrap_or_default();
                    out.push_str(&encode(&substring(value, *offset, *length)));
                }
            }
        }
        out
    }
}

/// Asterisk's `${VAR:offset:length}`: a negative offset counts from the end.
fn substring(value: &str, offset: isize, length: Option<usize>) -> String {
    let chars: Vec<char> = value.chars().collect();
    let start = if offset < 0 {
        chars.len().saturating_sub(offset.unsigned_abs())
    } else {
        offset.unsigned_abs().min(chars.len())
    };
    let end = length.map_or(chars.len(), |l| start.saturating_add(l).min(chars.len()));
    chars[start..end].iter().collect()
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;
    impl Vars for Fixed {
        fn named(&self, name: &str) -> Option<&str> {
            (name == "number").then_some("0301234")
        }
        fn capture(&self, index: usize) -> Option<&str> {
            (index == 1).then_some("301234")
        }
    }

    fn expand(t: &str) -> String {
        Template::parse(t)
            .unwrap_or_else(|e| panic!("{e}"))
            .expand(&Fixed)
    }

    #[test]
    fn expands_variables_captures_and_substrings() {
        assert_eq!(expand("${number}"), "0301234");
        assert_eq!(expand("sip:${1}@gw"), "sip:301234@gw");
        assert_eq!(expand("${number:1}"), "301234");
        assert_eq!(expand("${number:1:2}"), "30");
        assert_eq!(expand("${number:-4}"), "1234");
        assert_eq!(expand("${unset}x$"), "x$");
    }

    #[test]
    fn rejects_broken_references() {
        for bad in [
            "${number",
            "${}",
            "${0}",
            "${a-b}",
            "${number:x}",
            "${a:1:2:3}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
