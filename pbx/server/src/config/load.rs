//! Reading `pbx.toml`: parse with spans, then walk the tree ourselves so that every problem is
//! reported at once, each at its own `line:col`.

use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::duration::parse_duration;
use super::errors::{ConfigError, ConfigErrors, Positions};
use super::model::Config;
use super::sections;

/// Loads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let at_start = |message: String| ConfigErrors::at_start(&path.display().to_string(), message);
    let text = std::fs::read_to_string(path)
        .map_err(|e| at_start(format!("cannot read config file: {e}")))?;
    let absolute = std::path::absolute(path)
        .map_err(|e| at_start(format!("cannot resolve config path: {e}")))?;
    let base_dir = absolute
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    load_str(&text, path, &base_dir)
}

/// Validates config `text` as if read from `path`, resolving relative paths against `base_dir`.
pub fn load_str(text: &str, path: &Path, base_dir: &Path) -> Result<Config, ConfigErrors> {
    let mut ctx = Ctx {
        path: path.to_path_buf(),
        base_dir: base_dir.to_path_buf(),
        positions: Positions::new(text),
        errors: Vec::new(),
    };
    let (root, syntax) = DeTable::parse_recoverable(text);
    let mut config = None;
    if syntax.is_empty() {
        config = Some(sections::config(&mut ctx, root.get_ref()));
    } else {
        // The recovered tree is partial; checking it would add noise. One error per line:
        // the parser's follow-up complaints on the same line add nothing.
        let mut lines = std::collections::HashSet::new();
        for e in syntax {
            let offset = e.span().map_or(0, |s| s.start);
            if lines.insert(ctx.positions.line_col(offset).0) {
                ctx.error(
                    offset..offset,
                    format!("TOML syntax error: {}", e.message().trim()),
                );
            }
        }
    }
    if let Some(config) = config
        && ctx.errors.is_empty()
    {
        Ok(config)
    } else {
        let mut errors = ctx.errors;
        errors.sort_by_key(|e| (e.line, e.col));
        errors.dedup();
        Err(ConfigErrors(errors))
    }
}

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
