//! Reading one section of `pbx.toml`: typed values with defaults and bounds, each problem
//! recorded at its own `line:col` so that all are reported at once.

use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::duration::parse_duration;
use super::errors::{ConfigError, Positions};

pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// Collects problems while the sections are read.
pub(crate) struct Ctx<'a> {
    path: PathBuf,
    pub(crate) base_dir: PathBuf,
    positions: Positions<'a>,
    errors: Vec<ConfigError>,
}

/// One `[section]` of the file (possibly absent), with the keys it allows.
pub(crate) struct Section<'t, 'i> {
    pub(crate) name: &'static str,
    pub(crate) table: Option<&'t DeTable<'i>>,
    /// Where the section's name is written; `0..0` when absent.
    pub(crate) span: Range<usize>,
}

impl<'t, 'i> Section<'t, 'i> {
    pub(crate) fn get(&self, key: &str) -> Option<&'t Value<'i>> {
        self.table.and_then(|t| t.get(key))
    }

    pub(crate) fn is_present(&self) -> bool {
        self.table.is_some()
    }
}

fn type_name(v: &DeValue<'_>) -> &'static str {
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

impl<'a> Ctx<'a> {
    /// Reading `text`, as if from `path`; relative paths resolve against `base_dir`.
    pub(crate) fn new(path: &Path, base_dir: &Path, text: &'a str) -> Ctx<'a> {
        Ctx {
            path: path.to_path_buf(),
            base_dir: base_dir.to_path_buf(),
            positions: Positions::new(text),
            errors: Vec::new(),
        }
    }

    /// The line of a byte offset.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.positions.line_col(offset).0
    }

    /// The problems found, in the order found.
    pub(crate) fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }
}

impl Ctx<'_> {
    /// The config file, as given.
    pub(crate) fn file(&self) -> &Path {
        &self.path
    }

    pub(crate) fn error(&mut self, span: Range<usize>, message: String) {
        let (line, col) = self.positions.line_col(span.start);
        self.errors.push(ConfigError {
            path: self.path.display().to_string(),
            line,
            col,
            message,
        });
    }

    /// Reports every key of `section` that is not in `allowed`.
    pub(crate) fn check_keys(&mut self, section: &Section<'_, '_>, allowed: &[&str]) {
        let Some(table) = section.table else { return };
        for (key, _) in table.iter() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                let expected: Vec<String> = allowed.iter().map(|k| format!("`{k}`")).collect();
                self.error(
                    key.span(),
                    format!(
                        "unknown key `{}` in [{}], expected one of {}",
                        key.get_ref(),
                        section.name,
                        expected.join(", ")
                    ),
                );
            }
        }
    }

    pub(crate) fn missing(&mut self, section: &Section<'_, '_>, key: &str) {
        let message = if section.is_present() {
            format!("missing key `{key}` in [{}]", section.name)
        } else {
            format!("missing section [{}] with key `{key}`", section.name)
        };
        self.error(section.span.clone(), message);
    }

    fn wrong_type(&mut self, section: &Section<'_, '_>, key: &str, v: &Value<'_>, want: &str) {
        self.error(
            v.span(),
            format!(
                "wrong type for `{key}` in [{}]: expected {want}, found {}",
                section.name,
                type_name(v.get_ref())
            ),
        );
    }

    /// The string at `key` with its span; `None` when absent or not a string (reported).
    pub(crate) fn string<'t>(
        &mut self,
        section: &Section<'t, '_>,
        key: &str,
    ) -> Option<(&'t str, Range<usize>)> {
        let v = section.get(key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.as_ref(), v.span())),
            _ => {
                self.wrong_type(section, key, v, "a string");
                None
            }
        }
    }

    /// The boolean at `key`, or `default` when absent (a wrong type is reported).
    pub(crate) fn boolean(&mut self, section: &Section<'_, '_>, key: &str, default: bool) -> bool {
        let Some(v) = section.get(key) else {
            return default;
        };
        match v.get_ref() {
            DeValue::Boolean(b) => *b,
            _ => {
                self.wrong_type(section, key, v, "true or false");
                default
            }
        }
    }

    /// Parses the string at `key` with `parse`; reports failures at the value.
    pub(crate) fn parsed<T>(
        &mut self,
        section: &Section<'_, '_>,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<(T, Range<usize>)> {
        let (text, span) = self.string(section, key)?;
        match parse(text) {
            Ok(v) => Some((v, span)),
            Err(m) => {
                self.error(span, m);
                None
            }
        }
    }

    pub(crate) fn duration(
        &mut self,
        section: &Section<'_, '_>,
        key: &str,
        default: Duration,
    ) -> Duration {
        let v = section.get(key);
        if let Some(v) = v
            && !matches!(v.get_ref(), DeValue::String(_))
        {
            self.wrong_type(section, key, v, "a duration string such as \"60s\"");
            return default;
        }
        self.parsed(section, key, parse_duration)
            .map_or(default, |(d, _)| d)
    }

    /// An integer within `range`.
    pub(crate) fn integer(
        &mut self,
        section: &Section<'_, '_>,
        key: &str,
        range: RangeInclusive<i64>,
        default: i64,
    ) -> i64 {
        let Some(v) = section.get(key) else {
            return default;
        };
        let DeValue::Integer(i) = v.get_ref() else {
            self.wrong_type(section, key, v, "an integer");
            return default;
        };
        match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) if range.contains(&n) => n,
            _ => {
                self.error(
                    v.span(),
                    format!(
                        "`{key}` in [{}] must be between {} and {}",
                        section.name,
                        range.start(),
                        range.end()
                    ),
                );
                default
            }
        }
    }

    /// An array of strings, each parsed with `parse`; bad items are reported at the item.
    /// `None` when absent or not an array.
    pub(crate) fn list<T>(
        &mut self,
        section: &Section<'_, '_>,
        key: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<Vec<(T, Range<usize>)>> {
        let v = section.get(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            self.wrong_type(section, key, v, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => match parse(s) {
                    Ok(t) => out.push((t, item.span())),
                    Err(m) => self.error(item.span(), m),
                },
                other => self.error(
                    item.span(),
                    format!(
                        "wrong type in `{key}` of [{}]: expected a string, found {}",
                        section.name,
                        type_name(other)
                    ),
                ),
            }
        }
        Some(out)
    }

    /// A path, resolved against the config folder.
    pub(crate) fn path(&mut self, section: &Section<'_, '_>, key: &str, default: &str) -> PathBuf {
        let text = match self.string(section, key) {
            Some(("", span)) => {
                self.error(
                    span,
                    format!("`{key}` in [{}] must not be empty", section.name),
                );
                default
            }
            Some((s, _)) => s,
            None => default,
        };
        self.base_dir.join(text)
    }
}
